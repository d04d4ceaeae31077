// Sorted set commands. Values are ZSetValue objects (keyspace/zset_value.h).
// Multi-key commands across shards run as exclusive operations; handlers
// reach every key through ctx.DbFor().
#include <algorithm>
#include <climits>
#include <cmath>
#include <map>
#include <vector>

#include "engine/blocking.h"
#include "commands/families.h"
#include "engine/command.h"
#include "commands/lookup.h"
#include "common/glob.h"
#include "common/numbers.h"
#include "common/strings.h"
#include "keyspace/set_value.h"
#include "keyspace/zset_value.h"
#include "engine/engine.h"
#include "shard/shard.h"

namespace larder {

namespace {

using Item = ZSetValue::Item;
using Ref = ZSetValue::Ref;

ZSetLimits Limits(CommandContext& ctx) {
  Config& c = ctx.engine->config();
  return ZSetLimits{static_cast<size_t>(c.zset_max_listpack_entries.load(std::memory_order_relaxed)),
                    static_cast<size_t>(c.zset_max_listpack_value.load(std::memory_order_relaxed))};
}

bool Lookup(CommandContext& ctx, std::string_view key, ZSetValue** out, bool write = false) {
  return LookupObject<ZSetValue, ObjType::kZSet>(ctx, key, out, write);
}

void ReplyScore(CommandContext& ctx, double s) { ctx.rb->Double(s); }

// Writes members (and scores) in the order given.
template <typename T>
void ReplyItems(CommandContext& ctx, const std::vector<T>& items, bool withscores) {
  bool pairs = withscores && ctx.rb->protocol() >= 3;
  ctx.rb->ArrayHeader(withscores && !pairs ? items.size() * 2 : items.size());
  for (const T& i : items) {
    if (pairs) ctx.rb->ArrayHeader(2);
    ctx.rb->Bulk(i.member);
    if (withscores) ReplyScore(ctx, i.score);
  }
}

// ---- ZADD / ZINCRBY ----

void ZAddGeneric(CommandContext& ctx, bool zincrby) {
  bool nx = false, xx = false, gt = false, lt = false, ch = false, incr = zincrby;
  size_t j = 2;
  if (!zincrby) {
    for (; j < ctx.argc(); ++j) {
      std::string_view o = ctx.arg(j);
      if (EqualsIgnoreCase(o, "nx")) nx = true;
      else if (EqualsIgnoreCase(o, "xx")) xx = true;
      else if (EqualsIgnoreCase(o, "gt")) gt = true;
      else if (EqualsIgnoreCase(o, "lt")) lt = true;
      else if (EqualsIgnoreCase(o, "ch")) ch = true;
      else if (EqualsIgnoreCase(o, "incr")) incr = true;
      else break;
    }
  }
  size_t elements = ctx.argc() - j;
  if (elements % 2 || elements == 0) return ctx.SyntaxError();
  elements /= 2;
  if (nx && xx) return ctx.Error(OpStatus::kZAddXxAndNx);
  if ((gt && nx) || (lt && nx) || (gt && lt))
    return ctx.Error(OpStatus::kZAddGtLtAndNx);
  if (incr && elements > 1) return ctx.Error(OpStatus::kZAddIncrSingle);
  std::vector<double> scores(elements);
  for (size_t e = 0; e < elements; ++e)
    if (!ParseDouble(ctx.arg(j + 2 * e), &scores[e])) return ctx.Error(OpStatus::kNotAFloat);
  std::string_view key = ctx.arg(1);
  ZSetValue* z;
  if (!Lookup(ctx, key, &z, true)) return;
  if (!z) {
    if (xx) return incr ? ctx.rb->Null() : ctx.rb->Integer(0);
    z = LookupOrCreateObject<ZSetValue, ObjType::kZSet>(ctx, key);
  }
  ZSetLimits limits = Limits(ctx);
  int64_t added = 0, updated = 0;
  bool processed = false;
  double last = 0;
  for (size_t e = 0; e < elements; ++e) {
    std::string_view m = ctx.arg(j + 2 * e + 1);
    double score = scores[e];
    auto cur = z->Score(m);
    if (cur) {
      if (nx) continue;
      if (incr) {
        score += *cur;
        if (std::isnan(score)) {
          DeleteIfEmpty(ctx, key, z);
          return ctx.Error(OpStatus::kScoreNaN);
        }
      }
      if ((lt && score >= *cur) || (gt && score <= *cur)) continue;
      processed = true;
      last = score;
      if (score != *cur) {
        z->Set(m, score, limits);
        ++updated;
      }
    } else {
      if (xx) continue;
      z->Set(m, score, limits);
      ++added;
      processed = true;
      last = score;
    }
  }
  if (added || updated) NotifyKeyspaceEvent(ctx, kNotifyZset, incr ? "zincr" : "zadd", key);
  DeleteIfEmpty(ctx, key, z);
  if (added) SignalKeyReady(ctx, key);
  if (incr) return processed ? ReplyScore(ctx, last) : ctx.rb->Null();
  ctx.rb->Integer(ch ? added + updated : added);
}
void ZAdd(CommandContext& ctx) { ZAddGeneric(ctx, false); }
void ZIncrBy(CommandContext& ctx) { ZAddGeneric(ctx, true); }

void ZRem(CommandContext& ctx) {
  ZSetValue* z;
  if (!Lookup(ctx, ctx.arg(1), &z, true)) return;
  if (!z) return ctx.rb->Integer(0);
  int64_t n = 0;
  for (size_t i = 2; i < ctx.argc(); ++i) n += z->Remove(ctx.arg(i));
  if (n) NotifyKeyspaceEvent(ctx, kNotifyZset, "zrem", ctx.arg(1));
  DeleteIfEmpty(ctx, ctx.arg(1), z);
  ctx.rb->Integer(n);
}

void ZCard(CommandContext& ctx) {
  ZSetValue* z;
  if (!Lookup(ctx, ctx.arg(1), &z)) return;
  ctx.rb->Integer(z ? static_cast<int64_t>(z->size()) : 0);
}

void ZScore(CommandContext& ctx) {
  ZSetValue* z;
  if (!Lookup(ctx, ctx.arg(1), &z)) return;
  auto s = z ? z->Score(ctx.arg(2)) : std::nullopt;
  if (!s) return ctx.rb->Null();
  ReplyScore(ctx, *s);
}

void ZMScore(CommandContext& ctx) {
  ZSetValue* z;
  if (!Lookup(ctx, ctx.arg(1), &z)) return;
  ctx.rb->ArrayHeader(ctx.argc() - 2);
  for (size_t i = 2; i < ctx.argc(); ++i) {
    auto s = z ? z->Score(ctx.arg(i)) : std::nullopt;
    if (s) ReplyScore(ctx, *s);
    else ctx.rb->Null();
  }
}

void ZRankGeneric(CommandContext& ctx, bool rev) {
  bool withscore = false;
  if (ctx.argc() == 4) {
    if (!EqualsIgnoreCase(ctx.arg(3), "withscore")) return ctx.SyntaxError();
    withscore = true;
  } else if (ctx.argc() > 4) {
    return ctx.SyntaxError();
  }
  ZSetValue* z;
  if (!Lookup(ctx, ctx.arg(1), &z)) return;
  auto r = z ? z->Rank(ctx.arg(2)) : std::nullopt;
  if (!r) return withscore ? ctx.rb->NullArray() : ctx.rb->Null();
  int64_t rank = static_cast<int64_t>(rev ? z->size() - 1 - *r : *r);
  if (!withscore) return ctx.rb->Integer(rank);
  ctx.rb->ArrayHeader(2);
  ctx.rb->Integer(rank);
  ReplyScore(ctx, *z->Score(ctx.arg(2)));
}
void ZRank(CommandContext& ctx) { ZRankGeneric(ctx, false); }
void ZRevRank(CommandContext& ctx) { ZRankGeneric(ctx, true); }

// ---- Ranges ----

struct ScoreRange {
  double min, max;
  bool minex = false, maxex = false;
};

bool ParseScoreBound(std::string_view s, double* v, bool* ex) {
  *ex = !s.empty() && s[0] == '(';
  if (*ex) s.remove_prefix(1);
  // Redis uses strtod here: "+inf", "-inf" and "inf" are fine, "nan" is not.
  return ParseDouble(s, v);
}

struct LexBound {
  std::string value;
  bool inf = false, neg_inf = false, ex = false;
};

bool ParseLexBound(std::string_view s, LexBound* b) {
  if (s == "+") {
    b->inf = true;
    return true;
  }
  if (s == "-") {
    b->neg_inf = true;
    return true;
  }
  if (s.empty() || (s[0] != '(' && s[0] != '[')) return false;
  b->ex = s[0] == '(';
  b->value = s.substr(1);
  return true;
}

bool LexGteMin(std::string_view m, const LexBound& min) {
  if (min.neg_inf) return true;
  if (min.inf) return false;
  return min.ex ? m > min.value : m >= min.value;
}
bool LexLteMax(std::string_view m, const LexBound& max) {
  if (max.inf) return true;
  if (max.neg_inf) return false;
  return max.ex ? m < max.value : m <= max.value;
}

enum class RangeType { kRank, kScore, kLex };

struct RangeSpec {
  RangeType type = RangeType::kRank;
  bool rev = false;
  bool withscores = false;
  int64_t offset = 0, limit = -1;
  bool has_limit = false;
};

// The range as ascending ranks [*first, *last) (empty when first >= last):
// O(log N) bounds through the skiplist. Returns false (error written) on a
// malformed range; with no set (`z` null) it only checks the arguments.
bool RangeBounds(CommandContext& ctx, const ZSetValue* z, std::string_view a, std::string_view b,
                 const RangeSpec& r, size_t* first, size_t* last) {
  *first = *last = 0;
  if (r.type == RangeType::kRank) {
    int64_t start, stop;
    if (!ParseInt64(a, &start) || !ParseInt64(b, &stop)) {
      ctx.Error(OpStatus::kNotAnInteger);
      return false;
    }
    if (!z) return true;
    auto n = static_cast<int64_t>(z->size());
    if (start < 0) start += n;
    if (stop < 0) stop += n;
    if (start < 0) start = 0;
    if (start > stop || start >= n) return true;
    if (stop >= n) stop = n - 1;
    // With REV the ranks count from the top.
    *first = static_cast<size_t>(r.rev ? n - 1 - stop : start);
    *last = static_cast<size_t>(r.rev ? n - start : stop + 1);
    return true;
  }
  // BYSCORE/BYLEX: with REV the first argument is the maximum.
  std::string_view lo = r.rev ? b : a, hi = r.rev ? a : b;
  if (r.type == RangeType::kScore) {
    ScoreRange sr;
    if (!ParseScoreBound(lo, &sr.min, &sr.minex) || !ParseScoreBound(hi, &sr.max, &sr.maxex)) {
      ctx.Error(OpStatus::kMinMaxNotFloat);
      return false;
    }
    if (!z) return true;
    *first = z->CountWhile([&](const Ref& x) { return sr.minex ? x.score <= sr.min : x.score < sr.min; });
    *last = z->CountWhile([&](const Ref& x) { return sr.maxex ? x.score < sr.max : x.score <= sr.max; });
    return true;
  }
  LexBound min, max;
  if (!ParseLexBound(lo, &min) || !ParseLexBound(hi, &max)) {
    ctx.Error(OpStatus::kMinMaxNotLex);
    return false;
  }
  if (!z) return true;
  *first = z->CountWhile([&](const Ref& x) { return !LexGteMin(x.member, min); });
  *last = z->CountWhile([&](const Ref& x) { return LexLteMax(x.member, max); });
  return true;
}

// Collects the items of `z` in the range, in reply order, LIMIT applied:
// O(log N + M). Returns false (error written) on a malformed range.
bool CollectRange(CommandContext& ctx, const ZSetValue* z, std::string_view a, std::string_view b,
                  const RangeSpec& r, std::vector<Ref>* out) {
  size_t first, last;
  if (!RangeBounds(ctx, z, a, b, r, &first, &last)) return false;
  if (!z || first >= last) return true;
  size_t count = last - first, skip = 0;
  if (r.has_limit) {
    if (r.offset < 0) return true;
    skip = static_cast<size_t>(std::min<int64_t>(r.offset, static_cast<int64_t>(count)));
    count -= skip;
    if (r.limit >= 0) count = std::min(count, static_cast<size_t>(r.limit));
  }
  if (count == 0) return true;
  out->reserve(count);
  size_t start = (r.rev ? z->size() - last : first) + skip;
  z->Walk(start, r.rev, [&](const Ref& x) {
    out->push_back(x);
    return out->size() < count;
  });
  return true;
}

// Parses ZRANGE-style options from args[first]; `store` forbids WITHSCORES;
// `legacy` (ZRANGEBYSCORE and friends, type preset) forbids BYSCORE/BYLEX/REV.
bool ParseRangeOptions(CommandContext& ctx, size_t first, RangeSpec* r, bool store, bool legacy = false) {
  bool typed = legacy;
  for (size_t j = first; j < ctx.argc(); ++j) {
    std::string_view o = ctx.arg(j);
    if (!store && EqualsIgnoreCase(o, "withscores")) {
      r->withscores = true;
    } else if (EqualsIgnoreCase(o, "limit") && j + 2 < ctx.argc()) {
      if (!ParseInt64(ctx.arg(j + 1), &r->offset) || !ParseInt64(ctx.arg(j + 2), &r->limit)) {
        ctx.Error(OpStatus::kNotAnInteger);
        return false;
      }
      r->has_limit = true;
      j += 2;
    } else if (!typed && EqualsIgnoreCase(o, "byscore")) {
      r->type = RangeType::kScore;
      typed = true;
    } else if (!typed && EqualsIgnoreCase(o, "bylex")) {
      r->type = RangeType::kLex;
      typed = true;
    } else if (!legacy && EqualsIgnoreCase(o, "rev")) {
      r->rev = true;
    } else {
      ctx.SyntaxError();
      return false;
    }
  }
  if (r->has_limit && r->type == RangeType::kRank) {
    ctx.Error(OpStatus::kLimitNeedsByScoreOrLex);
    return false;
  }
  if (r->withscores && r->type == RangeType::kLex) {
    ctx.Error(OpStatus::kWithScoresByLex);
    return false;
  }
  return true;
}

void RangeReply(CommandContext& ctx, const RangeSpec& r, std::string_view a, std::string_view b) {
  std::vector<Ref> items;
  if (!CollectRange(ctx, nullptr, a, b, r, &items)) return;  // the range is checked before the key
  ZSetValue* z;
  if (!Lookup(ctx, ctx.arg(1), &z)) return;
  if (z && !CollectRange(ctx, z, a, b, r, &items)) return;
  ReplyItems(ctx, items, r.withscores);
}

void ZRange(CommandContext& ctx) {
  RangeSpec r;
  if (!ParseRangeOptions(ctx, 4, &r, false)) return;
  RangeReply(ctx, r, ctx.arg(2), ctx.arg(3));
}

// ZRANGEBYSCORE, ZREVRANGEBYSCORE, ZRANGEBYLEX, ZREVRANGEBYLEX, ZREVRANGE:
// the same parser and checks as ZRANGE, with the range type fixed.
void LegacyRange(CommandContext& ctx, RangeType type, bool rev) {
  RangeSpec r;
  r.type = type;
  r.rev = rev;
  if (!ParseRangeOptions(ctx, 4, &r, false, true)) return;
  RangeReply(ctx, r, ctx.arg(2), ctx.arg(3));
}
void ZRangeByScore(CommandContext& ctx) { LegacyRange(ctx, RangeType::kScore, false); }
void ZRevRangeByScore(CommandContext& ctx) { LegacyRange(ctx, RangeType::kScore, true); }
void ZRangeByLex(CommandContext& ctx) { LegacyRange(ctx, RangeType::kLex, false); }
void ZRevRangeByLex(CommandContext& ctx) { LegacyRange(ctx, RangeType::kLex, true); }
void ZRevRange(CommandContext& ctx) { LegacyRange(ctx, RangeType::kRank, true); }

// Replaces `key` with the given items (deleted if none), announced as
// `event` (or "del" when an emptied key goes).
void StoreItems(CommandContext& ctx, std::string_view key, const std::vector<Item>& items,
                std::string_view event) {
  Db& db = ctx.DbFor(key);
  bool existed = db.Delete(key);
  if (items.empty()) {
    if (existed) NotifyKeyspaceEvent(ctx, kNotifyGeneric, "del", key);
    return;
  }
  auto* z = ZSetValue::FromSorted(items, Limits(ctx)).release();
  Entry* e = NewObjectEntry(key, ObjType::kZSet, z, -1);
  if (existed) db.AddQuiet(e);  // an overwrite: not a new key
  else db.Add(e);
  NotifyKeyspaceEvent(ctx, kNotifyZset, event, key);
  SignalKeyReady(ctx, key);
}

void ZRangeStore(CommandContext& ctx) {
  RangeSpec r;
  if (!ParseRangeOptions(ctx, 5, &r, true)) return;
  std::vector<Ref> items;
  if (!CollectRange(ctx, nullptr, ctx.arg(3), ctx.arg(4), r, &items)) return;
  ZSetValue* z;
  if (!Lookup(ctx, ctx.arg(2), &z)) return;
  if (z && !CollectRange(ctx, z, ctx.arg(3), ctx.arg(4), r, &items)) return;
  std::vector<Item> copy;
  copy.reserve(items.size());
  for (const Ref& i : items) copy.push_back(Item{i.score, std::string(i.member)});
  // ZRANGESTORE ... REV stores the same set: FromSorted wants ascending order.
  if (r.rev) std::reverse(copy.begin(), copy.end());
  StoreItems(ctx, ctx.arg(1), copy, "zrangestore");
  ctx.rb->Integer(static_cast<int64_t>(copy.size()));
}

void ZCount(CommandContext& ctx) {
  RangeSpec r;
  r.type = RangeType::kScore;
  ZSetValue* z;
  ScoreRange sr;
  if (!ParseScoreBound(ctx.arg(2), &sr.min, &sr.minex) || !ParseScoreBound(ctx.arg(3), &sr.max, &sr.maxex))
    return ctx.Error(OpStatus::kMinMaxNotFloat);
  if (!Lookup(ctx, ctx.arg(1), &z)) return;
  if (!z) return ctx.rb->Integer(0);
  size_t first, last;
  if (!RangeBounds(ctx, z, ctx.arg(2), ctx.arg(3), r, &first, &last)) return;
  ctx.rb->Integer(first < last ? static_cast<int64_t>(last - first) : 0);
}

void ZLexCount(CommandContext& ctx) {
  RangeSpec r;
  r.type = RangeType::kLex;
  LexBound a, b;
  if (!ParseLexBound(ctx.arg(2), &a) || !ParseLexBound(ctx.arg(3), &b))
    return ctx.Error(OpStatus::kMinMaxNotLex);
  ZSetValue* z;
  if (!Lookup(ctx, ctx.arg(1), &z)) return;
  if (!z) return ctx.rb->Integer(0);
  size_t first, last;
  if (!RangeBounds(ctx, z, ctx.arg(2), ctx.arg(3), r, &first, &last)) return;
  ctx.rb->Integer(first < last ? static_cast<int64_t>(last - first) : 0);
}

void ZRemRangeGeneric(CommandContext& ctx, RangeType type) {
  RangeSpec r;
  r.type = type;
  if (type == RangeType::kScore) {
    ScoreRange sr;
    if (!ParseScoreBound(ctx.arg(2), &sr.min, &sr.minex) || !ParseScoreBound(ctx.arg(3), &sr.max, &sr.maxex))
      return ctx.Error(OpStatus::kMinMaxNotFloat);
  } else if (type == RangeType::kLex) {
    LexBound a, b;
    if (!ParseLexBound(ctx.arg(2), &a) || !ParseLexBound(ctx.arg(3), &b))
      return ctx.Error(OpStatus::kMinMaxNotLex);
  } else {
    int64_t x;
    if (!ParseInt64(ctx.arg(2), &x) || !ParseInt64(ctx.arg(3), &x)) return ctx.Error(OpStatus::kNotAnInteger);
  }
  ZSetValue* z;
  if (!Lookup(ctx, ctx.arg(1), &z, true)) return;
  if (!z) return ctx.rb->Integer(0);
  size_t first, last;
  if (!RangeBounds(ctx, z, ctx.arg(2), ctx.arg(3), r, &first, &last)) return;
  size_t removed = first < last ? last - first : 0;
  z->EraseRanks(first, first + removed);
  if (removed)
    NotifyKeyspaceEvent(ctx, kNotifyZset,
                        type == RangeType::kRank    ? "zremrangebyrank"
                        : type == RangeType::kScore ? "zremrangebyscore"
                                                    : "zremrangebylex",
                        ctx.arg(1));
  DeleteIfEmpty(ctx, ctx.arg(1), z);
  ctx.rb->Integer(static_cast<int64_t>(removed));
}
void ZRemRangeByRank(CommandContext& ctx) { ZRemRangeGeneric(ctx, RangeType::kRank); }
void ZRemRangeByScore(CommandContext& ctx) { ZRemRangeGeneric(ctx, RangeType::kScore); }
void ZRemRangeByLex(CommandContext& ctx) { ZRemRangeGeneric(ctx, RangeType::kLex); }

// ---- Pops ----

// Pops up to `count` from the low (min) or high end; writes [m, s, ...] or,
// for `emit_key`, [key, [[m, s], ...]] (ZMPOP).
std::vector<Item> PopItems(ZSetValue* z, bool min, size_t count) {
  std::vector<Item> out;
  count = std::min(count, z->size());
  if (count == 0) return out;
  out.reserve(count);
  z->Walk(0, !min, [&](const Ref& r) {
    out.push_back(Item{r.score, std::string(r.member)});
    return out.size() < count;
  });
  size_t n = z->size();
  if (min) z->EraseRanks(0, count);
  else z->EraseRanks(n - count, n);
  return out;
}

void ZPopGeneric(CommandContext& ctx, bool min) {
  if (ctx.argc() > 3) return ctx.SyntaxError();
  int64_t count = 1;
  bool has_count = ctx.argc() == 3;
  if (has_count && (!ParseInt64(ctx.arg(2), &count) || count < 0))
    return ctx.Error(OpStatus::kValueNotPositive);
  ZSetValue* z;
  if (!Lookup(ctx, ctx.arg(1), &z, true)) return;
  if (!z || count == 0) return ctx.rb->EmptyArray();
  auto popped = PopItems(z, min, static_cast<size_t>(count));
  NotifyKeyspaceEvent(ctx, kNotifyZset, min ? "zpopmin" : "zpopmax", ctx.arg(1));
  DeleteIfEmpty(ctx, ctx.arg(1), z);
  bool pairs = has_count && ctx.rb->protocol() >= 3;
  ctx.rb->ArrayHeader(pairs ? popped.size() : popped.size() * 2);
  for (const auto& i : popped) {
    if (pairs) ctx.rb->ArrayHeader(2);
    ctx.rb->Bulk(i.member);
    ReplyScore(ctx, i.score);
  }
}
void ZPopMin(CommandContext& ctx) { ZPopGeneric(ctx, true); }
void ZPopMax(CommandContext& ctx) { ZPopGeneric(ctx, false); }

void BZPopGeneric(CommandContext& ctx, bool min) {
  int64_t timeout;
  if (!ParseBlockTimeout(ctx, ctx.arg(ctx.argc() - 1), &timeout)) return;
  std::vector<std::string> keys;
  for (size_t i = 1; i + 1 < ctx.argc(); ++i) {
    std::string_view key = ctx.arg(i);
    keys.emplace_back(key);
    bool failed;
    Entry* e = PopCandidate(ctx, key, ObjType::kZSet, &failed);
    if (failed) return;
    if (!e) continue;
    auto* z = ObjectOf<ZSetValue>(e);
    Item top = PopItems(z, min, 1)[0];
    NotifyKeyspaceEvent(ctx, kNotifyZset, min ? "zpopmin" : "zpopmax", key);
    DeleteIfEmpty(ctx, key, z);
    if (ctx.propagation) ctx.Propagate({min ? "ZPOPMIN" : "ZPOPMAX", key});  // non-blocking form, as Redis
    ctx.rb->ArrayHeader(3);
    ctx.rb->Bulk(key);
    ctx.rb->Bulk(top.member);
    ReplyScore(ctx, top.score);
    return;
  }
  if (Serving(ctx)) return;
  RequestBlock(ctx, timeout, std::move(keys));
}
void BZPopMin(CommandContext& ctx) { BZPopGeneric(ctx, true); }
void BZPopMax(CommandContext& ctx) { BZPopGeneric(ctx, false); }

// ZMPOP numkeys key... MIN|MAX [COUNT n] from args[pos]; BZMPOP when blocking.
void ZMPopGeneric(CommandContext& ctx, size_t pos, bool blocking, int64_t timeout) {
  int64_t n;
  if (!ParseInt64(ctx.arg(pos), &n) || n <= 0) return ctx.Error(OpStatus::kNumkeysNotPositive);
  size_t where = pos + 1 + static_cast<size_t>(n);
  if (static_cast<uint64_t>(n) > ctx.argc() || where >= ctx.argc()) return ctx.SyntaxError();
  bool min;
  if (EqualsIgnoreCase(ctx.arg(where), "min")) min = true;
  else if (EqualsIgnoreCase(ctx.arg(where), "max")) min = false;
  else return ctx.SyntaxError();
  int64_t count = 1;
  bool has_count = false;
  for (size_t j = where + 1; j < ctx.argc(); ++j) {
    if (EqualsIgnoreCase(ctx.arg(j), "count") && j + 1 < ctx.argc() && !has_count) {
      if (!ParseInt64(ctx.arg(++j), &count) || count <= 0) return ctx.Error(OpStatus::kCountNotPositive);
      has_count = true;
    } else {
      return ctx.SyntaxError();
    }
  }
  std::vector<std::string> keys;
  for (size_t i = 0; i < static_cast<size_t>(n); ++i) {
    std::string_view key = ctx.arg(pos + 1 + i);
    keys.emplace_back(key);
    bool failed;
    Entry* e = PopCandidate(ctx, key, ObjType::kZSet, &failed);
    if (failed) return;
    if (!e) continue;
    auto* z = ObjectOf<ZSetValue>(e);
    auto popped = PopItems(z, min, static_cast<size_t>(count));
    NotifyKeyspaceEvent(ctx, kNotifyZset, min ? "zpopmin" : "zpopmax", key);
    DeleteIfEmpty(ctx, key, z);
    if (blocking && ctx.propagation) {  // BZMPOP is logged as ZMPOP (the timeout dropped)
      std::vector<std::string_view> argv{"ZMPOP"};
      for (size_t j = pos; j < ctx.argc(); ++j) argv.push_back(ctx.arg(j));
      ctx.Propagate(argv);
    }
    ctx.rb->ArrayHeader(2);
    ctx.rb->Bulk(key);
    ctx.rb->ArrayHeader(popped.size());
    for (const auto& i : popped) {
      ctx.rb->ArrayHeader(2);
      ctx.rb->Bulk(i.member);
      ReplyScore(ctx, i.score);
    }
    return;
  }
  if (!blocking) return ctx.rb->NullArray();
  if (Serving(ctx)) return;
  RequestBlock(ctx, timeout, std::move(keys));
}
void ZMPop(CommandContext& ctx) { ZMPopGeneric(ctx, 1, false, 0); }
void BZMPop(CommandContext& ctx) {
  int64_t timeout;
  if (!ParseBlockTimeout(ctx, ctx.arg(1), &timeout)) return;
  ZMPopGeneric(ctx, 2, true, timeout);
}

void ZRandMember(CommandContext& ctx) {
  ZSetValue* z;
  if (ctx.argc() == 2) {
    if (!Lookup(ctx, ctx.arg(1), &z)) return;
    if (!z) return ctx.rb->Null();
    return ctx.rb->Bulk(z->RandomItem(ctx.shard->rng()).member);
  }
  int64_t l;
  if (!ParseInt64(ctx.arg(2), &l)) return ctx.Error(OpStatus::kNotAnInteger);
  if (l < -LLONG_MAX)
    return ctx.Error(OpStatus::kCountOutOfRange);
  bool withscores = false;
  if (ctx.argc() == 4 && EqualsIgnoreCase(ctx.arg(3), "withscores")) withscores = true;
  else if (ctx.argc() >= 4) return ctx.SyntaxError();
  if (withscores && l < -(LLONG_MAX / 2)) return ctx.Error(OpStatus::kValueOutOfRange);
  if (!Lookup(ctx, ctx.arg(1), &z)) return;
  if (!z || l == 0) return ctx.rb->EmptyArray();
  auto& rng = ctx.shard->rng();
  auto picks = RandomPicks<Ref>(
      ctx, l, z->size(), rng, [&] { return z->RandomItem(rng); },
      [&] {
        std::vector<Ref> all;
        all.reserve(z->size());
        z->ForEach([&](const Ref& r) { all.push_back(r); });
        return all;
      },
      [](const Ref& r) { return r.member; });
  ReplyItems(ctx, picks, withscores);
}

// ---- ZUNION / ZINTER / ZDIFF ----

enum class Agg { kSum, kMin, kMax };
enum class ZOp { kUnion, kInter, kDiff };

double Combine(Agg agg, double a, double b) {
  if (agg == Agg::kSum) {
    double r = a + b;
    return std::isnan(r) ? 0.0 : r;  // inf + -inf is 0, as in Redis
  }
  return agg == Agg::kMin ? std::min(a, b) : std::max(a, b);
}

// Reads one input of a set operation: a sorted set, or a plain set (score 1).
bool LoadInput(CommandContext& ctx, std::string_view key, std::vector<Item>* out, bool* exists) {
  Entry* e = ctx.DbFor(key).FindRead(key);
  *exists = e != nullptr;
  if (!e) return true;
  if (e->type == ObjType::kZSet) {
    *out = ObjectOf<ZSetValue>(e)->ToVector();
    return true;
  }
  if (e->type == ObjType::kSet) {
    ObjectOf<SetValue>(e)->ForEach([&](std::string_view m) { out->push_back(Item{1.0, std::string(m)}); });
    return true;
  }
  ctx.Error(OpStatus::kWrongType);
  return false;
}

// Handles ZUNION/ZINTER/ZDIFF[STORE]: `numkeys_pos` is where numkeys is.
void ZSetOpGeneric(CommandContext& ctx, ZOp op, bool store) {
  size_t pos = store ? 2 : 1;
  int64_t numkeys;
  if (!ParseInt64(ctx.arg(pos), &numkeys)) return ctx.Error(OpStatus::kNotAnInteger);
  if (numkeys < 1)
    return ctx.Error(OpStatus::kNeedInputKey, ctx.spec->name);
  if (static_cast<uint64_t>(numkeys) > ctx.argc() - pos - 1) return ctx.SyntaxError();
  // As Redis: the keys' types are checked before the options are parsed.
  for (size_t i = 0; i < static_cast<size_t>(numkeys); ++i) {
    std::string_view k = ctx.arg(pos + 1 + i);
    const Entry* e = ctx.DbFor(k).Find(k);
    if (e && e->type != ObjType::kZSet && e->type != ObjType::kSet) return ctx.Error(OpStatus::kWrongType);
  }
  std::vector<double> weights(static_cast<size_t>(numkeys), 1.0);
  Agg agg = Agg::kSum;
  bool withscores = false;
  for (size_t j = pos + 1 + static_cast<size_t>(numkeys); j < ctx.argc(); ++j) {
    std::string_view o = ctx.arg(j);
    size_t left = ctx.argc() - j - 1;
    if (op != ZOp::kDiff && EqualsIgnoreCase(o, "weights") && left >= static_cast<size_t>(numkeys)) {
      for (size_t w = 0; w < static_cast<size_t>(numkeys); ++w)
        if (!ParseDouble(ctx.arg(j + 1 + w), &weights[w])) return ctx.Error(OpStatus::kWeightNotFloat);
      j += static_cast<size_t>(numkeys);
    } else if (op != ZOp::kDiff && EqualsIgnoreCase(o, "aggregate") && left >= 1) {
      std::string_view a = ctx.arg(++j);
      if (EqualsIgnoreCase(a, "sum")) agg = Agg::kSum;
      else if (EqualsIgnoreCase(a, "min")) agg = Agg::kMin;
      else if (EqualsIgnoreCase(a, "max")) agg = Agg::kMax;
      else return ctx.SyntaxError();
    } else if (!store && EqualsIgnoreCase(o, "withscores")) {
      withscores = true;
    } else {
      return ctx.SyntaxError();
    }
  }
  std::vector<std::vector<Item>> inputs(static_cast<size_t>(numkeys));
  std::vector<bool> exists(static_cast<size_t>(numkeys));
  for (size_t i = 0; i < inputs.size(); ++i) {
    bool ex;
    if (!LoadInput(ctx, ctx.arg(pos + 1 + i), &inputs[i], &ex)) return;
    exists[i] = ex;
  }
  std::map<std::string, double> acc;  // member -> score
  auto weighted = [&](size_t i, double s) {
    double r = s * weights[i];
    return std::isnan(r) ? 0.0 : r;
  };
  if (op == ZOp::kUnion) {
    for (size_t i = 0; i < inputs.size(); ++i)
      for (const auto& it : inputs[i]) {
        double s = weighted(i, it.score);
        auto [p, fresh] = acc.emplace(it.member, s);
        if (!fresh) p->second = Combine(agg, p->second, s);
      }
  } else if (op == ZOp::kInter) {
    bool empty = std::any_of(inputs.begin(), inputs.end(), [](auto& v) { return v.empty(); });
    if (!empty) {
      std::vector<std::map<std::string, double>> maps(inputs.size());
      for (size_t i = 1; i < inputs.size(); ++i)
        for (const auto& it : inputs[i]) maps[i][it.member] = it.score;
      for (const auto& it : inputs[0]) {
        double s = weighted(0, it.score);
        bool all = true;
        for (size_t i = 1; i < inputs.size() && all; ++i) {
          auto f = maps[i].find(it.member);
          if (f == maps[i].end()) all = false;
          else s = Combine(agg, s, weighted(i, f->second));
        }
        if (all) acc[it.member] = s;
      }
    }
  } else {
    std::vector<std::map<std::string, double>> maps(inputs.size());
    for (size_t i = 1; i < inputs.size(); ++i)
      for (const auto& it : inputs[i]) maps[i][it.member] = it.score;
    for (const auto& it : inputs[0]) {
      bool found = false;
      for (size_t i = 1; i < inputs.size() && !found; ++i) found = maps[i].count(it.member) > 0;
      if (!found) acc[it.member] = it.score;
    }
  }
  std::vector<Item> result;
  result.reserve(acc.size());
  for (auto& [m, s] : acc) result.push_back(Item{s, m});
  std::sort(result.begin(), result.end(),
            [](const Item& a, const Item& b) { return a.score < b.score || (a.score == b.score && a.member < b.member); });
  if (store) {
    StoreItems(ctx, ctx.arg(1), result,
               op == ZOp::kUnion ? "zunionstore" : op == ZOp::kInter ? "zinterstore" : "zdiffstore");
    return ctx.rb->Integer(static_cast<int64_t>(result.size()));
  }
  ReplyItems(ctx, result, withscores);
}
void ZUnion(CommandContext& ctx) { ZSetOpGeneric(ctx, ZOp::kUnion, false); }
void ZInter(CommandContext& ctx) { ZSetOpGeneric(ctx, ZOp::kInter, false); }
void ZDiff(CommandContext& ctx) { ZSetOpGeneric(ctx, ZOp::kDiff, false); }
void ZUnionStore(CommandContext& ctx) { ZSetOpGeneric(ctx, ZOp::kUnion, true); }
void ZInterStore(CommandContext& ctx) { ZSetOpGeneric(ctx, ZOp::kInter, true); }
void ZDiffStore(CommandContext& ctx) { ZSetOpGeneric(ctx, ZOp::kDiff, true); }

void ZInterCard(CommandContext& ctx) {
  int64_t numkeys;
  if (!ParseInt64(ctx.arg(1), &numkeys)) return ctx.Error(OpStatus::kNotAnInteger);
  if (numkeys < 1) return ctx.Error(OpStatus::kNeedInputKey, "zintercard");
  if (static_cast<uint64_t>(numkeys) > ctx.argc() - 2) return ctx.SyntaxError();
  int64_t limit = 0;
  for (size_t j = 2 + static_cast<size_t>(numkeys); j < ctx.argc(); ++j) {
    if (EqualsIgnoreCase(ctx.arg(j), "limit") && j + 1 < ctx.argc()) {
      if (!ParseInt64(ctx.arg(++j), &limit) || limit < 0) return ctx.Error(OpStatus::kLimitNegative);
    } else {
      return ctx.SyntaxError();
    }
  }
  std::vector<std::vector<Item>> inputs(static_cast<size_t>(numkeys));
  for (size_t i = 0; i < inputs.size(); ++i) {
    bool ex;
    if (!LoadInput(ctx, ctx.arg(2 + i), &inputs[i], &ex)) return;
  }
  std::vector<std::map<std::string, double>> maps(inputs.size());
  for (size_t i = 1; i < inputs.size(); ++i)
    for (const auto& it : inputs[i]) maps[i][it.member] = it.score;
  int64_t n = 0;
  for (const auto& it : inputs[0]) {
    bool all = true;
    for (size_t i = 1; i < inputs.size() && all; ++i) all = maps[i].count(it.member) > 0;
    if (all && ++n == limit) break;
  }
  ctx.rb->Integer(n);
}

// ZSCAN: a listpack answers in one call (cursor 0); a skiplist set a
// bucket position of its member table at a time (ScanCollection).
void ZScan(CommandContext& ctx) {
  CollectionScanArgs scan;
  if (!ParseCollectionScan(ctx, &scan)) return;
  ZSetValue* z;
  if (!Lookup(ctx, ctx.arg(1), &z)) return;
  std::vector<Ref> out;
  auto add = [&](const Ref& r) {
    if (!scan.has_pattern || GlobMatch(scan.pattern, r.member)) out.push_back(r);
  };
  uint64_t next = 0;
  if (z && z->is_table()) {
    size_t found = 0;
    next = ScanCollection(scan, found, [&](uint64_t c) {
      return z->Scan(c, [&](const Ref& r) {
        ++found;
        add(r);
      });
    });
  } else if (z) {
    z->ForEach(add);
  }
  ctx.rb->ArrayHeader(2);
  ctx.rb->Bulk(std::to_string(next));
  ctx.rb->ArrayHeader(out.size() * 2);
  for (const Ref& r : out) {
    ctx.rb->Bulk(r.member);
    ctx.rb->Bulk(FormatDouble(r.score));
  }
}

std::vector<size_t> KeysAt1(std::span<const std::string_view> a) { return NumKeysAt(a, 1); }
std::vector<size_t> KeysAt2(std::span<const std::string_view> a) { return NumKeysAt(a, 2); }
std::vector<size_t> StoreKeys(std::span<const std::string_view> a) {
  auto keys = NumKeysAt(a, 2);
  if (!keys.empty()) keys.insert(keys.begin(), 1);
  return keys;
}

}  // namespace

void RegisterZSetFamily(CommandRegistry* r) {
  constexpr uint32_t W = kCmdWrite, R = kCmdReadOnly, M = kCmdDenyOom, F = kCmdFast, B = kCmdBlocking;
  using KeysFn = std::vector<size_t> (*)(std::span<const std::string_view>);
  auto add = [r](const char* name, int arity, uint32_t flags, int first, int last, Handler h, const char* acl,
                 const char* summary, KeysFn keys = nullptr) {
    CommandSpec s = MakeCommand(name, arity, flags, first, last, 1, h, acl, summary, "sorted_set");
    s.get_keys = keys;
    r->Add(std::move(s));
  };
  add("zadd", -4, W | M | F, 1, 1, ZAdd, "@write @sortedset @fast", "Adds one or more members to a sorted set, or updates their scores.");
  add("zincrby", 4, W | M | F, 1, 1, ZIncrBy, "@write @sortedset @fast", "Increments the score of a member in a sorted set.");
  add("zrem", -3, W | F, 1, 1, ZRem, "@write @sortedset @fast", "Removes one or more members from a sorted set.");
  add("zcard", 2, R | F, 1, 1, ZCard, "@read @sortedset @fast", "Returns the number of members in a sorted set.");
  add("zscore", 3, R | F, 1, 1, ZScore, "@read @sortedset @fast", "Returns the score of a member in a sorted set.");
  add("zmscore", -3, R | F, 1, 1, ZMScore, "@read @sortedset @fast", "Returns the score of one or more members in a sorted set.");
  add("zrank", -3, R | F, 1, 1, ZRank, "@read @sortedset @fast", "Returns the index of a member in a sorted set ordered by ascending scores.");
  add("zrevrank", -3, R | F, 1, 1, ZRevRank, "@read @sortedset @fast", "Returns the index of a member in a sorted set ordered by descending scores.");
  add("zcount", 4, R | F, 1, 1, ZCount, "@read @sortedset @fast", "Returns the count of members in a sorted set that have scores within a range.");
  add("zlexcount", 4, R | F, 1, 1, ZLexCount, "@read @sortedset @fast", "Returns the number of members in a sorted set within a lexicographical range.");
  add("zrange", -4, R, 1, 1, ZRange, "@read @sortedset @slow", "Returns members in a sorted set within a range of indexes.");
  add("zrangestore", -5, W | M, 1, 2, ZRangeStore, "@write @sortedset @slow", "Stores a range of members from sorted set in a key.");
  add("zrangebyscore", -4, R, 1, 1, ZRangeByScore, "@read @sortedset @slow", "Returns members in a sorted set within a range of scores.");
  add("zrevrangebyscore", -4, R, 1, 1, ZRevRangeByScore, "@read @sortedset @slow", "Returns members in a sorted set within a range of scores in reverse order.");
  add("zrangebylex", -4, R, 1, 1, ZRangeByLex, "@read @sortedset @slow", "Returns members in a sorted set within a lexicographical range.");
  add("zrevrangebylex", -4, R, 1, 1, ZRevRangeByLex, "@read @sortedset @slow", "Returns members in a sorted set within a lexicographical range in reverse order.");
  add("zrevrange", -4, R, 1, 1, ZRevRange, "@read @sortedset @slow", "Returns members in a sorted set within a range of indexes in reverse order.");
  add("zremrangebyrank", 4, W, 1, 1, ZRemRangeByRank, "@write @sortedset @slow", "Removes members in a sorted set within a range of indexes.");
  add("zremrangebyscore", 4, W, 1, 1, ZRemRangeByScore, "@write @sortedset @slow", "Removes members in a sorted set within a range of scores.");
  add("zremrangebylex", 4, W, 1, 1, ZRemRangeByLex, "@write @sortedset @slow", "Removes members in a sorted set within a lexicographical range.");
  add("zpopmin", -2, W | F, 1, 1, ZPopMin, "@write @sortedset @fast", "Returns the lowest-scoring members from a sorted set after removing them.");
  add("zpopmax", -2, W | F, 1, 1, ZPopMax, "@write @sortedset @fast", "Returns the highest-scoring members from a sorted set after removing them.");
  add("bzpopmin", -3, W | kCmdNoScript | F | B, 1, -2, BZPopMin, "@write @sortedset @fast @blocking", "Removes and returns the member with the lowest score from one or more sorted sets. Blocks until a member is available otherwise.");
  add("bzpopmax", -3, W | kCmdNoScript | F | B, 1, -2, BZPopMax, "@write @sortedset @fast @blocking", "Removes and returns the member with the highest score from one or more sorted sets. Blocks until a member available otherwise.");
  add("zmpop", -4, W, 1, 1, ZMPop, "@write @sortedset @slow", "Returns the highest- or lowest-scoring members from one or more sorted sets after removing them.", KeysAt1);
  add("bzmpop", -5, W | B, 2, 2, BZMPop, "@write @sortedset @slow @blocking", "Removes and returns a member by score from one or more sorted sets. Blocks until a member is available otherwise.", KeysAt2);
  add("zrandmember", -2, R, 1, 1, ZRandMember, "@read @sortedset @slow", "Returns one or more random members from a sorted set.");
  add("zunion", -3, R, 1, 1, ZUnion, "@read @sortedset @slow", "Returns the union of multiple sorted sets.", KeysAt1);
  add("zinter", -3, R, 1, 1, ZInter, "@read @sortedset @slow", "Returns the intersect of multiple sorted sets.", KeysAt1);
  add("zdiff", -3, R, 1, 1, ZDiff, "@read @sortedset @slow", "Returns the difference between multiple sorted sets.", KeysAt1);
  add("zunionstore", -4, W | M, 1, 1, ZUnionStore, "@write @sortedset @slow", "Stores the union of multiple sorted sets in a key.", StoreKeys);
  add("zinterstore", -4, W | M, 1, 1, ZInterStore, "@write @sortedset @slow", "Stores the intersect of multiple sorted sets in a key.", StoreKeys);
  add("zdiffstore", -4, W | M, 1, 1, ZDiffStore, "@write @sortedset @slow", "Stores the difference of multiple sorted sets in a key.", StoreKeys);
  add("zintercard", -3, R, 1, 1, ZInterCard, "@read @sortedset @slow", "Returns the number of members of the intersect of multiple sorted sets.", KeysAt1);
  add("zscan", -3, R, 1, 1, ZScan, "@read @sortedset @slow", "Iterates over members and scores of a sorted set.");
}

}  // namespace larder
