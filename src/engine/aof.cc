#include "engine/aof.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <future>
#include <thread>

#include "common/clock.h"
#include "common/file_io.h"
#include "common/log.h"
#include "common/numbers.h"
#include "common/strings.h"
#include "engine/engine.h"
#include "engine/executor.h"
#include "keyspace/objects.h"
#include "rdb/rdb.h"
#include "script/store.h"
#include "shard/shard.h"

namespace larder {

namespace {

bool FileExists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

int64_t FileSize(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 ? static_cast<int64_t>(st.st_size) : 0;
}

bool ReadWhole(const std::string& path, std::string* out, std::string* error) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    *error = fmt::format("Fatal error: can't open the append log file {} for reading: {}", path, strerror(errno));
    return false;
  }
  out->clear();
  char buf[1 << 16];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      *error = fmt::format("Unrecoverable error reading the append only file {}: {}", path, strerror(errno));
      close(fd);
      return false;
    }
    if (n == 0) break;
    out->append(buf, static_cast<size_t>(n));
  }
  close(fd);
  return true;
}

// The base Redis writes for an empty dataset on server start: header, aux
// fields, EOF and checksum (rdb/rdb.h).
std::string EmptyRdbBase() {
  rdb::Writer w;
  rdb::WriteHeader(w);
  rdb::WriteAux(w, "redis-ver", "7.0.15");
  rdb::WriteAuxInt(w, "redis-bits", 64);
  rdb::WriteAuxInt(w, "ctime", UnixTimeMs() / 1000);
  rdb::WriteAuxInt(w, "used-mem", 0);
  rdb::WriteAuxInt(w, "aof-base", 1);
  rdb::WriteEof(w);
  return w.Take();
}

}  // namespace

Aof::Aof(Engine* engine) : engine_(engine) {}

Aof::~Aof() { Stop(); }

std::string Aof::Name() const { return engine_->config().Get("appendfilename").value_or("appendonly.aof"); }

std::string Aof::DirPath() const {
  return engine_->config().dir() + "/" + engine_->config().Get("appenddirname").value_or("appendonlydir");
}

std::string Aof::FilePath(const std::string& name) const { return DirPath() + "/" + name; }

void Aof::ApplyPolicy() {
  std::string p = engine_->config().Get("appendfsync").value_or("everysec");
  always_.store(p == "always");
  everysec_.store(p == "everysec");
  timestamps_ = engine_->config().Get("aof-timestamp-enabled").value_or("no") == "yes";
}

void Aof::InstallConfigHooks() {
  Config& cfg = engine_->config();
  cfg.SetApplyHook("appendonly", [this](std::string* err) {
    bool want = engine_->config().Get("appendonly").value_or("no") == "yes";
    if (want == enabled()) return true;
    if (!want) {
      Disable();
      return true;
    }
    return Enable(err);
  });
  cfg.SetApplyHook("appendfsync", [this](std::string*) {
    ApplyPolicy();
    return true;
  });
  cfg.SetApplyHook("aof-timestamp-enabled", [this](std::string*) {
    ApplyPolicy();
    return true;
  });
}

// ---- the manifest ----

bool Aof::ReadManifest(Manifest* m, bool* exists, std::string* error) {
  *m = Manifest{};
  std::string path = FilePath(Name() + ".manifest");
  *exists = FileExists(path);
  if (!*exists) return true;
  std::string data;
  if (!ReadWhole(path, &data, error)) return false;
  return aof::ParseManifest(data, m, error);
}

bool Aof::WriteManifest(const Manifest& m, std::string* error) {
  std::string text;
  for (const auto* list : {&m.base, &m.history, &m.incr})
    for (const FileInfo& f : *list)
      text += fmt::format("file {} seq {} type {}\n", aof::ManifestName(f.name), f.seq, f.type);
  std::string path = FilePath(Name() + ".manifest");
  std::string tmp = FilePath("temp-" + Name() + ".manifest");
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    *error = fmt::format("Can't open the AOF manifest file {}: {}", tmp, strerror(errno));
    return false;
  }
  bool ok = WriteAll(fd, text) && fsync(fd) == 0;
  close(fd);
  if (!ok || rename(tmp.c_str(), path.c_str()) != 0) {
    *error = fmt::format("Error trying to write the temporary AOF manifest file {}: {}", tmp, strerror(errno));
    unlink(tmp.c_str());
    return false;
  }
  SyncDir(DirPath());
  return true;
}

// ---- loading ----

