// The keyspace table of one database on one shard: a chained hash table of
// Entry blocks (the chain link is inside the entry, so no per-key node) with a
// power-of-two bucket array and incremental rehashing, as Redis's dict.
//
// Guarantees:
//  - Resizing never stalls: a resize moves a few buckets per operation (and
//    more in the shard's idle time) from the old array to the new one.
//  - Scan(cursor) visits every entry present for the whole scan at least once,
//    across any number of resizes, using reverse-binary cursor increments
//    (the cursor's high bits are what the smaller table ignores).
// Not thread-safe: owned and used by a single shard thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <random>
#include <string_view>

#include "keyspace/entry.h"

namespace larder {

uint64_t HashKey(std::string_view key);

class Table {
 public:
  Table() = default;
  ~Table();
  Table(const Table&) = delete;
  Table& operator=(const Table&) = delete;
  Table(Table&& o) noexcept;
  Table& operator=(Table&& o) noexcept;

  size_t size() const { return size_; }
  size_t buckets() const { return t_[0].size + t_[1].size; }
  bool rehashing() const { return t_[1].buckets != nullptr; }

  Entry* Find(std::string_view key);
  // Adds an entry whose key is not present. Takes ownership.
  void Insert(Entry* e);
  // `fresh` takes the place of `old` (same key), e.g. after a reallocation.
  // `old` must already be invalid/freed by the caller; only its address is used.
  void Relink(const Entry* old, Entry* fresh);
  // Removes the entry with this key and returns it (not freed), or nullptr.
  Entry* Unlink(std::string_view key);
  // Frees every entry.
  void Clear();

  // Calls fn(Entry*) for the entries of one bucket position (both arrays while
  // rehashing) and returns the next cursor; 0 when the scan is complete. `fn`
  // must not insert or remove entries; collect keys and act afterwards.
  template <typename Fn>
  uint64_t Scan(uint64_t cursor, Fn&& fn);
  // As up to `n` calls of Scan (fewer if the scan completes), with the
  // bucket slots and chain heads of a batch prefetched before it is walked:
  // consecutive cursors are far apart in the array, so a plain walk waits
  // on two cache misses per bucket, one after the other (a snapshot's scan).
  template <typename Fn>
  uint64_t ScanMany(uint64_t cursor, int n, Fn&& fn);

  // The entry whose key hash, masked, is `hash` (S3-FIFO queues hold hashes).
  Entry* FindHashed(uint64_t hash, uint64_t mask);

  // A random entry (uniform over buckets, then over the chain), or nullptr.
  Entry* Random(std::mt19937_64& rng);

  // Does up to `steps` bucket moves of an ongoing rehash; true if more remain.
  bool RehashSteps(int steps);
  // Shrinks the bucket array if the table got sparse (called from the cron).
  void MaybeShrink();

  // Walks all entries (no insert/remove inside).
  template <typename Fn>
  void ForEach(Fn&& fn) {
    for (auto& t : t_) {
      for (size_t i = 0; i < t.size; ++i)
        for (Entry* e = t.buckets[i]; e; e = e->next) fn(e);
    }
  }

 private:
  struct Array {
    std::unique_ptr<Entry*[]> buckets;
    size_t size = 0;  // power of two or 0
    size_t used = 0;
    size_t mask() const { return size - 1; }
  };

  void MaybeGrow();
  void StartResize(size_t new_size);
  void RehashStep() { RehashSteps(1); }
  Entry** FindSlot(std::string_view key, uint64_t hash);
  static uint64_t Rev(uint64_t v);
  template <typename Fn>
  static void EmitBucket(Array& a, size_t idx, Fn& fn) {
    for (Entry* e = a.buckets[idx]; e;) {
      Entry* next = e->next;
      fn(e);
      e = next;
    }
  }

  Array t_[2];
  size_t rehash_idx_ = 0;
  size_t size_ = 0;
};

template <typename Fn>
uint64_t Table::Scan(uint64_t v, Fn&& fn) {
  if (size_ == 0) return 0;
  if (!rehashing()) {
    uint64_t m0 = t_[0].mask();
    EmitBucket(t_[0], v & m0, fn);
    v |= ~m0;
    v = Rev(v);
    ++v;
    v = Rev(v);
    return v;
  }
  Array* small = &t_[0];
  Array* large = &t_[1];
  if (small->size > large->size) std::swap(small, large);
  uint64_t m0 = small->mask(), m1 = large->mask();
  EmitBucket(*small, v & m0, fn);
  // Then every bucket of the larger array that expands the small one's bucket.
  do {
    EmitBucket(*large, v & m1, fn);
    v |= ~m1;
    v = Rev(v);
    ++v;
    v = Rev(v);
  } while (v & (m0 ^ m1));
  return v;
}

template <typename Fn>
uint64_t Table::ScanMany(uint64_t v, int n, Fn&& fn) {
  if (size_ == 0) return 0;
  if (rehashing()) {  // two arrays: the plain walk
    for (int i = 0; i < n && (i == 0 || v != 0); ++i) v = Scan(v, fn);
    return v;
  }
  // A pipeline over the cursor sequence: the slot of the bucket kAhead
  // positions on is prefetched, the chain head of the one kAhead/2 on (its
  // slot has arrived by then), and the bucket at the front is walked.
  // `fn` may not resize the table (no insert or remove), so the indexes
  // kept name the same buckets.
  constexpr int kAhead = 16;
  Array& a = t_[0];
  uint64_t m = a.mask();
  size_t ring[kAhead];
  int queued = 0, head = 0;
  bool done = false;  // the cursor sequence has wrapped
  auto step = [&](uint64_t c) {
    c |= ~m;
    c = Rev(c);
    ++c;
    return Rev(c);
  };
  while ((queued < kAhead && queued < n && !done) || queued > 0) {
    if (queued < kAhead && queued < n && !done) {
      size_t i = v & m;
      __builtin_prefetch(&a.buckets[i]);
      ring[(head + queued) % kAhead] = i;
      ++queued;
      v = step(v);
      done = v == 0;
      if (queued > kAhead / 2)
        if (Entry* e = a.buckets[ring[(head + queued - 1 - kAhead / 2) % kAhead]]) __builtin_prefetch(e);
      if (queued < kAhead && queued < n && !done) continue;
    }
    EmitBucket(a, ring[head], fn);
    head = (head + 1) % kAhead;
    --queued;
    --n;
  }
  return done ? 0 : v;
}

}  // namespace larder
