#include "cache/read_through.h"

#include <absl/strings/numbers.h>
#include <libpq-fe.h>
#include <dirent.h>
#include <poll.h>

#include <cmath>

#include "commands/command.h"
#include "commands/string_family.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/strings.h"
#include "keyspace/db.h"
#include "keyspace/hash_value.h"
#include "server/connection.h"
#include "server/server.h"
#include "shard/shard.h"

namespace larder::cache {

namespace {
thread_local ShardCache* t_shard_cache = nullptr;

std::string MakeId(int db, std::string_view key) {
  std::string id = std::to_string(db);
  id.push_back('\0');
  id.append(key);
  return id;
}

void AppendJsonString(std::string* out, std::string_view s) {
  out->push_back('"');
  for (unsigned char c : s) {
    switch (c) {
      case '"': *out += "\\\""; break;
      case '\\': *out += "\\\\"; break;
      case '\n': *out += "\\n"; break;
      case '\r': *out += "\\r"; break;
      case '\t': *out += "\\t"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          snprintf(buf, sizeof(buf), "\\u%04x", c);
          *out += buf;
        } else {
          out->push_back(static_cast<char>(c));
        }
    }
  }
  out->push_back('"');
}
}  // namespace

ShardCache* CurrentShardCache() { return t_shard_cache; }
void SetCurrentShardCache(ShardCache* c) { t_shard_cache = c; }

std::string RowAsJson(const QueryResult& r) {
  std::string out = "{";
  for (size_t i = 0; i < r.columns.size(); ++i) {
    if (i) out.push_back(',');
    AppendJsonString(&out, r.columns[i]);
    out.push_back(':');
    if (r.values[i]) AppendJsonString(&out, *r.values[i]);
    else out += "null";
  }
  out.push_back('}');
  return out;
}

// ---- statistics ----

void RuleStats::RecordLatency(int64_t us) {
  int b = 0;
  while (b < 39 && (int64_t{2} << b) <= us) ++b;
  latency[b].fetch_add(1, std::memory_order_relaxed);
}

int64_t RuleStats::LatencyPercentileUs(double p) const {
  uint64_t total = 0;
  for (const auto& b : latency) total += b.load(std::memory_order_relaxed);
  if (!total) return 0;
  uint64_t want = static_cast<uint64_t>(std::ceil(p * static_cast<double>(total)));
  uint64_t seen = 0;
  for (int i = 0; i < 40; ++i) {
    seen += latency[i].load(std::memory_order_relaxed);
    if (seen >= want) return int64_t{2} << i;  // the bucket's upper bound
  }
  return 0;
}

// ---- CacheManager ----

CacheManager::CacheManager() : rules_(std::make_shared<const std::vector<std::shared_ptr<LiveRule>>>()) {}
CacheManager::~CacheManager() { StopSources(); }

bool CacheManager::AddSource(const SourceSpec& spec, std::string* err) {
  std::lock_guard lock(mu_);
  for (const auto& s : sources_)
    if (s->name() == spec.name) {
      *err = "cache source '" + spec.name + "' is already defined";
      return false;
    }
  sources_.push_back(MakeSource(spec, connections_per_source));
  if (started_) sources_.back()->Start();
  return true;
}

Source* CacheManager::source(std::string_view name) const {
  std::lock_guard lock(mu_);
  for (const auto& s : sources_)
    if (s->name() == name) return s.get();
  return nullptr;
}

std::vector<SourceSpec> CacheManager::source_specs() const {
  std::lock_guard lock(mu_);
  std::vector<SourceSpec> out;
  for (const auto& s : sources_) out.push_back(s->spec());
  return out;
}

bool CacheManager::AddRule(const Rule& rule, std::string* err) {
  Source* src = source(rule.source);
  if (!src) {
    *err = "unknown cache source '" + rule.source + "' (declare it with cache-source first)";
    return false;
  }
  std::lock_guard lock(mu_);
  auto next = std::make_shared<std::vector<std::shared_ptr<LiveRule>>>(*rules_);
  for (const auto& r : *next)
    if (r->rule.pattern.text() == rule.pattern.text()) {
      *err = "a rule for '" + rule.pattern.text() + "' already exists";
      return false;
    }
  auto live = std::make_shared<LiveRule>();
  live->rule = rule;
  live->source = src;
  if (rule.write_behind) {
    if (started_ && !journal_open_.load()) {
      *err = "write behind needs the journal, opened at start-up when the config declares a cache-source";
      return false;
    }
    live->writes = std::make_unique<WriteQueue>(live.get(), &dead_letters_);
    if (started_) live->writes->Start();
  }
  next->push_back(std::move(live));
  rules_ = std::move(next);
  active_.store(true);
  version_.fetch_add(1, std::memory_order_release);
  return true;
}

bool CacheManager::CanRemoveRule(std::string_view pattern, std::string* err) const {
  std::lock_guard lock(mu_);
  for (const auto& r : *rules_)
    if (r->rule.pattern.text() == pattern && r->writes && r->writes->depth() > 0) {
      *err = "ERR the rule still has " + std::to_string(r->writes->depth()) +
             " key(s) to write behind; remove it once they are flushed";
      return false;
    }
  return true;
}

