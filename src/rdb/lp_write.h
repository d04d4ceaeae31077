// Building Redis listpacks and intsets byte for byte as Redis 7.0 builds
// them (listpack.c's lpAppend, intset.c), for the RDB writer: hashes, sorted
// sets, quicklist nodes and stream nodes are saved as these blobs.
//
// A listpack is
//   [u32 total bytes LE][u16 element count LE, 65535 when >= 65535] entries [0xff]
// and an entry is [encoding + data][backlen], backlen being the size of
// encoding + data in 1..5 bytes read from the right. A string that is a
// canonical 64-bit integer (Redis's string2ll) is stored as an integer in the
// smallest of 7, 13, 16, 24, 32, 64 bits; others as 6-bit, 12-bit or 32-bit
// length + bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace larder::rdb {

class ListpackBuilder {
 public:
  ListpackBuilder() = default;
  // As lpAppend: integers-looking strings become integer entries.
  void Add(std::string_view s);
  void AddInt(int64_t v);
  size_t count() const { return count_; }
  // Bytes the finished listpack takes (header, entries, end byte).
  size_t bytes() const { return kHeader + body_.size() + 1; }
  // The listpack; the builder is empty again afterwards.
  std::string Finish();

 private:
  static constexpr size_t kHeader = 6;
  void Backlen(size_t entry_len);
  std::string body_;
  size_t count_ = 0;
};

// Bytes an entry for `s` takes in a listpack (encoding, data and backlen).
size_t ListpackEntrySize(std::string_view s);

// An intset of `values` (ascending, distinct): [u32 encoding 2|4|8][u32
// count][values LE], the encoding being the smallest that holds them all.
std::string IntsetBytes(std::span<const int64_t> values);

}  // namespace larder::rdb
