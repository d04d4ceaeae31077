// crc64: see rdb/rdb.h.
//
// Redis's CRC-64 is the "Jones" variant: polynomial 0xad93d23594c935a9,
// reflected input and output, initial value 0, no final xor. Its check value
// (the CRC of "123456789") is 0xe9c6d914c4b8d9ca. We process the bytes
// reflected, so the tables are built from the bit-reversed polynomial.
//
// Eight bytes per step ("slicing by 8": table k holds the CRC of a byte
// followed by k zero bytes, so the eight lookups of one 64-bit word are
// independent). A byte at a time ran at about 400 MB/s and was the largest
// single cost of a snapshot's writer thread (docs/benchmarks.md).
#include <array>
#include <bit>
#include <cstring>

#include "rdb/rdb.h"

namespace larder::rdb {

namespace {

constexpr uint64_t kPolyReflected = 0x95ac9329ac4bc9b5ull;  // 0xad93d23594c935a9 bit-reversed

using Tables = std::array<std::array<uint64_t, 256>, 8>;

constexpr Tables MakeTables() {
  Tables t{};
  for (uint64_t i = 0; i < 256; ++i) {
    uint64_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ kPolyReflected : c >> 1;
    t[0][i] = c;
  }
  for (size_t k = 1; k < 8; ++k)
    for (size_t i = 0; i < 256; ++i) t[k][i] = (t[k - 1][i] >> 8) ^ t[0][t[k - 1][i] & 0xff];
  return t;
}

constexpr Tables kTables = MakeTables();

}  // namespace

uint64_t Crc64(uint64_t crc, std::string_view data) {
  const auto* p = reinterpret_cast<const unsigned char*>(data.data());
  size_t n = data.size();
  static_assert(std::endian::native == std::endian::little, "the word step reads little-endian words");
  for (; n >= 8; p += 8, n -= 8) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    w ^= crc;
    crc = kTables[7][w & 0xff] ^ kTables[6][(w >> 8) & 0xff] ^ kTables[5][(w >> 16) & 0xff] ^
          kTables[4][(w >> 24) & 0xff] ^ kTables[3][(w >> 32) & 0xff] ^ kTables[2][(w >> 40) & 0xff] ^
          kTables[1][(w >> 48) & 0xff] ^ kTables[0][w >> 56];
  }
  for (; n > 0; ++p, --n) crc = kTables[0][(crc ^ *p) & 0xff] ^ (crc >> 8);
  return crc;
}

}  // namespace larder::rdb