int Aof::LoadCommandFile(const std::string& name, bool last, std::string* error) {
  std::string path = FilePath(name);
  std::string data;
  if (!ReadWhole(path, &data, error)) return -1;
  std::string_view d = data;
  size_t pos = 0;
  // An old-style file (or a base) may open with an RDB preamble: the
  // snapshot module's loader reads it (from this thread), the commands
  // after it replay.
  if (d.substr(0, 5) == "REDIS") {
    LOG_NOTICE("Reading RDB preamble from AOF file...");
    std::string why;
    rdb::Reader r(d);
    if (!rdb_loader_ || !rdb_loader_(r, &why)) {
      LOG_WARNING("{}", why);
      *error = fmt::format("Error reading the RDB preamble of the AOF file {}, AOF loading aborted", name);
      return -1;
    }
    pos = static_cast<size_t>(r.offset());
    LOG_NOTICE("Reading the remaining AOF tail...");
  }
  int result = 0;
  RunParked([&] { result = ReplayCommands(name, path, d, pos, last, error); });
  return result;
}

// With every shard parked: the commands of `d` from `pos`, each through
// Execute; 0 ok, 1 truncated (and the file cut there), -1 failed.
int Aof::ReplayCommands(const std::string& name, const std::string& path, std::string_view d, size_t pos, bool last,
                        std::string* error) {
  ShardSet& set = engine_->shards();
  int db = 0;
  bool in_multi = false;
  size_t valid_up_to = pos, valid_before_multi = pos;
  std::vector<std::vector<std::string_view>> queued;
  std::vector<std::string_view> argv;
  int64_t load_delay_us = engine_->config().key_load_delay.load();
  uint64_t replayed = 0;
  auto run = [&](std::span<const std::string_view> args) -> bool {
    const CommandSpec* spec = Commands().Find(args[0]);
    if (spec && !spec->subcommands.empty() && args.size() > 1) {
      if (const CommandSpec* sub = Commands().FindSub(*spec, args[1])) spec = sub;
    }
    if (!spec) {
      *error = fmt::format("Unknown command '{}' reading the append only file {}", args[0], name);
      return false;
    }
    if (spec->name == "select") {
      int64_t n = 0;
      if (args.size() == 2 && ParseInt64(args[1], &n) && n >= 0 && n < set.num_dbs()) db = static_cast<int>(n);
      return true;
    }
    KeyPositions keys = spec->KeyIndexes(args);
    Shard& sh = keys.empty() ? *CurrentShard() : set.shard(set.ShardOf(args[keys[0]]));
    Call c(spec, args, db, 2);
    c.mode = Call::Mode::kInternal;
    c.exclusive = true;
    BlockRequest req;
    if (spec->flags & kCmdBlocking) {
      req.serving = true;  // a served blocking command: it finds its data, never waits
      c.block = &req;
    }
    std::string out;
    Execute(*engine_, sh, c, &out);
    // As Redis: key-load-delay paces each command (a negative -n: 1 us
    // every n), and the parked shards' housekeeping runs every 1024.
    if (load_delay_us > 0) std::this_thread::sleep_for(std::chrono::microseconds(load_delay_us));
    else if (load_delay_us < 0 && replayed % static_cast<uint64_t>(-load_delay_us) == 0)
      std::this_thread::sleep_for(std::chrono::microseconds(1));
    if (++replayed % 1024 == 0) engine_->WhileBlockedCron();
    return true;
  };
  for (;;) {
    size_t before = pos;
    aof::ParseResult r = aof::ParseCommand(d, &pos, &argv);
    if (r == aof::ParseResult::kEof) break;
    if (r == aof::ParseResult::kBadFormat) {
      *error = fmt::format("Bad file format reading the append only file {}: make a backup of your AOF file, "
                           "then use ./redis-check-aof --fix <filename.manifest>",
                           name);
      return -1;
    }
    if (r == aof::ParseResult::kTruncated) {
      pos = before;
      goto truncated;
    }
    if (EqualsIgnoreCase(argv[0], "multi")) {
      valid_before_multi = valid_up_to;
      in_multi = true;
      queued.clear();
    } else if (EqualsIgnoreCase(argv[0], "exec") && in_multi) {
      for (auto& q : queued)
        if (!run(q)) return -1;
      queued.clear();
      in_multi = false;
    } else if (in_multi) {
      queued.push_back(argv);
    } else if (!run(argv)) {
      return -1;
    }
    valid_up_to = pos;
  }
  if (in_multi) {
    LOG_WARNING("Revert incomplete MULTI/EXEC transaction in AOF file {}", name);
    valid_up_to = valid_before_multi;
    goto truncated;
  }
  return 0;
truncated:
  if (in_multi && valid_up_to > valid_before_multi) valid_up_to = valid_before_multi;
  if (!last) {
    *error = "Fatal error: the truncated file is not the last file";
    return -1;
  }
  if (engine_->config().Get("aof-load-truncated").value_or("yes") == "yes") {
    LOG_WARNING("!!! Warning: short read while loading the AOF file {}!!!", name);
    LOG_WARNING("!!! Truncating the AOF {} at offset {} !!!", name, valid_up_to);
    if (truncate(path.c_str(), static_cast<off_t>(valid_up_to)) != 0) {
      *error = fmt::format("Error truncating the AOF file {}: {}", name, strerror(errno));
      return -1;
    }
    LOG_WARNING("AOF {} loaded anyway because aof-load-truncated is enabled", name);
    return 1;
  }
  *error = fmt::format(
      "Unexpected end of file reading the append only file {}. You can: 1) Make a backup of your AOF file, then use "
      "./redis-check-aof --fix <filename.manifest>. 2) Alternatively you can set the 'aof-load-truncated' "
      "configuration option to yes and restart the server.",
      name);
  return -1;
}

