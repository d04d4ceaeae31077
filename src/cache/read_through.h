// Read-through: a read of a missing key that matches a rule loads it from the
// rule's source, once, however many clients ask at the same moment.
//
//   read command on the key's shard ──► Db::Find misses ──► OnMiss():
//     rule matches? negatively cached? a load already running (coalesce)?
//     else start one on the source's workers
//   the command's provisional reply is dropped; a ReadWaiter (the command,
//   its client, where its reply goes) waits on the key(s)
//   load done ──► posted to the key's shard ──► value stored (TTL + jitter)
//     or "no row" remembered for negative-ttl ──► each waiter's command runs
//     again there and its reply goes to the client, in pipeline order
//
// A loaded key remembers when it turns stale (its TTL) and how long its load
// took. Inside the grace period after that, reads get the stale value at
// once while one reload runs (stale-while-revalidate); with refresh-ahead,
// a read before then starts a reload early with a probability that grows as
// expiry nears, scaled by the load time (XFetch), so hot keys never miss.
//
// CacheManager (one per server) holds the sources, the rules and their
// statistics; ShardCache (one per shard) the running loads, the negative
// cache and the per-key freshness data. Everything in ShardCache is touched
// only by its shard's thread.
#pragma once

#include <absl/container/flat_hash_map.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "cache/rules.h"
#include "cache/source.h"
#include "cache/write_behind.h"
#include "keyspace/db.h"

namespace larder {

class Db;
class Server;
class Shard;
struct Entry;
struct CommandSpec;

namespace cache {

// Per-rule counters for INFO (any thread).
struct RuleStats {
  std::atomic<uint64_t> hits{0}, misses{0}, loads{0}, load_errors{0}, coalesced{0}, negative_hits{0},
      early_refreshes{0}, stale_served{0}, writes_through{0}, write_errors{0};
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

  // Config directives; fail with the reason (the caller names the line).
  bool AddSource(const SourceSpec& spec, std::string* err);
  bool AddRule(const Rule& rule, std::string* err);
  bool RemoveRule(std::string_view pattern);
  void StartSources();
  void StopSources();
  // Invalidation: each PostgreSQL source LISTENs on `channel`; a
  // notification's payload is a key, handed to `fn` (any thread).
  void SetInvalidation(std::string channel, std::function<void(std::string key)> fn);

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
  bool Warm(Server* server, std::string_view pattern, std::string sql, std::string* err);
  std::vector<std::shared_ptr<WarmJob>> warm_jobs() const;

  // Write-behind: reads back the journal in `dir` (each change to its rule's
  // queue; one no rule takes becomes a dead letter) and opens it for appends
  // and the dead letters. `durable(shard, seq)` runs on the journal thread.
  // Needed once a `write behind` rule exists or the journal has segments.
  bool OpenWriteBehind(const std::string& dir, FsyncPolicy policy, int shards,
                       std::function<void(int, uint64_t)> durable, std::string* err);
  Journal* journal() { return journal_open_.load() ? &journal_ : nullptr; }
  DeadLetters& dead_letters() { return dead_letters_; }
  static bool HasJournal(const std::string& dir);
  // Refused (with the reason) while the rule's writes are not all flushed.
  bool CanRemoveRule(std::string_view pattern, std::string* err) const;

  // Runs `sql` for `rule` within its max-loads limit.
  void Submit(const std::shared_ptr<LiveRule>& rule, Params params, std::function<void(QueryResult)> done);

 private:
  mutable std::mutex mu_;
  std::vector<std::unique_ptr<Source>> sources_;
  std::shared_ptr<const std::vector<std::shared_ptr<LiveRule>>> rules_;
  std::atomic<bool> active_{false};
  std::atomic<uint64_t> version_{0};
  std::atomic<bool> leases_granted_{false};
  std::atomic<bool> stopping_{false};
  std::vector<std::shared_ptr<WarmJob>> warms_;
  std::string channel_;
  std::function<void(std::string)> on_invalidate_;
  std::vector<std::thread> listeners_;
  void Listen(SourceSpec spec);
  bool started_ = false;
  Journal journal_;
  std::atomic<bool> journal_open_{false};
  DeadLetters dead_letters_;
};

// Where a deferred command's reply goes.
struct LateTarget {
  int client_shard = 0;
  uint64_t client_id = 0;
  int group_shard = -1;  // -1: the client waits for this one reply (not in a batch)
  uint32_t index = 0;    // the command's index in its group
};

class ShardCache : public ReadHook {
 public:
  ShardCache(Server* server, Shard* shard);

  // Around a read command's handler: Begin() arms the hooks; End() says
  // whether the command touched keys that are loading (its reply must wait).
  void Begin(const CommandSpec* spec, std::span<const std::string_view> args, int db, int resp);
  bool End(const LateTarget& target);

  void Complete(const std::string& id, int db, const std::string& key, QueryResult r);
  // A database change names this key: drop it (the next read loads it).
  void Invalidate(int db, const std::string& key);
  // A warmed row: stored as a load would store it.
  void StoreWarm(int db, const std::string& key, const std::shared_ptr<LiveRule>& rule, const QueryResult& r);

  // Hooks from Db::Find (armed commands only).
  bool OnMiss(Db& db, std::string_view key) override;
  void OnHit(Db& db, Entry* e) override;

  // INFO: loads running on this shard.
  size_t pending() const { return pending_.size(); }

