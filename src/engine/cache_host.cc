#include "engine/cache_host.h"

#include "engine/engine.h"

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

}  // namespace larder
