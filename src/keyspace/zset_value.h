// The value of a sorted set: members ordered by (score, member). Kept as a
// sorted vector, so rank lookups and rank ranges are O(log N) and scans are
// sequential; inserts and deletes move the tail (O(N)), which is cheap for the
// sizes caches keep in a sorted set and is the next thing to replace (by a
// skiplist with spans) for very large sets. Small sets (zset-max-listpack-*)
// report OBJECT ENCODING "listpack" and find members by scanning; larger ones
// add a member → score hash ("skiplist"), for good, as in Redis.
#pragma once

#include <absl/container/flat_hash_map.h>

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

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

  size_t size() const { return items_.size(); }
  const char* encoding() const { return index_ ? "skiplist" : "listpack"; }
  const std::vector<Item>& items() const { return items_; }

  std::optional<double> Score(std::string_view member) const;
  // Inserts or updates; returns true if the member is new.
  bool Set(std::string_view member, double score, const ZSetLimits& limits);
  bool Remove(std::string_view member);
  // 0-based rank in ascending order, if present.
  std::optional<size_t> Rank(std::string_view member) const;
  // Removes items [first, last) by rank.
  void EraseRanks(size_t first, size_t last);
  // Index of the first item with score > s (or >= s when inclusive).
  size_t LowerBoundScore(double s, bool exclusive) const;

  std::unique_ptr<ZSetValue> Clone() const;
  size_t MemoryUsage() const;
  // Uses the hash index whatever the size (for large results of STORE ops).
  void ConvertIfNeeded(const ZSetLimits& limits);

 private:
  size_t Position(double score, std::string_view member) const;
  std::vector<Item> items_;
  std::unique_ptr<absl::flat_hash_map<std::string, double>> index_;
};

}  // namespace larder
