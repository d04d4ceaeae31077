// One key of the keyspace, stored in a single heap block:
//
//   [ Entry header (24 B) ][ expire: int64, only if kHasExpire ][ key bytes ][ value bytes ]
//
// Small and large string values alike live inline behind the key, so a string
// key costs one allocation; spare room that the allocator hands out (its size
// classes) is used for in-place APPEND/SETRANGE growth. Values of other types
// keep a pointer in the value bytes. The header keeps the chain link of the
// table it lives in; nothing else may hold an Entry* across a command, because
// an entry moves when it is reallocated.
#pragma once

#include <cstdint>
#include <cstring>
#include <string_view>

namespace larder {

enum class ObjType : uint8_t { kString = 0, kList, kSet, kZSet, kHash, kStream };

// How OBJECT ENCODING reports a string, tracked per entry because Redis's answer
// depends on which command wrote the value, not only on its bytes.
enum class StrEncoding : uint8_t { kRaw = 0, kEmbstr, kInt };
// The OBJECT ENCODING Redis gives a value stored by SET and friends
// (tryObjectEncoding): "int" for a canonical 64-bit integer, "embstr" up to
// 44 bytes, "raw" above.
StrEncoding EncodingForValue(std::string_view v);

struct Entry {
  static constexpr uint8_t kHasExpire = 1;
  // Redis shares the objects of small integers (OBJECT REFCOUNT shows it);
  // a copied value is its own object. Only affects OBJECT REFCOUNT.
  static constexpr uint8_t kUnshared = 2;
  // Loaded by a cache rule (read-through keeps freshness data for it).
  static constexpr uint8_t kCached = 4;
  // Which side of the running (or last) snapshot's cut the entry is on
  // (engine/persistence.h): equal to KeyspaceStats::snap_mark once written
  // out or when made after the cut.
  static constexpr uint8_t kSnapMark = 8;

  Entry* next;        // chain in the table's bucket
  uint32_t key_len;
  uint32_t val_len;
  ObjType type;
  uint8_t encoding;   // StrEncoding for strings
  uint8_t flags;
  uint8_t lfu;        // LFU counter, Redis's logarithmic scale
  uint32_t access;    // last access, seconds of the LRU clock

  bool has_expire() const { return flags & kHasExpire; }
  int64_t expire_ms() const {
    int64_t v;
    memcpy(&v, Payload(), sizeof(v));
    return v;
  }
  void set_expire_ms(int64_t ms) { memcpy(Payload(), &ms, sizeof(ms)); }
  std::string_view key() const { return {KeyPtr(), key_len}; }
  std::string_view value() const { return {KeyPtr() + key_len, val_len}; }
  char* mutable_value() { return KeyPtr() + key_len; }

  char* Payload() const { return reinterpret_cast<char*>(const_cast<Entry*>(this) + 1); }
  char* KeyPtr() const { return Payload() + (has_expire() ? sizeof(int64_t) : 0); }

  // Bytes of a block for this layout.
  static size_t BlockSize(size_t key_len, size_t val_len, bool with_expire) {
    return sizeof(Entry) + (with_expire ? sizeof(int64_t) : 0) + key_len + val_len;
  }
};
static_assert(sizeof(Entry) == 24);

// Allocates a string entry; `expire_ms` < 0 means no TTL. `reserve` extra bytes
// of value capacity may be requested for values expected to grow.
Entry* NewStringEntry(std::string_view key, std::string_view value, int64_t expire_ms,
                      size_t reserve = 0);
// Allocates an entry whose value is an object of a collection type (the
// entry owns it: FreeEntry destroys it).
Entry* NewObjectEntry(std::string_view key, ObjType type, void* object, int64_t expire_ms);
// The object behind a collection entry.
template <typename T>
T* ObjectOf(const Entry* e) {
  T* p;
  memcpy(&p, e->KeyPtr() + e->key_len, sizeof(p));
  return p;
}
// Bytes the key costs (MEMORY USAGE): its block, its bucket slot, its object.
// Large hashes, sets and sorted sets are estimated from `samples` of their
// members (0: every member; MEMORY USAGE's SAMPLES, 5 by default as Redis).
size_t EntryMemoryUsage(const Entry* e, size_t samples = 0);
// Frees an entry and whatever its value owns.
void FreeEntry(Entry* e);
// A deep copy of the entry (value and TTL) under `new_key` (COPY).
Entry* CloneEntry(const Entry* e, std::string_view new_key);
// The same value and TTL under `new_key`; `e` is freed but its object, if
// any, moves to the result (RENAME).
Entry* RekeyEntry(Entry* e, std::string_view new_key);
// Room for the value without reallocating (uses the allocator's slack).
size_t ValueCapacity(const Entry* e);
// Returns an entry equal to `e` but with a value of `new_len` bytes (content
// kept up to min(old, new)); may reallocate, in which case `e` is invalid and
// the caller must relink the result in its table.
Entry* ResizeValue(Entry* e, size_t new_len, bool grow_geometrically);
// Returns an entry equal to `e` with or without the expire field.
Entry* WithExpireField(Entry* e, bool with_expire);
// Bytes the allocator really gave this entry (for MEMORY USAGE and accounting).
size_t EntryAllocSize(const Entry* e);

}  // namespace larder
