// ShardCache's read side: misses that load, hits that refresh, storing a
// loaded row, the negative cache, invalidation, warming, CACHE FETCH leases.
#include "cache/shard_cache.h"

#include <algorithm>
#include <cmath>

#include "common/clock.h"
#include "common/status.h"
#include "common/log.h"
#include "keyspace/db.h"
#include "keyspace/hash_value.h"
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

void ShardCache::Invalidate(int db_index, const std::string& key) {
  std::string id = KeyId(db_index, key);
  negative_.erase(id);
  fresh_.erase(id);
  if (shard_->db(db_index).Delete(key)) {
    host_->KeyChanged(shard_->id(), db_index, key);
    Params params;
    auto rule = MatchRule(key, &params);
    Announce(rule ? &rule->rule : nullptr, db_index, kEventInvalidated, key);
  }
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
  Announce(&rule->rule, db_index, kEventLoaded, key);
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
    if (e->flags & Entry::kCached) OnHit(db, e);
    return ReadState::kReady;
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
  CacheManager* manager = manager_;
  Host* host = host_;
  int shard = shard_->id();
  manager_->Submit(rule, std::move(params), [manager, host, shard, id, db, key = std::move(key)](QueryResult r) {
    host->Post(shard, [manager, shard, id, db, key, r = std::move(r)]() mutable {
      manager->shard(shard).Complete(id, db, key, std::move(r));
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
  Entry* now_there = db.table().Find(key);
  if (now_there && !(now_there->flags & Entry::kCached)) {
    fresh_.erase(id);
    for (auto& w : p.waiters)
      if (w->keys_left > 0 && --w->keys_left == 0) w->resume(nullptr);
    return;
  }
  if (r.status == QueryResult::kRow) {
    int64_t stale_at;
    // A cached value was there (refresh-ahead, a stale key inside grace): a refresh.
    bool reload = now_there && !(now_there->has_expire() && now_there->expire_ms() <= CommandTimeMs());
    if (Store(db, key, live, r, &stale_at)) {
      negative_.erase(id);
      fresh_[id] = Fresh{stale_at, r.micros, p.rule};
      Announce(&live.rule, db_index, reload ? kEventRefreshed : kEventLoaded, key);
    } else {
      r.status = QueryResult::kNoRow;
    }
  }
  if (r.status == QueryResult::kNoRow) {
    if (live.rule.negative_ttl_ms > 0) negative_[id] = CommandTimeMs() + live.rule.negative_ttl_ms;
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
