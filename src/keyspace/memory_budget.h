// The global memory budget behind maxmemory, and used_memory itself. Each
// shard thread publishes its own net allocation (jemalloc's per-thread
// allocated minus deallocated counters: a few loads, exact at the level of
// malloc/free calls, like Redis's own counter) and Used() sums them, plus
// what the rest of the process held at start-up. Memory allocated on one
// thread and freed on another makes single counters drift but not their sum.
// jemalloc's global statistics are not used for this: they also count what
// sits in thread caches, which moves by hundreds of kilobytes at a time.
// Without jemalloc (sanitizer builds) the cron recalibrates from mallinfo.
//
// Helper threads (database workers, write-behind flushers, the journal)
// allocate what shards free and the other way round (a loaded row, a queued
// change): they add their own net allocation to one shared figure too, or
// the shards' sum would drift with every load and every write-behind write.
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
  // At start-up (and in the cron when per-thread counters are missing):
  // sets the part no shard publishes from the allocator's statistics.
  // Returns Used().
  int64_t Calibrate();
  // In the cron: refreshes the peak, recalibrating only without counters.
  void Tick();
  static bool HasThreadCounters();
  // used_memory as INFO reports it.
  size_t UsedMemory() const;
  int64_t peak() const { return peak_.load(std::memory_order_relaxed); }
  void ResetPeak() { peak_.store(Used(), std::memory_order_relaxed); }
  void NotePeak(int64_t used) {
    int64_t p = peak_.load(std::memory_order_relaxed);
    while (used > p && !peak_.compare_exchange_weak(p, used, std::memory_order_relaxed)) {
    }
  }

  // On any other thread (after a unit of work): adds the change in that
  // thread's net allocation since its last call to the helpers' figure.
  // No-op before a budget exists.
  static void PublishHelperThread();
  // The budget helper threads publish to (the server's).
  static void SetCurrent(MemoryBudget* b);

  // Eviction owed by a shard for another that freed its part of an excess
  // for it (so that the keys evicted stay in proportion to each shard's).
  void AddOwed(int shard, int64_t bytes) { slots_[shard].owed.fetch_add(bytes, std::memory_order_relaxed); }
  int64_t TakeOwed(int shard) {
    auto& owed = slots_[shard].owed;
    return owed.load(std::memory_order_relaxed) ? owed.exchange(0, std::memory_order_relaxed) : 0;
  }
  int shards() const { return shards_; }

  uint64_t keys() const;
  uint64_t volatile_keys() const;
  uint64_t keys_of(int shard) const { return slots_[shard].keys.load(std::memory_order_relaxed); }
  uint64_t volatile_keys_of(int shard) const { return slots_[shard].volatile_keys.load(std::memory_order_relaxed); }

 private:
  struct alignas(64) Slot {
    std::atomic<int64_t> net{0};  // since the thread's first publication
    int64_t base = 0;             // owned by the shard's thread
    bool based = false;
    std::atomic<uint64_t> keys{0};
    std::atomic<uint64_t> volatile_keys{0};
    std::atomic<int64_t> owed{0};
  };
  int shards_;
  std::unique_ptr<Slot[]> slots_;
  alignas(64) std::atomic<int64_t> helpers_{0};  // helper threads' net allocations, summed
  std::atomic<int64_t> other_{0};
  std::atomic<int64_t> peak_{0};
};

}  // namespace larder
