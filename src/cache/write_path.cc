// The write path of ShardCache: write-through (the database first, then the
// cache) and the shard's side of write-behind (the change to the journal and
// the rule's queue, the reply held until the journal has it). The journal,
// the queues and their flushers are in write_behind.cc.
#include "cache/shard_cache.h"

#include "cache/json_row.h"
#include "common/clock.h"
#include "common/status.h"
#include "keyspace/db.h"
#include "keyspace/hash_value.h"
#include "shard/shard.h"

namespace larder::cache {

namespace {
// The store statement's values for a key's state: :value of a string, the
// fields of a hash, the top-level members of a json rule's object (as
// json_row.h binds them); a name the value lacks binds NULL (both databases).
std::vector<std::pair<std::string, std::optional<std::string>>> StoreValues(const Rule& rule, Entry* e) {
  std::vector<std::pair<std::string, std::optional<std::string>>> out, members;
  if (rule.kind == ValueKind::kJson && e->type == ObjType::kString) JsonObjectMembers(e->value(), &members);
  for (const auto& name : rule.store_values) {
    std::optional<std::string> v;
    if (e->type == ObjType::kString && name == "value") {
      v = std::string(e->value());
    } else if (e->type == ObjType::kString) {
      for (const auto& [member, value] : members)
        if (member == name) v = value;
    } else if (e->type == ObjType::kHash) {
      if (auto f = ObjectOf<HashValue>(e)->Get(name)) v = std::string(*f);
    }
    out.emplace_back(name, std::move(v));
  }
  return out;
}
}  // namespace

ShardCache::WriteMode ShardCache::WriteModeOf(std::string_view key) const {
  Params p;
  auto r = MatchRule(key, &p);
  if (!r) return WriteMode::kNone;
  if (r->rule.write_through) return WriteMode::kThrough;
  if (r->rule.write_behind) return WriteMode::kBehind;
  return WriteMode::kNone;
}

// ---- write-through ----

bool ShardCache::QueueBehindWrite(int db, std::string_view key, absl::AnyInvocable<void()> run) {
  auto it = writes_.find(KeyId(db, key));
  if (it == writes_.end()) return false;
  it->second.push_back(std::move(run));
  return true;
}

bool ShardCache::StartWriteThrough(int db_index, std::string_view key_view, Entry* result, WriteDone done) {
  Params params;
  auto rule = MatchRule(key_view, &params);
  std::string key(key_view);
  Db& real = shard_->db(db_index);
  if (!rule || !rule->rule.write_through) {  // the rule went away meanwhile: the cache alone
    bool existed = real.Delete(key);
    if (result) {
      if (existed) real.AddQuiet(result);
      else real.Add(result);  // the command ran on a copy: "new" is raised here
    }
    host_->KeyChanged(shard_->id(), db_index, key);
    return false;
  }
  const std::string& sql = result ? rule->rule.store_sql : rule->rule.delete_sql;
  if (sql.empty()) {  // a delete with no delete statement: the cache alone
    if (result) FreeEntry(result);
    real.Delete(key);
    host_->KeyChanged(shard_->id(), db_index, key);
    return false;
  }
  Statement st{sql, {}};
  for (auto& [name, value] : params) st.params.emplace_back(name, value);
  if (result)
    for (auto& v : StoreValues(rule->rule, result)) st.params.push_back(std::move(v));
  std::string id = KeyId(db_index, key);
  writes_[id];  // the key's slot: later writes queue behind this one
  CacheManager* manager = manager_;
  Host* host = host_;
  int shard = shard_->id();
  std::vector<Statement> stmts;
  stmts.push_back(std::move(st));
  // The source's callback must be copyable; the continuation is not.
  auto kept = std::make_shared<WriteDone>(std::move(done));
  rule->source->Exec(std::move(stmts), rule->rule.load_timeout_ms,
                     [manager, host, shard, id, db_index, key, result, rule, kept](ExecResult e) mutable {
                       host->Post(shard, [manager, shard, id, db_index, key = std::move(key), result, rule, kept,
                                          e = std::move(e)]() mutable {
                         manager->shard(shard).CompleteWrite(id, db_index, std::move(key), result, std::move(rule),
                                                             std::move(e), std::move(*kept));
                       });
                     });
  return true;
}

void ShardCache::CompleteWrite(const std::string& id, int db_index, std::string key, Entry* result,
                               std::shared_ptr<LiveRule> rule, ExecResult r, WriteDone done) {
  RefreshCommandTime();
  Db& real = shard_->db(db_index);
  if (!r.ok) {
    rule->stats.write_errors.fetch_add(1, std::memory_order_relaxed);
    if (result) FreeEntry(result);
    std::string err = FormatError(OpStatus::kSourceRefusedWrite, rule->rule.source, key, r.error);
    done(&err, r.micros);
  } else {
    rule->stats.writes_through.fetch_add(1, std::memory_order_relaxed);
    bool existed = real.Delete(key);
    if (result) {
      result->flags &= static_cast<uint8_t>(~Entry::kCached);
      if (existed) real.AddQuiet(result);
      else real.Add(result);  // the command ran on a copy: "new" is raised here
    }
    host_->KeyChanged(shard_->id(), db_index, key);
    fresh_.erase(id);
    negative_.erase(id);
    Announce(&rule->rule, db_index, kEventWritten, key);
    done(nullptr, r.micros);
  }
  NextWrite(id);
}

void ShardCache::NextWrite(const std::string& id) {
  // The next queued write of the key runs; if it goes to the database it
  // takes the key's slot again (StartWriteThrough), else the next one runs.
  while (true) {
    auto it = writes_.find(id);
    if (it == writes_.end()) return;
    if (it->second.empty()) {
      writes_.erase(it);
      return;
    }
    auto run = std::move(it->second.front());
    it->second.pop_front();
    auto queue = std::move(it->second);
    writes_.erase(it);
    run();  // may call StartWriteThrough, which opens the slot again
    auto again = writes_.find(id);
    if (again != writes_.end()) {
      // In flight again: the rest waits behind it (in front of anything the
      // run itself queued, which cannot happen: it ran first).
      for (auto& q : again->second) queue.push_back(std::move(q));
      again->second = std::move(queue);
      return;
    }
    if (queue.empty()) return;
    writes_[id] = std::move(queue);
  }
}

// ---- write-behind ----

bool ShardCache::HoldForJournal(int db_index, std::string_view key, Release release) {
  Journal* journal = manager_->journal();
  if (!journal) return false;
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
    c.values = StoreValues(rule->rule, e);
  }
  std::string id = KeyId(db_index, key);
  fresh_.erase(id);
  negative_.erase(id);
  unjournaled_.emplace_back(std::move(c), rule->writes.get());
  held_.push_back(Held{0, std::move(release), {}});
  ++held_unnumbered_;
  return true;
}

