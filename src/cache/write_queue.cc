// WriteQueue: a rule's queue of changes and the flusher thread that writes them in batches.
#include "cache/write_behind.h"

#include <algorithm>
#include <chrono>
#include <future>

#include "cache/manager.h"
#include "common/clock.h"
#include "common/log.h"
#include "keyspace/memory_budget.h"

namespace larder::cache {

// ---- WriteQueue ----

void WriteQueue::Add(Change c) {
  std::string id = KeyId(c.db, c.key);
  bool wake = false;
  {
    std::lock_guard lock(mu_);
    auto it = pending_.find(id);
    if (it == pending_.end()) {
      uint64_t seq = c.seq;
      int64_t at = c.at_ms;
      pending_.emplace(id, Pending{std::move(c), seq, at});
      order_.push_back(std::move(id));
      // The flusher waits for the first change (to time the delay) or for a
      // full batch; while it is busy it looks again on its own.
      wake = pending_.size() == 1 || pending_.size() == static_cast<size_t>(rule_->rule.write_batch);
    } else {
      it->second.change = std::move(c);  // the last value wins
    }
  }
  rule_->stats.writes_queued.fetch_add(1, std::memory_order_relaxed);
  if (wake) cv_.notify_one();
}

std::optional<Change> WriteQueue::Lookup(int db, std::string_view key) const {
  std::string id = KeyId(db, key);
  std::lock_guard lock(mu_);
  auto it = pending_.find(id);
  if (it != pending_.end()) return it->second.change;
  for (const auto& p : inflight_)
    if (p.change.db == db && p.change.key == key) return p.change;
  return std::nullopt;
}

void WriteQueue::AppendLive(std::vector<Change>* out) const {
  std::lock_guard lock(mu_);
  for (const auto& p : inflight_) out->push_back(p.change);
  for (const auto& id : order_) out->push_back(pending_.at(id).change);
}

uint64_t WriteQueue::needed() const {
  std::lock_guard lock(mu_);
  uint64_t n = UINT64_MAX;
  for (const auto& p : inflight_) n = std::min(n, p.first_seq);
  // order_ is oldest first: its front has the lowest first_seq.
  if (!order_.empty()) n = std::min(n, pending_.at(order_.front()).first_seq);
  return n;
}

size_t WriteQueue::depth() const {
  std::lock_guard lock(mu_);
  return pending_.size() + inflight_.size();
}

int64_t WriteQueue::lag_ms() const {
  std::lock_guard lock(mu_);
  int64_t oldest = INT64_MAX;
  for (const auto& p : inflight_) oldest = std::min(oldest, p.first_at_ms);
  if (!order_.empty()) oldest = std::min(oldest, pending_.at(order_.front()).first_at_ms);
  return oldest == INT64_MAX ? 0 : std::max<int64_t>(0, UnixTimeMs() - oldest);
}

void WriteQueue::Start() {
  {
    std::lock_guard lock(mu_);
    stopping_ = false;
  }
  if (!thread_.joinable()) thread_ = std::thread([this] { Flusher(); });
}

void WriteQueue::Stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool WriteQueue::Sleep(int64_t ms) {
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, std::chrono::milliseconds(ms), [this] { return stopping_; });
  return !stopping_;
}

void WriteQueue::Flusher() {
  const Rule& rule = rule_->rule;
  size_t batch_size = static_cast<size_t>(rule.write_batch);
  std::vector<Pending> batch;
  for (;;) {
    batch.clear();
    {
      std::unique_lock lock(mu_);
      for (;;) {
        if (stopping_) return;
        if (!order_.empty()) {
          int64_t due = pending_.at(order_.front()).first_at_ms + rule.write_delay_ms;
          int64_t now = UnixTimeMs();
          if (pending_.size() >= batch_size || now >= due) break;
          cv_.wait_for(lock, std::chrono::milliseconds(std::min<int64_t>(due - now, 1000)));
        } else {
          cv_.wait(lock);
        }
      }
      while (!order_.empty() && batch.size() < batch_size) {
        auto it = pending_.find(order_.front());
        order_.pop_front();
        batch.push_back(std::move(it->second));
        pending_.erase(it);
      }
      inflight_.swap(batch);
    }
    // inflight_ is read here without the lock: only Lookup reads it too,
    // and nothing changes it until the batch is done.
    bool finished = Flush(inflight_);
    {
      std::lock_guard lock(mu_);
      inflight_.clear();
    }
    // The changes were allocated on the shards and are freed here.
    MemoryBudget::PublishHelperThread();
    if (!finished) return;
  }
}

ExecResult WriteQueue::Exec(const std::vector<Pending>& batch, size_t from, size_t count) {
  const Rule& rule = rule_->rule;
  std::vector<Statement> stmts;
  for (size_t i = from; i < from + count; ++i) {
    const Change& c = batch[i].change;
    const std::string& sql = c.del ? rule.delete_sql : rule.store_sql;
    if (sql.empty()) continue;  // a delete with no delete statement
    Statement st{sql, {}};
    Params placeholders;
    rule.pattern.Match(c.key, &placeholders);
    for (auto& [name, value] : placeholders) st.params.emplace_back(name, std::move(value));
    if (!c.del)
      for (const auto& v : c.values) st.params.push_back(v);
    stmts.push_back(std::move(st));
  }
  if (stmts.empty()) {
    ExecResult ok;
    ok.ok = true;
    return ok;
  }
  std::promise<ExecResult> done;
  auto fut = done.get_future();
  rule_->source->Exec(std::move(stmts), rule.load_timeout_ms,
                      [&done](ExecResult r) { done.set_value(std::move(r)); });
  return fut.get();
}

bool WriteQueue::Flush(const std::vector<Pending>& batch) {
  RuleStats& stats = rule_->stats;
  int64_t backoff = 100;
  // [from, from + count) is tried as one transaction; after a permanent
  // failure of a batch, its changes go one by one to find the refused ones.
  size_t from = 0, count = batch.size();
  bool singly = false;
  while (from < batch.size()) {
    ExecResult r = Exec(batch, from, count);
    if (r.ok) {
      stats.flush_batches.fetch_add(1, std::memory_order_relaxed);
      stats.rows_written.fetch_add(count, std::memory_order_relaxed);
      if (on_written_)
        for (size_t i = from; i < from + count; ++i) on_written_(batch[i].change);
      from += count;
      count = singly ? 1 : batch.size() - from;
      backoff = 100;
      continue;
    }
    stats.write_errors.fetch_add(1, std::memory_order_relaxed);
    if (r.transient) {
      stats.retries.fetch_add(1, std::memory_order_relaxed);
      if (!Sleep(backoff)) return false;  // stopping: the journal still has the changes
      backoff = std::min<int64_t>(backoff * 2, 5'000);
      continue;
    }
    if (count > 1) {
      singly = true;
      count = 1;
      continue;
    }
    const Change& c = batch[from].change;
    LOG_WARNING("Write-behind '{}': the database refused the change to '{}', kept as a dead letter: {}",
                rule_->rule.pattern.text(), c.key, r.error);
    stats.dead_letters.fetch_add(1, std::memory_order_relaxed);
    dead_->Add(DeadLetter{0, rule_->rule.pattern.text(), c, r.error, UnixTimeMs()});
    from += 1;
  }
  return true;
}

}  // namespace larder::cache
