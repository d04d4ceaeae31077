#include "keyspace/hash_value.h"

#include <vector>

namespace larder {

std::optional<std::string_view> HashValue::Get(std::string_view field) const {
  if (table()) {
    auto it = table()->find(absl::string_view(field.data(), field.size()));
    if (it == table()->end()) return std::nullopt;
    return std::string_view(it->second);
  }
  size_t pos = packed_.Find(field, 2);
  if (pos == packed_.End()) return std::nullopt;
  size_t next;
  packed_.Get(pos, &next);
  return packed_.Get(next, &next);
}

std::optional<int64_t> HashValue::FieldExpire(std::string_view field) const {
  if (!ttl()) return std::nullopt;
  auto it = ttl()->find(absl::string_view(field.data(), field.size()));
  if (it == ttl()->end()) return std::nullopt;
  return it->second;
}

void HashValue::SetFieldExpire(std::string_view field, int64_t ms) {
  if (!ttl()) Ex().ttl = std::make_unique<absl::flat_hash_map<std::string, int64_t>>();
  (*ttl())[std::string(field)] = ms;
}

bool HashValue::PersistField(std::string_view field) {
  if (!ttl()) return false;
  bool removed = ttl()->erase(absl::string_view(field.data(), field.size())) > 0;
  if (ttl()->empty()) {
    x_->ttl.reset();
    Trim();
  }
  return removed;
}

size_t HashValue::PurgeExpired(int64_t now_ms) {
  if (!ttl()) return 0;
  std::vector<std::string> due;
  for (const auto& [f, at] : *ttl())
    if (at <= now_ms) due.push_back(f);
  for (const auto& f : due) Delete(f);
  return due.size();
}

bool HashValue::Set(std::string_view field, std::string_view value, const HashLimits& limits, bool keep_ttl) {
  if (!keep_ttl) PersistField(field);
  if (!table() && (field.size() > limits.max_listpack_value || value.size() > limits.max_listpack_value))
    ConvertToTable();
  if (table()) {
    auto [it, inserted] = table()->try_emplace(std::string(field));
    it->second.assign(value);
    return inserted;
  }
  size_t pos = packed_.Find(field, 2);
  if (pos != packed_.End()) {
    size_t next;
    packed_.Get(pos, &next);
    packed_.Replace(next, value);
    return false;
  }
  packed_.PushBack(field);
  packed_.PushBack(value);
  if (size() > limits.max_listpack_entries) ConvertToTable();
  return true;
}

bool HashValue::Delete(std::string_view field) {
  PersistField(field);
  if (table()) return table()->erase(absl::string_view(field.data(), field.size())) > 0;
  size_t pos = packed_.Find(field, 2);
  if (pos == packed_.End()) return false;
  packed_.Erase(pos, 2);
  return true;
}

void HashValue::ConvertToTable() {
  auto t = std::make_unique<Table>();
  t->reserve(size());
  ForEach([&](std::string_view f, std::string_view v) { t->emplace(std::string(f), std::string(v)); });
  packed_.Clear();
  Ex().table = std::move(t);
}

std::unique_ptr<HashValue> HashValue::Clone() const {
  auto c = std::make_unique<HashValue>();
  c->packed_ = PackedList(packed_);
  if (table()) c->Ex().table = std::make_unique<Table>(*table());
  if (ttl()) c->Ex().ttl = std::make_unique<absl::flat_hash_map<std::string, int64_t>>(*ttl());
  return c;
}

size_t HashValue::MemoryUsage() const {
  size_t n = sizeof(HashValue) + packed_.bytes();
  if (table()) {
    n += table()->capacity() * (sizeof(std::string) * 2 + 1);
    for (const auto& [f, v] : *table()) {
      if (f.capacity() > 15) n += f.capacity() + 1;
      if (v.capacity() > 15) n += v.capacity() + 1;
    }
  }
  return n;
}

}  // namespace larder
