// Keyspace notifications (notify-keyspace-events). A command that changed a
// key tells the engine what happened with one call, where Redis calls
// notifyKeyspaceEvent; the engine publishes "__keyspace@<db>__:<key>" with
// the event as message and "__keyevent@<db>__:<event>" with the key, as the
// configured classes allow. Expiry, eviction and the caching rules' own
// events come through the same call.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/notify_classes.h"

namespace larder {

class Engine;
struct CommandContext;

// From a handler: `event` happened to `key` of the command's database.
void NotifyKeyspaceEvent(CommandContext& ctx, uint32_t cls, std::string_view event, std::string_view key);
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
