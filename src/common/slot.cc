#include "common/slot.h"

#include <array>
#include <bit>
#include <cstring>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

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
// so eight input bytes fold into the CRC in one step (slice-by-8): every
// command's key goes through this to find its shard.
constexpr std::array<std::array<uint16_t, 256>, 8> MakeSlices() {
  std::array<std::array<uint16_t, 256>, 8> t{};
  t[0] = kTable;
  for (int k = 1; k < 8; ++k)
    for (uint32_t i = 0; i < 256; ++i)
      t[k][i] = static_cast<uint16_t>((t[k - 1][i] << 8) ^ kTable[t[k - 1][i] >> 8]);
  return t;
}
constexpr auto kSlice = MakeSlices();

// Eight bytes as one big-endian number: the first byte is the highest.
inline uint64_t Load8(const unsigned char* p) {
  uint64_t w;
  std::memcpy(&w, p, 8);
  if constexpr (std::endian::native == std::endian::little) w = __builtin_bswap64(w);
  return w;
}

inline uint32_t Fold8(uint32_t crc, uint64_t w) {
  w ^= static_cast<uint64_t>(crc) << 48;
  return kSlice[7][w >> 56] ^ kSlice[6][(w >> 48) & 0xff] ^ kSlice[5][(w >> 40) & 0xff] ^
         kSlice[4][(w >> 32) & 0xff] ^ kSlice[3][(w >> 24) & 0xff] ^ kSlice[2][(w >> 16) & 0xff] ^
         kSlice[1][(w >> 8) & 0xff] ^ kSlice[0][w & 0xff];
}

inline uint32_t FoldByte(uint32_t crc, unsigned char c) {
  return ((crc << 8) ^ kTable[((crc >> 8) ^ c) & 0xff]) & 0xffff;
}

// Whether any of the eight bytes of w is '{' (the classic has-zero-byte
// test on w XOR "{{{{{{{{"; exact for "any").
inline bool HasBrace(uint64_t w) {
  uint64_t x = w ^ 0x7B7B7B7B7B7B7B7BULL;
  return ((x - 0x0101010101010101ULL) & ~x & 0x8080808080808080ULL) != 0;
}

// Crc16's result, or (kStopAtBrace) kBrace as soon as a '{' shows: most
// keys have none, and KeySlot learns that in the pass that hashes them.
constexpr uint32_t kBrace = 0x10000;

template <bool kStopAtBrace>
uint32_t Crc16Tables(const unsigned char* p, size_t n) {
  uint32_t crc = 0;
  for (; n >= 8; n -= 8, p += 8) {
    uint64_t raw;
    std::memcpy(&raw, p, 8);
    if (kStopAtBrace && HasBrace(raw)) return kBrace;
    crc = Fold8(crc, Load8(p));
  }
  for (; n; --n, ++p) {
    if (kStopAtBrace && *p == '{') return kBrace;
    crc = FoldByte(crc, *p);
  }
  return crc;
}

#if defined(__x86_64__)
// The same with carry-less multiplication (PCLMULQDQ), two per 8 bytes
// instead of eight table lookups. Eight bytes W fold in as
// crc' = (W + crc * x^48) * x^16 mod P; with T = W + crc * x^48 (degree < 64)
// Barrett reduction gives the quotient q = T + floor(T * mu' / x^64), where
// mu = x^64 + mu' = floor(x^80 / P), and then crc' = (q * P) mod x^16
// (T * x^16 has no bits below x^16). Over GF(2) this is exact.
constexpr uint64_t kPoly = 0x11021;
constexpr uint64_t BarrettMu() {
  unsigned __int128 rem = static_cast<unsigned __int128>(1) << 80;
  unsigned __int128 q = 0;
  for (int bit = 80; bit >= 16; --bit) {
    if ((rem >> bit) & 1) {
      rem ^= static_cast<unsigned __int128>(kPoly) << (bit - 16);
      q |= static_cast<unsigned __int128>(1) << (bit - 16);
    }
  }
  return static_cast<uint64_t>(q);  // x^64 dropped
}
constexpr uint64_t kMu = BarrettMu();

template <bool kStopAtBrace>
__attribute__((target("pclmul,sse4.1"))) uint32_t Crc16Clmul(const unsigned char* p, size_t n) {
  const __m128i mu = _mm_cvtsi64_si128(static_cast<long long>(kMu));
  const __m128i poly = _mm_cvtsi64_si128(static_cast<long long>(kPoly));
  uint32_t crc = 0;
  for (; n >= 8; n -= 8, p += 8) {
    uint64_t raw;
    std::memcpy(&raw, p, 8);
    if (kStopAtBrace && HasBrace(raw)) return kBrace;
    uint64_t t = Load8(p) ^ (static_cast<uint64_t>(crc) << 48);
    __m128i tv = _mm_cvtsi64_si128(static_cast<long long>(t));
    uint64_t q = t ^ static_cast<uint64_t>(_mm_extract_epi64(_mm_clmulepi64_si128(tv, mu, 0x00), 1));
    __m128i qv = _mm_cvtsi64_si128(static_cast<long long>(q));
    crc = static_cast<uint32_t>(_mm_cvtsi128_si64(_mm_clmulepi64_si128(qv, poly, 0x00))) & 0xffff;
  }
  for (; n; --n, ++p) {
    if (kStopAtBrace && *p == '{') return kBrace;
    crc = FoldByte(crc, *p);
  }
  return crc;
}

const bool kHaveClmul = [] {
  __builtin_cpu_init();  // runs before main: the CPU model must be read first
  return __builtin_cpu_supports("pclmul") && __builtin_cpu_supports("sse4.1");
}();
#else
constexpr bool kHaveClmul = false;
#endif

template <bool kStopAtBrace>
inline uint32_t Crc16Of(const unsigned char* p, size_t n) {
#if defined(__x86_64__)
  if (kHaveClmul) [[likely]]
    return Crc16Clmul<kStopAtBrace>(p, n);
#endif
  return Crc16Tables<kStopAtBrace>(p, n);
}

uint32_t TaggedSlot(std::string_view key) {
  size_t open = key.find('{');
  if (open != std::string_view::npos) {
    size_t close = key.find('}', open + 1);
    if (close != std::string_view::npos && close > open + 1) key = key.substr(open + 1, close - open - 1);
  }
  return Crc16(key) & (kNumSlots - 1);
}

inline const unsigned char* Bytes(std::string_view s) { return reinterpret_cast<const unsigned char*>(s.data()); }

template <uint32_t (*kCrc)(const unsigned char*, size_t)>
uint32_t SlotOf(std::string_view key) {
  uint32_t crc = kCrc(Bytes(key), key.size());
  if (crc == kBrace) [[unlikely]]
    return TaggedSlot(key);
  return crc & (kNumSlots - 1);
}
}  // namespace

uint16_t Crc16(std::string_view data) { return static_cast<uint16_t>(Crc16Of<false>(Bytes(data), data.size())); }

uint32_t KeySlot(std::string_view key) { return SlotOf<Crc16Of<true>>(key); }

namespace slot_internal {
uint16_t Crc16WithTables(std::string_view data) {
  return static_cast<uint16_t>(Crc16Tables<false>(Bytes(data), data.size()));
}
uint32_t KeySlotWithTables(std::string_view key) { return SlotOf<Crc16Tables<true>>(key); }
bool UsesCarrylessMultiply() { return kHaveClmul; }
}  // namespace slot_internal

}  // namespace larder