bool CacheManager::RemoveRule(std::string_view pattern) {
  std::lock_guard lock(mu_);
  auto next = std::make_shared<std::vector<std::shared_ptr<LiveRule>>>(*rules_);
  auto it = std::find_if(next->begin(), next->end(),
                         [&](const auto& r) { return r->rule.pattern.text() == pattern; });
  if (it == next->end()) return false;
  if ((*it)->writes) (*it)->writes->Stop();
  next->erase(it);
  active_.store(!next->empty());
  rules_ = std::move(next);
  version_.fetch_add(1, std::memory_order_release);
  return true;
}

std::shared_ptr<const std::vector<std::shared_ptr<LiveRule>>> CacheManager::rules() const {
  std::lock_guard lock(mu_);
  return rules_;
}

void CacheManager::SetInvalidation(std::string channel, std::function<void(std::string)> fn) {
  channel_ = std::move(channel);
  on_invalidate_ = std::move(fn);
}

void CacheManager::StartSources() {
  std::lock_guard lock(mu_);
  started_ = true;
  for (auto& s : sources_) {
    s->Start();
    if (!s->spec().is_sqlite() && on_invalidate_ && !channel_.empty())
      listeners_.emplace_back([this, spec = s->spec()] { Listen(spec); });
  }
  for (auto& r : *rules_)
    if (r->writes) r->writes->Start();
}

bool CacheManager::HasJournal(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (!d) return false;
  bool found = false;
  while (dirent* ent = ::readdir(d))
    if (std::string_view(ent->d_name).rfind("larder-wb-", 0) == 0) found = true;
  ::closedir(d);
  return found;
}

bool CacheManager::OpenWriteBehind(const std::string& dir, FsyncPolicy policy, int shards,
                                   std::function<void(int, uint64_t)> durable, std::string* err) {
  if (!dead_letters_.Open(dir, err)) return false;
  auto rules = this->rules();
  uint64_t orphans = 0;
  bool ok = journal_.Open(
      dir, policy,
      [&](Change c) {
        Params p;
        for (const auto& r : *rules)
          if (r->rule.pattern.Match(c.key, &p)) {
            if (r->writes) {
              r->writes->Add(std::move(c));
              return;
            }
            break;
          }
        ++orphans;
        dead_letters_.Add(DeadLetter{0, "", std::move(c), "no write-behind rule takes this key any more", UnixTimeMs()});
      },
      err);
  if (!ok) return false;
  if (orphans)
    LOG_WARNING("Write-behind journal: {} change(s) for keys no write-behind rule takes are kept as dead letters",
                orphans);
  journal_.Start(shards, std::move(durable), [this] {
    uint64_t n = UINT64_MAX;
    for (const auto& r : *this->rules())
      if (r->writes) n = std::min(n, r->writes->needed());
    return n;
  }, [this] {
    std::vector<Change> live;
    for (const auto& r : *this->rules())
      if (r->writes) r->writes->AppendLive(&live);
    return live;
  });
  journal_open_.store(true);
  return true;
}

