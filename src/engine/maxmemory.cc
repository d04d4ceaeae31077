// maxmemory: admission before a command that may grow memory, eviction of
// any excess before such a command on the shard that runs it, of each
// shard's share of an excess after commands and in a 10 ms cron, and
// the policy settings (keyspace/eviction.h holds the policies themselves).
#include <cmath>

#include "common/clock.h"
#include "engine/engine.h"

namespace larder {


namespace {
void PublishShardKeys(MemoryBudget& budget, Shard& shard) {
  uint64_t keys = 0, vol = 0;
  for (auto& db : shard.dbs()) {
    keys += db.size();
    vol += db.expires();
  }
  budget.PublishKeys(shard.id(), keys, vol);
}

// Redis's eviction time limit per call for maxmemory-eviction-tenacity.
int64_t EvictionTimeLimitUs(int64_t tenacity) {
  if (tenacity <= 10) return 50 * tenacity;
  if (tenacity < 100) return static_cast<int64_t>(500.0 * std::pow(1.15, static_cast<double>(tenacity - 10)));
  return INT64_MAX;
}
}  // namespace

size_t Engine::EvictShare(Shard& shard, int64_t over, bool whole) {
  Policy policy = CurrentPolicy();
  int64_t& debt = shard.evictor().debt();
  int64_t max = config_->maxmemory.load(std::memory_order_relaxed);
  int64_t bound = std::max<int64_t>(max / 64, 64 * 1024);
  // What other shards freed for this one before (see below) is owed first;
  // a debt run up under another limit is dropped (after CONFIG SET
  // maxmemory raised it, paying it would evict keys under the new limit).
  int64_t owed_in = memory_->TakeOwed(shard.id());
  if (shard.evictor().debt_limit() != max) {
    shard.evictor().debt_limit() = max;
    debt = 0;
    owed_in = 0;
  }
  debt = std::min(debt + owed_in, bound);
  if (policy == Policy::kNoEviction || (over <= 0 && debt <= 0)) return 0;
  // This shard's part of the excess, in proportion to its share of the
  // (evictable) keys; the other shards free theirs when they next run a
  // command or their cron (every 10 ms).
  bool vol = IsVolatile(policy);
  uint64_t mine = vol ? memory_->volatile_keys_of(shard.id()) : memory_->keys_of(shard.id());
  uint64_t all = vol ? memory_->volatile_keys() : memory_->keys();
  double share = all ? static_cast<double>(mine) / static_cast<double>(all) : 1.0 / shards_->size();
  if (over > 0) {
    auto part = static_cast<int64_t>(static_cast<double>(over) * share) + 1;
    // What the shard owes: its part of the excess, less what it freed beyond
    // its part before (a key is freed whole, and keys differ in size), never
    // more than its part of this excess (the same excess is seen again until
    // every shard has paid) plus what others freed for it.
    debt = std::min(debt + part, std::max(debt, part));
  }
  int64_t own = std::max<int64_t>(debt, 0);
  // Before a write, the whole excess: the write must start under the limit.
  int64_t owed = whole ? std::max(own, over) : own;
  if (owed <= 0) return 0;
  auto want = static_cast<size_t>(owed);
  int64_t limit = EvictionTimeLimitUs(config_->maxmemory_eviction_tenacity.load(std::memory_order_relaxed));
  int samples = static_cast<int>(config_->maxmemory_samples.load(std::memory_order_relaxed));
  uint64_t evicted = 0;
  size_t freed = 0;
  int64_t start = MonotonicUs();
  // In slices, so that the time limit is checked between them.
  while (freed < want) {
    size_t got = shard.evictor().Evict(shard.dbs(), std::min<size_t>(want - freed, 64 * 1024), policy, samples,
                                       shard.rng(), &evicted);
    freed += got;
    if (got == 0 || MonotonicUs() - start > limit) break;
  }
  auto paid = static_cast<int64_t>(freed);
  if (paid > own && whole && mine > 0 && mine < all) {
    // Freed more than its part, all of it from its own keys: the other
    // shards owe as much again in proportion to their keys against this
    // one's (owed `extra * theirs / mine`), so that every excess ends up
    // freed by the shards in proportion to their keys, whichever shard's
    // clients happened to write when it arose. Owing only `extra` would
    // make each shard free in proportion to the writes its own clients
    // send, and the keys drift to the inverse of that (one shard at 30%).
    // The shards free a little more than the excess, not less: the limit
    // still holds. This shard's own account is settled.
    int64_t extra = paid - own;
    double per_key = static_cast<double>(extra) / static_cast<double>(mine);
    for (int i = 0; i < shards_->size(); ++i) {
      if (i == shard.id()) continue;
      uint64_t theirs = vol ? memory_->volatile_keys_of(i) : memory_->keys_of(i);
      if (theirs) memory_->AddOwed(i, static_cast<int64_t>(per_key * static_cast<double>(theirs)));
    }
    paid = own;
  }
  // Keep the credit of freeing more than owed (whole keys), within bounds:
  // it is what keeps the shards' shares in proportion over time.
  debt = std::max(debt - paid, -bound);
  shard.stats().evicted_keys += evicted;
  PublishShardKeys(*memory_, shard);
  memory_->PublishThread(shard.id());
  return freed;
}

bool Engine::AdmitOverLimit(Shard& shard) {
  int64_t max = config_->maxmemory.load(std::memory_order_relaxed);
  if (max <= 0) return true;
  memory_->PublishThread(shard.id());
  int64_t over = memory_->Used() - max;
  if (over <= 0) return true;
  Policy policy = CurrentPolicy();
  if (policy == Policy::kNoEviction) return false;
  // The shards evict their parts after their next command or in their cron;
  // refuse only when nothing anywhere can be evicted.
  return (IsVolatile(policy) ? memory_->volatile_keys() : memory_->keys()) > 0;
}

void Engine::AccountAndEvict(Shard& shard) {
  int64_t max = config_->maxmemory.load(std::memory_order_relaxed);
  if (max <= 0) return;
  memory_->PublishThread(shard.id());
  int64_t used = memory_->Used();
  memory_->NotePeak(used);  // at the limit, the peak is what matters: note every one
  if (used > max) EvictShare(shard, used - max);
}

void Engine::EvictBeforeGrowth(Shard& shard) {
  memory_->PublishThread(shard.id());
  int64_t over = memory_->Used() - config_->maxmemory.load(std::memory_order_relaxed);
  if (over > 0) EvictShare(shard, over, /*whole=*/true);
}

void Engine::EvictionCron(Shard& shard) {
  PublishShardKeys(*memory_, shard);
  memory_->PublishThread(shard.id());
  int64_t max = config_->maxmemory.load(std::memory_order_relaxed);
  if (max <= 0) return;
  // (What other shards freed for this one is paid here too.)
  EvictShare(shard, memory_->Used() - max);
}

cache::FsyncPolicy Engine::FsyncPolicyNow() const {
  std::string v = config_->Get("appendfsync").value_or("everysec");
  if (v == "always") return cache::FsyncPolicy::kAlways;
  if (v == "no") return cache::FsyncPolicy::kNo;
  return cache::FsyncPolicy::kEverysec;
}

void Engine::ApplyEvictionConfig() {
  if (cache_ && cache_->journal()) cache_->journal()->set_policy(FsyncPolicyNow());
  SetLfuKnobs(static_cast<int>(config_->lfu_log_factor.load()), static_cast<int>(config_->lfu_decay_time.load()));
  Policy old = CurrentPolicy();
  auto now = static_cast<Policy>(config_->maxmemory_policy.load());
  if (now == old) return;
  SetPolicy(now);
  if (!shards_ || IsS3Fifo(now) == IsS3Fifo(old)) return;
  // Entering S3-FIFO: every key joins the main queue; leaving it: drop the queues.
  bool rebuild = IsS3Fifo(now);
  for (int i = 0; i < shards_->size(); ++i) {
    Shard* s = &shards_->shard(i);
    s->Post([s, rebuild] {
      if (rebuild) s->evictor().Rebuild(s->dbs());
      else s->evictor().Clear();
    });
  }
}

}  // namespace larder
