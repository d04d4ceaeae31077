// Bit operations on string values: SETBIT, GETBIT, BITCOUNT, BITPOS, BITOP,
// BITFIELD, BITFIELD_RO. Bits are numbered from the most significant bit of
// the first byte, as in Redis; strings grow zero-padded on writes.
#include <algorithm>
#include <bit>
#include <climits>
#include <cstring>
#include <vector>

#include "commands/families.h"
#include "engine/command.h"
#include "engine/notify.h"
#include "common/numbers.h"
#include "common/strings.h"
#include "engine/engine.h"

namespace larder {

namespace {

// Parses a bit offset; `hash_ok` allows "#N" (BITFIELD: N * width).
bool ParseBitOffset(CommandContext& ctx, std::string_view arg, bool hash_ok, int64_t width, uint64_t* out) {
  bool hash = hash_ok && !arg.empty() && arg[0] == '#';
  int64_t v;
  if (!ParseInt64(hash ? arg.substr(1) : arg, &v)) {
    ctx.Error(OpStatus::kBitOffsetNotInteger);
    return false;
  }
  if (hash) {
    if (v < 0 || v > LLONG_MAX / width) {
      ctx.Error(OpStatus::kBitOffsetNotInteger);
      return false;
    }
    v *= width;
  }
  if (v < 0 || (static_cast<uint64_t>(v) >> 3) >= static_cast<uint64_t>(ctx.engine->config().proto_max_bulk_len.load())) {
    ctx.Error(OpStatus::kBitOffsetNotInteger);
    return false;
  }
  *out = static_cast<uint64_t>(v);
  return true;
}

// The string at `key` for writing, grown to at least `bytes` (zero padded),
// created if missing. Null (WRONGTYPE written) on a type clash.
Entry* StringForWrite(CommandContext& ctx, std::string_view key, size_t bytes, bool* dirty = nullptr) {
  Db& db = ctx.DbFor(key);
  Entry* e = db.FindWrite(key);
  if (e && e->type != ObjType::kString) {
    ctx.Error(OpStatus::kWrongType);
    return nullptr;
  }
  if (dirty) *dirty = !e || bytes > e->val_len;  // created or grown
  if (!e) e = db.SetString(key, "", Db::kNoExpire, StrEncoding::kRaw);
  size_t old = e->val_len;
  if (bytes > old) {
    e = db.ResizeValue(e, bytes, true);
    memset(e->mutable_value() + old, 0, bytes - old);
  }
  e->encoding = static_cast<uint8_t>(StrEncoding::kRaw);
  return e;
}

int GetBit(std::string_view s, uint64_t bit) {
  uint64_t byte = bit >> 3;
  if (byte >= s.size()) return 0;
  return (static_cast<unsigned char>(s[byte]) >> (7 - (bit & 7))) & 1;
}

void SetBitCmd(CommandContext& ctx) {
  uint64_t offset;
  if (!ParseBitOffset(ctx, ctx.arg(2), false, 1, &offset)) return;
  int64_t on;
  if (!ParseInt64(ctx.arg(3), &on) || (on & ~1)) return ctx.Error(OpStatus::kBitNotInteger);
  bool dirty;
  Entry* e = StringForWrite(ctx, ctx.arg(1), (offset >> 3) + 1, &dirty);
  if (!e) return;
  char* p = e->mutable_value() + (offset >> 3);
  int shift = 7 - static_cast<int>(offset & 7);
  int old = (static_cast<unsigned char>(*p) >> shift) & 1;
  *p = static_cast<char>((static_cast<unsigned char>(*p) & ~(1 << shift)) | (static_cast<int>(on) << shift));
  // As Redis: announced when the key was created or grew, or the bit changed.
  if (dirty || old != on) NotifyKeyspaceEvent(ctx, kNotifyString, "setbit", ctx.arg(1));
  else ctx.NothingChanged();
  ctx.rb->Integer(old);
}

void GetBitCmd(CommandContext& ctx) {
  uint64_t offset;
  if (!ParseBitOffset(ctx, ctx.arg(2), false, 1, &offset)) return;
  Entry* e = ctx.DbFor(ctx.arg(1)).FindRead(ctx.arg(1));
  if (e && e->type != ObjType::kString) return ctx.Error(OpStatus::kWrongType);
  ctx.rb->Integer(e ? GetBit(e->value(), offset) : 0);
}

// Set bits in p[0, n), eight bytes at a time: the POPCNT instruction where
// the CPU has it (chosen once), the compiler's bit arithmetic elsewhere.
template <typename Pop>
int64_t CountWords(const unsigned char* p, size_t n, Pop pop) {
  int64_t c = 0;
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    uint64_t w[4];
    memcpy(w, p + i, sizeof(w));
    c += pop(w[0]) + pop(w[1]) + pop(w[2]) + pop(w[3]);
  }
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    memcpy(&w, p + i, sizeof(w));
    c += pop(w);
  }
  for (; i < n; ++i) c += std::popcount(p[i]);
  return c;
}
__attribute__((target("popcnt"))) int64_t CountBitsPopcnt(const unsigned char* p, size_t n) {
  return CountWords(p, n, [](uint64_t w) { return __builtin_popcountll(w); });
}
int64_t CountBitsPortable(const unsigned char* p, size_t n) {
  return CountWords(p, n, [](uint64_t w) { return std::popcount(w); });
}
int64_t CountBits(std::string_view s) {
  static const bool popcnt = __builtin_cpu_supports("popcnt");
  auto* p = reinterpret_cast<const unsigned char*>(s.data());
  return popcnt ? CountBitsPopcnt(p, s.size()) : CountBitsPortable(p, s.size());
}