bool Aof::LoadRdbBase(const std::string& name, std::string* error) {
  std::string path = FilePath(name);
  std::string data;
  if (!ReadWhole(path, &data, error)) return false;
  std::string why;
  rdb::Reader r{std::string_view(data)};
  if (!rdb_loader_ || !rdb_loader_(r, &why)) {
    *error = fmt::format("Error reading the RDB base file {}, AOF loading aborted{}{}", name, why.empty() ? "" : ": ", why);
    return false;
  }
  return true;
}

// Runs `fn` with every shard parked and waits for it. From a thread that is
// not a shard's (the main thread at start-up, DEBUG LOADAOF's helper).
void Aof::RunParked(const std::function<void()>& fn) {
  engine_->shards().RunParkedAndWait([&] {
    RefreshCommandTime();
    fn();
  });
}

// From a thread that is not a shard's: an RDB base goes through the snapshot
// module's loader (which hands each key to its shard), each command file
// replays with every shard parked.
bool Aof::LoadFiles(const Manifest& m, std::string* error) {
  size_t total = m.base.size() + m.incr.size();
  size_t n = 0;
  for (const FileInfo& f : m.base) {
    ++n;
    if (!FileExists(FilePath(f.name))) {
      *error = fmt::format("The append log file {} doesn't exist: {}", f.name, strerror(ENOENT));
      return false;
    }
    int64_t t0 = UnixTimeMs();
    bool rdb = f.name.size() > 4 && f.name.compare(f.name.size() - 4, 4, ".rdb") == 0;
    if (rdb) {
      LOG_NOTICE("Reading RDB base file on AOF loading...");
      if (!LoadRdbBase(f.name, error)) return false;
    } else if (LoadCommandFile(f.name, n == total, error) < 0) {
      return false;
    }
    LOG_NOTICE("DB loaded from base file {}: {:.3f} seconds", f.name, (UnixTimeMs() - t0) / 1000.0);
  }
  for (const FileInfo& f : m.incr) {
    ++n;
    std::string path = FilePath(f.name);
    if (!FileExists(path)) {
      *error = fmt::format("The append log file {} doesn't exist: {}", f.name, strerror(ENOENT));
      return false;
    }
    if (FileSize(path) == 0) continue;
    int64_t t0 = UnixTimeMs();
    if (LoadCommandFile(f.name, n == total, error) < 0) return false;
    LOG_NOTICE("DB loaded from incr file {}: {:.3f} seconds", f.name, (UnixTimeMs() - t0) / 1000.0);
  }
  return true;
}

// ---- start, stop ----

bool Aof::OpenIncr(const std::string& name, std::string* error) {
  int fd = open(FilePath(name).c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    *error = fmt::format("Can't open the append-only file {}: {}", name, strerror(errno));
    return false;
  }
  if (fd_ >= 0) {
    fdatasync(fd_);
    close(fd_);
  }
  fd_ = fd;
  db = -1;       // the new file starts with SELECT
  last_ts_ = 0;  // and, with aof-timestamp-enabled, a #TS annotation
  return true;
}

bool Aof::WriteEmptyBase(const std::string& name, std::string* error) {
  std::string path = FilePath(name);
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  bool rdb = name.size() > 4 && name.compare(name.size() - 4, 4, ".rdb") == 0;
  std::string body = rdb ? EmptyRdbBase() : std::string();
  if (fd < 0 || !WriteAll(fd, body) || fsync(fd) != 0) {
    *error = fmt::format("Write error writing append only file on disk: {}", strerror(errno));
    if (fd >= 0) close(fd);
    return false;
  }
  close(fd);
  return true;
}

