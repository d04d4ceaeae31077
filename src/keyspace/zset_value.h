// The value of a sorted set: members ordered by (score, member).
//
// Small sets (up to zset-max-listpack-entries members of at most
// zset-max-listpack-value bytes) are one PackedList of alternating member and
// score (the score as its shortest exact decimal text, as Redis's listpack
// stores it): OBJECT ENCODING "listpack", a few bytes per member, and O(n)
// operations on n <= 128. Larger sets become a sorted vector plus a member →
// score hash ("skiplist"), for good, as in Redis: rank lookups and rank ranges
// are O(log N); inserts and deletes move the tail (O(N)), the next thing to
// replace (by a skiplist with spans) for very large sets.
//
// Readers take a View: the packed form decoded, or a reference to the vector;
// it stays valid until the next modification.
#pragma once

#include <absl/container/flat_hash_map.h>

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ds/packed_list.h"

namespace larder {

struct ZSetLimits {
  size_t max_listpack_entries = 128;
  size_t max_listpack_value = 64;
};

class ZSetValue {
 public:
  struct Item {
    double score;
    std::string member;
  };

  class View {
   public:
    const std::vector<Item>& items() const { return ref_ ? *ref_ : owned_; }
   private:
    friend class ZSetValue;
    const std::vector<Item>* ref_ = nullptr;
    std::vector<Item> owned_;
  };

  ZSetValue() = default;
  size_t size() const { return big_ ? big_->items.size() : packed_.size() / 2; }
  const char* encoding() const { return big_ ? "skiplist" : "listpack"; }
  View Items() const;

  std::optional<double> Score(std::string_view member) const;
  // Inserts or updates; returns true if the member is new.
  bool Set(std::string_view member, double score, const ZSetLimits& limits);
  bool Remove(std::string_view member);
  // 0-based rank in ascending order, if present.
  std::optional<size_t> Rank(std::string_view member) const;
  // Removes items [first, last) by rank.
  void EraseRanks(size_t first, size_t last);

  std::unique_ptr<ZSetValue> Clone() const;
  size_t MemoryUsage() const;
  // Switches to the large form if the set exceeds `limits`.
  void ConvertIfNeeded(const ZSetLimits& limits);

 private:
  struct Big {
    std::vector<Item> items;
    absl::flat_hash_map<std::string, double> index;
  };
  static size_t Position(const std::vector<Item>& items, double score, std::string_view member);
  std::vector<Item> Decode() const;
  void Encode(const std::vector<Item>& items);

  PackedList packed_;
  std::unique_ptr<Big> big_;
};

// Index of the first item with score > s (exclusive) or >= s.
size_t LowerBoundScore(const std::vector<ZSetValue::Item>& items, double s, bool exclusive);

}  // namespace larder
