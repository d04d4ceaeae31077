// QuickList: a list of byte strings kept as a sequence of PackedList nodes
// (Redis's quicklist idea): a few bytes of overhead per element instead of a
// std::string each, O(1) pushes and pops at both ends, and O(N/node) index
// lookups that skip whole nodes by their counts.
//
// How full a node may get is Redis's list-max-listpack-size (`fill`):
//   fill > 0    at most `fill` elements and at most 8 KB per node
//   fill -1..-5 at most 4, 8, 16, 32 or 64 KB per node
// An element larger than that gets a node of its own, and so does one of
// at least packed_threshold bytes (1 GB; Redis's plain nodes, which DEBUG
// QUICKLIST-PACKED-THRESHOLD moves for tests): nothing joins its node.
//
// Compression is Redis's list-compress-depth (`depth`): 0 keeps every node
// as it is; d > 0 keeps the d nodes at each end as they are and LZF-
// compresses the ones between (those of at least 48 bytes that shrink by 8
// or more), as Redis does: the ends, where pushes and pops happen, cost
// nothing more, and the middle of a long queue takes less memory. A
// modification opens the nodes it touches and closes them again before it
// returns; a read decompresses a copy and leaves the node compressed.
//
// Views passed to Walk's and ForEach's callbacks are valid during the call;
// the one At returns until the next At or modification. Not thread-safe
// (At keeps its copy in the list).
#pragma once

#include <atomic>
#include <cstddef>
#include <deque>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ds/packed_list.h"

namespace larder {

class QuickList {
 public:
  static constexpr size_t kDefaultPackedThreshold = size_t{1} << 30;
  static std::atomic<size_t> packed_threshold;

  explicit QuickList(int fill = -2, int depth = 0) : fill_(fill), depth_(depth < 0 ? 0 : depth) {}
  QuickList(const QuickList& o) : nodes_(o.nodes_), size_(o.size_), fill_(o.fill_), depth_(o.depth_) {}
  QuickList& operator=(const QuickList&) = delete;
  QuickList(QuickList&&) noexcept = default;
  QuickList& operator=(QuickList&&) noexcept = default;

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  size_t node_count() const { return nodes_.size(); }
  int fill() const { return fill_; }
  int depth() const { return static_cast<int>(depth_); }
  size_t compressed_nodes() const;

  void PushFront(std::string_view s);
  void PushBack(std::string_view s);
  // Removes and returns the first (or last) element; the list must not be empty.
  std::string PopFront();
  std::string PopBack();

  // The element at 0-based `i` (< size()).
  std::string_view At(size_t i) const;
  // Replaces the element at `i` (< size()).
  void Set(size_t i, std::string_view s);
  // Inserts `s` before index `i` (i == size() appends).
  void Insert(size_t i, std::string_view s);
  // Removes `n` elements from index `i` on.
  void Erase(size_t i, size_t n);
  void Clear() {
    nodes_.clear();
    size_ = 0;
    scratch_.Clear();
  }

  // fn(string_view) from index `i` on, ascending, or with `rev` descending
  // from the element `i` places below the end, while fn returns true.
  template <typename Fn>
  void Walk(size_t i, bool rev, Fn&& fn) const {
    if (i >= size_) return;
    PackedList copy;  // a compressed node's elements
    if (!rev) {
      auto [n, k] = Locate(i);
      for (; n < nodes_.size(); ++n, k = 0) {
        const PackedList& node = Read(n, &copy);
        size_t pos = node.Seek(k), end = node.End(), next;
        for (; pos < end; pos = next)
          if (!fn(node.Get(pos, &next))) return;
      }
      return;
    }
    auto [n, k] = Locate(size_ - 1 - i);
    std::vector<std::string_view> elems;  // a node walked backwards
    for (size_t m = n + 1; m-- > 0;) {
      const PackedList& node = Read(m, &copy);
      elems.clear();
      node.ForEach([&](std::string_view s) { elems.push_back(s); });
      size_t top = m == n ? k + 1 : elems.size();
      for (size_t j = top; j-- > 0;)
        if (!fn(elems[j])) return;
    }
  }
  template <typename Fn>
  void ForEach(Fn&& fn) const {
    PackedList copy;
    for (size_t n = 0; n < nodes_.size(); ++n) Read(n, &copy).ForEach(fn);
  }

  // Bytes of the nodes and the node index.
  size_t MemoryUsage() const;

 private:
  // A node: its elements packed, or (an interior node of a list with a
  // compression depth) LZF-compressed: `lzf` is [u32 count][u32 bytes of the
  // packed list][u32 compressed bytes][compressed bytes], `packed` empty.
  struct Node {
    PackedList packed;
    char* lzf = nullptr;
    bool incompressible = false;  // tried and kept as it is until it changes

    Node() = default;
    Node(const Node& o);
    Node(Node&& o) noexcept : packed(std::move(o.packed)), lzf(o.lzf), incompressible(o.incompressible) {
      o.lzf = nullptr;
    }
    Node& operator=(Node&& o) noexcept;
    ~Node();
    size_t size() const;
    size_t bytes() const;  // of the packed list, compressed or not
    size_t held_bytes() const;
    void Compress();
    void Decompress();
    PackedList Decompressed() const;
  };

  // (node, index within the node) of element `i`, found from the nearer end.
  std::pair<size_t, size_t> Locate(size_t i) const;
  bool Fits(const Node& node, std::string_view s) const;
  // Node `n`'s elements: the node itself, or a copy decompressed into *copy.
  const PackedList& Read(size_t n, PackedList* copy) const;
  // Node `n`, decompressed for a change.
  PackedList& Open(size_t n);
  // After a change that opened nodes lo..hi: the end nodes kept as they are,
  // the touched ones and those that became interior compressed.
  void Settle(size_t lo, size_t hi);
  // Splits node `n` in two halves if it grew past its limit.
  void MaybeSplit(size_t n);
  // Splits node `n` before its element `k` (0 < k < its size).
  void SplitAt(size_t n, size_t k);
  void EraseIn(size_t i, size_t n);
  void InsertIn(size_t i, std::string_view s);

  std::deque<Node> nodes_;
  size_t size_ = 0;
  int fill_;
  size_t depth_;
  mutable PackedList scratch_;  // At's copy of a compressed node
};

}  // namespace larder