bool Aof::StartUp(std::string* error) {
  ApplyPolicy();
  sync_thread_ = std::thread([this] { SyncThread(); });
  if (engine_->config().Get("appendonly").value_or("no") != "yes") return true;
  std::string dir = DirPath();
  if (mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
    *error = fmt::format("Can't open or create append-only dir {}: {}", dir, strerror(errno));
    return false;
  }
  Manifest m;
  bool exists = false;
  if (!ReadManifest(&m, &exists, error)) return false;
  // Upgrade: an appendonly.aof of Redis < 7 in `dir` becomes the base.
  std::string old_path = engine_->config().dir() + "/" + Name();
  if (!exists && FileExists(old_path)) {
    std::string base = Name();
    if (rename(old_path.c_str(), FilePath(base).c_str()) != 0) {
      *error = fmt::format("Error trying to move the old AOF file {} into dir {}: {}", base, dir, strerror(errno));
      return false;
    }
    m.base.push_back(FileInfo{base, 1, 'b'});
    m.cur_base_seq = 1;
    if (!WriteManifest(m, error)) return false;
    LOG_NOTICE("Successfully migrated an old-style AOF file ({}) into the AOF directory ({}).", base, dir);
    exists = true;
  }
  // An upgrade interrupted after the manifest was written: the old file is
  // still in `dir`, the manifest names it as the base.
  if (exists && !m.base.empty() && m.base[0].name == Name() && !FileExists(FilePath(Name())) &&
      FileExists(old_path)) {
    if (rename(old_path.c_str(), FilePath(Name()).c_str()) != 0) {
      *error = fmt::format("Error trying to move the old AOF file {} into dir {}: {}", Name(), dir, strerror(errno));
      return false;
    }
    LOG_NOTICE("Successfully migrated an old-style AOF file ({}) into the AOF directory ({}).", Name(), dir);
  }
  if (exists && (!m.base.empty() || !m.incr.empty())) {
    // Clients get -LOADING meanwhile (the snapshot module's gate).
    uint64_t total = 0;
    for (const auto* list : {&m.base, &m.incr})
      for (const FileInfo& f : *list) total += static_cast<uint64_t>(FileSize(FilePath(f.name)));
    engine_->persistence().BeginLoading(total);
    bool ok = LoadFiles(m, error);
    engine_->persistence().EndLoading();
    if (!ok) return false;
  }
  std::lock_guard<std::mutex> g(mu_);
  if (m.base.empty() && m.incr.empty()) {
    // A fresh start (the dataset is empty: with appendonly yes the RDB is
    // not loaded): a base, as Redis creates one on server start.
    bool preamble = engine_->config().Get("aof-use-rdb-preamble").value_or("yes") == "yes";
    std::string base = fmt::format("{}.{}.base.{}", Name(), m.cur_base_seq + 1, preamble ? "rdb" : "aof");
    if (!WriteEmptyBase(base, error)) return false;
    m.base.push_back(FileInfo{base, ++m.cur_base_seq, 'b'});
    LOG_NOTICE("Creating AOF base file {} on server start", base);
  }
  if (m.incr.empty()) {
    std::string incr = fmt::format("{}.{}.incr.aof", Name(), m.cur_incr_seq + 1);
    m.incr.push_back(FileInfo{incr, ++m.cur_incr_seq, 'i'});
    LOG_NOTICE("Creating AOF incr file {} on server start", incr);
  } else {
    LOG_NOTICE("Opening AOF incr file {} on server start", m.incr.back().name);
  }
  if (!OpenIncr(m.incr.back().name, error)) return false;
  if (!WriteManifest(m, error)) return false;
  manifest_ = m;
  base_size_.store(m.base.empty() ? 0 : FileSize(FilePath(m.base[0].name)));
  int64_t size = 0;
  for (const FileInfo& f : m.base) size += FileSize(FilePath(f.name));
  for (const FileInfo& f : m.incr) size += FileSize(FilePath(f.name));
  current_size_.store(size);
  on_.store(true);
  engine_->propagation().Attach(this);
  DeleteHistory();
  return true;
}

void Aof::Stop() {
  {
    std::lock_guard<std::mutex> g(sync_mu_);
    stopping_ = true;
  }
  sync_cv_.notify_all();
  if (sync_thread_.joinable()) sync_thread_.join();
  if (on_.load()) {
    engine_->propagation().Detach(this);
    std::lock_guard<std::mutex> g(mu_);
    WriteOut(true);
  }
  std::lock_guard<std::mutex> g(mu_);
  if (fd_ >= 0) {
    close(fd_);
    fd_ = -1;
  }
}

// ---- writing ----

void Aof::Feed(std::string_view bytes) {
  if (timestamps_) [[unlikely]] {
    int64_t now = UnixTimeMs() / 1000;
    if (now != last_ts_) {
      last_ts_ = now;
      std::string ts = fmt::format("#TS:{}\r\n", now);
      buf_.append(ts);
      fed_.fetch_add(ts.size(), std::memory_order_release);
    }
  }
  buf_.append(bytes);
  fed_.fetch_add(bytes.size(), std::memory_order_release);
}

