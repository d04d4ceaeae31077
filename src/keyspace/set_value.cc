#include "keyspace/set_value.h"

#include <malloc.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "common/numbers.h"
#include "keyspace/table.h"

namespace larder {

uint64_t SetNodeTraits::Hash(std::string_view m) { return HashKey(m); }
void SetNodeTraits::Free(SetNode* n) { std::free(n); }

bool SetValue::Contains(std::string_view m) const {
  if (table_) return table_->Lookup(m) != nullptr;
  int64_t v;
  return ParseInt64(m, &v) && std::binary_search(ints_.begin(), ints_.end(), v);
}

void SetValue::Insert(std::string_view m) {
  auto* n = static_cast<SetNode*>(std::malloc(sizeof(SetNode) + m.size()));
  if (!n) throw std::bad_alloc();
  n->next = nullptr;
  n->len = static_cast<uint32_t>(m.size());
  if (!m.empty()) memcpy(n + 1, m.data(), m.size());
  table_->Insert(n);
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
  if (table_->Find(m)) return false;
  Insert(m);
  return true;
}

bool SetValue::Remove(std::string_view m) {
  if (table_) {
    SetNode* n = table_->Unlink(m);
    if (!n) return false;
    std::free(n);
    table_->MaybeShrink();  // keeps random draws O(1) after many removals
    return true;
  }
  int64_t v;
  if (!ParseInt64(m, &v)) return false;
  auto it = std::lower_bound(ints_.begin(), ints_.end(), v);
  if (it == ints_.end() || *it != v) return false;
  ints_.erase(it);
  return true;
}

std::string SetValue::RandomMember(std::mt19937_64& rng) const {
  if (table_) return std::string(table_->Random(rng)->member());
  return std::to_string(ints_[rng() % ints_.size()]);
}

std::string SetValue::PopRandom(std::mt19937_64& rng) {
  if (table_) {
    SetNode* n = table_->Random(rng);
    std::string m(n->member());
    Remove(m);
    return m;
  }
  size_t i = rng() % ints_.size();
  std::string m = std::to_string(ints_[i]);
  ints_.erase(ints_.begin() + static_cast<ptrdiff_t>(i));
  return m;
}

std::vector<std::string> SetValue::Members() const {
  std::vector<std::string> out;
  out.reserve(size());
  ForEach([&](std::string_view m) { out.emplace_back(m); });
  return out;
}

void SetValue::ConvertToTable() {
  table_ = std::make_unique<Table>();
  table_->Reserve(ints_.size() + 1);
  for (int64_t v : ints_) Insert(std::to_string(v));
  ints_.clear();
  ints_.shrink_to_fit();
}

std::unique_ptr<SetValue> SetValue::Clone() const {
  auto c = std::make_unique<SetValue>();
  c->ints_ = ints_;
  if (table_) {
    c->table_ = std::make_unique<Table>();
    c->table_->Reserve(table_->size());
    table_->ForEach([&](SetNode* n) { c->Insert(n->member()); });
  }
  return c;
}

size_t SetValue::MemoryUsage(size_t samples) const {
  size_t n = sizeof(SetValue) + ints_.capacity() * sizeof(int64_t);
  if (table_) {
    n += sizeof(Table) + table_->BucketBytes() +
         table_->NodeBytes(samples, [](SetNode* node) { return malloc_usable_size(node); });
  }
  return n;
}

}  // namespace larder
