// Typed key lookups for the collection families: find the object behind a
// key, check its type (writing Redis's WRONGTYPE error), create it on first
// write, and delete the key when the collection becomes empty (Redis never
// keeps empty collections).
#pragma once

#include <absl/container/flat_hash_set.h>

#include <algorithm>
#include <random>
#include <string_view>
#include <vector>

#include "engine/command.h"
#include "engine/notify.h"
#include "common/numbers.h"
#include "common/strings.h"
#include "keyspace/entry.h"

namespace larder {

// *out is the object at `key`, or null if the key does not exist. Returns
// false, with WRONGTYPE written, if the key holds another type.
template <typename T, ObjType kType>
bool LookupObject(CommandContext& ctx, std::string_view key, T** out, bool write = false) {
  Db& db = ctx.DbFor(key);
  Entry* e = write ? db.FindWrite(key) : db.FindRead(key);
  *out = nullptr;
  if (!e) return true;
  if (e->type != kType) {
    ctx.Error(OpStatus::kWrongType);
    return false;
  }
  *out = ObjectOf<T>(e);
  return true;
}

// The object at `key`, created empty if missing; null (WRONGTYPE written) if
// the key holds another type.
template <typename T, ObjType kType>
T* LookupOrCreateObject(CommandContext& ctx, std::string_view key) {
  T* obj;
  if (!LookupObject<T, kType>(ctx, key, &obj, true)) return nullptr;
  if (obj) return obj;
  obj = new T();
  ctx.DbFor(key).Add(NewObjectEntry(key, kType, obj, -1));
  return obj;
}

// Deletes the key of an emptied collection and raises "del", which Redis
// raises after the command's own event: call it after that one.
template <typename T>
void DeleteIfEmpty(CommandContext& ctx, std::string_view key, const T* obj) {
  if (obj && obj->size() == 0) {
    ctx.DbFor(key).Delete(key);
    NotifyKeyspaceEvent(ctx, kNotifyGeneric, "del", key);
  }
}

// HSCAN/SSCAN/ZSCAN arguments: "key cursor [MATCH pattern] [COUNT count]".
// Small (packed) collections answer in one call (cursor 0), as Redis's do;
// large ones walk their hash table a bucket position at a time until about
// COUNT elements are found (ScanCollection).
struct CollectionScanArgs {
  uint64_t cursor = 0;
  uint64_t count = 10;
  std::string_view pattern;
  bool has_pattern = false;
};
inline bool ParseCollectionScan(CommandContext& ctx, CollectionScanArgs* out) {
  uint64_t& cursor = out->cursor;
  if (!ParseUint64(ctx.arg(2), &cursor)) {
    ctx.Error(OpStatus::kInvalidCursor);
    return false;
  }
  for (size_t j = 3; j < ctx.argc(); j += 2) {
    if (j + 1 >= ctx.argc()) {
      ctx.SyntaxError();
      return false;
    }
    if (EqualsIgnoreCase(ctx.arg(j), "match")) {
      out->pattern = ctx.arg(j + 1);
      out->has_pattern = out->pattern != "*";
    } else if (EqualsIgnoreCase(ctx.arg(j), "count")) {
      int64_t count;
      if (!ParseInt64(ctx.arg(j + 1), &count)) {
        ctx.Error(OpStatus::kNotAnInteger);
        return false;
      }
      if (count < 1) {
        ctx.SyntaxError();
        return false;
      }
      out->count = static_cast<uint64_t>(count);
    } else {
      ctx.SyntaxError();
      return false;
    }
  }
  return true;
}

// The picks of SRANDMEMBER / HRANDFIELD / ZRANDMEMBER with a count (not 0),
// by Redis's cases: a negative count draws |count| times with repeats
// (fewer if the reply outgrows the client's limit, which then closes it);
// a count of at least a third of the collection shuffles part of a copy
// (`all()` gives every element); a smaller one draws distinct elements,
// O(count) expected. draw() gives a random element, key(element) what makes
// two elements the same.
template <typename T, typename Draw, typename All, typename Key>
std::vector<T> RandomPicks(CommandContext& ctx, int64_t count, size_t size, std::mt19937_64& rng, Draw&& draw,
                           All&& all, Key&& key) {
  std::vector<T> picks;
  if (count < 0) {
    for (uint64_t i = 0; i < static_cast<uint64_t>(-count); ++i) {
      // (each pick adds at least 7 bytes to the reply: 4 is an underestimate)
      if ((i & 1023) == 0 && ctx.ReplyOverLimit(picks.size() * 4)) break;
      picks.push_back(draw());
    }
  } else if (static_cast<uint64_t>(count) * 3 > size) {
    picks = all();
    size_t n = std::min<size_t>(static_cast<size_t>(count), picks.size());
    for (size_t i = 0; i < n && n < picks.size(); ++i) std::swap(picks[i], picks[i + rng() % (picks.size() - i)]);
    picks.resize(n);
  } else {
    absl::flat_hash_set<std::string_view> seen;
    seen.reserve(static_cast<size_t>(count));
    while (picks.size() < static_cast<size_t>(count)) {
      T p = draw();
      if (seen.insert(key(p)).second) picks.push_back(std::move(p));
    }
  }
  return picks;
}

// Redis's loop for a hashed collection: `step(cursor)` visits one bucket
// position, adding what it finds (before MATCH filters it) to `found` and
// returning the next cursor; stops at about COUNT elements, after COUNT*10
// positions (a sparse table), or at the end. Returns the cursor to reply.
template <typename Step>
uint64_t ScanCollection(const CollectionScanArgs& args, const size_t& found, Step&& step) {
  uint64_t cursor = args.cursor;
  uint64_t budget = args.count * 10;
  do {
    cursor = step(cursor);
  } while (cursor != 0 && --budget > 0 && found < args.count);
  return cursor;
}

}  // namespace larder
