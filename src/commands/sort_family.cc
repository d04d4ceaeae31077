// SORT and SORT_RO over lists, sets and sorted sets, with Redis 7.0's options:
//
//   SORT key [BY pattern] [LIMIT offset count] [GET pattern [GET pattern ...]]
//        [ASC|DESC] [ALPHA] [STORE destination]
//
// A BY or GET pattern names other keys through the elements ("weight_*",
// "obj_*->field"), and those can live on any shard. Such a command line
// (needs_all_shards) runs as one exclusive operation over every shard and
// reaches each pattern key through ctx.DbFor(); without patterns SORT runs
// where its key lives (with STORE to another shard, exclusive over the two).
// A pattern whose keys all share the sorted key's hash slot ("w{t}_*" for a
// key "{t}...") needs no other shard.
//
// Order of replies, as Redis's: options are checked left to right (the
// first bad one answers), then the key's type, then the values; a score that
// is not a number fails the command only after the whole input was read.
#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "commands/list_family.h"
#include "commands/families.h"
#include "engine/engine.h"
#include "commands/lookup.h"
#include "common/clock.h"
#include "common/numbers.h"
#include "common/slot.h"
#include "common/strings.h"
#include "engine/acl.h"
#include "engine/command.h"
#include "engine/notify.h"
#include "keyspace/hash_value.h"
#include "keyspace/list_value.h"
#include "keyspace/set_value.h"
#include "keyspace/zset_value.h"

