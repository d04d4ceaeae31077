// PackedList: a sequence of byte strings in one contiguous heap block, for
// small collections (the role Redis's listpack plays). Layout:
//
//   [u32 total bytes][u32 count][varint len][bytes][varint len][bytes]...
//
// One allocation per collection and 1-3 bytes of overhead per element, at the
// price of O(n) lookups and inserts, which is what small collections want;
// callers convert to a hash table or skiplist past the configured limits
// (hash-max-listpack-entries and friends). sizeof(PackedList) is one pointer.
//
// Positions (`size_t pos`) are byte offsets of an element's header; they stay
// valid until the next modification.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace larder {

class PackedList {
 public:
  PackedList() = default;
  ~PackedList();
  PackedList(const PackedList& other);
  PackedList& operator=(const PackedList&) = delete;
  PackedList(PackedList&& other) noexcept : data_(other.data_) { other.data_ = nullptr; }
  PackedList& operator=(PackedList&& other) noexcept;

  size_t size() const { return data_ ? Count() : 0; }
  bool empty() const { return size() == 0; }
  // Bytes of the block (0 when empty and never allocated).
  size_t bytes() const { return data_ ? TotalBytes() : 0; }

  // Iteration: First() returns the position of element 0 (or End()).
  size_t First() const { return kHeader; }
  size_t End() const { return data_ ? TotalBytes() : kHeader; }
  // The element at `pos`; `*next` receives the following position.
  std::string_view Get(size_t pos, size_t* next) const;
  // Position of element `index` (0-based), or End().
  size_t Seek(size_t index) const;

  // Position of the first element equal to `s` among elements start, start+step,
  // ... (step 2 finds hash fields), or End().
  size_t Find(std::string_view s, size_t step = 1) const;

  // Inserts `s` before the element at `pos` (End() appends).
  void Insert(size_t pos, std::string_view s);
  void PushBack(std::string_view s) { Insert(End(), s); }
  void PushFront(std::string_view s) { Insert(First(), s); }
  // Removes `n` elements starting at `pos`.
  void Erase(size_t pos, size_t n = 1);
  // Replaces the element at `pos` with `s`.
  void Replace(size_t pos, std::string_view s);
  void Clear();

  // The block as bytes (empty when never allocated), and a list made of a
  // block laid out so (allocated with malloc; the list owns it): how a
  // QuickList keeps a node LZF-compressed and gets it back.
  std::string_view Block() const { return data_ ? std::string_view(data_, TotalBytes()) : std::string_view(); }
  static PackedList Adopt(char* block) {
    PackedList l;
    l.data_ = block;
    return l;
  }

  template <typename Fn>
  void ForEach(Fn&& fn) const {
    size_t pos = First(), end = End(), next;
    while (pos < end) {
      fn(Get(pos, &next));
      pos = next;
    }
  }

  // Active defragmentation: the block, if any, is replaced by
  // move(block), a copy of it at another address (or the same block).
  template <typename Move>
  void MoveBlock(Move&& move) {
    if (data_) data_ = static_cast<char*>(move(static_cast<void*>(data_)));
  }

 private:
  static constexpr size_t kHeader = 8;
  uint32_t TotalBytes() const;
  uint32_t Count() const;
  void SetTotalBytes(uint32_t v);
  void SetCount(uint32_t v);
  // Makes the block hold `new_total` bytes, moving bytes from `at` on by
  // `delta` (positive: open a gap; negative: close one).
  void Resize(size_t at, ptrdiff_t delta);

  char* data_ = nullptr;
};

}  // namespace larder
