// Small file-writing helpers shared by everything that makes files durable
// (snapshots, the AOF, the write-behind journal, dead letters).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace larder {

// Writes all of `data`, retrying short writes and EINTR; false (errno set)
// on an error.
bool WriteAll(int fd, std::string_view data);

// fsync of a directory, so that a rename or create in it survives a crash.
// Errors are ignored (not every filesystem syncs directories).
void SyncDir(const std::string& dir);

// Redis's incremental fsync (rdb-save-incremental-fsync,
// aof-rewrite-incremental-fsync): a long file written in one go is synced
// every kBytes as it grows, so that the kernel writes it back steadily
// rather than in one burst at the final fsync (which on a busy machine takes
// the disk and the flusher threads' CPU at once).
class IncrementalSync {
 public:
  static constexpr size_t kBytes = 4 << 20;  // REDIS_AUTOSYNC_BYTES
  IncrementalSync(int fd, bool on) : fd_(fd), on_(on) {}
  // After `n` more bytes were written to the file.
  void Wrote(size_t n);

 private:
  int fd_;
  bool on_;
  size_t unsynced_ = 0;
};

}  // namespace larder
