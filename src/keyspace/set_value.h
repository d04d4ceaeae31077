// The value of a set key. Sets of integers only, up to set-max-intset-entries,
// are a sorted vector of int64 (OBJECT ENCODING "intset", members in numeric
// order as Redis returns them); any other member or more elements turn it
// into a hash set ("hashtable") for good, as in Redis 7.0.
#pragma once

#include <absl/container/flat_hash_set.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace larder {

class SetValue {
 public:
  using Table = absl::flat_hash_set<std::string>;

  size_t size() const { return table_ ? table_->size() : ints_.size(); }
  const char* encoding() const { return table_ ? "hashtable" : "intset"; }
  bool Contains(std::string_view m) const;
  // Returns true if added.
  bool Add(std::string_view m, size_t max_intset_entries);
  bool Remove(std::string_view m);

  // fn(member) in storage order.
  template <typename Fn>
  void ForEach(Fn&& fn) const {
    if (table_) {
      for (const auto& m : *table_) fn(std::string_view(m));
      return;
    }
    char buf[24];
    for (int64_t v : ints_) {
      int n = snprintf(buf, sizeof(buf), "%lld", static_cast<long long>(v));
      fn(std::string_view(buf, static_cast<size_t>(n)));
    }
  }
  std::vector<std::string> Members() const;

  std::unique_ptr<SetValue> Clone() const;
  size_t MemoryUsage() const;

 private:
  void ConvertToTable();
  std::vector<int64_t> ints_;
  std::unique_ptr<Table> table_;
};

}  // namespace larder
