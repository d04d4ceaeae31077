// Keyspace notifications (notify-keyspace-events). A command that changed a
// key tells the engine what happened with one call, where Redis calls
// notifyKeyspaceEvent; the engine publishes "__keyspace@<db>__:<key>" with
// the event as message and "__keyevent@<db>__:<event>" with the key, as the
// configured classes allow. Expiry, eviction and the caching rules' own
// events come through the same call.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/notify_classes.h"

namespace larder {

class Engine;
struct CommandContext;

// The notify-keyspace-events classes of the engine whose shard runs on this
// thread (Engine::SetupShard): handlers test it inline, so a command pays one
// load and a branch per event while notifications are off. Null on other
// threads (the slow path then reads the engine's config).
inline thread_local const std::atomic<uint32_t>* tl_notify_classes = nullptr;

// From a handler: `event` happened to `key` of the command's database.
void NotifyCommandEvent(CommandContext& ctx, uint32_t cls, std::string_view event, std::string_view key);
inline void NotifyKeyspaceEvent(CommandContext& ctx, uint32_t cls, std::string_view event, std::string_view key) {
  const std::atomic<uint32_t>* on = tl_notify_classes;
  if (on && (on->load(std::memory_order_relaxed) & cls) == 0) [[likely]] return;
  NotifyCommandEvent(ctx, cls, event, key);
}
// From elsewhere on a shard thread (expiry, eviction, the caching rules).
void NotifyKeyspaceEvent(Engine& engine, int db, uint32_t cls, std::string_view event, std::string_view key);

// The channels: "__keyspace@<db>__:<key>" and "__keyevent@<db>__:<event>".
std::string KeyspaceChannel(int db, std::string_view key);
std::string KeyeventChannel(int db, std::string_view event);

// Tests: sees each (channel, message) a notification publishes, just before
// it goes to pub/sub. Process-wide; set it while no shard runs commands.
using NotifyObserver = void (*)(void* arg, std::string_view channel, std::string_view message);
void SetNotifyObserver(NotifyObserver fn, void* arg);

}  // namespace larder
