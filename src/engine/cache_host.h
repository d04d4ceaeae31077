// The engine's side of the cache module's Host interface (cache/host.h):
// tasks go to shards through the ShardSet, a stored hash follows the
// configured listpack limits, a lease that ends wakes the key's waiters.
#pragma once

#include "cache/host.h"

namespace larder {

class Engine;

class EngineCacheHost : public cache::Host {
 public:
  explicit EngineCacheHost(Engine* engine) : engine_(engine) {}
  int shard_count() const override;
  int ShardOf(std::string_view key) const override;
  void Post(int shard, absl::AnyInvocable<void()> task) override;
  HashLimits hash_limits() const override;
  void WakeWaiters(int shard, int db, std::string_view key) override;
  void KeyChanged(int shard, int db, std::string_view key) override;
  void NotifyRuleEvent(int shard, int db, std::string_view event, std::string_view key) override;
  void Publish(std::string_view channel, std::string_view message) override;
  bool AppendToStream(int db, std::string_view stream,
                      std::vector<std::pair<std::string, std::string>> fields) override;

 private:
  Engine* engine_;
};

}  // namespace larder
