#include "keyspace/hash_value.h"

#include <malloc.h>

#include <cstdlib>
#include <cstring>
#include <new>
#include <vector>

#include "keyspace/table.h"

namespace larder {

namespace {
HashNode* NewNode(std::string_view field, std::string_view value) {
  auto* n = static_cast<HashNode*>(std::malloc(sizeof(HashNode) + field.size() + value.size()));
  if (!n) throw std::bad_alloc();
  n->next = nullptr;
  n->field_len = static_cast<uint32_t>(field.size());
  n->value_len = static_cast<uint32_t>(value.size());
  if (!field.empty()) memcpy(n->bytes(), field.data(), field.size());
  if (!value.empty()) memcpy(n->bytes() + field.size(), value.data(), value.size());
  return n;
}
}  // namespace

uint64_t HashNodeTraits::Hash(std::string_view f) { return HashKey(f); }
void HashNodeTraits::Free(HashNode* n) { std::free(n); }

void HashValue::InsertNode(std::string_view field, std::string_view value) {
  table()->Insert(NewNode(field, value));
}

std::optional<std::string_view> HashValue::Get(std::string_view field) const {
  if (table()) {
    const HashNode* n = table()->Lookup(field);
    if (!n) return std::nullopt;
    return n->value();
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
    HashNode* n = table()->Find(field);
    if (!n) {
      InsertNode(field, value);
      return true;
    }
    if (sizeof(HashNode) + field.size() + value.size() <= malloc_usable_size(n)) {
      if (!value.empty()) memmove(n->bytes() + field.size(), value.data(), value.size());
      n->value_len = static_cast<uint32_t>(value.size());
      return false;
    }
    HashNode* fresh = NewNode(field, value);
    fresh->next = n->next;
    table()->Relink(n, fresh);
    std::free(n);
    return false;
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
  if (table()) {
    HashNode* n = table()->Unlink(field);
    if (!n) return false;
    std::free(n);
    table()->MaybeShrink();  // keeps random draws O(1) after many removals
    return true;
  }
  size_t pos = packed_.Find(field, 2);
  if (pos == packed_.End()) return false;
  packed_.Erase(pos, 2);
  return true;
}

void HashValue::ConvertToTable() {
  auto t = std::make_unique<Table>();
  t->Reserve(size() + 1);
  ForEach([&](std::string_view f, std::string_view v) { t->Insert(NewNode(f, v)); });
  packed_.Clear();
  Ex().table = std::move(t);
}

std::pair<std::string_view, std::string_view> HashValue::RandomField(std::mt19937_64& rng) const {
  if (table()) {
    const HashNode* n = table()->Random(rng);
    return {n->field(), n->value()};
  }
  size_t pick = rng() % size(), i = 0;
  std::pair<std::string_view, std::string_view> out;
  ForEach([&](std::string_view f, std::string_view v) {
    if (i++ == pick) out = {f, v};
  });
  return out;
}

std::unique_ptr<HashValue> HashValue::Clone() const {
  auto c = std::make_unique<HashValue>();
  c->packed_ = PackedList(packed_);
  if (table()) {
    c->Ex().table = std::make_unique<Table>();
    c->table()->Reserve(table()->size());
    table()->ForEach([&](HashNode* n) { c->InsertNode(n->field(), n->value()); });
  }
  if (ttl()) c->Ex().ttl = std::make_unique<absl::flat_hash_map<std::string, int64_t>>(*ttl());
  return c;
}

size_t HashValue::MemoryUsage(size_t samples) const {
  size_t n = sizeof(HashValue) + packed_.bytes();
  if (table()) {
    n += sizeof(Table) + table()->BucketBytes() +
         table()->NodeBytes(samples, [](HashNode* node) { return malloc_usable_size(node); });
  }
  return n;
}

}  // namespace larder