void ShardCache::FlushChanges() {
  if (unjournaled_.empty()) return;
  bool durable;
  std::string error;
  uint64_t last = manager_->journal()->AppendBatch(unjournaled_, shard_->id(), &durable, &error);
  unjournaled_.clear();
  size_t first = held_.size() - held_unnumbered_;
  held_unnumbered_ = 0;
  if (last == 0) {
    // Not journaled, so not acknowledged: the commands fail (the cache has
    // the values, the database may never get them).
    for (size_t i = first; i < held_.size(); ++i) {
      held_[i].error = FormatError(OpStatus::kJournalWriteFailed, error);
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
  // Replies still unnumbered (seq 0, at the back) wait for FlushChanges.
  while (!held_.empty() && held_.front().seq != 0 && (held_.front().seq <= seq || held_.front().seq == UINT64_MAX)) {
    Held h = std::move(held_.front());
    held_.pop_front();
    h.release(h.error.empty() ? nullptr : &h.error);
  }
}

bool ShardCache::RestorePending(Db& db, std::string_view key, const LiveRule& rule) {
  std::optional<Change> c;
  for (auto it = unjournaled_.rbegin(); it != unjournaled_.rend() && !c; ++it)
    if (it->first.db == db.index() && it->first.key == key) c = it->first;
  if (!c) c = rule.writes->Lookup(db.index(), key);
  if (!c) return false;
  if (c->del) return true;  // deleted: missing, and no load
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
  Store(db, k, rule, r, CommandTimeMs(), &stale_at);
  return true;
}

}  // namespace larder::cache
