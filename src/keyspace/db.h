// One logical database (SELECT index) on one shard: the table plus the rules
// every command relies on when it reads or writes a key. Expiry is lazy here
// (an expired key is deleted when looked up) and active in ActiveExpireCycle(),
// which the shard's timer calls.
//
// Runs on the owning shard only.
#pragma once

#include <atomic>
#include <cstdint>
#include <string_view>

#include "common/notify_classes.h"

#include "keyspace/entry.h"
#include "keyspace/eviction.h"
#include "keyspace/lazy_free.h"
#include "keyspace/table.h"

namespace larder {

class Db;

// A snapshot running on this shard (engine/persistence.h): told before a key
// that it has not written yet changes or goes, so that it writes the key's
// value of the cut first.
struct SnapshotHook {
  virtual ~SnapshotHook() = default;
  virtual void Save(Db& db, Entry* e) = 0;
  // Every key of `db` not written yet (before FLUSHDB, SWAPDB).
  virtual void SaveAll(Db& db) = 0;
};

struct KeyspaceStats {
  uint64_t keyspace_hits = 0;
  uint64_t keyspace_misses = 0;
  uint64_t expired_keys = 0;
  uint64_t evicted_keys = 0;
  uint64_t expire_cycle_cpu_us = 0;
  // CONFIG RESETSTAT: the counters above.
  void ResetCounters() { keyspace_hits = keyspace_misses = expired_keys = evicted_keys = expire_cycle_cpu_us = 0; }
  // While set, lookups count no hit or miss (a command run again after its
  // keys loaded: its lookups were counted when it first asked).
  bool lookups_paused = false;
  // Told of each key that expiry deletes (lazily or in the active cycle):
  // the engine invalidates client-side caches there. Null: no one listens.
  void (*on_expired)(void* arg, int db, std::string_view key) = nullptr;
  void* on_expired_arg = nullptr;
  // Whether the keyspace table may take `bytes` more to grow (maxmemory:
  // a table that doubled past the limit would evict keys to pay for its
  // own growth). Null: it may.
  bool (*may_grow)(void* arg, size_t bytes) = nullptr;
  void* may_grow_arg = nullptr;
  // The running snapshot (null: none), and the mark of entries on the far
  // side of its cut (Entry::kSnapMark or 0); entries added get the mark.
  SnapshotHook* snapshot = nullptr;
  uint8_t snap_mark = 0;
};

// Keyspace notifications the keyspace raises itself: "new" when a key is
// created, "keymiss" when a read misses, "expired" when a TTL ends (lazily or
// in the active cycle), "hexpired"/"del" when hash fields' TTLs empty a hash.
// The engine installs the publisher (the keyspace cannot reach pub/sub);
// `classes` is the configured notify-keyspace-events, so that with
// notifications off each place costs one relaxed load.
struct KeyspaceEvents {
  using Fn = void (*)(void* arg, int db, uint32_t cls, std::string_view event, std::string_view key);
  const std::atomic<uint32_t>* classes = nullptr;
  Fn fn = nullptr;
  void* arg = nullptr;

  bool Wants(uint32_t cls) const {
    return classes && (classes->load(std::memory_order_relaxed) & cls) != 0 && fn;
  }
  void Raise(int db, uint32_t cls, std::string_view event, std::string_view key) const {
    if (Wants(cls)) fn(arg, db, cls, event, key);
  }
};

// The LRU clock: 10 ms ticks (wraps after 497 days; Redis's clock has 1 s
// ticks and wraps after 194). Fine enough that LRU ranks keys touched within
// the same second, which short bursts and benchmarks need.
constexpr uint32_t kLruTicksPerSecond = 1000;
uint32_t LruClock();
// Seconds a key has been idle, from its access field (LRU mode).
uint32_t IdleSeconds(const Entry* e);

class Db {
 public:
  static constexpr int64_t kNoExpire = -1;
  static constexpr int64_t kKeepTtl = -2;