void Aof::WriteOut(bool sync) {
  std::string out;
  uint64_t upto = 0;
  engine_->propagation().Locked([&] {
    out.swap(buf_);
    upto = fed_.load(std::memory_order_relaxed);
  });
  if (!out.empty() && fd_ >= 0) {
    if (!WriteAll(fd_, out)) {
      if (write_ok_.exchange(false)) LOG_WARNING("Error writing to the AOF file: {}", strerror(errno));
      if (always_.load()) {
        LOG_WARNING("Can't recover from AOF write error when the AOF fsync policy is 'always'. Exiting...");
        _exit(1);
      }
      return;
    }
    write_ok_.store(true);
    current_size_.fetch_add(static_cast<int64_t>(out.size()), std::memory_order_relaxed);
    dirty_ = true;
  }
  if (sync && dirty_ && fd_ >= 0) {
    fdatasync(fd_);
    dirty_ = false;
  }
  if (sync || !always_.load()) {
    uint64_t cur = synced_.load(std::memory_order_relaxed);
    while (cur < upto && !synced_.compare_exchange_weak(cur, upto)) {
    }
  }
}

void Aof::FlushFromLoop() {
  if (fed_.load(std::memory_order_acquire) == synced_.load(std::memory_order_acquire)) return;
  {
    std::lock_guard<std::mutex> g(mu_);
    // Group commit: another shard may have synced this shard's bytes already.
    if (fed_.load(std::memory_order_acquire) != synced_.load(std::memory_order_acquire))
      WriteOut(always_.load(std::memory_order_relaxed));
  }
  MaybeAutoRewrite();
}

void Aof::SyncThread() {
  std::unique_lock<std::mutex> lk(sync_mu_);
  while (!stopping_) {
    sync_cv_.wait_for(lk, std::chrono::seconds(1));
    if (stopping_ || !on_.load() || !everysec_.load()) continue;
    lk.unlock();
    {
      std::lock_guard<std::mutex> g(mu_);
      WriteOut(true);
    }
    lk.lock();
  }
}

// ---- enabling, rewriting ----

bool Aof::Enable(std::string* error) {
  if (!OpenDirAndManifest(error)) return false;
  ApplyPolicy();
  return NewBase(true, error);
}

void Aof::Disable() {
  if (!on_.load()) return;
  engine_->propagation().Detach(this);
  std::lock_guard<std::mutex> g(mu_);
  WriteOut(true);
  on_.store(false);
  if (fd_ >= 0) {
    close(fd_);
    fd_ = -1;
  }
  synced_.store(fed_.load());
}

// The append-only dir (created if missing) and its manifest, as the
// current one: what a new base is added to.
bool Aof::OpenDirAndManifest(std::string* error) {
  std::string dir = DirPath();
  if (mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
    *error = fmt::format("Can't open or create append-only dir {}: {}", dir, strerror(errno));
    return false;
  }
  Manifest m;
  bool exists;
  if (!ReadManifest(&m, &exists, error)) return false;
  std::lock_guard<std::mutex> g(mu_);
  manifest_ = m;
  return true;
}

bool Aof::Rewrite(std::string* error) {
  if (!on_.load() && !rewriting_.load()) {
    // As Redis: with appendonly no a rewrite still writes a base (and the
    // manifest names it), but no incremental file opens.
    if (!OpenDirAndManifest(error)) return false;
  }
  return NewBase(false, error);
}

// A new base and incremental file: the base from a snapshot (or, with an
// empty dataset and no snapshot module, written at once), the incremental
// file opened at the snapshot's cut, every shard parked.
bool Aof::NewBase(bool enabling, std::string* error) {
  if (rewriting_.exchange(true)) {
    *error = "Background append only file rewriting already in progress";
    return false;
  }
  rewrite_start_s_.store(UnixTimeMs() / 1000);
  bool preamble = engine_->config().Get("aof-use-rdb-preamble").value_or("yes") == "yes";
  bool snapshot = snapshotter_ && preamble;
  std::string base;
  {
    std::lock_guard<std::mutex> g(mu_);
    base = fmt::format("{}.{}.base.{}", Name(), manifest_.cur_base_seq + 1, snapshot ? "rdb" : "aof");
  }
  if (enabling) enabling_.store(true);
  if (snapshot) {
    SnapshotRequest req;
    req.path = FilePath(base);
    req.aof_base = true;
    req.on_cut = [this, enabling] {  // every shard parked
      if (enabling) {
        on_.store(true);
        enabling_.store(false);
        engine_->propagation().Attach(this);
      }
      OnRewriteCut();
    };
    req.done = [this, base](bool ok, const std::string& err) {
      if (ok) {
        std::lock_guard<std::mutex> g(mu_);
        SetBase(base);
      }
      OnRewriteDone(ok, err);
    };
    if (!snapshotter_(std::move(req), error)) {
      enabling_.store(false);
      rewriting_.store(false);
      return false;
    }
    return true;
  }
  // A base of commands (aof-use-rdb-preamble no, or no snapshot module in
  // this build): written with every shard parked, by a helper thread (the
  // caller may be a shard), so it stalls the server while it writes.
  std::thread([this, base, enabling] {
    bool ok = false;
    std::string err;
    RunParked([&] {
      if (!WriteCommandBase(base, &err)) return;
      if (enabling) {
        on_.store(true);
        engine_->propagation().Attach(this);
      }
      OnRewriteCut();
      std::lock_guard<std::mutex> g(mu_);
      SetBase(base);
      ok = true;
    });
    enabling_.store(false);
    OnRewriteDone(ok, err);
  }).detach();
  return true;
}

