// ShardCache's read side: misses that load, hits that refresh, storing a
// loaded row, the negative cache, invalidation, warming, CACHE FETCH leases.
#include "cache/shard_cache.h"

#include <algorithm>
#include <cmath>

#include "cache/json_row.h"
#include "common/clock.h"
#include "common/status.h"
#include "common/log.h"
#include "keyspace/db.h"
#include "keyspace/hash_value.h"
#include "shard/shard.h"

namespace larder::cache {

namespace {
thread_local ShardCache* t_shard_cache = nullptr;
}  // namespace

ShardCache* CurrentShardCache() { return t_shard_cache; }
void SetCurrentShardCache(ShardCache* c) { t_shard_cache = c; }

std::string RuleEventMessage(std::string_view event, std::string_view key, int db) {
  std::string out = "{\"event\":";
  AppendJsonString(&out, event);
  out += ",\"key\":";
  AppendJsonString(&out, key);
  out += ",\"db\":";
  out += std::to_string(db);
  out.push_back('}');
  return out;
}

void ShardCache::Announce(const Rule* rule, int db, std::string_view event, std::string_view key) {
  host_->NotifyRuleEvent(shard_->id(), db, event, key);
  if (!rule) return;
  if (!rule->publish_channel.empty()) host_->Publish(rule->publish_channel, RuleEventMessage(event, key, db));
  if (!rule->publish_stream.empty()) {
    std::vector<std::pair<std::string, std::string>> fields;
    fields.emplace_back("event", std::string(event));
    fields.emplace_back("key", std::string(key));
    fields.emplace_back("db", std::to_string(db));
    host_->AppendToStream(db, rule->publish_stream, std::move(fields));
  }
}

bool ShardCache::Invalidate(int db_index, const std::string& key) {
  std::string id = KeyId(db_index, key);
  NoteChanged(id);
  negative_.erase(id);
  fresh_.erase(id);
  bool acted = false;
  auto p = pending_.find(id);
  if (p != pending_.end()) {
    p->second.outdated = true;  // its row predates the change
    acted = true;
  }
  if (shard_->db(db_index).Delete(key)) {
    host_->KeyChanged(shard_->id(), db_index, key);
    Params params;
    auto rule = MatchRule(key, &params);
    Announce(rule ? &rule->rule : nullptr, db_index, kEventInvalidated, key);
    acted = true;
  }
  return acted;
}

void ShardCache::NoteWrite(int db_index, std::string_view key) {
  std::string id = KeyId(db_index, key);
  NoteChanged(id);
  auto p = pending_.find(id);
  if (p != pending_.end()) p->second.outdated = true;
}

void ShardCache::NoteChanged(const std::string& id) {
  if (manager_->warming()) changed_at_[id] = UnixTimeMs();
  else if (!changed_at_.empty()) changed_at_.clear();
}

bool ShardCache::ChangedSince(const std::string& id, int64_t since_ms) const {
  auto it = changed_at_.find(id);
  return it != changed_at_.end() && it->second >= since_ms;
}

void ShardCache::StoreWarm(int db_index, const std::string& key, const std::shared_ptr<LiveRule>& rule,
                           const QueryResult& r, int64_t started_ms) {
  Db& db = shard_->db(db_index);
  int64_t stale_at;
  std::string id = KeyId(db_index, key);
  // A write-behind change the database does not have yet is newer than its row.
  if (rule->writes && rule->writes->Lookup(db_index, key)) return;
  // So is a client's write, or a change the database announced after the
  // warming query read its rows.
  if (ChangedSince(id, started_ms)) return;
  if (Entry* e = db.table().Find(key); e && !(e->flags & Entry::kCached)) return;
  // A load of the key running now stores its own (newer) row.
  if (pending_.contains(id)) return;
  if (!Store(db, key, *rule, r, started_ms, &stale_at)) return;
  negative_.erase(id);
  fresh_[id] = Fresh{stale_at, 0, rule};
  Announce(&rule->rule, db_index, kEventLoaded, key);
}

size_t ShardCache::SourceGap(const std::string& source) {
  RefreshCommandTime();
  int64_t now = CommandTimeMs();
  size_t touched = 0;
  for (auto& [id, p] : pending_)
    if (p.rule->rule.source == source) {
      p.outdated = true;
      ++touched;
    }
  std::vector<std::string> drop, gone;
  for (auto& [id, f] : fresh_) {
    if (f.rule->rule.source != source) continue;
    size_t sep = id.find('\0');
    int db_index = std::stoi(id.substr(0, sep));
    std::string_view key = std::string_view(id).substr(sep + 1);
    Db& db = shard_->db(db_index);
    Entry* e = db.table().Find(key);
    if (!e || !(e->flags & Entry::kCached)) {
      gone.push_back(id);  // expired, evicted or written since: nothing to keep for it
      continue;
    }
    ++touched;
    const Rule& rule = f.rule->rule;
    if (rule.listen_gap_revalidate && rule.grace_ms > 0) {
      // Stale now: served inside grace while one reload runs, as any stale key.
      f.stale_at_ms = std::min(f.stale_at_ms, now);
      int64_t until = now + rule.grace_ms;
      if (!e->has_expire() || e->expire_ms() > until) db.SetExpire(e, until);
    } else {
      drop.push_back(id);
    }
  }
  for (const auto& id : drop) {
    size_t sep = id.find('\0');
    int db_index = std::stoi(id.substr(0, sep));
    std::string key = id.substr(sep + 1);
    auto rule = fresh_[id].rule;
    fresh_.erase(id);
    if (shard_->db(db_index).Delete(key)) {
      host_->KeyChanged(shard_->id(), db_index, key);
      Announce(&rule->rule, db_index, kEventInvalidated, key);
    }
  }
  for (const auto& id : gone) fresh_.erase(id);
  return touched;
}

// ---- ShardCache ----

ShardCache::ShardCache(CacheManager* manager, Host* host, Shard* shard)
    : manager_(manager),
      host_(host),
      shard_(shard),
      rng_(0x5eed + static_cast<uint64_t>(shard->id())),
      leases_(host, shard->id()) {}

std::shared_ptr<LiveRule> ShardCache::MatchRule(std::string_view key, Params* params) const {
  uint64_t v = manager_->version();
  if (v != rules_version_) {
    rules_ = manager_->rules();
    rules_version_ = v;
  }
  for (const auto& r : *rules_)
    if (r->rule.pattern.Match(key, params)) return r;
  return nullptr;
}

bool ShardCache::Covers(std::string_view key) const {
  Params params;
  return MatchRule(key, &params) != nullptr;
}

ShardCache::ReadState ShardCache::CheckRead(int db_index, std::string_view key) {
  Db& db = shard_->db(db_index);
  if (Entry* e = db.Find(key)) {
    if (!(e->flags & Entry::kCached) || OnHit(db, e)) return ReadState::kReady;
    // Past its TTL with the source down, and the rule serves no stale value.
    fresh_.erase(KeyId(db_index, key));
    db.Delete(key);
    host_->KeyChanged(shard_->id(), db_index, key);
  }
  return OnMiss(db, key) ? ReadState::kLoading : ReadState::kReady;
}

ShardCache::ReadState ShardCache::CheckWriteLoad(int db_index, std::string_view key) {
  Params params;
  auto rule = MatchRule(key, &params);
  if (!rule || !rule->rule.writes()) return ReadState::kReady;
  Db& db = shard_->db(db_index);
  if (db.Find(key)) return ReadState::kReady;
  if (writes_.contains(KeyId(db_index, key))) return ReadState::kReady;  // a write-through runs: it queues behind it
  // As a read of the key would: a running load is joined, a queued
  // write-behind value is put back, a remembered "no row" needs no load.
  return OnMiss(db, key) ? ReadState::kLoading : ReadState::kReady;
}

void ShardCache::WaitFor(int db, std::span<const std::string_view> keys, Resume resume) {
  auto w = std::make_shared<Waiter>();
  w->resume = std::move(resume);
  w->keys_left = 0;
  std::vector<std::string> ids;
  for (std::string_view k : keys) {
    std::string id = KeyId(db, k);
    if (std::find(ids.begin(), ids.end(), id) != ids.end()) continue;
    auto it = pending_.find(id);
    if (it == pending_.end()) continue;  // finished meanwhile (cannot happen: same thread)
    it->second.waiters.push_back(w);
    ++w->keys_left;
    ids.push_back(std::move(id));
  }
  if (w->keys_left == 0) w->resume(nullptr);
}

bool ShardCache::OnMiss(Db& db, std::string_view key) {
  Params params;
  auto rule = MatchRule(key, &params);
  if (!rule) return false;
  std::string id = KeyId(db.index(), key);
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
  return true;
}

bool ShardCache::OnHit(Db& db, Entry* e) {
  std::string id = KeyId(db.index(), e->key());
  auto it = fresh_.find(id);
  if (it == fresh_.end()) return true;
  Fresh& f = it->second;
  const Rule& rule = f.rule->rule;
  RuleStats& stats = f.rule->stats;
  int64_t now = CommandTimeMs();
  bool stale = now >= f.stale_at_ms;
  // Without grace a stale value is never served (one stored as already
  // stale, a key whose listener had a gap): the read waits for its load.
  if (stale && rule.grace_ms == 0) return false;
  if (pending_.contains(id)) {  // a reload is already running
    if (stale) stats.stale_served.fetch_add(1, std::memory_order_relaxed);
    stats.hits.fetch_add(1, std::memory_order_relaxed);
    return true;
  }
  if (stale && !f.rule->source->up()) {
    // The circuit is open: inside grace the stale value is served without
    // trying the database (stale-on-error), or not at all.
    if (!rule.stale_on_error) return false;
    stats.hits.fetch_add(1, std::memory_order_relaxed);
    stats.stale_served.fetch_add(1, std::memory_order_relaxed);
    return true;
  }
  stats.hits.fetch_add(1, std::memory_order_relaxed);
  if (stale) stats.stale_served.fetch_add(1, std::memory_order_relaxed);
  bool reload = stale;
  if (!stale && rule.refresh_ahead) {
    // XFetch: reload when now + 1.5 delta - delta * ln(u) passes the
    // stale time, delta being the last load's time. The closer to it, and
    // the slower the load, the likelier; sure 1.5 load times before it, so
    // that the new row is in before the old one's TTL ends (the TTL is not
    // stretched for it). Only inside the last tenth of the TTL (or two load
    // times, if longer): a very hot key would otherwise be reloaded again
    // and again, long before it expires.
    double delta_ms = static_cast<double>(f.load_us) / 1000.0;
    int64_t window = std::max<int64_t>(static_cast<int64_t>(2 * delta_ms), rule.ttl_ms / 10);
    if (f.stale_at_ms - now <= window) {
      double u = std::uniform_real_distribution<double>(1e-12, 1.0)(rng_);
      double gap_ms = 1.5 * delta_ms - delta_ms * std::log(u);
      if (static_cast<double>(now) + gap_ms >= static_cast<double>(f.stale_at_ms)) {
        stats.early_refreshes.fetch_add(1, std::memory_order_relaxed);
        reload = true;
      }
    }
  }
  if (!reload) return true;
  Params params;
  auto matched = MatchRule(e->key(), &params);
  if (matched) StartLoad(id, db.index(), std::string(e->key()), matched, std::move(params), true);
  return true;
}

void ShardCache::StartLoad(const std::string& id, int db, std::string key, std::shared_ptr<LiveRule> rule,
                           Params params, bool background) {
  Pending& p = pending_[id];
  p.rule = rule;
  p.background = background;
  p.params = std::move(params);
  SubmitLoad(id, db, key, p);
}

void ShardCache::SubmitLoad(const std::string& id, int db, const std::string& key, Pending& p) {
  p.rule->stats.loads.fetch_add(1, std::memory_order_relaxed);
  CacheManager* manager = manager_;
  Host* host = host_;
  int shard = shard_->id();
  manager_->Submit(p.rule, p.params, [manager, host, shard, id, db, key](QueryResult r) {
    host->Post(shard, [manager, shard, id, db, key, r = std::move(r)]() mutable {
      manager->shard(shard).Complete(id, db, key, std::move(r));
    });
  });
}

bool ShardCache::Store(Db& db, const std::string& key, const LiveRule& live, const QueryResult& r, int64_t read_ms,
                       int64_t* stale_at, bool stale_now) {
  const Rule& rule = live.rule;
  int64_t now = CommandTimeMs();
  double ttl = static_cast<double>(rule.ttl_ms);
  if (rule.jitter_pct) {
    double j = std::uniform_real_distribution<double>(-1.0, 1.0)(rng_) * rule.jitter_pct / 100.0;
    ttl *= 1.0 + j;
  }
  // The TTL counts from when the database was read, not from now: a slow
  // load does not make its row live longer.
  *stale_at = std::max(now + 1, read_ms + std::max<int64_t>(1, static_cast<int64_t>(ttl)));
  // Kept past its TTL for the grace period only (served stale while one
  // reload runs, or while the source is down with stale-on-error).
  int64_t expire = *stale_at + rule.grace_ms;
  if (stale_now) {
    // Outdated before it was stored (kMaxRestarts): the waiting commands
    // read it now; anyone after them reloads it.
    *stale_at = now;
    expire = now + std::max<int64_t>(rule.grace_ms, rule.load_timeout_ms);
  }
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
      HashLimits limits = host_->hash_limits();
      auto h = std::make_unique<HashValue>();
      for (size_t i = 0; i < r.columns.size(); ++i)
        if (r.values[i]) h->Set(r.columns[i], *r.values[i], limits);
      if (h->size() == 0) return false;  // every column NULL: nothing to cache
      bool existed = db.Delete(key);
      e = NewObjectEntry(key, ObjType::kHash, h.release(), expire);
      if (existed) db.AddQuiet(e);  // a reload: the key is not new
      else db.Add(e);
      break;
    }
  }
  e->flags |= Entry::kCached;
  host_->KeyChanged(shard_->id(), db.index(), key);
  return true;
}

