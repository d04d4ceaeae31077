#include "shard/shard.h"

#include <algorithm>

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
    dbs_.back().AttachEvents(&events_);
    dbs_.back().AttachLazyFree(&lazy_free_);
  }
}

Shard::~Shard() { Join(); }

void Shard::PostAfter(Task task, int from, uint64_t seq) {
  {
    std::lock_guard lock(queue_mu_);
    queue_.push_back(Queued{std::move(task), from, seq});
    queued_.store(true, std::memory_order_relaxed);
  }
  loop_.Wake();
}

bool Shard::HasPendingWork() {
  if (queued_.load(std::memory_order_relaxed) || !after_io_.empty()) return true;
  return !set_->MailboxesEmpty(id_);
}

void Shard::DrainQueue() {
  // Work may send more work to this shard; loop until it stays quiet.
  for (int round = 0; round < 64; ++round) {
    size_t ran = set_->DrainMailboxes(id_);
    if (queued_.load(std::memory_order_relaxed)) {
      {
        std::lock_guard lock(queue_mu_);
        draining_.swap(queue_);
        queued_.store(false, std::memory_order_relaxed);
      }
      RefreshCommandTime();
      for (auto& q : draining_) {
        // What the sender sent before this task runs first.
        if (q.from >= 0) set_->DrainMailboxUpTo(q.from, id_, q.seq);
        q.task();
      }
      ran += draining_.size();
      draining_.clear();
    }
    if (ran == 0) return;
  }
  // Still more: the loop polls instead of sleeping (HasPendingWork) and
  // comes back after serving I/O.
}

void Shard::Start(absl::AnyInvocable<void()> init) {
  thread_ = std::thread([this, init = std::move(init)]() mutable {
    SetCurrentShard(this);
    RefreshCommandTime();
    // Messages that came in while the loop slept run before the sockets it
    // woke for: what another thread read before them goes first (a client
    // that blocks there before a push read here, engine/blocking.h).
    loop_.SetOnWake([this] {
      RefreshCommandTime();
      DrainQueue();
    });
    loop_.SetAfterEvents([this] {
      // What PostAfterIo deferred past the last poll; what it posts again
      // waits for the next one.
      running_after_io_.swap(after_io_);
      for (Task& t : running_after_io_) t();
      running_after_io_.clear();
      if (!timed_.empty()) RunTimed();
      DrainQueue();
      if (after_events_hook_) after_events_hook_();
      set_->FlushOutbox();
    });
    // Just before the loop would sleep: wake whoever this thread sent to
    // (timers run after the after-events hook and may send too).
    loop_.SetHasPendingWork([this] {
      set_->FlushOutbox();
      return HasPendingWork();
    });
    loop_.RunEvery(kExpireCronMs, [this] { ExpireCron(); });
    init();
    loop_.Run();
    DrainQueue();
  });
}

void Shard::RunTimed() {
  int64_t now = MonotonicUs();
  std::vector<Timed> due;
  for (size_t i = 0; i < timed_.size();) {
    if (timed_[i].at_us <= now) {
      due.push_back(std::move(timed_[i]));
      timed_[i] = std::move(timed_.back());
      timed_.pop_back();
    } else {
      ++i;
    }
  }
  for (Timed& t : due) t.task();
  // What those tasks posted for later is in the list too.
  int64_t next = INT64_MAX;
  for (const Timed& t : timed_) next = std::min(next, t.at_us);
  if (next != INT64_MAX) loop_.WakeBy(next);
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
