// The write path of ShardCache: write-through (the database first, then the
// cache) and the shard's side of write-behind (the change to the journal and
// the rule's queue, the reply held until the journal has it). The journal,
// the queues and their flushers are in write_behind.cc.
#include "cache/read_through.h"

#include "commands/command.h"
#include "common/clock.h"
#include "common/strings.h"
#include "keyspace/db.h"
#include "keyspace/hash_value.h"
#include "server/connection.h"
#include "server/server.h"
#include "shard/shard.h"

namespace larder::cache {

namespace {
// The store statement's values for a key's state: :value of a string, the
// fields of a hash; a name the value lacks binds NULL (both databases).
std::vector<std::pair<std::string, std::optional<std::string>>> StoreValues(const Rule& rule, Entry* e) {
  std::vector<std::pair<std::string, std::optional<std::string>>> out;
  for (const auto& name : rule.store_values) {
    std::optional<std::string> v;
    if (e->type == ObjType::kString && name == "value") {
      v = std::string(e->value());
    } else if (e->type == ObjType::kHash) {
      if (auto f = ObjectOf<HashValue>(e)->Get(name)) v = std::string(*f);
    }
    out.emplace_back(name, std::move(v));
  }
  return out;
}
}  // namespace

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
    *out += "-" + FormatError(OpStatus::kWriteKeyNotAlone) + "\r\n";
    return WriteResult::kAnswered;
  }
  std::string id = KeyId(db, args[which]);
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
  Statement st{sql, {}};
  for (auto& [name, value] : params) st.params.emplace_back(name, value);
  if (result)
    for (auto& v : StoreValues(rule->rule, result)) st.params.push_back(std::move(v));
  writes_[KeyId(db_index, key)];
  Server* server = server_;
  int shard = shard_->id();
  std::string id = KeyId(db_index, key);
  std::vector<Statement> stmts;
  stmts.push_back(std::move(st));
  rule->source->Exec(std::move(stmts), rule->rule.load_timeout_ms,
                     [server, shard, id, db_index, key, result, reply = std::move(reply), rule, spec,
                      target](ExecResult e) mutable {
                        QueryResult r;
                        r.status = e.ok ? QueryResult::kNoRow : QueryResult::kError;
                        r.error = std::move(e.error);
                        r.micros = e.micros;
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
    std::string err = FormatError(OpStatus::kSourceRefusedWrite, rule->rule.source, key, r.error);
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
  if (writes_.contains(KeyId(db_index, key))) return false;  // a write-through runs: it queues behind it
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
    c.values = StoreValues(rule->rule, e);
  }
  std::string id = KeyId(db_index, key);
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
    std::string reply = "-" + FormatError(OpStatus::kJournalWriteFailed, error) + "\r\n";
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
