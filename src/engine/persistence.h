// RDB snapshots without fork, and loading a file into the shards.
//
// A snapshot is a cut in time across all shards: taken while every shard is
// parked (one exclusive operation, a few microseconds), after which each
// shard writes its own keys out in slices between its other work. A key a
// command is about to change or delete that the shard has not written yet is
// written first, with its value of the cut (copy-on-write per key instead of
// per page: no fork, no doubled memory); keys created after the cut are left
// out. Which side of the cut a key is on is one bit of its entry
// (Entry::kSnapMark) compared with the shard's current mark, flipped at each
// cut, so the cut itself visits no key. The shards' parts go into one file in
// Redis's RDB format (rdb/rdb.h), framed by a writer thread, then renamed
// into place.
//
// A background save gives way to clients: while a shard serves traffic its
// scan runs in 50 us slices, each followed by as long with its thread idle
// (Shard::PostAt), its chunks reach the writer without waiting on a lock,
// and the writer thread runs at the lowest priority. SAVE, SHUTDOWN and an
// idle shard scan at full speed.
//
// Uses: SAVE, BGSAVE, the save points, SHUTDOWN, DEBUG RELOAD, and the base
// file of an AOF rewrite (whose new incremental file opens at the cut: the
// `on_cut` callback runs while all shards are still parked).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

namespace larder {

class Config;
class Engine;
class Shard;
class SnapshotJob;
namespace rdb {
class Reader;
struct Limits;
}

// The encodings loaded values take (a dump, an AOF base, RESTORE): what the
// server's *-max-listpack-* settings give.
rdb::Limits RdbLimits(const Config& c);

struct SnapshotRequest {
  std::string path;  // final path; written to a temporary file beside it first
  // Runs at the cut with every shard parked (on a shard thread; must be quick).
  std::function<void()> on_cut;
  // Runs when the file is complete (renamed into place) or failed, on the
  // writer thread.
  std::function<void(bool ok, const std::string& error)> done;
  // An AOF base file (aof-use-rdb-preamble): its aof-base aux field says so.
  bool aof_base = false;
  // BGSAVE and the save points. Only a background save's result is
  // rdb_last_bgsave_status (and MISCONF after a failure); a failed
  // foreground save (SAVE, SHUTDOWN, FLUSHALL, DEBUG RELOAD) only answers
  // an error and logs why, as Redis's rdbSave does.
  bool background = false;
};

class Persistence {
 public:
  explicit Persistence(Engine* engine);
  ~Persistence();

  // Starts a snapshot; false (with *error) when one is already running.
  bool StartSnapshot(SnapshotRequest req, std::string* error);
  bool snapshot_running() const { return running_.load(std::memory_order_relaxed); }
  // The engine's 10 ms cron on each shard: a scan that paused because the
  // disk is behind goes on.
  void Resume(Shard& shard);

  // Reads an RDB stream (a dump file, an AOF's base) into the shards: each
  // key goes to its owner (replacing a key of that name). Any thread but a
  // shard's; returns once every key is in place.
  // `merge` false (DEBUG RELOAD NOFLUSH without MERGE): a function library
  // that already exists fails the load, as in Redis; otherwise the file's
  // replaces it.
  bool LoadRdb(rdb::Reader& r, std::string* error, bool merge = true);
  // Loads `path` if it exists, with INFO's loading fields and -LOADING
  // answered meanwhile. False only for a file that exists and cannot load.
  bool LoadFileAtStart(const std::string& path, std::string* error);
  bool loading() const { return loading_.load(std::memory_order_relaxed); }
  void BeginLoading(uint64_t total_bytes);
  void EndLoading();
  void SetLoadProgress(uint64_t bytes);

  // Saves the dump file and waits for it (after any snapshot already
  // running). Not on a shard thread: SHUTDOWN's helper thread, the main one.
  // `while_waiting`, if set, runs about every 100 ms until the save is done
  // (the main thread watches for a second SIGINT there).
  bool SaveBlocking(std::string* error, const std::function<void()>& while_waiting = {});
  // Removes the temporary file a snapshot of the dump file writes
  // (temp-<pid>.rdb in dir), for an exit in the middle of one.
  void RemoveTempFile() const;

  // dir/dbfilename.
  std::string DumpPath() const;
  // BGSAVE SCHEDULE: a save of the dump file once the running snapshot ends.
  void ScheduleSave() { save_scheduled_.store(true); }
  // Every 100 ms on shard 0: the save points and a scheduled save.
  void Cron();

  // What Dispatch must check (one relaxed load when 0).
  static constexpr int kGateLoading = 1;
  static constexpr int kGateMisconf = 2;  // the last background save failed
  static constexpr int kGateStarting = 4;  // start-up: before the dump or the AOF is in
  // From before the shards serve until the start-up load (the dump or the
  // AOF) is done, every command but those flagged for loading gets -LOADING:
  // no write may land before the AOF is open, no read see a half-loaded set.
  void SetStarting(bool on) {
    if (on) gate_.fetch_or(kGateStarting);
    else gate_.fetch_and(~kGateStarting);
  }
  int gate() const { return gate_.load(std::memory_order_relaxed); }
  // stop-writes-on-bgsave-error applies: on, with save points, after a failure.
  bool RefusesWrites() const;

  // Writes since the start (each shard counts its own: EngineShard::dirty).
  uint64_t dirty() const;
  uint64_t changes_since_save() const;
  int64_t last_save_s() const { return last_save_s_.load(); }
  bool last_bgsave_ok() const { return last_bgsave_ok_.load(); }
  int64_t last_error_time_s() const { return last_error_time_s_.load(); }
  // INFO persistence's RDB and loading fields.
  void AppendInfo(std::string& out) const;

 private:
  friend class SnapshotJob;
  void Finished(SnapshotJob* job, bool ok, const std::string& error, uint64_t keys);

  Engine* engine_;
  std::atomic<bool> running_{false};
  std::atomic<SnapshotJob*> current_job_{nullptr};
  std::mutex mu_;
  std::unique_ptr<SnapshotJob> finished_job_;  // guarded by mu_

  std::atomic<int64_t> started_ms_{0};
  std::atomic<uint64_t> dirty_at_start_{0};
  std::atomic<uint64_t> saved_dirty_{0};
  std::atomic<int64_t> last_save_s_{0};
  std::atomic<int64_t> last_bgsave_time_s_{-1};
  std::atomic<bool> last_bgsave_ok_{true};
  std::atomic<int64_t> last_error_time_s_{0};
  std::atomic<uint64_t> saves_{0};

  std::atomic<int> gate_{0};
  std::atomic<bool> save_scheduled_{false};
  std::atomic<int64_t> last_try_s_{0};
  std::atomic<bool> loading_{false};
  std::atomic<uint64_t> load_total_{0};
  std::atomic<uint64_t> load_done_{0};
  std::atomic<int64_t> load_start_s_{0};
  std::atomic<uint64_t> last_load_loaded_{0};
  std::atomic<uint64_t> last_load_expired_{0};
};

}  // namespace larder
