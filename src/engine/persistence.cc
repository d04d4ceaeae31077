#include "engine/persistence.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <absl/strings/str_split.h>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "common/file_io.h"
#include "common/log.h"
#include "common/numbers.h"
#include "common/strings.h"
#include "common/version.h"
#include "engine/engine.h"
#include "keyspace/db.h"
#include "keyspace/eviction.h"
#include "rdb/rdb.h"
#include "script/store.h"

namespace larder {

namespace {

// The file a snapshot writes before it renames it into place: temp-<pid>.rdb
// beside the final file, the name Redis uses (its shutdown tests look for
// it, and an operator's cleanup scripts may too).
std::string TempSnapshotPath(const std::string& final_path) {
  size_t slash = final_path.find_last_of('/');
  std::string dir = slash == std::string::npos ? "" : final_path.substr(0, slash + 1);
  return dir + "temp-" + std::to_string(getpid()) + ".rdb";
}

// A shard hands its records over in chunks of about this size; while more
// than kMaxQueued bytes wait for the disk its scan pauses (what commands
// make it write before they change a key cannot wait).
constexpr size_t kChunkBytes = 256 << 10;
constexpr size_t kMaxQueued = 32 << 20;
constexpr size_t kSpares = 16;  // chunk buffers kept for reuse
// How long one slice of a shard's scan may run before the shard serves its
// clients again.
constexpr int64_t kSliceUs = 500;
// A background save's slices, while the shard has clients to serve: short
// (a command that arrives during one waits at most this long), each followed
// by as long again with the scan paused (docs/benchmarks.md, "Snapshots").
constexpr int64_t kBgSliceUs = 50;
// A shard counts as serving clients for this long after its loop last
// handled an event; an idle shard scans at full speed.
constexpr int64_t kTrafficUs = 10'000;

int64_t NowMs() { return UnixTimeMs(); }

rdb::AccessInfo AccessNow() {
  switch (CurrentAccessMode()) {
    case AccessMode::kLru: return rdb::AccessInfo::kIdle;
    case AccessMode::kLfu: return rdb::AccessInfo::kFreq;
    default: return rdb::AccessInfo::kNone;
  }
}

}  // namespace

// ------------------------------------------------------------------ a snapshot

struct Chunk {
  int db = 0;
  std::string bytes;
  bool last = false;  // the shard is done
};

class SnapshotJob;

// One shard's part: its scan and the hook its keyspace calls before a change.
class ShardSnapshot final : public SnapshotHook {
 public:
  ShardSnapshot(SnapshotJob* job, Shard* shard, rdb::Writer::Options opts, uint8_t mark, int64_t delay_us)
      : job_(job), shard_(shard), w_(opts), mark_(mark), access_(AccessNow()), delay_us_(delay_us) {}

  void Save(Db& db, Entry* e) override { Write(db.index(), e); }
  void SaveAll(Db& db) override {
    uint64_t cursor = 0;
    do {
      cursor = db.table().Scan(cursor, [&](Entry* e) { Write(db.index(), e); });
    } while (cursor != 0);
  }
  // One slice of the scan; false when the shard's part is complete.
  bool Step(int64_t slice_us);
  // rdb-key-save-delay: the scan may not write its next key yet.
  bool throttled() const { return delay_us_ > 0 && MonotonicUs() < next_key_us_; }
  uint64_t keys_written() const { return keys_; }
  // Whether the shard's loop handled events (`events`: its loop's count) in
  // the last kTrafficUs.
  bool Traffic(uint64_t events, int64_t now_us) {
    if (events != events_seen_) {
      events_seen_ = events;
      traffic_us_ = now_us;
    }
    return now_us - traffic_us_ < kTrafficUs;
  }

 private:
  void Write(int db, Entry* e);
  void Flush();

  SnapshotJob* job_;
  Shard* shard_;
  rdb::Writer w_;
  uint8_t mark_;
  rdb::AccessInfo access_;
  int chunk_db_ = -1;
  uint64_t events_seen_ = 0;
  int64_t traffic_us_ = 0;
  size_t db_ = 0;
  uint64_t cursor_ = 0;
  uint64_t keys_ = 0;
  int64_t delay_us_;
  int64_t next_key_us_ = 0;
};

class SnapshotJob {
 public:
  SnapshotJob(Persistence* owner, SnapshotRequest req, int shards)
      : owner_(owner), req_(std::move(req)), parked_(std::make_unique<std::atomic<bool>[]>(static_cast<size_t>(shards))) {}

