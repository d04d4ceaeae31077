#include "cache/write_behind.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <future>
#include <map>

#include "cache/manager.h"
#include "common/clock.h"
#include "common/log.h"
#include "keyspace/memory_budget.h"

namespace larder::cache {

namespace {

constexpr char kSegmentPrefix[] = "larder-wb-";
constexpr char kSegmentSuffix[] = ".journal";
constexpr char kDeadLetterFile[] = "larder-wb-deadletters";
constexpr size_t kMaxRecord = 512ull << 20;

void PutU32(std::string* out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out->push_back(static_cast<char>(v >> (8 * i)));
}
void PutU64(std::string* out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out->push_back(static_cast<char>(v >> (8 * i)));
}
void PutBytes(std::string* out, std::string_view s) {
  PutU32(out, static_cast<uint32_t>(s.size()));
  out->append(s);
}

// Reads little-endian fields off the front of a view; false once it runs out.
struct Reader {
  std::string_view in;
  bool U32(uint32_t* v) {
    if (in.size() < 4) return false;
    *v = 0;
    for (int i = 0; i < 4; ++i) *v |= static_cast<uint32_t>(static_cast<unsigned char>(in[i])) << (8 * i);
    in.remove_prefix(4);
    return true;
  }
  bool U64(uint64_t* v) {
    uint32_t lo, hi;
    if (!U32(&lo) || !U32(&hi)) return false;
    *v = lo | (static_cast<uint64_t>(hi) << 32);
    return true;
  }
  bool Bytes(std::string* s) {
    uint32_t n;
    if (!U32(&n) || in.size() < n) return false;
    s->assign(in.substr(0, n));
    in.remove_prefix(n);
    return true;
  }
};

// A framed record: length, checksum, payload.
void AppendRecord(std::string* out, std::string_view payload) {
  PutU32(out, static_cast<uint32_t>(payload.size()));
  PutU32(out, XXH32(payload.data(), payload.size(), 0));
  out->append(payload);
}

// Splits `data` into intact records; returns how many bytes they cover.
size_t ReadRecords(std::string_view data, const std::function<void(std::string_view)>& fn) {
  size_t pos = 0;
  while (data.size() - pos >= 8) {
    Reader r{data.substr(pos)};
    uint32_t len, sum;
    r.U32(&len);
    r.U32(&sum);
    if (len > kMaxRecord || r.in.size() < len) break;
    std::string_view payload = r.in.substr(0, len);
    if (XXH32(payload.data(), payload.size(), 0) != sum) break;
    fn(payload);
    pos += 8 + len;
  }
  return pos;
}

bool ReadWholeFile(const std::string& path, std::string* out) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  out->clear();
  char buf[1 << 16];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof(buf))) > 0) out->append(buf, static_cast<size_t>(n));
  ::close(fd);
  return n == 0;
}

bool WriteAll(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

void SyncDir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

}  // namespace

std::string KeyId(int db, std::string_view key) {
  std::string id = std::to_string(db);
  id.push_back('\0');
  id.append(key);
  return id;
}

std::string EncodeChange(const Change& c) {
  std::string out;
  PutU64(&out, c.seq);
  PutU32(&out, static_cast<uint32_t>(c.db));
  out.push_back(c.del ? 1 : 0);
  PutU64(&out, static_cast<uint64_t>(c.at_ms));
  PutBytes(&out, c.key);
  PutU32(&out, static_cast<uint32_t>(c.values.size()));
  for (const auto& [name, value] : c.values) {
    PutBytes(&out, name);
    out.push_back(value ? 1 : 0);
    if (value) PutBytes(&out, *value);
  }
  return out;
}

