// One shard's part of the caching strategies: the loads running for its
// keys, the negative cache, freshness data of loaded keys, write-through
// writes in flight, write-behind changes waiting for the journal, and CACHE
// FETCH leases. Everything here is touched only by its shard's thread.
//
// Read-through, as the engine drives it for a read command:
//
//   for each key: CheckRead(db, key)
//     present, loaded by a rule  → kReady (a refresh may start: refresh-ahead,
//                                  stale-while-revalidate)
//     missing, a rule's key      → kLoading: a load starts, or joins the one
//                                  running (single flight); a queued
//                                  write-behind value or a remembered
//                                  "no row" answers without a load
//   any kLoading → WaitFor(keys, resume): the command does not run now
//   load done (a worker thread) ──► posted to this shard ──► Complete():
//     row stored (TTL + jitter) or "no row" remembered (negative-ttl),
//     then each waiter's resume() runs here: the engine runs the command
//
// A loaded key remembers when it turns stale (its TTL) and how long its load
// took. Inside the grace period after that, reads get the stale value at
// once while one reload runs (stale-while-revalidate); with refresh-ahead,
// a read before then starts a reload early with a probability that grows as
// expiry nears, scaled by the load time (XFetch), so hot keys never miss.
//
// The write path (write_path.cc): write-through runs a command against a
// copy of its key, writes the result to the database, and only then changes
// the cache; write-behind changes the cache, journals the key's new state,
// and holds the reply until the journal has it.
#pragma once

#include <absl/container/flat_hash_map.h>

#include <deque>
#include <memory>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "cache/host.h"
#include "cache/leases.h"
#include "cache/manager.h"
#include "keyspace/db.h"

namespace larder {
class Shard;
struct Entry;
}  // namespace larder

namespace larder::cache {

class ShardCache {
 public:
  ShardCache(CacheManager* manager, Host* host, Shard* shard);

  // ---- read-through ----
  enum class ReadState { kReady, kLoading };
  // Before a read command runs, for each key it names (see above).
  ReadState CheckRead(int db, std::string_view key);
  // Before a write command that needs its key's old value (INCR, HSET,
  // APPEND...; not a plain SET or DEL): a writing rule's key that is not in
  // the cache loads first, as a read would load it.
  ReadState CheckWriteLoad(int db, std::string_view key);
  // The command that got kLoading for `keys` waits: `resume` runs on this
  // shard once every one of them finished loading (or one failed).
  void WaitFor(int db, std::span<const std::string_view> keys, Resume resume);
  // Whether a rule covers `key` (a read of it may load); changes nothing.
  // Every shard has the same rules, so any shard may ask for any key
  // (engine/preload.h filters on the calling shard).
  bool Covers(std::string_view key) const;

  void Complete(const std::string& id, int db, const std::string& key, QueryResult r);
  // A database change names this key (LISTEN/NOTIFY, CACHE INVALIDATE):
  // drop it, so that the next read loads it. A load of the key running now
  // read the database before the change: its row is not stored, the load
  // runs again (docs/caching.md, "Freshness"). True when there was a value
  // or a load to act on.
  bool Invalidate(int db, const std::string& key);
  // A client's command wrote `key` (the executor, for each key written):
  // a load of it running now is out of date, as with Invalidate.
  void NoteWrite(int db, std::string_view key);
  // Whether NoteWrite needs calling (loads run, or a warming job).
  bool watching_writes() const { return !pending_.empty() || manager_->warming(); }
  // A warmed row, read by a query that started at `started_ms`: stored as
  // a load would store it, unless the key changed since (a client's write,
  // an invalidation) or holds a value a client wrote.
  void StoreWarm(int db, const std::string& key, const std::shared_ptr<LiveRule>& rule, const QueryResult& r,
                 int64_t started_ms);
  // The LISTEN connection of `source` was lost and is back: notifications
  // may have been missed. Each key loaded from it is dropped, or (rules
  // with `listen-gap revalidate`) made stale so that its next read reloads
  // it; loads running are made to run again. Returns the keys touched.
  size_t SourceGap(const std::string& source);
  // INFO: loads running on this shard.
  size_t pending() const { return pending_.size(); }

  // ---- write path ----
  enum class WriteMode { kNone, kThrough, kBehind };
  WriteMode WriteModeOf(std::string_view key) const;
  bool IsWriteKey(std::string_view key) const { return WriteModeOf(key) != WriteMode::kNone; }
  // Write-through writes one key at a time, in arrival order: while a write
  // of the key is in flight this returns true and keeps `run`, which runs
  // (here) once the key is free.
  bool QueueBehindWrite(int db, std::string_view key, absl::AnyInvocable<void()> run);
  // Write-through: a command ran against a copy of the key and left
  // `result` (its new entry, owned by the call; null when it deleted the
  // key). The rule's store or delete statement runs; when the database
  // answers, the cache takes the result (on success) and `done` runs here.
  // False when there is nothing to write (a delete and no delete
  // statement): the key is deleted from the cache now and `done` is dropped.
  bool StartWriteThrough(int db, std::string_view key, Entry* result, WriteDone done);
  // Write-behind: a write command changed a `write behind` key; its new
  // state goes to the journal and the rule's queue. True (and `release`
  // kept) when the key is such a key: the reply waits for the journal.
  bool HoldForJournal(int db, std::string_view key, Release release);
  // The journal holds everything this shard appended up to `seq`.
  void Durable(uint64_t seq);
  // End of an event loop iteration: this iteration's changes go to the
  // journal and the queues in one step.
  void FlushChanges();