// Normalises a [start, end] range over `total` units as BITCOUNT/BITPOS do.
void ClampRange(int64_t total, int64_t* start, int64_t* end) {
  if (*start < 0) *start += total;
  if (*end < 0) *end += total;
  if (*start < 0) *start = 0;
  if (*end < 0) *end = 0;
  if (*end >= total) *end = total - 1;
}

bool ParseUnit(CommandContext& ctx, std::string_view arg, bool* bit) {
  if (EqualsIgnoreCase(arg, "bit")) *bit = true;
  else if (EqualsIgnoreCase(arg, "byte")) *bit = false;
  else {
    ctx.SyntaxError();
    return false;
  }
  return true;
}

void BitCount(CommandContext& ctx) {
  Entry* e = ctx.DbFor(ctx.arg(1)).FindRead(ctx.arg(1));
  if (!e) return ctx.rb->Integer(0);
  if (e->type != ObjType::kString) return ctx.Error(OpStatus::kWrongType);
  std::string_view s = e->value();
  int64_t start = 0, end = static_cast<int64_t>(s.size()) - 1;
  bool isbit = false;
  if (ctx.argc() == 4 || ctx.argc() == 5) {
    if (!ParseInt64(ctx.arg(2), &start) || !ParseInt64(ctx.arg(3), &end)) return ctx.Error(OpStatus::kNotAnInteger);
    if (ctx.argc() == 5 && !ParseUnit(ctx, ctx.arg(4), &isbit)) return;
    if (start < 0 && end < 0 && start > end) return ctx.rb->Integer(0);
    int64_t total = static_cast<int64_t>(s.size()) * (isbit ? 8 : 1);
    ClampRange(total, &start, &end);
  } else if (ctx.argc() != 2) {
    return ctx.SyntaxError();
  }
  if (start > end) return ctx.rb->Integer(0);
  int64_t n = 0;
  if (isbit) {
    // The partial bytes at either end bit by bit, whole bytes between.
    int64_t b = start;
    for (; b <= end && (b & 7); ++b) n += GetBit(s, static_cast<uint64_t>(b));
    int64_t whole = (end + 1 - b) / 8;
    if (whole > 0) {
      n += CountBits(s.substr(static_cast<size_t>(b / 8), static_cast<size_t>(whole)));
      b += whole * 8;
    }
    for (; b <= end; ++b) n += GetBit(s, static_cast<uint64_t>(b));
  } else {
    n = CountBits(s.substr(static_cast<size_t>(start), static_cast<size_t>(end - start + 1)));
  }
  ctx.rb->Integer(n);
}