bool DecodeChange(std::string_view in, Change* c) {
  Reader r{in};
  uint32_t db, n;
  uint64_t at;
  if (!r.U64(&c->seq) || !r.U32(&db) || r.in.empty()) return false;
  c->db = static_cast<int>(db);
  c->del = r.in[0] != 0;
  r.in.remove_prefix(1);
  if (!r.U64(&at) || !r.Bytes(&c->key) || !r.U32(&n)) return false;
  c->at_ms = static_cast<int64_t>(at);
  c->values.clear();
  for (uint32_t i = 0; i < n; ++i) {
    std::string name, value;
    if (!r.Bytes(&name) || r.in.empty()) return false;
    bool has = r.in[0] != 0;
    r.in.remove_prefix(1);
    if (has && !r.Bytes(&value)) return false;
    c->values.emplace_back(std::move(name), has ? std::optional<std::string>(std::move(value)) : std::nullopt);
  }
  return r.in.empty();
}

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

// ---- DeadLetters ----

namespace {
std::string EncodeDeadLetter(const DeadLetter& d) {
  std::string payload;
  PutU64(&payload, d.id);
  PutBytes(&payload, d.rule);
  PutBytes(&payload, d.error);
  PutU64(&payload, static_cast<uint64_t>(d.at_ms));
  PutBytes(&payload, EncodeChange(d.change));
  std::string record;
  AppendRecord(&record, payload);
  return record;
}
}  // namespace

bool DeadLetters::Open(const std::string& dir, std::string* err) {
  std::lock_guard lock(mu_);
  path_ = dir + "/" + kDeadLetterFile;
  std::string data;
  if (!ReadWholeFile(path_, &data)) {
    if (errno == ENOENT) return true;
    *err = "cannot read " + path_ + ": " + strerror(errno);
    return false;
  }
  size_t records = 0;
  ReadRecords(data, [&](std::string_view payload) {
    Reader r{payload};
    DeadLetter d;
    std::string change;
    uint64_t at;
    if (!r.U64(&d.id) || !r.Bytes(&d.rule) || !r.Bytes(&d.error) || !r.U64(&at) || !r.Bytes(&change)) return;
    d.at_ms = static_cast<int64_t>(at);
    if (!DecodeChange(change, &d.change)) return;
    ++records;
    next_id_ = std::max(next_id_, d.id + 1);
    Keep(std::move(d));
  });
  if (records != items_.size()) Save();  // superseded ones (appended over time) dropped from the file
  if (!items_.empty()) LOG_WARNING("Write-behind: {} dead letter(s) kept from before (CACHE DEADLETTER LIST)", items_.size());
  return true;
}

bool DeadLetters::Keep(DeadLetter d) {
  std::string key = KeyId(d.change.db, d.change.key);
  auto it = by_key_.find(key);
  if (it != by_key_.end()) {
    // The same journaled change again (read back from a segment that a crash
    // kept after it was set aside here): kept once.
    if (items_.at(it->second).change.seq == d.change.seq && d.id != it->second) return false;
    // A newer refused change of the key supersedes the older one.
    items_.erase(it->second);
  }
  by_key_[key] = d.id;
  uint64_t id = d.id;
  items_.emplace(id, std::move(d));
  return true;
}

void DeadLetters::Save() {
  std::string data;
  for (const auto& [id, d] : items_) data += EncodeDeadLetter(d);
  std::string tmp = path_ + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0 || !WriteAll(fd, data) || ::fsync(fd) != 0) {
    LOG_WARNING("Write-behind: cannot save dead letters to {}: {}", tmp, strerror(errno));
    if (fd >= 0) ::close(fd);
    return;
  }
  ::close(fd);
  ::rename(tmp.c_str(), path_.c_str());
  SyncDir(path_.substr(0, path_.rfind('/')));
}

void DeadLetters::Add(DeadLetter d) {
  std::lock_guard lock(mu_);
  d.id = next_id_++;
  std::string record = EncodeDeadLetter(d);
  if (!Keep(std::move(d))) return;
  // Appended (the file is rewritten only when letters are taken out): a
  // stream of refused changes costs one small write each.
  int fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0 || !WriteAll(fd, record) || ::fdatasync(fd) != 0)
    LOG_WARNING("Write-behind: cannot save a dead letter to {}: {}", path_, strerror(errno));
  if (fd >= 0) ::close(fd);
}