// Redis's rewrite form of one key: the commands that rebuild it, at most 64
// items per command (AOF_REWRITE_ITEMS_PER_CMD), then its TTL as PEXPIREAT.
void Aof::AppendRebuild(std::string* out, Entry* e) {
  std::string_view key = e->key();
  std::vector<std::string> words;
  auto flush = [&](std::string_view cmd, size_t fixed) {
    std::vector<std::string_view> argv{cmd, key};
    for (const std::string& w : words) argv.push_back(w);
    AppendCommand(out, argv);
    words.resize(fixed);
  };
  auto batched = [&](std::string_view cmd, size_t per_item) {
    if (words.size() >= 64 * per_item) flush(cmd, 0);
  };
  switch (e->type) {
    case ObjType::kString:
      AppendCommand(out, {"SET", key, e->value()});
      break;
    case ObjType::kList:
      ObjectOf<ListValue>(e)->ForEach([&](std::string_view it) {
        words.emplace_back(it);
        batched("RPUSH", 1);
      });
      if (!words.empty()) flush("RPUSH", 0);
      break;
    case ObjType::kSet:
      ObjectOf<SetValue>(e)->ForEach([&](std::string_view m) {
        words.emplace_back(m);
        batched("SADD", 1);
      });
      if (!words.empty()) flush("SADD", 0);
      break;
    case ObjType::kZSet: {
      ObjectOf<ZSetValue>(e)->ForEach([&](const ZSetValue::Ref& it) {
        words.push_back(fmt::format("{:.17g}", it.score));
        words.push_back(std::string(it.member));
        batched("ZADD", 2);
      });
      if (!words.empty()) flush("ZADD", 0);
      break;
    }
    case ObjType::kHash: {
      HashValue* h = ObjectOf<HashValue>(e);
      h->ForEach([&](std::string_view f, std::string_view v) {
        words.emplace_back(f);
        words.emplace_back(v);
        batched("HMSET", 2);
      });
      if (!words.empty()) flush("HMSET", 0);
      if (h->has_field_ttls()) {  // Larder's (and Redis 7.4's) field TTLs
        h->ForEach([&](std::string_view f, std::string_view) {
          if (auto at = h->FieldExpire(f)) {
            std::string ms = std::to_string(*at);
            AppendCommand(out, {"HPEXPIREAT", key, ms, "FIELDS", "1", f});
          }
        });
      }
      break;
    }
    case ObjType::kStream: {
      StreamValue* st = ObjectOf<StreamValue>(e);
      std::string last = st->last_id().ToString();
      if (st->size() == 0) {
        // As Redis: an empty stream is made by an XADD trimmed to nothing.
        AppendCommand(out, {"XADD", key, "MAXLEN", "0", last, "x", "y"});
      } else {
        st->Range(StreamID{0, 0}, StreamID::Max(), false, [&](StreamID id, const StreamFields& f) {
          std::string ids = id.ToString();
          std::vector<std::string_view> argv{"XADD", key, ids};
          for (const auto& [k, v] : f) {
            argv.push_back(k);
            argv.push_back(v);
          }
          AppendCommand(out, argv);
          return true;
        });
      }
      std::string added = std::to_string(st->entries_added());
      std::string maxdel = st->max_deleted_id().ToString();
      AppendCommand(out, {"XSETID", key, last, "ENTRIESADDED", added, "MAXDELETEDID", maxdel});
      for (const auto& [name, g] : st->groups()) {
        std::string gid = g->last_id.ToString();
        std::string read = std::to_string(g->entries_read);
        AppendCommand(out, {"XGROUP", "CREATE", key, name, gid, "ENTRIESREAD", read});
        for (const auto& [cname, c] : g->consumers) {
          if (c->pending.empty()) {
            AppendCommand(out, {"XGROUP", "CREATECONSUMER", key, name, cname});
            continue;
          }
          for (StreamID id : c->pending) {
            auto it = g->pel.find(id);
            if (it == g->pel.end()) continue;
            std::string ids = id.ToString();
            std::string time = std::to_string(it->second.delivery_time);
            std::string count = std::to_string(it->second.delivery_count);
            AppendCommand(out, {"XCLAIM", key, name, cname, "0", ids, "TIME", time, "RETRYCOUNT", count, "JUSTID",
                                "FORCE"});
          }
        }
      }
      break;
    }
  }
  if (e->has_expire()) {
    std::string at = std::to_string(e->expire_ms());
    AppendCommand(out, {"PEXPIREAT", key, at});
  }
}

