// Hash commands. Values are HashValue objects (keyspace/hash_value.h).
#include <algorithm>
#include <climits>
#include <cmath>
#include <memory>
#include <random>
#include <vector>

#include "commands/families.h"
#include "engine/command.h"
#include "commands/lookup.h"
#include "common/strings.h"
#include "common/clock.h"
#include "common/glob.h"
#include "common/numbers.h"
#include "keyspace/hash_value.h"
#include "engine/engine.h"
#include "shard/shard.h"

namespace larder {

namespace {

HashLimits Limits(CommandContext& ctx) {
  Config& c = ctx.engine->config();
  return HashLimits{static_cast<size_t>(c.hash_max_listpack_entries.load(std::memory_order_relaxed)),
                    static_cast<size_t>(c.hash_max_listpack_value.load(std::memory_order_relaxed))};
}

// Finds the hash at `key` after dropping its expired fields (a hash whose
// fields all expired is deleted and reads as missing).
bool Lookup(CommandContext& ctx, std::string_view key, HashValue** out, bool write = false) {
  if (!LookupObject<HashValue, ObjType::kHash>(ctx, key, out, write)) return false;
  if (*out && (*out)->has_field_ttls() && (*out)->PurgeExpired(CommandTimeMs())) {
    // Lazy field expiry, announced as Redis 7.4 does.
    NotifyKeyspaceEvent(ctx, kNotifyHash, "hexpired", key);
    if ((*out)->size() == 0) {
      ctx.DbFor(key).Delete(key);
      NotifyKeyspaceEvent(ctx, kNotifyGeneric, "del", key);
      *out = nullptr;
    }
  }
  return true;
}
HashValue* LookupOrCreate(CommandContext& ctx, std::string_view key) {
  HashValue* h;
  if (!Lookup(ctx, key, &h, true)) return nullptr;
  return h ? h : LookupOrCreateObject<HashValue, ObjType::kHash>(ctx, key);
}

void HSet(CommandContext& ctx) {
  if (ctx.argc() % 2 != 0) return ctx.ArityError();
  HashValue* h = LookupOrCreate(ctx, ctx.arg(1));
  if (!h) return;
  HashLimits limits = Limits(ctx);
  int64_t created = 0;
  for (size_t i = 2; i < ctx.argc(); i += 2) created += h->Set(ctx.arg(i), ctx.arg(i + 1), limits);
  NotifyKeyspaceEvent(ctx, kNotifyHash, "hset", ctx.arg(1));
  if (ctx.spec->name == "hmset") return ctx.rb->Ok();
  ctx.rb->Integer(created);
}

void HSetNx(CommandContext& ctx) {
  HashValue* h = LookupOrCreate(ctx, ctx.arg(1));
  if (!h) return;
  if (h->Get(ctx.arg(2))) return ctx.rb->Integer(0);
  h->Set(ctx.arg(2), ctx.arg(3), Limits(ctx));
  NotifyKeyspaceEvent(ctx, kNotifyHash, "hset", ctx.arg(1));
  ctx.rb->Integer(1);
}

void HGet(CommandContext& ctx) {
  HashValue* h;
  if (!Lookup(ctx, ctx.arg(1), &h)) return;
  auto v = h ? h->Get(ctx.arg(2)) : std::nullopt;
  if (!v) return ctx.rb->Null();
  ctx.rb->Bulk(*v);
}

void HMGet(CommandContext& ctx) {
  HashValue* h;
  if (!Lookup(ctx, ctx.arg(1), &h)) return;
  ctx.rb->ArrayHeader(ctx.argc() - 2);
  for (size_t i = 2; i < ctx.argc(); ++i) {
    auto v = h ? h->Get(ctx.arg(i)) : std::nullopt;
    if (v) ctx.rb->Bulk(*v);
    else ctx.rb->Null();
  }
}

void HDel(CommandContext& ctx) {
  HashValue* h;
  if (!Lookup(ctx, ctx.arg(1), &h, true)) return;
  if (!h) return ctx.rb->Integer(0);
  int64_t n = 0;
  for (size_t i = 2; i < ctx.argc() && h->size() > 0; ++i) n += h->Delete(ctx.arg(i));
  if (n) NotifyKeyspaceEvent(ctx, kNotifyHash, "hdel", ctx.arg(1));
  DeleteIfEmpty(ctx, ctx.arg(1), h);
  ctx.rb->Integer(n);
}

void HLen(CommandContext& ctx) {
  HashValue* h;
  if (!Lookup(ctx, ctx.arg(1), &h)) return;
  ctx.rb->Integer(h ? static_cast<int64_t>(h->size()) : 0);
}

void HStrLen(CommandContext& ctx) {
  HashValue* h;
  if (!Lookup(ctx, ctx.arg(1), &h)) return;
  auto v = h ? h->Get(ctx.arg(2)) : std::nullopt;
  ctx.rb->Integer(v ? static_cast<int64_t>(v->size()) : 0);
}

void HExists(CommandContext& ctx) {
  HashValue* h;
  if (!Lookup(ctx, ctx.arg(1), &h)) return;
  ctx.rb->Integer(h && h->Get(ctx.arg(2)) ? 1 : 0);
}

// HGETALL, HKEYS, HVALS.
void HGetAllGeneric(CommandContext& ctx, bool fields, bool values) {
  HashValue* h;
  if (!Lookup(ctx, ctx.arg(1), &h)) return;
  size_t n = h ? h->size() : 0;
  if (fields && values) ctx.rb->MapHeader(n);
  else ctx.rb->ArrayHeader(n);
  if (!h) return;
  h->ForEach([&](std::string_view f, std::string_view v) {
    if (fields) ctx.rb->Bulk(f);
    if (values) ctx.rb->Bulk(v);
  });
}
void HGetAll(CommandContext& ctx) { HGetAllGeneric(ctx, true, true); }
void HKeys(CommandContext& ctx) { HGetAllGeneric(ctx, true, false); }
void HVals(CommandContext& ctx) { HGetAllGeneric(ctx, false, true); }

void HIncrBy(CommandContext& ctx) {
  int64_t incr;
  if (!ParseInt64(ctx.arg(3), &incr)) return ctx.Error(OpStatus::kNotAnInteger);
  HashValue* h = LookupOrCreate(ctx, ctx.arg(1));
  if (!h) return;
  int64_t value = 0;
  if (auto cur = h->Get(ctx.arg(2))) {
    if (!ParseInt64(*cur, &value)) {
      DeleteIfEmpty(ctx, ctx.arg(1), h);
      return ctx.Error(OpStatus::kHashValueNotInteger);
    }
  }
  if ((incr < 0 && value < 0 && incr < LLONG_MIN - value) || (incr > 0 && value > 0 && incr > LLONG_MAX - value)) {
    DeleteIfEmpty(ctx, ctx.arg(1), h);
    return ctx.Error(OpStatus::kOverflow);
  }
  value += incr;
  h->Set(ctx.arg(2), std::to_string(value), Limits(ctx), /*keep_ttl=*/true);
  NotifyKeyspaceEvent(ctx, kNotifyHash, "hincrby", ctx.arg(1));
  ctx.rb->Integer(value);
}

void HIncrByFloat(CommandContext& ctx) {
  long double incr, value = 0;
  if (!ParseLongDouble(ctx.arg(3), &incr)) return ctx.Error(OpStatus::kNotAFloat);
  if (std::isnan(incr) || std::isinf(incr)) return ctx.Error(OpStatus::kValueNanOrInfinity);
  HashValue* h = LookupOrCreate(ctx, ctx.arg(1));
  if (!h) return;
  if (auto cur = h->Get(ctx.arg(2))) {
    if (!ParseLongDouble(*cur, &value)) {
      DeleteIfEmpty(ctx, ctx.arg(1), h);
      return ctx.Error(OpStatus::kHashValueNotFloat);
    }
  }
  value += incr;
  if (std::isnan(value) || std::isinf(value)) {
    DeleteIfEmpty(ctx, ctx.arg(1), h);
    return ctx.Error(OpStatus::kNanOrInfinity);
  }
  std::string out = FormatLongDoubleHuman(value);
  h->Set(ctx.arg(2), out, Limits(ctx), /*keep_ttl=*/true);
  NotifyKeyspaceEvent(ctx, kNotifyHash, "hincrbyfloat", ctx.arg(1));
  if (ctx.propagation) ctx.Propagate({"HSET", ctx.arg(1), ctx.arg(2), out});  // the value it made, as Redis
  ctx.rb->Bulk(out);
}

void HRandField(CommandContext& ctx) {
  if (ctx.argc() == 2) {
    HashValue* h;
    if (!Lookup(ctx, ctx.arg(1), &h)) return;
    if (!h) return ctx.rb->Null();
    return ctx.rb->Bulk(h->RandomField(ctx.shard->rng()).first);
  }
  int64_t l;
  if (!ParseInt64(ctx.arg(2), &l)) return ctx.Error(OpStatus::kNotAnInteger);
  if (l < -LLONG_MAX)
    return ctx.Error(OpStatus::kCountOutOfRange);
  bool withvalues = false;
  if (ctx.argc() == 4 && EqualsIgnoreCase(ctx.arg(3), "withvalues")) withvalues = true;
  else if (ctx.argc() >= 4) return ctx.SyntaxError();
  if (withvalues && l < -(LLONG_MAX / 2)) return ctx.Error(OpStatus::kValueOutOfRange);
  HashValue* h;
  if (!Lookup(ctx, ctx.arg(1), &h)) return;
  if (!h || l == 0) return ctx.rb->EmptyArray();
  auto& rng = ctx.shard->rng();
  using Pair = std::pair<std::string_view, std::string_view>;
  auto picks = RandomPicks<Pair>(
      ctx, l, h->size(), rng, [&] { return h->RandomField(rng); },
      [&] {
        std::vector<Pair> all;
        all.reserve(h->size());
        h->ForEach([&](std::string_view f, std::string_view v) { all.emplace_back(f, v); });
        return all;
      },
      [](const Pair& p) { return p.first; });
  bool pairs = withvalues && ctx.rb->protocol() >= 3;
  ctx.rb->ArrayHeader(withvalues && !pairs ? picks.size() * 2 : picks.size());
  for (const auto& [f, v] : picks) {
    if (pairs) ctx.rb->ArrayHeader(2);
    ctx.rb->Bulk(f);
    if (withvalues) ctx.rb->Bulk(v);
  }
}

// HSCAN: a listpack answers in one call (cursor 0), as Redis's does; a
// table a bucket position at a time (ScanCollection).
void HScan(CommandContext& ctx) {
  CollectionScanArgs scan;
  if (!ParseCollectionScan(ctx, &scan)) return;
  HashValue* h;
  if (!Lookup(ctx, ctx.arg(1), &h)) return;
  std::vector<std::string_view> out;
  auto add = [&](std::string_view f, std::string_view v) {
    if (scan.has_pattern && !GlobMatch(scan.pattern, f)) return;
    out.push_back(f);
    out.push_back(v);
  };
  uint64_t next = 0;
  if (h && h->is_table()) {
    size_t found = 0;
    next = ScanCollection(scan, found, [&](uint64_t c) {
      return h->Scan(c, [&](std::string_view f, std::string_view v) {
        ++found;
        add(f, v);
      });
    });
  } else if (h) {
    h->ForEach(add);
  }
  ctx.rb->ArrayHeader(2);
  ctx.rb->Bulk(std::to_string(next));
  ctx.rb->ArrayHeader(out.size());
  for (auto s : out) ctx.rb->Bulk(s);
}

// ---- Field expiry (Redis 7.4) ----

// Checks "FIELDS numfields field..." at args[pos]; `numfields_error` is the
// error for a bad count (it differs between HEXPIRE and HTTL in Redis).
bool ParseFields(CommandContext& ctx, size_t pos, OpStatus numfields_error) {
  if (pos >= ctx.argc() || !EqualsIgnoreCase(ctx.arg(pos), "fields")) {
    ctx.Error(OpStatus::kFieldsMissing);
    return false;
  }
  int64_t n;
  if (pos + 1 >= ctx.argc() || !ParseInt64(ctx.arg(pos + 1), &n) || n < 1) {
    ctx.Error(numfields_error);
    return false;
  }
  if (static_cast<uint64_t>(n) != ctx.argc() - pos - 2) {
    ctx.Error(OpStatus::kNumFieldsMismatch);
    return false;
  }
  return true;
}

constexpr int64_t kMaxFieldExpireMs = (1LL << 48) - 1;  // as Redis (HFE_MAX_ABS_TIME_MSEC)

void HExpireGeneric(CommandContext& ctx, int64_t unit_ms, bool relative) {
  std::string_view key = ctx.arg(1);
  HashValue* h;
  if (!Lookup(ctx, key, &h, true)) return;
  int64_t when;
  if (!ParseInt64(ctx.arg(2), &when)) return ctx.Error(OpStatus::kNotAnInteger);
  if (when < 0) return ctx.Error(OpStatus::kExpireNegative);
  auto expire_error = [&] { ctx.Error(OpStatus::kInvalidExpireTime, ctx.spec->name); };
  if (unit_ms == 1000) {
    if (when > kMaxFieldExpireMs / 1000) return expire_error();
    when *= 1000;
  }
  int64_t base = relative ? CommandTimeMs() : 0;
  if (when > kMaxFieldExpireMs - base) return expire_error();
  when += base;
  enum { kNone, kNx, kXx, kGt, kLt } cond = kNone;
  size_t fields_at = 3;
  if (ctx.argc() > 3 && !EqualsIgnoreCase(ctx.arg(3), "fields")) {
    std::string_view c = ctx.arg(3);
    if (EqualsIgnoreCase(c, "nx")) cond = kNx;
    else if (EqualsIgnoreCase(c, "xx")) cond = kXx;
    else if (EqualsIgnoreCase(c, "gt")) cond = kGt;
    else if (EqualsIgnoreCase(c, "lt")) cond = kLt;
    else return ctx.Error(OpStatus::kFieldsMissing);
    fields_at = 4;
  }
  if (!ParseFields(ctx, fields_at, OpStatus::kNumFieldsNotPositive)) return;
  size_t first = fields_at + 2;
  size_t updated = 0, deleted = 0;
  ctx.rb->ArrayHeader(ctx.argc() - first);
  for (size_t i = first; i < ctx.argc(); ++i) {
    std::string_view f = ctx.arg(i);
    if (!h || !h->Get(f)) {
      ctx.rb->Integer(-2);
      continue;
    }
    auto cur = h->FieldExpire(f);
    if ((cond == kNx && cur) || (cond == kXx && !cur) || (cond == kGt && (!cur || when <= *cur)) ||
        (cond == kLt && cur && when >= *cur)) {
      ctx.rb->Integer(0);
      continue;
    }
    if (when <= CommandTimeMs()) {
      h->Delete(f);
      ++deleted;
      ctx.rb->Integer(2);
      continue;
    }
    h->SetFieldExpire(f, when);
    ctx.DbFor(key).NoteFieldTtl();
    ++updated;
    ctx.rb->Integer(1);
  }
  // Redis 7.4's names: fields given a TTL, fields deleted by a time past.
  if (updated) NotifyKeyspaceEvent(ctx, kNotifyHash, "hexpire", key);
  if (deleted) NotifyKeyspaceEvent(ctx, kNotifyHash, "hdel", key);
  if (h) DeleteIfEmpty(ctx, key, h);
}
void HExpire(CommandContext& ctx) { HExpireGeneric(ctx, 1000, true); }
void HPExpire(CommandContext& ctx) { HExpireGeneric(ctx, 1, true); }
void HExpireAt(CommandContext& ctx) { HExpireGeneric(ctx, 1000, false); }
void HPExpireAt(CommandContext& ctx) { HExpireGeneric(ctx, 1, false); }

// kind: 0 HTTL, 1 HPTTL, 2 HEXPIRETIME, 3 HPEXPIRETIME, 4 HPERSIST
void HTtlGeneric(CommandContext& ctx, int kind) {
  HashValue* h;
  if (!Lookup(ctx, ctx.arg(1), &h, kind == 4)) return;
  if (!ParseFields(ctx, 2, OpStatus::kNumFieldsNotPositiveInteger)) return;
  ctx.rb->ArrayHeader(ctx.argc() - 4);
  bool persisted = false;
  for (size_t i = 4; i < ctx.argc(); ++i) {
    std::string_view f = ctx.arg(i);
    if (!h || !h->Get(f)) {
      ctx.rb->Integer(-2);
      continue;
    }
    auto at = h->FieldExpire(f);
    if (!at) {
      ctx.rb->Integer(-1);
      continue;
    }
    int64_t left = std::max<int64_t>(0, *at - CommandTimeMs());
    switch (kind) {
      case 0: ctx.rb->Integer((left + 500) / 1000); break;
      case 1: ctx.rb->Integer(left); break;
      case 2: ctx.rb->Integer(*at / 1000); break;
      case 3: ctx.rb->Integer(*at); break;
      default:
        h->PersistField(f);
        persisted = true;
        ctx.rb->Integer(1);
    }
  }
  if (persisted) NotifyKeyspaceEvent(ctx, kNotifyHash, "hpersist", ctx.arg(1));
}
void HTtl(CommandContext& ctx) { HTtlGeneric(ctx, 0); }
void HPTtl(CommandContext& ctx) { HTtlGeneric(ctx, 1); }
void HExpireTime(CommandContext& ctx) { HTtlGeneric(ctx, 2); }
void HPExpireTime(CommandContext& ctx) { HTtlGeneric(ctx, 3); }
void HPersist(CommandContext& ctx) { HTtlGeneric(ctx, 4); }

}  // namespace

void RegisterHashFamily(CommandRegistry* r) {
  constexpr uint32_t W = kCmdWrite, R = kCmdReadOnly, M = kCmdDenyOom, F = kCmdFast;
  auto add = [r](const char* name, int arity, uint32_t flags, Handler h, const char* acl, const char* summary) {
    CommandSpec s = MakeCommand(name, arity, flags, 1, 1, 1, h, acl, summary, "hash");
    s.since = "2.0.0";
    r->Add(std::move(s));
  };
  add("hset", -4, W | M | F, HSet, "@write @hash @fast", "Creates or modifies the value of a field in a hash.");
  add("hmset", -4, W | M | F, HSet, "@write @hash @fast", "Sets the values of multiple fields.");
  add("hsetnx", 4, W | M | F, HSetNx, "@write @hash @fast", "Sets the value of a field in a hash only when the field doesn't exist.");
  add("hget", 3, R | F, HGet, "@read @hash @fast", "Returns the value of a field in a hash.");
  add("hmget", -3, R | F, HMGet, "@read @hash @fast", "Returns the values of all fields in a hash.");
  add("hdel", -3, W | F, HDel, "@write @hash @fast", "Deletes one or more fields and their values from a hash.");
  add("hlen", 2, R | F, HLen, "@read @hash @fast", "Returns the number of fields in a hash.");
  add("hstrlen", 3, R | F, HStrLen, "@read @hash @fast", "Returns the length of the value of a field.");
  add("hexists", 3, R | F, HExists, "@read @hash @fast", "Determines whether a field exists in a hash.");
  add("hgetall", 2, R, HGetAll, "@read @hash @slow", "Returns all fields and values in a hash.");
  add("hkeys", 2, R, HKeys, "@read @hash @slow", "Returns all fields in a hash.");
  add("hvals", 2, R, HVals, "@read @hash @slow", "Returns all values in a hash.");
  add("hincrby", 4, W | M | F, HIncrBy, "@write @hash @fast", "Increments the integer value of a field in a hash by a number.");
  add("hincrbyfloat", 4, W | M | F, HIncrByFloat, "@write @hash @fast", "Increments the floating point value of a field by a number.");
  add("hrandfield", -2, R, HRandField, "@read @hash @slow", "Returns one or more random fields from a hash.");
  add("hscan", -3, R, HScan, "@read @hash @slow", "Iterates over fields and values of a hash.");
  add("hexpire", -6, W | F, HExpire, "@write @hash @fast", "Set expiry for hash field using relative time to expire (seconds)");
  add("hpexpire", -6, W | F, HPExpire, "@write @hash @fast", "Set expiry for hash field using relative time to expire (milliseconds)");
  add("hexpireat", -6, W | F, HExpireAt, "@write @hash @fast", "Set expiry for hash field using an absolute Unix timestamp (seconds)");
  add("hpexpireat", -6, W | F, HPExpireAt, "@write @hash @fast", "Set expiry for hash field using an absolute Unix timestamp (milliseconds)");
  add("httl", -5, R | F, HTtl, "@read @hash @fast", "Returns the TTL in seconds of a hash field.");
  add("hpttl", -5, R | F, HPTtl, "@read @hash @fast", "Returns the TTL in milliseconds of a hash field.");
  add("hexpiretime", -5, R | F, HExpireTime, "@read @hash @fast", "Returns the expiration time of a hash field as a Unix timestamp, in seconds.");
  add("hpexpiretime", -5, R | F, HPExpireTime, "@read @hash @fast", "Returns the expiration time of a hash field as a Unix timestamp, in msec.");
  add("hpersist", -5, W | F, HPersist, "@write @hash @fast", "Removes the expiration time for each specified field");
}

}  // namespace larder
