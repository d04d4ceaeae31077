// The value of a set key. Sets of integers only, up to set-max-intset-entries,
// are a sorted vector of int64 (OBJECT ENCODING "intset", members in numeric
// order as Redis returns them); any other member or more elements turn it
// into a hash set ("hashtable") for good, as in Redis 7.0.
//
// The hash set is a ChainedTable of one block per member ([next][len][bytes],
// 16 bytes of header), so random members are O(1) expected (SRANDMEMBER,
// SPOP), a resize moves a few buckets per operation instead of stalling the
// shard, and SSCAN's cursor survives resizes.
#pragma once

#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "ds/chained_table.h"

namespace larder {

struct SetNode {
  SetNode* next;
  uint32_t len;
  std::string_view member() const { return {reinterpret_cast<const char*>(this + 1), len}; }
};

struct SetNodeTraits {
  static std::string_view Key(const SetNode* n) { return n->member(); }
  static SetNode*& Next(SetNode* n) { return n->next; }
  static uint64_t Hash(std::string_view m);
  static void Free(SetNode* n);
};

class SetValue {
 public:
  using Table = ChainedTable<SetNode, SetNodeTraits>;

  size_t size() const { return table_ ? table_->size() : ints_.size(); }
  const char* encoding() const { return table_ ? "hashtable" : "intset"; }
  bool is_table() const { return table_ != nullptr; }
  bool Contains(std::string_view m) const;
  // Returns true if added.
  bool Add(std::string_view m, size_t max_intset_entries);
  bool Remove(std::string_view m);
  // A member drawn at random (O(1) expected); the set must not be empty.
  std::string RandomMember(std::mt19937_64& rng) const;
  // Removes a random member and returns it; the set must not be empty.
  std::string PopRandom(std::mt19937_64& rng);
  // One step of SSCAN over the hash set: fn(member) for the members of one
  // bucket position, and the next cursor (0: done). Only for is_table().
  template <typename Fn>
  uint64_t Scan(uint64_t cursor, Fn&& fn) const {
    return table_->Scan(cursor, [&](SetNode* n) { fn(n->member()); });
  }

  // fn(member) in storage order.
  template <typename Fn>
  void ForEach(Fn&& fn) const {
    if (table_) {
      table_->ForEach([&](SetNode* n) { fn(n->member()); });
      return;
    }
    char buf[24];
    for (int64_t v : ints_) {
      int n = snprintf(buf, sizeof(buf), "%lld", static_cast<long long>(v));
      fn(std::string_view(buf, static_cast<size_t>(n)));
    }
  }
  std::vector<std::string> Members() const;

  // Active defragmentation (keyspace/defrag.h): each node of the hash set
  // is replaced by move(node), a copy at another address or the same one,
  // if there are at most `max_nodes`. (An intset's vector is left alone.)
  template <typename Move>
  void MoveBlocks(size_t max_nodes, Move&& move) {
    if (!table_ || table_->size() > max_nodes) return;
    auto one = [&move](SetNode* n) { return static_cast<SetNode*>(move(static_cast<void*>(n))); };
    for (uint64_t c = table_->ScanReplace(0, one); c != 0;) c = table_->ScanReplace(c, one);
  }

  std::unique_ptr<SetValue> Clone() const;
  // Bytes used (MEMORY USAGE); a hash set's members estimated from
  // `samples` of them (0: all).
  size_t MemoryUsage(size_t samples = 0) const;

 private:
  void ConvertToTable();
  void Insert(std::string_view m);
  std::vector<int64_t> ints_;
  std::unique_ptr<Table> table_;
};

}  // namespace larder