void BitPos(CommandContext& ctx) {
  int64_t bit;
  if (!ParseInt64(ctx.arg(2), &bit)) return ctx.Error(OpStatus::kNotAnInteger);
  if (bit != 0 && bit != 1) return ctx.Error(OpStatus::kBitNotZeroOrOne);
  Entry* e = ctx.DbFor(ctx.arg(1)).FindRead(ctx.arg(1));
  if (!e) return ctx.rb->Integer(bit ? -1 : 0);
  if (e->type != ObjType::kString) return ctx.Error(OpStatus::kWrongType);
  std::string_view s = e->value();
  auto len = static_cast<int64_t>(s.size());
  bool isbit = false, end_given = false;
  int64_t start = 0, end = len - 1;
  if (ctx.argc() >= 4 && ctx.argc() <= 6) {
    if (!ParseInt64(ctx.arg(3), &start)) return ctx.Error(OpStatus::kNotAnInteger);
    if (ctx.argc() == 6 && !ParseUnit(ctx, ctx.arg(5), &isbit)) return;
    if (ctx.argc() >= 5) {
      if (!ParseInt64(ctx.arg(4), &end)) return ctx.Error(OpStatus::kNotAnInteger);
      end_given = true;
    } else {
      end = isbit ? len * 8 - 1 : len - 1;
    }
    ClampRange(isbit ? len * 8 : len, &start, &end);
  } else if (ctx.argc() != 3) {
    return ctx.SyntaxError();
  }
  if (start > end) return ctx.rb->Integer(-1);
  int64_t first = isbit ? start : start * 8, last = isbit ? end : end * 8 + 7;
  for (int64_t b = first; b <= last; ++b) {
    // Skip whole words, then whole bytes, that cannot match.
    while ((b & 63) == 0 && b + 63 <= last) {
      uint64_t w;
      memcpy(&w, s.data() + (b >> 3), sizeof(w));
      if (w != (bit ? 0 : ~uint64_t{0})) break;
      b += 64;
    }
    if (b > last) break;
    if ((b & 7) == 0 && b + 7 <= last) {
      auto byte = static_cast<unsigned char>(s[static_cast<size_t>(b >> 3)]);
      if ((bit && byte == 0) || (!bit && byte == 0xff)) {
        b += 7;
        continue;
      }
    }
    if (GetBit(s, static_cast<uint64_t>(b)) == bit) return ctx.rb->Integer(b);
  }
  // A clear bit is found right after the string when no end was given.
  if (bit == 0 && !end_given) return ctx.rb->Integer(last + 1);
  ctx.rb->Integer(-1);
}

