// Write-behind: writes change the cache at once and reach the database
// later, in batches, without losing anything that was acknowledged.
//
//   write command on a key of a `write behind` rule (its shard's thread)
//     ──► the cache changes ──► Change (the key's new state) appended to the
//         Journal and added to the rule's WriteQueue ──► reply held back
//   Journal thread: write(2) the appended records, fdatasync per appendfsync
//     ──► tells each shard how far its records are durable ──► replies go out
//   WriteQueue's flusher thread (one per rule): the last change of each key
//     wins; a batch (write-batch keys, or whatever waited write-delay) runs as
//     one transaction; transient failures retry with backoff, a change the
//     database refuses goes to the DeadLetters
//   restart: the journal's segments are read back into the queues, so the
//     database still gets every acknowledged change.
//
// A segment of the journal is deleted once every change in it has reached
// the database (or a newer change of the same key has): the queues report
// the oldest sequence number they still need.
#pragma once

#include <absl/container/flat_hash_map.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "cache/source.h"

namespace larder::cache {

struct LiveRule;

// A key's state after a write, as the database will get it.
struct Change {
  uint64_t seq = 0;  // journal order (assigned by Journal::Append)
  int db = 0;
  bool del = false;  // the key is gone: run the rule's delete statement
  std::string key;
  // The store statement's parameters other than the pattern's placeholders
  // (:value, or hash fields; nullopt binds NULL).
  std::vector<std::pair<std::string, std::optional<std::string>>> values;
  int64_t at_ms = 0;  // when the cache applied it (for the lag)
};

// "<db>\0<key>": how the cache's per-key maps name a key.
std::string KeyId(int db, std::string_view key);

// Record payload encoding (the journal and the dead-letter file).
std::string EncodeChange(const Change& c);
bool DecodeChange(std::string_view in, Change* c);

enum class FsyncPolicy { kAlways, kEverysec, kNo };

class Journal {
 public:
  Journal() = default;
  ~Journal();
  // Reads the segments found in `dir` (oldest first), handing each intact
  // record to `replay`; a torn record at the end of the last segment (a
  // crash in mid-write) is cut off. Then opens a new segment for appends.
  bool Open(const std::string& dir, FsyncPolicy policy, const std::function<void(Change)>& replay, std::string* err);
  // `durable(shard, seq)`: every record appended from `shard` up to `seq` is
  // synced (appendfsync always). Runs on the journal thread, which syncs
  // (always: as soon as asked, group commit; everysec: once a second) and
  // drops flushed segments.
  // `needed()`: the oldest seq the queues still need; `live()`: every change
  // they still hold (for compaction).
  void Start(int shards, std::function<void(int, uint64_t)> durable, std::function<uint64_t()> needed,
             std::function<std::vector<Change>()> live);
  void Stop();
  bool open() const { return fd_ >= 0; }

  // Any thread: assigns c->seq, queues the record and, in the same step,
  // adds the change to `queue` (so that no segment is dropped while a change
  // it holds is in neither place).
  // False (with the reason) if it could not be written.
  bool Append(Change* c, int shard, class WriteQueue* queue, std::string* error);
  // The same for many changes in one step (a shard's changes of one event
  // loop iteration), written to the file by the calling thread; returns the
  // last seq assigned. `durable`: they count as durable now (everysec, no);
  // with always, `durable(shard, seq)` says so once they are synced. 0 with
  // `error` when they could not be written (disk full...): then they are in
  // neither the journal nor the queues.
  uint64_t AppendBatch(std::vector<std::pair<Change, class WriteQueue*>>& changes, int shard, bool* durable,
                       std::string* error);
  void set_policy(FsyncPolicy p) { policy_.store(p); }
  // A new segment after this many bytes (16 MB; tests set less, before Start).
  void set_segment_bytes(uint64_t n) { segment_bytes_ = n; }
  uint64_t bytes() const { return bytes_.load(std::memory_order_relaxed); }
  uint64_t next_seq() const;

