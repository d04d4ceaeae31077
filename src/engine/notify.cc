#include "engine/notify.h"

#include <string>

#include "engine/command.h"
#include "engine/engine.h"

namespace larder {

namespace {
NotifyObserver observer = nullptr;
void* observer_arg = nullptr;

void Send(Engine& engine, std::string_view channel, std::string_view message) {
  if (observer) [[unlikely]]
    observer(observer_arg, channel, message);
  engine.pubsub().Publish(channel, message);
}
}  // namespace

void SetNotifyObserver(NotifyObserver fn, void* arg) {
  observer = fn;
  observer_arg = arg;
}

namespace {
// "<prefix><db>__:<name>"
std::string ChannelName(std::string_view prefix, int db, std::string_view name) {
  std::string ch(prefix);
  ch += std::to_string(db);
  ch += "__:";
  ch += name;
  return ch;
}
}  // namespace

std::string KeyspaceChannel(int db, std::string_view key) { return ChannelName("__keyspace@", db, key); }

std::string KeyeventChannel(int db, std::string_view event) { return ChannelName("__keyevent@", db, event); }

void NotifyCommandEvent(CommandContext& ctx, uint32_t cls, std::string_view event, std::string_view key) {
  NotifyKeyspaceEvent(*ctx.engine, ctx.db_index, cls, event, key);
}

void NotifyKeyspaceEvent(Engine& engine, int db, uint32_t cls, std::string_view event, std::string_view key) {
  // The only cost with notifications off: one relaxed load.
  uint32_t on = engine.config().notify_keyspace_events.load(std::memory_order_relaxed);
  if ((on & cls) == 0) [[likely]]
    return;
  // As Redis: the keyspace channel first, then the keyevent one.
  if (on & kNotifyKeyspace) Send(engine, KeyspaceChannel(db, key), event);
  if (on & kNotifyKeyevent) Send(engine, KeyeventChannel(db, event), key);
}

}  // namespace larder