void BitOp(CommandContext& ctx) {
  std::string_view op = ctx.arg(1);
  enum { kAnd, kOr, kXor, kNot } kind;
  if (EqualsIgnoreCase(op, "and")) kind = kAnd;
  else if (EqualsIgnoreCase(op, "or")) kind = kOr;
  else if (EqualsIgnoreCase(op, "xor")) kind = kXor;
  else if (EqualsIgnoreCase(op, "not")) kind = kNot;
  else return ctx.SyntaxError();
  if (kind == kNot && ctx.argc() != 4) return ctx.Error(OpStatus::kBitopNotSingleSource);
  std::vector<std::string_view> srcs;  // valid until the destination is written
  size_t maxlen = 0;
  for (size_t i = 3; i < ctx.argc(); ++i) {
    Entry* e = ctx.DbFor(ctx.arg(i)).FindRead(ctx.arg(i));
    if (e && e->type != ObjType::kString) return ctx.Error(OpStatus::kWrongType);
    srcs.emplace_back(e ? e->value() : std::string_view());
    maxlen = std::max(maxlen, srcs.back().size());
  }
  std::string out(maxlen, '\0');
  // Eight bytes at a time over the length every source has, then bytewise.
  size_t common = maxlen;
  for (auto src : srcs) common = std::min(common, src.size());
  size_t j = 0;
  for (; j + 8 <= common; j += 8) {
    uint64_t v, x;
    memcpy(&v, srcs[0].data() + j, 8);
    if (kind == kNot) v = ~v;
    for (size_t k = 1; k < srcs.size(); ++k) {
      memcpy(&x, srcs[k].data() + j, 8);
      if (kind == kAnd) v &= x;
      else if (kind == kOr) v |= x;
      else v ^= x;
    }
    memcpy(out.data() + j, &v, 8);
  }
  for (; j < maxlen; ++j) {
    auto at = [&](size_t k) -> unsigned char { return j < srcs[k].size() ? static_cast<unsigned char>(srcs[k][j]) : 0; };
    unsigned char v = at(0);
    if (kind == kNot) v = static_cast<unsigned char>(~v);
    for (size_t k = 1; k < srcs.size(); ++k) {
      if (kind == kAnd) v &= at(k);
      else if (kind == kOr) v |= at(k);
      else v ^= at(k);
    }
    out[j] = static_cast<char>(v);
  }
  Db& db = ctx.DbFor(ctx.arg(2));
  if (out.empty()) {
    if (db.Delete(ctx.arg(2))) NotifyKeyspaceEvent(ctx, kNotifyGeneric, "del", ctx.arg(2));
  } else {
    db.SetString(ctx.arg(2), out, Db::kNoExpire, StrEncoding::kRaw);
    NotifyKeyspaceEvent(ctx, kNotifyString, "set", ctx.arg(2));
  }
  ctx.rb->Integer(static_cast<int64_t>(out.size()));
}

// ---- BITFIELD ----

struct FieldOp {
  enum Kind { kGet, kSet, kIncr } kind;
  bool is_signed;
  int bits;
  uint64_t offset;
  int64_t value;
  int overflow;  // 0 wrap, 1 sat, 2 fail
};

uint64_t ReadBits(std::string_view s, uint64_t offset, int bits) {
  uint64_t v = 0;
  for (int i = 0; i < bits; ++i) v = (v << 1) | static_cast<uint64_t>(GetBit(s, offset + static_cast<uint64_t>(i)));
  return v;
}

void WriteBits(char* p, uint64_t offset, int bits, uint64_t v) {
  for (int i = 0; i < bits; ++i) {
    uint64_t b = offset + static_cast<uint64_t>(i);
    int bitval = static_cast<int>((v >> (bits - 1 - i)) & 1);
    int shift = 7 - static_cast<int>(b & 7);
    p[b >> 3] = static_cast<char>((static_cast<unsigned char>(p[b >> 3]) & ~(1 << shift)) | (bitval << shift));
  }
}

int64_t ToSigned(uint64_t v, int bits) {
  if (bits < 64 && (v & (1ULL << (bits - 1)))) v |= ~0ULL << bits;
  return static_cast<int64_t>(v);
}

// Overflow handling with Redis's exact arithmetic: `value` is the current (or,
// for SET, the new) value, `incr` what is added (0 for SET). The limits are
// computed with 64-bit wrap-around as Redis does, which decides a few edge
// cases (SET i16 to INT64_MIN saturates to the maximum, as in Redis).
// Returns false when OVERFLOW FAIL rejects the operation.
int64_t Wrapping(int64_t a, int64_t b) { return static_cast<int64_t>(static_cast<uint64_t>(a) + static_cast<uint64_t>(b)); }

bool FitSigned(int64_t value, int64_t incr, int bits, int owtype, int64_t* out) {
  int64_t max = bits == 64 ? INT64_MAX : static_cast<int64_t>((1ULL << (bits - 1)) - 1);
  int64_t min = -max - 1;
  auto neg = static_cast<int64_t>(0 - static_cast<uint64_t>(value));  // wraps for INT64_MIN
  int64_t maxincr = Wrapping(max, neg);
  int64_t minincr = Wrapping(min, neg);
  auto wrap = [&] {
    uint64_t c = static_cast<uint64_t>(value) + static_cast<uint64_t>(incr);
    if (bits < 64) {
      uint64_t mask = ~0ULL << bits, msb = 1ULL << (bits - 1);
      c = (c & msb) ? (c | mask) : (c & ~mask);
    }
    return static_cast<int64_t>(c);
  };
  bool up = value > max || (bits != 64 && incr > maxincr) || (value >= 0 && incr > 0 && incr > maxincr);
  bool down = !up && (value < min || (bits != 64 && incr < minincr) || (value < 0 && incr < 0 && incr < minincr));
  if (!up && !down) {
    *out = Wrapping(value, incr);
    return true;
  }
  if (owtype == 2) return false;
  *out = owtype == 1 ? (up ? max : min) : wrap();
  return true;
}