void ShardCache::Complete(const std::string& id, int db_index, const std::string& key, QueryResult r) {
  auto it = pending_.find(id);
  if (it == pending_.end()) return;
  RefreshCommandTime();
  LiveRule& live = *it->second.rule;
  live.stats.RecordLatency(r.micros);
  Db& db = shard_->db(db_index);
  Entry* now_there = db.table().Find(key);
  bool written = now_there && !(now_there->flags & Entry::kCached);
  // The key was invalidated or written while the load ran: its row may
  // predate the change, so it is not stored; the load runs again and the
  // waiters wait for that one (a client's value, if one is there now, wins
  // without a reload).
  bool outdated = it->second.outdated && r.status != QueryResult::kError && !written;
  if (outdated && it->second.restarts < kMaxRestarts) {
    live.stats.outdated_loads.fetch_add(1, std::memory_order_relaxed);
    Pending& again = it->second;
    again.outdated = false;
    ++again.restarts;
    SubmitLoad(id, db_index, key, again);
    return;
  }
  Pending p = std::move(it->second);
  pending_.erase(it);
  if (r.status == QueryResult::kError) {
    live.stats.load_errors.fetch_add(1, std::memory_order_relaxed);
    // A value still held (inside grace) keeps being served if the rule says
    // so; whoever waits for a value that is not there gets the error.
    bool serve_stale = live.rule.stale_on_error && now_there != nullptr;
    if (!serve_stale && now_there && (now_there->flags & Entry::kCached)) {
      auto f = fresh_.find(id);
      if (f != fresh_.end() && CommandTimeMs() >= f->second.stale_at_ms) {
        // Past its TTL, and the rule serves no stale value on errors.
        fresh_.erase(f);
        db.Delete(key);
        host_->KeyChanged(shard_->id(), db_index, key);
      }
    }
    std::string error = FormatError(OpStatus::kSourceLoadFailed, live.rule.source, key, r.error);
    for (auto& w : p.waiters) {
      if (w->keys_left <= 0) continue;  // already answered (another key failed)
      if (serve_stale) {
        if (--w->keys_left == 0) w->resume(nullptr);
      } else {
        w->keys_left = 0;
        w->resume(&error);
      }
    }
    return;
  }
  // A client wrote the key while the load ran: its write is newer than the
  // row, so the row is dropped (the waiters see the written value).
  if (written) {
    fresh_.erase(id);
    for (auto& w : p.waiters)
      if (w->keys_left > 0 && --w->keys_left == 0) w->resume(nullptr);
    return;
  }
  int64_t read_ms = CommandTimeMs() - r.micros / 1000;
  if (r.status == QueryResult::kRow) {
    int64_t stale_at;
    // A cached value was there (refresh-ahead, a stale key inside grace): a refresh.
    bool reload = now_there && !(now_there->has_expire() && now_there->expire_ms() <= CommandTimeMs());
    if (Store(db, key, live, r, read_ms, &stale_at, outdated)) {
      negative_.erase(id);
      fresh_[id] = Fresh{stale_at, r.micros, p.rule};
      Announce(&live.rule, db_index, reload ? kEventRefreshed : kEventLoaded, key);
    } else {
      r.status = QueryResult::kNoRow;
    }
  }
  if (r.status == QueryResult::kNoRow) {
    if (live.rule.negative_ttl_ms > 0 && !outdated) negative_[id] = CommandTimeMs() + live.rule.negative_ttl_ms;
    fresh_.erase(id);
    Entry* e = db.table().Find(key);
    if (e && (e->flags & Entry::kCached)) {  // the row is gone
      db.Delete(key);
      host_->KeyChanged(shard_->id(), db_index, key);
      Announce(&live.rule, db_index, kEventInvalidated, key);
    }
  }
  for (auto& w : p.waiters)
    if (w->keys_left > 0 && --w->keys_left == 0) w->resume(nullptr);
}

}  // namespace larder::cache