  SnapshotRequest& request() { return req_; }
  // From the shards.
  void Push(Chunk c) {
    std::lock_guard lock(mu_);
    queued_ += c.bytes.size();
    q_.push_back(std::move(c));
    cv_.notify_one();
  }
  void Push(int db, rdb::Writer& w) {
    std::lock_guard lock(mu_);
    std::string bytes = w.Take(Spare());
    queued_ += bytes.size();
    q_.push_back(Chunk{db, std::move(bytes), false});
    cv_.notify_one();
  }
  // As Push, but only if the queue's lock is free: a shard never waits for
  // the writer thread (which runs at a lower priority and may hold it while
  // preempted); the caller keeps its bytes and tries again later.
  bool TryPush(int db, rdb::Writer& w) {
    std::unique_lock lock(mu_, std::try_to_lock);
    if (!lock.owns_lock()) return false;
    std::string bytes = w.Take(Spare());
    queued_ += bytes.size();
    q_.push_back(Chunk{db, std::move(bytes), false});
    cv_.notify_one();
    return true;
  }
  // A buffer the writer thread is done with (mu_ held), or an empty one.
  // Chunks go round between the shards and the writer rather than being
  // allocated and freed: a freed chunk's pages are purged later by the
  // allocator, in whatever thread allocates next (a shard's, mid-command).
  std::string Spare() {
    if (spare_.empty()) return {};
    std::string b = std::move(spare_.back());
    spare_.pop_back();
    return b;
  }
  bool backlogged() const { return queued_.load(std::memory_order_relaxed) > kMaxQueued; }
  bool discarding() const { return failed_.load(std::memory_order_relaxed); }

  // At the cut (every shard parked).
  void Cut(Engine& engine) {
    rdb::Writer::Options opts;
    opts.compress = engine.config().Get("rdbcompression").value_or("yes") == "yes";
    opts.checksum = engine.config().Get("rdbchecksum").value_or("yes") == "yes";
    opts_ = opts;
    // Synced every 4 MB as it grows: a dump by rdb-save-incremental-fsync,
    // an AOF's RDB base by aof-rewrite-incremental-fsync (as Redis).
    incremental_sync_ =
        engine.config()
            .Get(req_.aof_base ? "aof-rewrite-incremental-fsync" : "rdb-save-incremental-fsync")
            .value_or("yes") == "yes";
    // The shards' records carry no CRC of their own: the file's is the
    // writer thread's, over the framed whole.
    rdb::Writer::Options shard_opts = opts;
    shard_opts.checksum = false;
    ShardSet& set = engine.shards();
    int ndb = set.num_dbs();
    sizes_.assign(static_cast<size_t>(ndb), {0, 0});
    for (int i = 0; i < set.size(); ++i) {
      Shard& s = set.shard(i);
      for (int d = 0; d < ndb; ++d) {
        sizes_[static_cast<size_t>(d)].first += s.db(d).size();
        sizes_[static_cast<size_t>(d)].second += s.db(d).expires();
      }
      uint8_t mark = static_cast<uint8_t>(s.stats().snap_mark ^ Entry::kSnapMark);
      s.stats().snap_mark = mark;
      parts_.push_back(
          std::make_unique<ShardSnapshot>(this, &s, shard_opts, mark, engine.config().rdb_key_save_delay.load()));
      s.stats().snapshot = parts_.back().get();
    }
    shards_left_ = set.size();
    uint64_t keys = 0;
    for (auto& [n, x] : sizes_) keys += n;
    total.store(keys);
    auto libs = script::Functions().Snapshot();
    for (const auto& [name, lib] : *libs) functions_.push_back(lib.code);
    used_mem_ = engine.memory().Used();
    for (int i = 0; i < set.size(); ++i) {
      Shard* s = &set.shard(i);
      ShardSnapshot* part = parts_[static_cast<size_t>(i)].get();
      s->Post([this, s, part] { Pump(s, part); });
    }
    if (req_.on_cut) req_.on_cut();
  }

