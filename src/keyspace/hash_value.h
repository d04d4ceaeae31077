// The value of a hash key. Small hashes are one PackedList of alternating
// field and value (OBJECT ENCODING "listpack", insertion order kept, as in
// Redis); past hash-max-listpack-entries fields or a field/value longer than
// hash-max-listpack-value bytes they become a hash table ("hashtable") and
// never go back, as in Redis.
#pragma once

#include <absl/container/flat_hash_map.h>

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "ds/packed_list.h"

namespace larder {

struct HashLimits {
  size_t max_listpack_entries = 128;
  size_t max_listpack_value = 64;
};

class HashValue {
 public:
  using Table = absl::flat_hash_map<std::string, std::string>;

  bool packed() const { return !table_; }
  size_t size() const { return table_ ? table_->size() : packed_.size() / 2; }
  const char* encoding() const { return table_ ? "hashtable" : "listpack"; }

  std::optional<std::string_view> Get(std::string_view field) const;
  // Returns true if the field is new.
  bool Set(std::string_view field, std::string_view value, const HashLimits& limits);
  bool Delete(std::string_view field);

  // fn(field, value) in storage order.
  template <typename Fn>
  void ForEach(Fn&& fn) const {
    if (table_) {
      for (const auto& [f, v] : *table_) fn(std::string_view(f), std::string_view(v));
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

  std::unique_ptr<HashValue> Clone() const;
  // Bytes used, for MEMORY USAGE (approximate for the table).
  size_t MemoryUsage() const;

 private:
  void ConvertToTable();

  PackedList packed_;
  std::unique_ptr<Table> table_;
};

}  // namespace larder
