// List commands. Values are ListValue objects (keyspace/list_value.h).
// Commands over keys on different shards (LMOVE, RPOPLPUSH, LMPOP) run as
// exclusive operations and reach every key through ctx.DbFor().
#include <algorithm>
#include <climits>
#include <vector>

#include "engine/blocking.h"
#include "commands/families.h"
#include "engine/command.h"
#include "commands/list_family.h"
#include "commands/lookup.h"
#include "common/numbers.h"
#include "common/strings.h"
#include "keyspace/list_value.h"
#include "engine/engine.h"
#include "shard/shard.h"

namespace larder {

// list-max-listpack-size and list-compress-depth, which a list takes when it
// is made (as Redis's).
ListValue* NewList(const Config& c) {
  return new ListValue(static_cast<int>(c.list_max_listpack_size.load()),
                       static_cast<int>(std::min<int64_t>(c.list_compress_depth.load(), INT_MAX)));
}

namespace {

bool Lookup(CommandContext& ctx, std::string_view key, ListValue** out, bool write = false) {
  return LookupObject<ListValue, ObjType::kList>(ctx, key, out, write);
}

ListValue* LookupOrCreateList(CommandContext& ctx, std::string_view key) {
  ListValue* l;
  if (!Lookup(ctx, key, &l, true)) return nullptr;
  if (l) return l;
  l = NewList(ctx.engine->config());
  ctx.DbFor(key).Add(NewObjectEntry(key, ObjType::kList, l, -1));
  return l;
}

// Parses LEFT/RIGHT.
bool ParseWhere(std::string_view s, bool* left) {
  if (EqualsIgnoreCase(s, "left")) *left = true;
  else if (EqualsIgnoreCase(s, "right")) *left = false;
  else return false;
  return true;
}

void PushGeneric(CommandContext& ctx, bool left, bool only_existing) {
  std::string_view key = ctx.arg(1);
  ListValue* l;
  if (only_existing) {
    if (!Lookup(ctx, key, &l, true)) return;
    if (!l) return ctx.rb->Integer(0);
  } else {
    l = LookupOrCreateList(ctx, key);
    if (!l) return;
  }
  for (size_t i = 2; i < ctx.argc(); ++i) {
    if (left) l->PushFront(ctx.arg(i));
    else l->PushBack(ctx.arg(i));
  }
  NotifyKeyspaceEvent(ctx, kNotifyList, left ? "lpush" : "rpush", key);
  ctx.rb->Integer(static_cast<int64_t>(l->size()));
  SignalKeyReady(ctx, key);
}
void LPush(CommandContext& ctx) { PushGeneric(ctx, true, false); }
void RPush(CommandContext& ctx) { PushGeneric(ctx, false, false); }
void LPushX(CommandContext& ctx) { PushGeneric(ctx, true, true); }
void RPushX(CommandContext& ctx) { PushGeneric(ctx, false, true); }

void PopGeneric(CommandContext& ctx, bool left) {
  int64_t count = -1;
  if (ctx.argc() > 3) return ctx.ArityError();
  if (ctx.argc() == 3) {
    if (!ParseInt64(ctx.arg(2), &count) || count < 0) return ctx.Error(OpStatus::kValueNotPositive);
  }
  ListValue* l;
  if (!Lookup(ctx, ctx.arg(1), &l, true)) return;
  if (!l) return count < 0 ? ctx.rb->Null() : ctx.rb->NullArray();
  if (count == 0) return ctx.rb->EmptyArray();
  auto popped = PopElements(l, left, count < 0 ? 1 : static_cast<size_t>(count));
  NotifyKeyspaceEvent(ctx, kNotifyList, left ? "lpop" : "rpop", ctx.arg(1));
  DeleteIfEmpty(ctx, ctx.arg(1), l);
  if (count < 0) return ctx.rb->Bulk(popped[0]);
  ctx.rb->ArrayHeader(popped.size());
  for (const auto& s : popped) ctx.rb->Bulk(s);
}
void LPop(CommandContext& ctx) { PopGeneric(ctx, true); }
void RPop(CommandContext& ctx) { PopGeneric(ctx, false); }

void LLen(CommandContext& ctx) {
  ListValue* l;
  if (!Lookup(ctx, ctx.arg(1), &l)) return;
  ctx.rb->Integer(l ? static_cast<int64_t>(l->size()) : 0);
}

// Normalises [start, stop] against `len` as LRANGE/LTRIM do; false if empty.
bool NormaliseRange(int64_t len, int64_t* start, int64_t* stop) {
  if (*start < 0) *start += len;
  if (*stop < 0) *stop += len;
  if (*start < 0) *start = 0;
  if (*start > *stop || *start >= len) return false;
  if (*stop >= len) *stop = len - 1;
  return true;
}

void LRange(CommandContext& ctx) {
  int64_t start, stop;
  if (!ParseInt64(ctx.arg(2), &start) || !ParseInt64(ctx.arg(3), &stop)) return ctx.Error(OpStatus::kNotAnInteger);
  ListValue* l;
  if (!Lookup(ctx, ctx.arg(1), &l)) return;
  if (!l || !NormaliseRange(static_cast<int64_t>(l->size()), &start, &stop)) return ctx.rb->EmptyArray();
  auto n = static_cast<size_t>(stop - start + 1);
  ctx.rb->ArrayHeader(n);
  l->Walk(static_cast<size_t>(start), false, [&](std::string_view v) {
    ctx.rb->Bulk(v);
    return --n > 0;
  });
}

void LIndex(CommandContext& ctx) {
  int64_t idx;
  if (!ParseInt64(ctx.arg(2), &idx)) return ctx.Error(OpStatus::kNotAnInteger);
  ListValue* l;
  if (!Lookup(ctx, ctx.arg(1), &l)) return;
  if (!l) return ctx.rb->Null();
  auto len = static_cast<int64_t>(l->size());
  if (idx < 0) idx += len;
  if (idx < 0 || idx >= len) return ctx.rb->Null();
  ctx.rb->Bulk(l->At(static_cast<size_t>(idx)));
}

void LSet(CommandContext& ctx) {
  int64_t idx;
  if (!ParseInt64(ctx.arg(2), &idx)) return ctx.Error(OpStatus::kNotAnInteger);
  ListValue* l;
  if (!Lookup(ctx, ctx.arg(1), &l, true)) return;
  if (!l) return ctx.Error(OpStatus::kNoSuchKey);
  auto len = static_cast<int64_t>(l->size());
  if (idx < 0) idx += len;
  if (idx < 0 || idx >= len) return ctx.Error(OpStatus::kOutOfRange);
  l->Set(static_cast<size_t>(idx), ctx.arg(3));
  NotifyKeyspaceEvent(ctx, kNotifyList, "lset", ctx.arg(1));
  ctx.rb->Ok();
}

void LInsert(CommandContext& ctx) {
  bool after;
  if (EqualsIgnoreCase(ctx.arg(2), "after")) after = true;
  else if (EqualsIgnoreCase(ctx.arg(2), "before")) after = false;
  else return ctx.SyntaxError();
  ListValue* l;
  if (!Lookup(ctx, ctx.arg(1), &l, true)) return;
  if (!l) return ctx.rb->Integer(0);
  size_t at = 0;
  bool found = false;
  l->Walk(0, false, [&](std::string_view v) {
    found = v == ctx.arg(3);
    if (!found) ++at;
    return !found;
  });
  if (!found) return ctx.rb->Integer(-1);
  l->Insert(after ? at + 1 : at, ctx.arg(4));
  NotifyKeyspaceEvent(ctx, kNotifyList, "linsert", ctx.arg(1));
  ctx.rb->Integer(static_cast<int64_t>(l->size()));
}

void LRem(CommandContext& ctx) {
  int64_t count;
  if (!ParseInt64(ctx.arg(2), &count)) return ctx.Error(OpStatus::kNotAnInteger);
  ListValue* l;
  if (!Lookup(ctx, ctx.arg(1), &l, true)) return;
  if (!l) return ctx.rb->Integer(0);
  std::string_view v = ctx.arg(3);
  // The matches to drop (from the end when COUNT is negative), then one
  // pass that keeps the rest: O(N) however many go.
  std::vector<size_t> drop;
  bool rev = count < 0;
  uint64_t limit = count == 0 ? UINT64_MAX : rev ? -static_cast<uint64_t>(count) : static_cast<uint64_t>(count);
  size_t n = 0, len = l->size();
  l->Walk(0, rev, [&](std::string_view x) {
    if (x == v) drop.push_back(rev ? len - 1 - n : n);
    ++n;
    return drop.size() < limit;
  });
  auto removed = static_cast<int64_t>(drop.size());
  if (removed) {
    if (rev) std::reverse(drop.begin(), drop.end());
    ListValue kept(l->fill(), l->depth());
    size_t i = 0, d = 0;
    l->ForEach([&](std::string_view x) {
      if (d < drop.size() && drop[d] == i) ++d;
      else kept.PushBack(x);
      ++i;
    });
    *static_cast<QuickList*>(l) = std::move(kept);
  }
  if (removed) NotifyKeyspaceEvent(ctx, kNotifyList, "lrem", ctx.arg(1));
  DeleteIfEmpty(ctx, ctx.arg(1), l);
  ctx.rb->Integer(removed);
}

void LTrim(CommandContext& ctx) {
  int64_t start, stop;
  if (!ParseInt64(ctx.arg(2), &start) || !ParseInt64(ctx.arg(3), &stop)) return ctx.Error(OpStatus::kNotAnInteger);
  ListValue* l;
  if (!Lookup(ctx, ctx.arg(1), &l, true)) return;
  if (!l) return ctx.rb->Ok();
  auto len = static_cast<int64_t>(l->size());
  if (!NormaliseRange(len, &start, &stop)) {
    l->Clear();
  } else {
    l->Erase(static_cast<size_t>(stop + 1), static_cast<size_t>(len - stop - 1));
    l->Erase(0, static_cast<size_t>(start));
  }
  NotifyKeyspaceEvent(ctx, kNotifyList, "ltrim", ctx.arg(1));
  DeleteIfEmpty(ctx, ctx.arg(1), l);
  ctx.rb->Ok();
}

void LPos(CommandContext& ctx) {
  int64_t rank = 1, count = -1, maxlen = 0;
  for (size_t j = 3; j < ctx.argc(); ++j) {
    std::string_view o = ctx.arg(j);
    bool more = j + 1 < ctx.argc();
    if (EqualsIgnoreCase(o, "rank") && more) {
      if (!ParseInt64(ctx.arg(++j), &rank)) return ctx.Error(OpStatus::kNotAnInteger);
      if (rank == 0)
        return ctx.Error(OpStatus::kRankZero);
    } else if (EqualsIgnoreCase(o, "count") && more) {
      if (!ParseInt64(ctx.arg(++j), &count)) return ctx.Error(OpStatus::kNotAnInteger);
      if (count < 0) return ctx.Error(OpStatus::kCountNegative);
    } else if (EqualsIgnoreCase(o, "maxlen") && more) {
      if (!ParseInt64(ctx.arg(++j), &maxlen)) return ctx.Error(OpStatus::kNotAnInteger);
      if (maxlen < 0) return ctx.Error(OpStatus::kMaxlenNegative);
    } else {
      return ctx.SyntaxError();
    }
  }
  ListValue* l;
  if (!Lookup(ctx, ctx.arg(1), &l)) return;
  bool want_array = count >= 0;
  if (!l) return want_array ? ctx.rb->EmptyArray() : ctx.rb->Null();
  std::vector<int64_t> found;
  auto len = static_cast<int64_t>(l->size());
  bool reverse = rank < 0;
  // Matches to skip before reporting: |rank| - 1. Redis's negation of
  // LLONG_MIN overflows into "no skip"; answer the same.
  uint64_t skip = rank == LLONG_MIN ? 0 : reverse ? static_cast<uint64_t>(-(rank + 1)) : static_cast<uint64_t>(rank - 1);
  int64_t limit = count < 0 ? 1 : count;  // COUNT 0: all matches
  std::string_view v = ctx.arg(2);
  int64_t n = 0;
  l->Walk(0, reverse, [&](std::string_view x) {
    if (maxlen != 0 && n >= maxlen) return false;
    int64_t i = reverse ? len - 1 - n : n;
    ++n;
    if (x != v) return true;
    if (skip > 0) {
      --skip;
      return true;
    }
    found.push_back(i);
    return !(limit != 0 && static_cast<int64_t>(found.size()) >= limit);
  });
  if (!want_array) return found.empty() ? ctx.rb->Null() : ctx.rb->Integer(found[0]);
  ctx.rb->ArrayHeader(found.size());
  for (int64_t i : found) ctx.rb->Integer(i);
}

void MoveGeneric(CommandContext& ctx, bool from_left, bool to_left) {
  std::string_view src = ctx.arg(1), dst = ctx.arg(2);
  ListValue *from, *to;
  if (!Lookup(ctx, src, &from, true)) return;
  if (!from) return ctx.rb->Null();
  if (!Lookup(ctx, dst, &to, true)) return;
  std::string v = PopElements(from, from_left, 1)[0];
  if (!to) to = LookupOrCreateList(ctx, dst);
  if (to_left) to->PushFront(v);
  else to->PushBack(v);
  // As Redis: the push, then the pop, then the source's deletion.
  NotifyKeyspaceEvent(ctx, kNotifyList, to_left ? "lpush" : "rpush", dst);
  NotifyKeyspaceEvent(ctx, kNotifyList, from_left ? "lpop" : "rpop", src);
  if (from != to) DeleteIfEmpty(ctx, src, from);
  SignalKeyReady(ctx, dst);
  ctx.rb->Bulk(v);
}

void LMove(CommandContext& ctx) {
  bool from_left, to_left;
  if (!ParseWhere(ctx.arg(3), &from_left) || !ParseWhere(ctx.arg(4), &to_left)) return ctx.SyntaxError();
  MoveGeneric(ctx, from_left, to_left);
}
void RPopLPush(CommandContext& ctx) { MoveGeneric(ctx, false, true); }

void LMPop(CommandContext& ctx) {
  LMPopRequest req;
  if (!ParseLMPop(ctx, 1, &req)) return;
  if (!ServeLMPop(ctx, req)) ctx.rb->NullArray();
}

std::vector<size_t> LMPopKeys(std::span<const std::string_view> args) { return NumKeysAt(args, 1); }
std::vector<size_t> BLMPopKeys(std::span<const std::string_view> args) { return NumKeysAt(args, 2); }

void BPopGeneric(CommandContext& ctx, bool left) {
  int64_t timeout;
  if (!ParseBlockTimeout(ctx, ctx.arg(ctx.argc() - 1), &timeout)) return;
  std::vector<std::string> keys;
  for (size_t i = 1; i + 1 < ctx.argc(); ++i) {
    std::string_view key = ctx.arg(i);
    keys.emplace_back(key);
    bool failed;
    Entry* e = PopCandidate(ctx, key, ObjType::kList, &failed);
    if (failed) return;
    if (!e) continue;
    auto* l = ObjectOf<ListValue>(e);
    std::string v = PopElements(l, left, 1)[0];
    NotifyKeyspaceEvent(ctx, kNotifyList, left ? "lpop" : "rpop", key);
    DeleteIfEmpty(ctx, key, l);
    if (ctx.propagation) ctx.Propagate({left ? "LPOP" : "RPOP", key});  // its non-blocking form, as Redis
    ctx.rb->ArrayHeader(2);
    ctx.rb->Bulk(key);
    ctx.rb->Bulk(v);
    return;
  }
  if (Serving(ctx)) return;
  RequestBlock(ctx, timeout, std::move(keys));
}
void BLPop(CommandContext& ctx) { BPopGeneric(ctx, true); }
void BRPop(CommandContext& ctx) { BPopGeneric(ctx, false); }

void BMoveGeneric(CommandContext& ctx, bool from_left, bool to_left, std::string_view timeout_arg) {
  int64_t timeout;
  if (!ParseBlockTimeout(ctx, timeout_arg, &timeout)) return;
  std::string_view src = ctx.arg(1), dst = ctx.arg(2);
  // (Served with every shard of src and dst parked: engine/blocking.h.)
  Entry* se = YieldsToWaiters(ctx, src) ? nullptr : ctx.DbFor(src).FindWrite(src);
  if (se && se->type != ObjType::kList) {
    if (Serving(ctx)) return;
    return ctx.Error(OpStatus::kWrongType);
  }
  if (!se) {
    if (Serving(ctx)) return;
    return RequestBlock(ctx, timeout, {std::string(src)});
  }
  if (ctx.propagation) {  // logged in its non-blocking form, as Redis
    if (EqualsIgnoreCase(ctx.arg(0), "brpoplpush")) ctx.Propagate({"RPOPLPUSH", src, dst});
    else ctx.Propagate({"LMOVE", src, dst, from_left ? "LEFT" : "RIGHT", to_left ? "LEFT" : "RIGHT"});
  }
  MoveGeneric(ctx, from_left, to_left);
}

void BLMove(CommandContext& ctx) {
  bool from_left, to_left;
  if (!ParseWhere(ctx.arg(3), &from_left) || !ParseWhere(ctx.arg(4), &to_left)) return ctx.SyntaxError();
  BMoveGeneric(ctx, from_left, to_left, ctx.arg(5));
}
void BRPopLPush(CommandContext& ctx) { BMoveGeneric(ctx, false, true, ctx.arg(3)); }

void BLMPop(CommandContext& ctx) {
  int64_t timeout;
  if (!ParseBlockTimeout(ctx, ctx.arg(1), &timeout)) return;
  LMPopRequest req;
  if (!ParseLMPop(ctx, 2, &req)) return;
  if (Serving(ctx)) {
    std::erase_if(req.keys, [&](std::string_view k) {
      if (!LocalForServing(ctx, k)) return true;
      Entry* e = ctx.DbFor(k).Find(k);
      return e && e->type != ObjType::kList;
    });
  }
  std::vector<std::string> keys(req.keys.begin(), req.keys.end());  // what it waits on, if it blocks
  std::erase_if(req.keys, [&](std::string_view k) { return YieldsToWaiters(ctx, k); });
  if (ServeLMPop(ctx, req)) {
    if (ctx.propagation) {  // logged as LMPOP (the timeout dropped)
      std::vector<std::string_view> argv{"LMPOP"};
      for (size_t i = 2; i < ctx.argc(); ++i) argv.push_back(ctx.arg(i));
      ctx.Propagate(argv);
    }
    return;
  }
  if (Serving(ctx)) return;
  RequestBlock(ctx, timeout, std::move(keys));
}

}  // namespace

std::vector<std::string> PopElements(ListValue* l, bool left, size_t count) {
  std::vector<std::string> out;
  count = std::min(count, l->size());
  out.reserve(count);
  for (size_t i = 0; i < count; ++i) {
    if (left) {
      out.push_back(l->PopFront());
    } else {
      out.push_back(l->PopBack());
    }
  }
  return out;
}

bool ParseLMPop(CommandContext& ctx, size_t numkeys_pos, LMPopRequest* req) {
  int64_t n;
  if (!ParseInt64(ctx.arg(numkeys_pos), &n) || n <= 0) {
    ctx.Error(OpStatus::kNumkeysNotPositive);
    return false;
  }
  size_t where = numkeys_pos + 1 + static_cast<size_t>(n);
  if (static_cast<uint64_t>(n) > ctx.argc() || where >= ctx.argc() || !ParseWhere(ctx.arg(where), &req->left)) {
    ctx.SyntaxError();
    return false;
  }
  req->count = 1;
  for (size_t j = where + 1; j < ctx.argc(); ++j) {
    if (EqualsIgnoreCase(ctx.arg(j), "count") && j + 1 < ctx.argc() && !req->has_count) {
      int64_t c;
      if (!ParseInt64(ctx.arg(++j), &c) || c <= 0) {
        ctx.Error(OpStatus::kCountNotPositive);
        return false;
      }
      req->count = c;
      req->has_count = true;
    } else {
      ctx.SyntaxError();
      return false;
    }
  }
  req->keys.clear();
  for (size_t i = 0; i < static_cast<size_t>(n); ++i) req->keys.push_back(ctx.arg(numkeys_pos + 1 + i));
  return true;
}

bool ServeLMPop(CommandContext& ctx, const LMPopRequest& req) {
  for (std::string_view key : req.keys) {
    ListValue* l;
    if (!Lookup(ctx, key, &l, true)) return true;  // WRONGTYPE written
    if (!l) continue;
    auto popped = PopElements(l, req.left, static_cast<size_t>(req.count));
    NotifyKeyspaceEvent(ctx, kNotifyList, req.left ? "lpop" : "rpop", key);
    DeleteIfEmpty(ctx, key, l);
    ctx.rb->ArrayHeader(2);
    ctx.rb->Bulk(key);
    ctx.rb->ArrayHeader(popped.size());
    for (const auto& s : popped) ctx.rb->Bulk(s);
    return true;
  }
  return false;
}

void RegisterListFamily(CommandRegistry* r) {
  constexpr uint32_t W = kCmdWrite, R = kCmdReadOnly, M = kCmdDenyOom, F = kCmdFast;
  auto add = [r](const char* name, int arity, uint32_t flags, int first, int last, Handler h, const char* acl,
                 const char* summary) {
    r->Add(MakeCommand(name, arity, flags, first, last, 1, h, acl, summary, "list"));
  };
  add("lpush", -3, W | M | F, 1, 1, LPush, "@write @list @fast", "Prepends one or more elements to a list.");
  add("rpush", -3, W | M | F, 1, 1, RPush, "@write @list @fast", "Appends one or more elements to a list.");
  add("lpushx", -3, W | M | F, 1, 1, LPushX, "@write @list @fast", "Prepends one or more elements to a list only when the list exists.");
  add("rpushx", -3, W | M | F, 1, 1, RPushX, "@write @list @fast", "Appends an element to a list only when the list exists.");
  add("lpop", -2, W | F, 1, 1, LPop, "@write @list @fast", "Returns the first elements in a list after removing it.");
  add("rpop", -2, W | F, 1, 1, RPop, "@write @list @fast", "Returns and removes the last elements of a list.");
  add("llen", 2, R | F, 1, 1, LLen, "@read @list @fast", "Returns the length of a list.");
  add("lrange", 4, R, 1, 1, LRange, "@read @list @slow", "Returns a range of elements from a list.");
  add("lindex", 3, R, 1, 1, LIndex, "@read @list @slow", "Returns an element from a list by its index.");
  add("lset", 4, W | M, 1, 1, LSet, "@write @list @slow", "Sets the value of an element in a list by its index.");
  add("linsert", 5, W | M, 1, 1, LInsert, "@write @list @slow", "Inserts an element before or after another element in a list.");
  add("lrem", 4, W, 1, 1, LRem, "@write @list @slow", "Removes elements from a list.");
  add("ltrim", 4, W, 1, 1, LTrim, "@write @list @slow", "Removes elements from both ends a list.");
  add("lpos", -3, R, 1, 1, LPos, "@read @list @slow", "Returns the index of matching elements in a list.");
  add("lmove", 5, W | M, 1, 2, LMove, "@write @list @slow", "Returns an element after popping it from one list and pushing it to another.");
  add("rpoplpush", 3, W | M, 1, 2, RPopLPush, "@write @list @slow", "Returns the last element of a list after removing and pushing it to another list.");
  constexpr uint32_t B = kCmdBlocking, NS = kCmdNoScript;
  add("blpop", -3, W | NS | B, 1, -2, BLPop, "@write @list @slow @blocking", "Removes and returns the first element in a list. Blocks until an element is available otherwise.");
  add("brpop", -3, W | NS | B, 1, -2, BRPop, "@write @list @slow @blocking", "Removes and returns the last element in a list. Blocks until an element is available otherwise.");
  add("blmove", 6, W | M | NS | B, 1, 2, BLMove, "@write @list @slow @blocking", "Pops an element from a list, pushes it to another list and returns it. Blocks until an element is available otherwise.");
  add("brpoplpush", 4, W | M | NS | B, 1, 2, BRPopLPush, "@write @list @slow @blocking", "Pops an element from a list, pushes it to another list and returns it. Block until an element is available otherwise.");
  {
    CommandSpec b = MakeCommand("blmpop", -5, W | B, 2, 2, 1, BLMPop, "@write @list @slow @blocking",
                                "Pops the first element from one of multiple lists. Blocks until an element is "
                                "available otherwise.", "list");
    b.get_keys = BLMPopKeys;
    b.since = "7.0.0";
    r->Add(std::move(b));
  }
  CommandSpec s = MakeCommand("lmpop", -4, W, 1, 1, 1, LMPop, "@write @list @slow",
                              "Returns multiple elements from a list after removing them.", "list");
  s.get_keys = LMPopKeys;
  s.since = "7.0.0";
  r->Add(std::move(s));
}

}  // namespace larder