  void Pump(Shard* s, ShardSnapshot* part) {
    if (backlogged() || part->throttled()) {  // the engine's 10 ms cron resumes it (Resume)
      parked_[static_cast<size_t>(s->id())].store(true);
      return;
    }
    int64_t start = MonotonicUs();
    bool more = part->Step(req_.background ? kBgSliceUs : kSliceUs);
    if (more) {
      int64_t now = MonotonicUs();
      if (req_.background && part->Traffic(s->loop().events(), now)) {
        // Clients are being served: leave the thread (and the core) idle
        // for as long as the slice took before the next one, serving I/O
        // as it comes. A scan at full speed takes a core per shard from
        // whatever else the machine runs; here that would be the clients.
        s->PostAt(now + (now - start), [this, s, part] { Pump(s, part); });
        return;
      }
      // The next slice after the shard has served its connections (a Post
      // would run it again within the same drain, before any I/O).
      s->PostAfterIo([this, s, part] { Pump(s, part); });
      return;
    }
    s->stats().snapshot = nullptr;
    keys_.fetch_add(part->keys_written(), std::memory_order_relaxed);
    Push(Chunk{0, {}, true});
  }

  void Resume(Shard* s) {
    if (!parked_[static_cast<size_t>(s->id())].exchange(false)) return;
    ShardSnapshot* part = parts_[static_cast<size_t>(s->id())].get();
    Pump(s, part);
  }

  // The writer thread: frames the shards' chunks into one file.
  void WriterMain();
  std::thread& thread() { return thread_; }

 private:
  bool Fail(std::string what) {
    if (error_.empty()) error_ = std::move(what);
    failed_.store(true);
    return false;
  }
  bool Flush(rdb::Writer& w, int fd, IncrementalSync& sync, bool force) {
    if (!force && w.pending() < (1u << 20)) return true;
    out_ = w.Take(std::move(out_));
    if (!WriteAll(fd, out_)) return Fail(fmt::format("Write error saving DB on disk: {}", strerror(errno)));
    sync.Wrote(out_.size());
    return true;
  }

  Persistence* owner_;
  SnapshotRequest req_;
  rdb::Writer::Options opts_;
  std::vector<std::unique_ptr<ShardSnapshot>> parts_;
  std::vector<std::pair<uint64_t, uint64_t>> sizes_;
  std::vector<std::string> functions_;
  int64_t used_mem_ = 0;
  std::atomic<uint64_t> keys_{0};
  std::unique_ptr<std::atomic<bool>[]> parked_;

 public:
  std::atomic<uint64_t> processed{0};  // INFO current_save_keys_*
  std::atomic<uint64_t> total{0};

