#include "engine/cache_host.h"

#include <atomic>

#include "common/log.h"
#include "engine/engine.h"
#include "engine/executor.h"
#include "engine/notify.h"

namespace larder {

int EngineCacheHost::shard_count() const { return engine_->shards().size(); }

int EngineCacheHost::ShardOf(std::string_view key) const { return engine_->shards().ShardOf(key); }

void EngineCacheHost::Post(int shard, absl::AnyInvocable<void()> task) {
  engine_->shards().Send(shard, std::move(task));
}

HashLimits EngineCacheHost::hash_limits() const {
  Config& c = engine_->config();
  return HashLimits{static_cast<size_t>(c.hash_max_listpack_entries.load()),
                    static_cast<size_t>(c.hash_max_listpack_value.load())};
}

void EngineCacheHost::WakeWaiters(int shard, int db, std::string_view key) {
  // Each waiter gets nil ("ask again"); the first to ask takes over.
  engine_->local(shard).blocking.WakeAll(engine_, db, std::string(key), "*-1\r\n", "_\r\n");
}

void EngineCacheHost::KeyChanged(int shard, int db, std::string_view key) {
  WatchRegistry& w = engine_->local(shard).watches;
  if (!w.empty()) w.Touch(db, key, engine_->shards().shard(shard).db(db));
  // Client-side caches that hold it drop it (no client wrote it: no NOLOOP).
  if (engine_->tracking().active()) InvalidateKey(*engine_, shard, true, key, 0);
}

void EngineCacheHost::NotifyRuleEvent(int, int db, std::string_view event, std::string_view key) {
  NotifyKeyspaceEvent(*engine_, db, kNotifyCache, event, key);
}

void EngineCacheHost::Publish(std::string_view channel, std::string_view message) {
  engine_->pubsub().Publish(channel, message);
}

bool EngineCacheHost::AppendToStream(int db, std::string_view stream,
                                     std::vector<std::pair<std::string, std::string>> fields) {
  // XADD through the executor, on the stream's shard, as a client's would
  // run (its own notification, blocked readers served). Looked up by name:
  // the stream commands may be absent from this build.
  const CommandSpec* xadd = Commands().Find("xadd");
  if (!xadd) {
    static std::atomic<bool> warned{false};
    if (!warned.exchange(true)) LOG_WARNING("publish-stream: this server has no XADD; stream messages are dropped");
    return false;
  }
  Engine* engine = engine_;
  int owner = engine->shards().ShardOf(stream);
  engine->shards().Send(owner, [engine, xadd, db, stream = std::string(stream), fields = std::move(fields)] {
    std::vector<std::string> words = {"xadd", stream, "*"};
    for (auto& [f, v] : fields) {
      words.push_back(f);
      words.push_back(v);
    }
    std::vector<std::string_view> argv(words.begin(), words.end());
    Call call(xadd, argv, db, 2);
    std::string reply;
    Execute(*engine, *CurrentShard(), call, &reply);
  });
  return true;
}

}  // namespace larder
