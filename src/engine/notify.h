// Keyspace notifications (notify-keyspace-events). A command that changed a
// key tells the engine what happened with one call, where Redis calls
// notifyKeyspaceEvent; the engine publishes "__keyspace@<db>__:<key>" with
// the event as message and "__keyevent@<db>__:<event>" with the key, as the
// configured classes allow. Expiry, eviction and the caching rules' own
// events come through the same call.
#pragma once

#include <cstdint>
#include <string_view>

namespace larder {

class Engine;
struct CommandContext;

// The classes of notify-keyspace-events (Redis 7.0's letters).
enum NotifyClass : uint32_t {
  kNotifyKeyspace = 1u << 0,  // K
  kNotifyKeyevent = 1u << 1,  // E
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
  kNotifyLoaded = 1u << 12,   // internal
  kNotifyModule = 1u << 13,   // d
  kNotifyNew = 1u << 14,      // n (not part of A)
  kNotifyCache = 1u << 15,    // Larder's caching rules' events
};

// From a handler: `event` happened to `key` of the command's database.
void NotifyKeyspaceEvent(CommandContext& ctx, uint32_t cls, std::string_view event, std::string_view key);
// From elsewhere on a shard thread (expiry, eviction, the caching rules).
void NotifyKeyspaceEvent(Engine& engine, int db, uint32_t cls, std::string_view event, std::string_view key);

}  // namespace larder
