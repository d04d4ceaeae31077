#include "cache/manager.h"

#include <absl/strings/numbers.h>
#include <dirent.h>
#include <libpq-fe.h>
#include <poll.h>

#include <algorithm>
#include <cmath>

#include "cache/shard_cache.h"
#include "common/clock.h"
#include "common/status.h"
#include "common/log.h"
#include "keyspace/memory_budget.h"

namespace larder::cache {

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

void CacheManager::AttachShards(Host* host, std::vector<Shard*> shards) {
  host_ = host;
  shards_.clear();
  for (Shard* s : shards) shards_.push_back(std::make_unique<ShardCache>(this, host, s));
}

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
  if (!RuleFitsSource(rule, src->spec(), err)) return false;
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
    // Each flushed change is announced on its key's shard (the rule may be
    // gone by then: a weak reference, and nothing when it is).
    std::weak_ptr<LiveRule> weak = live;
    live->writes->set_on_written([this, weak](const Change& c) {
      if (!host_) return;
      int owner = host_->ShardOf(c.key);
      host_->Post(owner, [this, weak, owner, db = c.db, key = c.key] {
        if (auto rule = weak.lock()) shard(owner).Announce(&rule->rule, db, kEventWritten, key);
      });
    });
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

void CacheManager::StartSources() {
  std::lock_guard lock(mu_);
  started_ = true;
  for (auto& s : sources_) {
    s->Start();
    if (!s->spec().is_sqlite() && host_ && !channel_.empty())
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

bool CacheManager::OpenWriteBehind(const std::string& dir, FsyncPolicy policy, std::string* err) {
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
  Host* host = host_;
  auto durable = [this, host](int shard, uint64_t seq) {
    host->Post(shard, [this, shard, seq] { this->shard(shard).Durable(seq); });
  };
  journal_.Start(host_->shard_count(), std::move(durable), [this] {
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
      std::string key(n->extra);
      int owner = host_->ShardOf(key);
      host_->Post(owner, [this, owner, key = std::move(key)] { shard(owner).Invalidate(0, key); });
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

bool CacheManager::Warm(std::string_view pattern, std::string sql, std::string* err) {
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
      [this, job, rule, names](RowBatch b) {
        MemoryBudget::PublishHelperThread();  // rows built on this thread, freed on the shards
        // Which columns name the key, which hold the value.
        std::vector<int> key_cols(names.size(), -1);
        std::vector<int> value_cols;
        for (int i = 0; i < static_cast<int>(b.columns->size()); ++i) {
          auto it = std::find(names.begin(), names.end(), (*b.columns)[static_cast<size_t>(i)]);
          if (it != names.end()) key_cols[static_cast<size_t>(it - names.begin())] = i;
          else value_cols.push_back(i);
        }
        int nshards = host_->shard_count();
        std::vector<std::vector<std::pair<std::string, QueryResult>>> per_shard(static_cast<size_t>(nshards));
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
          per_shard[static_cast<size_t>(host_->ShardOf(key))].emplace_back(std::move(key), std::move(r));
        }
        size_t n = b.rows.size();
        {
          std::lock_guard lock(job->mu);
          for (const auto& part : per_shard) job->outstanding += part.empty() ? 0 : 1;
        }
        for (int s = 0; s < nshards; ++s) {
          auto& part = per_shard[static_cast<size_t>(s)];
          if (part.empty()) continue;
          host_->Post(s, [this, s, job, rule, part = std::move(part)] {
            RefreshCommandTime();
            for (const auto& [key, r] : part) shard(s).StoreWarm(0, key, rule, r);
            std::lock_guard lock(job->mu);
            if (--job->outstanding == 0) job->cv.notify_all();
          });
        }
        std::unique_lock lock(job->mu);
        while (!job->cv.wait_for(lock, std::chrono::milliseconds(100), [&] { return job->outstanding == 0; }))
          if (stopping()) return false;  // shutting down: the shards may never answer
        if (stopping()) return false;
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

}  // namespace larder::cache
