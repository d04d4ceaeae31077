#include "common/log.h"

#include <fcntl.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <mutex>

namespace larder {

namespace {
std::atomic<int> g_level{static_cast<int>(LogLevel::kNotice)};
std::atomic<int> g_fd{STDOUT_FILENO};
std::mutex g_file_mu;  // guards replacing the log file only
}  // namespace

void SetLogLevel(LogLevel level) { g_level.store(static_cast<int>(level)); }
LogLevel GetLogLevel() { return static_cast<LogLevel>(g_level.load(std::memory_order_relaxed)); }

void SetLogFile(const std::string& path) {
  std::lock_guard lock(g_file_mu);
  int fd = STDOUT_FILENO;
  if (!path.empty()) {
    fd = open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) fd = STDOUT_FILENO;
  }
  int old = g_fd.exchange(fd);
  if (old != STDOUT_FILENO) close(old);
}

bool ParseLogLevel(std::string_view name, LogLevel* out) {
  if (name == "debug") *out = LogLevel::kDebug;
  else if (name == "verbose") *out = LogLevel::kVerbose;
  else if (name == "notice") *out = LogLevel::kNotice;
  else if (name == "warning") *out = LogLevel::kWarning;
  else return false;
  return true;
}

std::string_view LogLevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug: return "debug";
    case LogLevel::kVerbose: return "verbose";
    case LogLevel::kNotice: return "notice";
    case LogLevel::kWarning: return "warning";
  }
  return "notice";
}

void LogLine(LogLevel level, std::string_view msg) {
  static const char kMarks[] = ".-*#";
  timeval tv;
  gettimeofday(&tv, nullptr);
  tm tm_buf;
  localtime_r(&tv.tv_sec, &tm_buf);
  char date[64];
  size_t n = strftime(date, sizeof(date), "%d %b %Y %H:%M:%S", &tm_buf);
  std::string line = fmt::format("{}:M {}.{:03d} {} {}\n", getpid(), std::string_view(date, n),
                                 static_cast<int>(tv.tv_usec / 1000),
                                 kMarks[static_cast<int>(level)], msg);
  ssize_t unused = write(g_fd.load(), line.data(), line.size());
  (void)unused;
}

}  // namespace larder
