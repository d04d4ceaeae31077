// reader: see rdb/rdb.h.
//
// Everything read from outside is checked before it is used: every length
// against what remains of the input (memory) or against a cap, every packed
// blob (listpack, ziplist, zipmap, intset) entry by entry before any of its
// contents is trusted, and duplicates (hash fields, set and sorted set
// members, stream IDs, consumer group names) make the value malformed, as
// Redis's deep sanitization (sanitize-dump-payload yes) decides.
#include <lzf.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "common/numbers.h"
#include "keyspace/list_value.h"
#include "keyspace/set_value.h"
#include "keyspace/stream_value.h"
#include "rdb/format.h"
#include "rdb/rdb.h"

namespace larder::rdb {

namespace {
constexpr size_t kFdChunk = 64 << 10;
// LZF expands at most ~88x (a 3-byte back reference copies 264 bytes); a
// claimed length beyond this is malformed before anything is allocated.
constexpr uint64_t kLzfMaxRatio = 100;
// Hash field TTLs are 48-bit (Redis's EB_EXPIRE_TIME_MAX).
constexpr uint64_t kMaxFieldExpire = (1ull << 48) - 1;

uint64_t LoadLe(const unsigned char* p, int n) {
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}
uint64_t LoadBe(const unsigned char* p, int n) {
  uint64_t v = 0;
  for (int i = 0; i < n; ++i) v = (v << 8) | p[i];
  return v;
}
int64_t SignExtend(uint64_t v, int bits) {
  uint64_t m = 1ull << (bits - 1);
  if (bits == 64) return static_cast<int64_t>(v);
  v &= (1ull << bits) - 1;
  return static_cast<int64_t>((v ^ m) - m);
}
// Reads `len` bytes into *out, growing it as the bytes arrive: from a file
// (whose size the reader does not know) a bogus length in a truncated file
// then costs no more memory than the file has.
bool ReadGrowing(Reader& r, std::string* out, uint64_t len) {
  if (r.remaining() != UINT64_MAX) {  // memory: the length was checked against it
    out->resize(len);
    return r.Read(out->data(), len);
  }
  out->clear();
  while (out->size() < len) {
    size_t step = std::min<uint64_t>(len - out->size(), 1 << 20);
    size_t have = out->size();
    out->resize(have + step);
    if (!r.Read(out->data() + have, step)) return false;
  }
  return true;
}

std::string_view FormatInt(int64_t v, char* buf) {
  int n = snprintf(buf, 24, "%lld", static_cast<long long>(v));
  return {buf, static_cast<size_t>(n)};
}
}  // namespace

// ---------------------------------------------------------------- Reader

Reader::Reader(std::string_view data) : mem_(data) {}
Reader::Reader(int fd) : fd_(fd) {}

bool Reader::Fail(std::string what) {
  if (error_.empty()) error_ = std::move(what);
  return false;
}

void Reader::StartCrc() {
  crc_on_ = true;
  crc_ = 0;
}

uint64_t Reader::remaining() const { return fd_ < 0 ? mem_.size() - pos_ : UINT64_MAX; }

bool Reader::Fill(size_t n) {
  if (buf_.size() - pos_ >= n) return true;
  buf_.erase(0, pos_);
  pos_ = 0;
  while (buf_.size() < n) {
    size_t have = buf_.size();
    size_t want = std::max(n - have, kFdChunk);
    buf_.resize(have + want);
    ssize_t got = ::read(fd_, buf_.data() + have, want);
    if (got < 0 && errno == EINTR) {
      buf_.resize(have);
      continue;
    }
    if (got <= 0) {
      buf_.resize(have);
      return Fail(got < 0 ? std::string("read error: ") + strerror(errno) : "unexpected end of file");
    }
    buf_.resize(have + static_cast<size_t>(got));
  }
  return true;
}

bool Reader::Read(void* dst, size_t n) {
  if (!error_.empty()) return false;
  auto* out = static_cast<char*>(dst);
  if (fd_ < 0) {
    if (n > mem_.size() - pos_) return Fail("unexpected end of data");
    if (n) memcpy(out, mem_.data() + pos_, n);
    if (crc_on_) crc_ = Crc64(crc_, mem_.substr(pos_, n));
    pos_ += n;
    offset_ += n;
    return true;
  }
  while (n) {
    size_t step = std::min(n, kFdChunk);
    if (!Fill(step)) return false;
    memcpy(out, buf_.data() + pos_, step);
    if (crc_on_) crc_ = Crc64(crc_, std::string_view(buf_.data() + pos_, step));
    pos_ += step;
    offset_ += step;
    out += step;
    n -= step;
  }
  return true;
}

bool Reader::Byte(uint8_t* b) { return Read(b, 1); }

bool Reader::Length(uint64_t* n, bool* encoded) {
  if (encoded) *encoded = false;
  uint8_t b;
  if (!Byte(&b)) return false;
  unsigned char buf[8];
  switch (b >> 6) {
    case kLen6Bit:
      *n = b & 0x3f;
      return true;
    case kLen14Bit: {
      uint8_t lo;
      if (!Byte(&lo)) return false;
      *n = (static_cast<uint64_t>(b & 0x3f) << 8) | lo;
      return true;
    }
    case kLenEncoded:
      if (!encoded) return Fail("unexpected string encoding where a length belongs");
      *encoded = true;
      *n = b & 0x3f;
      return true;
    default:
      if (b == kLen32) {
        if (!Read(buf, 4)) return false;
        *n = LoadBe(buf, 4);
        return true;
      }
      if (b == kLen64) {
        if (!Read(buf, 8)) return false;
        *n = LoadBe(buf, 8);
        return true;
      }
      return Fail("unknown length encoding " + std::to_string(b));
  }
}

bool Reader::String(std::string* out, uint64_t max_len) {
  uint64_t len;
  bool enc;
  if (!Length(&len, &enc)) return false;
  unsigned char buf[4];
  char num[24];
  if (enc) {
    switch (len) {
      case kEncInt8:
        if (!Read(buf, 1)) return false;
        out->assign(FormatInt(SignExtend(buf[0], 8), num));
        return true;
      case kEncInt16:
        if (!Read(buf, 2)) return false;
        out->assign(FormatInt(SignExtend(LoadLe(buf, 2), 16), num));
        return true;
      case kEncInt32:
        if (!Read(buf, 4)) return false;
        out->assign(FormatInt(SignExtend(LoadLe(buf, 4), 32), num));
        return true;
      case kEncLzf: {
        uint64_t clen, ulen;
        if (!Length(&clen) || !Length(&ulen)) return false;
        if (clen == 0 || ulen == 0) return Fail("empty LZF string");
        if (clen > remaining() || clen > max_len) return Fail("LZF string longer than the input");
        if (ulen > max_len || ulen / kLzfMaxRatio > clen) return Fail("LZF string length out of range");
        std::string c;
        if (!ReadGrowing(*this, &c, clen)) return false;
        out->resize(ulen);
        if (lzf_decompress(c.data(), static_cast<unsigned>(clen), out->data(), static_cast<unsigned>(ulen)) != ulen)
          return Fail("invalid LZF compressed string");
        return true;
      }
      default:
        return Fail("unknown string encoding " + std::to_string(len));
    }
  }
  if (len > max_len) return Fail("string longer than allowed");
  if (len > remaining()) return Fail("string longer than the input");
  return ReadGrowing(*this, out, len);
}

bool Reader::Millis(int64_t* ms) {
  unsigned char b[8];
  if (!Read(b, 8)) return false;
  *ms = static_cast<int64_t>(LoadLe(b, 8));
  return true;
}

bool Reader::Seconds(int32_t* s) {
  unsigned char b[4];
  if (!Read(b, 4)) return false;
  *s = static_cast<int32_t>(static_cast<uint32_t>(LoadLe(b, 4)));
  return true;
}

bool Reader::BinaryDouble(double* d) {
  unsigned char b[8];
  if (!Read(b, 8)) return false;
  uint64_t v = LoadLe(b, 8);
  memcpy(d, &v, 8);
  return true;
}

bool Reader::TextDouble(double* d) {
  uint8_t len;
  if (!Byte(&len)) return false;
  switch (len) {
    case 253: *d = NAN; return true;
    case 254: *d = INFINITY; return true;
    case 255: *d = -INFINITY; return true;
  }
  char buf[256];
  if (!Read(buf, len)) return false;
  buf[len] = '\0';
  char* end;
  *d = strtod(buf, &end);
  if (len == 0 || end == buf) return Fail("invalid double value");
  return true;
}

// ---------------------------------------------------------------- packed blobs

namespace {

// Walks a listpack, checking each entry (its encoding within bounds, its
// back length), the header's byte and element counts and the terminator.
// Next() yields each element as text (integers in decimal).
class ListpackIter {
 public:
  explicit ListpackIter(std::string_view lp) : p_(reinterpret_cast<const unsigned char*>(lp.data())), size_(lp.size()) {}
  // Checks the header; false if malformed.
  bool Init() {
    if (size_ < 7 || LoadLe(p_, 4) != size_ || p_[size_ - 1] != 0xff) return false;
    declared_ = static_cast<uint32_t>(LoadLe(p_ + 4, 2));
    pos_ = 6;
    return true;
  }
  // 1: *out is the next element; 0: the end (checked); -1: malformed.
  int Next(std::string_view* out) {
    if (pos_ >= size_) return -1;
    unsigned char b = p_[pos_];
    if (b == 0xff) {
      if (pos_ + 1 != size_) return -1;
      if (declared_ != 65535 && declared_ != count_) return -1;
      return 0;
    }
    size_t avail = size_ - 1 - pos_;  // bytes before the terminator
    size_t hdr = 1, data = 0;
    bool is_int = true;
    int64_t v = 0;
    auto need = [&](size_t n) { return n <= avail; };
    if (b < 0x80) {
      v = b;
    } else if ((b & 0xc0) == 0x80) {
      is_int = false;
      data = b & 0x3f;
    } else if ((b & 0xe0) == 0xc0) {
      hdr = 2;
      if (!need(2)) return -1;
      v = SignExtend((static_cast<uint64_t>(b & 0x1f) << 8) | p_[pos_ + 1], 13);
    } else if ((b & 0xf0) == 0xe0) {
      hdr = 2;
      if (!need(2)) return -1;
      is_int = false;
      data = (static_cast<size_t>(b & 0x0f) << 8) | p_[pos_ + 1];
    } else {
      int ib = 0;
      switch (b) {
        case 0xf0:
          hdr = 5;
          if (!need(5)) return -1;
          is_int = false;
          data = LoadLe(p_ + pos_ + 1, 4);
          break;
        case 0xf1: ib = 2; break;
        case 0xf2: ib = 3; break;
        case 0xf3: ib = 4; break;
        case 0xf4: ib = 8; break;
        default: return -1;
      }
      if (ib) {
        if (!need(1 + static_cast<size_t>(ib))) return -1;
        v = SignExtend(LoadLe(p_ + pos_ + 1, ib), ib * 8);
        data = static_cast<size_t>(ib);
      }
    }
    if (data > avail || hdr + data > avail) return -1;
    size_t entry = hdr + data;
    unsigned char bl[5];
    size_t bll = Backlen(entry, bl);
    if (entry + bll > avail) return -1;
    if (memcmp(p_ + pos_ + entry, bl, bll) != 0) return -1;
    if (is_int)
      *out = FormatInt(v, num_);
    else
      *out = std::string_view(reinterpret_cast<const char*>(p_ + pos_ + hdr), data);
    pos_ += entry + bll;
    ++count_;
    return 1;
  }