 private:
  struct Segment {
    uint64_t number;
    std::string path;
    uint64_t max_seq;
    uint64_t size;
  };
  void Run();
  bool OpenSegment(std::string* err);
  void DropFlushedSegments(uint64_t needed);
  // When the database is away for long, segments pile up though the queues
  // hold one change per key: the queues' changes are written to a fresh
  // segment and every older one is deleted (as Redis rewrites its AOF).
  void MaybeCompact();

  std::string dir_;
  std::atomic<FsyncPolicy> policy_{FsyncPolicy::kEverysec};
  int fd_ = -1;
  std::vector<Segment> segments_;  // the last one is being appended to (under mu_ after Start)
  std::function<void(int, uint64_t)> durable_;
  std::function<uint64_t()> needed_;
  std::function<std::vector<Change>()> live_;
  uint64_t compacted_bytes_ = 0;
  uint64_t segment_bytes_ = 16ull << 20;  // the journal's size after the last compaction

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::string scratch_;                  // the records being written
  uint64_t next_seq_ = 1;
  std::vector<uint64_t> appended_;       // per shard: the last seq waiting for a sync (always)
  bool sync_wanted_ = false;             // always: records wait for a sync
  bool dirty_ = false;                   // written since the last sync
  bool stopping_ = false;
  std::thread thread_;
  std::atomic<uint64_t> bytes_{0};
};

// Changes the database refused: kept (in a file in `dir`) until replayed or
// dropped by CACHE DEADLETTER.
struct DeadLetter {
  uint64_t id = 0;
  std::string rule;  // the rule's pattern
  Change change;
  std::string error;
  int64_t at_ms = 0;
};

class DeadLetters {
 public:
  bool Open(const std::string& dir, std::string* err);
  // Keeps a refused change; a newer one of the same key replaces it.
  void Add(DeadLetter d);
  std::vector<DeadLetter> List() const;
  // Whether this very change (key and seq) is held.
  bool Holds(const Change& c) const;
  // Removes and returns the one with `id` (0: all).
  std::vector<DeadLetter> Take(uint64_t id);
  size_t size() const;

 private:
  bool Keep(DeadLetter d);  // into items_ (under mu_); false if already there
  void Save();              // rewrites the file (under mu_)
  mutable std::mutex mu_;
  std::string path_;
  std::map<uint64_t, DeadLetter> items_;                  // by id, oldest first
  absl::flat_hash_map<std::string, uint64_t> by_key_;    // KeyId -> id
  uint64_t next_id_ = 1;
};

class WriteQueue {
 public:
  WriteQueue(LiveRule* rule, DeadLetters* dead) : rule_(rule), dead_(dead) {}
  ~WriteQueue() { Stop(); }

  // Any thread. The key's newer change replaces an older one not yet taken.
  void Add(Change c);
  // The newest change of the key that the database does not have yet.
  std::optional<Change> Lookup(int db, std::string_view key) const;
  // Every change not yet in the database: the batch being written, then the
  // waiting ones (so that, read back in order, each key ends newest).
  void AppendLive(std::vector<Change>* out) const;
  void Start();
  void Stop();
  // Called on the flusher's thread with each change the database took (the
  // rule announces it); set before Start.
  void set_on_written(std::function<void(const Change&)> fn) { on_written_ = std::move(fn); }

  // The oldest journal sequence number still needed (UINT64_MAX: none).
  uint64_t needed() const;
  size_t depth() const;
  int64_t lag_ms() const;

 private:
  struct Pending {
    Change change;
    uint64_t first_seq;    // the oldest change of this key not in the database
    int64_t first_at_ms;
  };
  void Flusher();
  // Runs the batch until done; false if stopping first.
  bool Flush(const std::vector<Pending>& batch);
  ExecResult Exec(const std::vector<Pending>& batch, size_t from, size_t count);
  bool Sleep(int64_t ms);

  LiveRule* rule_;
  DeadLetters* dead_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  absl::flat_hash_map<std::string, Pending> pending_;  // "<db>\0<key>"
  std::deque<std::string> order_;                     // pending_'s ids, oldest first
  std::vector<Pending> inflight_;
  bool stopping_ = false;
  std::function<void(const Change&)> on_written_;
  std::thread thread_;
};

}  // namespace larder::cache