bool FitUnsigned(uint64_t value, int64_t incr, int bits, int owtype, uint64_t* out) {
  uint64_t max = bits == 64 ? UINT64_MAX : (1ULL << bits) - 1;
  auto maxincr = static_cast<int64_t>(max - value);
  auto minincr = static_cast<int64_t>(0 - value);
  auto wrap = [&] {
    uint64_t res = value + static_cast<uint64_t>(incr);
    return bits == 64 ? res : res & ((1ULL << bits) - 1);
  };
  bool up = value > max || (incr > 0 && incr > maxincr);
  bool down = !up && incr < 0 && incr < minincr;
  if (!up && !down) {
    *out = value + static_cast<uint64_t>(incr);  // unsigned: wraps by definition, never reached on overflow
    return true;
  }
  if (owtype == 2) return false;
  *out = owtype == 1 ? (up ? max : 0) : wrap();
  return true;
}

void BitFieldGeneric(CommandContext& ctx, bool read_only) {
  std::vector<FieldOp> ops;
  int overflow = 0;
  bool writes = false;
  for (size_t j = 2; j < ctx.argc(); ++j) {
    std::string_view sub = ctx.arg(j);
    size_t left = ctx.argc() - j - 1;
    FieldOp f{};
    if (EqualsIgnoreCase(sub, "get") && left >= 2) f.kind = FieldOp::kGet;
    else if (EqualsIgnoreCase(sub, "set") && left >= 3) f.kind = FieldOp::kSet;
    else if (EqualsIgnoreCase(sub, "incrby") && left >= 3) f.kind = FieldOp::kIncr;
    else if (EqualsIgnoreCase(sub, "overflow") && left >= 1) {
      std::string_view o = ctx.arg(++j);
      if (EqualsIgnoreCase(o, "wrap")) overflow = 0;
      else if (EqualsIgnoreCase(o, "sat")) overflow = 1;
      else if (EqualsIgnoreCase(o, "fail")) overflow = 2;
      else return ctx.Error(OpStatus::kInvalidOverflowType);
      continue;
    } else {
      return ctx.SyntaxError();
    }
    std::string_view type = ctx.arg(j + 1);
    int64_t bits;
    if (type.size() < 2 || (type[0] != 'i' && type[0] != 'u' && type[0] != 'I' && type[0] != 'U') ||
        !ParseInt64(type.substr(1), &bits) || bits < 1 ||
        ((type[0] == 'i' || type[0] == 'I') ? bits > 64 : bits > 63))
      return ctx.Error(OpStatus::kInvalidBitfieldType);
    f.is_signed = type[0] == 'i' || type[0] == 'I';
    f.bits = static_cast<int>(bits);
    if (!ParseBitOffset(ctx, ctx.arg(j + 2), true, bits, &f.offset)) return;
    if (f.kind != FieldOp::kGet) {
      if (!ParseInt64(ctx.arg(j + 3), &f.value)) return ctx.Error(OpStatus::kNotAnInteger);
      writes = true;
      j += 3;
    } else {
      j += 2;
    }
    f.overflow = overflow;
    ops.push_back(f);
  }
  if (read_only && writes) return ctx.Error(OpStatus::kBitfieldRoOnlyGet);
  std::string_view key = ctx.arg(1);
  Entry* e = nullptr;
  size_t changes = 0;
  if (writes) {
    uint64_t need = 0;
    for (const auto& f : ops)
      if (f.kind != FieldOp::kGet) need = std::max<uint64_t>(need, (f.offset + static_cast<uint64_t>(f.bits) - 1) / 8 + 1);
    bool dirty;
    e = StringForWrite(ctx, key, need, &dirty);
    if (!e) return;
    if (dirty) ++changes;
  } else {
    e = ctx.DbFor(key).FindRead(key);
    if (e && e->type != ObjType::kString) return ctx.Error(OpStatus::kWrongType);
  }
  ctx.rb->ArrayHeader(ops.size());
  for (const auto& f : ops) {
    std::string_view s = e ? e->value() : std::string_view();
    uint64_t raw = ReadBits(s, f.offset, f.bits);
    int64_t cur = f.is_signed ? ToSigned(raw, f.bits) : static_cast<int64_t>(raw);
    if (f.kind == FieldOp::kGet) {
      ctx.rb->Integer(cur);
      continue;
    }
    bool set = f.kind == FieldOp::kSet;
    uint64_t bits_out;
    int64_t shown;
    if (f.is_signed) {
      int64_t v;
      if (!FitSigned(set ? f.value : cur, set ? 0 : f.value, f.bits, f.overflow, &v)) {
        ctx.rb->Null();
        continue;
      }
      bits_out = static_cast<uint64_t>(v);
      shown = v;
    } else {
      // An unsigned SET reads its value as a 64-bit unsigned number, as Redis.
      uint64_t v;
      if (!FitUnsigned(set ? static_cast<uint64_t>(f.value) : raw, set ? 0 : f.value, f.bits, f.overflow, &v)) {
        ctx.rb->Null();
        continue;
      }
      bits_out = v;
      shown = static_cast<int64_t>(v);
    }
    uint64_t mask = f.bits == 64 ? ~0ULL : (1ULL << f.bits) - 1;
    if ((bits_out & mask) != (raw & mask)) ++changes;  // as Redis: announced only if a value changed
    WriteBits(e->mutable_value(), f.offset, f.bits, bits_out);
    ctx.rb->Integer(set ? cur : shown);
  }
  if (changes) NotifyKeyspaceEvent(ctx, kNotifyString, "setbit", key);
  else if (writes) ctx.NothingChanged();
}
void BitField(CommandContext& ctx) { BitFieldGeneric(ctx, false); }
void BitFieldRo(CommandContext& ctx) { BitFieldGeneric(ctx, true); }

}  // namespace

