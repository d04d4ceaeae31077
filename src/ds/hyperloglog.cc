#include "ds/hyperloglog.h"

#include <cmath>
#include <cstring>
#include <limits>

namespace larder::hll {

namespace {

constexpr uint64_t kHashSeed = 0xadc83b19ULL;
constexpr double kAlphaInf = 0.721347520444481703680;  // 1 / (2 ln 2)
constexpr int kValMax = 32;                              // largest value a VAL opcode holds
constexpr int kValMaxRun = 4;
constexpr int kZeroMaxRun = 64;
constexpr int kXZeroMaxRun = 16384;

// ---- sparse opcodes ----
bool IsZero(uint8_t b) { return (b & 0xc0) == 0; }
bool IsXZero(uint8_t b) { return (b & 0xc0) == 0x40; }
bool IsVal(uint8_t b) { return (b & 0x80) != 0; }
int ZeroRun(const uint8_t* p) { return (p[0] & 0x3f) + 1; }
int XZeroRun(const uint8_t* p) { return (((p[0] & 0x3f) << 8) | p[1]) + 1; }
int ValValue(uint8_t b) { return ((b >> 2) & 0x1f) + 1; }
int ValRun(uint8_t b) { return (b & 0x3) + 1; }
uint8_t ValOp(int value, int run) { return static_cast<uint8_t>(0x80 | ((value - 1) << 2) | (run - 1)); }
// Writes a ZERO or XZERO opcode for `run` zeros; returns its length.
int PutZeros(uint8_t* p, int run) {
  if (run <= kZeroMaxRun) {
    p[0] = static_cast<uint8_t>(run - 1);
    return 1;
  }
  p[0] = static_cast<uint8_t>(0x40 | ((run - 1) >> 8));
  p[1] = static_cast<uint8_t>((run - 1) & 0xff);
  return 2;
}

// Walks the opcodes of a sparse value, calling `zeros(start, run)` and
// `val(start, run, value)`; false when they do not cover exactly
// kRegisters registers.
template <typename Zeros, typename Val>
bool WalkSparse(std::string_view v, Zeros zeros, Val val) {
  const auto* p = reinterpret_cast<const uint8_t*>(v.data()) + kHeaderSize;
  const auto* end = reinterpret_cast<const uint8_t*>(v.data()) + v.size();
  size_t idx = 0;
  while (p < end) {
    if (IsZero(*p)) {
      int run = ZeroRun(p);
      zeros(idx, run);
      idx += static_cast<size_t>(run);
      ++p;
    } else if (IsXZero(*p)) {
      if (p + 1 >= end) return false;
      int run = XZeroRun(p);
      zeros(idx, run);
      idx += static_cast<size_t>(run);
      p += 2;
    } else {
      int run = ValRun(*p);
      if (idx + static_cast<size_t>(run) > kRegisters) return false;
      val(idx, run, ValValue(*p));
      idx += static_cast<size_t>(run);
      ++p;
    }
    if (idx > kRegisters) return false;
  }
  return idx == kRegisters;
}

uint8_t* Registers(std::string* v) { return reinterpret_cast<uint8_t*>(v->data()) + kHeaderSize; }
const uint8_t* Registers(std::string_view v) { return reinterpret_cast<const uint8_t*>(v.data()) + kHeaderSize; }

uint64_t Murmur64A(const void* data, size_t len, uint64_t seed) {
  constexpr uint64_t m = 0xc6a4a7935bd1e995ULL;
  constexpr int r = 47;
  uint64_t h = seed ^ (len * m);
  const auto* p = static_cast<const uint8_t*>(data);
  const uint8_t* end = p + (len & ~size_t{7});
  for (; p != end; p += 8) {
    uint64_t k = 0;
    for (int i = 7; i >= 0; --i) k = (k << 8) | p[i];  // little endian on any host
    k *= m;
    k ^= k >> r;
    k *= m;
    h ^= k;
    h *= m;
  }
  size_t tail = len & 7;
  if (tail) {
    for (size_t i = tail; i-- > 0;) h ^= static_cast<uint64_t>(p[i]) << (8 * i);
    h *= m;
  }
  h ^= h >> r;
  h *= m;
  h ^= h >> r;
  return h;
}

// Ertl's sigma and tau ("New cardinality estimation algorithms for
// HyperLogLog sketches", 2017), iterated to convergence in double precision.
double Sigma(double x) {
  if (x == 1.0) return std::numeric_limits<double>::infinity();
  double y = 1.0, z = x, prev;
  do {
    x *= x;
    prev = z;
    z += x * y;
    y += y;
  } while (prev != z);
  return z;
}

double Tau(double x) {
  if (x == 0.0 || x == 1.0) return 0.0;
  double y = 1.0, z = 1.0 - x, prev;
  do {
    x = std::sqrt(x);
    prev = z;
    y *= 0.5;
    z -= std::pow(1.0 - x, 2) * y;
  } while (prev != z);
  return z / 3.0;
}

uint64_t Estimate(const int* histo) {
  double m = static_cast<double>(kRegisters);
  double z = m * Tau((m - histo[kMaxRun]) / m);
  for (int j = kMaxRun - 1; j >= 1; --j) {
    z += histo[j];
    z *= 0.5;
  }
  z += m * Sigma(histo[0] / m);
  return static_cast<uint64_t>(std::llround(kAlphaInf * m * m / z));
}

}  // namespace

bool LooksValid(std::string_view v) {
  if (v.size() < kHeaderSize || v.substr(0, 4) != "HYLL") return false;
  uint8_t enc = Encoding(v);
  if (enc > kSparse) return false;
  return enc != kDense || v.size() == kDenseSize;
}

std::string NewEmpty() {
  std::string v(kHeaderSize, '\0');
  memcpy(v.data(), "HYLL", 4);
  v[4] = static_cast<char>(kSparse);
  uint8_t ops[2];
  PutZeros(ops, static_cast<int>(kRegisters));
  v.append(reinterpret_cast<const char*>(ops), 2);
  return v;
}

void HashElement(std::string_view element, uint32_t* index, uint8_t* count) {
  uint64_t h = Murmur64A(element.data(), element.size(), kHashSeed);
  *index = static_cast<uint32_t>(h & (kRegisters - 1));
  h >>= kPrecision;
  h |= uint64_t{1} << (64 - kPrecision);  // stops the count at kMaxRun
  uint8_t n = 1;
  while ((h & 1) == 0) {
    ++n;
    h >>= 1;
  }
  *count = n;
}

uint8_t DenseGetRegister(const uint8_t* regs, uint32_t index) {
  size_t bit = static_cast<size_t>(index) * 6;
  size_t b0 = bit >> 3;
  unsigned shift = bit & 7;
  unsigned v = regs[b0] >> shift;
  if (shift > 2) v |= static_cast<unsigned>(regs[b0 + 1]) << (8 - shift);
  return static_cast<uint8_t>(v & 63);
}

bool DenseSetRegister(uint8_t* regs, uint32_t index, uint8_t count) {
  if (count <= DenseGetRegister(regs, index)) return false;
  size_t bit = static_cast<size_t>(index) * 6;
  size_t b0 = bit >> 3;
  unsigned shift = bit & 7;
  regs[b0] = static_cast<uint8_t>((regs[b0] & ~(63u << shift)) | (static_cast<unsigned>(count) << shift));
  if (shift > 2) {
    unsigned hi = 8 - shift;
    regs[b0 + 1] = static_cast<uint8_t>((regs[b0 + 1] & ~(63u >> hi)) | (static_cast<unsigned>(count) >> hi));
  }
  return true;
}

bool ToDense(std::string* v) {
  if (Encoding(*v) == kDense) return true;
  std::string dense(kDenseSize, '\0');
  memcpy(dense.data(), v->data(), kHeaderSize);  // magic and cached cardinality
  dense[4] = static_cast<char>(kDense);
  uint8_t* regs = Registers(&dense);
  bool ok = WalkSparse(
      *v, [](size_t, int) {},
      [&](size_t start, int run, int value) {
        for (int i = 0; i < run; ++i) DenseSetRegister(regs, static_cast<uint32_t>(start) + i, static_cast<uint8_t>(value));
      });
  if (!ok) return false;
  *v = std::move(dense);
  return true;
}

Edit SetRegister(std::string* v, uint32_t index, uint8_t count, size_t sparse_max_bytes) {
  if (Encoding(*v) == kDense) return DenseSetRegister(Registers(v), index, count) ? Edit::kChanged : Edit::kUnchanged;

  auto promote = [&] {
    if (!ToDense(v)) return Edit::kCorrupt;
    DenseSetRegister(Registers(v), index, count);
    return Edit::kChanged;
  };
  if (count > kValMax) return promote();

  // Find the opcode covering `index`.
  size_t base = kHeaderSize;
  size_t pos = base, end = v->size(), prev = std::string::npos;
  size_t first = 0;
  int span = 0;
  auto* b = reinterpret_cast<uint8_t*>(v->data());
  while (pos < end) {
    int oplen = 1;
    if (IsZero(b[pos])) {
      span = ZeroRun(b + pos);
    } else if (IsVal(b[pos])) {
      span = ValRun(b[pos]);
    } else {
      if (pos + 1 >= end) return Edit::kCorrupt;
      span = XZeroRun(b + pos);
      oplen = 2;
    }
    if (index <= first + static_cast<size_t>(span) - 1) break;
    prev = pos;
    pos += static_cast<size_t>(oplen);
    first += static_cast<size_t>(span);
  }
  if (span == 0 || pos >= end) return Edit::kCorrupt;

  uint8_t op = b[pos];
  bool changed_in_place = false;
  if (IsVal(op)) {
    if (ValValue(op) >= count) return Edit::kUnchanged;
    if (ValRun(op) == 1) {
      b[pos] = ValOp(count, 1);
      changed_in_place = true;
    }
  } else if (IsZero(op) && ZeroRun(b + pos) == 1) {
    b[pos] = ValOp(count, 1);
    changed_in_place = true;
  }

  if (!changed_in_place) {
    // Split the opcode into [before] VAL(count,1) [after].
    uint8_t seq[5];
    int n = 0;
    size_t last = first + static_cast<size_t>(span) - 1;
    int before = static_cast<int>(index - first), after = static_cast<int>(last - index);
    size_t oldlen = IsXZero(op) ? 2 : 1;
    if (IsVal(op)) {
      int cur = ValValue(op);
      if (before) seq[n++] = ValOp(cur, before);
      seq[n++] = ValOp(count, 1);
      if (after) seq[n++] = ValOp(cur, after);
    } else {
      if (before) n += PutZeros(seq + n, before);
      seq[n++] = ValOp(count, 1);
      if (after) n += PutZeros(seq + n, after);
    }
    if (static_cast<size_t>(n) > oldlen && v->size() + (static_cast<size_t>(n) - oldlen) > sparse_max_bytes)
      return promote();
    v->replace(pos, oldlen, reinterpret_cast<const char*>(seq), static_cast<size_t>(n));
    b = reinterpret_cast<uint8_t*>(v->data());
    end = v->size();
  }

  // Merge equal adjacent VALs among up to five opcodes from the previous one.
  size_t p = prev == std::string::npos ? base : prev;
  for (int scan = 5; p < end && scan-- > 0;) {
    if (IsXZero(b[p])) {
      p += 2;
      continue;
    }
    if (IsZero(b[p])) {
      ++p;
      continue;
    }
    if (p + 1 < end && IsVal(b[p + 1]) && ValValue(b[p]) == ValValue(b[p + 1])) {
      int run = ValRun(b[p]) + ValRun(b[p + 1]);
      if (run <= kValMaxRun) {
        b[p + 1] = ValOp(ValValue(b[p]), run);
        v->erase(p, 1);
        b = reinterpret_cast<uint8_t*>(v->data());
        end = v->size();
        continue;  // try merging the result with its right neighbour
      }
    }
    ++p;
  }
  return Edit::kChanged;
}

bool CachedCardinality(std::string_view v, uint64_t* out) {
  auto* c = reinterpret_cast<const uint8_t*>(v.data()) + 8;
  if (c[7] & 0x80) return false;
  uint64_t card = 0;
  for (int i = 7; i >= 0; --i) card = (card << 8) | c[i];
  *out = card;
  return true;
}

void StoreCardinality(char* v, uint64_t card) {
  for (int i = 0; i < 8; ++i) v[8 + i] = static_cast<char>((card >> (8 * i)) & 0xff);
}

void InvalidateCache(char* v) { v[15] = static_cast<char>(static_cast<uint8_t>(v[15]) | 0x80); }

bool Count(std::string_view v, uint64_t* out) {
  int histo[64] = {};
  if (Encoding(v) == kDense) {
    const uint8_t* regs = Registers(v);
    for (uint32_t i = 0; i < kRegisters; ++i) ++histo[DenseGetRegister(regs, i)];
  } else if (!WalkSparse(
                 v, [&](size_t, int run) { histo[0] += run; },
                 [&](size_t, int run, int value) { histo[value] += run; })) {
    return false;
  }
  *out = Estimate(histo);
  return true;
}

uint64_t CountRaw(const RawRegisters& regs) {
  int histo[64] = {};
  for (uint8_t r : regs.r) ++histo[r & 63];
  return Estimate(histo);
}

bool MergeInto(std::string_view v, RawRegisters* max) {
  if (Encoding(v) == kDense) {
    const uint8_t* regs = Registers(v);
    for (uint32_t i = 0; i < kRegisters; ++i) {
      uint8_t r = DenseGetRegister(regs, i);
      if (r > max->r[i]) max->r[i] = r;
    }
    return true;
  }
  return WalkSparse(
      v, [](size_t, int) {},
      [&](size_t start, int run, int value) {
        for (int i = 0; i < run; ++i)
          if (value > max->r[start + i]) max->r[start + i] = static_cast<uint8_t>(value);
      });
}

bool DecodeSparse(std::string_view v, std::string* out) {
  if (Encoding(v) != kSparse) return false;
  out->clear();
  const auto* p = reinterpret_cast<const uint8_t*>(v.data()) + kHeaderSize;
  const auto* end = reinterpret_cast<const uint8_t*>(v.data()) + v.size();
  while (p < end) {
    if (IsZero(*p)) {
      *out += "z:" + std::to_string(ZeroRun(p)) + " ";
      ++p;
    } else if (IsXZero(*p)) {
      int run = p + 1 < end ? XZeroRun(p) : (*p & 0x3f) * 256 + 1;
      *out += "Z:" + std::to_string(run) + " ";
      p += 2;
    } else {
      *out += "v:" + std::to_string(ValValue(*p)) + "," + std::to_string(ValRun(*p)) + " ";
      ++p;
    }
  }
  while (!out->empty() && out->back() == ' ') out->pop_back();
  return true;
}

}  // namespace larder::hll
