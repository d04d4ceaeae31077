#include "keyspace/set_value.h"

#include <algorithm>

#include "common/numbers.h"

namespace larder {

bool SetValue::Contains(std::string_view m) const {
  if (table_) return table_->contains(absl::string_view(m.data(), m.size()));
  int64_t v;
  return ParseInt64(m, &v) && std::binary_search(ints_.begin(), ints_.end(), v);
}

bool SetValue::Add(std::string_view m, size_t max_intset_entries) {
  if (!table_) {
    int64_t v;
    if (ParseInt64(m, &v)) {
      auto it = std::lower_bound(ints_.begin(), ints_.end(), v);
      if (it != ints_.end() && *it == v) return false;
      ints_.insert(it, v);
      if (ints_.size() > max_intset_entries) ConvertToTable();
      return true;
    }
    ConvertToTable();
  }
  return table_->emplace(m).second;
}

bool SetValue::Remove(std::string_view m) {
  if (table_) return table_->erase(absl::string_view(m.data(), m.size())) > 0;
  int64_t v;
  if (!ParseInt64(m, &v)) return false;
  auto it = std::lower_bound(ints_.begin(), ints_.end(), v);
  if (it == ints_.end() || *it != v) return false;
  ints_.erase(it);
  return true;
}

std::vector<std::string> SetValue::Members() const {
  std::vector<std::string> out;
  out.reserve(size());
  ForEach([&](std::string_view m) { out.emplace_back(m); });
  return out;
}

void SetValue::ConvertToTable() {
  auto t = std::make_unique<Table>();
  t->reserve(ints_.size());
  ForEach([&](std::string_view m) { t->emplace(m); });
  ints_.clear();
  ints_.shrink_to_fit();
  table_ = std::move(t);
}

std::unique_ptr<SetValue> SetValue::Clone() const {
  auto c = std::make_unique<SetValue>();
  c->ints_ = ints_;
  if (table_) c->table_ = std::make_unique<Table>(*table_);
  return c;
}

size_t SetValue::MemoryUsage() const {
  size_t n = sizeof(SetValue) + ints_.capacity() * sizeof(int64_t);
  if (table_) {
    n += table_->capacity() * (sizeof(std::string) + 1);
    for (const auto& m : *table_)
      if (m.capacity() > 15) n += m.capacity() + 1;
  }
  return n;
}

}  // namespace larder