  // Write-through: a write command on a key of a `write through` rule. The
  // command runs against a copy of the key; the rule's store (or delete)
  // statement runs with the result; only when the database has it does the
  // result replace the key and the reply go out. On a database error the
  // cache is unchanged and the client gets the error. Writes to one key run
  // one at a time, in arrival order.
  enum class WriteResult { kNotMine, kAnswered, kDeferred };
  bool IsWriteKey(std::string_view key) const {
    Params p;
    auto r = MatchRule(key, &p);
    return r && r->rule.writes();
  }
  WriteResult WriteThrough(const CommandSpec* spec, std::span<const std::string_view> args, int db, int resp,
                           const LateTarget& target, std::string* out);

  // Before a write command on a key of a writing rule that is not in the
  // cache: if the command needs the old value (INCR, HSET, APPEND...; not a
  // plain SET or DEL), the key is loaded first and the command waits (true).
  bool LoadBeforeWrite(const CommandSpec* spec, std::span<const std::string_view> args, int db, int resp,
                       const LateTarget& target);

  // Write-behind: after a write command changed the cache, the new state of
  // a `write behind` key goes to the journal and the rule's queue, and the
  // reply (out from `start`) waits until the journal has it; true then.
  bool AfterWrite(const CommandSpec* spec, std::span<const std::string_view> args, int db, const LateTarget& target,
                  std::string* out, size_t start);
  // The journal holds everything this shard appended up to `seq`.
  void Durable(uint64_t seq);
  // End of an event loop iteration: this iteration's changes go to the
  // journal and the queues in one step.
  void FlushChanges();

  // CACHE FETCH leases: who computes a missing key for the others.
  struct Lease {
    int client_shard;
    uint64_t client_id;
    int64_t until_ms;
  };
  // The live lease on a key, or null.
  const Lease* FindLease(int db, std::string_view key);
  void GrantLease(int db, std::string_view key, Lease lease);
  bool has_leases() const { return !leases_.empty(); }
  // A write to the key ends its lease (the value is there now).
  void EndLease(int db, std::string_view key) { leases_.erase(MakeLeaseId(db, key)); }
  // A client went away: its leases end and their waiters ask again.
  void ReleaseClient(int client_shard, uint64_t client_id);
  static std::string MakeLeaseId(int db, std::string_view key);

 private:
  struct Waiter {
    const CommandSpec* spec;
    std::vector<std::string> args;
    int db;
    int resp;
    int keys_left;
    bool failed = false;
    std::string error;
    LateTarget target;
  };
  struct Pending {
    std::shared_ptr<LiveRule> rule;
    std::vector<std::shared_ptr<Waiter>> waiters;
    bool background = false;  // refresh of a value still being served
  };
  struct QueuedWrite {
    const CommandSpec* spec;
    std::vector<std::string> args;
    int db, resp;
    LateTarget target;
  };
  struct PendingWrite {
    std::deque<QueuedWrite> queue;  // later writes to the same key
  };
  // Runs one write (the key has no write in flight); true if it went to the
  // database (the reply comes later).
  bool StartWrite(const std::shared_ptr<LiveRule>& rule, const Params& params, const CommandSpec* spec,
                  std::span<const std::string_view> args, int db, int resp, const LateTarget& target,
                  std::string* out);
  void CompleteWrite(const std::string& id, int db, std::string key, Entry* result, std::string reply,
                     std::shared_ptr<LiveRule> rule, const CommandSpec* spec, LateTarget target, QueryResult r);
  void NextWrite(const std::string& id);
  struct Fresh {
    int64_t stale_at_ms;  // the rule's TTL has passed (grace may still serve it)
    int64_t load_us;      // how long the last load took (XFetch's delta)
    std::shared_ptr<LiveRule> rule;
  };

  std::shared_ptr<LiveRule> MatchRule(std::string_view key, Params* params) const;
  void StartLoad(const std::string& id, int db, std::string key, std::shared_ptr<LiveRule> rule, Params params,
                 bool background);
  bool Store(Db& db, const std::string& key, const LiveRule& rule, const QueryResult& r, int64_t* stale_at);
  void Finish(const std::shared_ptr<Waiter>& w);

  Server* server_;
  Shard* shard_;
  std::mt19937_64 rng_;
  // This shard's copy of the rules, refreshed when the manager's version moves
  // (a miss must not take the manager's lock).
  mutable std::shared_ptr<const std::vector<std::shared_ptr<LiveRule>>> rules_;
  mutable uint64_t rules_version_ = ~uint64_t{0};
  // Keys are "<db>\0<key>".
  absl::flat_hash_map<std::string, Pending> pending_;
  absl::flat_hash_map<std::string, int64_t> negative_;  // until (ms)
  absl::flat_hash_map<std::string, Fresh> fresh_;
  absl::flat_hash_map<std::string, Lease> leases_;
  absl::flat_hash_map<std::string, PendingWrite> writes_;
  struct HeldReply {
    uint64_t seq;
    LateTarget target;
    std::string reply;
  };
  std::deque<HeldReply> held_;  // write-behind replies waiting for the journal, in seq order
  size_t held_unnumbered_ = 0;  // the last ones, whose changes are in unjournaled_ (seq 0)
  std::vector<std::pair<Change, WriteQueue*>> unjournaled_;
  // A write-behind key's unflushed value, put back after eviction or expiry.
  bool RestorePending(Db& db, std::string_view key, const LiveRule& rule);
  KeyspaceStats scratch_stats_;

  // The command being run (between Begin and End).
  const CommandSpec* spec_ = nullptr;
  std::span<const std::string_view> args_;
  int db_ = 0, resp_ = 2;
  std::vector<std::string> waiting_on_;
};

// The shard cache of the calling thread, or null (not a shard, or no rules).
ShardCache* CurrentShardCache();
void SetCurrentShardCache(ShardCache* c);

// Formats a loaded row as the rule stores it (hash fields, a string, or a
// JSON object); exposed for tests.
std::string RowAsJson(const QueryResult& r);

}  // namespace cache
}  // namespace larder
