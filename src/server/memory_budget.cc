#include "server/memory_budget.h"

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

// A helper thread's claim on a slot; given back (its figure kept in
// retired_) when the thread exits.
struct HelperSlotOwner {
  MemoryBudget* budget = nullptr;
  int slot = -1;
  int64_t base = 0;
  ~HelperSlotOwner() {
    if (!budget || slot < 0) return;
    auto& h = budget->helpers_[slot];
    budget->retired_.fetch_add(h.net.exchange(0), std::memory_order_relaxed);
    h.taken.store(false);
  }
};

void MemoryBudget::PublishHelperThread() {
  MemoryBudget* b = g_current.load(std::memory_order_relaxed);
  if (!b || !HasThreadCounters()) return;
  thread_local HelperSlotOwner owner;
  if (owner.budget != b) {
    owner = HelperSlotOwner{};
    for (int i = 0; i < kHelperSlots; ++i) {
      bool expected = false;
      if (b->helpers_[i].taken.compare_exchange_strong(expected, true)) {
        owner.budget = b;
        owner.slot = i;
        owner.base = ThreadNet();  // what it held before counts in the start-up figure
        break;
      }
    }
    if (owner.slot < 0) return;  // more helper threads than slots: not counted
  }
  b->helpers_[owner.slot].net.store(ThreadNet() - owner.base, std::memory_order_relaxed);
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
  int64_t sum = other_.load(std::memory_order_relaxed) + retired_.load(std::memory_order_relaxed);
  for (int i = 0; i < shards_; ++i) sum += slots_[i].net.load(std::memory_order_relaxed);
  for (const auto& h : helpers_) sum += h.net.load(std::memory_order_relaxed);
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
  int64_t published = retired_.load(std::memory_order_relaxed);
  for (int i = 0; i < shards_; ++i) published += slots_[i].net.load(std::memory_order_relaxed);
  for (const auto& h : helpers_) published += h.net.load(std::memory_order_relaxed);
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
