// Journal: segments in `dir`, group commit per appendfsync, compaction, replay at start-up.
#include "cache/write_behind.h"

#include <algorithm>
#include <cerrno>
#include <chrono>

#include "cache/record.h"
#include "common/clock.h"
#include "common/log.h"
#include "keyspace/memory_budget.h"

namespace larder::cache {

using namespace record;  // NOLINT: this module's own helpers

// ---- Journal ----

Journal::~Journal() { Stop(); }

bool Journal::Open(const std::string& dir, FsyncPolicy policy, const std::function<void(Change)>& replay,
                   std::string* err) {
  dir_ = dir;
  policy_.store(policy);
  std::vector<std::pair<uint64_t, std::string>> found;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (dirent* ent = ::readdir(d)) {
      std::string_view name = ent->d_name;
      std::string_view pre = kSegmentPrefix, suf = kSegmentSuffix;
      if (name.size() <= pre.size() + suf.size() || name.substr(0, pre.size()) != pre ||
          name.substr(name.size() - suf.size()) != suf)
        continue;
      std::string_view num = name.substr(pre.size(), name.size() - pre.size() - suf.size());
      if (!std::all_of(num.begin(), num.end(), [](char ch) { return ch >= '0' && ch <= '9'; })) continue;
      found.emplace_back(std::stoull(std::string(num)), dir + "/" + std::string(name));
    }
    ::closedir(d);
  }
  std::sort(found.begin(), found.end());
  uint64_t replayed = 0;
  for (size_t i = 0; i < found.size(); ++i) {
    std::string data;
    if (!ReadWholeFile(found[i].second, &data)) {
      *err = "cannot read write-behind journal " + found[i].second + ": " + strerror(errno);
      return false;
    }
    uint64_t max_seq = 0;
    size_t good = ReadRecords(data, [&](std::string_view payload) {
      Change c;
      if (!DecodeChange(payload, &c)) return;
      max_seq = std::max(max_seq, c.seq);
      next_seq_ = std::max(next_seq_, c.seq + 1);
      ++replayed;
      replay(std::move(c));
    });
    if (good < data.size()) {
      LOG_WARNING("Write-behind journal {}: {} bytes after the last intact record cut off (a write the crash "
                  "interrupted, never acknowledged)",
                  found[i].second, data.size() - good);
      if (::truncate(found[i].second.c_str(), static_cast<off_t>(good)) != 0) {
        *err = "cannot truncate " + found[i].second + ": " + strerror(errno);
        return false;
      }
    }
    if (good == 0) {  // nothing in it: not worth keeping
      ::unlink(found[i].second.c_str());
      continue;
    }
    segments_.push_back(Segment{found[i].first, found[i].second, max_seq, good});
    bytes_ += good;
  }
  if (replayed) LOG_NOTICE("Write-behind journal: {} changes read back from {} segment(s)", replayed, found.size());
  return OpenSegment(err);
}

bool Journal::OpenSegment(std::string* err) {
  uint64_t number = segments_.empty() ? 1 : segments_.back().number + 1;
  char name[64];
  snprintf(name, sizeof(name), "%s%06llu%s", kSegmentPrefix, static_cast<unsigned long long>(number), kSegmentSuffix);
  std::string path = dir_ + "/" + name;
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) {
    *err = "cannot open write-behind journal " + path + ": " + strerror(errno);
    return false;
  }
  SyncDir(dir_);
  if (fd_ >= 0) {
    ::fdatasync(fd_);  // what it holds is on disk before appends move on
    ::close(fd_);
  }
  fd_ = fd;
  segments_.push_back(Segment{number, path, 0, 0});
  return true;
}

void Journal::Start(int shards, std::function<void(int, uint64_t)> durable, std::function<uint64_t()> needed,
                    std::function<std::vector<Change>()> live) {
  durable_ = std::move(durable);
  needed_ = std::move(needed);
  live_ = std::move(live);
  {
    std::lock_guard lock(mu_);
    appended_.assign(static_cast<size_t>(shards), 0);
  }
  thread_ = std::thread([this] { Run(); });
}

void Journal::Stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  std::lock_guard lock(mu_);
  // The queues have stopped: what they no longer need goes now rather than
  // being read back (and written, or refused, again) at the next start.
  if (fd_ >= 0 && needed_) DropFlushedSegments(needed_());
  if (fd_ >= 0) {
    ::fsync(fd_);
    ::close(fd_);
    fd_ = -1;
    // Nothing was ever written to the last segment: leave no empty file.
    if (segments_.size() == 1 && segments_.back().size == 0) ::unlink(segments_.back().path.c_str());
  }
}

uint64_t Journal::next_seq() const {
  std::lock_guard lock(mu_);
  return next_seq_;
}

