#include "shard/shard.h"

#include "common/clock.h"
#include "shard/shard_set.h"

namespace larder {

namespace {
thread_local Shard* tl_shard = nullptr;
constexpr int64_t kExpireCronMs = 10;      // 100 Hz: small slices, no latency spikes
constexpr int64_t kExpireBudgetUs = 1000;  // per tick; 10% of one core at most
}  // namespace

std::atomic<bool> Shard::active_expire_enabled{true};

Shard* CurrentShard() { return tl_shard; }
void SetCurrentShard(Shard* s) { tl_shard = s; }

Shard::Shard(int id, ShardSet* set, int num_dbs) : id_(id), set_(set), rng_(0x1a2d3e + id) {
  dbs_.reserve(static_cast<size_t>(num_dbs));
  for (int i = 0; i < num_dbs; ++i) {
    dbs_.emplace_back(&stats_);
    dbs_.back().AttachEvictor(&evictor_, i);
  }
}

Shard::~Shard() { Join(); }

void Shard::Post(Task task) {
  {
    std::lock_guard lock(queue_mu_);
    queue_.push_back(std::move(task));
  }
  loop_.Wake();
}

void Shard::PostBatch(std::vector<Task>* tasks) {
  if (tasks->empty()) return;
  {
    std::lock_guard lock(queue_mu_);
    for (auto& t : *tasks) queue_.push_back(std::move(t));
  }
  tasks->clear();
  loop_.Wake();
}

void Shard::DrainQueue() {
  // Tasks may post more tasks to this shard; loop until the queue stays empty.
  for (int round = 0; round < 64; ++round) {
    {
      std::lock_guard lock(queue_mu_);
      if (queue_.empty()) return;
      draining_.swap(queue_);
    }
    RefreshCommandTime();
    for (auto& t : draining_) t();
    draining_.clear();
  }
  // Still more: the loop polls instead of sleeping (has-pending check) and
  // comes back after serving I/O.
}

void Shard::Start(absl::AnyInvocable<void()> init) {
  thread_ = std::thread([this, init = std::move(init)]() mutable {
    SetCurrentShard(this);
    RefreshCommandTime();
    loop_.SetAfterEvents([this] {
      DrainQueue();
      if (after_events_hook_) after_events_hook_();
      set_->FlushOutbox();
    });
    loop_.SetHasPendingWork([this] {
      std::lock_guard lock(queue_mu_);
      return !queue_.empty();
    });
    loop_.RunEvery(kExpireCronMs, [this] { ExpireCron(); });
    init();
    loop_.Run();
    DrainQueue();
  });
}

void Shard::Join() {
  if (thread_.joinable()) thread_.join();
}

void Shard::ExpireCron() {
  RefreshCommandTime();
  for (auto& db : dbs_) {
    db.table().RehashSteps(100);
    db.table().MaybeShrink();
  }
  if (!active_expire_enabled.load(std::memory_order_relaxed)) return;
  int64_t now = CommandTimeMs();
  int64_t start = MonotonicUs();
  // Spread the budget over the databases that have keys with a TTL.
  for (size_t i = 0; i < dbs_.size(); ++i) {
    size_t idx = (expire_db_ + i) % dbs_.size();
    int64_t left = kExpireBudgetUs - (MonotonicUs() - start);
    if (left <= 0) {
      expire_db_ = idx;
      return;
    }
    dbs_[idx].ActiveExpireCycle(now, left);
  }
}

}  // namespace larder