namespace larder {

namespace {

// Whether `a` (after index `at`) is the option word `word` followed by at
// least `need` more arguments.
bool IsOption(std::span<const std::string_view> a, size_t at, const char* word, size_t need) {
  return EqualsIgnoreCase(a[at], word) && a.size() - at - 1 >= need;
}

// The options as the handler reads them, values unchecked, up to where it
// would stop at a syntax error: the STORE destination it would write, and
// whether some BY or GET pattern may name keys outside `slot`.
struct SortScan {
  size_t store = 0;  // argument index, 0 without STORE
  bool leaves_slot = false;
};

// Whether the keys a pattern names may be outside `slot`: they are not when
// the part before the '*' holds a complete, non-empty {hash tag} of that slot
// (every key made from it then has that tag), or when there is no '*' (a
// constant is never looked up) or the pattern is "#" (the element itself).
bool PatternLeavesSlot(std::string_view pattern, uint32_t slot) {
  size_t star = pattern.find('*');
  if (pattern == "#" || star == std::string_view::npos) return false;
  std::string_view prefix = pattern.substr(0, star);
  size_t open = prefix.find('{');
  if (open == std::string_view::npos) return true;
  size_t close = prefix.find('}', open + 1);
  if (close == std::string_view::npos || close == open + 1) return true;
  return KeySlot(prefix) != slot;
}

SortScan ScanSort(std::span<const std::string_view> a, bool readonly) {
  SortScan scan;
  uint32_t slot = KeySlot(a[1]);
  for (size_t j = 2; j < a.size(); ++j) {
    if (EqualsIgnoreCase(a[j], "asc") || EqualsIgnoreCase(a[j], "desc") || EqualsIgnoreCase(a[j], "alpha")) continue;
    if (IsOption(a, j, "limit", 2)) {
      j += 2;
    } else if (!readonly && IsOption(a, j, "store", 1)) {
      scan.store = ++j;
    } else if (IsOption(a, j, "by", 1) || IsOption(a, j, "get", 1)) {
      scan.leaves_slot |= PatternLeavesSlot(a[++j], slot);
    } else {
      break;  // a syntax error: the command does nothing
    }
  }
  return scan;
}

// get_keys: the sorted key and the destination the handler writes, for
// routing and Effects (the destination is the key written, the sorted key
// only read). COMMAND GETKEYS and ACL use Redis's sortGetKeys instead
// (engine/key_specs.cc), which differs only on malformed lines.
std::vector<size_t> SortKeys(std::span<const std::string_view> a) {
  size_t store = ScanSort(a, false).store;
  if (store) return {1, store};
  return {1};
}
std::vector<size_t> SortRoKeys(std::span<const std::string_view>) { return {1}; }

bool SortNeedsAllShards(std::span<const std::string_view> a) { return ScanSort(a, false).leaves_slot; }
bool SortRoNeedsAllShards(std::span<const std::string_view> a) { return ScanSort(a, true).leaves_slot; }

struct SortOptions {
  bool desc = false;
  bool alpha = false;
  bool dontsort = false;  // BY a pattern without '*': keep the input order
  int64_t limit_start = 0;
  int64_t limit_count = -1;
  std::optional<std::string_view> by;
  std::vector<std::string_view> gets;
  std::optional<std::string_view> store;
};

// Whether the caller may follow patterns to any key (Redis 7.0 refuses BY
// and GET to a user that cannot read every key).
bool FullKeyAccess(CommandContext& ctx) {
  return !ctx.user || acl::HasUnrestrictedReadAccess(*ctx.user, *ctx.spec, ctx.args);
}

// Parses the options; writes the error reply and returns false on the
// first bad one.
bool ParseSort(CommandContext& ctx, bool readonly, SortOptions* o) {
  std::optional<bool> full_access;  // asked once, when a pattern needs it
  auto allowed = [&] {
    if (!full_access) full_access = FullKeyAccess(ctx);
    return *full_access;
  };
  for (size_t j = 2; j < ctx.argc(); ++j) {
    std::string_view w = ctx.arg(j);
    if (EqualsIgnoreCase(w, "asc")) {
      o->desc = false;
    } else if (EqualsIgnoreCase(w, "desc")) {
      o->desc = true;
    } else if (EqualsIgnoreCase(w, "alpha")) {
      o->alpha = true;
    } else if (IsOption(ctx.args, j, "limit", 2)) {
      if (!ParseInt64(ctx.arg(j + 1), &o->limit_start) || !ParseInt64(ctx.arg(j + 2), &o->limit_count)) {
        ctx.Error(OpStatus::kNotAnInteger);
        return false;
      }
      j += 2;
    } else if (!readonly && IsOption(ctx.args, j, "store", 1)) {
      o->store = ctx.arg(++j);
    } else if (IsOption(ctx.args, j, "by", 1)) {
      o->by = ctx.arg(++j);
      // A constant BY sorts nothing (and, as in Redis, a later BY with a
      // pattern does not undo that).
      if (o->by->find('*') == std::string_view::npos) {
        o->dontsort = true;
      } else if (!allowed()) {
        ctx.Error(OpStatus::kSortByDenied);
        return false;
      }
    } else if (IsOption(ctx.args, j, "get", 1)) {
      if (!allowed()) {
        ctx.Error(OpStatus::kSortGetDenied);
        return false;
      }
      o->gets.push_back(ctx.arg(++j));
    } else {
      ctx.SyntaxError();
      return false;
    }
  }
  return true;
}

// The value a pattern names for one element (Redis's lookupKeyByPattern):
// "#" is the element itself; otherwise the first '*' is replaced by the
// element and the key read as a string, or, with "->field" after the '*',
// as a hash's field. Missing keys, other types and patterns without '*'
// give nothing.
std::optional<std::string> LookupPattern(CommandContext& ctx, std::string_view pattern, std::string_view element) {
  if (pattern == "#") return std::string(element);
  size_t star = pattern.find('*');
  if (star == std::string_view::npos) return std::nullopt;
  size_t arrow = pattern.find("->", star + 1);
  std::string_view field;
  std::string_view rest = pattern.substr(star + 1);
  if (arrow != std::string_view::npos && arrow + 2 < pattern.size()) {
    field = pattern.substr(arrow + 2);
    rest = pattern.substr(star + 1, arrow - star - 1);
  }
  std::string key;
  key.reserve(pattern.size() + element.size());
  key.append(pattern.substr(0, star)).append(element).append(rest);
  Db& db = ctx.DbFor(key);
  Entry* e = db.FindRead(key);
  if (!e) return std::nullopt;
  if (field.empty()) {
    if (e->type != ObjType::kString) return std::nullopt;
    return std::string(e->value());
  }
  if (e->type != ObjType::kHash) return std::nullopt;
  auto* h = ObjectOf<HashValue>(e);
  if (h->has_field_ttls() && h->PurgeExpired(CommandTimeMs())) {
    NotifyKeyspaceEvent(ctx, kNotifyHash, "hexpired", key);
    if (h->size() == 0) {
      db.Delete(key);  // every field expired: the hash is gone, as HGET finds it
      NotifyKeyspaceEvent(ctx, kNotifyGeneric, "del", key);
      return std::nullopt;
    }
  }
  auto v = h->Get(field);
  if (!v) return std::nullopt;
  return std::string(*v);
}

struct Item {
  explicit Item(std::string v) : value(std::move(v)) {}
  std::string value;
  double score = 0;
  std::optional<std::string> by;  // ALPHA with BY: the value compared
};

// Redis's compareStringObjects: bytes, then length.
int CompareBinary(const std::string& a, const std::string& b) {
  int c = std::memcmp(a.data(), b.data(), std::min(a.size(), b.size()));
  if (c) return c;
  return a.size() < b.size() ? -1 : (a.size() > b.size() ? 1 : 0);
}

// strcoll in the C locale, as Redis compares ALPHA results it replies
// (not those it stores): a NUL byte ends the string.
int CompareCollate(const std::string& a, const std::string& b) { return std::strcmp(a.c_str(), b.c_str()); }

int CompareItems(const Item& a, const Item& b, const SortOptions& o) {
  if (!o.alpha) {
    if (a.score != b.score) return a.score > b.score ? 1 : -1;
    return CompareBinary(a.value, b.value);  // equal scores: a deterministic order
  }
  bool store = o.store.has_value();
  if (o.by) {
    if (!a.by || !b.by) return a.by ? 1 : (b.by ? -1 : 0);  // a missing value first
    return store ? CompareBinary(*a.by, *b.by) : CompareCollate(*a.by, *b.by);
  }
  return store ? CompareBinary(a.value, b.value) : CompareCollate(a.value, b.value);
}

// A numeric score as Redis reads it (strtod: leading spaces, hex and "inf"
// accepted, trailing bytes, NaN and out-of-range values refused; a NUL byte
// ends it). errno is cleared first, which Redis 7.0 does not do
// (docs/compatibility.md, SORT).
bool ParseScore(const std::string& s, double* out) {
  char* end;
  errno = 0;
  *out = std::strtod(s.c_str(), &end);
  return *end == '\0' && errno != ERANGE && !std::isnan(*out);
}

void SortGeneric(CommandContext& ctx, bool readonly) {
  SortOptions o;
  if (!ParseSort(ctx, readonly, &o)) return;

  std::string_view key = ctx.arg(1);
  Entry* e = ctx.DbFor(key).FindRead(key);
  if (e && e->type != ObjType::kList && e->type != ObjType::kSet && e->type != ObjType::kZSet)
    return ctx.Error(OpStatus::kWrongType);
  const auto* list = e && e->type == ObjType::kList ? ObjectOf<ListValue>(e) : nullptr;
  const auto* set = e && e->type == ObjType::kSet ? ObjectOf<SetValue>(e) : nullptr;
  const auto* zset = e && e->type == ObjType::kZSet ? ObjectOf<ZSetValue>(e) : nullptr;

  // A set has no order of its own: stored, or called from a script, its
  // unsorted result is sorted ALPHA so that it does not depend on the hash
  // table (as Redis).
  if (o.dontsort && set && (o.store || ctx.from_script)) {
    o.dontsort = false;
    o.alpha = true;
    o.by.reset();
  }

  int64_t len = list ? static_cast<int64_t>(list->size())
                     : set ? static_cast<int64_t>(set->size()) : zset ? static_cast<int64_t>(zset->size()) : 0;
  // LIMIT, clamped to the input as Redis does: [start, end] inclusive.
  int64_t start = std::min(std::max<int64_t>(o.limit_start, 0), len);
  int64_t count = std::min(std::max<int64_t>(o.limit_count, -1), len);
  int64_t end = count < 0 ? len - 1 : start + count - 1;
  if (start >= len) {
    start = len - 1;
    end = len - 2;
  }
  if (end >= len) end = len - 1;

  std::vector<Item> items;
  bool ordered = list || zset || !e;  // a missing key is an empty list
  if (ordered && o.dontsort) {
    // The input order (reversed by DESC), and only the range asked for.
    if (end >= start) {
      size_t n = static_cast<size_t>(end - start + 1);
      items.reserve(n);
      if (zset) {
        zset->Walk(static_cast<size_t>(start), o.desc, [&](const ZSetValue::Ref& r) {
          items.emplace_back(std::string(r.member));
          return items.size() < n;
        });
      } else if (list) {
        list->Walk(static_cast<size_t>(start), o.desc, [&](std::string_view v) {
          items.emplace_back(std::string(v));
          return items.size() < n;
        });
      }
    }
    end -= start;
    start = 0;
  } else {
    items.reserve(static_cast<size_t>(len));
    if (list) {
      list->ForEach([&](std::string_view v) { items.emplace_back(std::string(v)); });
    } else if (set) {
      set->ForEach([&](std::string_view m) { items.emplace_back(std::string(m)); });
    } else if (zset) {
      zset->ForEach([&](const ZSetValue::Ref& r) { items.emplace_back(std::string(r.member)); });
    }
  }

  bool not_a_double = false;
  if (!o.dontsort) {
    for (Item& it : items) {
      std::optional<std::string> by_value;
      if (o.by) {
        by_value = LookupPattern(ctx, *o.by, it.value);
        if (!by_value) continue;  // scores 0, or sorts first with ALPHA
      }
      if (o.alpha) {
        if (o.by) it.by = std::move(by_value);
      } else if (!ParseScore(o.by ? *by_value : it.value, &it.score)) {
        not_a_double = true;
      }
    }
    // Stable, as glibc's qsort (a merge sort) that Redis calls: equal items
    // keep their input order.
    if (!not_a_double)
      std::stable_sort(items.begin(), items.end(), [&](const Item& a, const Item& b) {
        int c = CompareItems(a, b, o);
        return o.desc ? c > 0 : c < 0;
      });
  }
  if (not_a_double) return ctx.Error(OpStatus::kSortNotDouble);

  size_t first = static_cast<size_t>(start);
  size_t n = end >= start ? static_cast<size_t>(end - start + 1) : 0;
  size_t out_len = o.gets.empty() ? n : n * o.gets.size();
  if (!o.store) {
    ctx.rb->ArrayHeader(out_len);
    for (size_t i = first; i < first + n; ++i) {
      if (o.gets.empty()) ctx.rb->Bulk(items[i].value);
      for (std::string_view pattern : o.gets) {
        auto v = LookupPattern(ctx, pattern, items[i].value);
        if (v) ctx.rb->Bulk(*v);
        else ctx.rb->Null();
      }
    }
    return;
  }
  // STORE: the result as a list (missing GET values as empty strings); an
  // empty result deletes the destination.
  std::string_view dst = *o.store;
  Db& db = ctx.DbFor(dst);
  if (out_len == 0) {
    if (db.Delete(dst)) NotifyKeyspaceEvent(ctx, kNotifyGeneric, "del", dst);
    return ctx.rb->Integer(0);
  }
  auto* result = NewList(ctx.engine->config());
  for (size_t i = first; i < first + n; ++i) {
    if (o.gets.empty()) result->PushBack(items[i].value);
    for (std::string_view pattern : o.gets)
      result->PushBack(LookupPattern(ctx, pattern, items[i].value).value_or(std::string()));
  }
  Entry* stored = NewObjectEntry(dst, ObjType::kList, result, -1);
  if (db.Delete(dst)) db.AddQuiet(stored);  // an overwrite: not a new key
  else db.Add(stored);
  NotifyKeyspaceEvent(ctx, kNotifyList, "sortstore", dst);
  ctx.rb->Integer(static_cast<int64_t>(out_len));
}

void Sort(CommandContext& ctx) { SortGeneric(ctx, false); }
void SortRo(CommandContext& ctx) { SortGeneric(ctx, true); }

}  // namespace

void RegisterSortFamily(CommandRegistry* r) {
  CommandSpec sort = MakeCommand("sort", -2, kCmdWrite | kCmdDenyOom, 1, 1, 1, Sort,
                                 "@write @set @sortedset @list @slow @dangerous",
                                 "Sort the elements in a list, set or sorted set", "generic");
  sort.get_keys = SortKeys;
  sort.needs_all_shards = SortNeedsAllShards;
  sort.writes = CommandSpec::Writes::kSecond;  // STORE's destination; the sorted key is only read
  r->Add(std::move(sort));
  CommandSpec ro = MakeCommand("sort_ro", -2, kCmdReadOnly, 1, 1, 1, SortRo,
                               "@read @set @sortedset @list @slow @dangerous",
                               "Sort the elements in a list, set or sorted set. Read-only variant of SORT.", "generic");
  ro.get_keys = SortRoKeys;
  ro.needs_all_shards = SortRoNeedsAllShards;
  ro.since = "7.0.0";
  r->Add(std::move(ro));
}

}  // namespace larder