std::vector<DeadLetter> DeadLetters::List() const {
  std::lock_guard lock(mu_);
  std::vector<DeadLetter> out;
  for (const auto& [id, d] : items_) out.push_back(d);
  return out;
}

std::vector<DeadLetter> DeadLetters::Take(uint64_t id) {
  std::lock_guard lock(mu_);
  std::vector<DeadLetter> out;
  for (auto it = items_.begin(); it != items_.end();) {
    if (id != 0 && it->first != id) {
      ++it;
      continue;
    }
    by_key_.erase(KeyId(it->second.change.db, it->second.change.key));
    out.push_back(std::move(it->second));
    it = items_.erase(it);
  }
  if (!out.empty()) Save();
  return out;
}

bool DeadLetters::Holds(const Change& c) const {
  std::lock_guard lock(mu_);
  auto it = by_key_.find(KeyId(c.db, c.key));
  return it != by_key_.end() && items_.at(it->second).change.seq == c.seq;
}

size_t DeadLetters::size() const {
  std::lock_guard lock(mu_);
  return items_.size();
}

// ---- WriteQueue ----

void WriteQueue::Add(Change c) {
  std::string id = KeyId(c.db, c.key);
  bool wake = false;
  {
    std::lock_guard lock(mu_);
    auto it = pending_.find(id);
    if (it == pending_.end()) {
      uint64_t seq = c.seq;
      int64_t at = c.at_ms;
      pending_.emplace(id, Pending{std::move(c), seq, at});
      order_.push_back(std::move(id));
      // The flusher waits for the first change (to time the delay) or for a
      // full batch; while it is busy it looks again on its own.
      wake = pending_.size() == 1 || pending_.size() == static_cast<size_t>(rule_->rule.write_batch);
    } else {
      it->second.change = std::move(c);  // the last value wins
    }
  }
  rule_->stats.writes_queued.fetch_add(1, std::memory_order_relaxed);
  if (wake) cv_.notify_one();
}

std::optional<Change> WriteQueue::Lookup(int db, std::string_view key) const {
  std::string id = KeyId(db, key);
  std::lock_guard lock(mu_);
  auto it = pending_.find(id);
  if (it != pending_.end()) return it->second.change;
  for (const auto& p : inflight_)
    if (p.change.db == db && p.change.key == key) return p.change;
  return std::nullopt;
}

void WriteQueue::AppendLive(std::vector<Change>* out) const {
  std::lock_guard lock(mu_);
  for (const auto& p : inflight_) out->push_back(p.change);
  for (const auto& id : order_) out->push_back(pending_.at(id).change);
}

uint64_t WriteQueue::needed() const {
  std::lock_guard lock(mu_);
  uint64_t n = UINT64_MAX;
  for (const auto& p : inflight_) n = std::min(n, p.first_seq);
  // order_ is oldest first: its front has the lowest first_seq.
  if (!order_.empty()) n = std::min(n, pending_.at(order_.front()).first_seq);
  return n;
}

size_t WriteQueue::depth() const {
  std::lock_guard lock(mu_);
  return pending_.size() + inflight_.size();
}

int64_t WriteQueue::lag_ms() const {
  std::lock_guard lock(mu_);
  int64_t oldest = INT64_MAX;
  for (const auto& p : inflight_) oldest = std::min(oldest, p.first_at_ms);
  if (!order_.empty()) oldest = std::min(oldest, pending_.at(order_.front()).first_at_ms);
  return oldest == INT64_MAX ? 0 : std::max<int64_t>(0, UnixTimeMs() - oldest);
}

void WriteQueue::Start() {
  {
    std::lock_guard lock(mu_);
    stopping_ = false;
  }
  if (!thread_.joinable()) thread_ = std::thread([this] { Flusher(); });
}

void WriteQueue::Stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool WriteQueue::Sleep(int64_t ms) {
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, std::chrono::milliseconds(ms), [this] { return stopping_; });
  return !stopping_;
}