 private:

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Chunk> q_;
  std::vector<std::string> spare_;  // guarded by mu_
  std::string out_;                 // the writer thread's: what it writes next
  bool incremental_sync_ = true;    // rdb-save-incremental-fsync
  std::atomic<size_t> queued_{0};
  int shards_left_ = 0;
  std::atomic<bool> failed_{false};
  std::string error_;
  std::thread thread_;
  friend class Persistence;
};

void ShardSnapshot::Write(int db, Entry* e) {
  if ((e->flags & Entry::kSnapMark) == mark_) return;
  e->flags = static_cast<uint8_t>((e->flags & ~Entry::kSnapMark) | mark_);
  if (job_->discarding()) return;
  if (db != chunk_db_) {
    Flush();
    chunk_db_ = db;
  }
  rdb::WriteKey(w_, e, access_);
  ++keys_;
  job_->processed.fetch_add(1, std::memory_order_relaxed);
  if (w_.pending() >= kChunkBytes) job_->TryPush(chunk_db_, w_);
}

void ShardSnapshot::Flush() {
  if (w_.pending() == 0) return;
  job_->Push(chunk_db_, w_);
}

bool ShardSnapshot::Step(int64_t slice_us) {
  int64_t start = MonotonicUs();
  std::vector<Db>& dbs = shard_->dbs();
  if (delay_us_ > 0) {
    // A few keys, then a pause: on average one key per delay (the test
    // knob's pace; the pause is at least one 10 ms cron tick).
    uint64_t batch = static_cast<uint64_t>(std::max<int64_t>(1, 10000 / delay_us_));
    uint64_t before = keys_;
    while (db_ < dbs.size() && keys_ - before < batch) {
      Db& db = dbs[db_];
      cursor_ = db.table().Scan(cursor_, [&](Entry* e) { Write(static_cast<int>(db_), e); });
      if (cursor_ == 0) {
        ++db_;
        Flush();
      }
    }
    next_key_us_ = MonotonicUs() + delay_us_ * static_cast<int64_t>(keys_ - before);
    if (db_ < dbs.size()) return true;
    Flush();
    return false;
  }
  while (db_ < dbs.size()) {
    Db& db = dbs[db_];
    cursor_ = db.table().ScanMany(cursor_, 32, [&](Entry* e) { Write(static_cast<int>(db_), e); });
    if (cursor_ == 0) {
      ++db_;
      Flush();
    }
    if (MonotonicUs() - start >= slice_us) return db_ < dbs.size();
  }
  Flush();
  return false;
}

void SnapshotJob::WriterMain() {
  // A background save's writer gives way to the shards: at the lowest
  // priority it does not preempt a shard thread when a chunk wakes it (its
  // copy, CRC and write() would otherwise delay that shard's clients by a
  // millisecond or more on a busy machine); it still gets a share of the CPU
  // when there is no idle core. (Raising one's own niceness needs no
  // privilege; on Linux it applies to this thread only.)
  if (req_.background) setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), 19);
  std::string tmp = TempSnapshotPath(req_.path);
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) Fail(fmt::format("Failed opening the temp RDB file {} (in server root dir {}) for saving: {}", tmp,
                               req_.path.substr(0, req_.path.find_last_of('/') + 1), strerror(errno)));
  IncrementalSync sync(fd, incremental_sync_);
  rdb::Writer w(opts_);
  rdb::WriteHeader(w);
  rdb::WriteAux(w, "redis-ver", kRedisVersion);
  rdb::WriteAuxInt(w, "redis-bits", 64);
  rdb::WriteAuxInt(w, "ctime", NowMs() / 1000);
  rdb::WriteAuxInt(w, "used-mem", used_mem_);
  rdb::WriteAuxInt(w, "aof-base", req_.aof_base ? 1 : 0);
  for (const std::string& code : functions_) rdb::WriteFunction(w, code);
  std::vector<bool> selected(sizes_.size(), false);
  int current_db = -1;
  Chunk c;
  while (true) {
    {
      std::unique_lock lock(mu_);
      if (c.bytes.capacity() != 0 && spare_.size() < kSpares) {
        c.bytes.clear();
        spare_.push_back(std::move(c.bytes));
      }
      cv_.wait(lock, [&] { return !q_.empty(); });
      c = std::move(q_.front());
      q_.pop_front();
      queued_ -= c.bytes.size();
    }
    if (c.last) {
      if (--shards_left_ == 0) break;
      continue;
    }
    if (fd < 0 || failed_.load()) continue;  // drain: the shards keep going
    if (c.db != current_db) {
      current_db = c.db;
      rdb::WriteSelectDb(w, c.db);
      if (!selected[static_cast<size_t>(c.db)]) {
        selected[static_cast<size_t>(c.db)] = true;
        rdb::WriteResizeDb(w, sizes_[static_cast<size_t>(c.db)].first, sizes_[static_cast<size_t>(c.db)].second);
      }
    }
    w.Raw(c.bytes);
    Flush(w, fd, sync, false);
  }
  bool ok = fd >= 0 && !failed_.load();
  if (ok) {
    rdb::WriteEof(w);
    ok = Flush(w, fd, sync, true);
  }
  if (ok && fsync(fd) != 0) ok = Fail(fmt::format("Write error saving DB on disk: {}", strerror(errno)));
  if (fd >= 0) close(fd);
  if (ok && rename(tmp.c_str(), req_.path.c_str()) != 0)
    ok = Fail(fmt::format("Error moving temp DB file {} on the final destination {}: {}", tmp, req_.path,
                          strerror(errno)));
  if (!ok) unlink(tmp.c_str());
  if (ok) {
    // The rename itself survives a crash once the directory is synced.
    std::string dir = req_.path.substr(0, req_.path.find_last_of('/') + 1);
    SyncDir(dir);
  }
  owner_->Finished(this, ok, error_, keys_.load());
}

