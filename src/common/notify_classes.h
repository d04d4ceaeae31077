// The classes of notify-keyspace-events (Redis 7.0's letters plus Larder's
// `c` for the caching rules' events) and their text form. Every layer that
// raises or filters keyspace notifications reads these: config parses the
// setting, the keyspace raises new/keymiss/expired, the engine publishes.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace larder {

enum NotifyClass : uint32_t {
  kNotifyKeyspace = 1u << 0,  // K: __keyspace@<db>__:<key> channels
  kNotifyKeyevent = 1u << 1,  // E: __keyevent@<db>__:<event> channels
  kNotifyGeneric = 1u << 2,   // g
  kNotifyString = 1u << 3,    // $
  kNotifyList = 1u << 4,      // l
  kNotifySet = 1u << 5,       // s
  kNotifyHash = 1u << 6,      // h
  kNotifyZset = 1u << 7,      // z
  kNotifyExpired = 1u << 8,   // x
  kNotifyEvicted = 1u << 9,   // e
  kNotifyStream = 1u << 10,   // t
  kNotifyKeyMiss = 1u << 11,  // m (not part of A)
  kNotifyLoaded = 1u << 12,   // internal (Redis: module key loads)
  kNotifyModule = 1u << 13,   // d
  kNotifyNew = 1u << 14,      // n (not part of A)
  kNotifyCache = 1u << 15,    // c: Larder's caching rules' events (not part of A)
};

// Redis's A: every class but keymiss and new (and, here, c).
constexpr uint32_t kNotifyAll = kNotifyGeneric | kNotifyString | kNotifyList | kNotifySet |
                                kNotifyHash | kNotifyZset | kNotifyExpired | kNotifyEvicted |
                                kNotifyStream | kNotifyModule;

// Parses the letters of notify-keyspace-events; nullopt if one is not a class.
std::optional<uint32_t> ParseNotifyClasses(std::string_view letters);
// The letters CONFIG GET shows for `classes`, in Redis's order ("A" for all
// of A, then K, E, m; Redis drops n after A, and so does this), then c.
std::string FormatNotifyClasses(uint32_t classes);

}  // namespace larder
