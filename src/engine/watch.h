// WATCH: optimistic locking for MULTI/EXEC. A client's watched keys form
// one WatchSet (owned by the client, shared with the registries); each key
// is registered on the shard that owns it, and anything that changes the
// key there marks the set dirty, so that EXEC answers null.
//
// What counts as a change (Redis 7.0's touchWatchedKey and
// touchAllWatchedKeysInDb): a write command that changed the key (Execute
// compares a watched key's state before and after the command — its value's
// digest and its TTL — with WatchProbe; the writes Redis counts even when
// they leave the same value, SET, HSET, LSET, INCRBY 0, EXPIRE..., count
// whenever they were applied), eviction, FLUSHDB/FLUSHALL/SWAPDB of a key
// that exists, a read-through load or an invalidation of the key. A key
// whose TTL had passed when it was watched ("stale") is not changed by its
// own deletion. Expiry needs no hook: a key that had a TTL when watched
// makes EXEC fail once that time has passed (Redis's isWatchedKeyExpired),
// whether or not it was deleted meanwhile.
//
// Threads: a WatchSet is built on the client's thread; the registries are
// touched only by their shard's thread (or with that shard parked); `dirty`
// and `stale` are atomics because the owner shard sets them while the
// client reads them.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <array>
#include <span>

#include <absl/container/flat_hash_map.h>

namespace larder {

class Db;

struct WatchedKey {
  int db = 0;
  int shard = 0;
  std::string key;
  std::atomic<bool> stale{false};  // its TTL had passed when watched
  int64_t deadline_ms = 0;         // its TTL then (0: none, or stale)
};

struct WatchSet {
  std::atomic<bool> dirty{false};
  std::deque<WatchedKey> keys;  // stable addresses: the registries point in

  bool Watches(int db, std::string_view key) const;
  // Dirty, or a key that had a TTL when watched has reached it.
  bool Failed(int64_t now_ms) const;
};

// One shard's watched keys.
class WatchRegistry {
 public:
  bool empty() const { return map_.empty(); }
  bool Watched(int db, std::string_view key) const { return map_.contains(Name(db, key)); }
  // On the key's shard: registers `wk` (already in `set`), noting whether
  // the key is stale and its TTL from `db`.
  void Add(const std::shared_ptr<WatchSet>& set, WatchedKey* wk, Db& db);
  // Forgets every key of `set` registered here.
  void Remove(const WatchSet* set);
  // `key` of database `db_index` changed (`db` is that database here).
  void Touch(int db_index, std::string_view key, Db& db);
  // FLUSHDB/FLUSHALL/SWAPDB: every watched key of `db_index` that exists in
  // `emptied` or in `replaced_with` (null for a flush) changes, but a stale
  // key that stays stale or gone does not.
  void TouchDb(int db_index, Db& emptied, Db* replaced_with);

 private:
  static std::string Name(int db, std::string_view key);
  struct Ref {
    std::shared_ptr<WatchSet> set;
    WatchedKey* wk;
  };
  absl::flat_hash_map<std::string, std::vector<Ref>> map_;
};

// A write command's watched keys, before and after it runs: only those it
// changed are touched (Redis signals a key only when a command modifies it:
// SETNX on an existing key, SREM of a missing member, DEL of a missing key
// change nothing). Taken only when some registry has keys.
class WatchProbe {
 public:
  // Before the handler, for each key the command may write (`reg` and `db`
  // are those of the key's shard): records its state if it is watched.
  void Take(const WatchRegistry& reg, Db& db, std::string_view key, int shard) {
    if (reg.empty() || !reg.Watched(db_index_, key)) return;
    if (n_ == kMax) {
      overflow_ = true;
      return;
    }
    Probe& p = probes_[n_++];
    p.key = key;
    p.shard = shard;
    p.before = StateOf(db, key);
  }
  void set_db(int db) { db_index_ = db; }
  bool empty() const { return n_ == 0 && !overflow_; }
  bool overflow() const { return overflow_; }
  // After: touches each probed key whose state changed, or every one when
  // `applied` (a write Redis counts even when it leaves the same value).
  // `db_of(shard)` and `reg_of(shard)` give the key's database and registry.
  template <typename DbOf, typename RegOf>
  void Finish(bool applied, DbOf&& db_of, RegOf&& reg_of) {
    for (size_t i = 0; i < n_; ++i) {
      Probe& p = probes_[i];
      Db& d = db_of(p.shard);
      if (applied || !(StateOf(d, p.key) == p.before)) reg_of(p.shard).Touch(db_index_, p.key, d);
    }
  }

 private:
  struct State {
    bool exists = false;
    bool big = false;  // not digested (a large value): counts as changed
    int64_t expire = -1;
    std::array<uint8_t, 20> digest{};
    bool operator==(const State& o) const {
      return !big && !o.big && exists == o.exists && expire == o.expire && digest == o.digest;
    }
  };
  static State StateOf(Db& db, std::string_view key);
  struct Probe {
    std::string_view key;
    int shard;
    State before;
  };
  static constexpr size_t kMax = 4;
  Probe probes_[kMax];
  size_t n_ = 0;
  int db_index_ = 0;
  bool overflow_ = false;
};

// Whether `spec` with these arguments and this reply was a write Redis
// signals even when the key ends up the same (SET, HSET, INCRBY 0, EXPIRE
// with the same time...): false when its own reply says it did nothing
// (SET NX/XX answered nil, SETNX/MSETNX/COPY/EXPIRE answered 0).
bool AlwaysSignals(std::string_view name, std::span<const std::string_view> args, std::string_view reply);

}  // namespace larder