// With every shard parked: the dataset (and the function libraries) as
// commands, into a temporary file renamed to `name` once complete.
bool Aof::WriteCommandBase(const std::string& name, std::string* error) {
  std::string tmp = FilePath("temp-rewriteaof-" + name);
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    *error = fmt::format("Opening the temp file for AOF rewrite in rewriteAppendOnlyFile(): {}", strerror(errno));
    return false;
  }
  std::string out;
  bool ok = true;
  IncrementalSync sync(fd, engine_->config().Get("aof-rewrite-incremental-fsync").value_or("yes") == "yes");
  auto drain = [&](bool force) {
    if (ok && (force || out.size() >= (1u << 20))) {
      ok = WriteAll(fd, out);
      if (ok) sync.Wrote(out.size());
      out.clear();
    }
  };
  for (const auto& [lib, l] : *script::Functions().Snapshot()) AppendCommand(&out, {"FUNCTION", "LOAD", l.code});
  int64_t now = UnixTimeMs();
  ShardSet& set = engine_->shards();
  for (int d = 0; d < set.num_dbs() && ok; ++d) {
    bool selected = false;
    for (int s = 0; s < set.size() && ok; ++s) {
      set.shard(s).db(d).table().ForEach([&](Entry* e) {
        if (e->has_expire() && e->expire_ms() <= now) return;
        if (!selected) {
          std::string n = std::to_string(d);
          AppendCommand(&out, {"SELECT", n});
          selected = true;
        }
        AppendRebuild(&out, e);
        drain(false);
      });
    }
  }
  drain(true);
  ok = ok && fsync(fd) == 0;
  close(fd);
  if (!ok || rename(tmp.c_str(), FilePath(name).c_str()) != 0) {
    *error = fmt::format("Write error writing append only file on disk: {}", strerror(errno));
    unlink(tmp.c_str());
    return false;
  }
  return true;
}

void Aof::SetBase(const std::string& name) {
  for (const FileInfo& f : manifest_.base) manifest_.history.push_back(FileInfo{f.name, f.seq, 'h'});
  manifest_.base.assign(1, FileInfo{name, ++manifest_.cur_base_seq, 'b'});
}

void Aof::OnRewriteCut() {
  std::lock_guard<std::mutex> g(mu_);
  if (!on_.load()) return;  // BGREWRITEAOF with appendonly no: only a base
  WriteOut(true);  // what the old files get ends here
  std::string incr = fmt::format("{}.{}.incr.aof", Name(), manifest_.cur_incr_seq + 1);
  std::string err;
  Manifest m = manifest_;
  engine_->propagation().Locked([&] {
    if (!OpenIncr(incr, &err)) LOG_WARNING("{}", err);
  });
  if (!err.empty()) return;
  m.incr.push_back(FileInfo{incr, ++m.cur_incr_seq, 'i'});
  if (!WriteManifest(m, &err)) LOG_WARNING("{}", err);
  manifest_ = m;
  pending_incr_ = incr;
  LOG_NOTICE("Creating AOF incr file {} on background rewrite", incr);
}

void Aof::OnRewriteDone(bool ok, const std::string& error) {
  {
    std::lock_guard<std::mutex> g(mu_);
    if (ok) {
      // Older base and incremental files become history, then go.
      Manifest m = manifest_;
      std::vector<FileInfo> keep;
      for (const FileInfo& f : m.incr) {
        if (f.name == pending_incr_) keep.push_back(f);
        else m.history.push_back(FileInfo{f.name, f.seq, 'h'});
      }
      if (!on_.load()) keep.clear();
      m.incr = keep;
      std::string err;
      if (WriteManifest(m, &err)) manifest_ = m;
      else LOG_WARNING("{}", err);
      base_size_.store(m.base.empty() ? 0 : FileSize(FilePath(m.base[0].name)));
      int64_t size = 0;
      for (const FileInfo& f : m.base) size += FileSize(FilePath(f.name));
      for (const FileInfo& f : m.incr) size += FileSize(FilePath(f.name));
      current_size_.store(size);
      DeleteHistory();
      LOG_NOTICE("Background AOF rewrite finished successfully");
    } else {
      LOG_WARNING("Background AOF rewrite failed: {}", error);
    }
    pending_incr_.clear();
  }
  int64_t now = UnixTimeMs() / 1000;
  last_rewrite_s_.store(now - rewrite_start_s_.load());
  last_rewrite_ok_.store(ok);
  if (ok) {
    rewrites_.fetch_add(1);
    rewrite_failures_.store(0);
  } else {
    rewrite_failures_.fetch_add(1);
  }
  rewriting_.store(false);
}

