// The value of a hash key. Small hashes are one PackedList of alternating
// field and value (OBJECT ENCODING "listpack", insertion order kept, as in
// Redis); past hash-max-listpack-entries fields or a field/value longer than
// hash-max-listpack-value bytes they become a hash table ("hashtable") and
// never go back, as in Redis. The table is a ChainedTable of one block per
// field ([next][field len][value len][field][value]): random fields in O(1)
// expected, resizes spread over operations, HSCAN cursors that survive them.
//
// Fields may carry their own expiry (HEXPIRE, Redis 7.4): absolute Unix ms in
// a side map that exists only while some field has one. Expired fields are
// removed by PurgeExpired(), which every hash command calls first (lazy
// expiry) and the shard's active expiry cycle calls too.
#pragma once

#include <absl/container/flat_hash_map.h>

#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <utility>

#include "ds/chained_table.h"
#include "ds/packed_list.h"

namespace larder {

struct HashNode {
  HashNode* next;
  uint32_t field_len;
  uint32_t value_len;
  const char* bytes() const { return reinterpret_cast<const char*>(this + 1); }
  char* bytes() { return reinterpret_cast<char*>(this + 1); }
  std::string_view field() const { return {bytes(), field_len}; }
  std::string_view value() const { return {bytes() + field_len, value_len}; }
};

struct HashNodeTraits {
  static std::string_view Key(const HashNode* n) { return n->field(); }
  static HashNode*& Next(HashNode* n) { return n->next; }
  static uint64_t Hash(std::string_view f);
  static void Free(HashNode* n);
};

struct HashLimits {
  size_t max_listpack_entries = 128;
  size_t max_listpack_value = 64;
};

class HashValue {
 public:
  using Table = ChainedTable<HashNode, HashNodeTraits>;

  bool packed() const { return !table(); }
  bool is_table() const { return table() != nullptr; }
  size_t size() const { return table() ? table()->size() : packed_.size() / 2; }
  const char* encoding() const {
    return table() ? "hashtable" : (has_field_ttls() ? "listpackex" : "listpack");
  }

  std::optional<std::string_view> Get(std::string_view field) const;
  // Returns true if the field is new. A new value drops the field's expiry
  // unless `keep_ttl` (HINCRBY keeps it, HSET does not, as in Redis).
  bool Set(std::string_view field, std::string_view value, const HashLimits& limits, bool keep_ttl = false);
  bool Delete(std::string_view field);

  // Field expiry. Times are absolute Unix ms.
  bool has_field_ttls() const { return ttl() && !ttl()->empty(); }
  std::optional<int64_t> FieldExpire(std::string_view field) const;
  void SetFieldExpire(std::string_view field, int64_t ms);
  bool PersistField(std::string_view field);
  // Deletes fields whose time has come; returns how many.
  size_t PurgeExpired(int64_t now_ms);

  // A field and its value drawn at random (O(1) expected in the table
  // form, O(n) packed); the hash must not be empty. The views stay valid
  // until the next modification.
  std::pair<std::string_view, std::string_view> RandomField(std::mt19937_64& rng) const;
  // One step of HSCAN over the table: fn(field, value) for the fields of one
  // bucket position, and the next cursor (0: done). Only for is_table().
  template <typename Fn>
  uint64_t Scan(uint64_t cursor, Fn&& fn) const {
    return table()->Scan(cursor, [&](HashNode* n) { fn(n->field(), n->value()); });
  }

  // fn(field, value) in storage order.
  template <typename Fn>
  void ForEach(Fn&& fn) const {
    if (table()) {
      table()->ForEach([&](HashNode* n) { fn(n->field(), n->value()); });
      return;
    }
    size_t pos = packed_.First(), end = packed_.End(), next;
    while (pos < end) {
      std::string_view f = packed_.Get(pos, &next);
      std::string_view v = packed_.Get(next, &next);
      fn(f, v);
      pos = next;
    }
  }

  // Active defragmentation (keyspace/defrag.h): each block of the value's
  // own is replaced by move(block), a copy at another address or the same
  // one: the packed list, or the table's nodes if there are at most
  // `max_nodes` (active-defrag-max-scan-fields).
  template <typename Move>
  void MoveBlocks(size_t max_nodes, Move&& move) {
    if (!table()) return packed_.MoveBlock(move);
    if (table()->size() > max_nodes) return;
    auto one = [&move](HashNode* n) { return static_cast<HashNode*>(move(static_cast<void*>(n))); };
    for (uint64_t c = table()->ScanReplace(0, one); c != 0;) c = table()->ScanReplace(c, one);
  }

  std::unique_ptr<HashValue> Clone() const;
  // Bytes used, for MEMORY USAGE (approximate for the table).
  // (a table's fields estimated from `samples` of them; 0: all)
  size_t MemoryUsage(size_t samples = 0) const;

 private:
  void ConvertToTable();
  void InsertNode(std::string_view field, std::string_view value);

  // The hash table (once past the listpack limits) and the field TTLs live
  // behind one pointer, so a small hash without field TTLs is two pointers
  // (a 16-byte allocation, not 32).
  struct Extra {
    std::unique_ptr<Table> table;
    std::unique_ptr<absl::flat_hash_map<std::string, int64_t>> ttl;
  };
  Table* table() const { return x_ ? x_->table.get() : nullptr; }
  absl::flat_hash_map<std::string, int64_t>* ttl() const { return x_ ? x_->ttl.get() : nullptr; }
  Extra& Ex() {
    if (!x_) x_ = std::make_unique<Extra>();
    return *x_;
  }
  void Trim() {
    if (x_ && !x_->table && !x_->ttl) x_.reset();
  }

  PackedList packed_;
  std::unique_ptr<Extra> x_;
};

}  // namespace larder