// ------------------------------------------------------------------ Persistence

Persistence::Persistence(Engine* engine) : engine_(engine) { last_save_s_ = NowMs() / 1000; }

Persistence::~Persistence() {
  std::unique_ptr<SnapshotJob> job;
  {
    std::lock_guard lock(mu_);
    job = std::move(finished_job_);
  }
  if (job && job->thread().joinable()) job->thread().join();
}

bool Persistence::StartSnapshot(SnapshotRequest req, std::string* error) {
  bool expected = false;
  if (!running_.compare_exchange_strong(expected, true)) {
    *error = "Background save already in progress";
    return false;
  }
  {
    // The previous job's thread is done (it cleared running_ last): reap it.
    std::unique_ptr<SnapshotJob> old;
    {
      std::lock_guard lock(mu_);
      old = std::move(finished_job_);
    }
    if (old && old->thread().joinable()) old->thread().join();
  }
  // (The cron's Resume may see the job before its cut: nothing is parked yet.)
  auto* job = new SnapshotJob(this, std::move(req), engine_->shards().size());
  started_ms_.store(NowMs());
  dirty_at_start_.store(dirty());
  ShardSet& set = engine_->shards();
  std::vector<int> all;
  for (int i = 0; i < set.size(); ++i) all.push_back(i);
  Engine* engine = engine_;
  current_job_.store(job);
  set.RunExclusive(
      all,
      [job, engine] {
        job->Cut(*engine);
        job->thread() = std::thread([job] { job->WriterMain(); });
      },
      [] {});
  return true;
}

void Persistence::Finished(SnapshotJob* job, bool ok, const std::string& error, uint64_t keys) {
  int64_t now = NowMs();
  int64_t took = (now - started_ms_.load()) / 1000;
  bool background = job->request().background;
  if (background) last_bgsave_time_s_.store(took);
  // A foreground save that worked clears an earlier background failure
  // (Redis sets lastbgsave_status to ok in rdbSave); one that failed
  // leaves the status as it was.
  if (background || ok) last_bgsave_ok_.store(ok);
  if (ok) {
    last_save_s_.store(now / 1000);
    saves_.fetch_add(1);
    // Changes made while it ran are not in the file: they still count.
    saved_dirty_.store(dirty_at_start_.load());
    LOG_NOTICE("DB saved on disk ({} keys, {} s)", keys, took);
  } else if (background) {
    LOG_WARNING("Background saving error: {}", error);
    last_error_time_s_.store(now / 1000);
  } else {
    LOG_WARNING("{}", error);
  }
  if (ok) gate_.fetch_and(~kGateMisconf);
  else if (background) gate_.fetch_or(kGateMisconf);
  auto done = std::move(job->request().done);
  current_job_.store(nullptr);
  {
    std::lock_guard lock(mu_);
    finished_job_.reset(job);  // joined by the next snapshot or the destructor
  }
  running_.store(false, std::memory_order_release);
  if (done) done(ok, error);
}

// ------------------------------------------------------------------ loading

namespace {

struct Loaded {
  int db;
  Entry* e;
};

class ShardLoader final : public rdb::LoadHandler {
 public:
  ShardLoader(Engine* engine, Persistence* p, bool merge) : engine_(engine), p_(p), merge_(merge) {
    batches_.resize(static_cast<size_t>(engine->shards().size()));
    ndb_ = engine->shards().num_dbs();
    now_ms_ = NowMs();
    delay_us_ = engine->config().key_load_delay.load();
    RefreshCommandTime();  // the LRU clock of this thread
  }
  ~ShardLoader() override {
    for (auto& b : batches_)
      for (Loaded& l : b) FreeEntry(l.e);
  }

  bool Function(std::string_view code, std::string* error) override {
    script::Library lib;
    if (!script::BuildLibrary(code, &lib, error)) return false;
    return script::Functions().Update([&](script::Libraries::Set& set) {
      for (auto it = set.begin(); it != set.end(); ++it)
        if (it->first == lib.name) {
          if (!merge_) {
            *error = fmt::format("Library '{}' already exists", lib.name);
            return false;
          }
          set.erase(it);
          break;
        }
      for (const auto& f : lib.functions)
        if (script::Libraries::LibraryOf(set, f.name, nullptr)) {
          *error = fmt::format("Function {} already exists", f.name);
          return false;
        }
      std::string name = lib.name;
      set[name] = std::move(lib);
      return true;
    });
  }

