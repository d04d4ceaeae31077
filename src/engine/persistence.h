// RDB snapshots without fork, and loading a file into the shards.
//
// A snapshot is a cut in time across all shards: taken while every shard is
// parked (one exclusive operation, a few microseconds), after which each
// shard writes its own keys out in slices between its other work. A key a
// command is about to change or delete that the shard has not written yet is
// written first, with its value of the cut (copy-on-write per key instead of
// per page: no fork, no doubled memory); keys created after the cut are left
// out. The shards' parts go into one file in Redis's RDB format (rdb/rdb.h),
// written by a writer thread, then renamed into place.
//
// Uses: SAVE, BGSAVE, the save points, SHUTDOWN, DEBUG RELOAD, and the base
// file of an AOF rewrite (whose new incremental file opens at the cut: the
// `on_cut` callback runs while all shards are still parked).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace larder {

class Engine;
class Shard;
class Db;
struct Entry;
namespace rdb {
class Reader;
}

struct SnapshotRequest {
  std::string path;  // final path; written to a temporary file beside it first
  // Runs at the cut with every shard parked (any thread; must be quick).
  std::function<void()> on_cut;
  // Runs when the file is complete (renamed into place) or failed; any thread.
  std::function<void(bool ok, const std::string& error)> done;
  // An AOF base file (aof-use-rdb-preamble): also writes aof-base aux.
  bool aof_base = false;
};

class Persistence {
 public:
  explicit Persistence(Engine* engine);
  ~Persistence();

  // Starts a snapshot; false (with *error) when one is already running.
  bool StartSnapshot(SnapshotRequest req, std::string* error);
  bool snapshot_running() const { return running_.load(std::memory_order_acquire); }

  // Reads an RDB stream (a dump file, an AOF's base) into the shards: each
  // key goes to its owner. Any thread but a shard's; blocks until loaded.
  bool LoadRdb(rdb::Reader& r, std::string* error);

  // Before a command changes or deletes a key on `shard` (executor, Db): if
  // a snapshot is running and has not written this key yet, write it now.
  // Costs one relaxed load when no snapshot runs.
  void BeforeWrite(Shard& shard, Db& db, Entry* e);

 private:
  Engine* engine_;
  std::atomic<bool> running_{false};
};

}  // namespace larder
