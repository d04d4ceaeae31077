// ChainedTable: a hash table of intrusive nodes (the chain link lives in the
// node, so there is no per-element allocation besides the node itself) with
// a power-of-two bucket array and incremental rehashing, the design of
// Redis's dict. It holds the keyspace of a shard (keyspace/table.h) and the
// members of large sets, hashes and sorted sets.
//
// Guarantees:
//  - Resizing never stalls: a resize moves a few buckets per operation (and
//    more when the owner calls RehashSteps) from the old array to the new one.
//  - Scan(cursor) visits every node present for the whole scan at least once,
//    across any number of resizes, using reverse-binary cursor increments
//    (the cursor's high bits are what the smaller table ignores).
//  - Random() is uniform over nodes and O(1) expected: the array is grown
//    at load factor 1 and the owner shrinks it (MaybeShrink) when it falls
//    below 10% full.
//
// Traits supplies, as static functions:
//   std::string_view Key(const Node*)   the node's key
//   Node*& Next(Node*)                  its chain link
//   uint64_t Hash(std::string_view)     the key's hash
//   void Free(Node*)                    what Clear and the destructor call
//
// Not thread-safe: owned and used by one thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <random>
#include <string_view>
#include <utility>

namespace larder {

// Bit reversal of a scan cursor.
inline uint64_t ReverseBits(uint64_t v) {
  v = ((v >> 1) & 0x5555555555555555ULL) | ((v & 0x5555555555555555ULL) << 1);
  v = ((v >> 2) & 0x3333333333333333ULL) | ((v & 0x3333333333333333ULL) << 2);
  v = ((v >> 4) & 0x0F0F0F0F0F0F0F0FULL) | ((v & 0x0F0F0F0F0F0F0F0FULL) << 4);
  v = ((v >> 8) & 0x00FF00FF00FF00FFULL) | ((v & 0x00FF00FF00FF00FFULL) << 8);
  v = ((v >> 16) & 0x0000FFFF0000FFFFULL) | ((v & 0x0000FFFF0000FFFFULL) << 16);
  return (v >> 32) | (v << 32);
}

template <typename Node, typename Traits>
class ChainedTable {
 public:
  ChainedTable() = default;
  ~ChainedTable() { Clear(); }
  ChainedTable(const ChainedTable&) = delete;
  ChainedTable& operator=(const ChainedTable&) = delete;
  ChainedTable(ChainedTable&& o) noexcept { *this = std::move(o); }
  ChainedTable& operator=(ChainedTable&& o) noexcept {
    if (this != &o) {
      Clear();
      for (int i = 0; i < 2; ++i) {
        t_[i] = std::move(o.t_[i]);
        o.t_[i].size = o.t_[i].used = 0;
      }
      rehash_idx_ = std::exchange(o.rehash_idx_, 0);
      size_ = std::exchange(o.size_, 0);
      random_bound_ = std::exchange(o.random_bound_, 4);
    }
    return *this;
  }

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  size_t buckets() const { return t_[0].size + t_[1].size; }
  bool rehashing() const { return t_[1].buckets != nullptr; }
  // Bytes of the bucket arrays (the nodes are the owner's to count).
  size_t BucketBytes() const { return buckets() * sizeof(Node*); }

  // The node with this key, or nullptr; moves a rehash on by one bucket.
  Node* Find(std::string_view key) {
    if (size_ == 0) return nullptr;
    if (rehashing()) RehashSteps(1);
    Node** slot = FindSlot(key, Traits::Hash(key));
    return slot ? *slot : nullptr;
  }
  // The same without moving a rehash on (for readers holding a const table).
  Node* Lookup(std::string_view key) const {
    if (size_ == 0) return nullptr;
    Node** slot = const_cast<ChainedTable*>(this)->FindSlot(key, Traits::Hash(key));
    return slot ? *slot : nullptr;
  }

  // Adds a node whose key is not present. Takes ownership.
  void Insert(Node* n) {
    if (rehashing()) RehashSteps(1);
    MaybeGrow();
    Array& t = rehashing() ? t_[1] : t_[0];
    size_t idx = Traits::Hash(Traits::Key(n)) & t.mask();
    Traits::Next(n) = t.buckets[idx];
    t.buckets[idx] = n;
    ++t.used;
    ++size_;
  }

  // `fresh` takes the place of `old` (same key), e.g. after a reallocation.
  // `old` must already be freed or abandoned; only its address is compared.
  void Relink(const Node* old, Node* fresh) {
    if (old == fresh) return;
    uint64_t hash = Traits::Hash(Traits::Key(fresh));
    for (auto& t : t_) {
      if (t.size == 0) continue;
      for (Node** slot = &t.buckets[hash & t.mask()]; *slot; slot = &Traits::Next(*slot)) {
        if (*slot == old) {
          *slot = fresh;
          return;
        }
      }
    }
  }