  bool Key(int db, Entry* e, int64_t idle_s, int freq, std::string* error) override {
    if (db < 0 || db >= ndb_) {
      FreeEntry(e);
      *error = fmt::format("FATAL: Data file was created with a Redis server configured to handle more than {} "
                           "databases. Exiting\n",
                           ndb_);
      return false;
    }
    if (e->has_expire() && e->expire_ms() < now_ms_) {
      FreeEntry(e);
      ++expired_;
      return true;
    }
    if (delay_us_ > 0) std::this_thread::sleep_for(std::chrono::microseconds(delay_us_));
    else if (delay_us_ < 0 && ++delayed_keys_ % static_cast<uint64_t>(-delay_us_) == 0)
      std::this_thread::sleep_for(std::chrono::microseconds(1));
    if (idle_s >= 0) e->access = LruClock() - static_cast<uint32_t>(idle_s) * kLruTicksPerSecond;
    else TouchAccess(e);
    if (freq >= 0) e->lfu = static_cast<uint8_t>(freq);
    int s = engine_->shards().ShardOf(e->key());
    auto& b = batches_[static_cast<size_t>(s)];
    b.push_back({db, e});
    ++loaded_;
    if (b.size() >= 256) Send(s);
    return true;
  }

  void Progress(uint64_t bytes) override {
    p_->SetLoadProgress(bytes);
    RefreshCommandTime();
  }
  void EmptyKeySkipped(std::string_view key) override {
    // As Redis: the first ten by name, then only the count at the end.
    if (empty_skipped_++ < 10) LOG_WARNING("rdbLoadObject skipping empty key: {}", key);
  }
  uint64_t empty_skipped() const { return empty_skipped_; }

  // Hands every batch over and waits until the shards took them.
  void Finish() {
    for (int s = 0; s < static_cast<int>(batches_.size()); ++s) Send(s);
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return inflight_ == 0; });
  }
  uint64_t loaded() const { return loaded_; }
  uint64_t expired() const { return expired_; }

 private:
  void Send(int s) {
    auto& b = batches_[static_cast<size_t>(s)];
    if (b.empty()) return;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return inflight_ < 64; });
      ++inflight_;
    }
    Shard& shard = engine_->shards().shard(s);
    shard.Post([this, &shard, batch = std::move(b)]() mutable {
      for (Loaded& l : batch) {
        Db& db = shard.db(l.db);
        Entry* old = db.Detach(l.e->key());
        if (old) FreeEntry(old);
        db.AddQuiet(l.e);
      }
      std::lock_guard lock(mu_);
      --inflight_;
      cv_.notify_all();
    });
    b.clear();
  }

  Engine* engine_;
  Persistence* p_;
  bool merge_;  // a library that exists is replaced (else the load fails)
  std::vector<std::vector<Loaded>> batches_;
  int ndb_;
  int64_t now_ms_;
  int64_t delay_us_ = 0;
  uint64_t delayed_keys_ = 0;  // keys since the load began (negative delays)
  uint64_t loaded_ = 0, expired_ = 0;
  uint64_t empty_skipped_ = 0;
  std::mutex mu_;
  std::condition_variable cv_;
  int inflight_ = 0;
};

}  // namespace

rdb::Limits RdbLimits(const Config& c) {
  auto sz = [](const std::atomic<int64_t>& v) { return static_cast<size_t>(std::max<int64_t>(v.load(), 0)); };
  rdb::Limits l;
  l.hash = HashLimits{sz(c.hash_max_listpack_entries), sz(c.hash_max_listpack_value)};
  l.zset = ZSetLimits{sz(c.zset_max_listpack_entries), sz(c.zset_max_listpack_value)};
  l.set_max_intset_entries = sz(c.set_max_intset_entries);
  l.list_fill = static_cast<int>(std::clamp<int64_t>(c.list_max_listpack_size.load(), INT_MIN, INT_MAX));
  l.list_depth = static_cast<int>(std::clamp<int64_t>(c.list_compress_depth.load(), 0, INT_MAX));
  l.stream_node_max_bytes = c.stream_node_max_bytes.load();
  l.stream_node_max_entries = c.stream_node_max_entries.load();
  l.progress_bytes = static_cast<uint64_t>(c.loading_process_events_interval_bytes.load());
  return l;
}

