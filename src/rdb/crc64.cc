// crc64: see rdb/rdb.h. Byte-at-a-time over a table built once (the
// reflected Jones polynomial, no initial or final inversion, as Redis's
// crc64: CRC64("123456789") = 0xe9c6d914c4b8d9ca).
#include "rdb/rdb.h"

#include <array>

namespace larder::rdb {

namespace {
constexpr uint64_t kJonesReflected = 0x95ac9329ac4bc9b5ULL;

constexpr std::array<uint64_t, 256> MakeTable() {
  std::array<uint64_t, 256> t{};
  for (uint64_t i = 0; i < 256; ++i) {
    uint64_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ kJonesReflected : c >> 1;
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