uint64_t Journal::AppendBatch(std::vector<std::pair<Change, WriteQueue*>>& changes, int shard, bool* durable,
                              std::string* error) {
  uint64_t last;
  bool wake = false;
  *durable = false;
  {
    std::lock_guard lock(mu_);
    if (fd_ < 0) {
      *error = "the journal is closed (shutting down)";
      return 0;
    }
    scratch_.clear();
    for (auto& [c, queue] : changes) {
      c.seq = next_seq_++;
      AppendRecord(&scratch_, EncodeChange(c));
    }
    // Written now, by the calling thread (as Redis writes its AOF before
    // replying). A failed write (disk full) is cut back off the file, so
    // that later records stay readable, and fails these changes' commands.
    if (!WriteAll(fd_, scratch_)) {
      *error = strerror(errno);
      if (::ftruncate(fd_, static_cast<off_t>(segments_.back().size)) != 0) {
        std::string ignored;
        OpenSegment(&ignored);  // the tail cannot be cut: continue in a new segment
      }
      LOG_WARNING("Write-behind journal: write failed: {}", *error);
      return 0;
    }
    for (auto& [c, queue] : changes)
      if (queue) queue->Add(std::move(c));
    last = next_seq_ - 1;
    segments_.back().size += scratch_.size();
    segments_.back().max_seq = last;
    bytes_ += scratch_.size();
    dirty_ = true;
    *durable = policy_.load() != FsyncPolicy::kAlways;
    if (!*durable) {
      // The journal thread syncs, then releases the replies (group commit).
      if (shard >= 0 && static_cast<size_t>(shard) < appended_.size()) appended_[static_cast<size_t>(shard)] = last;
      wake = !sync_wanted_;
      sync_wanted_ = true;
    }
  }
  if (wake) cv_.notify_one();
  return last;
}

bool Journal::Append(Change* c, int shard, WriteQueue* queue, std::string* error) {
  std::vector<std::pair<Change, WriteQueue*>> one;
  one.emplace_back(*c, queue);
  bool durable;
  uint64_t seq = AppendBatch(one, shard, &durable, error);
  c->seq = seq;
  return seq != 0;
}

void Journal::Run() {
  int64_t last_sync_us = MonotonicUs();
  int64_t last_gc_us = 0;
  for (;;) {
    MemoryBudget::PublishHelperThread();
    std::vector<uint64_t> done;
    bool sync = false;
    int fd;
    {
      std::unique_lock lock(mu_);
      cv_.wait_for(lock, std::chrono::milliseconds(100), [this] { return stopping_ || sync_wanted_; });
      if (stopping_ && !sync_wanted_) return;
      int64_t now = MonotonicUs();
      sync = dirty_ && (sync_wanted_ || (policy_.load() == FsyncPolicy::kEverysec && now - last_sync_us >= 1'000'000));
      if (sync) {
        dirty_ = false;
        last_sync_us = now;
      }
      sync_wanted_ = false;
      done = appended_;
      std::fill(appended_.begin(), appended_.end(), 0);
      fd = fd_;
    }
    // Everything written before the snapshot above is in `fd` (a segment is
    // synced before it is replaced, on this thread).
    if (sync) ::fdatasync(fd);
    for (size_t s = 0; s < done.size(); ++s)
      if (done[s]) durable_(static_cast<int>(s), done[s]);
    int64_t now = MonotonicUs();
    if (now - last_gc_us >= 100'000) {
      last_gc_us = now;
      uint64_t needed = needed_();
      std::lock_guard lock(mu_);
      if (segments_.back().size >= segment_bytes_) {
        std::string err;
        if (!OpenSegment(&err)) LOG_WARNING("Write-behind journal: {}", err);
      }
      DropFlushedSegments(needed);
      MaybeCompact();
    }
  }
}

void Journal::MaybeCompact() {
  const uint64_t kCompactAbove = 4 * segment_bytes_;
  uint64_t size = bytes_.load();
  if (segments_.size() < 3 || size < kCompactAbove || size < 2 * compacted_bytes_) return;
  // Under mu_: no shard appends meanwhile, and each change appended so far
  // is in a queue (AppendBatch adds it there in the same locked step).
  std::vector<Change> live = live_();
  std::string err;
  if (!OpenSegment(&err)) {
    LOG_WARNING("Write-behind journal: cannot compact: {}", err);
    return;
  }
  std::string data;
  for (const Change& c : live) AppendRecord(&data, EncodeChange(c));
  if (!WriteAll(fd_, data) || ::fdatasync(fd_) != 0) {
    // The old segments stay; appends continue in the new one after this.
    LOG_WARNING("Write-behind journal: compaction write failed: {}", strerror(errno));
    compacted_bytes_ = size;
    return;
  }
  Segment fresh = segments_.back();
  fresh.size = data.size();
  fresh.max_seq = next_seq_ - 1;
  for (size_t i = 0; i + 1 < segments_.size(); ++i) ::unlink(segments_[i].path.c_str());
  SyncDir(dir_);
  segments_.assign(1, fresh);
  bytes_ = data.size();
  compacted_bytes_ = std::max<uint64_t>(data.size(), 1);
  LOG_NOTICE("Write-behind journal compacted: {} MB of segments now {} changes in {} MB", size >> 20, live.size(),
             data.size() >> 20);
}

void Journal::DropFlushedSegments(uint64_t needed) {
  // Every segment but the one being appended to whose changes all precede
  // the oldest change still needed.
  while (segments_.size() > 1 && segments_.front().max_seq < needed) {
    ::unlink(segments_.front().path.c_str());
    bytes_ -= segments_.front().size;
    segments_.erase(segments_.begin());
  }
  // The current segment too, once it is all flushed: a fresh one replaces it.
  Segment& cur = segments_.back();
  if (cur.size > 0 && cur.max_seq < needed && segments_.size() == 1) {
    std::string err;
    uint64_t old_size = cur.size;
    std::string old_path = cur.path;
    if (OpenSegment(&err)) {
      ::unlink(old_path.c_str());
      bytes_ -= old_size;
      segments_.erase(segments_.begin());
    }
  }
}

}  // namespace larder::cache
