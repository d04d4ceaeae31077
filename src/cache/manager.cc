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
#include "common/strings.h"
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
    if (!s->spec().is_sqlite() && host_ && !channel_.empty()) {
      auto& state = listen_states_[s->name()];
      state = std::make_unique<ListenState>();
      listeners_.emplace_back([this, spec = s->spec(), st = state.get()] { Listen(spec, st); });
    }
  }
  for (auto& r : *rules_)
    if (r->writes) r->writes->Start();
  batcher_ = std::thread([this] { Batcher(); });
}

const CacheManager::ListenState* CacheManager::listen_state(std::string_view source) const {
  std::lock_guard lock(mu_);
  auto it = listen_states_.find(std::string(source));
  return it == listen_states_.end() ? nullptr : it->second.get();
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
void CacheManager::Listen(SourceSpec spec, ListenState* state) {
  PGconn* c = nullptr;
  bool warned = false, ever = false;
  while (!stopping_.load()) {
    MemoryBudget::PublishHelperThread();  // notified keys are freed on the shards
    if (!c) {
      std::string err;
      c = ConnectPostgres(spec.uri, &err);
      if (c) {
        std::string sql = "LISTEN \"" + channel_ + "\"";
        PGresult* r = PQexec(c, sql.c_str());
        bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
        if (!ok) err = PQresultErrorMessage(r);
        PQclear(r);
        if (!ok) {
          PQfinish(c);
          c = nullptr;
        }
      }
      if (!c) {
        if (!warned) LOG_WARNING("Cache source '{}': cannot listen for invalidations: {}", spec.name, OneLine(err));
        warned = true;
        for (int i = 0; i < 5 && !stopping_.load(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
        continue;
      }
      if (warned) LOG_NOTICE("Cache source '{}': listening for invalidations on '{}' again", spec.name, channel_);
      warned = false;
      state->connected.store(true);
      // Whatever changed while no LISTEN connection was there went
      // unannounced (also before the first one: loads may have run).
      CloseGap(spec.name, state, ever);
      ever = true;
    }
    pollfd pfd{PQsocket(c), POLLIN, 0};
    poll(&pfd, 1, 100);
    if (!PQconsumeInput(c) || PQstatus(c) != CONNECTION_OK) {
      LOG_WARNING("Cache source '{}': the invalidation listener lost its connection: {}", spec.name,
                  OneLine(PQerrorMessage(c)));
      state->connected.store(false);
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
  state->connected.store(false);
  if (c) PQfinish(c);
}

void CacheManager::CloseGap(const std::string& source, ListenState* state, bool reconnect) {
  struct Tally {
    std::atomic<int> left;
    std::atomic<uint64_t> keys{0};
  };
  auto tally = std::make_shared<Tally>();
  int n = host_->shard_count();
  tally->left.store(n);
  if (reconnect) state->gaps.fetch_add(1);
  for (int s = 0; s < n; ++s)
    host_->Post(s, [this, s, source, state, tally, reconnect] {
      tally->keys.fetch_add(shard(s).SourceGap(source));
      if (tally->left.fetch_sub(1) != 1) return;
      uint64_t keys = tally->keys.load();
      state->gap_keys.fetch_add(keys);
      if (reconnect || keys)
        LOG_WARNING("Cache source '{}': notifications may have been missed while the listener was away; "
                    "{} key(s) loaded from it dropped or made stale",
                    source, keys);
    });
}

void CacheManager::StopSources() {
  stopping_.store(true);
  for (auto& t : listeners_) t.join();
  listeners_.clear();
  batcher_cv_.notify_all();
  if (batcher_.joinable()) batcher_.join();
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

void CacheManager::WithSlot(const std::shared_ptr<LiveRule>& rule, std::function<void(std::function<void()>)> start) {
  // Each finished query starts the next queued one, or frees its slot.
  auto release = [rule] {
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
  };
  auto run = [start = std::move(start), release] { start(release); };
  {
    std::lock_guard lock(rule->queue_mu);
    if (rule->inflight.load() >= rule->rule.max_loads) {
      rule->queued.push_back(std::move(run));
      return;
    }
    rule->inflight.fetch_add(1);
  }
  run();
}

void CacheManager::Submit(const std::shared_ptr<LiveRule>& rule, Params params, std::function<void(QueryResult)> done) {
  if (!rule->rule.load_many_sql.empty() && params.size() == 1) {
    std::vector<LiveRule::BatchItem> full;
    bool first = false;
    {
      std::lock_guard lock(rule->batch_mu);
      rule->batch.push_back({std::move(params[0].second), std::move(done)});
      if (static_cast<int>(rule->batch.size()) >= rule->rule.load_many_max || rule->rule.load_many_window_us == 0) {
        full.swap(rule->batch);
        rule->batch_due_us = 0;
      } else if (rule->batch.size() == 1) {
        rule->batch_due_us = MonotonicUs() + rule->rule.load_many_window_us;
        first = true;
      }
    }
    if (!full.empty()) {
      SendBatch(rule, std::move(full));
    } else if (first) {
      {
        std::lock_guard lock(batcher_mu_);
        gathering_.push_back(rule);
      }
      batcher_cv_.notify_one();
    }
    return;
  }
  WithSlot(rule, [rule, params = std::move(params), done = std::move(done)](std::function<void()> release) mutable {
    rule->source->Query(rule->rule.load_sql, std::move(params), rule->rule.load_timeout_ms,
                        [done = std::move(done), release = std::move(release)](QueryResult r) {
                          done(std::move(r));
                          release();
                        });
  });
}

void CacheManager::Batcher() {
  std::unique_lock lock(batcher_mu_);
  while (!stopping_.load()) {
    int64_t now = MonotonicUs();
    int64_t next = now + 100'000;
    std::vector<std::pair<std::shared_ptr<LiveRule>, std::vector<LiveRule::BatchItem>>> due;
    for (size_t i = 0; i < gathering_.size();) {
      auto rule = gathering_[i].lock();
      bool drop = !rule;
      if (rule) {
        std::lock_guard b(rule->batch_mu);
        if (rule->batch.empty()) {
          drop = true;  // sent when it filled up
        } else if (rule->batch_due_us <= now) {
          due.emplace_back(rule, std::move(rule->batch));
          rule->batch.clear();
          rule->batch_due_us = 0;
          drop = true;
        } else {
          next = std::min(next, rule->batch_due_us);
        }
      }
      if (drop) {
        gathering_[i] = std::move(gathering_.back());
        gathering_.pop_back();
      } else {
        ++i;
      }
    }
    if (!due.empty()) {
      lock.unlock();
      for (auto& [rule, items] : due) SendBatch(rule, std::move(items));
      lock.lock();
      continue;
    }
    batcher_cv_.wait_for(lock, std::chrono::microseconds(std::max<int64_t>(1, next - now)));
  }
}

void CacheManager::SendBatch(const std::shared_ptr<LiveRule>& rule, std::vector<LiveRule::BatchItem> items) {
  rule->stats.batches.fetch_add(1, std::memory_order_relaxed);
  rule->stats.batched_keys.fetch_add(items.size(), std::memory_order_relaxed);
  auto shared = std::make_shared<std::vector<LiveRule::BatchItem>>(std::move(items));
  WithSlot(rule, [rule, shared](std::function<void()> release) {
    std::vector<std::string> values;
    for (const auto& it : *shared) values.push_back(it.value);
    rule->source->QueryMany(
        rule->rule.load_many_sql, rule->rule.load_many_param, std::move(values), rule->rule.load_timeout_ms,
        [rule, shared, release = std::move(release)](ManyResult m) {
          std::string name = rule->rule.pattern.names()[0];
          int key_col = -1;
          const auto& cols = m.rows.columns ? *m.rows.columns : std::vector<std::string>{};
          for (size_t i = 0; i < cols.size(); ++i)
            if (cols[i] == name) key_col = static_cast<int>(i);
          if (m.ok && key_col < 0) {
            m.ok = false;
            m.error = "the load-many statement returned no column named '" + name + "'";
          }
          // Each key's row (the first one naming it), or none.
          absl::flat_hash_map<std::string, size_t> row_of;
          if (m.ok)
            for (size_t r = 0; r < m.rows.rows.size(); ++r)
              if (const auto& v = m.rows.rows[r][static_cast<size_t>(key_col)]) row_of.emplace(*v, r);
          for (auto& item : *shared) {
            QueryResult q;
            q.micros = m.micros;
            if (!m.ok) {
              q.status = QueryResult::kError;
              q.error = m.error;
              q.lost = m.lost;
            } else if (auto it = row_of.find(item.value); it != row_of.end()) {
              q.status = QueryResult::kRow;
              for (size_t c = 0; c < cols.size(); ++c) {
                if (static_cast<int>(c) == key_col) continue;
                q.columns.push_back(cols[c]);
                q.values.push_back(m.rows.rows[it->second][c]);
                q.types.push_back(m.rows.types[it->second][c]);
              }
            } else {
              q.status = QueryResult::kNoRow;
            }
            item.done(std::move(q));
          }
          release();
        });
  });
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
  warming_.fetch_add(1);
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
          size_t row_index = static_cast<size_t>(&row - b.rows.data());
          for (int c : value_cols) {
            r.columns.push_back((*b.columns)[static_cast<size_t>(c)]);
            r.values.push_back(std::move(row[static_cast<size_t>(c)]));
            if (row_index < b.types.size()) r.types.push_back(b.types[row_index][static_cast<size_t>(c)]);
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
            for (const auto& [key, r] : part) shard(s).StoreWarm(0, key, rule, r, job->started_ms);
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
      [this, job](std::string error) {
        warming_.fetch_sub(1);
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
