#include "keyspace/memory_budget.h"

#include <algorithm>

#include "keyspace/memory.h"

#ifdef LARDER_JEMALLOC
#include <jemalloc/jemalloc.h>
#endif

namespace larder {

namespace {
// Net bytes allocated by the calling thread (0 without jemalloc: the
// calibration then carries the whole figure).
int64_t ThreadNet() {
#ifdef LARDER_JEMALLOC
  thread_local uint64_t* allocated = nullptr;
  thread_local uint64_t* deallocated = nullptr;
  thread_local bool looked = false;
  if (!looked) {
    looked = true;
    size_t sz = sizeof(allocated);
    if (mallctl("thread.allocatedp", &allocated, &sz, nullptr, 0) != 0) allocated = nullptr;
    sz = sizeof(deallocated);
    if (mallctl("thread.deallocatedp", &deallocated, &sz, nullptr, 0) != 0) deallocated = nullptr;
  }
  if (!allocated || !deallocated) return 0;
  return static_cast<int64_t>(*allocated - *deallocated);
#else
  return 0;
#endif
}
}  // namespace

namespace {
std::atomic<MemoryBudget*> g_current{nullptr};
}  // namespace

void MemoryBudget::SetCurrent(MemoryBudget* b) { g_current.store(b); }

void MemoryBudget::PublishHelperThread() {
  MemoryBudget* b = g_current.load(std::memory_order_relaxed);
  if (!b || !HasThreadCounters()) return;
  // What the thread held before its first call counts in the start-up
  // figure (or belongs to a budget before this one).
  thread_local MemoryBudget* seen = nullptr;
  thread_local int64_t published = 0;
  int64_t net = ThreadNet();
  if (seen != b) {
    seen = b;
    published = net;
    return;
  }
  b->helpers_.fetch_add(net - published, std::memory_order_relaxed);
  published = net;
}

MemoryBudget::MemoryBudget(int shards) : shards_(shards), slots_(new Slot[static_cast<size_t>(shards)]) {}

void MemoryBudget::PublishThread(int shard) {
  Slot& s = slots_[shard];
  int64_t net = ThreadNet();
  if (!s.based) {  // what the thread held before counts in the start-up figure
    s.base = net;
    s.based = true;
  }
  s.net.store(net - s.base, std::memory_order_relaxed);
}

size_t MemoryBudget::UsedMemory() const {
  if (!HasThreadCounters()) return ReadMemory().used;
  return static_cast<size_t>(std::max<int64_t>(0, Used()));
}

void MemoryBudget::PublishKeys(int shard, uint64_t keys, uint64_t volatile_keys) {
  slots_[shard].keys.store(keys, std::memory_order_relaxed);
  slots_[shard].volatile_keys.store(volatile_keys, std::memory_order_relaxed);
}

int64_t MemoryBudget::Used() const {
  // Without per-thread counters, ask the allocator each time (sanitizer
  // builds: slower, but exact enough for the maxmemory tests).
  if (!HasThreadCounters()) return static_cast<int64_t>(AllocatedBytes());
  int64_t sum = other_.load(std::memory_order_relaxed) + helpers_.load(std::memory_order_relaxed);
  for (int i = 0; i < shards_; ++i) sum += slots_[i].net.load(std::memory_order_relaxed);
  return sum;
}

bool MemoryBudget::HasThreadCounters() {
#ifdef LARDER_JEMALLOC
  return true;
#else
  return false;
#endif
}

int64_t MemoryBudget::Calibrate() {
  int64_t total = static_cast<int64_t>(ReadMemory().used);
  int64_t published = helpers_.load(std::memory_order_relaxed);
  for (int i = 0; i < shards_; ++i) published += slots_[i].net.load(std::memory_order_relaxed);
  other_.store(total - published, std::memory_order_relaxed);
  Tick();
  return Used();
}

void MemoryBudget::Tick() {
  if (!HasThreadCounters()) {
    int64_t total = static_cast<int64_t>(ReadMemory().used);
    other_.store(total, std::memory_order_relaxed);
  }
  NotePeak(Used());
}

uint64_t MemoryBudget::keys() const {
  uint64_t n = 0;
  for (int i = 0; i < shards_; ++i) n += slots_[i].keys.load(std::memory_order_relaxed);
  return n;
}

uint64_t MemoryBudget::volatile_keys() const {
  uint64_t n = 0;
  for (int i = 0; i < shards_; ++i) n += slots_[i].volatile_keys.load(std::memory_order_relaxed);
  return n;
}

}  // namespace larder
