// The cache module's server-wide part: sources (database connections),
// rules with their statistics, warming jobs, the write-behind journal and
// dead letters, the LISTEN threads for invalidation, and one ShardCache per
// shard (shard_cache.h).
//
// Rules are a copy-on-write list: readers take a snapshot (shards keep
// theirs until the version moves), writers replace it under the lock.
#pragma once

#include <absl/container/flat_hash_map.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "cache/host.h"
#include "cache/rules.h"
#include "cache/source.h"
#include "cache/write_behind.h"

namespace larder {
class Shard;
}

namespace larder::cache {

class ShardCache;

// Per-rule counters for INFO (any thread).
struct RuleStats {
  std::atomic<uint64_t> hits{0}, misses{0}, loads{0}, load_errors{0}, coalesced{0}, negative_hits{0},
      early_refreshes{0}, stale_served{0}, writes_through{0}, write_errors{0};
  // Loads whose row was not stored because the key changed while they ran;
  // batched loads (load-many) and the keys they carried.
  std::atomic<uint64_t> outdated_loads{0}, batches{0}, batched_keys{0};
  // Write-behind.
  std::atomic<uint64_t> writes_queued{0}, flush_batches{0}, rows_written{0}, retries{0}, dead_letters{0};
  // Load latency histogram: bucket i holds loads of [2^i, 2^(i+1)) us.
  std::atomic<uint64_t> latency[40] = {};
  void RecordLatency(int64_t us);
  int64_t LatencyPercentileUs(double p) const;
};

struct LiveRule {
  Rule rule;
  RuleStats stats;
  Source* source = nullptr;
  std::atomic<int> inflight{0};  // loads running (max-loads)
  std::mutex queue_mu;
  std::vector<std::function<void()>> queued;  // loads waiting for a slot
  std::unique_ptr<WriteQueue> writes;         // `write behind` rules
  // load-many: the misses gathered for the next batch (under batch_mu).
  struct BatchItem {
    std::string value;  // the placeholder's value
    std::function<void(QueryResult)> done;
  };
  std::mutex batch_mu;
  std::vector<BatchItem> batch;
  int64_t batch_due_us = 0;  // when the gathered batch goes (0: none gathered)
};

// A warming run: a query's rows stored as a rule's keys, in batches.
struct WarmJob {
  std::string pattern;
  std::string sql;
  std::atomic<uint64_t> rows_done{0}, rows_total{0}, rows_skipped{0};
  int64_t started_ms = 0;
  std::atomic<int64_t> finished_ms{0};
  std::atomic<int> state{0};  // 0 running, 1 done, 2 failed
  std::string error;          // set before state becomes 2
  // Flow control: the next batch waits until the shards stored this one.
  std::mutex mu;
  std::condition_variable cv;
  int outstanding = 0;
};

class CacheManager {
 public:
  CacheManager();
  ~CacheManager();

  // Creates the per-shard state (one ShardCache per shard); `host` must
  // outlive the manager's threads (StopSources).
  void AttachShards(Host* host, std::vector<Shard*> shards);
  // Shard `i`'s state: touched only on that shard's thread.
  ShardCache& shard(int i) { return *shards_[static_cast<size_t>(i)]; }
  Host* host() const { return host_; }

  // Config directives; fail with the reason (the caller names the line).
  bool AddSource(const SourceSpec& spec, std::string* err);
  bool AddRule(const Rule& rule, std::string* err);
  bool RemoveRule(std::string_view pattern);
  void StartSources();
  void StopSources();
  // Invalidation: each PostgreSQL source LISTENs on `channel`; a
  // notification's payload is a key (of database 0), dropped on its shard.
  void SetInvalidation(std::string channel) { channel_ = std::move(channel); }

  // The rules in order (a snapshot; safe to keep while rules change).
  std::shared_ptr<const std::vector<std::shared_ptr<LiveRule>>> rules() const;
  bool active() const { return active_.load(std::memory_order_relaxed); }
  // Bumped whenever the rules change (shards keep their own snapshot).
  uint64_t version() const { return version_.load(std::memory_order_acquire); }
  std::vector<SourceSpec> source_specs() const;
  Source* source(std::string_view name) const;
  int connections_per_source = 4;