void RegisterBitmapFamily(CommandRegistry* r) {
  constexpr uint32_t W = kCmdWrite, R = kCmdReadOnly, M = kCmdDenyOom;
  auto add = [r](const char* name, int arity, uint32_t flags, int first, int last, Handler h, const char* acl,
                 const char* summary) {
    CommandSpec s = MakeCommand(name, arity, flags, first, last, 1, h, acl, summary, "bitmap");
    s.since = "2.2.0";
    r->Add(std::move(s));
  };
  add("setbit", 4, W | M, 1, 1, SetBitCmd, "@write @bitmap @slow", "Sets or clears the bit at offset of the string value. Creates the key if it doesn't exist.");
  add("getbit", 3, R | kCmdFast, 1, 1, GetBitCmd, "@read @bitmap @fast", "Returns a bit value by offset.");
  add("bitcount", -2, R, 1, 1, BitCount, "@read @bitmap @slow", "Counts the number of set bits (population counting) in a string.");
  add("bitpos", -3, R, 1, 1, BitPos, "@read @bitmap @slow", "Finds the first set (1) or clear (0) bit in a string.");
  add("bitop", -4, W | M, 2, -1, BitOp, "@write @bitmap @slow", "Performs bitwise operations on multiple strings, and stores the result.");
  add("bitfield", -2, W | M, 1, 1, BitField, "@write @bitmap @slow", "Performs arbitrary bitfield integer operations on strings.");
  add("bitfield_ro", -2, R | kCmdFast, 1, 1, BitFieldRo, "@read @bitmap @fast", "Performs arbitrary read-only bitfield integer operations on strings.");
}

}  // namespace larder
