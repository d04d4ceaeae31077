// Logging in redis-server's line format, so operators' log tooling keeps working:
//   <pid>:<role> <dd Mon yyyy hh:mm:ss.mmm> <level char> <message>
// Level chars: '.' debug, '-' verbose, '*' notice, '#' warning. Thread-safe:
// each line is written with a single write(2).
#pragma once

#include <fmt/format.h>

#include <string>
#include <string_view>

namespace larder {

enum class LogLevel { kDebug = 0, kVerbose = 1, kNotice = 2, kWarning = 3 };

void SetLogLevel(LogLevel level);
LogLevel GetLogLevel();
// Empty path means standard output.
void SetLogFile(const std::string& path);
bool ParseLogLevel(std::string_view name, LogLevel* out);
std::string_view LogLevelName(LogLevel level);

void LogLine(LogLevel level, std::string_view msg);

template <typename... Args>
void Log(LogLevel level, fmt::format_string<Args...> f, Args&&... args) {
  if (level < GetLogLevel()) return;
  LogLine(level, fmt::format(f, std::forward<Args>(args)...));
}

#define LOG_DEBUG(...) ::larder::Log(::larder::LogLevel::kDebug, __VA_ARGS__)
#define LOG_VERBOSE(...) ::larder::Log(::larder::LogLevel::kVerbose, __VA_ARGS__)
#define LOG_NOTICE(...) ::larder::Log(::larder::LogLevel::kNotice, __VA_ARGS__)
#define LOG_WARNING(...) ::larder::Log(::larder::LogLevel::kWarning, __VA_ARGS__)

}  // namespace larder
