// Typed key lookups for the collection families: find the object behind a
// key, check its type (writing Redis's WRONGTYPE error), create it on first
// write, and delete the key when the collection becomes empty (Redis never
// keeps empty collections).
#pragma once

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
// Collections answer a scan in one call (cursor 0), so COUNT is only checked.
struct CollectionScanArgs {
  std::string_view pattern;
  bool has_pattern = false;
};
inline bool ParseCollectionScan(CommandContext& ctx, CollectionScanArgs* out) {
  uint64_t cursor;
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
    } else {
      ctx.SyntaxError();
      return false;
    }
  }
  return true;
}

}  // namespace larder
