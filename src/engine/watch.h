// WATCH: optimistic locking for MULTI/EXEC. A client's watched keys form
// one WatchSet (owned by the client, shared with the registries); each key
// is registered on the shard that owns it, and anything that changes the
// key there marks the set dirty, so that EXEC answers null.
//
// What counts as a change (Redis 7.0's touchWatchedKey and
// touchAllWatchedKeysInDb): a write command that did not fail (Execute,
// through the executor's effects), eviction, FLUSHDB/FLUSHALL/SWAPDB of a key
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

}  // namespace larder