 private:
  static size_t Backlen(size_t l, unsigned char* out) {
    size_t n = l < 128 ? 1 : l < 16384 ? 2 : l < (1u << 21) ? 3 : l < (1u << 28) ? 4 : 5;
    for (size_t i = 0; i < n; ++i) {
      size_t shift = 7 * (n - 1 - i);
      out[i] = static_cast<unsigned char>(((l >> shift) & 127) | (i ? 128 : 0));
    }
    return n;
  }
  const unsigned char* p_;
  size_t size_;
  size_t pos_ = 0;
  uint32_t declared_ = 0;
  uint32_t count_ = 0;
  char num_[24];
};

// Walks a ziplist (RDB types 10, 12, 13 and quicklist 1's nodes): each
// entry's prevlen must match the previous entry, the tail offset the last
// one, the count the header (unless saturated).
class ZiplistIter {
 public:
  explicit ZiplistIter(std::string_view zl) : p_(reinterpret_cast<const unsigned char*>(zl.data())), size_(zl.size()) {}
  bool Init() {
    if (size_ < 11 || LoadLe(p_, 4) != size_ || p_[size_ - 1] != 0xff) return false;
    tail_ = LoadLe(p_ + 4, 4);
    declared_ = static_cast<uint32_t>(LoadLe(p_ + 8, 2));
    pos_ = 10;
    return true;
  }
  int Next(std::string_view* out) {
    if (pos_ >= size_) return -1;
    if (p_[pos_] == 0xff) {
      if (pos_ + 1 != size_) return -1;
      if (tail_ != (count_ ? last_ : 10)) return -1;
      if (declared_ != 65535 && declared_ != count_) return -1;
      return 0;
    }
    size_t avail = size_ - 1 - pos_;
    size_t plen = p_[pos_] < 254 ? 1 : 5;
    if (p_[pos_] == 255 || plen + 1 > avail) return -1;
    uint64_t prev = plen == 1 ? p_[pos_] : LoadLe(p_ + pos_ + 1, 4);
    if (prev != prev_len_) return -1;
    unsigned char e = p_[pos_ + plen];
    size_t elen = 1, data = 0;
    bool is_int = true;
    int ib = 0;
    int64_t v = 0;
    switch (e >> 6) {
      case 0: is_int = false; data = e & 0x3f; break;
      case 1:
        elen = 2;
        if (plen + 2 > avail) return -1;
        is_int = false;
        data = (static_cast<size_t>(e & 0x3f) << 8) | p_[pos_ + plen + 1];
        break;
      case 2:
        if (e != 0x80) return -1;
        elen = 5;
        if (plen + 5 > avail) return -1;
        is_int = false;
        data = LoadBe(p_ + pos_ + plen + 1, 4);
        break;
      default:
        if (e == 0xc0) ib = 2;
        else if (e == 0xd0) ib = 4;
        else if (e == 0xe0) ib = 8;
        else if (e == 0xf0) ib = 3;
        else if (e == 0xfe) ib = 1;
        else if (e >= 0xf1 && e <= 0xfd) v = (e & 0x0f) - 1;
        else return -1;
        data = static_cast<size_t>(ib);
    }
    if (data > avail || plen + elen + data > avail) return -1;
    const unsigned char* d = p_ + pos_ + plen + elen;
    if (ib) v = SignExtend(LoadLe(d, ib), ib * 8);
    if (is_int)
      *out = FormatInt(v, num_);
    else
      *out = std::string_view(reinterpret_cast<const char*>(d), data);
    last_ = pos_;
    prev_len_ = plen + elen + data;
    pos_ += prev_len_;
    ++count_;
    return 1;
  }

