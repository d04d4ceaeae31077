// The append-only file, in Redis 7.0's multi-part layout:
//
//   <dir>/<appenddirname>/
//     <appendfilename>.manifest          one line per file, Redis's format:
//                                        "file <name> seq <n> type <b|h|i>"
//     <appendfilename>.<n>.base.rdb      the base: a snapshot (RDB preamble),
//     (or .base.aof)                     or commands (aof-use-rdb-preamble no)
//     <appendfilename>.<n>.incr.aof      the writes since the base, as RESP
//
// Writing: the Aof is a sink of the propagation stream (propagate.h); the
// bytes it is fed wait in one buffer and each shard's loop writes them out
// at the end of its iteration (AfterEvents → FlushFromLoop).
//   appendfsync always: the writer fdatasyncs before returning, and no reply
//     leaves a shard while bytes fed before it are not synced
//     (Client::FinishOutput asks HoldsReplies() and, if so, goes out after
//     the shard's FlushFromLoop): group commit per loop iteration, across
//     shards (a shard that finds its bytes already synced by another skips).
//   everysec: a thread fdatasyncs once a second; no: the kernel decides.
//
// Why not the write-behind journal (cache/journal.cc): the journal's
// records are its own (sequence numbers, CRC per record, segments dropped
// when the database has them) and its readers are the write queues; the
// AOF's bytes must be Redis's own RESP so redis-server and redis-check-aof
// read them, and a file is dropped only by a rewrite. What they share is
// the policy (both follow appendfsync) and the way of holding replies
// (written by the shard at the end of its iteration, synced, then
// released); each keeps its own file code.
//
// Rewriting (BGREWRITEAOF, CONFIG SET appendonly yes, auto-aof-rewrite-*):
// a snapshot (Persistence::StartSnapshot, aof_base) writes the new base; at
// its cut, with every shard parked, the next incremental file opens and the
// manifest names it; when the base is complete the manifest switches to it
// and the older files become history and are deleted.
//
// Loading (at start with appendonly yes, DEBUG LOADAOF): manifest → base
// (RDB: the snapshot module's loader; AOF form: replayed) → each incr file,
// every command run through Execute with every shard parked.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "engine/aof_format.h"
#include "engine/persistence.h"
#include "engine/propagate.h"

namespace larder {

class Engine;
namespace rdb {
class Reader;
}

class Aof : public PropagationSink {
 public:
  explicit Aof(Engine* engine);
  ~Aof() override;

  // Hooks of the snapshot module (engine/persistence.h), installed by whoever
  // owns Persistence: a snapshot for a new base, and loading an RDB base
  // (called from a thread that is not a shard's, as Persistence::LoadRdb
  // wants: e.g. open the file, rdb::Reader r(fd), persistence.LoadRdb(r, e)).
  // Without them a base is written only while the dataset is empty (an
  // empty RDB) and an RDB base that holds keys cannot be loaded.
  using Snapshotter = std::function<bool(SnapshotRequest, std::string* error)>;
  using RdbLoader = std::function<bool(rdb::Reader& r, std::string* error)>;
  void SetSnapshotter(Snapshotter s) { snapshotter_ = std::move(s); }
  void SetRdbLoader(RdbLoader l) { rdb_loader_ = std::move(l); }

  // Start-up, after the shards run and before clients are served: with
  // appendonly yes loads the AOF (an old single appendonly.aof is moved into
  // the directory first) and opens it for appends. False: the server must
  // not start (`error` says why, in Redis's words where Redis has them).
  bool StartUp(std::string* error);
  // Installs the CONFIG SET hooks (appendonly, appendfsync).
  void InstallConfigHooks();
  // Shutdown: what is buffered is written and synced.
  void Stop();

  // CONFIG SET appendonly yes / no.
  bool Enable(std::string* error);
  void Disable();
  bool enabled() const { return on_.load(std::memory_order_relaxed); }

