#include "common/slot.h"

#include <array>

namespace larder {

namespace {
// CRC16-CCITT (XMODEM): polynomial 0x1021, initial value 0, no reflection.
constexpr std::array<uint16_t, 256> MakeTable() {
  std::array<uint16_t, 256> table{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint16_t crc = static_cast<uint16_t>(i << 8);
    for (int bit = 0; bit < 8; ++bit)
      crc = (crc & 0x8000) ? static_cast<uint16_t>((crc << 1) ^ 0x1021) : static_cast<uint16_t>(crc << 1);
    table[i] = crc;
  }
  return table;
}
constexpr auto kTable = MakeTable();
// kSlice[k][i]: the CRC of byte i followed by k zero bytes. CRC is linear,
// so four input bytes fold into the CRC in one step (slice-by-4): every
// command's key goes through this to find its shard.
constexpr std::array<std::array<uint16_t, 256>, 4> MakeSlices() {
  std::array<std::array<uint16_t, 256>, 4> t{};
  t[0] = kTable;
  for (int k = 1; k < 4; ++k)
    for (uint32_t i = 0; i < 256; ++i)
      t[k][i] = static_cast<uint16_t>((t[k - 1][i] << 8) ^ kTable[t[k - 1][i] >> 8]);
  return t;
}
constexpr auto kSlice = MakeSlices();
}  // namespace

uint16_t Crc16(std::string_view data) {
  uint32_t crc = 0;
  const auto* p = reinterpret_cast<const unsigned char*>(data.data());
  size_t n = data.size();
  for (; n >= 4; n -= 4, p += 4) {
    uint32_t w = ((static_cast<uint32_t>(p[0]) << 24) | (static_cast<uint32_t>(p[1]) << 16) |
                  (static_cast<uint32_t>(p[2]) << 8) | p[3]) ^
                 (crc << 16);
    crc = kSlice[3][w >> 24] ^ kSlice[2][(w >> 16) & 0xff] ^ kSlice[1][(w >> 8) & 0xff] ^ kSlice[0][w & 0xff];
  }
  for (; n; --n, ++p) crc = ((crc << 8) ^ kTable[((crc >> 8) ^ *p) & 0xff]) & 0xffff;
  return static_cast<uint16_t>(crc);
}

uint32_t KeySlot(std::string_view key) {
  size_t open = key.find('{');
  if (open != std::string_view::npos) {
    size_t close = key.find('}', open + 1);
    if (close != std::string_view::npos && close > open + 1)
      key = key.substr(open + 1, close - open - 1);
  }
  return Crc16(key) & (kNumSlots - 1);
}

}  // namespace larder
