// Hash commands. Values are HashValue objects (keyspace/hash_value.h).
#include <climits>
#include <cmath>
#include <memory>
#include <random>
#include <vector>

#include "commands/command.h"
#include "commands/lookup.h"
#include "common/strings.h"
#include "common/glob.h"
#include "common/numbers.h"
#include "keyspace/hash_value.h"
#include "server/server.h"
#include "shard/shard.h"

namespace larder {

namespace {

HashLimits Limits(CommandContext& ctx) {
  Config& c = ctx.server->config();
  return HashLimits{static_cast<size_t>(c.hash_max_listpack_entries.load(std::memory_order_relaxed)),
                    static_cast<size_t>(c.hash_max_listpack_value.load(std::memory_order_relaxed))};
}

bool Lookup(CommandContext& ctx, std::string_view key, HashValue** out, bool write = false) {
  return LookupObject<HashValue, ObjType::kHash>(ctx, key, out, write);
}
HashValue* LookupOrCreate(CommandContext& ctx, std::string_view key) {
  return LookupOrCreateObject<HashValue, ObjType::kHash>(ctx, key);
}

void HSet(CommandContext& ctx) {
  if (ctx.argc() % 2 != 0) return ctx.ArityError();
  HashValue* h = LookupOrCreate(ctx, ctx.arg(1));
  if (!h) return;
  HashLimits limits = Limits(ctx);
  int64_t created = 0;
  for (size_t i = 2; i < ctx.argc(); i += 2) created += h->Set(ctx.arg(i), ctx.arg(i + 1), limits);
  if (ctx.spec->name == "hmset") return ctx.rb->Ok();
  ctx.rb->Integer(created);
}

void HSetNx(CommandContext& ctx) {
  HashValue* h = LookupOrCreate(ctx, ctx.arg(1));
  if (!h) return;
  if (h->Get(ctx.arg(2))) return ctx.rb->Integer(0);
  h->Set(ctx.arg(2), ctx.arg(3), Limits(ctx));
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
      return ctx.Error("ERR hash value is not an integer");
    }
  }
  if ((incr < 0 && value < 0 && incr < LLONG_MIN - value) || (incr > 0 && value > 0 && incr > LLONG_MAX - value)) {
    DeleteIfEmpty(ctx, ctx.arg(1), h);
    return ctx.Error(OpStatus::kOverflow);
  }
  value += incr;
  h->Set(ctx.arg(2), std::to_string(value), Limits(ctx));
  ctx.rb->Integer(value);
}

void HIncrByFloat(CommandContext& ctx) {
  long double incr, value = 0;
  if (!ParseLongDouble(ctx.arg(3), &incr)) return ctx.Error(OpStatus::kNotAFloat);
  if (std::isnan(incr) || std::isinf(incr)) return ctx.Error("ERR value is NaN or Infinity");
  HashValue* h = LookupOrCreate(ctx, ctx.arg(1));
  if (!h) return;
  if (auto cur = h->Get(ctx.arg(2))) {
    if (!ParseLongDouble(*cur, &value)) {
      DeleteIfEmpty(ctx, ctx.arg(1), h);
      return ctx.Error("ERR hash value is not a float");
    }
  }
  value += incr;
  if (std::isnan(value) || std::isinf(value)) {
    DeleteIfEmpty(ctx, ctx.arg(1), h);
    return ctx.Error(OpStatus::kNanOrInfinity);
  }
  std::string out = FormatLongDoubleHuman(value);
  h->Set(ctx.arg(2), out, Limits(ctx));
  ctx.rb->Bulk(out);
}

void HRandField(CommandContext& ctx) {
  if (ctx.argc() == 2) {
    HashValue* h;
    if (!Lookup(ctx, ctx.arg(1), &h)) return;
    if (!h) return ctx.rb->Null();
    size_t pick = ctx.shard->rng()() % h->size(), i = 0;
    std::string_view chosen;
    h->ForEach([&](std::string_view f, std::string_view) {
      if (i++ == pick) chosen = f;
    });
    return ctx.rb->Bulk(chosen);
  }
  int64_t l;
  if (!ParseInt64(ctx.arg(2), &l)) return ctx.Error(OpStatus::kNotAnInteger);
  if (l < -LLONG_MAX)
    return ctx.Error("ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807");
  bool withvalues = false;
  if (ctx.argc() == 4 && EqualsIgnoreCase(ctx.arg(3), "withvalues")) withvalues = true;
  else if (ctx.argc() >= 4) return ctx.SyntaxError();
  if (withvalues && l < -(LLONG_MAX / 2)) return ctx.Error("ERR value is out of range");
  HashValue* h;
  if (!Lookup(ctx, ctx.arg(1), &h)) return;
  if (!h || l == 0) return ctx.rb->EmptyArray();
  std::vector<std::pair<std::string_view, std::string_view>> all;
  all.reserve(h->size());
  h->ForEach([&](std::string_view f, std::string_view v) { all.emplace_back(f, v); });
  auto& rng = ctx.shard->rng();
  std::vector<size_t> picks;
  if (l < 0) {
    for (uint64_t i = 0; i < static_cast<uint64_t>(-l); ++i) picks.push_back(rng() % all.size());
  } else if (static_cast<uint64_t>(l) >= all.size()) {
    for (size_t i = 0; i < all.size(); ++i) picks.push_back(i);
  } else {
    std::vector<size_t> idx(all.size());
    for (size_t i = 0; i < idx.size(); ++i) idx[i] = i;
    for (size_t i = 0; i < static_cast<size_t>(l); ++i) std::swap(idx[i], idx[i + rng() % (idx.size() - i)]);
    picks.assign(idx.begin(), idx.begin() + l);
  }
  bool pairs = withvalues && ctx.rb->protocol() >= 3;
  ctx.rb->ArrayHeader(withvalues && !pairs ? picks.size() * 2 : picks.size());
  for (size_t i : picks) {
    if (pairs) ctx.rb->ArrayHeader(2);
    ctx.rb->Bulk(all[i].first);
    if (withvalues) ctx.rb->Bulk(all[i].second);
  }
}

// HSCAN returns the whole hash in one call (cursor 0), as Redis does for small
// hashes; COUNT is a hint that Redis also ignores there.
void HScan(CommandContext& ctx) {
  CollectionScanArgs scan;
  if (!ParseCollectionScan(ctx, &scan)) return;
  std::string_view pattern = scan.pattern;
  bool has_pattern = scan.has_pattern;
  HashValue* h;
  if (!Lookup(ctx, ctx.arg(1), &h)) return;
  std::vector<std::string_view> out;
  if (h) {
    h->ForEach([&](std::string_view f, std::string_view v) {
      if (has_pattern && !GlobMatch(pattern, f)) return;
      out.push_back(f);
      out.push_back(v);
    });
  }
  ctx.rb->ArrayHeader(2);
  ctx.rb->Bulk("0");
  ctx.rb->ArrayHeader(out.size());
  for (auto s : out) ctx.rb->Bulk(s);
}

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
}

}  // namespace larder