 private:
  const unsigned char* p_;
  size_t size_;
  size_t pos_ = 0;
  uint64_t tail_ = 0;
  uint64_t last_ = 0;
  uint64_t prev_len_ = 0;
  uint32_t declared_ = 0;
  uint32_t count_ = 0;
  char num_[24];
};

// Either packed form behind one interface: the caller picks by RDB type.
class PackedIter {
 public:
  PackedIter(std::string_view blob, bool ziplist) : lp_(blob), zl_(blob), ziplist_(ziplist) {}
  bool Init() { return ziplist_ ? zl_.Init() : lp_.Init(); }
  int Next(std::string_view* out) { return ziplist_ ? zl_.Next(out) : lp_.Next(out); }
  // Reads every element into `out` (strings own their bytes).
  bool All(std::vector<std::string>* out) {
    if (!Init()) return false;
    std::string_view s;
    int rc;
    while ((rc = Next(&s)) == 1) out->emplace_back(s);
    return rc == 0;
  }

 private:
  ListpackIter lp_;
  ZiplistIter zl_;
  bool ziplist_;
};

bool ParseScore(std::string_view s, double* d) {
  if (s.empty() || s.size() > 128) return false;
  char buf[130];
  memcpy(buf, s.data(), s.size());
  buf[s.size()] = '\0';
  char* end;
  *d = strtod(buf, &end);
  return end == buf + s.size() && !std::isnan(*d);
}

bool ParseI64(std::string_view s, int64_t* v) { return ParseInt64(s, v); }

// A zipmap (RDB type 9, hashes before 2.6): [count] then
// [len][key][len][free][value][free bytes]... [0xff].
bool DecodeZipmap(std::string_view zm, std::vector<std::string>* out) {
  auto* p = reinterpret_cast<const unsigned char*>(zm.data());
  size_t n = zm.size(), pos = 1;
  if (n < 2) return false;
  auto len = [&](uint64_t* l) {
    if (pos >= n) return false;
    if (p[pos] < 254) {
      *l = p[pos++];
      return true;
    }
    if (p[pos] == 255 || pos + 5 > n) return false;
    *l = LoadLe(p + pos + 1, 4);
    pos += 5;
    return *l >= 254;  // the long form for a short length is not the format's
  };
  size_t count = 0;
  while (true) {
    if (pos >= n) return false;
    if (p[pos] == 0xff) break;
    uint64_t kl, vl;
    if (!len(&kl) || kl > n - pos) return false;
    out->emplace_back(zm.substr(pos, kl));
    pos += kl;
    if (!len(&vl) || pos >= n) return false;
    uint8_t free = p[pos++];
    if (vl > n - pos || free > n - pos - vl) return false;
    out->emplace_back(zm.substr(pos, vl));
    pos += vl + free;
    ++count;
  }
  if (pos + 1 != n || count == 0) return false;
  if (p[0] < 254 && p[0] != count) return false;
  return true;
}

// An intset: [encoding u32][length u32][values LE], ascending and unique.
bool DecodeIntset(std::string_view is, std::vector<int64_t>* out) {
  auto* p = reinterpret_cast<const unsigned char*>(is.data());
  if (is.size() < 8) return false;
  uint64_t enc = LoadLe(p, 4), len = LoadLe(p + 4, 4);
  if (enc != 2 && enc != 4 && enc != 8) return false;
  if (len * enc + 8 != is.size()) return false;
  for (uint64_t i = 0; i < len; ++i) {
    int64_t v = SignExtend(LoadLe(p + 8 + i * enc, static_cast<int>(enc)), static_cast<int>(enc * 8));
    if (!out->empty() && v <= out->back()) return false;
    out->push_back(v);
  }
  return true;
}

// The value being built, freed on failure.
template <typename T>
Entry* Finish(std::unique_ptr<T> v, std::string_view key, ObjType type) {
  return NewObjectEntry(key, type, v.release(), -1);
}

// Count check for a collection: each element costs at least one byte.
bool CheckCount(Reader& r, uint64_t n, uint64_t per) {
  if (n == 0) return r.FailEmpty("empty collection");
  if (n > r.remaining() / per) return r.Fail("collection length larger than the input");
  return true;
}

Entry* ReadList(Reader& r, uint8_t type, std::string_view key, int fill, int depth) {
  auto list = std::make_unique<ListValue>(fill, depth);
  std::string s;
  uint64_t n;
  switch (type) {
    case kTypeList:
      if (!r.Length(&n) || !CheckCount(r, n, 1)) return nullptr;
      for (uint64_t i = 0; i < n; ++i) {
        if (!r.String(&s)) return nullptr;
        list->PushBack(s);
      }
      break;
    case kTypeListZiplist: {
      if (!r.String(&s)) return nullptr;
      PackedIter it(s, true);
      std::vector<std::string> items;
      if (!it.All(&items)) return r.Fail("List ziplist integrity check failed"), nullptr;
      for (auto& x : items) list->PushBack(x);
      break;
    }
    case kTypeListQuicklist:
    case kTypeListQuicklist2: {
      if (!r.Length(&n) || !CheckCount(r, n, 1)) return nullptr;
      for (uint64_t i = 0; i < n; ++i) {
        uint64_t container = 2;
        if (type == kTypeListQuicklist2) {
          if (!r.Length(&container)) return nullptr;
          if (container != 1 && container != 2) return r.Fail("unknown quicklist node container"), nullptr;
        }
        if (!r.String(&s)) return nullptr;
        if (s.empty()) return r.Fail("Quicklist node of zero length"), nullptr;
        if (container == 1) {  // PLAIN: the element itself
          list->PushBack(s);
          continue;
        }
        PackedIter it(s, type == kTypeListQuicklist);
        std::vector<std::string> items;
        if (!it.All(&items))
          return r.Fail(type == kTypeListQuicklist ? "Quicklist ziplist integrity check failed"
                                                   : "Quicklist listpack integrity check failed"),
                 nullptr;
        // Redis skips empty nodes (an old bug could write them).
        for (auto& x : items) list->PushBack(x);
      }
      break;
    }
  }
  if (list->empty()) return r.FailEmpty("empty list"), nullptr;
  return Finish(std::move(list), key, ObjType::kList);
}

Entry* ReadSet(Reader& r, uint8_t type, std::string_view key, const Limits& limits) {
  auto set = std::make_unique<SetValue>();
  std::string s;
  const char* dup = type == kTypeSetListpack ? "Set listpack integrity check failed: listpack with dup elements"
                                              : "Duplicate set members detected";
  auto add = [&](std::string_view m) {
    if (!set->Add(m, limits.set_max_intset_entries)) return r.Fail(dup);
    return true;
  };
  if (type == kTypeSet) {
    uint64_t n;
    if (!r.Length(&n) || !CheckCount(r, n, 1)) return nullptr;
    for (uint64_t i = 0; i < n; ++i)
      if (!r.String(&s) || !add(s)) return nullptr;
  } else if (type == kTypeSetIntset) {
    if (!r.String(&s)) return nullptr;
    std::vector<int64_t> ints;
    if (!DecodeIntset(s, &ints)) return r.Fail("Intset integrity check failed"), nullptr;
    char buf[24];
    for (int64_t v : ints)
      if (!add(FormatInt(v, buf))) return nullptr;
  } else {  // kTypeSetListpack
    if (!r.String(&s)) return nullptr;
    std::vector<std::string> items;
    if (!PackedIter(s, false).All(&items)) return r.Fail("Set listpack integrity check failed"), nullptr;
    for (auto& m : items)
      if (!add(m)) return nullptr;
  }
  if (set->size() == 0) return r.FailEmpty("empty set"), nullptr;
  return Finish(std::move(set), key, ObjType::kSet);
}

Entry* ReadZSet(Reader& r, uint8_t type, std::string_view key, const Limits& limits) {
  std::vector<ZSetValue::Item> items;
  std::string s;
  if (type == kTypeZSet || type == kTypeZSet2) {
    uint64_t n;
    if (!r.Length(&n) || !CheckCount(r, n, 2)) return nullptr;
    items.reserve(std::min<uint64_t>(n, 1 << 16));
    for (uint64_t i = 0; i < n; ++i) {
      double d;
      if (!r.String(&s)) return nullptr;
      if (!(type == kTypeZSet ? r.TextDouble(&d) : r.BinaryDouble(&d))) return nullptr;
      if (std::isnan(d)) return r.Fail("Zset with NAN score detected"), nullptr;
      items.push_back({d, std::move(s)});
    }
  } else {  // ziplist / listpack: member, score, ...
    if (!r.String(&s)) return nullptr;
    std::vector<std::string> flat;
    if (!PackedIter(s, type == kTypeZSetZiplist).All(&flat) || flat.size() % 2)
      return r.Fail(type == kTypeZSetZiplist ? "Zset ziplist integrity check failed"
                                             : "Zset listpack integrity check failed"),
             nullptr;
    for (size_t i = 0; i < flat.size(); i += 2) {
      double d;
      if (!ParseScore(flat[i + 1], &d)) return r.Fail("invalid sorted set score"), nullptr;
      items.push_back({d, std::move(flat[i])});
    }
  }
  if (items.empty()) return r.FailEmpty("empty sorted set"), nullptr;
  // In order, each insert lands at the end (O(log n) in the large form).
  std::sort(items.begin(), items.end(), [](const auto& a, const auto& b) {
    return a.score < b.score || (a.score == b.score && a.member < b.member);
  });
  auto z = std::make_unique<ZSetValue>();
  for (const auto& it : items)
    if (!z->Set(it.member, it.score, limits.zset))
      return r.Fail(type == kTypeZSetZiplist    ? "Zset ziplist integrity check failed: ziplist with dup elements"
                    : type == kTypeZSetListpack ? "Zset listpack integrity check failed: listpack with dup elements"
                                                : "Duplicate zset fields detected"),
             nullptr;
  return Finish(std::move(z), key, ObjType::kZSet);
}

Entry* ReadHash(Reader& r, uint8_t type, std::string_view key, const Limits& limits) {
  auto h = std::make_unique<HashValue>();
  std::string f, v;
  // In a packed form a duplicate is that blob's integrity failing, as Redis words it.
  const char* dup = type == kTypeHashZipmap     ? "Zipmap integrity check failed: hash zipmap with dup elements"
                    : type == kTypeHashZiplist  ? "Hash ziplist integrity check failed: ziplist with dup elements"
                    : type == kTypeHashListpack || type == kTypeHashListpackEx || type == kTypeHashListpackExPreGa
                        ? "Hash listpack integrity check failed: listpack with dup elements"
                        : "Duplicate hash fields detected";
  auto set = [&](std::string_view field, std::string_view value) {
    if (!h->Set(field, value, limits.hash)) return r.Fail(dup);
    return true;
  };
  auto expire = [&](std::string_view field, uint64_t at) {
    if (at > kMaxFieldExpire) return r.Fail("hash field TTL out of range");
    if (at) h->SetFieldExpire(field, static_cast<int64_t>(at));
    return true;
  };
  switch (type) {
    case kTypeHash: {
      uint64_t n;
      if (!r.Length(&n) || !CheckCount(r, n, 2)) return nullptr;
      for (uint64_t i = 0; i < n; ++i)
        if (!r.String(&f) || !r.String(&v) || !set(f, v)) return nullptr;
      break;
    }
    case kTypeHashMetadata:
    case kTypeHashMetadataPreGa: {
      int64_t min_expire = 0;
      if (type == kTypeHashMetadata && !r.Millis(&min_expire)) return nullptr;
      uint64_t n;
      if (!r.Length(&n) || !CheckCount(r, n, 3)) return nullptr;
      for (uint64_t i = 0; i < n; ++i) {
        uint64_t ttl;
        if (!r.Length(&ttl) || !r.String(&f) || !r.String(&v) || !set(f, v)) return nullptr;
        uint64_t at = ttl;
        if (type == kTypeHashMetadata && ttl) {
          if (min_expire < 0 || ttl > kMaxFieldExpire) return r.Fail("hash field TTL out of range"), nullptr;
          at = ttl + static_cast<uint64_t>(min_expire) - 1;
        }
        if (!expire(f, at)) return nullptr;
      }
      break;
    }
    case kTypeHashZipmap: {
      if (!r.String(&f)) return nullptr;
      std::vector<std::string> flat;
      if (!DecodeZipmap(f, &flat)) return r.Fail("Zipmap integrity check failed"), nullptr;
      for (size_t i = 0; i < flat.size(); i += 2)
        if (!set(flat[i], flat[i + 1])) return nullptr;
      break;
    }
    case kTypeHashListpackEx:
    case kTypeHashListpackExPreGa: {
      int64_t min_expire;
      if (type == kTypeHashListpackEx && !r.Millis(&min_expire)) return nullptr;
      if (!r.String(&f)) return nullptr;
      std::vector<std::string> flat;
      if (!PackedIter(f, false).All(&flat) || flat.size() % 3)
        return r.Fail("Hash listpack integrity check failed"), nullptr;
      for (size_t i = 0; i < flat.size(); i += 3) {
        int64_t at;
        if (!ParseI64(flat[i + 2], &at) || at < 0) return r.Fail("invalid hash field TTL"), nullptr;
        if (!set(flat[i], flat[i + 1]) || !expire(flat[i], static_cast<uint64_t>(at))) return nullptr;
      }
      break;
    }
    default: {  // ziplist / listpack: field, value, ...
      if (!r.String(&f)) return nullptr;
      std::vector<std::string> flat;
      if (!PackedIter(f, type == kTypeHashZiplist).All(&flat) || flat.size() % 2)
        return r.Fail(type == kTypeHashZiplist ? "Hash ziplist integrity check failed"
                                               : "Hash listpack integrity check failed"),
               nullptr;
      for (size_t i = 0; i < flat.size(); i += 2)
        if (!set(flat[i], flat[i + 1])) return nullptr;
    }
  }
  if (h->size() == 0) return r.FailEmpty("empty hash"), nullptr;
  return Finish(std::move(h), key, ObjType::kHash);
}

bool ReadRawId(Reader& r, StreamID* id) {
  unsigned char b[16];
  if (!r.Read(b, 16)) return false;
  id->ms = LoadBe(b, 8);
  id->seq = LoadBe(b + 8, 8);
  return true;
}

bool ReadLenId(Reader& r, StreamID* id) { return r.Length(&id->ms) && r.Length(&id->seq); }

// One stream node: a listpack of [count][deleted][nfields][field...][0]
// (the master entry) then entries [flags][ms-diff][seq-diff]
// ([nfields][field value...] | [value...] with the master's fields)
// [lp-count]. Appends the entries (deleted ones as tombstones); *prev is the
// last ID seen (live or deleted), which must grow.
bool ReadStreamNode(Reader& r, std::string_view nodekey, std::string_view lp, StreamValue* s, StreamID* prev,
                    const StreamLimits& limits) {
  if (nodekey.size() != 16) return r.Fail("stream node key is not an ID");
  auto* kp = reinterpret_cast<const unsigned char*>(nodekey.data());
  StreamID master{LoadBe(kp, 8), LoadBe(kp + 8, 8)};
  ListpackIter it(lp);
  if (!it.Init()) return r.Fail("Stream listpack integrity check failed");
  std::string_view e;
  auto bad = [&] { return r.Fail("Stream listpack integrity check failed"); };
  auto next_int = [&](int64_t* v) { return it.Next(&e) == 1 && ParseI64(e, v); };
  int64_t count, deleted, nmaster;
  if (!next_int(&count) || !next_int(&deleted) || !next_int(&nmaster)) return bad();
  if (count < 0 || deleted < 0 || nmaster <= 0 || static_cast<uint64_t>(nmaster) > lp.size()) return bad();
  std::vector<std::string> master_fields;
  for (int64_t i = 0; i < nmaster; ++i) {
    if (it.Next(&e) != 1) return bad();
    master_fields.emplace_back(e);
  }
  int64_t zero;
  if (!next_int(&zero) || zero != 0) return bad();
  int64_t live = 0, dead = 0;
  std::vector<std::string> owned;
  std::vector<std::string_view> fv;
  while (true) {
    int rc = it.Next(&e);
    if (rc == 0) break;
    int64_t flags, msd, seqd;
    if (rc != 1 || !ParseI64(e, &flags) || !next_int(&msd) || !next_int(&seqd)) return bad();
    if (flags & ~(kStreamItemFlagDeleted | kStreamItemFlagSameFields)) return bad();
    StreamID id{master.ms + static_cast<uint64_t>(msd), master.seq + static_cast<uint64_t>(seqd)};
    if (id <= *prev) return r.Fail("stream IDs out of order");
    *prev = id;
    bool same = flags & kStreamItemFlagSameFields;
    int64_t n = nmaster;
    if (!same && (!next_int(&n) || n <= 0 || static_cast<uint64_t>(n) > lp.size())) return bad();
    owned.clear();
    for (int64_t i = 0; i < n; ++i) {
      if (!same) {
        if (it.Next(&e) != 1) return bad();
        owned.emplace_back(e);
      } else {
        owned.push_back(master_fields[static_cast<size_t>(i)]);
      }
      if (it.Next(&e) != 1) return bad();
      owned.emplace_back(e);
    }
    int64_t lpcount;
    if (!next_int(&lpcount) || lpcount != (same ? n + 3 : 2 * n + 4)) return bad();
    fv.assign(owned.begin(), owned.end());
    s->Append(id, fv, limits);
    if (flags & kStreamItemFlagDeleted) {
      // Kept as a tombstone, as Redis keeps it (until its node empties).
      s->Delete(id);
      ++dead;
    } else {
      ++live;
    }
  }
  if (live != count || dead != deleted) return r.Fail("stream node counts do not match its entries");
  if (live + dead == 0) return r.Fail("empty stream node");
  return true;
}

Entry* ReadStream(Reader& r, uint8_t type, std::string_view key, const Limits& limits) {
  auto s = std::make_unique<StreamValue>();
  StreamLimits sl{static_cast<size_t>(std::max<int64_t>(limits.stream_node_max_bytes, 0)),
                  static_cast<size_t>(std::max<int64_t>(limits.stream_node_max_entries, 0))};
  uint64_t nodes;
  if (!r.Length(&nodes)) return nullptr;
  if (nodes > r.remaining() / 2) return r.Fail("stream node count larger than the input"), nullptr;
  StreamID prev;
  std::string nodekey, lp;
  for (uint64_t i = 0; i < nodes; ++i) {
    if (!r.String(&nodekey) || !r.String(&lp)) return nullptr;
    if (!ReadStreamNode(r, nodekey, lp, s.get(), &prev, sl)) return nullptr;
  }
  uint64_t length;
  StreamID last_id;
  if (!r.Length(&length) || !ReadLenId(r, &last_id)) return nullptr;
  if (length != s->size()) return r.Fail("stream length does not match its entries"), nullptr;
  if (last_id < prev) return r.Fail("stream last ID smaller than its entries"), nullptr;
  s->set_last_id(last_id);
  if (type >= kTypeStreamListpacks2) {
    StreamID first, max_deleted;
    uint64_t added;
    if (!ReadLenId(r, &first) || !ReadLenId(r, &max_deleted) || !r.Length(&added)) return nullptr;
    if (added < length) return r.Fail("stream entries-added smaller than its length"), nullptr;
    s->set_max_deleted_id(max_deleted);
    s->set_entries_added(added);
  } else {
    s->set_entries_added(length);  // as Redis 7.0 reads a stream of 5.0/6.x
  }
  uint64_t ngroups;
  if (!r.Length(&ngroups)) return nullptr;
  if (ngroups > r.remaining() / 3) return r.Fail("consumer group count larger than the input"), nullptr;
  std::string name;
  for (uint64_t g = 0; g < ngroups; ++g) {
    StreamID gid;
    if (!r.String(&name) || !ReadLenId(r, &gid)) return nullptr;
    int64_t entries_read;
    if (type >= kTypeStreamListpacks2) {
      uint64_t v;
      if (!r.Length(&v)) return nullptr;
      entries_read = static_cast<int64_t>(v);
      if (entries_read < StreamGroup::kInvalidEntriesRead) return r.Fail("invalid group entries-read"), nullptr;
    } else {
      entries_read = s->EstimateEntriesRead(gid);
    }
    StreamGroup* group = s->CreateGroup(name, gid, entries_read);
    if (!group) return r.Fail("Duplicated consumer group name"), nullptr;
    uint64_t npel;
    if (!r.Length(&npel)) return nullptr;
    if (npel > r.remaining() / 25) return r.Fail("PEL larger than the input"), nullptr;
    for (uint64_t i = 0; i < npel; ++i) {
      StreamID id;
      StreamNack nack;
      if (!ReadRawId(r, &id) || !r.Millis(&nack.delivery_time) || !r.Length(&nack.delivery_count)) return nullptr;
      if (!group->pel.emplace(id, nack).second) return r.Fail("duplicated PEL entry"), nullptr;
    }
    uint64_t nconsumers;
    if (!r.Length(&nconsumers)) return nullptr;
    if (nconsumers > r.remaining() / 10) return r.Fail("consumer count larger than the input"), nullptr;
    for (uint64_t c = 0; c < nconsumers; ++c) {
      int64_t seen, active;
      if (!r.String(&name) || !r.Millis(&seen)) return nullptr;
      if (type >= kTypeStreamListpacks3 && !r.Millis(&active)) return nullptr;
      StreamConsumer* consumer = group->CreateConsumer(name, seen);
      if (!consumer) return r.Fail("Duplicate stream consumer detected"), nullptr;
      consumer->seen_time = seen;
      uint64_t npending;
      if (!r.Length(&npending)) return nullptr;
      if (npending > group->pel.size()) return r.Fail("consumer PEL larger than the group's"), nullptr;
      for (uint64_t i = 0; i < npending; ++i) {
        StreamID id;
        if (!ReadRawId(r, &id)) return nullptr;
        auto it = group->pel.find(id);
        if (it == group->pel.end()) return r.Fail("consumer PEL entry not in the group's PEL"), nullptr;
        if (it->second.consumer) return r.Fail("Stream consumer PEL entry already has a consumer assigned"), nullptr;
        it->second.consumer = consumer;
        consumer->pending.insert(id);
      }
    }
    for (const auto& [id, nack] : group->pel)
      if (!nack.consumer) return r.Fail("Stream CG PEL entry without consumer"), nullptr;
  }
  return Finish(std::move(s), key, ObjType::kStream);
}

bool IsValueType(uint8_t t) {
  return t <= kTypeHashListpackEx && t != 8;
}

}  // namespace

// ---------------------------------------------------------------- values

Entry* ReadValue(Reader& r, uint8_t type, std::string_view key, const Limits& limits) {
  switch (type) {
    case kTypeString: {
      std::string v;
      if (!r.String(&v)) return nullptr;
      Entry* e = NewStringEntry(key, v, -1);
      e->encoding = static_cast<uint8_t>(EncodingForValue(v));
      return e;
    }
    case kTypeList:
    case kTypeListZiplist:
    case kTypeListQuicklist:
    case kTypeListQuicklist2:
      return ReadList(r, type, key, limits.list_fill, limits.list_depth);
    case kTypeSet:
    case kTypeSetIntset:
    case kTypeSetListpack:
      return ReadSet(r, type, key, limits);
    case kTypeZSet:
    case kTypeZSet2:
    case kTypeZSetZiplist:
    case kTypeZSetListpack:
      return ReadZSet(r, type, key, limits);
    case kTypeHash:
    case kTypeHashZipmap:
    case kTypeHashZiplist:
    case kTypeHashListpack:
    case kTypeHashMetadata:
    case kTypeHashMetadataPreGa:
    case kTypeHashListpackEx:
    case kTypeHashListpackExPreGa:
      return ReadHash(r, type, key, limits);
    case kTypeStreamListpacks:
    case kTypeStreamListpacks2:
    case kTypeStreamListpacks3:
      return ReadStream(r, type, key, limits);
    case kTypeModule:
    case kTypeModule2:
      r.Fail("module type values can't be loaded (Larder has no modules)");
      return nullptr;
    default:
      r.Fail("unknown value type " + std::to_string(type));
      return nullptr;
  }
}

Entry* ReadPayload(std::string_view payload, std::string_view key, const Limits& limits, bool* bad_version,
                   std::string* error) {
  *bad_version = false;
  // [type][value][version: 2 bytes LE][CRC-64: 8 bytes LE]
  if (payload.size() < 10) {
    *bad_version = true;
    if (error) *error = "payload shorter than its trailer";
    return nullptr;
  }
  auto* foot = reinterpret_cast<const unsigned char*>(payload.data() + payload.size() - 10);
  uint64_t version = LoadLe(foot, 2), crc = LoadLe(foot + 2, 8);
  // Redis 7.0 checks every payload's CRC (only files may carry a zero one).
  bool check_crc = !g_skip_payload_checksum.load(std::memory_order_relaxed);
  if (version > static_cast<uint64_t>(kMaxReadVersion) ||
      (check_crc && crc != Crc64(0, payload.substr(0, payload.size() - 8)))) {
    *bad_version = true;
    if (error) *error = version > static_cast<uint64_t>(kMaxReadVersion) ? "RDB version too new" : "wrong CRC-64";
    return nullptr;
  }
  Reader r(payload.substr(0, payload.size() - 10));
  uint8_t type = 0;
  Entry* e = nullptr;
  if (r.Byte(&type)) {
    if (IsValueType(type)) e = ReadValue(r, type, key, limits);
    else r.Fail("unknown value type " + std::to_string(type));
  }
  if (!e && error) *error = r.error();
  return e;
}

// ---------------------------------------------------------------- files

bool LoadFile(Reader& r, const Limits& limits, LoadHandler& h, std::string* error) {
  auto fail = [&](std::string what) {
    *error = r.error().empty() ? std::move(what) : r.error() + " (" + what + ")";
    *error += " at offset " + std::to_string(r.offset());
    return false;
  };
  r.StartCrc();
  char magic[9];
  if (!r.Read(magic, 9)) return fail("short header");
  if (memcmp(magic, "REDIS", 5) != 0) return fail("wrong signature trying to load the RDB file");
  int version = 0;
  for (int i = 5; i < 9; ++i) {
    if (magic[i] < '0' || magic[i] > '9') return fail("wrong signature trying to load the RDB file");
    version = version * 10 + (magic[i] - '0');
  }
  if (version < 1 || version > kMaxReadVersion)
    return fail("can't handle RDB format version " + std::to_string(version));
  int db = 0;
  bool has_expire = false;
  int64_t expire_ms = 0, idle = -1;
  int freq = -1;
  uint64_t last_progress = 0;
  std::string key, a, b;
  while (true) {
    if (r.offset() - last_progress >= limits.progress_bytes) {
      last_progress = r.offset();
      h.Progress(last_progress);
    }
    uint8_t type;
    if (!r.Byte(&type)) return fail("reading a type");
    switch (type) {
      case kOpExpireTime: {
        int32_t s;
        if (!r.Seconds(&s)) return fail("reading an expire time");
        expire_ms = static_cast<int64_t>(s) * 1000;
        has_expire = true;
        continue;
      }
      case kOpExpireTimeMs:
        if (!r.Millis(&expire_ms)) return fail("reading an expire time");
        has_expire = true;
        continue;
      case kOpFreq: {
        uint8_t f;
        if (!r.Byte(&f)) return fail("reading a frequency");
        freq = f;
        continue;
      }
      case kOpIdle: {
        uint64_t v;
        if (!r.Length(&v)) return fail("reading an idle time");
        idle = static_cast<int64_t>(std::min<uint64_t>(v, INT64_MAX));
        continue;
      }
      case kOpEof: {
        if (version >= 5) {
          uint64_t want = r.crc();
          unsigned char c[8];
          if (!r.Read(c, 8)) return fail("reading the checksum");
          uint64_t got = LoadLe(c, 8);
          if (got != 0 && got != want) {
            // Redis's two log lines in one ("RDB CRC error" is what its
            // tests and operators' log alerts look for).
            char why[128];
            snprintf(why, sizeof(why), "Wrong RDB checksum expected: (%llx) got (%llx): RDB CRC error",
                     static_cast<unsigned long long>(got), static_cast<unsigned long long>(want));
            return fail(why);
          }
        }
        h.Progress(r.offset());
        return true;
      }
      case kOpSelectDb: {
        uint64_t v;
        if (!r.Length(&v)) return fail("reading a database number");
        if (v > INT32_MAX) return fail("database number out of range");
        db = static_cast<int>(v);
        continue;
      }
      case kOpResizeDb: {
        uint64_t keys, expires;
        if (!r.Length(&keys) || !r.Length(&expires)) return fail("reading a resize hint");
        h.ResizeDb(db, keys, expires);
        continue;
      }
      case kOpSlotInfo: {
        uint64_t slot, size, expires;
        if (!r.Length(&slot) || !r.Length(&size) || !r.Length(&expires)) return fail("reading slot info");
        continue;
      }
      case kOpAux:
        if (!r.String(&a) || !r.String(&b)) return fail("reading an AUX field");
        h.Aux(a, b);
        continue;
      case kOpModuleAux:
        return fail("module aux data can't be loaded (Larder has no modules)");
      case kOpFunctionPreGa:
        return fail("function data of a Redis 7.0 release candidate can't be loaded");
      case kOpFunction2: {
        if (!r.String(&a)) return fail("reading a function library");
        std::string err;
        if (!h.Function(a, &err)) return fail(err.empty() ? "function library failed to load" : err);
        continue;
      }
      default:
        break;
    }
    if (!IsValueType(type)) return fail("unknown RDB type " + std::to_string(type));
    if (!r.String(&key)) return fail("reading a key");
    Entry* e = ReadValue(r, type, key, limits);
    if (!e && r.empty_value()) {
      // The value was read whole; the file goes on with the next record.
      r.ClearEmpty();
      h.EmptyKeySkipped(key);
      has_expire = false;
      idle = -1;
      freq = -1;
      continue;
    }
    if (!e) return fail("reading the value of a key");
    if (has_expire) {
      // A time before 1970 has passed as surely as 0 has.
      e = WithExpireField(e, true);
      e->set_expire_ms(std::max<int64_t>(expire_ms, 0));
    }
    std::string err;
    if (!h.Key(db, e, idle, freq, &err)) return fail(err.empty() ? "key rejected" : err);
    has_expire = false;
    idle = -1;
    freq = -1;
  }
}

}  // namespace larder::rdb