  // Removes the node with this key and returns it (not freed), or nullptr.
  Node* Unlink(std::string_view key) {
    if (size_ == 0) return nullptr;
    if (rehashing()) RehashSteps(1);
    uint64_t hash = Traits::Hash(key);
    for (auto& t : t_) {
      if (t.size == 0) continue;
      for (Node** slot = &t.buckets[hash & t.mask()]; *slot; slot = &Traits::Next(*slot)) {
        Node* n = *slot;
        if (Traits::Key(n) == key) {
          *slot = Traits::Next(n);
          Traits::Next(n) = nullptr;
          --t.used;
          --size_;
          return n;
        }
      }
      if (!rehashing()) break;
    }
    return nullptr;
  }

  // Frees every node (Traits::Free) and the bucket arrays.
  void Clear() {
    for (auto& t : t_) {
      for (size_t i = 0; i < t.size; ++i) {
        for (Node* n = t.buckets[i]; n;) {
          Node* next = Traits::Next(n);
          Traits::Free(n);
          n = next;
        }
      }
      t.buckets.reset();
      t.size = t.used = 0;
    }
    size_ = 0;
    rehash_idx_ = 0;
  }
  // Forgets every node without freeing any (their owner frees them) and
  // gives back the bucket arrays.
  void Forget() {
    for (auto& t : t_) {
      t.buckets.reset();
      t.size = t.used = 0;
    }
    size_ = 0;
    rehash_idx_ = 0;
  }

  // Calls fn(Node*) for the nodes of one bucket position (both arrays while
  // rehashing) and returns the next cursor; 0 when the scan is complete. `fn`
  // must not insert or remove nodes; collect keys and act afterwards.
  template <typename Fn>
  uint64_t Scan(uint64_t cursor, Fn&& fn) const;
  // As up to `n` calls of Scan (fewer if the scan completes), with the
  // bucket slots and chain heads of a batch prefetched before it is walked:
  // consecutive cursors are far apart in the array, so a plain walk waits
  // on two cache misses per bucket, one after the other (a snapshot's scan).
  template <typename Fn>
  uint64_t ScanMany(uint64_t cursor, int n, Fn&& fn) const;
  // As Scan, letting fn(Node*) put another node in each one's place: it
  // returns the node that takes the slot (the same one to keep it). The
  // replacement must have the same key and chain link (a copy of the node
  // at another address: active defragmentation).
  template <typename Fn>
  uint64_t ScanReplace(uint64_t cursor, Fn&& fn) {
    return WalkCursor(cursor, [&fn](const Array& a, size_t idx) {
      for (Node** slot = &a.buckets[idx]; *slot; slot = &Traits::Next(*slot)) *slot = fn(*slot);
    });
  }

  // The node whose key hash, masked, is `hash` (S3-FIFO queues hold hashes).
  Node* FindHashed(uint64_t hash, uint64_t mask) const {
    if (size_ == 0) return nullptr;
    for (const auto& t : t_) {
      if (!t.size) continue;
      for (Node* n = t.buckets[hash & t.mask()]; n; n = Traits::Next(n))
        if ((Traits::Hash(Traits::Key(n)) & mask) == hash) return n;
    }
    return nullptr;
  }

  // A node drawn uniformly at random, or nullptr.
  template <typename Rng>
  Node* Random(Rng& rng) const;

  // Asked before the array doubles on an insert, with the new array's
  // bytes: false keeps the current one (up to 5 nodes a bucket). Null:
  // always grows.
  void set_grow_guard(bool (*guard)(void* arg, size_t bytes), void* arg) {
    grow_guard_ = guard;
    grow_guard_arg_ = arg;
  }
  // A cheaper draw, uniform over non-empty buckets and then over the chain
  // (a node in a long chain is less likely): eviction's samples.
  template <typename Rng>
  Node* Sample(Rng& rng) const {
    if (size_ == 0) return nullptr;
    for (int tries = 0; tries < 1000; ++tries) {
      Node* head = RandomBucket(rng);
      if (!head) continue;
      size_t len = 0;
      for (Node* n = head; n; n = Traits::Next(n)) ++len;
      for (size_t pick = rng() % len; pick; --pick) head = Traits::Next(head);
      return head;
    }
    return Random(rng);
  }