bool Persistence::LoadRdb(rdb::Reader& r, std::string* error, bool merge) {
  ShardLoader loader(engine_, this, merge);
  bool ok = rdb::LoadFile(r, RdbLimits(engine_->config()), loader, error);
  loader.Finish();
  last_load_loaded_.store(loader.loaded());
  last_load_expired_.store(loader.expired());
  if (loader.empty_skipped() > 0) LOG_NOTICE("Done loading RDB, empty keys skipped: {}", loader.empty_skipped());
  return ok;
}

bool Persistence::LoadFileAtStart(const std::string& path, std::string* error) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return true;
    *error = fmt::format("Fatal error loading the DB: {}. Exiting.", strerror(errno));
    return false;
  }
  struct stat st {};
  fstat(fd, &st);
  BeginLoading(static_cast<uint64_t>(st.st_size));
  int64_t t0 = MonotonicUs();
  rdb::Reader r(fd);
  bool ok = LoadRdb(r, error);
  close(fd);
  EndLoading();
  if (ok) {
    LOG_NOTICE("DB loaded from disk: {:.3f} seconds ({} keys, {} expired)",
               static_cast<double>(MonotonicUs() - t0) / 1e6, last_load_loaded_.load(), last_load_expired_.load());
  } else {
    // The shape of Redis's log for a file that does not read: the error,
    // then the report of its in-process redis-check-rdb, then the exit line
    // (operators' alerts and Redis's corrupt-dump tests look for these).
    LOG_WARNING("Internal error in RDB reading: {}", *error);
    LOG_WARNING("--- RDB ERROR DETECTED ---");
    LOG_WARNING("[info] {} keys read", last_load_loaded_.load());
    LOG_WARNING("[error] {}", *error);
    *error = "Terminating server after rdb file reading failure.";
  }
  return ok;
}

void Persistence::BeginLoading(uint64_t total) {
  load_total_.store(total);
  load_done_.store(0);
  load_start_s_.store(NowMs() / 1000);
  loading_.store(true);
  gate_.fetch_or(kGateLoading);
}

void Persistence::EndLoading() {
  loading_.store(false);
  gate_.fetch_and(~kGateLoading);
}

std::string Persistence::DumpPath() const {
  std::string dir = engine_->config().dir();
  std::string name = engine_->config().Get("dbfilename").value_or("dump.rdb");
  if (dir.empty()) return name;
  return dir.back() == '/' ? dir + name : dir + "/" + name;
}

