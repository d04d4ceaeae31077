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
#include "keyspace/db.h"
#include "keyspace/hash_value.h"
#include "server/connection.h"
#include "server/server.h"
#include "shard/shard.h"

namespace larder::cache {

namespace {
thread_local ShardCache* t_shard_cache = nullptr;

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
      *err = FormatError(OpStatus::kRulePendingWrites, r->writes->depth());
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
        // Set aside as a dead letter before the restart: stays there.
        if (dead_letters_.Holds(c)) return;
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
    MemoryBudget::PublishHelperThread();  // notified keys are freed on the shards
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
        MemoryBudget::PublishHelperThread();  // rows built on this thread, freed on the shards
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
  std::string id = KeyId(db_index, key);
  negative_.erase(id);
  fresh_.erase(id);
  shard_->db(db_index).Delete(key);
}

void ShardCache::StoreWarm(int db_index, const std::string& key, const std::shared_ptr<LiveRule>& rule,
                           const QueryResult& r) {
  Db& db = shard_->db(db_index);
  int64_t stale_at;
  std::string id = KeyId(db_index, key);
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
  std::string id = KeyId(db.index(), key);
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
  std::string id = KeyId(db.index(), e->key());
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
        w->error = FormatError(OpStatus::kSourceLoadFailed, live.rule.source, key, r.error);
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

std::string ShardCache::MakeLeaseId(int db, std::string_view key) { return KeyId(db, key); }

const ShardCache::Lease* ShardCache::FindLease(int db, std::string_view key) {
  auto it = leases_.find(KeyId(db, key));
  if (it == leases_.end()) return nullptr;
  if (it->second.until_ms <= CommandTimeMs()) {
    leases_.erase(it);
    return nullptr;
  }
  return &it->second;
}

void ShardCache::GrantLease(int db, std::string_view key, Lease lease) { leases_[KeyId(db, key)] = lease; }

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

}  // namespace larder::cache