  // Does up to `steps` bucket moves of an ongoing rehash; true if more remain.
  bool RehashSteps(int steps);
  // Starts shrinking the bucket array if it fell below 10% full; while a
  // resize is under way, moves it on by a few buckets instead (an owner that
  // calls this after each removal keeps random draws O(1) expected while a
  // collection empties).
  void MaybeShrink() {
    if (rehashing()) {
      RehashSteps(4);
      return;
    }
    if (t_[0].size <= kInitialBuckets) return;
    if (t_[0].used * 10 < t_[0].size) {
      size_t target = kInitialBuckets;
      while (target < t_[0].used) target *= 2;
      StartResize(target);
    }
  }
  // Sizes the array for `n` nodes up front (a load, a conversion).
  void Reserve(size_t n) {
    if (t_[0].size != 0 || rehashing()) return;
    size_t target = kInitialBuckets;
    while (target < n) target *= 2;
    StartResize(target);
  }

  // The nodes' bytes (bytes_of(node) each): summed over all of them when
  // `samples` is 0 or covers the table, else estimated from the first
  // `samples` a scan meets (MEMORY USAGE's SAMPLES, as Redis's estimate).
  template <typename Fn>
  size_t NodeBytes(size_t samples, Fn&& bytes_of) const {
    size_t total = 0, seen = 0;
    if (samples == 0 || samples >= size_) {
      ForEach([&](Node* n) { total += bytes_of(n); });
      return total;
    }
    uint64_t cursor = 0;
    do {
      cursor = Scan(cursor, [&](Node* n) {
        if (seen < samples) {
          total += bytes_of(n);
          ++seen;
        }
      });
    } while (cursor != 0 && seen < samples);
    return seen ? total * size_ / seen : 0;
  }

  // Walks all nodes (no insert/remove inside).
  template <typename Fn>
  void ForEach(Fn&& fn) const {
    for (const auto& t : t_) {
      for (size_t i = 0; i < t.size; ++i)
        for (Node* n = t.buckets[i]; n; n = Traits::Next(n)) fn(n);
    }
  }

 private:
  static constexpr size_t kInitialBuckets = 4;
  struct Array {
    std::unique_ptr<Node*[]> buckets;
    size_t size = 0;  // power of two or 0
    size_t used = 0;
    size_t mask() const { return size - 1; }
  };

  void MaybeGrow() {
    if (rehashing()) return;
    if (t_[0].size == 0) {
      StartResize(kInitialBuckets);
      return;
    }
    if (t_[0].used < t_[0].size) return;
    // A guard may hold the array at its size (as Redis's dictExpandAllowed
    // under maxmemory) until chains average kForceGrowLoad nodes.
    if (grow_guard_ && t_[0].used < t_[0].size * kForceGrowLoad &&
        !grow_guard_(grow_guard_arg_, t_[0].size * 2 * sizeof(Node*)))
      return;
    StartResize(t_[0].size * 2);
  }
  void StartResize(size_t new_size) {
    Array fresh;
    fresh.buckets = std::make_unique<Node*[]>(new_size);  // zero-initialised
    fresh.size = new_size;
    if (t_[0].size == 0) {
      t_[0] = std::move(fresh);
      return;
    }
    t_[1] = std::move(fresh);
    rehash_idx_ = 0;
  }
  Node** FindSlot(std::string_view key, uint64_t hash) {
    for (auto& t : t_) {
      if (t.size == 0) continue;
      Node** slot = &t.buckets[hash & t.mask()];
      for (; *slot; slot = &Traits::Next(*slot))
        if (Traits::Key(*slot) == key) return slot;
      if (!rehashing()) break;
    }
    return nullptr;
  }
  // The chain of a bucket drawn uniformly (both arrays while rehashing).
  template <typename Rng>
  Node* RandomBucket(Rng& rng) const {
    if (rehashing()) {
      size_t left = t_[0].size - rehash_idx_;  // buckets below rehash_idx_ are empty
      size_t r = rng() % (left + t_[1].size);
      return r < left ? t_[0].buckets[rehash_idx_ + r] : t_[1].buckets[r - left];
    }
    return t_[0].buckets[rng() & t_[0].mask()];
  }
  static uint64_t NextCursor(uint64_t v, uint64_t mask) {
    v |= ~mask;
    v = ReverseBits(v);
    ++v;
    return ReverseBits(v);
  }
  // The cursor step Scan and ScanReplace share: visit(array, bucket index)
  // for each bucket position of `v` (both arrays while rehashing).
  template <typename Visit>
  uint64_t WalkCursor(uint64_t v, Visit&& visit) const;
  template <typename Fn>
  static void EmitBucket(const Array& a, size_t idx, Fn& fn) {
    for (Node* n = a.buckets[idx]; n;) {
      Node* next = Traits::Next(n);
      fn(n);
      n = next;
    }
  }