void WriteQueue::Flusher() {
  const Rule& rule = rule_->rule;
  size_t batch_size = static_cast<size_t>(rule.write_batch);
  std::vector<Pending> batch;
  for (;;) {
    batch.clear();
    {
      std::unique_lock lock(mu_);
      for (;;) {
        if (stopping_) return;
        if (!order_.empty()) {
          int64_t due = pending_.at(order_.front()).first_at_ms + rule.write_delay_ms;
          int64_t now = UnixTimeMs();
          if (pending_.size() >= batch_size || now >= due) break;
          cv_.wait_for(lock, std::chrono::milliseconds(std::min<int64_t>(due - now, 1000)));
        } else {
          cv_.wait(lock);
        }
      }
      while (!order_.empty() && batch.size() < batch_size) {
        auto it = pending_.find(order_.front());
        order_.pop_front();
        batch.push_back(std::move(it->second));
        pending_.erase(it);
      }
      inflight_.swap(batch);
    }
    // inflight_ is read here without the lock: only Lookup reads it too,
    // and nothing changes it until the batch is done.
    bool finished = Flush(inflight_);
    {
      std::lock_guard lock(mu_);
      inflight_.clear();
    }
    // The changes were allocated on the shards and are freed here.
    MemoryBudget::PublishHelperThread();
    if (!finished) return;
  }
}

ExecResult WriteQueue::Exec(const std::vector<Pending>& batch, size_t from, size_t count) {
  const Rule& rule = rule_->rule;
  std::vector<Statement> stmts;
  for (size_t i = from; i < from + count; ++i) {
    const Change& c = batch[i].change;
    const std::string& sql = c.del ? rule.delete_sql : rule.store_sql;
    if (sql.empty()) continue;  // a delete with no delete statement
    Statement st{sql, {}};
    Params placeholders;
    rule.pattern.Match(c.key, &placeholders);
    for (auto& [name, value] : placeholders) st.params.emplace_back(name, std::move(value));
    if (!c.del)
      for (const auto& v : c.values) st.params.push_back(v);
    stmts.push_back(std::move(st));
  }
  if (stmts.empty()) {
    ExecResult ok;
    ok.ok = true;
    return ok;
  }
  std::promise<ExecResult> done;
  auto fut = done.get_future();
  rule_->source->Exec(std::move(stmts), rule.load_timeout_ms,
                      [&done](ExecResult r) { done.set_value(std::move(r)); });
  return fut.get();
}

bool WriteQueue::Flush(const std::vector<Pending>& batch) {
  RuleStats& stats = rule_->stats;
  int64_t backoff = 100;
  // [from, from + count) is tried as one transaction; after a permanent
  // failure of a batch, its changes go one by one to find the refused ones.
  size_t from = 0, count = batch.size();
  bool singly = false;
  while (from < batch.size()) {
    ExecResult r = Exec(batch, from, count);
    if (r.ok) {
      stats.flush_batches.fetch_add(1, std::memory_order_relaxed);
      stats.rows_written.fetch_add(count, std::memory_order_relaxed);
      from += count;
      count = singly ? 1 : batch.size() - from;
      backoff = 100;
      continue;
    }
    stats.write_errors.fetch_add(1, std::memory_order_relaxed);
    if (r.transient) {
      stats.retries.fetch_add(1, std::memory_order_relaxed);
      if (!Sleep(backoff)) return false;  // stopping: the journal still has the changes
      backoff = std::min<int64_t>(backoff * 2, 5'000);
      continue;
    }
    if (count > 1) {
      singly = true;
      count = 1;
      continue;
    }
    const Change& c = batch[from].change;
    LOG_WARNING("Write-behind '{}': the database refused the change to '{}', kept as a dead letter: {}",
                rule_->rule.pattern.text(), c.key, r.error);
    stats.dead_letters.fetch_add(1, std::memory_order_relaxed);
    dead_->Add(DeadLetter{0, rule_->rule.pattern.text(), c, r.error, UnixTimeMs()});
    from += 1;
  }
  return true;
}

}  // namespace larder::cache
