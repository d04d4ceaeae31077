// LEB128-style unsigned varints (7 bits a byte, low bits first), shared by
// the packed encodings (PackedList, stream blocks). The reader trusts its
// input: it decodes only what an encoder of this process wrote.
#pragma once

#include <cstddef>
#include <cstdint>

namespace larder {

inline size_t VarintSize(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    ++n;
  }
  return n;
}

// Writes `v` at `p` (room for VarintSize(v) bytes); returns the bytes written.
inline size_t PutVarint(char* p, uint64_t v) {
  size_t n = 0;
  while (v >= 0x80) {
    p[n++] = static_cast<char>((v & 0x7f) | 0x80);
    v >>= 7;
  }
  p[n++] = static_cast<char>(v);
  return n;
}

// Reads a varint at `p` into *v; returns the bytes read.
inline size_t GetVarint(const char* p, uint64_t* v) {
  uint64_t r = 0;
  size_t n = 0;
  int shift = 0;
  while (true) {
    auto b = static_cast<unsigned char>(p[n++]);
    r |= static_cast<uint64_t>(b & 0x7f) << shift;
    if (!(b & 0x80)) break;
    shift += 7;
  }
  *v = r;
  return n;
}

}  // namespace larder