  // Set once any CACHE FETCH lease was granted (closing clients then
  // release theirs).
  bool stopping() const { return stopping_.load(); }
  bool leases_granted() const { return leases_granted_.load(std::memory_order_relaxed); }
  void NoteLease() { leases_granted_.store(true, std::memory_order_relaxed); }

  // CACHE WARM / cache-warm: stores the rows of `sql` (the pattern's
  // placeholders as columns, then the value columns) as the rule's keys in
  // database 0, in batches, while the server keeps serving. False (with the
  // reason) if the rule is unknown or already warming.
  bool Warm(std::string_view pattern, std::string sql, std::string* err);
  std::vector<std::shared_ptr<WarmJob>> warm_jobs() const;
  // Whether a warming job runs (shards then note which keys change).
  bool warming() const { return warming_.load(std::memory_order_relaxed) > 0; }

  // Write-behind: reads back the journal in `dir` (each change to its rule's
  // queue; one no rule takes becomes a dead letter) and opens it for appends
  // and the dead letters; each shard hears (on its thread) how far its
  // records are durable. Needed once a `write behind` rule exists or the
  // journal has segments. Call after AttachShards.
  bool OpenWriteBehind(const std::string& dir, FsyncPolicy policy, std::string* err);
  Journal* journal() { return journal_open_.load() ? &journal_ : nullptr; }
  DeadLetters& dead_letters() { return dead_letters_; }
  static bool HasJournal(const std::string& dir);
  // Refused (with the reason) while the rule's writes are not all flushed.
  bool CanRemoveRule(std::string_view pattern, std::string* err) const;

  // Loads one key of `rule` within its max-loads limit: its load
  // statement, or (load-many) as part of the next batch.
  void Submit(const std::shared_ptr<LiveRule>& rule, Params params, std::function<void(QueryResult)> done);

  // INFO: the LISTEN connection of each PostgreSQL source.
  struct ListenState {
    std::atomic<bool> connected{false};
    std::atomic<uint64_t> gaps{0}, gap_keys{0};
  };
  const ListenState* listen_state(std::string_view source) const;

 private:
  mutable std::mutex mu_;
  std::vector<std::unique_ptr<Source>> sources_;
  std::shared_ptr<const std::vector<std::shared_ptr<LiveRule>>> rules_;
  std::atomic<bool> active_{false};
  std::atomic<uint64_t> version_{0};
  std::atomic<bool> leases_granted_{false};
  std::atomic<bool> stopping_{false};
  std::vector<std::shared_ptr<WarmJob>> warms_;
  std::atomic<int> warming_{0};
  std::string channel_;
  Host* host_ = nullptr;
  std::vector<std::unique_ptr<ShardCache>> shards_;
  std::vector<std::thread> listeners_;
  void Listen(SourceSpec spec, ListenState* state);
  // The listener is back after a gap: every shard treats the source's keys
  // as possibly stale (ShardCache::SourceGap).
  void CloseGap(const std::string& source, ListenState* state, bool reconnect);
  absl::flat_hash_map<std::string, std::unique_ptr<ListenState>> listen_states_;
  // Runs `start` within the rule's max-loads limit, now or when a load
  // ends; `start` calls its argument once its query has finished.
  void WithSlot(const std::shared_ptr<LiveRule>& rule, std::function<void(std::function<void()>)> start);
  // load-many: sends the rule's gathered batch (taken under batch_mu).
  void SendBatch(const std::shared_ptr<LiveRule>& rule, std::vector<LiveRule::BatchItem> items);
  // The thread that sends batches whose window has passed.
  void Batcher();
  std::thread batcher_;
  std::mutex batcher_mu_;
  std::condition_variable batcher_cv_;
  std::vector<std::weak_ptr<LiveRule>> gathering_;  // rules with a batch gathered
  bool started_ = false;
  Journal journal_;
  std::atomic<bool> journal_open_{false};
  DeadLetters dead_letters_;
};

}  // namespace larder::cache
