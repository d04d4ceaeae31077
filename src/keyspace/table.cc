#include "keyspace/table.h"

#include <xxhash.h>

#include <utility>

namespace larder {

namespace {
constexpr size_t kInitialBuckets = 4;
}

uint64_t HashKey(std::string_view key) { return XXH3_64bits(key.data(), key.size()); }

Table::~Table() { Clear(); }

Table::Table(Table&& o) noexcept { *this = std::move(o); }

Table& Table::operator=(Table&& o) noexcept {
  if (this != &o) {
    Clear();
    for (int i = 0; i < 2; ++i) {
      t_[i] = std::move(o.t_[i]);
      o.t_[i].size = o.t_[i].used = 0;
    }
    rehash_idx_ = o.rehash_idx_;
    size_ = o.size_;
    o.size_ = 0;
    o.rehash_idx_ = 0;
  }
  return *this;
}

uint64_t Table::Rev(uint64_t v) {
  // Bit reversal by swapping ever smaller halves.
  v = ((v >> 1) & 0x5555555555555555ULL) | ((v & 0x5555555555555555ULL) << 1);
  v = ((v >> 2) & 0x3333333333333333ULL) | ((v & 0x3333333333333333ULL) << 2);
  v = ((v >> 4) & 0x0F0F0F0F0F0F0F0FULL) | ((v & 0x0F0F0F0F0F0F0F0FULL) << 4);
  v = ((v >> 8) & 0x00FF00FF00FF00FFULL) | ((v & 0x00FF00FF00FF00FFULL) << 8);
  v = ((v >> 16) & 0x0000FFFF0000FFFFULL) | ((v & 0x0000FFFF0000FFFFULL) << 16);
  return (v >> 32) | (v << 32);
}

void Table::Clear() {
  for (auto& t : t_) {
    for (size_t i = 0; i < t.size; ++i) {
      for (Entry* e = t.buckets[i]; e;) {
        Entry* next = e->next;
        FreeEntry(e);
        e = next;
      }
    }
    t.buckets.reset();
    t.size = t.used = 0;
  }
  size_ = 0;
  rehash_idx_ = 0;
}

void Table::StartResize(size_t new_size) {
  Array fresh;
  fresh.buckets = std::make_unique<Entry*[]>(new_size);  // zero-initialised
  fresh.size = new_size;
  if (t_[0].size == 0) {
    t_[0] = std::move(fresh);
    return;
  }
  t_[1] = std::move(fresh);
  rehash_idx_ = 0;
}

bool Table::RehashSteps(int steps) {
  if (!rehashing()) return false;
  int empty_visits = steps * 10;  // bound the work on sparse arrays
  while (steps-- > 0 && t_[0].used > 0) {
    while (t_[0].buckets[rehash_idx_] == nullptr) {
      ++rehash_idx_;
      if (--empty_visits == 0) return true;
    }
    Entry* e = t_[0].buckets[rehash_idx_];
    while (e) {
      Entry* next = e->next;
      size_t idx = HashKey(e->key()) & t_[1].mask();
      e->next = t_[1].buckets[idx];
      t_[1].buckets[idx] = e;
      --t_[0].used;
      ++t_[1].used;
      e = next;
    }
    t_[0].buckets[rehash_idx_] = nullptr;
    ++rehash_idx_;
  }
  if (t_[0].used == 0) {
    t_[0] = std::move(t_[1]);
    t_[1].size = t_[1].used = 0;
    rehash_idx_ = 0;
    return false;
  }
  return true;
}

void Table::MaybeGrow() {
  if (rehashing()) return;
  if (t_[0].size == 0) {
    StartResize(kInitialBuckets);
    return;
  }
  if (t_[0].used >= t_[0].size) StartResize(t_[0].size * 2);
}

void Table::MaybeShrink() {
  if (rehashing() || t_[0].size <= kInitialBuckets) return;
  if (t_[0].used * 10 < t_[0].size) {
    size_t target = kInitialBuckets;
    while (target < t_[0].used) target *= 2;
    StartResize(target);
  }
}

Entry** Table::FindSlot(std::string_view key, uint64_t hash) {
  for (int i = 0; i < 2; ++i) {
    Array& t = t_[i];
    if (t.size == 0) continue;
    Entry** slot = &t.buckets[hash & t.mask()];
    for (; *slot; slot = &(*slot)->next) {
      if ((*slot)->key_len == key.size() && (*slot)->key() == key) return slot;
    }
    if (!rehashing()) break;
  }
  return nullptr;
}

Entry* Table::Find(std::string_view key) {
  if (size_ == 0) return nullptr;
  if (rehashing()) RehashStep();
  Entry** slot = FindSlot(key, HashKey(key));
  return slot ? *slot : nullptr;
}

void Table::Insert(Entry* e) {
  if (rehashing()) RehashStep();
  MaybeGrow();
  Array& t = rehashing() ? t_[1] : t_[0];
  size_t idx = HashKey(e->key()) & t.mask();
  e->next = t.buckets[idx];
  t.buckets[idx] = e;
  ++t.used;
  ++size_;
}

void Table::Relink(const Entry* old, Entry* fresh) {
  if (old == fresh) return;
  uint64_t hash = HashKey(fresh->key());
  for (int i = 0; i < 2; ++i) {
    Array& t = t_[i];
    if (t.size == 0) continue;
    for (Entry** slot = &t.buckets[hash & t.mask()]; *slot; slot = &(*slot)->next) {
      if (*slot == old) {
        *slot = fresh;
        return;
      }
    }
  }
}

Entry* Table::Unlink(std::string_view key) {
  if (size_ == 0) return nullptr;
  if (rehashing()) RehashStep();
  uint64_t hash = HashKey(key);
  for (int i = 0; i < 2; ++i) {
    Array& t = t_[i];
    if (t.size == 0) continue;
    for (Entry** slot = &t.buckets[hash & t.mask()]; *slot; slot = &(*slot)->next) {
      Entry* e = *slot;
      if (e->key_len == key.size() && e->key() == key) {
        *slot = e->next;
        e->next = nullptr;
        --t.used;
        --size_;
        return e;
      }
    }
    if (!rehashing()) break;
  }
  return nullptr;
}

Entry* Table::FindHashed(uint64_t hash, uint64_t mask) {
  if (size_ == 0) return nullptr;
  for (auto& t : t_) {
    if (!t.size) continue;
    for (Entry* e = t.buckets[hash & t.mask()]; e; e = e->next)
      if ((HashKey(e->key()) & mask) == hash) return e;
  }
  return nullptr;
}

Entry* Table::Random(std::mt19937_64& rng) {
  if (size_ == 0) return nullptr;
  Entry* head = nullptr;
  // Retry empty buckets; bounded because the table is at least 10% full
  // (shrink policy) except transiently.
  for (int tries = 0; !head && tries < 1000000; ++tries) {
    if (rehashing()) {
      size_t span = (t_[0].size - rehash_idx_) + t_[1].size;
      size_t r = rng() % span;
      head = r < t_[0].size - rehash_idx_ ? t_[0].buckets[rehash_idx_ + r]
                                          : t_[1].buckets[r - (t_[0].size - rehash_idx_)];
    } else {
      head = t_[0].buckets[rng() & t_[0].mask()];
    }
  }
  if (!head) {
    ForEach([&](Entry* e) { if (!head) head = e; });
    return head;
  }
  size_t len = 0;
  for (Entry* e = head; e; e = e->next) ++len;
  size_t pick = rng() % len;
  while (pick--) head = head->next;
  return head;
}

}  // namespace larder