  // ---- CACHE FETCH leases (leases.h) ----
  Leases& leases() { return leases_; }

  // A rule's event about `key` on this shard: a keyspace notification
  // (class c) and the rule's publish-channel / publish-stream message.
  // `rule` may be null (an invalidation of a key no rule covers): then
  // only the keyspace notification goes out.
  void Announce(const Rule* rule, int db, std::string_view event, std::string_view key);

 private:
  struct Waiter {
    Resume resume;
    int keys_left;
  };
  struct Pending {
    std::shared_ptr<LiveRule> rule;
    std::vector<std::shared_ptr<Waiter>> waiters;
    bool background = false;   // refresh of a value still being served
    bool outdated = false;     // the key was invalidated or written since the load started
    int restarts = 0;          // times the load ran again because of that
    Params params;             // to run it again
  };
  // Loads outdated this many times in a row store their last row as
  // already stale (an invalidation storm must not starve the waiters).
  static constexpr int kMaxRestarts = 5;
  struct Fresh {
    int64_t stale_at_ms;  // the rule's TTL has passed (grace may still serve it)
    int64_t load_us;      // how long the last load took (XFetch's delta)
    std::shared_ptr<LiveRule> rule;
  };

  std::shared_ptr<LiveRule> MatchRule(std::string_view key, Params* params) const;
  // A miss on `key`: true if a load runs for it now.
  bool OnMiss(Db& db, std::string_view key);
  // A hit on a loaded key; false when the value may not be served (past
  // its TTL, the source down, and the rule without stale-on-error).
  bool OnHit(Db& db, Entry* e);
  void StartLoad(const std::string& id, int db, std::string key, std::shared_ptr<LiveRule> rule, Params params,
                 bool background);
  void SubmitLoad(const std::string& id, int db, const std::string& key, Pending& p);
  // Stores a loaded row. Its TTL runs from `read_ms`, when the database
  // was asked (a value is never served longer than ttl + grace after it
  // was read); `stale_now` stores it as already stale (its next read
  // reloads it).
  bool Store(Db& db, const std::string& key, const LiveRule& rule, const QueryResult& r, int64_t read_ms,
             int64_t* stale_at, bool stale_now = false);
  // Whether `key` changed (written or invalidated) at or after `since_ms`,
  // while a warming job runs.
  bool ChangedSince(const std::string& id, int64_t since_ms) const;
  void NoteChanged(const std::string& id);
  // A write-behind key's unflushed value, put back after eviction or expiry.
  bool RestorePending(Db& db, std::string_view key, const LiveRule& rule);
  void CompleteWrite(const std::string& id, int db, std::string key, Entry* result, std::shared_ptr<LiveRule> rule,
                     ExecResult r, WriteDone done);
  void NextWrite(const std::string& id);

  CacheManager* manager_;
  Host* host_;
  Shard* shard_;
  std::mt19937_64 rng_;
  // This shard's copy of the rules, refreshed when the manager's version moves
  // (a miss must not take the manager's lock).
  mutable std::shared_ptr<const std::vector<std::shared_ptr<LiveRule>>> rules_;
  mutable uint64_t rules_version_ = ~uint64_t{0};
  // Keys are KeyId(db, key).
  absl::flat_hash_map<std::string, Pending> pending_;
  absl::flat_hash_map<std::string, int64_t> negative_;  // until (ms)
  absl::flat_hash_map<std::string, Fresh> fresh_;
  // While warming runs: when each key was last written or invalidated
  // (cleared once no warming job runs).
  absl::flat_hash_map<std::string, int64_t> changed_at_;
  Leases leases_;
  // Write-through: keys with a write in flight, and the writes queued behind it.
  absl::flat_hash_map<std::string, std::deque<absl::AnyInvocable<void()>>> writes_;
  // Write-behind: releases waiting for the journal, in seq order.
  struct Held {
    uint64_t seq;  // 0: its change is still in unjournaled_
    Release release;
    std::string error;  // set when the journal write failed
  };
  std::deque<Held> held_;
  size_t held_unnumbered_ = 0;  // the last ones, whose changes are in unjournaled_ (seq 0)
  std::vector<std::pair<Change, WriteQueue*>> unjournaled_;
};

// The shard cache of the calling thread, or null (not a shard thread).
ShardCache* CurrentShardCache();
void SetCurrentShardCache(ShardCache* c);

// The events a rule announces (docs/caching.md): a key stored by a load
// (read-through, warming), stored again by a reload (refresh-ahead, a stale
// key's reload), dropped because the database changed (an invalidation, a
// reload that found no row), written to the database (write-through, or
// write-behind once flushed).
inline constexpr std::string_view kEventLoaded = "cache-loaded";
inline constexpr std::string_view kEventRefreshed = "cache-refreshed";
inline constexpr std::string_view kEventInvalidated = "cache-invalidated";
inline constexpr std::string_view kEventWritten = "cache-written";
// A rule's publish-channel message: {"event":"...","key":"...","db":N}.
std::string RuleEventMessage(std::string_view event, std::string_view key, int db);

}  // namespace larder::cache