  // End of a shard's loop iteration: writes what was fed, and fsyncs it
  // with appendfsync always.
  void FlushFromLoop();
  // appendfsync always: replies must wait (something fed is not synced yet).
  bool HoldsReplies() const {
    return always_.load(std::memory_order_relaxed) &&
           fed_.load(std::memory_order_acquire) > synced_.load(std::memory_order_acquire);
  }
  bool active() const { return on_.load(std::memory_order_relaxed); }

  // BGREWRITEAOF. False with the error reply's text.
  bool Rewrite(std::string* error);
  // DEBUG LOADAOF: writes and syncs, empties the dataset, loads the files
  // again. From a thread that is not a shard's (it parks them).
  bool Reload(std::string* error);
  // INFO persistence: the aof_* fields, in Redis's order.
  void AppendInfo(std::string& out);

  // PropagationSink: under the stream's lock.
  void Feed(std::string_view bytes) override;

  // appendfsync as configured (always, everysec, no).
  void ApplyPolicy();

 private:
  using FileInfo = aof::FileInfo;
  using Manifest = aof::Manifest;

  std::string DirPath() const;
  std::string FilePath(const std::string& name) const;
  std::string Name() const;
  bool ReadManifest(Manifest* m, bool* exists, std::string* error);
  bool WriteManifest(const Manifest& m, std::string* error);
  bool LoadFiles(const Manifest& m, std::string* error);
  void RunParked(const std::function<void()>& fn);
  // One AOF-format file: 0 ok, 1 truncated (and fixed), -1 failed.
  int LoadCommandFile(const std::string& name, bool last, std::string* error);
  int ReplayCommands(const std::string& name, const std::string& path, std::string_view d, size_t pos, bool last,
                     std::string* error);
  bool LoadRdbBase(const std::string& name, std::string* error);
  bool OpenIncr(const std::string& name, std::string* error);  // under mu_
  bool WriteEmptyBase(const std::string& name, std::string* error);
  bool WriteCommandBase(const std::string& name, std::string* error);
  static void AppendRebuild(std::string* out, struct Entry* e);
  // The append-only dir (created if missing) and its manifest, made current.
  bool OpenDirAndManifest(std::string* error);
  bool NewBase(bool at_start, std::string* error);
  void SetBase(const std::string& name);  // under mu_: the old base becomes history
  void OnRewriteCut();
  void OnRewriteDone(bool ok, const std::string& error);
  void DeleteHistory();
  void WriteOut(bool sync);  // under mu_
  void SyncThread();
  void MaybeAutoRewrite();


  Engine* engine_;
  Snapshotter snapshotter_;
  RdbLoader rdb_loader_;

  std::atomic<bool> on_{false};
  std::atomic<bool> enabling_{false};  // CONFIG SET appendonly yes: the first base is being written
  std::atomic<bool> always_{false};
  std::atomic<bool> everysec_{false};
  bool timestamps_ = false;
  int64_t last_ts_ = 0;

  // Guarded by the propagation stream's lock: bytes fed, not yet written.
  std::string buf_;
  std::atomic<uint64_t> fed_{0};     // bytes fed in all
  std::atomic<uint64_t> synced_{0};  // of them, synced (always) or written (others)

  std::mutex mu_;  // the file: fd_, manifest_, writes (before the stream's lock)
  int fd_ = -1;
  Manifest manifest_;
  std::string pending_incr_;  // the incr file opened at a rewrite's cut
  std::atomic<uint64_t> written_{0};
  std::atomic<int64_t> current_size_{0};
  std::atomic<int64_t> base_size_{0};
  std::atomic<bool> write_ok_{true};
  bool dirty_ = false;  // written since the last fsync (everysec)

  std::atomic<bool> rewriting_{false};
  std::atomic<bool> rewrite_scheduled_{false};
  std::atomic<int64_t> rewrite_start_s_{0};
  std::atomic<int64_t> last_rewrite_s_{-1};
  std::atomic<bool> last_rewrite_ok_{true};
  std::atomic<int64_t> rewrites_{0};
  std::atomic<int64_t> rewrite_failures_{0};

  std::mutex sync_mu_;
  std::condition_variable sync_cv_;
  bool stopping_ = false;
  std::thread sync_thread_;
};

}  // namespace larder
