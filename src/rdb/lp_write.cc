// lp_write: see rdb/lp_write.h.
#include "rdb/lp_write.h"

#include "common/numbers.h"

namespace larder::rdb {

namespace {

// As listpack's lpStringToInt64: a canonical integer of at most 20 bytes.
bool LpInt(std::string_view s, int64_t* v) { return !s.empty() && s.size() <= 20 && ParseInt64(s, v); }

size_t IntEncodedLen(int64_t v) {
  if (v >= 0 && v <= 127) return 1;
  if (v >= -4096 && v <= 4095) return 2;
  if (v >= -32768 && v <= 32767) return 3;
  if (v >= -8388608 && v <= 8388607) return 4;
  if (v >= INT32_MIN && v <= INT32_MAX) return 5;
  return 9;
}

size_t StrEncodedLen(size_t n) { return n + (n < 64 ? 1 : n < 4096 ? 2 : 5); }

size_t BacklenSize(size_t l) {
  if (l <= 127) return 1;
  if (l < 16383) return 2;
  if (l < 2097151) return 3;
  if (l < 268435455) return 4;
  return 5;
}

void PutLe(std::string* out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

}  // namespace

size_t ListpackEntrySize(std::string_view s) {
  int64_t v;
  size_t l = LpInt(s, &v) ? IntEncodedLen(v) : StrEncodedLen(s.size());
  return l + BacklenSize(l);
}

void ListpackBuilder::Backlen(size_t l) {
  // Read from the right: the last byte holds the lowest 7 bits, and every
  // byte but the leftmost has the high bit set.
  int n = static_cast<int>(BacklenSize(l));
  for (int i = n - 1; i >= 0; --i) {
    auto b = static_cast<uint8_t>((l >> (7 * i)) & 127);
    if (i != n - 1) b |= 128;
    body_.push_back(static_cast<char>(b));
  }
}

void ListpackBuilder::AddInt(int64_t v) {
  auto u = static_cast<uint64_t>(v);
  size_t before = body_.size();
  if (v >= 0 && v <= 127) {
    body_.push_back(static_cast<char>(v));
  } else if (v >= -4096 && v <= 4095) {
    uint64_t x = v < 0 ? (uint64_t{1} << 13) + u : u;
    body_.push_back(static_cast<char>(((x >> 8) & 0x1f) | 0xc0));
    body_.push_back(static_cast<char>(x & 0xff));
  } else if (v >= -32768 && v <= 32767) {
    body_.push_back(static_cast<char>(0xf1));
    PutLe(&body_, u, 2);
  } else if (v >= -8388608 && v <= 8388607) {
    body_.push_back(static_cast<char>(0xf2));
    PutLe(&body_, u, 3);
  } else if (v >= INT32_MIN && v <= INT32_MAX) {
    body_.push_back(static_cast<char>(0xf3));
    PutLe(&body_, u, 4);
  } else {
    body_.push_back(static_cast<char>(0xf4));
    PutLe(&body_, u, 8);
  }
  Backlen(body_.size() - before);
  ++count_;
}

void ListpackBuilder::Add(std::string_view s) {
  int64_t v;
  if (LpInt(s, &v)) return AddInt(v);
  size_t before = body_.size();
  size_t n = s.size();
  if (n < 64) {
    body_.push_back(static_cast<char>(0x80 | n));
  } else if (n < 4096) {
    body_.push_back(static_cast<char>(0xe0 | (n >> 8)));
    body_.push_back(static_cast<char>(n & 0xff));
  } else {
    body_.push_back(static_cast<char>(0xf0));
    PutLe(&body_, n, 4);
  }
  body_.append(s);
  Backlen(body_.size() - before);
  ++count_;
}

std::string ListpackBuilder::Finish() {
  std::string out;
  out.reserve(bytes());
  PutLe(&out, bytes(), 4);
  PutLe(&out, count_ < 65535 ? count_ : 65535, 2);
  out.append(body_);
  out.push_back(static_cast<char>(0xff));
  body_.clear();
  count_ = 0;
  return out;
}

std::string IntsetBytes(std::span<const int64_t> values) {
  int width = 2;
  for (int64_t v : values) {
    if (v < INT32_MIN || v > INT32_MAX) {
      width = 8;
      break;
    }
    if (v < INT16_MIN || v > INT16_MAX) width = 4;
  }
  std::string out;
  out.reserve(8 + values.size() * static_cast<size_t>(width));
  PutLe(&out, static_cast<uint64_t>(width), 4);
  PutLe(&out, values.size(), 4);
  for (int64_t v : values) PutLe(&out, static_cast<uint64_t>(v), width);
  return out;
}

}  // namespace larder::rdb