  explicit Db(KeyspaceStats* stats) : stats_(stats) {
    table_.set_grow_guard(
        [](void* arg, size_t bytes) {
          auto* st = static_cast<KeyspaceStats*>(arg);
          return !st || !st->may_grow || st->may_grow(st->may_grow_arg, bytes);
        },
        stats);
  }
  // S3-FIFO queues of the shard, told about new keys (set by the shard).
  void AttachEvictor(Evictor* evictor, int index) {
    evictor_ = evictor;
    index_ = index;
  }
  // Where this database's own notifications go (set by the shard; none
  // for a scratch database).
  void AttachEvents(const KeyspaceEvents* events) { events_ = events; }
  // Which deletions may free big values in the background (set by the
  // shard; none: everything is freed at once).
  void AttachLazyFree(const LazyFreePolicy* policy) { lazy_ = policy; }
  Db(Db&&) = default;
  Db& operator=(Db&&) = default;

  size_t size() const { return table_.size(); }
  int index() const { return index_; }
  size_t expires() const { return expires_; }
  Table& table() { return table_; }

  // Looks a key up, deleting it first if its TTL has passed. No statistics.
  Entry* Find(std::string_view key);
  // As Find, counting a keyspace hit or miss and refreshing the access time.
  Entry* FindRead(std::string_view key);
  // As FindRead, leaving the access data alone (EXISTS: Redis's LOOKUP_NOTOUCH).
  Entry* FindReadNoTouch(std::string_view key);
  // As Find, refreshing the access time (writes do not count hits).
  Entry* FindWrite(std::string_view key);

  // Creates or overwrites `key` as a string. expire_ms: absolute Unix ms,
  // kNoExpire, or kKeepTtl (keep an existing key's TTL).
  Entry* SetString(std::string_view key, std::string_view value, int64_t expire_ms,
                   StrEncoding enc);
  // Adds an entry for a key that is not present (after Find returned null);
  // raises "new".
  void Add(Entry* e);
  // As Add, without "new": an entry put back (a rollback, a write-through
  // result that replaces the key; the cache raises its own event).
  void AddQuiet(Entry* e);
  // Raises a notification for a key of this database (through the engine's
  // publisher; nothing when the class is off).
  void Notify(uint32_t cls, std::string_view event, std::string_view key) const {
    if (events_) events_->Raise(index_, cls, event, key);
  }
  // Deletes and frees the key (in the background where `cause`'s
  // lazyfree-lazy-* setting and the value's size say so).
  bool Delete(std::string_view key, DeleteCause cause = DeleteCause::kServer);
  // Removes and returns the entry without freeing it (RENAME, MOVE, COPY).
  Entry* Detach(std::string_view key);

  // Sets, changes or removes (ms < 0) the TTL; returns the entry's new address.
  Entry* SetExpire(Entry* e, int64_t ms);
  // Changes the value's length (contents up to the shorter length kept).
  Entry* ResizeValue(Entry* e, size_t new_len, bool geometric);

  // Deletes every key; `lazy` frees them on the lazy-free thread (FLUSHALL
  // ASYNC) when there is one.
  void Clear(bool lazy = false);
  // SWAPDB: exchanges the keys (each Db keeps its index and evictor).
  void SwapContents(Db& other);
  // Called when a hash field gets a TTL: from then on the active expiry
  // cycle also visits hashes to reclaim expired fields.
  void NoteFieldTtl() { field_ttls_ = true; }
  // Before a change to `e` in place (a handler's, on a key it writes): a
  // running snapshot writes the key's old value first.
  void BeforeChange(Entry* e) {
    if (stats_->snapshot && (e->flags & Entry::kSnapMark) != stats_->snap_mark) [[unlikely]]
      stats_->snapshot->Save(*this, e);
  }
  // Deletes expired keys for up to `budget_us`; returns how many were removed.
  // Resumes where it stopped, so repeated calls sweep the whole table.
  size_t ActiveExpireCycle(int64_t now_ms, int64_t budget_us);

 private:
  void Touch(Entry* e) { TouchAccess(e); }
  bool Expired(const Entry* e, int64_t now) const { return e->has_expire() && e->expire_ms() <= now; }

  Table table_;
  size_t expires_ = 0;
  bool field_ttls_ = false;
  uint64_t expire_cursor_ = 0;
  KeyspaceStats* stats_;
  const KeyspaceEvents* events_ = nullptr;
  const LazyFreePolicy* lazy_ = nullptr;
  Evictor* evictor_ = nullptr;
  int index_ = 0;
};

}  // namespace larder
