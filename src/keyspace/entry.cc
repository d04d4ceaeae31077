#include "keyspace/entry.h"

#include "common/numbers.h"

#include <malloc.h>

#include <cstdlib>
#include <new>

#include "keyspace/eviction.h"
#include "keyspace/hash_value.h"
#include "keyspace/list_value.h"
#include "keyspace/set_value.h"
#include "keyspace/stream_value.h"
#include "keyspace/zset_value.h"

namespace larder {

StrEncoding EncodingForValue(std::string_view v) {
  int64_t n;
  if (v.size() <= 20 && ParseInt64(v, &n)) return StrEncoding::kInt;
  return v.size() <= 44 ? StrEncoding::kEmbstr : StrEncoding::kRaw;
}

namespace {
void* Alloc(size_t n) {
  void* p = malloc(n);
  if (!p) throw std::bad_alloc();
  return p;
}
}  // namespace

Entry* NewStringEntry(std::string_view key, std::string_view value, int64_t expire_ms,
                      size_t reserve) {
  bool with_expire = expire_ms >= 0;
  auto* e = static_cast<Entry*>(Alloc(Entry::BlockSize(key.size(), value.size() + reserve, with_expire)));
  e->next = nullptr;
  e->key_len = static_cast<uint32_t>(key.size());
  e->val_len = static_cast<uint32_t>(value.size());
  e->type = ObjType::kString;
  e->encoding = static_cast<uint8_t>(StrEncoding::kRaw);
  e->flags = with_expire ? Entry::kHasExpire : 0;
  InitAccess(e);
  if (with_expire) e->set_expire_ms(expire_ms);
  if (!key.empty()) memcpy(e->KeyPtr(), key.data(), key.size());
  if (!value.empty()) memcpy(e->mutable_value(), value.data(), value.size());
  return e;
}

Entry* NewObjectEntry(std::string_view key, ObjType type, void* object, int64_t expire_ms) {
  Entry* e = NewStringEntry(key, std::string_view(reinterpret_cast<const char*>(&object), sizeof(object)),
                            expire_ms);
  e->type = type;
  return e;
}

namespace {
void DestroyObject(const Entry* e) {
  switch (e->type) {
    case ObjType::kString: return;
    case ObjType::kHash: delete ObjectOf<HashValue>(e); return;
    case ObjType::kSet: delete ObjectOf<SetValue>(e); return;
    case ObjType::kList: delete ObjectOf<ListValue>(e); return;
    case ObjType::kZSet: delete ObjectOf<ZSetValue>(e); return;
    case ObjType::kStream: delete ObjectOf<StreamValue>(e); return;
    default: return;
  }
}
void* CloneObject(const Entry* e) {
  switch (e->type) {
    case ObjType::kHash: return ObjectOf<HashValue>(e)->Clone().release();
    case ObjType::kSet: return ObjectOf<SetValue>(e)->Clone().release();
    case ObjType::kList: return ObjectOf<ListValue>(e)->Clone().release();
    case ObjType::kZSet: return ObjectOf<ZSetValue>(e)->Clone().release();
    case ObjType::kStream: return ObjectOf<StreamValue>(e)->Clone().release();
    default: return nullptr;
  }
}
}  // namespace

void FreeEntry(Entry* e) {
  DestroyObject(e);
  free(e);
}

Entry* CloneEntry(const Entry* e, std::string_view new_key) {
  int64_t ttl = e->has_expire() ? e->expire_ms() : -1;
  Entry* c = e->type == ObjType::kString ? NewStringEntry(new_key, e->value(), ttl)
                                         : NewObjectEntry(new_key, e->type, CloneObject(e), ttl);
  c->type = e->type;
  c->encoding = e->encoding;
  c->lfu = e->lfu;
  return c;
}

Entry* RekeyEntry(Entry* e, std::string_view new_key) {
  Entry* c = NewStringEntry(new_key, e->value(), e->has_expire() ? e->expire_ms() : -1);
  c->type = e->type;
  c->encoding = e->encoding;
  c->lfu = e->lfu;
  c->access = e->access;
  c->flags = e->flags;
  free(e);  // the object, if any, now belongs to `c`
  return c;
}

size_t EntryAllocSize(const Entry* e) { return malloc_usable_size(const_cast<Entry*>(e)); }

size_t EntryMemoryUsage(const Entry* e, size_t samples) {
  size_t n = EntryAllocSize(e) + sizeof(Entry*);  // the block and its bucket slot
  switch (e->type) {
    case ObjType::kHash: return n + ObjectOf<HashValue>(e)->MemoryUsage(samples);
    case ObjType::kSet: return n + ObjectOf<SetValue>(e)->MemoryUsage(samples);
    case ObjType::kList: return n + ObjectOf<ListValue>(e)->MemoryUsage();
    case ObjType::kZSet: return n + ObjectOf<ZSetValue>(e)->MemoryUsage(samples);
    case ObjType::kStream: return n + ObjectOf<StreamValue>(e)->MemoryUsage();
    default: return n;
  }
}

size_t ValueCapacity(const Entry* e) {
  size_t fixed = Entry::BlockSize(e->key_len, 0, e->has_expire());
  return EntryAllocSize(e) - fixed;
}

Entry* ResizeValue(Entry* e, size_t new_len, bool grow_geometrically) {
  if (new_len <= ValueCapacity(e)) {
    e->val_len = static_cast<uint32_t>(new_len);
    return e;
  }
  size_t want = new_len;
  if (grow_geometrically) {
    // Like sds: double small values, add 1 MB at a time to large ones.
    want = new_len < 1024 * 1024 ? new_len * 2 : new_len + 1024 * 1024;
  }
  size_t block = Entry::BlockSize(e->key_len, want, e->has_expire());
  void* p = realloc(e, block);
  if (!p) throw std::bad_alloc();
  auto* n = static_cast<Entry*>(p);
  n->val_len = static_cast<uint32_t>(new_len);
  return n;
}

Entry* WithExpireField(Entry* e, bool with_expire) {
  if (e->has_expire() == with_expire) return e;
  size_t block = Entry::BlockSize(e->key_len, e->val_len, with_expire);
  auto* n = static_cast<Entry*>(Alloc(block));
  memcpy(n, e, sizeof(Entry));
  n->flags = with_expire ? (e->flags | Entry::kHasExpire) : (e->flags & ~Entry::kHasExpire);
  if (with_expire) n->set_expire_ms(0);
  memcpy(n->KeyPtr(), e->KeyPtr(), e->key_len + e->val_len);
  free(e);
  return n;
}

}  // namespace larder
