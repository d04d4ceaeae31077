// Active defragmentation: when and how hard it runs.
//
// Shard 0's cron decides once a second, from the allocator's fragmentation
// (allocator_active against allocator_allocated, as Redis's
// allocator_frag_ratio), whether a pass starts and what share of each
// shard's time it may take: active-defrag-cycle-min at
// active-defrag-threshold-lower percent of fragmentation, rising linearly
// to active-defrag-cycle-max at -upper; a running pass may be made more
// aggressive, never less. Nothing starts below active-defrag-ignore-bytes
// of fragmentation.
//
// A pass walks every database of every shard once. Each shard works on its
// own keyspace on its own thread, in slices run by its 10 ms timer: a slice
// takes cpu% of those 10 ms, so the share holds whatever `hz` is. When the
// last shard is done, another pass starts at once if fragmentation is still
// over the thresholds, as in Redis. The walk
// itself (which blocks move) is keyspace/defrag.h's; a pass that meets a
// CONFIG SET activedefrag no stops where it is.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "keyspace/defrag.h"

namespace larder {

class Config;
class Shard;

class ActiveDefrag {
 public:
  ActiveDefrag(Config* config, int num_shards);
  ~ActiveDefrag();

  // Shard 0's cron (every 100 ms), or a job that holds every shard parked;
  // acts once a second.
  void Decide();
  // A shard's 10 ms timer: one slice of the running pass on `shard`'s
  // keyspace, 1/`share` of the slice's usual length (a parked job runs every
  // shard's slice on one thread). Returns its length in microseconds (0:
  // nothing ran).
  int64_t RunSlice(Shard& shard, int share = 1);

  // INFO's active_defrag_running: the running pass's CPU percent, 0 if none.
  int running() const { return running_cpu_.load(std::memory_order_relaxed); }
  // INFO's active_defrag_* counters, summed over the shards (any thread).
  DefragCounters Totals() const;
  // CONFIG RESETSTAT.
  void ResetStats();

 private:
  struct ShardPass;
  // Starts a pass, or speeds up the running one, if fragmentation calls
  // for it. Under mu_.
  void Evaluate();

  Config* config_;
  std::atomic<int> running_cpu_{0};
  // Bumped when a pass starts: a shard that sees a new one starts over.
  std::atomic<uint64_t> generation_{0};
  // Shards still walking the running pass; the last to finish ends it.
  std::atomic<int> pending_{0};
  int64_t last_decision_ms_ = 0;  // shard 0's thread, or a parked job's
  std::mutex mu_;                 // a pass starts or speeds up under it
  std::vector<std::unique_ptr<ShardPass>> shards_;
};

}  // namespace larder