void Aof::DeleteHistory() {
  // (Under mu_.) The old base files are history too once a new one exists.
  std::vector<FileInfo> gone = manifest_.history;
  if (gone.empty()) return;
  manifest_.history.clear();
  std::string err;
  if (!WriteManifest(manifest_, &err)) {
    LOG_WARNING("{}", err);
    return;
  }
  for (const FileInfo& f : gone) {
    LOG_NOTICE("Removing the history file {} in the background", f.name);
    unlink(FilePath(f.name).c_str());
  }
}

void Aof::MaybeAutoRewrite() {
  if (rewriting_.load(std::memory_order_relaxed) || !on_.load(std::memory_order_relaxed)) return;
  int64_t pct = engine_->config().auto_aof_rewrite_percentage.load(std::memory_order_relaxed);
  int64_t min = engine_->config().auto_aof_rewrite_min_size.load(std::memory_order_relaxed);
  int64_t cur = current_size_.load(std::memory_order_relaxed);
  if (pct <= 0 || cur <= min) return;
  int64_t base = std::max<int64_t>(base_size_.load(std::memory_order_relaxed), 1);
  if ((cur * 100 / base) - 100 < pct) return;
  if (!snapshotter_) return;  // a rewrite with keys needs a snapshot
  LOG_NOTICE("Starting automatic rewriting of AOF on {}% growth", (cur * 100 / base) - 100);
  std::string err;
  if (!NewBase(false, &err)) LOG_WARNING("{}", err);
}

bool Aof::Reload(std::string* error) {
  // From a thread that is not a shard's (DEBUG LOADAOF's helper).
  {
    std::lock_guard<std::mutex> g(mu_);
    if (on_.load()) WriteOut(true);
  }
  Manifest m;
  bool exists;
  if (!ReadManifest(&m, &exists, error)) return false;
  bool was_on = on_.load();
  if (was_on) engine_->propagation().Detach(this);
  ShardSet& set = engine_->shards();
  RunParked([&] {
    for (int s = 0; s < set.size(); ++s)
      for (int d = 0; d < set.num_dbs(); ++d) set.shard(s).db(d).Clear();
  });
  bool ok = LoadFiles(m, error);
  if (was_on) engine_->propagation().Attach(this);
  if (ok) LOG_NOTICE("Append Only File loaded by DEBUG LOADAOF");
  return ok;
}

void Aof::AppendInfo(std::string& out) {
  bool on = on_.load();
  int64_t now = UnixTimeMs() / 1000;
  bool rw = rewriting_.load();
  out += fmt::format(
      "aof_enabled:{}\r\naof_rewrite_in_progress:{}\r\naof_rewrite_scheduled:{}\r\naof_last_rewrite_time_sec:{}\r\n"
      "aof_current_rewrite_time_sec:{}\r\naof_last_bgrewrite_status:{}\r\naof_rewrites:{}\r\n"
      "aof_rewrites_consecutive_failures:{}\r\naof_last_write_status:{}\r\naof_last_cow_size:0\r\n"
      "module_fork_in_progress:0\r\nmodule_fork_last_cow_size:0\r\n",
      on || enabling_.load() ? 1 : 0, rw ? 1 : 0, rewrite_scheduled_.load() ? 1 : 0, last_rewrite_s_.load(),
      rw ? now - rewrite_start_s_.load() : -1, last_rewrite_ok_.load() ? "ok" : "err", rewrites_.load(),
      rewrite_failures_.load(), write_ok_.load() ? "ok" : "err");
  if (on) {
    size_t pending = 0;
    engine_->propagation().Locked([&] { pending = buf_.size(); });
    out += fmt::format(
        "aof_current_size:{}\r\naof_base_size:{}\r\naof_pending_rewrite:0\r\naof_buffer_length:{}\r\n"
        "aof_pending_bio_fsync:0\r\naof_delayed_fsync:0\r\n",
        current_size_.load(), base_size_.load(), pending);
  }
}

}  // namespace larder