// One connection per PostgreSQL source, LISTENing; reconnects when it drops.
void CacheManager::Listen(SourceSpec spec) {
  PGconn* c = nullptr;
  bool warned = false;
  while (!stopping_.load()) {
    if (!c) {
      std::string err;
      c = ConnectPostgres(spec.uri, &err);
      if (c) {
        std::string sql = "LISTEN \"" + channel_ + "\"";
        PGresult* r = PQexec(c, sql.c_str());
        bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
        PQclear(r);
        if (!ok) {
          PQfinish(c);
          c = nullptr;
        }
      }
      if (!c) {
        if (!warned) LOG_WARNING("Cache source '{}': cannot listen for invalidations: {}", spec.name, err);
        warned = true;
        for (int i = 0; i < 10 && !stopping_.load(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
        continue;
      }
      if (warned) LOG_NOTICE("Cache source '{}': listening for invalidations on '{}' again", spec.name, channel_);
      warned = false;
    }
    pollfd pfd{PQsocket(c), POLLIN, 0};
    poll(&pfd, 1, 100);
    if (!PQconsumeInput(c) || PQstatus(c) != CONNECTION_OK) {
      PQfinish(c);
      c = nullptr;
      continue;
    }
    while (PGnotify* n = PQnotifies(c)) {
      on_invalidate_(std::string(n->extra));
      PQfreemem(n);
    }
  }
  if (c) PQfinish(c);
}

void CacheManager::StopSources() {
  stopping_.store(true);
  for (auto& t : listeners_) t.join();
  listeners_.clear();
  for (auto& r : *rules())
    if (r->writes) r->writes->Stop();
  journal_.Stop();
  std::vector<Source*> all;
  {
    std::lock_guard lock(mu_);
    for (auto& s : sources_) all.push_back(s.get());
  }
  for (Source* s : all) s->Stop();
}

void CacheManager::Submit(const std::shared_ptr<LiveRule>& rule, Params params, std::function<void(QueryResult)> done) {
  // Runs now if the rule has a free load slot, else queues; each finished
  // load starts the next queued one.
  auto run = std::make_shared<std::function<void()>>();
  std::weak_ptr<LiveRule> weak = rule;
  *run = [rule, params = std::move(params), done = std::move(done)]() mutable {
    Source* src = rule->source;
    src->Query(rule->rule.load_sql, std::move(params), rule->rule.load_timeout_ms,
               [rule, done = std::move(done)](QueryResult r) {
                 done(std::move(r));
                 std::function<void()> next;
                 {
                   std::lock_guard lock(rule->queue_mu);
                   if (!rule->queued.empty()) {
                     next = std::move(rule->queued.front());
                     rule->queued.erase(rule->queued.begin());
                   } else {
                     rule->inflight.fetch_sub(1);
                   }
                 }
                 if (next) next();
               });
  };
  {
    std::lock_guard lock(rule->queue_mu);
    if (rule->inflight.load() >= rule->rule.max_loads) {
      rule->queued.push_back([run] { (*run)(); });
      return;
    }
    rule->inflight.fetch_add(1);
  }
  (*run)();
}

// ---- warming ----

std::vector<std::shared_ptr<WarmJob>> CacheManager::warm_jobs() const {
  std::lock_guard lock(mu_);
  return warms_;
}

bool CacheManager::Warm(Server* server, std::string_view pattern, std::string sql, std::string* err) {
  std::shared_ptr<LiveRule> rule;
  for (const auto& r : *rules())
    if (r->rule.pattern.text() == pattern) rule = r;
  if (!rule) {
    *err = "no cache rule for '" + std::string(pattern) + "'";
    return false;
  }
  auto job = std::make_shared<WarmJob>();
  job->pattern = std::string(pattern);
  job->sql = sql;
  job->started_ms = UnixTimeMs();
  {
    std::lock_guard lock(mu_);
    for (const auto& w : warms_)
      if (w->pattern == pattern && w->state.load() == 0) {
        *err = "'" + std::string(pattern) + "' is already warming";
        return false;
      }
    std::erase_if(warms_, [&](const auto& w) { return w->pattern == pattern; });
    warms_.push_back(job);
  }
  LOG_NOTICE("Warming '{}' from source '{}'", job->pattern, rule->rule.source);
  // The total, for progress and the estimate (best effort).
  rule->source->Query("SELECT count(*) FROM (" + sql + ") AS larder_warm", {}, 60'000, [job](QueryResult r) {
    uint64_t n;
    if (r.status == QueryResult::kRow && !r.values.empty() && r.values[0] &&
        absl::SimpleAtoi(*r.values[0], &n))
      job->rows_total.store(n);
  });
  auto names = rule->rule.pattern.names();
  rule->source->Stream(
      std::move(sql), 1000,
      [server, job, rule, names](RowBatch b) {
        // Which columns name the key, which hold the value.
        std::vector<int> key_cols(names.size(), -1);
        std::vector<int> value_cols;
        for (int i = 0; i < static_cast<int>(b.columns->size()); ++i) {
          auto it = std::find(names.begin(), names.end(), (*b.columns)[static_cast<size_t>(i)]);
          if (it != names.end()) key_cols[static_cast<size_t>(it - names.begin())] = i;
          else value_cols.push_back(i);
        }
        ShardSet& set = server->shards();
        std::vector<std::vector<std::pair<std::string, QueryResult>>> per_shard(static_cast<size_t>(set.size()));
        for (auto& row : b.rows) {
          Params values;
          bool ok = true;
          for (size_t k = 0; k < names.size(); ++k) {
            if (key_cols[k] < 0 || !row[static_cast<size_t>(key_cols[k])]) ok = false;
            else values.emplace_back(names[k], *row[static_cast<size_t>(key_cols[k])]);
          }
          std::string key;
          if (!ok || !rule->rule.pattern.Format(values, &key)) {
            job->rows_skipped.fetch_add(1);
            continue;
          }
          QueryResult r;
          r.status = QueryResult::kRow;
          for (int c : value_cols) {
            r.columns.push_back((*b.columns)[static_cast<size_t>(c)]);
            r.values.push_back(std::move(row[static_cast<size_t>(c)]));
          }
          per_shard[static_cast<size_t>(set.ShardOf(key))].emplace_back(std::move(key), std::move(r));
        }
        size_t n = b.rows.size();
        {
          std::lock_guard lock(job->mu);
          for (const auto& part : per_shard) job->outstanding += part.empty() ? 0 : 1;
        }
        for (int s = 0; s < set.size(); ++s) {
          auto& part = per_shard[static_cast<size_t>(s)];
          if (part.empty()) continue;
          set.shard(s).Post([server, s, job, rule, part = std::move(part)] {
            RefreshCommandTime();
            for (const auto& [key, r] : part) server->local(s).cache->StoreWarm(0, key, rule, r);
            std::lock_guard lock(job->mu);
            if (--job->outstanding == 0) job->cv.notify_all();
          });
        }
        std::unique_lock lock(job->mu);
        while (!job->cv.wait_for(lock, std::chrono::milliseconds(100), [&] { return job->outstanding == 0; }))
          if (server->cache().stopping()) return false;  // shutting down: the shards may never answer
        if (server->cache().stopping()) return false;
        uint64_t before = job->rows_done.fetch_add(n);
        uint64_t total = job->rows_total.load();
        if (total >= 10 && (before * 10 / total) != ((before + n) * 10 / total))
          LOG_NOTICE("Warming '{}': {} of {} rows", job->pattern, before + n, total);
        return true;
      },
      [job](std::string error) {
        job->finished_ms.store(UnixTimeMs());
        if (error.empty()) {
          job->state.store(1);
          LOG_NOTICE("Warming '{}' done: {} rows in {:.1f} s ({} skipped)", job->pattern, job->rows_done.load(),
                     static_cast<double>(job->finished_ms.load() - job->started_ms) / 1000.0,
                     job->rows_skipped.load());
        } else {
          job->error = error;
          job->state.store(2);
          LOG_WARNING("Warming '{}' failed after {} rows: {}", job->pattern, job->rows_done.load(), error);
        }
      });
  return true;
}

void ShardCache::Invalidate(int db_index, const std::string& key) {
  std::string id = MakeId(db_index, key);
  negative_.erase(id);
  fresh_.erase(id);
  shard_->db(db_index).Delete(key);
}

void ShardCache::StoreWarm(int db_index, const std::string& key, const std::shared_ptr<LiveRule>& rule,
                           const QueryResult& r) {
  Db& db = shard_->db(db_index);
  int64_t stale_at;
  std::string id = MakeId(db_index, key);
  // A write-behind change the database does not have yet is newer than its row.
  if (rule->writes && rule->writes->Lookup(db_index, key)) return;
  if (!Store(db, key, *rule, r, &stale_at)) return;
  negative_.erase(id);
  fresh_[id] = Fresh{stale_at, 0, rule};
}

// ---- ShardCache ----

ShardCache::ShardCache(Server* server, Shard* shard)
    : server_(server), shard_(shard), rng_(0x5eed + static_cast<uint64_t>(shard->id())) {}

std::shared_ptr<LiveRule> ShardCache::MatchRule(std::string_view key, Params* params) const {
  uint64_t v = server_->cache().version();
  if (v != rules_version_) {
    rules_ = server_->cache().rules();
    rules_version_ = v;
  }
  for (const auto& r : *rules_)
    if (r->rule.pattern.Match(key, params)) return r;
  return nullptr;
}

void ShardCache::Begin(const CommandSpec* spec, std::span<const std::string_view> args, int db, int resp) {
  spec_ = spec;
  args_ = args;
  db_ = db;
  resp_ = resp;
  waiting_on_.clear();
  SetReadHook(this);
}

bool ShardCache::End(const LateTarget& target) {
  SetReadHook(nullptr);
  if (waiting_on_.empty()) return false;
  auto w = std::make_shared<Waiter>();
  w->spec = spec_;
  w->args.assign(args_.begin(), args_.end());
  w->db = db_;
  w->resp = resp_;
  w->keys_left = static_cast<int>(waiting_on_.size());
  w->target = target;
  for (const auto& id : waiting_on_) pending_[id].waiters.push_back(w);
  waiting_on_.clear();
  return true;
}

bool ShardCache::OnMiss(Db& db, std::string_view key) {
  Params params;
  auto rule = MatchRule(key, &params);
  if (!rule) return false;
  std::string id = MakeId(db.index(), key);
  if (std::find(waiting_on_.begin(), waiting_on_.end(), id) != waiting_on_.end()) return true;
  // A write-behind key whose last change has not reached the database: the
  // cache is its only copy, so a read after eviction or expiry gets it back
  // from the queue (or sees it deleted), never the database's older row.
  if (rule->writes && RestorePending(db, key, *rule)) return false;
  auto neg = negative_.find(id);
  if (neg != negative_.end()) {
    if (neg->second > CommandTimeMs()) {
      rule->stats.negative_hits.fetch_add(1, std::memory_order_relaxed);
      return false;
    }
    negative_.erase(neg);
  }
  auto it = pending_.find(id);
  if (it != pending_.end()) {
    it->second.background = false;  // someone now waits for it
    rule->stats.coalesced.fetch_add(1, std::memory_order_relaxed);
  } else {
    rule->stats.misses.fetch_add(1, std::memory_order_relaxed);
    StartLoad(id, db.index(), std::string(key), rule, std::move(params), false);
  }
  waiting_on_.push_back(std::move(id));
  return true;
}

void ShardCache::OnHit(Db& db, Entry* e) {
  std::string id = MakeId(db.index(), e->key());
  auto it = fresh_.find(id);
  if (it == fresh_.end()) return;
  Fresh& f = it->second;
  RuleStats& stats = f.rule->stats;
  stats.hits.fetch_add(1, std::memory_order_relaxed);
  int64_t now = CommandTimeMs();
  bool stale = now >= f.stale_at_ms;
  if (stale) stats.stale_served.fetch_add(1, std::memory_order_relaxed);
  if (pending_.contains(id)) return;  // a reload is already running
  bool reload = stale;
  if (!stale && f.rule->rule.refresh_ahead) {
    // XFetch: reload when now - delta * ln(u) passes the stale time; the
    // closer to it, and the slower the load, the likelier. Only inside the
    // last tenth of the TTL (or one load time, if longer): a very hot key
    // would otherwise be reloaded again and again, long before it expires.
    int64_t window = std::max<int64_t>(f.load_us / 1000, f.rule->rule.ttl_ms / 10);
    if (f.stale_at_ms - now <= window) {
      double u = std::uniform_real_distribution<double>(1e-12, 1.0)(rng_);
      double gap_ms = -static_cast<double>(f.load_us) / 1000.0 * std::log(u);
      if (static_cast<double>(now) + gap_ms >= static_cast<double>(f.stale_at_ms)) {
        stats.early_refreshes.fetch_add(1, std::memory_order_relaxed);
        reload = true;
      }
    }
  }
  if (!reload) return;
  Params params;
  auto rule = MatchRule(e->key(), &params);
  if (rule) StartLoad(id, db.index(), std::string(e->key()), rule, std::move(params), true);
}

void ShardCache::StartLoad(const std::string& id, int db, std::string key, std::shared_ptr<LiveRule> rule,
                           Params params, bool background) {
  Pending& p = pending_[id];
  p.rule = rule;
  p.background = background;
  rule->stats.loads.fetch_add(1, std::memory_order_relaxed);
  Server* server = server_;
  int shard = shard_->id();
  server_->cache().Submit(rule, std::move(params), [server, shard, id, db, key = std::move(key)](QueryResult r) {
    server->shards().shard(shard).Post([server, shard, id, db, key, r = std::move(r)]() mutable {
      server->local(shard).cache->Complete(id, db, key, std::move(r));
    });
  });
}

bool ShardCache::Store(Db& db, const std::string& key, const LiveRule& live, const QueryResult& r,
                       int64_t* stale_at) {
  const Rule& rule = live.rule;
  int64_t now = CommandTimeMs();
  double ttl = static_cast<double>(rule.ttl_ms);
  if (rule.jitter_pct) {
    double j = std::uniform_real_distribution<double>(-1.0, 1.0)(rng_) * rule.jitter_pct / 100.0;
    ttl *= 1.0 + j;
  }
  *stale_at = now + std::max<int64_t>(1, static_cast<int64_t>(ttl));
  // Kept past its TTL for the grace period (served stale while reloading),
  // and with refresh-ahead for at least one load timeout, so that an early
  // reload that finishes late still finds the old value to serve.
  int64_t keep = rule.grace_ms;
  if (rule.refresh_ahead) keep = std::max(keep, rule.load_timeout_ms);
  int64_t expire = *stale_at + keep;
  Entry* e = nullptr;
  switch (rule.kind) {
    case ValueKind::kString: {
      std::string v = !r.values.empty() && r.values[0] ? *r.values[0] : std::string();
      e = db.SetString(key, v, expire, EncodingForValue(v));
      break;
    }
    case ValueKind::kJson:
      e = db.SetString(key, RowAsJson(r), expire, StrEncoding::kRaw);
      break;
    case ValueKind::kHash: {
      Config& c = server_->config();
      HashLimits limits{static_cast<size_t>(c.hash_max_listpack_entries.load()),
                        static_cast<size_t>(c.hash_max_listpack_value.load())};
      auto h = std::make_unique<HashValue>();
      for (size_t i = 0; i < r.columns.size(); ++i)
        if (r.values[i]) h->Set(r.columns[i], *r.values[i], limits);
      if (h->size() == 0) return false;  // every column NULL: nothing to cache
      db.Delete(key);
      e = NewObjectEntry(key, ObjType::kHash, h.release(), expire);
      db.Add(e);
      break;
    }
  }
  e->flags |= Entry::kCached;
  return true;
}

void ShardCache::Complete(const std::string& id, int db_index, const std::string& key, QueryResult r) {
  auto it = pending_.find(id);
  if (it == pending_.end()) return;
  Pending p = std::move(it->second);
  pending_.erase(it);
  RefreshCommandTime();
  LiveRule& live = *p.rule;
  live.stats.RecordLatency(r.micros);
  Db& db = shard_->db(db_index);
  if (r.status == QueryResult::kError) {
    live.stats.load_errors.fetch_add(1, std::memory_order_relaxed);
    // A value still held (inside grace) keeps being served if the rule says
    // so; whoever waits for a value that is not there gets the error.
    bool serve_stale = live.rule.stale_on_error && db.Find(key) != nullptr;
    for (auto& w : p.waiters) {
      if (!serve_stale) {
        w->failed = true;
        w->error = "ERR cache source '" + live.rule.source + "' failed to load '" + key + "': " + r.error;
      }
      Finish(w);
    }
    return;
  }
  // A client wrote the key while the load ran: its write is newer than the
  // row, so the row is dropped (the waiters see the written value).
  Entry* now_there = db.table().Find(key);
  if (now_there && !(now_there->flags & Entry::kCached)) {
    fresh_.erase(id);
    for (auto& w : p.waiters) Finish(w);
    return;
  }
  if (r.status == QueryResult::kRow) {
    int64_t stale_at;
    if (Store(db, key, live, r, &stale_at)) {
      negative_.erase(id);
      fresh_[id] = Fresh{stale_at, r.micros, p.rule};
    } else {
      r.status = QueryResult::kNoRow;
    }
  }
  if (r.status == QueryResult::kNoRow) {
    if (live.rule.negative_ttl_ms > 0) negative_[id] = CommandTimeMs() + live.rule.negative_ttl_ms;
    fresh_.erase(id);
    Entry* e = db.table().Find(key);
    if (e && (e->flags & Entry::kCached)) db.Delete(key);  // the row is gone
  }
  for (auto& w : p.waiters) Finish(w);
}

std::string ShardCache::MakeLeaseId(int db, std::string_view key) { return MakeId(db, key); }

const ShardCache::Lease* ShardCache::FindLease(int db, std::string_view key) {
  auto it = leases_.find(MakeId(db, key));
  if (it == leases_.end()) return nullptr;
  if (it->second.until_ms <= CommandTimeMs()) {
    leases_.erase(it);
    return nullptr;
  }
  return &it->second;
}

void ShardCache::GrantLease(int db, std::string_view key, Lease lease) { leases_[MakeId(db, key)] = lease; }

void ShardCache::ReleaseClient(int client_shard, uint64_t client_id) {
  std::vector<std::string> gone;
  for (const auto& [id, l] : leases_)
    if (l.client_shard == client_shard && l.client_id == client_id) gone.push_back(id);
  for (const auto& id : gone) {
    leases_.erase(id);
    size_t sep = id.find('\0');
    int db = std::stoi(id.substr(0, sep));
    // Each waiter gets nil ("ask again"); the first to ask takes over.
    server_->local(shard_->id()).blocking.WakeAll(server_, db, id.substr(sep + 1), "*-1\r\n", "_\r\n");
  }
}

void ShardCache::Finish(const std::shared_ptr<Waiter>& w) {
  if (w->keys_left <= 0) return;  // already answered (an error)
  if (w->failed) {
    w->keys_left = 0;
    Connection::DeliverLate(server_, w->target, "-" + w->error + "\r\n");
    return;
  }
  if (--w->keys_left > 0) return;
  std::vector<std::string_view> argv(w->args.begin(), w->args.end());
  // The command already counted its lookups (keyspace_misses for the keys
  // it had to load): the re-run that produces its reply counts nothing.
  KeyspaceStats saved = shard_->stats();
  std::string reply;
  bool held = false;
  if (w->spec->flags & kCmdWrite)  // a write that waited for its key (LoadBeforeWrite)
    held = RunLoadedWrite(server_, shard_, w->spec, argv, w->db, w->resp, w->target, &reply);
  else
    reply = RunForReply(server_, shard_, w->spec, argv, w->db, w->resp);
  shard_->stats().keyspace_hits = saved.keyspace_hits;
  shard_->stats().keyspace_misses = saved.keyspace_misses;
  if (!held) Connection::DeliverLate(server_, w->target, std::move(reply));
}


// ---- write-through ----

ShardCache::WriteResult ShardCache::WriteThrough(const CommandSpec* spec, std::span<const std::string_view> args,
                                                 int db, int resp, const LateTarget& target, std::string* out) {
  auto keys = spec->KeyIndexes(args);
  std::shared_ptr<LiveRule> rule;
  Params params;
  size_t which = 0;
  for (size_t i : keys) {
    Params p;
    auto r = MatchRule(args[i], &p);
    if (r && r->rule.write_through) {
      rule = r;
      params = std::move(p);
      which = i;
      break;
    }
  }
  if (!rule) return WriteResult::kNotMine;
  if (keys.size() != 1) {
    *out += "-ERR a write-through or write-behind key must be written by a command on that key alone\r\n";
    return WriteResult::kAnswered;
  }
  std::string id = MakeId(db, args[which]);
  auto it = writes_.find(id);
  if (it != writes_.end()) {  // one write per key at a time
    it->second.queue.push_back({spec, std::vector<std::string>(args.begin(), args.end()), db, resp, target});
    return WriteResult::kDeferred;
  }
  return StartWrite(rule, params, spec, args, db, resp, target, out) ? WriteResult::kDeferred
                                                                      : WriteResult::kAnswered;
}

bool ShardCache::StartWrite(const std::shared_ptr<LiveRule>& rule, const Params& params, const CommandSpec* spec,
                            std::span<const std::string_view> args, int db_index, int resp,
                            const LateTarget& target, std::string* out) {
  size_t which = spec->KeyIndexes(args).front();
  std::string key(args[which]);
  Db& real = shard_->db(db_index);
  // The command runs against a copy of the key.
  Db scratch(&scratch_stats_);
  if (Entry* cur = real.Find(key)) scratch.Add(CloneEntry(cur, key));
  std::string reply;
  {
    resp::ReplyBuilder rb(&reply, resp);
    CommandContext ctx(args, &rb, shard_, server_, spec, db_index);
    ctx.scratch = &scratch;
    spec->handler(ctx);
  }
  if (!reply.empty() && reply[0] == '-') {  // refused by the command itself: nothing to write
    *out += reply;
    return false;
  }
  Entry* result = scratch.Detach(key);
  const std::string& sql = result ? rule->rule.store_sql : rule->rule.delete_sql;
  if (sql.empty()) {  // a delete with no delete statement: the cache alone
    real.Delete(key);
    *out += reply;
    return false;
  }
  Params bound = params;
  for (const auto& name : SqlParameters(sql)) {
    bool placeholder = false;
    for (const auto& p : params) placeholder |= p.first == name;
    if (placeholder || !result) continue;
    if (result->type == ObjType::kString && name == "value") {
      bound.emplace_back(name, std::string(result->value()));
    } else if (result->type == ObjType::kHash) {
      auto v = ObjectOf<HashValue>(result)->Get(name);
      if (v) bound.emplace_back(name, std::string(*v));
      // A field the hash lacks binds NULL: SQLite and libpq see no value.
    }
  }
  writes_[MakeId(db_index, key)];
  Server* server = server_;
  int shard = shard_->id();
  std::string id = MakeId(db_index, key);
  rule->source->Query(sql, std::move(bound), rule->rule.load_timeout_ms,
                      [server, shard, id, db_index, key, result, reply = std::move(reply), rule, spec,
                       target](QueryResult r) mutable {
                        server->shards().shard(shard).Post([server, shard, id, db_index, key = std::move(key), result,
                                                            reply = std::move(reply), rule, spec, target,
                                                            r = std::move(r)]() mutable {
                          server->local(shard).cache->CompleteWrite(id, db_index, std::move(key), result,
                                                                    std::move(reply), rule, spec, target, std::move(r));
                        });
                      });
  return true;
}

void ShardCache::CompleteWrite(const std::string& id, int db_index, std::string key, Entry* result, std::string reply,
                               std::shared_ptr<LiveRule> rule, const CommandSpec* spec, LateTarget target,
                               QueryResult r) {
  RefreshCommandTime();
  Db& real = shard_->db(db_index);
  if (r.status == QueryResult::kError) {
    rule->stats.write_errors.fetch_add(1, std::memory_order_relaxed);
    if (result) FreeEntry(result);
    std::string err = "ERR cache source '" + rule->rule.source + "' refused the write to '" + key + "': " + r.error;
    server_->RecordCommand(shard_, spec, r.micros, true, err);
    Connection::DeliverLate(server_, target, "-" + err + "\r\n");
  } else {
    server_->RecordCommand(shard_, spec, r.micros, false, {});
    rule->stats.writes_through.fetch_add(1, std::memory_order_relaxed);
    real.Delete(key);
    if (result) {
      result->flags &= static_cast<uint8_t>(~Entry::kCached);
      real.Add(result);
    }
    fresh_.erase(id);
    negative_.erase(id);
    Connection::DeliverLate(server_, target, std::move(reply));
  }
  NextWrite(id);
}

void ShardCache::NextWrite(const std::string& id) {
  for (;;) {
    auto it = writes_.find(id);
    if (it == writes_.end()) return;
    if (it->second.queue.empty()) {
      writes_.erase(it);
      return;
    }
    QueuedWrite w = std::move(it->second.queue.front());
    it->second.queue.pop_front();
    std::vector<std::string_view> argv(w.args.begin(), w.args.end());
    Params params;
    auto rule = MatchRule(argv[w.spec->KeyIndexes(argv).front()], &params);
    std::string out;
    bool deferred = false;
    if (rule && rule->rule.write_through) {
      // Its place in the queue is this key's slot: keep the entry while it runs.
      auto queue = std::move(it->second.queue);
      writes_.erase(it);
      deferred = StartWrite(rule, params, w.spec, argv, w.db, w.resp, w.target, &out);
      if (deferred) {
        writes_[id].queue = std::move(queue);
        return;
      }
      writes_[id].queue = std::move(queue);
    } else {
      out = RunForReply(server_, shard_, w.spec, argv, w.db, w.resp);  // the rule went away meanwhile
    }
    Connection::DeliverLate(server_, w.target, std::move(out));
  }
}

}  // namespace larder::cache