  Array t_[2];
  size_t rehash_idx_ = 0;
  static constexpr size_t kForceGrowLoad = 5;
  bool (*grow_guard_)(void* arg, size_t bytes) = nullptr;
  void* grow_guard_arg_ = nullptr;
  size_t size_ = 0;
  mutable size_t random_bound_ = 4;  // Random(): the longest chain seen, at least 4
};

template <typename Node, typename Traits>
template <typename Fn>
uint64_t ChainedTable<Node, Traits>::Scan(uint64_t v, Fn&& fn) const {
  return WalkCursor(v, [&fn](const Array& a, size_t idx) { EmitBucket(a, idx, fn); });
}

template <typename Node, typename Traits>
template <typename Visit>
uint64_t ChainedTable<Node, Traits>::WalkCursor(uint64_t v, Visit&& visit) const {
  if (size_ == 0) return 0;
  if (!rehashing()) {
    uint64_t m0 = t_[0].mask();
    visit(t_[0], v & m0);
    return NextCursor(v, m0);
  }
  const Array* small = &t_[0];
  const Array* large = &t_[1];
  if (small->size > large->size) std::swap(small, large);
  uint64_t m0 = small->mask(), m1 = large->mask();
  visit(*small, v & m0);
  // Then every bucket of the larger array that expands the small one's bucket.
  do {
    visit(*large, v & m1);
    v = NextCursor(v, m1);
  } while (v & (m0 ^ m1));
  return v;
}

template <typename Node, typename Traits>
template <typename Fn>
uint64_t ChainedTable<Node, Traits>::ScanMany(uint64_t v, int n, Fn&& fn) const {
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
  const Array& a = t_[0];
  uint64_t m = a.mask();
  size_t ring[kAhead];
  int queued = 0, head = 0;
  bool done = false;  // the cursor sequence has wrapped
  while ((queued < kAhead && queued < n && !done) || queued > 0) {
    if (queued < kAhead && queued < n && !done) {
      size_t i = v & m;
      __builtin_prefetch(&a.buckets[i]);
      ring[(head + queued) % kAhead] = i;
      ++queued;
      v = NextCursor(v, m);
      done = v == 0;
      if (queued > kAhead / 2)
        if (Node* e = a.buckets[ring[(head + queued - 1 - kAhead / 2) % kAhead]]) __builtin_prefetch(e);
      if (queued < kAhead && queued < n && !done) continue;
    }
    EmitBucket(a, ring[head], fn);
    head = (head + 1) % kAhead;
    --queued;
    --n;
  }
  return done ? 0 : v;
}

template <typename Node, typename Traits>
template <typename Rng>
Node* ChainedTable<Node, Traits>::Random(Rng& rng) const {
  if (size_ == 0) return nullptr;
  // Uniform over nodes by rejection: a uniform bucket and a uniform slot
  // 0..bound-1 of its chain, kept when the chain has a node there. Every node
  // is as likely as long as no chain is longer than `bound`, which grows to
  // the longest chain a draw has met (and restarts the draw). Expected
  // tries: buckets * bound / size, a handful at the load factors the
  // array is kept at (from 0.1 to 1).
  for (int tries = 0; tries < 100000; ++tries) {
    Node* head = RandomBucket(rng);
    if (!head) continue;
    size_t slot = rng() % random_bound_, len = 0;
    Node* pick = nullptr;
    for (Node* n = head; n; n = Traits::Next(n), ++len)
      if (len == slot) pick = n;
    if (len > random_bound_) {
      random_bound_ = len;
      continue;
    }
    if (pick) return pick;
  }
  Node* first = nullptr;  // (not reached in practice) the first node will do
  ForEach([&](Node* n) {
    if (!first) first = n;
  });
  return first;
}

template <typename Node, typename Traits>
bool ChainedTable<Node, Traits>::RehashSteps(int steps) {
  if (!rehashing()) return false;
  int empty_visits = steps * 10;  // bound the work on sparse arrays
  while (steps-- > 0 && t_[0].used > 0) {
    while (t_[0].buckets[rehash_idx_] == nullptr) {
      ++rehash_idx_;
      if (--empty_visits == 0) return true;
    }
    for (Node* n = t_[0].buckets[rehash_idx_]; n;) {
      Node* next = Traits::Next(n);
      size_t idx = Traits::Hash(Traits::Key(n)) & t_[1].mask();
      Traits::Next(n) = t_[1].buckets[idx];
      t_[1].buckets[idx] = n;
      --t_[0].used;
      ++t_[1].used;
      n = next;
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

}  // namespace larder
