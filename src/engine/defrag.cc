#include "engine/defrag.h"

#include <algorithm>
#include <mutex>

#include "common/clock.h"
#include "config/config.h"
#include "keyspace/memory.h"
#include "shard/shard.h"

namespace larder {

// One shard's place in the pass and its counters (written by its thread,
// read by INFO's).
struct ActiveDefrag::ShardPass {
  uint64_t generation = 0;
  int db = 0;
  uint64_t cursor = 0;
  bool done = true;
  std::atomic<uint64_t> hits{0}, misses{0}, key_hits{0}, key_misses{0};
};

ActiveDefrag::ActiveDefrag(Config* config, int num_shards) : config_(config) {
  for (int i = 0; i < num_shards; ++i) shards_.push_back(std::make_unique<ShardPass>());
}

ActiveDefrag::~ActiveDefrag() = default;

namespace {

// The CPU percent for `frag_pct` percent of fragmentation: cycle-min at the
// lower threshold, cycle-max at the upper, linear between, clamped.
int CycleFor(double frag_pct, const Config& c) {
  double lower = static_cast<double>(c.active_defrag_threshold_lower.load());
  double upper = static_cast<double>(c.active_defrag_threshold_upper.load());
  int lo = static_cast<int>(c.active_defrag_cycle_min.load());
  int hi = static_cast<int>(c.active_defrag_cycle_max.load());
  if (hi < lo) hi = lo;
  if (upper <= lower) return frag_pct >= upper ? hi : lo;
  double t = std::clamp((frag_pct - lower) / (upper - lower), 0.0, 1.0);
  return std::clamp(lo + static_cast<int>(t * (hi - lo)), lo, hi);
}

}  // namespace

void ActiveDefrag::Decide() {
  if (!config_->activedefrag.load(std::memory_order_relaxed)) {
    running_cpu_.store(0, std::memory_order_relaxed);
    return;
  }
  int64_t now = MonotonicUs() / 1000;
  if (now - last_decision_ms_ < 1000) return;
  last_decision_ms_ = now;
  std::lock_guard lock(mu_);
  Evaluate();
}

void ActiveDefrag::Evaluate() {
  // (Also from the shard that ends a pass: activedefrag may have been turned
  // off since its slice began.)
  if (!config_->activedefrag.load(std::memory_order_relaxed)) return;
  MemoryReport m = ReadMemory();
  if (m.allocator_allocated == 0 || m.allocator_active <= m.allocator_allocated) return;
  double frag_pct = static_cast<double>(m.allocator_active) / static_cast<double>(m.allocator_allocated) * 100 - 100;
  size_t frag_bytes = m.allocator_active - m.allocator_allocated;
  int running = running_cpu_.load();
  if (running == 0) {
    if (frag_pct < static_cast<double>(config_->active_defrag_threshold_lower.load()) ||
        frag_bytes < static_cast<size_t>(config_->active_defrag_ignore_bytes.load()))
      return;
    pending_.store(static_cast<int>(shards_.size()));
    generation_.fetch_add(1);
    running_cpu_.store(CycleFor(frag_pct, *config_));
    return;
  }
  // A running pass only ever speeds up.
  int cpu = CycleFor(frag_pct, *config_);
  if (cpu > running) running_cpu_.store(cpu);
}

int64_t ActiveDefrag::RunSlice(Shard& shard, int share) {
  int cpu = running_cpu_.load(std::memory_order_relaxed);
  if (cpu == 0) [[likely]] return 0;
  ShardPass& p = *shards_[static_cast<size_t>(shard.id())];
  uint64_t gen = generation_.load();
  if (p.generation != gen) {
    p.generation = gen;
    p.db = 0;
    p.cursor = 0;
    p.done = false;
  }
  if (p.done) return 0;
  if (!config_->activedefrag.load(std::memory_order_relaxed)) return 0;
  int64_t start = MonotonicUs();
  int64_t budget_us = cpu * 100 / std::max(share, 1);  // cpu% of the 10 ms between slices
  DefragCounters c;
  auto max_fields = static_cast<size_t>(config_->active_defrag_max_scan_fields.load(std::memory_order_relaxed));
  auto& dbs = shard.dbs();
  for (int steps = 0;; ++steps) {
    if (p.db >= static_cast<int>(dbs.size())) {
      p.done = true;
      if (p.generation == generation_.load() && pending_.fetch_sub(1) == 1) {
        // The last shard done: as Redis, another pass starts at once if
        // fragmentation still calls for one (so active_defrag_running
        // reads 0 only once it no longer does).
        std::lock_guard lock(mu_);
        running_cpu_.store(0);
        Evaluate();
      }
      break;
    }
    p.cursor = DefragStep(dbs[static_cast<size_t>(p.db)], p.cursor, max_fields, &c);
    if (p.cursor == 0) ++p.db;
    if ((steps & 15) == 15 && MonotonicUs() - start >= budget_us) break;
  }
  p.hits.fetch_add(c.hits, std::memory_order_relaxed);
  p.misses.fetch_add(c.misses, std::memory_order_relaxed);
  p.key_hits.fetch_add(c.key_hits, std::memory_order_relaxed);
  p.key_misses.fetch_add(c.key_misses, std::memory_order_relaxed);
  return MonotonicUs() - start;
}

DefragCounters ActiveDefrag::Totals() const {
  DefragCounters t;
  for (const auto& p : shards_) {
    t.hits += p->hits.load(std::memory_order_relaxed);
    t.misses += p->misses.load(std::memory_order_relaxed);
    t.key_hits += p->key_hits.load(std::memory_order_relaxed);
    t.key_misses += p->key_misses.load(std::memory_order_relaxed);
  }
  return t;
}

void ActiveDefrag::ResetStats() {
  for (auto& p : shards_) {
    p->hits.store(0);
    p->misses.store(0);
    p->key_hits.store(0);
    p->key_misses.store(0);
  }
}

}  // namespace larder
