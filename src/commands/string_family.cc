// String commands: GET, SET and its variants, counters, ranges, LCS.
#include "commands/string_family.h"

#include <cmath>
#include <climits>
#include <cstring>
#include <memory>
#include <vector>

#include "commands/families.h"
#include "engine/command.h"
#include "engine/multi_shard.h"
#include "common/strings.h"
#include "common/clock.h"
#include "common/numbers.h"
#include "engine/client.h"
#include "engine/engine.h"
#include "engine/notify.h"
#include "shard/shard.h"

namespace larder {

namespace {

void ExpireTimeError(CommandContext& ctx) {
  ctx.Error(OpStatus::kInvalidExpireTime, ctx.spec->name);
}

// Checks a string's future length against proto-max-bulk-len.
bool CheckStringLength(CommandContext& ctx, uint64_t len) {
  if (len > static_cast<uint64_t>(ctx.engine->config().proto_max_bulk_len.load())) {
    ctx.Error(OpStatus::kStringTooLong);
    return false;
  }
  return true;
}

}  // namespace

bool ParseExpireArg(CommandContext& ctx, std::string_view arg, int64_t unit_ms, bool relative,
                    int64_t* out_ms) {
  int64_t v;
  if (!ParseInt64(arg, &v)) {
    ctx.Error(OpStatus::kNotAnInteger);
    return false;
  }
  if (v <= 0 || (unit_ms == 1000 && v > LLONG_MAX / 1000)) {
    ExpireTimeError(ctx);
    return false;
  }
  v *= unit_ms;
  if (relative) {
    int64_t now = CommandTimeMs();
    if (v > LLONG_MAX - now) {
      ExpireTimeError(ctx);
      return false;
    }
    v += now;
  }
  *out_ms = v;
  return true;
}

namespace {

// Reads a string key for a read command: null entry if missing, WRONGTYPE
// reply (and false) if the key holds another type.
bool LookupString(CommandContext& ctx, std::string_view key, Entry** out, bool write = false) {
  Db& db = ctx.DbFor(key);
  Entry* e = write ? db.FindWrite(key) : db.FindRead(key);
  if (e && e->type != ObjType::kString) {
    ctx.Error(OpStatus::kWrongType);
    return false;
  }
  *out = e;
  return true;
}

void Get(CommandContext& ctx) {
  Entry* e;
  if (!LookupString(ctx, ctx.arg(1), &e)) return;
  if (!e) return ctx.rb->Null();
  ctx.rb->Bulk(e->value());
}

// Options shared by SET and GETEX.
struct SetOptions {
  bool nx = false, xx = false, get = false, keepttl = false, persist = false;
  int64_t expire_ms = Db::kNoExpire;
  // The expire argument as given; ParseSetOptions validates it unless told
  // not to (GETEX checks the key before the time, as Redis does).
  std::string_view expire_arg;
  int64_t unit_ms = 0;
  bool relative = false;
};

// Parses SET (is_set) or GETEX options starting at args[first].
bool ParseSetOptions(CommandContext& ctx, size_t first, bool is_set, SetOptions* o,
                     bool validate_expire = true) {
  enum { kNone, kEx, kPx, kExat, kPxat } unit = kNone;
  std::string_view expire_arg;
  for (size_t j = first; j < ctx.argc(); ++j) {
    std::string_view opt = ctx.arg(j);
    bool has_next = j + 1 < ctx.argc();
    bool no_expire = unit == kNone && !o->keepttl && !o->persist;
    if (is_set && EqualsIgnoreCase(opt, "nx") && !o->xx) {
      o->nx = true;
    } else if (is_set && EqualsIgnoreCase(opt, "xx") && !o->nx) {
      o->xx = true;
    } else if (is_set && EqualsIgnoreCase(opt, "get")) {
      o->get = true;
    } else if (is_set && EqualsIgnoreCase(opt, "keepttl") && no_expire) {
      o->keepttl = true;
    } else if (!is_set && EqualsIgnoreCase(opt, "persist") && no_expire) {
      o->persist = true;
    } else if (EqualsIgnoreCase(opt, "ex") && no_expire && has_next) {
      unit = kEx;
      expire_arg = ctx.arg(++j);
    } else if (EqualsIgnoreCase(opt, "px") && no_expire && has_next) {
      unit = kPx;
      expire_arg = ctx.arg(++j);
    } else if (EqualsIgnoreCase(opt, "exat") && no_expire && has_next) {
      unit = kExat;
      expire_arg = ctx.arg(++j);
    } else if (EqualsIgnoreCase(opt, "pxat") && no_expire && has_next) {
      unit = kPxat;
      expire_arg = ctx.arg(++j);
    } else {
      ctx.SyntaxError();
      return false;
    }
  }
  if (unit != kNone) {
    o->expire_arg = expire_arg;
    o->unit_ms = (unit == kEx || unit == kExat) ? 1000 : 1;
    o->relative = unit == kEx || unit == kPx;
    if (validate_expire && !ParseExpireArg(ctx, expire_arg, o->unit_ms, o->relative, &o->expire_ms))
      return false;
  }
  return true;
}

// SET with a TTL, SETEX, PSETEX are logged as SET key value PXAT <ms>
// (Redis 7.0's form: an absolute time, so a replay expires it when it did).
void PropagateSetPxat(CommandContext& ctx, std::string_view key, std::string_view value, int64_t at_ms) {
  if (!ctx.propagation) return;
  std::string at = std::to_string(at_ms);
  ctx.Propagate({"SET", key, value, "PXAT", at});
}

void Set(CommandContext& ctx) {
  SetOptions o;
  if (!ParseSetOptions(ctx, 3, true, &o)) return;
  std::string_view key = ctx.arg(1), value = ctx.arg(2);
  Db& db = ctx.DbFor(key);
  Entry* e = db.FindWrite(key);
  if (o.get) {
    if (e && e->type != ObjType::kString) return ctx.Error(OpStatus::kWrongType);
    if (e) ctx.rb->Bulk(e->value());
    else ctx.rb->Null();
  }
  if ((o.nx && e) || (o.xx && !e)) {
    if (!o.get) ctx.rb->Null();
    ctx.PropagateNothing();
    return;
  }
  int64_t ttl = o.keepttl ? Db::kKeepTtl : o.expire_ms;
  db.SetString(key, value, ttl, EncodingForValue(value));
  NotifyKeyspaceEvent(ctx, kNotifyString, "set", key);
  if (o.expire_ms != Db::kNoExpire) {
    NotifyKeyspaceEvent(ctx, kNotifyGeneric, "expire", key);
    PropagateSetPxat(ctx, key, value, o.expire_ms);
  }
  if (!o.get) ctx.rb->Ok();
}

void SetNx(CommandContext& ctx) {
  Db& db = ctx.DbFor(ctx.arg(1));
  if (db.FindWrite(ctx.arg(1))) return ctx.rb->Integer(0);
  db.SetString(ctx.arg(1), ctx.arg(2), Db::kNoExpire, EncodingForValue(ctx.arg(2)));
  NotifyKeyspaceEvent(ctx, kNotifyString, "set", ctx.arg(1));
  ctx.rb->Integer(1);
}

void SetExGeneric(CommandContext& ctx, int64_t unit_ms) {
  int64_t ms;
  if (!ParseExpireArg(ctx, ctx.arg(2), unit_ms, true, &ms)) return;
  ctx.DbFor(ctx.arg(1)).SetString(ctx.arg(1), ctx.arg(3), ms, EncodingForValue(ctx.arg(3)));
  NotifyKeyspaceEvent(ctx, kNotifyString, "set", ctx.arg(1));
  NotifyKeyspaceEvent(ctx, kNotifyGeneric, "expire", ctx.arg(1));
  PropagateSetPxat(ctx, ctx.arg(1), ctx.arg(3), ms);
  ctx.rb->Ok();
}
void SetEx(CommandContext& ctx) { SetExGeneric(ctx, 1000); }
void PSetEx(CommandContext& ctx) { SetExGeneric(ctx, 1); }

void GetSet(CommandContext& ctx) {
  Entry* e;
  if (!LookupString(ctx, ctx.arg(1), &e, true)) return;
  if (e) ctx.rb->Bulk(e->value());
  else ctx.rb->Null();
  ctx.DbFor(ctx.arg(1)).SetString(ctx.arg(1), ctx.arg(2), Db::kNoExpire, EncodingForValue(ctx.arg(2)));
  NotifyKeyspaceEvent(ctx, kNotifyString, "set", ctx.arg(1));
  if (ctx.propagation) ctx.Propagate({"SET", ctx.arg(1), ctx.arg(2)});  // GETSET is logged as SET
}

void GetDel(CommandContext& ctx) {
  Entry* e;
  if (!LookupString(ctx, ctx.arg(1), &e)) return;
  if (!e) return ctx.rb->Null();
  ctx.rb->Bulk(e->value());
  ctx.DbFor(ctx.arg(1)).Delete(ctx.arg(1));
  NotifyKeyspaceEvent(ctx, kNotifyGeneric, "del", ctx.arg(1));
}

void GetEx(CommandContext& ctx) {
  SetOptions o;
  if (!ParseSetOptions(ctx, 2, false, &o, false)) return;
  std::string_view key = ctx.arg(1);
  Entry* e;
  if (!LookupString(ctx, key, &e)) return;
  if (!e) return ctx.rb->Null();
  if (!o.expire_arg.empty() || o.unit_ms) {
    if (!ParseExpireArg(ctx, o.expire_arg, o.unit_ms, o.relative, &o.expire_ms)) return;
  }
  ctx.rb->Bulk(e->value());
  Db& db = ctx.DbFor(key);
  // Logged as PEXPIREAT, DEL or PERSIST (never as GETEX), as Redis 7.0.
  ctx.PropagateNothing();
  if (o.expire_ms != Db::kNoExpire) {
    if (o.expire_ms <= CommandTimeMs()) {
      db.Delete(key);  // a time in the past deletes the key, as Redis
      NotifyKeyspaceEvent(ctx, kNotifyGeneric, "del", key);
      if (ctx.propagation) ctx.Propagate({"DEL", key});
    } else {
      db.SetExpire(e, o.expire_ms);
      NotifyKeyspaceEvent(ctx, kNotifyGeneric, "expire", key);
      if (ctx.propagation) {
        std::string at = std::to_string(o.expire_ms);
        ctx.Propagate({"PEXPIREAT", key, at});
      }
    }
  } else if (o.persist && e->has_expire()) {
    db.SetExpire(e, -1);
    NotifyKeyspaceEvent(ctx, kNotifyGeneric, "persist", key);
    if (ctx.propagation) ctx.Propagate({"PERSIST", key});
  }
}

void MGet(CommandContext& ctx) {
  ctx.rb->ArrayHeader(ctx.argc() - 1);
  for (size_t i = 1; i < ctx.argc(); ++i) {
    Entry* e = ctx.DbFor(ctx.arg(i)).FindRead(ctx.arg(i));
    if (e && e->type == ObjType::kString) ctx.rb->Bulk(e->value());
    else ctx.rb->Null();
  }
}

// MGET over several shards: each shard reads its keys, the client's thread
// assembles the values in request order.
void MGetFanOut(CommandContext& ctx) {
  struct State {
    std::vector<std::string> keys;
    std::vector<std::unique_ptr<std::string>> values;
    int db;
  };
  auto st = std::make_shared<State>();
  st->db = ctx.db_index;
  ShardSet& set = ctx.engine->shards();
  std::vector<std::vector<size_t>> per_shard(static_cast<size_t>(set.size()));
  for (size_t i = 1; i < ctx.argc(); ++i) {
    st->keys.emplace_back(ctx.arg(i));
    per_shard[static_cast<size_t>(set.ShardOf(ctx.arg(i)))].push_back(i - 1);
  }
  st->values.resize(st->keys.size());
  std::vector<int> ids;
  for (size_t s = 0; s < per_shard.size(); ++s)
    if (!per_shard[s].empty()) ids.push_back(static_cast<int>(s));
  auto parts = std::make_shared<std::vector<std::vector<size_t>>>(std::move(per_shard));
  GatherFrom(
      ctx, ids,
      [st, parts](Shard& shard) {
        Db& db = shard.db(st->db);
        for (size_t idx : (*parts)[static_cast<size_t>(shard.id())]) {
          Entry* e = db.FindRead(st->keys[idx]);
          if (e && e->type == ObjType::kString) st->values[idx] = std::make_unique<std::string>(e->value());
        }
      },
      [st](resp::ReplyBuilder& rb) {
        rb.ArrayHeader(st->values.size());
        for (auto& v : st->values) {
          if (v) rb.Bulk(*v);
          else rb.Null();
        }
      });
}

void MSet(CommandContext& ctx) {
  if (ctx.argc() % 2 == 0) return ctx.ArityError();
  for (size_t i = 1; i < ctx.argc(); i += 2) {
    ctx.DbFor(ctx.arg(i)).SetString(ctx.arg(i), ctx.arg(i + 1), Db::kNoExpire, EncodingForValue(ctx.arg(i + 1)));
    NotifyKeyspaceEvent(ctx, kNotifyString, "set", ctx.arg(i));
  }
  ctx.rb->Ok();
}

void MSetNx(CommandContext& ctx) {
  if (ctx.argc() % 2 == 0) return ctx.ArityError();
  for (size_t i = 1; i < ctx.argc(); i += 2)
    if (ctx.DbFor(ctx.arg(i)).FindWrite(ctx.arg(i))) return ctx.rb->Integer(0);
  for (size_t i = 1; i < ctx.argc(); i += 2) {
    ctx.DbFor(ctx.arg(i)).SetString(ctx.arg(i), ctx.arg(i + 1), Db::kNoExpire, EncodingForValue(ctx.arg(i + 1)));
    NotifyKeyspaceEvent(ctx, kNotifyString, "set", ctx.arg(i));
  }
  ctx.rb->Integer(1);
}

void IncrDecr(CommandContext& ctx, int64_t incr) {
  std::string_view key = ctx.arg(1);
  Db& db = ctx.DbFor(key);
  Entry* e = db.FindWrite(key);
  int64_t value = 0;
  if (e) {
    if (e->type != ObjType::kString) return ctx.Error(OpStatus::kWrongType);
    if (!ParseInt64(e->value(), &value)) return ctx.Error(OpStatus::kNotAnInteger);
  }
  if ((incr < 0 && value < 0 && incr < LLONG_MIN - value) ||
      (incr > 0 && value > 0 && incr > LLONG_MAX - value))
    return ctx.Error(OpStatus::kOverflow);
  value += incr;
  char buf[24];
  int n = snprintf(buf, sizeof(buf), "%lld", static_cast<long long>(value));
  db.SetString(key, std::string_view(buf, static_cast<size_t>(n)), Db::kKeepTtl, StrEncoding::kInt);
  NotifyKeyspaceEvent(ctx, kNotifyString, "incrby", key);
  ctx.rb->Integer(value);
}

void Incr(CommandContext& ctx) { IncrDecr(ctx, 1); }
void Decr(CommandContext& ctx) { IncrDecr(ctx, -1); }
void IncrBy(CommandContext& ctx) {
  int64_t v;
  if (!ParseInt64(ctx.arg(2), &v)) return ctx.Error(OpStatus::kNotAnInteger);
  IncrDecr(ctx, v);
}
void DecrBy(CommandContext& ctx) {
  int64_t v;
  if (!ParseInt64(ctx.arg(2), &v)) return ctx.Error(OpStatus::kNotAnInteger);
  if (v == LLONG_MIN) return ctx.Error(OpStatus::kDecrementOverflow);
  IncrDecr(ctx, -v);
}

void IncrByFloat(CommandContext& ctx) {
  std::string_view key = ctx.arg(1);
  Db& db = ctx.DbFor(key);
  Entry* e = db.FindWrite(key);
  long double value = 0, incr;
  if (e) {
    if (e->type != ObjType::kString) return ctx.Error(OpStatus::kWrongType);
    if (!ParseLongDouble(e->value(), &value)) return ctx.Error(OpStatus::kNotAFloat);
  }
  if (!ParseLongDouble(ctx.arg(2), &incr)) return ctx.Error(OpStatus::kNotAFloat);
  value += incr;
  if (std::isnan(value) || std::isinf(value)) return ctx.Error(OpStatus::kNanOrInfinity);
  std::string out = FormatLongDoubleHuman(value);
  db.SetString(key, out, Db::kKeepTtl, out.size() <= 44 ? StrEncoding::kEmbstr : StrEncoding::kRaw);
  NotifyKeyspaceEvent(ctx, kNotifyString, "incrbyfloat", key);
  // Logged as the value it made (float formatting may differ where replayed).
  if (ctx.propagation) ctx.Propagate({"SET", key, out, "KEEPTTL"});
  ctx.rb->Bulk(out);
}

void Append(CommandContext& ctx) {
  std::string_view key = ctx.arg(1), add = ctx.arg(2);
  Db& db = ctx.DbFor(key);
  Entry* e = db.FindWrite(key);
  if (!e) {
    db.SetString(key, add, Db::kNoExpire, EncodingForValue(add));
    NotifyKeyspaceEvent(ctx, kNotifyString, "append", key);
    return ctx.rb->Integer(static_cast<int64_t>(add.size()));
  }
  if (e->type != ObjType::kString) return ctx.Error(OpStatus::kWrongType);
  size_t old = e->val_len;
  if (!CheckStringLength(ctx, old + add.size())) return;
  e = db.ResizeValue(e, old + add.size(), true);
  memcpy(e->mutable_value() + old, add.data(), add.size());
  e->encoding = static_cast<uint8_t>(StrEncoding::kRaw);
  NotifyKeyspaceEvent(ctx, kNotifyString, "append", key);
  ctx.rb->Integer(static_cast<int64_t>(e->val_len));
}

void StrLen(CommandContext& ctx) {
  Entry* e;
  if (!LookupString(ctx, ctx.arg(1), &e)) return;
  ctx.rb->Integer(e ? e->val_len : 0);
}

void GetRange(CommandContext& ctx) {
  int64_t start, end;
  if (!ParseInt64(ctx.arg(2), &start) || !ParseInt64(ctx.arg(3), &end))
    return ctx.Error(OpStatus::kNotAnInteger);
  Entry* e;
  if (!LookupString(ctx, ctx.arg(1), &e)) return;
  if (!e) return ctx.rb->Bulk("");
  auto len = static_cast<int64_t>(e->val_len);
  if (start < 0 && end < 0 && start > end) return ctx.rb->Bulk("");
  if (start < 0) start += len;
  if (end < 0) end += len;
  if (start < 0) start = 0;
  if (end < 0) end = 0;
  if (end >= len) end = len - 1;
  if (start > end || len == 0) return ctx.rb->Bulk("");
  ctx.rb->Bulk(e->value().substr(static_cast<size_t>(start), static_cast<size_t>(end - start + 1)));
}

void SetRange(CommandContext& ctx) {
  int64_t offset;
  if (!ParseInt64(ctx.arg(2), &offset)) return ctx.Error(OpStatus::kNotAnInteger);
  if (offset < 0) return ctx.Error(OpStatus::kOffsetOutOfRange);
  std::string_view key = ctx.arg(1), value = ctx.arg(3);
  Db& db = ctx.DbFor(key);
  Entry* e = db.FindWrite(key);
  if (!e) {
    if (value.empty()) return ctx.rb->Integer(0);
    if (!CheckStringLength(ctx, static_cast<uint64_t>(offset) + value.size())) return;
    // Made at its size in place: the value is never built twice (Redis's
    // peak at proto-max-bulk-len is the value itself).
    size_t len = static_cast<size_t>(offset) + value.size();
    e = db.ResizeValue(db.SetString(key, "", Db::kNoExpire, StrEncoding::kRaw), len, false);
    memset(e->mutable_value(), 0, static_cast<size_t>(offset));
    memcpy(e->mutable_value() + offset, value.data(), value.size());
    NotifyKeyspaceEvent(ctx, kNotifyString, "setrange", key);
    return ctx.rb->Integer(static_cast<int64_t>(len));
  }
  if (e->type != ObjType::kString) return ctx.Error(OpStatus::kWrongType);
  size_t old = e->val_len;
  if (value.empty()) return ctx.rb->Integer(static_cast<int64_t>(old));
  if (!CheckStringLength(ctx, static_cast<uint64_t>(offset) + value.size())) return;
  size_t need = static_cast<size_t>(offset) + value.size();
  if (need > old) {
    e = db.ResizeValue(e, need, true);
    memset(e->mutable_value() + old, 0, need - old);
  }
  memcpy(e->mutable_value() + offset, value.data(), value.size());
  e->encoding = static_cast<uint8_t>(StrEncoding::kRaw);
  NotifyKeyspaceEvent(ctx, kNotifyString, "setrange", key);
  ctx.rb->Integer(static_cast<int64_t>(e->val_len));
}

void Lcs(CommandContext& ctx) {
  bool want_len = false, want_idx = false, with_match_len = false;
  int64_t min_match = 0;
  for (size_t j = 3; j < ctx.argc(); ++j) {
    std::string_view opt = ctx.arg(j);
    if (EqualsIgnoreCase(opt, "idx")) want_idx = true;
    else if (EqualsIgnoreCase(opt, "len")) want_len = true;
    else if (EqualsIgnoreCase(opt, "withmatchlen")) with_match_len = true;
    else if (EqualsIgnoreCase(opt, "minmatchlen") && j + 1 < ctx.argc()) {
      if (!ParseInt64(ctx.arg(++j), &min_match)) return ctx.Error(OpStatus::kNotAnInteger);
      if (min_match < 0) min_match = 0;
    } else {
      return ctx.SyntaxError();
    }
  }
  Entry* ea = ctx.DbFor(ctx.arg(1)).FindRead(ctx.arg(1));
  Entry* eb = ctx.DbFor(ctx.arg(2)).FindRead(ctx.arg(2));
  if ((ea && ea->type != ObjType::kString) || (eb && eb->type != ObjType::kString))
    return ctx.Error(OpStatus::kLcsNotStrings);
  if (want_idx && want_len)
    return ctx.Error(OpStatus::kLcsLenAndIdx);
  std::string a = ea ? std::string(ea->value()) : std::string();
  std::string b = eb ? std::string(eb->value()) : std::string();
  uint64_t alen = a.size(), blen = b.size();
  // The DP table is transient memory bounded like any argument.
  if ((alen + 1) * (blen + 1) > static_cast<uint64_t>(ctx.engine->config().proto_max_bulk_len.load()) / 4 ||
      (alen + 1) * (blen + 1) > (1ULL << 32))
    return ctx.Error(OpStatus::kLcsTooBig);
  std::vector<uint32_t> dp((alen + 1) * (blen + 1), 0);
  auto at = [&](uint64_t i, uint64_t j) -> uint32_t& { return dp[i * (blen + 1) + j]; };
  for (uint64_t i = 1; i <= alen; ++i)
    for (uint64_t j = 1; j <= blen; ++j)
      at(i, j) = a[i - 1] == b[j - 1] ? at(i - 1, j - 1) + 1 : std::max(at(i - 1, j), at(i, j - 1));
  uint32_t total = at(alen, blen);
  if (want_len) return ctx.rb->Integer(total);

  // Walk back from the end, collecting the common string and the matching
  // ranges (latest first, as Redis reports them).
  std::string common(total, '\0');
  struct Range { uint64_t a0, a1, b0, b1; };
  std::vector<Range> ranges;
  uint64_t i = alen, j = blen, idx = total;
  bool in_range = false;
  Range cur{};
  while (i > 0 && j > 0) {
    bool emit = false;
    if (a[i - 1] == b[j - 1]) {
      common[--idx] = a[i - 1];
      if (!in_range) {
        cur = {i - 1, i - 1, j - 1, j - 1};
        in_range = true;
      } else if (cur.a0 == i && cur.b0 == j) {
        --cur.a0;
        --cur.b0;
      } else {
        emit = true;
      }
      if (cur.a0 == 0 || cur.b0 == 0) emit = true;
      --i;
      --j;
    } else {
      if (at(i - 1, j) > at(i, j - 1)) --i;
      else --j;
      if (in_range) emit = true;
    }
    if (emit && in_range) {
      uint64_t mlen = cur.a1 - cur.a0 + 1;
      if (min_match == 0 || mlen >= static_cast<uint64_t>(min_match)) ranges.push_back(cur);
      in_range = false;
    }
  }
  if (!want_idx) return ctx.rb->Bulk(common);
  ctx.rb->MapHeader(2);
  ctx.rb->Bulk("matches");
  ctx.rb->ArrayHeader(ranges.size());
  for (const Range& r : ranges) {
    ctx.rb->ArrayHeader(with_match_len ? 3 : 2);
    ctx.rb->ArrayHeader(2);
    ctx.rb->Integer(static_cast<int64_t>(r.a0));
    ctx.rb->Integer(static_cast<int64_t>(r.a1));
    ctx.rb->ArrayHeader(2);
    ctx.rb->Integer(static_cast<int64_t>(r.b0));
    ctx.rb->Integer(static_cast<int64_t>(r.b1));
    if (with_match_len) ctx.rb->Integer(static_cast<int64_t>(r.a1 - r.a0 + 1));
  }
  ctx.rb->Bulk("len");
  ctx.rb->Integer(total);
}

}  // namespace

void RegisterStringFamily(CommandRegistry* r) {
  constexpr uint32_t W = kCmdWrite, R = kCmdReadOnly, M = kCmdDenyOom, F = kCmdFast;
  auto add = [r](const char* name, int arity, uint32_t flags, int first, int last, int step,
                 Handler h, const char* acl, const char* summary, Handler fan_out = nullptr) {
    CommandSpec s = MakeCommand(name, arity, flags, first, last, step, h, acl, summary, "string");
    s.fan_out = fan_out;
    r->Add(std::move(s));
  };
  add("get", 2, R | F, 1, 1, 1, Get, "@read @string @fast", "Returns the string value of a key.");
  add("set", -3, W | M, 1, 1, 1, Set, "@write @string @slow", "Sets the string value of a key, ignoring its type.");
  add("setnx", 3, W | M | F, 1, 1, 1, SetNx, "@write @string @fast", "Set the string value of a key only when the key doesn't exist.");
  add("setex", 4, W | M, 1, 1, 1, SetEx, "@write @string @slow", "Sets the string value and expiration time of a key.");
  add("psetex", 4, W | M, 1, 1, 1, PSetEx, "@write @string @slow", "Sets both string value and expiration time in milliseconds of a key.");
  add("getset", 3, W | M | F, 1, 1, 1, GetSet, "@write @string @fast", "Returns the previous string value of a key after setting it to a new value.");
  add("getdel", 2, W | F, 1, 1, 1, GetDel, "@write @string @fast", "Returns the string value of a key after deleting the key.");
  add("getex", -2, W | F, 1, 1, 1, GetEx, "@write @string @fast", "Returns the string value of a key after setting its expiration time.");
  add("mget", -2, R | F, 1, -1, 1, MGet, "@read @string @fast", "Atomically returns the string values of one or more keys.", MGetFanOut);
  add("mset", -3, W | M, 1, -1, 2, MSet, "@write @string @slow", "Atomically creates or modifies the string values of one or more keys.");
  add("msetnx", -3, W | M, 1, -1, 2, MSetNx, "@write @string @slow", "Atomically modifies the string values of one or more keys only when all keys don't exist.");
  add("incr", 2, W | M | F, 1, 1, 1, Incr, "@write @string @fast", "Increments the integer value of a key by one.");
  add("decr", 2, W | M | F, 1, 1, 1, Decr, "@write @string @fast", "Decrements the integer value of a key by one.");
  add("incrby", 3, W | M | F, 1, 1, 1, IncrBy, "@write @string @fast", "Increments the integer value of a key by a number.");
  add("decrby", 3, W | M | F, 1, 1, 1, DecrBy, "@write @string @fast", "Decrements a number from the integer value of a key.");
  add("incrbyfloat", 3, W | M | F, 1, 1, 1, IncrByFloat, "@write @string @fast", "Increment the floating point value of a key by a number.");
  add("append", 3, W | M | F, 1, 1, 1, Append, "@write @string @fast", "Appends a string to the value of a key.");
  add("strlen", 2, R | F, 1, 1, 1, StrLen, "@read @string @fast", "Returns the length of a string value.");
  add("getrange", 4, R, 1, 1, 1, GetRange, "@read @string @slow", "Returns a substring of the string stored at a key.");
  add("substr", 4, R, 1, 1, 1, GetRange, "@read @string @slow", "Returns a substring from a string value.");
  add("setrange", 4, W | M, 1, 1, 1, SetRange, "@write @string @slow", "Overwrites a part of a string value with another by an offset.");
  add("lcs", -3, R, 1, 2, 1, Lcs, "@read @string @slow", "Finds the longest common substring.");
}

}  // namespace larder
