// The global memory budget behind maxmemory. used_memory is what the
// allocator has handed out; reading jemalloc's global statistics costs tens
// of microseconds, too much before every command, so each shard thread
// publishes its own net allocation (jemalloc's per-thread allocated minus
// deallocated counters, a few loads) and Used() sums them. Memory allocated
// on one thread and freed on another makes single counters drift but not
// their sum; the cron corrects the sum against the global statistics for
// what other threads hold (the main thread, the allocator's own caches).
//
// Each shard also publishes how many keys it holds, so that eviction is
// spread over the shards in proportion to their share of the keyspace.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

namespace larder {

class MemoryBudget {
 public:
  explicit MemoryBudget(int shards);

  // On a shard's thread: publishes that thread's net allocation.
  void PublishThread(int shard);
  void PublishKeys(int shard, uint64_t keys, uint64_t volatile_keys);
  // Bytes in use, as of the last publications.
  int64_t Used() const;
  // Recomputes the part no shard publishes from the allocator's statistics;
  // returns the allocator's figure (used_memory).
  int64_t Calibrate();
  int64_t peak() const { return peak_.load(std::memory_order_relaxed); }
  void ResetPeak() { peak_.store(0, std::memory_order_relaxed); }

  uint64_t keys() const;
  uint64_t volatile_keys() const;
  uint64_t keys_of(int shard) const { return slots_[shard].keys.load(std::memory_order_relaxed); }
  uint64_t volatile_keys_of(int shard) const { return slots_[shard].volatile_keys.load(std::memory_order_relaxed); }

 private:
  struct alignas(64) Slot {
    std::atomic<int64_t> net{0};
    std::atomic<uint64_t> keys{0};
    std::atomic<uint64_t> volatile_keys{0};
  };
  int shards_;
  std::unique_ptr<Slot[]> slots_;
  std::atomic<int64_t> other_{0};
  std::atomic<int64_t> peak_{0};
};

}  // namespace larder
