// Generic key commands: existence, deletion, renaming, copying, iteration,
// TTLs, OBJECT, and the database-wide ones (DBSIZE, FLUSHDB, SWAPDB...).
#include <climits>
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include "engine/multi_shard.h"
#include "commands/families.h"
#include "engine/client.h"
#include "engine/command.h"
#include "engine/notify.h"
#include "common/strings.h"
#include "keyspace/objects.h"
#include "common/clock.h"
#include "common/glob.h"
#include "common/numbers.h"
#include "config/config.h"
#include "shard/shard.h"

namespace larder {

namespace {

std::string_view TypeName(ObjType t) {
  switch (t) {
    case ObjType::kString: return "string";
    case ObjType::kList: return "list";
    case ObjType::kSet: return "set";
    case ObjType::kZSet: return "zset";
    case ObjType::kHash: return "hash";
    case ObjType::kStream: return "stream";
  }
  return "none";
}

// DEL frees big values in the background under lazyfree-lazy-user-del;
// UNLINK always does.
void DeleteKeys(CommandContext& ctx, DeleteCause cause) {
  int64_t n = 0;
  for (size_t i = 1; i < ctx.argc(); ++i) {
    Db& db = ctx.DbFor(ctx.arg(i));
    if (db.Find(ctx.arg(i)) && db.Delete(ctx.arg(i), cause)) {
      ++n;
      NotifyKeyspaceEvent(ctx, kNotifyGeneric, "del", ctx.arg(i));
    }
  }
  ctx.rb->Integer(n);
}
void Del(CommandContext& ctx) { DeleteKeys(ctx, DeleteCause::kUser); }
void Unlink(CommandContext& ctx) { DeleteKeys(ctx, DeleteCause::kUnlink); }

void Exists(CommandContext& ctx) {
  int64_t n = 0;
  for (size_t i = 1; i < ctx.argc(); ++i)
    if (ctx.DbFor(ctx.arg(i)).FindReadNoTouch(ctx.arg(i))) ++n;
  ctx.rb->Integer(n);
}

void Touch(CommandContext& ctx) {
  int64_t n = 0;
  for (size_t i = 1; i < ctx.argc(); ++i)
    if (ctx.DbFor(ctx.arg(i)).FindWrite(ctx.arg(i))) ++n;
  ctx.rb->Integer(n);
}

void Type(CommandContext& ctx) {
  // As Redis (LOOKUP_NOTOUCH): a read that counts, and a miss is announced.
  Entry* e = ctx.DbFor(ctx.arg(1)).FindReadNoTouch(ctx.arg(1));
  ctx.rb->SimpleString(e ? TypeName(e->type) : "none");
}

void RenameGeneric(CommandContext& ctx, bool nx) {
  std::string_view src = ctx.arg(1), dst = ctx.arg(2);
  Db& sdb = ctx.DbFor(src);
  Db& ddb = ctx.DbFor(dst);
  Entry* e = sdb.FindWrite(src);
  if (!e) return ctx.Error(OpStatus::kNoSuchKey);
  if (src == dst) {
    if (nx) return ctx.rb->Integer(0);
    return ctx.rb->Ok();
  }
  if (ddb.Find(dst)) {
    if (nx) return ctx.rb->Integer(0);
    ddb.Delete(dst);
  }
  Entry* moved = RekeyEntry(sdb.Detach(src), dst);
  ddb.Add(moved);
  NotifyKeyspaceEvent(ctx, kNotifyGeneric, "rename_from", src);
  NotifyKeyspaceEvent(ctx, kNotifyGeneric, "rename_to", dst);
  if (nx) ctx.rb->Integer(1);
  else ctx.rb->Ok();
}
void Rename(CommandContext& ctx) { RenameGeneric(ctx, false); }
void RenameNx(CommandContext& ctx) { RenameGeneric(ctx, true); }

bool ParseDbIndex(CommandContext& ctx, std::string_view arg, int* out) {
  int64_t v;
  if (!ParseInt64(arg, &v)) {
    ctx.Error(OpStatus::kNotAnInteger);
    return false;
  }
  if (v < 0 || v >= ctx.engine->config().databases.load()) {
    ctx.Error(OpStatus::kDbIndexOutOfRange);
    return false;
  }
  *out = static_cast<int>(v);
  return true;
}

void Copy(CommandContext& ctx) {
  std::string_view src = ctx.arg(1), dst = ctx.arg(2);
  bool replace = false;
  int dst_db = ctx.db_index;
  for (size_t j = 3; j < ctx.argc(); ++j) {
    if (EqualsIgnoreCase(ctx.arg(j), "replace")) {
      replace = true;
    } else if (EqualsIgnoreCase(ctx.arg(j), "db") && j + 1 < ctx.argc()) {
      if (!ParseDbIndex(ctx, ctx.arg(++j), &dst_db)) return;
    } else {
      return ctx.SyntaxError();
    }
  }
  if (dst_db == ctx.db_index && src == dst)
    return ctx.Error(OpStatus::kSameObject);
  Db& sdb = ctx.DbFor(src);
  Db& ddb = ctx.DbFor(dst, dst_db);
  Entry* e = sdb.FindRead(src);
  if (!e) return ctx.rb->Integer(0);
  if (ddb.Find(dst)) {
    if (!replace) return ctx.rb->Integer(0);
    ddb.Delete(dst);
  }
  e = sdb.Find(src);
  Entry* copy = CloneEntry(e, dst);
  copy->flags |= e->flags & Entry::kUnshared;
  copy->flags |= Entry::kUnshared;  // COPY duplicates the value object
  ddb.Add(copy);
  NotifyKeyspaceEvent(*ctx.engine, dst_db, kNotifyGeneric, "copy_to", dst);
  ctx.rb->Integer(1);
}

void Move(CommandContext& ctx) {
  int dst_db;
  int64_t v;
  if (!ParseInt64(ctx.arg(2), &v)) return ctx.Error(OpStatus::kNotAnInteger);
  if (v < 0 || v >= ctx.engine->config().databases.load()) return ctx.Error(OpStatus::kDbIndexOutOfRange);
  dst_db = static_cast<int>(v);
  if (dst_db == ctx.db_index) return ctx.Error(OpStatus::kSameObject);
  std::string_view key = ctx.arg(1);
  Db& sdb = ctx.DbFor(key);
  Db& ddb = ctx.DbFor(key, dst_db);
  if (!sdb.FindWrite(key)) return ctx.rb->Integer(0);
  if (ddb.Find(key)) return ctx.rb->Integer(0);
  Entry* e = sdb.Detach(key);
  ddb.Add(e);
  NotifyKeyspaceEvent(ctx, kNotifyGeneric, "move_from", key);
  NotifyKeyspaceEvent(*ctx.engine, dst_db, kNotifyGeneric, "move_to", key);
  ctx.rb->Integer(1);
}

// ---- Expiry ----

void ExpireGeneric(CommandContext& ctx, int64_t unit_ms, bool relative) {
  enum : unsigned { kNx = 1, kXx = 2, kGt = 4, kLt = 8 };
  unsigned flags = 0;
  for (size_t j = 3; j < ctx.argc(); ++j) {
    std::string_view o = ctx.arg(j);
    if (EqualsIgnoreCase(o, "nx")) flags |= kNx;
    else if (EqualsIgnoreCase(o, "xx")) flags |= kXx;
    else if (EqualsIgnoreCase(o, "gt")) flags |= kGt;
    else if (EqualsIgnoreCase(o, "lt")) flags |= kLt;
    else return ctx.Error(OpStatus::kUnsupportedOption, o);
  }
  if ((flags & kNx) && (flags & (kXx | kGt | kLt)))
    return ctx.Error(OpStatus::kExpireNxAndOthers);
  if ((flags & kGt) && (flags & kLt))
    return ctx.Error(OpStatus::kExpireGtAndLt);
  int64_t when;
  if (!ParseInt64(ctx.arg(2), &when)) return ctx.Error(OpStatus::kNotAnInteger);
  auto expire_error = [&] { ctx.Error(OpStatus::kInvalidExpireTime, ctx.spec->name); };
  if (unit_ms == 1000) {
    if (when > LLONG_MAX / 1000 || when < LLONG_MIN / 1000) return expire_error();
    when *= 1000;
  }
  int64_t base = relative ? CommandTimeMs() : 0;
  if (when > LLONG_MAX - base) return expire_error();
  when += base;
  std::string_view key = ctx.arg(1);
  Db& db = ctx.DbFor(key);
  Entry* e = db.FindWrite(key);
  if (!e) return ctx.rb->Integer(0);
  if (flags) {
    int64_t cur = e->has_expire() ? e->expire_ms() : -1;
    if ((flags & kNx) && cur != -1) return ctx.rb->Integer(0);
    if ((flags & kXx) && cur == -1) return ctx.rb->Integer(0);
    if ((flags & kGt) && (when <= cur || cur == -1)) return ctx.rb->Integer(0);
    if ((flags & kLt) && cur != -1 && when >= cur) return ctx.rb->Integer(0);
  }
  if (when <= CommandTimeMs()) {
    db.Delete(key);  // a time in the past deletes the key, as Redis
    NotifyKeyspaceEvent(ctx, kNotifyGeneric, "del", key);
    if (ctx.propagation) ctx.Propagate({"DEL", key});  // logged as Redis does
  } else {
    db.SetExpire(e, when);
    NotifyKeyspaceEvent(ctx, kNotifyGeneric, "expire", key);
    if (ctx.propagation) {  // an absolute time, so a replay expires it when it did
      std::string at = std::to_string(when);
      std::vector<std::string_view> argv{"PEXPIREAT", key, at};
      for (size_t j = 3; j < ctx.argc(); ++j) argv.push_back(ctx.arg(j));
      ctx.Propagate(argv);
    }
  }
  ctx.rb->Integer(1);
}
void Expire(CommandContext& ctx) { ExpireGeneric(ctx, 1000, true); }
void PExpire(CommandContext& ctx) { ExpireGeneric(ctx, 1, true); }
void ExpireAt(CommandContext& ctx) { ExpireGeneric(ctx, 1000, false); }
void PExpireAt(CommandContext& ctx) { ExpireGeneric(ctx, 1, false); }

// kind: 0 TTL, 1 PTTL, 2 EXPIRETIME, 3 PEXPIRETIME
void TtlGeneric(CommandContext& ctx, int kind) {
  Entry* e = ctx.DbFor(ctx.arg(1)).FindReadNoTouch(ctx.arg(1));  // as Redis: LOOKUP_NOTOUCH
  if (!e) return ctx.rb->Integer(-2);
  if (!e->has_expire()) return ctx.rb->Integer(-1);
  int64_t at = e->expire_ms();
  int64_t left = at - CommandTimeMs();
  if (left < 0) left = 0;
  switch (kind) {
    case 0: return ctx.rb->Integer((left + 500) / 1000);
    case 1: return ctx.rb->Integer(left);
    case 2: return ctx.rb->Integer(at / 1000);
    default: return ctx.rb->Integer(at);
  }
}
void Ttl(CommandContext& ctx) { TtlGeneric(ctx, 0); }
void PTtl(CommandContext& ctx) { TtlGeneric(ctx, 1); }
void ExpireTime(CommandContext& ctx) { TtlGeneric(ctx, 2); }
void PExpireTime(CommandContext& ctx) { TtlGeneric(ctx, 3); }

void Persist(CommandContext& ctx) {
  Db& db = ctx.DbFor(ctx.arg(1));
  Entry* e = db.FindWrite(ctx.arg(1));
  if (!e || !e->has_expire()) return ctx.rb->Integer(0);
  db.SetExpire(e, -1);
  NotifyKeyspaceEvent(ctx, kNotifyGeneric, "persist", ctx.arg(1));
  ctx.rb->Integer(1);
}

// ---- OBJECT ----

constexpr int32_t kSharedRefcount = 2147483647;

bool IsLfuPolicy(CommandContext&) { return IsLfu(CurrentPolicy()); }

void ObjectEncoding(CommandContext& ctx) {
  Entry* e = ctx.DbFor(ctx.arg(2)).Find(ctx.arg(2));
  if (!e) return ctx.rb->Null();
  ctx.rb->Bulk(ObjectEncodingName(e));
}

void ObjectRefcount(CommandContext& ctx) {
  Entry* e = ctx.DbFor(ctx.arg(2)).Find(ctx.arg(2));
  if (!e) return ctx.rb->Null();
  // Redis shares the integers 0..9999 (unless an LRU/LFU maxmemory policy is set).
  int64_t v;
  bool shared = !(e->flags & Entry::kUnshared) && e->type == ObjType::kString && static_cast<StrEncoding>(e->encoding) == StrEncoding::kInt &&
                ParseInt64(e->value(), &v) && v >= 0 && v < 10000 &&
                (ctx.engine->config().maxmemory.load() == 0 ||
                 ctx.engine->config().maxmemory_policy.load() == 0 ||
                 ctx.engine->config().maxmemory_policy.load() == 3 ||
                 ctx.engine->config().maxmemory_policy.load() == 6 ||
                 ctx.engine->config().maxmemory_policy.load() == 7);
  ctx.rb->Integer(shared ? kSharedRefcount : 1);
}

void ObjectIdletime(CommandContext& ctx) {
  Entry* e = ctx.DbFor(ctx.arg(2)).Find(ctx.arg(2));
  if (!e) return ctx.rb->Null();
  if (IsLfuPolicy(ctx))
    return ctx.Error(OpStatus::kLfuSelected);
  ctx.rb->Integer(IdleSeconds(e));
}

void ObjectFreq(CommandContext& ctx) {
  Entry* e = ctx.DbFor(ctx.arg(2)).Find(ctx.arg(2));
  if (!e) return ctx.rb->Null();
  if (!IsLfuPolicy(ctx))
    return ctx.Error(OpStatus::kLfuNotSelected);
  ctx.rb->Integer(LfuDecayed(e));
}

void HelpReply(CommandContext& ctx, std::string_view cmd, const std::vector<std::string>& lines) {
  ctx.rb->ArrayHeader(lines.size() + 3);
  ctx.rb->SimpleString(std::string(cmd) + " <subcommand> [<arg> [value] [opt] ...]. Subcommands are:");
  for (const auto& l : lines) ctx.rb->SimpleString(l);
  ctx.rb->SimpleString("HELP");
  ctx.rb->SimpleString("    Prints this help.");
}

void ObjectHelp(CommandContext& ctx) {
  HelpReply(ctx, "OBJECT",
            {"ENCODING <key>",
             "    Return the kind of internal representation used in order to store the value",
             "    associated with a <key>.",
             "FREQ <key>",
             "    Return the access frequency index of the <key>. The returned integer is",
             "    proportional to the logarithm of the recent access frequency of the key.",
             "IDLETIME <key>",
             "    Return the idle time of the <key>, that is the approximated number of",
             "    seconds elapsed since the last access to the key.",
             "REFCOUNT <key>",
             "    Return the number of references of the value associated with the specified",
             "    <key>."});
}

// ---- Database-wide (client's thread, gathered from every shard) ----

void DbSize(CommandContext& ctx) {
  int db = ctx.db_index;
  GatherAll<int64_t>(
      ctx, [db](Shard& s) { return static_cast<int64_t>(s.db(db).size()); },
      [](std::vector<int64_t>& v, resp::ReplyBuilder& rb) {
        int64_t n = 0;
        for (auto x : v) n += x;
        rb.Integer(n);
      });
}

void Keys(CommandContext& ctx) {
  int db = ctx.db_index;
  std::string pattern(ctx.arg(1));
  bool all = pattern == "*";
  GatherAll<std::vector<std::string>>(
      ctx,
      [db, pattern, all](Shard& s) {
        std::vector<std::string> out;
        int64_t now = CommandTimeMs();
        s.db(db).table().ForEach([&](Entry* e) {
          if (e->has_expire() && e->expire_ms() <= now) return;
          if (all || GlobMatch(pattern, e->key())) out.emplace_back(e->key());
        });
        return out;
      },
      [](std::vector<std::vector<std::string>>& parts, resp::ReplyBuilder& rb) {
        size_t n = 0;
        for (auto& p : parts) n += p.size();
        rb.ArrayHeader(n);
        for (auto& p : parts)
          for (auto& k : p) rb.Bulk(k);
      });
}

// SCAN's cursor: the low 8 bits name the shard, the rest is that shard's
// table cursor. Shards are visited in order; within one the table's
// reverse-binary cursor guarantees that keys present for the whole scan are
// returned at least once.
//
// One call goes on from shard to shard (one hop each, on the shard that owns
// the keys) until COUNT keys were looked at or the last shard is done, so a
// keyspace that fits COUNT comes back in one call with cursor 0, as in Redis.
constexpr int kShardBits = 8;

struct ScanState {
  // The request.
  int db = 0;
  std::string pattern;
  bool has_pattern = false;
  std::string type;
  bool has_type = false;
  int nshards = 1;
  // What is left of COUNT for this call: keys to look at (Redis's meaning of
  // COUNT) and empty buckets to step over (bounds walks on sparse tables).
  int64_t budget = 10;
  int64_t empty_steps = 100;
  // Where the next hop starts, and what the call has found so far.
  int shard = 0;
  uint64_t inner = 0;
  uint64_t next = 0;
  bool done = false;
  std::vector<std::string> keys;
  // The client to answer.
  std::shared_ptr<DeferredReply> reply;
};

// Runs on shard `s`: walks its table from st.inner and records where the
// call goes next (a cursor in this shard, the next shard, or the end).
void ScanOneShard(ScanState& st, Shard& s) {
  Db& d = s.db(st.db);
  Table& t = d.table();
  uint64_t c = st.inner;
  std::vector<std::string> seen;
  do {
    size_t before = seen.size();
    c = t.Scan(c, [&](Entry* e) { seen.emplace_back(e->key()); });
    if (seen.size() == before && --st.empty_steps <= 0) break;
    st.budget -= static_cast<int64_t>(seen.size() - before);
  } while (c != 0 && st.budget > 0);
  int64_t now = CommandTimeMs();
  for (auto& k : seen) {
    Entry* e = t.Find(k);
    if (!e) continue;
    if (e->has_expire() && e->expire_ms() <= now) {
      d.Find(k);  // lazily expire it now
      continue;
    }
    if (st.has_pattern && !GlobMatch(st.pattern, k)) continue;
    if (st.has_type) {
      static const char* kNames[] = {"string", "list", "set", "zset", "hash", "stream"};
      if (st.type != kNames[static_cast<int>(e->type)]) continue;
    }
    st.keys.push_back(std::move(k));
  }
  if (c != 0) {
    // COUNT (or the empty-bucket bound) ran out inside this shard.
    st.next = (c << kShardBits) | static_cast<uint64_t>(s.id());
    st.done = true;
  } else if (s.id() + 1 >= st.nshards) {
    st.next = 0;  // the last shard is done: the iteration is complete
    st.done = true;
  } else {
    st.shard = s.id() + 1;
    st.inner = 0;
    st.next = static_cast<uint64_t>(st.shard);
    st.done = st.budget <= 0 || st.empty_steps <= 0;
  }
}

// One hop: scans st.shard on its own thread; back on the client's thread,
// either answers or starts the hop to the next shard.
void ScanHop(ShardSet* set, std::shared_ptr<ScanState> st) {
  set->FanOut(
      {st->shard}, [st](Shard& s) { st->reply->Timed([&] { ScanOneShard(*st, s); }); },
      [set, st] {
        if (!st->done) return ScanHop(set, st);
        std::string out;
        resp::ReplyBuilder rb(&out, st->reply->resp());
        rb.ArrayHeader(2);
        rb.Bulk(std::to_string(st->next));
        rb.ArrayHeader(st->keys.size());
        for (auto& k : st->keys) rb.Bulk(k);
        st->reply->Finish(std::move(out));
      });
}

void Scan(CommandContext& ctx) {
  uint64_t cursor;
  if (!ParseUint64(ctx.arg(1), &cursor)) return ctx.Error(OpStatus::kInvalidCursor);
  auto st = std::make_shared<ScanState>();
  int64_t count = 10;
  for (size_t j = 2; j < ctx.argc(); j += 2) {
    std::string_view o = ctx.arg(j);
    if (j + 1 >= ctx.argc()) return ctx.SyntaxError();
    if (EqualsIgnoreCase(o, "match")) {
      st->pattern = ctx.arg(j + 1);
      st->has_pattern = st->pattern != "*";
    } else if (EqualsIgnoreCase(o, "count")) {
      if (!ParseInt64(ctx.arg(j + 1), &count)) return ctx.Error(OpStatus::kNotAnInteger);
      if (count < 1) return ctx.SyntaxError();
    } else if (EqualsIgnoreCase(o, "type")) {
      st->type = ctx.arg(j + 1);
      for (auto& c : st->type) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      st->has_type = true;
    } else {
      return ctx.SyntaxError();
    }
  }
  ShardSet& set = ctx.engine->shards();
  int shard = static_cast<int>(cursor & ((1u << kShardBits) - 1));
  if (shard >= set.size()) return ctx.Error(OpStatus::kInvalidCursor);
  st->db = ctx.db_index;
  st->nshards = set.size();
  st->budget = count;
  st->empty_steps = count > INT64_MAX / 10 ? INT64_MAX : count * 10;
  st->shard = shard;
  st->inner = cursor >> kShardBits;
  st->reply = std::make_shared<DeferredReply>(ctx);
  ScanHop(&set, std::move(st));
}

void RandomKey(CommandContext& ctx) {
  int db = ctx.db_index;
  struct Pick {
    size_t size = 0;
    std::string key;
    bool found = false;
  };
  GatherAll<Pick>(
      ctx,
      [db](Shard& s) {
        Pick p;
        Db& d = s.db(db);
        // Skip keys that are already expired (delete them on the way), as Redis.
        for (int tries = 0; tries < 100 && d.size() > 0; ++tries) {
          Entry* e = d.table().Random(s.rng());
          if (!e) break;
          std::string k(e->key());
          if (!d.Find(k)) continue;
          p.key = std::move(k);
          p.found = true;
          break;
        }
        p.size = d.size();
        return p;
      },
      [](std::vector<Pick>& picks, resp::ReplyBuilder& rb) {
        size_t total = 0;
        for (auto& p : picks) if (p.found) total += p.size;
        if (total == 0) return rb.Null();
        // Weight shards by size so every key is about equally likely.
        static thread_local std::mt19937_64 rng(42);
        size_t r = rng() % total;
        for (auto& p : picks) {
          if (!p.found) continue;
          if (r < p.size) return rb.Bulk(p.key);
          r -= p.size;
        }
        rb.Null();
      });
}

// [ASYNC|SYNC]; *lazy: whether the keys go to the lazy-free thread (ASYNC,
// or neither and lazyfree-lazy-user-flush).
bool ParseFlushMode(CommandContext& ctx, size_t pos, bool* lazy) {
  if (ctx.argc() > pos + 1) {
    ctx.SyntaxError();
    return false;
  }
  if (ctx.argc() == pos + 1 && !EqualsIgnoreCase(ctx.arg(pos), "async") && !EqualsIgnoreCase(ctx.arg(pos), "sync")) {
    ctx.SyntaxError();
    return false;
  }
  *lazy = ctx.argc() == pos + 1 ? EqualsIgnoreCase(ctx.arg(pos), "async")
                                : ctx.engine->config().lazyfree_lazy_user_flush.load() != 0;
  return true;
}

// After a flush: clients blocked on a key of `db` that want to hear of its
// deletion (XREADGROUP) are answered. Every shard is parked.
void WakeDeletedWaiters(Engine* engine, Shard& sh, int db) {
  BlockingRegistry& reg = engine->local(sh.id()).blocking;
  if (reg.empty()) return;
  reg.MarkReadyIn(db, sh.db(db));
  ServeBlockedClients(engine, &sh);
}

void FlushDb(CommandContext& ctx) {
  bool lazy;
  if (!ParseFlushMode(ctx, 1, &lazy)) return;
  int db = ctx.db_index;
  ShardSet* set = &ctx.engine->shards();
  Engine* engine = ctx.engine;
  ExclusiveAll(ctx, [set, engine, db, lazy](resp::ReplyBuilder& rb) {
    for (int i = 0; i < set->size(); ++i) {
      WatchRegistry& w = engine->local(i).watches;
      if (!w.empty()) w.TouchDb(db, set->shard(i).db(db), nullptr);
      set->shard(i).db(db).Clear(lazy);
      WakeDeletedWaiters(engine, set->shard(i), db);
    }
    if (engine->tracking().active()) InvalidateAll(*engine);  // (every shard is parked)
    rb.Ok();
  });
}

void FlushAll(CommandContext& ctx) {
  bool lazy;
  if (!ParseFlushMode(ctx, 1, &lazy)) return;
  ShardSet* set = &ctx.engine->shards();
  Engine* engine = ctx.engine;
  ExclusiveAll(ctx, [set, engine, lazy](resp::ReplyBuilder& rb) {
    for (int i = 0; i < set->size(); ++i) {
      WatchRegistry& w = engine->local(i).watches;
      auto& dbs = set->shard(i).dbs();
      for (size_t d = 0; d < dbs.size(); ++d) {
        if (!w.empty()) w.TouchDb(static_cast<int>(d), dbs[d], nullptr);
        dbs[d].Clear(lazy);
        WakeDeletedWaiters(engine, set->shard(i), static_cast<int>(d));
      }
    }
    if (engine->tracking().active()) InvalidateAll(*engine);  // (every shard is parked)
    rb.Ok();
  });
}

void SwapDb(CommandContext& ctx) {
  int64_t a, b;
  if (!ParseInt64(ctx.arg(1), &a)) return ctx.Error(OpStatus::kInvalidFirstDb);
  if (!ParseInt64(ctx.arg(2), &b)) return ctx.Error(OpStatus::kInvalidSecondDb);
  int64_t n = ctx.engine->config().databases.load();
  if (a < 0 || a >= n || b < 0 || b >= n) return ctx.Error(OpStatus::kDbIndexOutOfRange);
  ShardSet* set = &ctx.engine->shards();
  Engine* engine = ctx.engine;
  ExclusiveAll(ctx, [set, engine, a, b](resp::ReplyBuilder& rb) {
    for (int i = 0; i < set->size(); ++i) {
      Shard& sh = set->shard(i);
      WatchRegistry& w = engine->local(i).watches;
      if (!w.empty()) {
        w.TouchDb(static_cast<int>(a), sh.db(static_cast<int>(a)), &sh.db(static_cast<int>(b)));
        w.TouchDb(static_cast<int>(b), sh.db(static_cast<int>(b)), &sh.db(static_cast<int>(a)));
      }
      sh.db(static_cast<int>(a)).SwapContents(sh.db(static_cast<int>(b)));
      // S3-FIFO queues name keys by database: requeue this shard's keys.
      if (CurrentAccessMode() == AccessMode::kFifo) sh.evictor().Rebuild(sh.dbs());
      // Clients blocked on a key that the swap brought in are served (Redis's
      // scanDatabaseForReadyKeys); every shard is parked, so this is safe here.
      BlockingRegistry& reg = engine->local(i).blocking;
      if (!reg.empty()) {
        reg.MarkReadyIn(static_cast<int>(a), sh.db(static_cast<int>(a)));
        reg.MarkReadyIn(static_cast<int>(b), sh.db(static_cast<int>(b)));
        ServeBlockedClients(engine, &sh);
      }
    }
    rb.Ok();
  });
}

}  // namespace

void RegisterKeysFamily(CommandRegistry* r) {
  constexpr uint32_t W = kCmdWrite, R = kCmdReadOnly, F = kCmdFast;
  auto make = [](const char* name, int arity, uint32_t flags, int first, int last, int step, Handler h,
                 const char* acl, const char* summary) {
    return MakeCommand(name, arity, flags, first, last, step, h, acl, summary, "generic");
  };
  auto add = [&](const char* name, int arity, uint32_t flags, int first, int last, int step, Handler h,
                 const char* acl, const char* summary) {
    r->Add(make(name, arity, flags, first, last, step, h, acl, summary));
  };
  auto add_conn = [&](const char* name, int arity, uint32_t flags, Handler h, const char* acl,
                      const char* summary) {
    CommandSpec s = make(name, arity, flags, 0, 0, 0, h, acl, summary);
    s.route = Route::kConnection;
    r->Add(std::move(s));
  };
  {
    CommandSpec s = make("del", -2, W, 1, -1, 1, Del, "@keyspace @write @slow", "Deletes one or more keys.");
    s.fan_out = IntegerSumFanOut;
    r->Add(s);
    s.name = "unlink";
    s.handler = Unlink;
    s.flags = W | F;
    s.acl_categories = "@keyspace @write @fast";
    s.summary = "Asynchronously deletes one or more keys.";
    s.since = "4.0.0";
    r->Add(s);
    s = make("exists", -2, R | F, 1, -1, 1, Exists, "@keyspace @read @fast", "Determines whether one or more keys exist.");
    s.fan_out = IntegerSumFanOut;
    r->Add(s);
    s = make("touch", -2, R | F, 1, -1, 1, Touch, "@keyspace @read @fast",
             "Returns the number of existing keys out of those specified after updating the time they were last accessed.");
    s.fan_out = IntegerSumFanOut;
    r->Add(s);
  }
  add("type", 2, R | F, 1, 1, 1, Type, "@keyspace @read @fast", "Determines the type of value stored at a key.");
  add("rename", 3, W, 1, 2, 1, Rename, "@keyspace @write @slow", "Renames a key and overwrites the destination.");
  add("renamenx", 3, W | F, 1, 2, 1, RenameNx, "@keyspace @write @fast", "Renames a key only when the target key name doesn't exist.");
  add("copy", -3, W | kCmdDenyOom, 1, 2, 1, Copy, "@keyspace @write @slow", "Copies the value of a key to a new key.");
  add("move", 3, W | F, 1, 1, 1, Move, "@keyspace @write @fast", "Moves a key to another database.");
  add("expire", -3, W | F, 1, 1, 1, Expire, "@keyspace @write @fast", "Sets the expiration time of a key in seconds.");
  add("pexpire", -3, W | F, 1, 1, 1, PExpire, "@keyspace @write @fast", "Sets the expiration time of a key in milliseconds.");
  add("expireat", -3, W | F, 1, 1, 1, ExpireAt, "@keyspace @write @fast", "Sets the expiration time of a key to a Unix timestamp.");
  add("pexpireat", -3, W | F, 1, 1, 1, PExpireAt, "@keyspace @write @fast", "Sets the expiration time of a key to a Unix milliseconds timestamp.");
  add("ttl", 2, R | F, 1, 1, 1, Ttl, "@keyspace @read @fast", "Returns the expiration time in seconds of a key.");
  add("pttl", 2, R | F, 1, 1, 1, PTtl, "@keyspace @read @fast", "Returns the expiration time in milliseconds of a key.");
  add("expiretime", 2, R | F, 1, 1, 1, ExpireTime, "@keyspace @read @fast", "Returns the expiration time of a key as a Unix timestamp.");
  add("pexpiretime", 2, R | F, 1, 1, 1, PExpireTime, "@keyspace @read @fast", "Returns the expiration time of a key as a Unix milliseconds timestamp.");
  add("persist", 2, W | F, 1, 1, 1, Persist, "@keyspace @write @fast", "Removes the expiration time of a key.");
  {
    CommandSpec obj = make("object", -2, 0, 0, 0, 0, nullptr, "@slow", "A container for object introspection commands.");
    obj.route = Route::kConnection;
    obj.subcommands.push_back(make("object|encoding", 3, R, 2, 2, 1, ObjectEncoding, "@keyspace @read @slow", "Returns the internal encoding of a Redis object."));
    obj.subcommands.push_back(make("object|freq", 3, R, 2, 2, 1, ObjectFreq, "@keyspace @read @slow", "Returns the logarithmic access frequency counter of a Redis object."));
    obj.subcommands.push_back(make("object|idletime", 3, R, 2, 2, 1, ObjectIdletime, "@keyspace @read @slow", "Returns the time since the last access to a Redis object."));
    obj.subcommands.push_back(make("object|refcount", 3, R, 2, 2, 1, ObjectRefcount, "@keyspace @read @slow", "Returns the reference count of a value of a key."));
    CommandSpec help = make("object|help", 2, kCmdLoading | kCmdStale, 0, 0, 0, ObjectHelp, "@keyspace @slow", "Returns helpful text about the different subcommands.");
    help.route = Route::kConnection;
    obj.subcommands.push_back(help);
    r->Add(std::move(obj));
  }
  add_conn("dbsize", 1, R | F, DbSize, "@keyspace @read @fast", "Returns the number of keys in the database.");
  add_conn("keys", 2, R, Keys, "@keyspace @read @slow @dangerous", "Returns all key names that match a pattern.");
  add_conn("scan", -2, R, Scan, "@keyspace @read @slow", "Iterates over the key names in the database.");
  add_conn("randomkey", 1, R, RandomKey, "@keyspace @read @slow", "Returns a random key name from the database.");
  add_conn("flushdb", -1, W, FlushDb, "@keyspace @write @slow @dangerous", "Remove all keys from the current database.");
  add_conn("flushall", -1, W, FlushAll, "@keyspace @write @slow @dangerous", "Removes all keys from all databases.");
  add_conn("swapdb", 3, W | F, SwapDb, "@keyspace @write @fast @dangerous", "Swaps two Redis databases.");
}

}  // namespace larder
