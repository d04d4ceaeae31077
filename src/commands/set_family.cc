// Set commands. Values are SetValue objects (keyspace/set_value.h). Commands
// over several keys on different shards run as exclusive operations, so the
// handlers reach every key through ctx.DbFor().
#include <algorithm>
#include <climits>
#include <memory>
#include <vector>

#include "commands/families.h"
#include "engine/command.h"
#include "commands/lookup.h"
#include "common/glob.h"
#include "common/numbers.h"
#include "common/strings.h"
#include "keyspace/set_value.h"
#include "engine/engine.h"
#include "shard/shard.h"

namespace larder {

namespace {

size_t MaxIntset(CommandContext& ctx) {
  return static_cast<size_t>(ctx.engine->config().set_max_intset_entries.load(std::memory_order_relaxed));
}

bool Lookup(CommandContext& ctx, std::string_view key, SetValue** out, bool write = false) {
  return LookupObject<SetValue, ObjType::kSet>(ctx, key, out, write);
}

// Replaces `key` with a set of `members` (deleted if empty): the STORE
// variants, announced as `event` (or "del" when an emptied key goes).
void StoreSet(CommandContext& ctx, std::string_view key, const std::vector<std::string>& members,
              std::string_view event) {
  Db& db = ctx.DbFor(key);
  bool existed = db.Delete(key);
  if (members.empty()) {
    if (existed) NotifyKeyspaceEvent(ctx, kNotifyGeneric, "del", key);
    return;
  }
  auto* s = new SetValue();
  size_t max = MaxIntset(ctx);
  for (const auto& m : members) s->Add(m, max);
  Entry* e = NewObjectEntry(key, ObjType::kSet, s, -1);
  if (existed) db.AddQuiet(e);  // an overwrite: not a new key
  else db.Add(e);
  NotifyKeyspaceEvent(ctx, kNotifySet, event, key);
}

void ReplyMembers(CommandContext& ctx, const std::vector<std::string>& members) {
  ctx.rb->SetHeader(members.size());
  for (const auto& m : members) ctx.rb->Bulk(m);
}

void SAdd(CommandContext& ctx) {
  auto* s = LookupOrCreateObject<SetValue, ObjType::kSet>(ctx, ctx.arg(1));
  if (!s) return;
  size_t max = MaxIntset(ctx);
  int64_t n = 0;
  for (size_t i = 2; i < ctx.argc(); ++i) n += s->Add(ctx.arg(i), max);
  if (n) NotifyKeyspaceEvent(ctx, kNotifySet, "sadd", ctx.arg(1));
  ctx.rb->Integer(n);
}

void SRem(CommandContext& ctx) {
  SetValue* s;
  if (!Lookup(ctx, ctx.arg(1), &s, true)) return;
  if (!s) return ctx.rb->Integer(0);
  int64_t n = 0;
  for (size_t i = 2; i < ctx.argc(); ++i) n += s->Remove(ctx.arg(i));
  if (n) NotifyKeyspaceEvent(ctx, kNotifySet, "srem", ctx.arg(1));
  DeleteIfEmpty(ctx, ctx.arg(1), s);
  ctx.rb->Integer(n);
}

void SCard(CommandContext& ctx) {
  SetValue* s;
  if (!Lookup(ctx, ctx.arg(1), &s)) return;
  ctx.rb->Integer(s ? static_cast<int64_t>(s->size()) : 0);
}

void SIsMember(CommandContext& ctx) {
  SetValue* s;
  if (!Lookup(ctx, ctx.arg(1), &s)) return;
  ctx.rb->Integer(s && s->Contains(ctx.arg(2)) ? 1 : 0);
}

void SMIsMember(CommandContext& ctx) {
  SetValue* s;
  if (!Lookup(ctx, ctx.arg(1), &s)) return;
  ctx.rb->ArrayHeader(ctx.argc() - 2);
  for (size_t i = 2; i < ctx.argc(); ++i) ctx.rb->Integer(s && s->Contains(ctx.arg(i)) ? 1 : 0);
}

void SMembers(CommandContext& ctx) {
  SetValue* s;
  if (!Lookup(ctx, ctx.arg(1), &s)) return;
  if (!s) return ctx.rb->SetHeader(0);
  ReplyMembers(ctx, s->Members());
}

void SRandMember(CommandContext& ctx) {
  if (ctx.argc() > 3) return ctx.SyntaxError();
  SetValue* s;
  if (ctx.argc() == 2) {
    if (!Lookup(ctx, ctx.arg(1), &s)) return;
    if (!s) return ctx.rb->Null();
    return ctx.rb->Bulk(s->RandomMember(ctx.shard->rng()));
  }
  int64_t l;
  if (!ParseInt64(ctx.arg(2), &l)) return ctx.Error(OpStatus::kNotAnInteger);
  if (l < -LLONG_MAX)
    return ctx.Error(OpStatus::kCountOutOfRange);
  if (!Lookup(ctx, ctx.arg(1), &s)) return;
  if (!s || l == 0) return ctx.rb->EmptyArray();
  auto& rng = ctx.shard->rng();
  auto picked = RandomPicks<std::string>(
      ctx, l, s->size(), rng, [&] { return s->RandomMember(rng); }, [&] { return s->Members(); },
      [](const std::string& m) { return std::string_view(m); });
  ctx.rb->ArrayHeader(picked.size());
  for (const auto& m : picked) ctx.rb->Bulk(m);
}

void SPop(CommandContext& ctx) {
  if (ctx.argc() > 3) return ctx.SyntaxError();
  int64_t count = -1;
  if (ctx.argc() == 3) {
    if (!ParseInt64(ctx.arg(2), &count) || count < 0) return ctx.Error(OpStatus::kValueNotPositive);
  }
  SetValue* s;
  if (!Lookup(ctx, ctx.arg(1), &s, true)) return;
  if (!s) {
    ctx.PropagateNothing();  // nothing changed: nothing logged
    return count < 0 ? ctx.rb->Null() : ctx.rb->SetHeader(0);
  }
  auto& rng = ctx.shard->rng();
  if (count < 0) {
    std::string m = s->PopRandom(rng);
    NotifyKeyspaceEvent(ctx, kNotifySet, "spop", ctx.arg(1));
    if (ctx.propagation) ctx.Propagate({"SREM", ctx.arg(1), m});  // the member it drew, as Redis
    DeleteIfEmpty(ctx, ctx.arg(1), s);
    return ctx.rb->Bulk(m);
  }
  std::vector<std::string> all;
  if (static_cast<uint64_t>(count) >= s->size()) {
    all = s->Members();
    for (const auto& m : all) s->Remove(m);
  } else {
    all.reserve(static_cast<size_t>(count));
    for (int64_t i = 0; i < count; ++i) all.push_back(s->PopRandom(rng));
  }
  size_t n = all.size();
  if (n) NotifyKeyspaceEvent(ctx, kNotifySet, "spop", ctx.arg(1));
  // Logged as what it removed: DEL when it took the whole set, else SREM
  // of the members drawn (Redis 7.0: one SREM per member).
  ctx.PropagateNothing();
  if (ctx.propagation && n) {
    if (s->size() == 0) {
      ctx.Propagate({"DEL", ctx.arg(1)});
    } else {
      for (const auto& m : all) ctx.Propagate({"SREM", ctx.arg(1), m});
    }
  }
  DeleteIfEmpty(ctx, ctx.arg(1), s);
  ReplyMembers(ctx, all);
}

void SMove(CommandContext& ctx) {
  std::string_view src = ctx.arg(1), dst = ctx.arg(2), m = ctx.arg(3);
  SetValue *from, *to;
  Entry* se = ctx.DbFor(src).FindWrite(src);
  Entry* de = ctx.DbFor(dst).FindWrite(dst);
  if (!se) return ctx.rb->Integer(0);
  if (se->type != ObjType::kSet || (de && de->type != ObjType::kSet)) return ctx.Error(OpStatus::kWrongType);
  from = ObjectOf<SetValue>(se);
  to = de ? ObjectOf<SetValue>(de) : nullptr;
  if (from == to) return ctx.rb->Integer(from->Contains(m) ? 1 : 0);
  if (!from->Remove(m)) return ctx.rb->Integer(0);
  NotifyKeyspaceEvent(ctx, kNotifySet, "srem", src);
  DeleteIfEmpty(ctx, src, from);
  if (!to) {
    to = new SetValue();
    ctx.DbFor(dst).Add(NewObjectEntry(dst, ObjType::kSet, to, -1));
  }
  if (to->Add(m, MaxIntset(ctx))) NotifyKeyspaceEvent(ctx, kNotifySet, "sadd", dst);
  ctx.rb->Integer(1);
}

enum class SetOp { kInter, kUnion, kDiff };

// Loads the sets at args[first..last]; missing keys are empty (null). False
// (WRONGTYPE written) on a type clash.
bool LoadSets(CommandContext& ctx, size_t first, size_t last, std::vector<SetValue*>* sets) {
  for (size_t i = first; i <= last; ++i) {
    SetValue* s;
    if (!Lookup(ctx, ctx.arg(i), &s)) return false;
    sets->push_back(s);
  }
  return true;
}

std::vector<std::string> Compute(SetOp op, const std::vector<SetValue*>& sets, size_t limit = 0) {
  std::vector<std::string> out;
  if (op == SetOp::kInter) {
    for (auto* s : sets)
      if (!s) return out;
    // Walk the smallest set, probe the others.
    std::vector<SetValue*> sorted(sets);
    std::sort(sorted.begin(), sorted.end(), [](auto* a, auto* b) { return a->size() < b->size(); });
    sorted[0]->ForEach([&](std::string_view m) {
      if (limit && out.size() >= limit) return;
      for (size_t i = 1; i < sorted.size(); ++i)
        if (!sorted[i]->Contains(m)) return;
      out.emplace_back(m);
    });
    return out;
  }
  if (op == SetOp::kUnion) {
    SetValue acc;
    for (auto* s : sets)
      if (s) s->ForEach([&](std::string_view m) { acc.Add(m, SIZE_MAX); });
    return acc.Members();
  }
  if (!sets[0]) return out;
  sets[0]->ForEach([&](std::string_view m) {
    for (size_t i = 1; i < sets.size(); ++i)
      if (sets[i] && sets[i]->Contains(m)) return;
    out.emplace_back(m);
  });
  return out;
}

void SetOpCommand(CommandContext& ctx, SetOp op, bool store) {
  size_t first = store ? 2 : 1;
  std::vector<SetValue*> sets;
  if (!LoadSets(ctx, first, ctx.argc() - 1, &sets)) return;
  auto result = Compute(op, sets);
  if (!store) return ReplyMembers(ctx, result);
  StoreSet(ctx, ctx.arg(1), result,
           op == SetOp::kInter ? "sinterstore" : op == SetOp::kUnion ? "sunionstore" : "sdiffstore");
  ctx.rb->Integer(static_cast<int64_t>(result.size()));
}
void SInter(CommandContext& ctx) { SetOpCommand(ctx, SetOp::kInter, false); }
void SInterStore(CommandContext& ctx) { SetOpCommand(ctx, SetOp::kInter, true); }
void SUnion(CommandContext& ctx) { SetOpCommand(ctx, SetOp::kUnion, false); }
void SUnionStore(CommandContext& ctx) { SetOpCommand(ctx, SetOp::kUnion, true); }
void SDiff(CommandContext& ctx) { SetOpCommand(ctx, SetOp::kDiff, false); }
void SDiffStore(CommandContext& ctx) { SetOpCommand(ctx, SetOp::kDiff, true); }

void SInterCard(CommandContext& ctx) {
  int64_t numkeys;
  if (!ParseInt64(ctx.arg(1), &numkeys) || numkeys <= 0) return ctx.Error(OpStatus::kNumkeysNotPositive);
  if (static_cast<uint64_t>(numkeys) > ctx.argc() - 2)
    return ctx.Error(OpStatus::kNumkeysTooBig);
  size_t limit = 0;
  for (size_t j = 2 + static_cast<size_t>(numkeys); j < ctx.argc(); ++j) {
    if (EqualsIgnoreCase(ctx.arg(j), "limit") && j + 1 < ctx.argc()) {
      int64_t l;
      if (!ParseInt64(ctx.arg(++j), &l) || l < 0) return ctx.Error(OpStatus::kLimitNegative);
      limit = static_cast<size_t>(l);
    } else {
      return ctx.SyntaxError();
    }
  }
  std::vector<SetValue*> sets;
  if (!LoadSets(ctx, 2, 1 + static_cast<size_t>(numkeys), &sets)) return;
  ctx.rb->Integer(static_cast<int64_t>(Compute(SetOp::kInter, sets, limit).size()));
}

// SSCAN: an intset answers in one call (cursor 0); a hash set a bucket
// position at a time (ScanCollection).
void SScan(CommandContext& ctx) {
  CollectionScanArgs scan;
  if (!ParseCollectionScan(ctx, &scan)) return;
  SetValue* s;
  if (!Lookup(ctx, ctx.arg(1), &s)) return;
  std::vector<std::string> out;
  uint64_t next = 0;
  if (s && s->is_table()) {
    size_t found = 0;
    next = ScanCollection(scan, found, [&](uint64_t c) {
      return s->Scan(c, [&](std::string_view m) {
        ++found;
        if (!scan.has_pattern || GlobMatch(scan.pattern, m)) out.emplace_back(m);
      });
    });
  } else if (s) {
    s->ForEach([&](std::string_view m) {
      if (!scan.has_pattern || GlobMatch(scan.pattern, m)) out.emplace_back(m);
    });
  }
  ctx.rb->ArrayHeader(2);
  ctx.rb->Bulk(std::to_string(next));
  ctx.rb->ArrayHeader(out.size());
  for (const auto& m : out) ctx.rb->Bulk(m);
}

std::vector<size_t> SInterCardKeys(std::span<const std::string_view> args) { return NumKeysAt(args, 1); }

}  // namespace

void RegisterSetFamily(CommandRegistry* r) {
  constexpr uint32_t W = kCmdWrite, R = kCmdReadOnly, M = kCmdDenyOom, F = kCmdFast;
  auto add = [r](const char* name, int arity, uint32_t flags, int first, int last, Handler h, const char* acl,
                 const char* summary) {
    r->Add(MakeCommand(name, arity, flags, first, last, first ? 1 : 0, h, acl, summary, "set"));
  };
  add("sadd", -3, W | M | F, 1, 1, SAdd, "@write @set @fast", "Adds one or more members to a set.");
  add("srem", -3, W | F, 1, 1, SRem, "@write @set @fast", "Removes one or more members from a set.");
  add("scard", 2, R | F, 1, 1, SCard, "@read @set @fast", "Returns the number of members in a set.");
  add("sismember", 3, R | F, 1, 1, SIsMember, "@read @set @fast", "Determines whether a member belongs to a set.");
  add("smismember", -3, R | F, 1, 1, SMIsMember, "@read @set @fast", "Determines whether multiple members belong to a set.");
  add("smembers", 2, R, 1, 1, SMembers, "@read @set @slow", "Returns all members of a set.");
  add("srandmember", -2, R, 1, 1, SRandMember, "@read @set @slow", "Get one or multiple random members from a set");
  add("spop", -2, W | F, 1, 1, SPop, "@write @set @fast", "Returns one or more random members from a set after removing them.");
  add("smove", 4, W | F, 1, 2, SMove, "@write @set @fast", "Moves a member from one set to another.");
  add("sinter", -2, R, 1, -1, SInter, "@read @set @slow", "Returns the intersect of multiple sets.");
  add("sinterstore", -3, W | M, 1, -1, SInterStore, "@write @set @slow", "Stores the intersect of multiple sets in a key.");
  add("sunion", -2, R, 1, -1, SUnion, "@read @set @slow", "Returns the union of multiple sets.");
  add("sunionstore", -3, W | M, 1, -1, SUnionStore, "@write @set @slow", "Stores the union of multiple sets in a key.");
  add("sdiff", -2, R, 1, -1, SDiff, "@read @set @slow", "Returns the difference of multiple sets.");
  add("sdiffstore", -3, W | M, 1, -1, SDiffStore, "@write @set @slow", "Stores the difference of multiple sets in a key.");
  add("sscan", -3, R, 1, 1, SScan, "@read @set @slow", "Iterates over members of a set.");
  CommandSpec card = MakeCommand("sintercard", -3, R, 1, 1, 1, SInterCard, "@read @set @slow",
                                 "Returns the number of members of the intersect of multiple sets.", "set");
  card.get_keys = SInterCardKeys;
  card.since = "7.0.0";
  r->Add(std::move(card));
}

}  // namespace larder