bool Persistence::SaveBlocking(std::string* error, const std::function<void()>& while_waiting) {
  std::promise<std::pair<bool, std::string>> result;
  auto future = result.get_future();
  for (;;) {
    SnapshotRequest req;
    req.path = DumpPath();
    req.done = [&result](bool ok, const std::string& e) { result.set_value({ok, e}); };
    std::string busy;
    if (StartSnapshot(std::move(req), &busy)) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  while (future.wait_for(std::chrono::milliseconds(100)) != std::future_status::ready)
    if (while_waiting) while_waiting();
  auto [ok, e] = future.get();
  if (!ok) *error = e;
  return ok;
}

void Persistence::RemoveTempFile() const { unlink(TempSnapshotPath(DumpPath()).c_str()); }

void Persistence::Cron() {
  if (running_.load() || loading_.load()) return;
  int64_t now = UnixTimeMs() / 1000;
  bool start = save_scheduled_.exchange(false);
  if (!start) {
    // save <seconds> <changes> ...: a save once some point's both numbers
    // are reached; after a failure, retried every 5 s at most (as Redis).
    std::string points = engine_->config().Get("save").value_or("");
    std::vector<std::string> words = absl::StrSplit(points, ' ', absl::SkipEmpty());
    uint64_t changes = changes_since_save();
    bool may_try = last_bgsave_ok_.load() || now - last_try_s_.load() > 5;
    for (size_t i = 0; i + 1 < words.size() && may_try; i += 2) {
      int64_t secs = 0, min_changes = 0;
      if (!ParseInt64(words[i], &secs) || !ParseInt64(words[i + 1], &min_changes)) continue;
      if (changes >= static_cast<uint64_t>(min_changes) && now - last_save_s_.load() > secs) {
        LOG_NOTICE("{} changes in {} seconds. Saving...", min_changes, secs);
        start = true;
        break;
      }
    }
  }
  if (!start) return;
  last_try_s_.store(now);
  SnapshotRequest req;
  req.path = DumpPath();
  req.background = true;
  std::string error;
  if (StartSnapshot(std::move(req), &error)) LOG_NOTICE("Background saving started");
}

bool Persistence::RefusesWrites() const {
  Config& c = engine_->config();
  return !last_bgsave_ok_.load() && c.Get("stop-writes-on-bgsave-error").value_or("yes") == "yes" &&
         !c.Get("save").value_or("").empty();
}

void Persistence::SetLoadProgress(uint64_t bytes) { load_done_.store(bytes, std::memory_order_relaxed); }

void Persistence::Resume(Shard& shard) {
  if (SnapshotJob* job = current_job_.load()) job->Resume(&shard);
}

uint64_t Persistence::dirty() const {
  uint64_t n = 0;
  for (int i = 0; i < engine_->shards().size(); ++i) n += engine_->local(i).dirty.load(std::memory_order_relaxed);
  return n;
}

uint64_t Persistence::changes_since_save() const {
  uint64_t d = dirty(), saved = saved_dirty_.load();
  return d > saved ? d - saved : 0;
}

void Persistence::AppendInfo(std::string& out) const {
  bool loading = loading_.load();
  out += fmt::format("loading:{}\r\nasync_loading:0\r\n", loading ? 1 : 0);
  if (loading) {
    uint64_t total = load_total_.load(), done = load_done_.load();
    int64_t elapsed = NowMs() / 1000 - load_start_s_.load();
    double perc = total ? 100.0 * static_cast<double>(done) / static_cast<double>(total) : 0.0;
    int64_t eta = done && elapsed > 0 ? static_cast<int64_t>(static_cast<double>(total - done) *
                                                              static_cast<double>(elapsed) / static_cast<double>(done))
                                      : 1;
    out += fmt::format(
        "loading_start_time:{}\r\nloading_total_bytes:{}\r\nloading_rdb_used_mem:0\r\nloading_loaded_bytes:{}\r\n"
        "loading_loaded_perc:{:.2f}\r\nloading_eta_seconds:{}\r\n",
        load_start_s_.load(), total, done, perc, eta);
  }
  bool running = running_.load();
  uint64_t processed = 0, total = 0;
  if (SnapshotJob* job = current_job_.load()) {
    processed = job->processed.load(std::memory_order_relaxed);
    total = job->total.load(std::memory_order_relaxed);
  }
  out += fmt::format(
      "current_cow_peak:0\r\ncurrent_cow_size:0\r\ncurrent_cow_size_age:0\r\ncurrent_fork_perc:{:.2f}\r\n"
      "current_save_keys_processed:{}\r\ncurrent_save_keys_total:{}\r\n"
      "rdb_changes_since_last_save:{}\r\nrdb_bgsave_in_progress:{}\r\nrdb_last_save_time:{}\r\n"
      "rdb_last_bgsave_status:{}\r\nrdb_last_bgsave_time_sec:{}\r\nrdb_current_bgsave_time_sec:{}\r\n"
      "rdb_saves:{}\r\nrdb_last_cow_size:0\r\nrdb_last_load_keys_expired:{}\r\nrdb_last_load_keys_loaded:{}\r\n",
      total ? 100.0 * static_cast<double>(processed) / static_cast<double>(total) : 0.0, processed, total,
      changes_since_save(), running ? 1 : 0, last_save_s_.load(), last_bgsave_ok_.load() ? "ok" : "err",
      last_bgsave_time_s_.load(), running ? (NowMs() - started_ms_.load()) / 1000 : -1, saves_.load(),
      last_load_expired_.load(), last_load_loaded_.load());
}

}  // namespace larder