namespace larder::cache {

// ---- write-behind ----

namespace {
// Whether a write command replaces the whole key without reading it.
bool Overwrites(const CommandSpec* spec, std::span<const std::string_view> args) {
  const std::string& n = spec->name;
  if (n == "del" || n == "unlink" || n == "setex" || n == "psetex") return true;
  if (n != "set") return false;
  for (size_t i = 3; i < args.size(); ++i)
    if (EqualsIgnoreCase(args[i], "nx") || EqualsIgnoreCase(args[i], "xx") || EqualsIgnoreCase(args[i], "get") ||
        EqualsIgnoreCase(args[i], "keepttl"))
      return false;
  return true;
}
}  // namespace

bool ShardCache::LoadBeforeWrite(const CommandSpec* spec, std::span<const std::string_view> args, int db_index,
                                 int resp, const LateTarget& target) {
  auto keys = spec->KeyIndexes(args);
  if (keys.size() != 1 || Overwrites(spec, args)) return false;
  std::string_view key = args[keys[0]];
  Params params;
  auto rule = MatchRule(key, &params);
  if (!rule || !rule->rule.writes()) return false;
  Db& db = shard_->db(db_index);
  Entry* e = db.table().Find(key);
  if (e && !(e->has_expire() && e->expire_ms() <= CommandTimeMs())) return false;
  if (writes_.contains(MakeId(db_index, key))) return false;  // a write-through runs: it queues behind it
  // As a read of the key would: a running load is joined, a queued
  // write-behind value is put back, a remembered "no row" needs no load.
  Begin(spec, args, db_index, resp);
  db.Find(key);
  return End(target);
}

bool ShardCache::AfterWrite(const CommandSpec* spec, std::span<const std::string_view> args, int db_index,
                            const LateTarget& target, std::string* out, size_t start) {
  Journal* journal = server_->cache().journal();
  if (!journal) return false;
  auto keys = spec->KeyIndexes(args);
  if (keys.size() != 1) return false;  // several rule keys were refused at dispatch
  std::string_view key = args[keys[0]];
  Params placeholders;
  auto rule = MatchRule(key, &placeholders);
  if (!rule || !rule->writes) return false;
  Db& db = shard_->db(db_index);
  Change c;
  c.db = db_index;
  c.key.assign(key);
  c.at_ms = CommandTimeMs();
  Entry* e = db.table().Find(key);
  if (e && e->has_expire() && e->expire_ms() <= c.at_ms) e = nullptr;
  c.del = e == nullptr;
  if (e) {
    e->flags &= static_cast<uint8_t>(~Entry::kCached);  // written, not loaded
    for (const auto& name : rule->rule.store_values) {
      std::optional<std::string> v;
      if (e->type == ObjType::kString && name == "value") {
        v = std::string(e->value());
      } else if (e->type == ObjType::kHash) {
        if (auto f = ObjectOf<HashValue>(e)->Get(name)) v = std::string(*f);
      }
      c.values.emplace_back(name, std::move(v));
    }
  }
  std::string id = MakeId(db_index, key);
  fresh_.erase(id);
  negative_.erase(id);
  unjournaled_.emplace_back(std::move(c), rule->writes.get());
  held_.push_back(HeldReply{0, target, out->substr(start)});
  ++held_unnumbered_;
  out->resize(start);
  return true;
}

void ShardCache::FlushChanges() {
  if (unjournaled_.empty()) return;
  bool durable;
  std::string error;
  uint64_t last = server_->cache().journal()->AppendBatch(unjournaled_, shard_->id(), &durable, &error);
  unjournaled_.clear();
  size_t first = held_.size() - held_unnumbered_;
  held_unnumbered_ = 0;
  if (last == 0) {
    // Not journaled, so not acknowledged: the commands fail (the cache has
    // the values, the database may never get them).
    std::string reply = "-ERR write-behind journal write failed, the change may not reach the database: " + error +
                        "\r\n";
    for (size_t i = first; i < held_.size(); ++i) {
      held_[i].reply = reply;
      held_[i].seq = UINT64_MAX;  // goes out as soon as the replies before it
    }
    Durable(0);
    return;
  }
  // Each reply waits for the whole batch (a batch is written at once).
  for (size_t i = first; i < held_.size(); ++i) held_[i].seq = last;
  if (durable) Durable(last);
}

void ShardCache::Durable(uint64_t seq) {
  // One message per client thread, however many replies go there.
  std::vector<std::vector<std::pair<LateTarget, std::string>>> per_shard(
      static_cast<size_t>(server_->shards().size()));
  // Replies still unnumbered (seq 0, at the back) wait for FlushChanges.
  while (!held_.empty() && held_.front().seq != 0 && (held_.front().seq <= seq || held_.front().seq == UINT64_MAX)) {
    HeldReply& h = held_.front();
    per_shard[static_cast<size_t>(h.target.client_shard)].emplace_back(h.target, std::move(h.reply));
    held_.pop_front();
  }
  for (size_t s = 0; s < per_shard.size(); ++s)
    if (!per_shard[s].empty()) Connection::DeliverLateBatch(server_, static_cast<int>(s), std::move(per_shard[s]));
}

bool ShardCache::RestorePending(Db& db, std::string_view key, const LiveRule& rule) {
  std::optional<Change> c;
  for (auto it = unjournaled_.rbegin(); it != unjournaled_.rend() && !c; ++it)
    if (it->first.db == db.index() && it->first.key == key) c = it->first;
  if (!c) c = rule.writes->Lookup(db.index(), key);
  if (!c) return false;
  if (c->del) return true;  // deleted: missing, and no load
  // Storing looks the key up again: not through this hook.
  ReadHook* hook = t_read_hook;
  SetReadHook(nullptr);
  struct Rearm {
    ReadHook* h;
    ~Rearm() { SetReadHook(h); }
  } rearm{hook};
  QueryResult r;
  r.status = QueryResult::kRow;
  for (auto& [name, value] : c->values) {
    r.columns.push_back(name);
    r.values.push_back(std::move(value));
  }
  std::string k(key);
  int64_t stale_at;
  if (rule.rule.kind == ValueKind::kJson) {
    std::string v;
    for (size_t i = 0; i < r.columns.size(); ++i)
      if (r.columns[i] == "value" && r.values[i]) v = *r.values[i];
    Entry* e = db.SetString(k, v, CommandTimeMs() + rule.rule.ttl_ms, StrEncoding::kRaw);
    e->flags |= Entry::kCached;
    return true;
  }
  Store(db, k, rule, r, &stale_at);
  return true;
}

}  // namespace larder::cache
