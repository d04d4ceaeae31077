// crc64: see rdb/rdb.h.
//
// Redis's CRC-64 is the "Jones" variant: polynomial 0xad93d23594c935a9,
// reflected input and output, initial value 0, no final xor. Its check value
// (the CRC of "123456789") is 0xe9c6d914c4b8d9ca. We process the bytes
// reflected, so the table is built from the bit-reversed polynomial, one byte
// per step (8 KB of tables for slicing would be faster; RDB writing is
// dominated by the values' encoding, not by this loop).
#include <array>

#include "rdb/rdb.h"

namespace larder::rdb {

namespace {

constexpr uint64_t kPolyReflected = 0x95ac9329ac4bc9b5ull;  // 0xad93d23594c935a9 bit-reversed

constexpr std::array<uint64_t, 256> MakeTable() {
  std::array<uint64_t, 256> t{};
  for (uint64_t i = 0; i < 256; ++i) {
    uint64_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ kPolyReflected : c >> 1;
    t[i] = c;
  }
  return t;
}

constexpr std::array<uint64_t, 256> kTable = MakeTable();

}  // namespace

uint64_t Crc64(uint64_t crc, std::string_view data) {
  for (unsigned char b : data) crc = kTable[(crc ^ b) & 0xff] ^ (crc >> 8);
  return crc;
}

}  // namespace larder::rdb
