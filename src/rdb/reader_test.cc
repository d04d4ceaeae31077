// The reader against crafted bytes: the encodings Redis 7.0 reads but no
// longer writes (zipmaps, ziplists, quicklist 1, text scores, LIST type 1),
// those of later versions (7.2's listpack sets and streams 3, 7.4's hashes
// with field TTLs), and malformed input. Payloads from a real redis-server
// are tested in tests/integration/test_rdb_read.py.
#include <gtest/gtest.h>
#include <lzf.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
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

std::string Le(uint64_t v, int n) {
  std::string s;
  for (int i = 0; i < n; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  return s;
}
std::string Be(uint64_t v, int n) {
  std::string s;
  for (int i = n - 1; i >= 0; --i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  return s;
}
std::string Len(uint64_t n) {
  if (n < 64) return std::string(1, static_cast<char>(n));
  if (n < 16384) return std::string{static_cast<char>(0x40 | (n >> 8)), static_cast<char>(n & 0xff)};
  if (n <= UINT32_MAX) return "\x80" + Be(n, 4);
  return "\x81" + Be(n, 8);
}
std::string Str(std::string_view s) { return Len(s.size()) + std::string(s); }
std::string Double(double d) {
  uint64_t v;
  memcpy(&v, &d, 8);
  return Le(v, 8);
}

bool AsInt(std::string_view s, int64_t* v) { return ParseInt64(s, v); }

std::string Backlen(size_t l) {
  size_t n = l < 128 ? 1 : l < 16384 ? 2 : 3;
  std::string s;
  for (size_t i = 0; i < n; ++i)
    s.push_back(static_cast<char>(((l >> (7 * (n - 1 - i))) & 127) | (i ? 128 : 0)));
  return s;
}

std::string LpEntry(std::string_view s) {
  std::string e;
  int64_t v;
  if (AsInt(s, &v)) {
    if (v >= 0 && v <= 127) {
      e.push_back(static_cast<char>(v));
    } else if (v >= -4096 && v < 4096) {
      uint64_t u = static_cast<uint64_t>(v) & 0x1fff;
      e.push_back(static_cast<char>(0xc0 | (u >> 8)));
      e.push_back(static_cast<char>(u & 0xff));
    } else if (v >= INT16_MIN && v <= INT16_MAX) {
      e = "\xf1" + Le(static_cast<uint64_t>(v), 2);
    } else if (v >= -(1 << 23) && v < (1 << 23)) {
      e = "\xf2" + Le(static_cast<uint64_t>(v), 3);
    } else if (v >= INT32_MIN && v <= INT32_MAX) {
      e = "\xf3" + Le(static_cast<uint64_t>(v), 4);
    } else {
      e = "\xf4" + Le(static_cast<uint64_t>(v), 8);
    }
  } else if (s.size() < 64) {
    e.push_back(static_cast<char>(0x80 | s.size()));
    e += s;
  } else if (s.size() < 4096) {
    e.push_back(static_cast<char>(0xe0 | (s.size() >> 8)));
    e.push_back(static_cast<char>(s.size() & 0xff));
    e += s;
  } else {
    e = "\xf0" + Le(s.size(), 4) + std::string(s);
  }
  return e + Backlen(e.size());
}

std::string Listpack(const std::vector<std::string>& items) {
  std::string body;
  for (const auto& i : items) body += LpEntry(i);
  return Le(6 + body.size() + 1, 4) + Le(items.size(), 2) + body + "\xff";
}

std::string Ziplist(const std::vector<std::string>& items) {
  std::string body;
  size_t prev = 0, last = 10;
  for (const auto& s : items) {
    std::string e = prev < 254 ? std::string(1, static_cast<char>(prev)) : "\xfe" + Le(prev, 4);
    int64_t v;
    if (AsInt(s, &v)) {
      if (v >= 0 && v <= 12) e.push_back(static_cast<char>(0xf1 + v));
      else if (v >= INT8_MIN && v <= INT8_MAX) e += "\xfe" + Le(static_cast<uint64_t>(v), 1);
      else if (v >= INT16_MIN && v <= INT16_MAX) e += "\xc0" + Le(static_cast<uint64_t>(v), 2);
      else if (v >= -(1 << 23) && v < (1 << 23)) e += "\xf0" + Le(static_cast<uint64_t>(v), 3);
      else if (v >= INT32_MIN && v <= INT32_MAX) e += "\xd0" + Le(static_cast<uint64_t>(v), 4);
      else e += "\xe0" + Le(static_cast<uint64_t>(v), 8);
    } else if (s.size() < 64) {
      e.push_back(static_cast<char>(s.size()));
      e += s;
    } else if (s.size() < 16384) {
      e.push_back(static_cast<char>(0x40 | (s.size() >> 8)));
      e.push_back(static_cast<char>(s.size() & 0xff));
      e += s;
    } else {
      e += "\x80" + Be(s.size(), 4) + s;
    }
    last = 10 + body.size();
    body += e;
    prev = e.size() - (prev < 254 ? 1 : 5);
    prev = e.size();
  }
  return Le(10 + body.size() + 1, 4) + Le(last, 4) + Le(items.size(), 2) + body + "\xff";
}

std::string Zipmap(const std::vector<std::string>& kv) {
  std::string z(1, static_cast<char>(kv.size() / 2));
  for (size_t i = 0; i < kv.size(); i += 2) {
    z.push_back(static_cast<char>(kv[i].size()));
    z += kv[i];
    z.push_back(static_cast<char>(kv[i + 1].size()));
    z.push_back(1);  // one free byte
    z += kv[i + 1];
    z.push_back('!');
  }
  return z + "\xff";
}

std::string Intset(const std::vector<int64_t>& v, int enc) {
  std::string s = Le(static_cast<uint64_t>(enc), 4) + Le(v.size(), 4);
  for (int64_t x : v) s += Le(static_cast<uint64_t>(x), enc);
  return s;
}

std::string Payload(uint8_t type, const std::string& body, int version = 10) {
  std::string p = std::string(1, static_cast<char>(type)) + body + Le(static_cast<uint64_t>(version), 2);
  return p + Le(Crc64(0, p), 8);
}

struct Decoded {
  Entry* e = nullptr;
  bool bad_version = false;
  ~Decoded() {
    if (e) FreeEntry(e);
  }
};

Limits DefaultLimits() { return Limits{}; }

Entry* Load(const std::string& payload, bool* bad = nullptr) {
  bool b;
  Entry* e = ReadPayload(payload, "k", DefaultLimits(), bad ? bad : &b);
  return e;
}

std::vector<std::string> ListItems(Entry* e) {
  auto* l = ObjectOf<ListValue>(e);
  std::vector<std::string> out;
  l->ForEach([&](std::string_view v) { out.emplace_back(v); });
  return out;
}

std::vector<std::pair<std::string, std::string>> HashItems(Entry* e) {
  std::vector<std::pair<std::string, std::string>> out;
  ObjectOf<HashValue>(e)->ForEach([&](std::string_view f, std::string_view v) { out.emplace_back(f, v); });
  return out;
}

std::vector<std::pair<std::string, double>> ZItems(Entry* e) {
  std::vector<std::pair<std::string, double>> out;
  ObjectOf<ZSetValue>(e)->ForEach([&](const ZSetValue::Ref& i) { out.emplace_back(i.member, i.score); });
  return out;
}

TEST(Crc64, CheckValue) { EXPECT_EQ(Crc64(0, "123456789"), 0xe9c6d914c4b8d9caULL); }

// The word-at-a-time steps agree with the definition (one bit at a time) at
// every length and alignment, and a CRC continued over pieces is the CRC of
// the whole.
TEST(Crc64, WordStepsMatchTheBitwiseDefinition) {
  auto bitwise = [](uint64_t crc, std::string_view s) {
    for (unsigned char b : s) {
      crc ^= b;
      for (int k = 0; k < 8; ++k) crc = (crc & 1) ? (crc >> 1) ^ 0x95ac9329ac4bc9b5ULL : crc >> 1;
    }
    return crc;
  };
  std::string data;
  for (int i = 0; i < 300; ++i) data.push_back(static_cast<char>((i * 131 + 7) & 0xff));
  for (size_t off = 0; off < 9; ++off) {
    for (size_t len = 0; off + len <= data.size(); len += 7) {
      std::string_view s = std::string_view(data).substr(off, len);
      ASSERT_EQ(Crc64(0, s), bitwise(0, s)) << off << " " << len;
    }
  }
  std::string_view all(data);
  EXPECT_EQ(Crc64(Crc64(0, all.substr(0, 13)), all.substr(13)), Crc64(0, all));
}

TEST(RdbReader, StringEncodings) {
  struct Case {
    std::string body, want;
  } cases[] = {
      {Str("hello"), "hello"},
      {"\xc0\x85", "-123"},
      {"\xc1" + Le(static_cast<uint64_t>(-30000), 2), "-30000"},
      {"\xc2" + Le(2000000000, 4), "2000000000"},
  };
  for (const auto& c : cases) {
    Decoded d;
    d.e = Load(Payload(kTypeString, c.body));
    ASSERT_NE(d.e, nullptr);
    EXPECT_EQ(d.e->value(), c.want);
  }
  std::string big(1000, 'a');
  for (int i = 0; i < 1000; i += 7) big[static_cast<size_t>(i)] = 'b';
  std::string comp(big.size(), '\0');
  unsigned n = lzf_compress(big.data(), big.size(), comp.data(), comp.size());
  ASSERT_GT(n, 0u);
  comp.resize(n);
  Decoded d;
  d.e = Load(Payload(kTypeString, "\xc3" + Len(n) + Len(big.size()) + comp));
  ASSERT_NE(d.e, nullptr);
  EXPECT_EQ(d.e->value(), big);
  EXPECT_EQ(static_cast<StrEncoding>(d.e->encoding), StrEncoding::kRaw);
  // A claimed length far beyond what LZF can give fails before allocating.
  EXPECT_EQ(Load(Payload(kTypeString, "\xc3" + Len(n) + "\x81" + Be(1ull << 40, 8) + comp)), nullptr);
  EXPECT_EQ(Load(Payload(kTypeString, "\xc3" + Len(n) + Len(big.size() + 1) + comp)), nullptr);
}

TEST(RdbReader, OldLists) {
  std::vector<std::string> want{"a", "12", "-5000", "70000", "9000000000", std::string(300, 'x')};
  {
    std::string body = Len(want.size());
    for (auto& s : want) body += Str(s);
    Decoded d;
    d.e = Load(Payload(kTypeList, body));
    ASSERT_NE(d.e, nullptr);
    EXPECT_EQ(ListItems(d.e), want);
  }
  {
    Decoded d;
    d.e = Load(Payload(kTypeListZiplist, Str(Ziplist(want))));
    ASSERT_NE(d.e, nullptr);
    EXPECT_EQ(ListItems(d.e), want);
  }
  {
    Decoded d;  // quicklist 1: nodes of ziplists
    d.e = Load(Payload(kTypeListQuicklist, Len(2) + Str(Ziplist({"a", "b"})) + Str(Ziplist({"7"}))));
    ASSERT_NE(d.e, nullptr);
    EXPECT_EQ(ListItems(d.e), (std::vector<std::string>{"a", "b", "7"}));
  }
  {
    Decoded d;  // quicklist 2: a PACKED node and a PLAIN one
    d.e = Load(Payload(kTypeListQuicklist2, Len(2) + Len(2) + Str(Listpack(want)) + Len(1) + Str("plain")));
    ASSERT_NE(d.e, nullptr);
    auto items = ListItems(d.e);
    ASSERT_EQ(items.size(), want.size() + 1);
    EXPECT_EQ(items.back(), "plain");
    EXPECT_EQ(items[3], "70000");
  }
  // Empty lists are malformed; so is a bad ziplist prevlen.
  EXPECT_EQ(Load(Payload(kTypeListQuicklist2, Len(1) + Len(2) + Str(Listpack({})))), nullptr);
  std::string zl = Ziplist({"a", "b"});
  zl[10 + 3] = 5;  // the second entry's prevlen
  EXPECT_EQ(Load(Payload(kTypeListZiplist, Str(zl))), nullptr);
}

TEST(RdbReader, OldHashes) {
  std::vector<std::pair<std::string, std::string>> want{{"f1", "v1"}, {"f2", "200"}};
  {
    Decoded d;
    d.e = Load(Payload(kTypeHashZipmap, Str(Zipmap({"f1", "v1", "f2", "200"}))));
    ASSERT_NE(d.e, nullptr);
    EXPECT_EQ(HashItems(d.e), want);
    EXPECT_STREQ(ObjectOf<HashValue>(d.e)->encoding(), "listpack");
  }
  {
    Decoded d;
    d.e = Load(Payload(kTypeHashZiplist, Str(Ziplist({"f1", "v1", "f2", "200"}))));
    ASSERT_NE(d.e, nullptr);
    EXPECT_EQ(HashItems(d.e), want);
  }
  {
    Decoded d;
    d.e = Load(Payload(kTypeHashListpack, Str(Listpack({"f1", "v1", "f2", "200"}))));
    ASSERT_NE(d.e, nullptr);
    EXPECT_EQ(HashItems(d.e), want);
  }
  {
    Decoded d;  // a long value turns it into a hash table, as HSET would
    d.e = Load(Payload(kTypeHash, Len(2) + Str("a") + Str(std::string(100, 'v')) + Str("b") + Str("c")));
    ASSERT_NE(d.e, nullptr);
    EXPECT_STREQ(ObjectOf<HashValue>(d.e)->encoding(), "hashtable");
  }
  // Duplicate fields, odd counts, an empty hash: "Bad data format".
  EXPECT_EQ(Load(Payload(kTypeHashListpack, Str(Listpack({"f", "1", "f", "2"})))), nullptr);
  EXPECT_EQ(Load(Payload(kTypeHashListpack, Str(Listpack({"f", "1", "g"})))), nullptr);
  EXPECT_EQ(Load(Payload(kTypeHash, Len(2) + Str("a") + Str("b") + Str("a") + Str("c"))), nullptr);
  EXPECT_EQ(Load(Payload(kTypeHashZipmap, Str(Zipmap({"a", "1", "a", "2"})))), nullptr);
  EXPECT_EQ(Load(Payload(kTypeHash, Len(0))), nullptr);
  // A zipmap length in the 5-byte form must need it; an empty zipmap is malformed.
  EXPECT_EQ(Load(Payload(kTypeHashZipmap, Str(std::string("\x01\xfe\x01\x00\x00\x00k\x01\x00v\xff", 11)))), nullptr);
  EXPECT_EQ(Load(Payload(kTypeHashZipmap, Str(std::string("\x00\xff", 2)))), nullptr);
  Decoded ok;
  ok.e = Load(Payload(kTypeHashZipmap, Str(std::string("\x01\x01k\x01\x00v\xff", 7))));
  EXPECT_NE(ok.e, nullptr);
}

TEST(RdbReader, HashFieldTtls) {
  int64_t t1 = 4000000000000, t2 = 4000000005000;
  {
    Decoded d;  // 7.4 HASH_METADATA: TTLs relative to the smallest, +1, 0 = none
    d.e = Load(Payload(kTypeHashMetadata, Le(static_cast<uint64_t>(t1), 8) + Len(3) + Len(1) + Str("a") + Str("1") +
                                               Len(5001) + Str("b") + Str("2") + Len(0) + Str("c") + Str("3"),
                       12));
    ASSERT_NE(d.e, nullptr);
    auto* h = ObjectOf<HashValue>(d.e);
    EXPECT_EQ(h->FieldExpire("a"), t1);
    EXPECT_EQ(h->FieldExpire("b"), t2);
    EXPECT_EQ(h->FieldExpire("c"), std::nullopt);
  }
  {
    Decoded d;  // 7.4 HASH_LISTPACK_EX: field, value, absolute TTL (0 = none)
    d.e = Load(Payload(kTypeHashListpackEx,
                       Le(static_cast<uint64_t>(t1), 8) +
                           Str(Listpack({"a", "1", std::to_string(t1), "b", "2", "0"})),
                       12));
    ASSERT_NE(d.e, nullptr);
    auto* h = ObjectOf<HashValue>(d.e);
    EXPECT_EQ(h->FieldExpire("a"), t1);
    EXPECT_EQ(h->FieldExpire("b"), std::nullopt);
    EXPECT_STREQ(h->encoding(), "listpackex");
  }
  {
    Decoded d;  // the 7.4 release candidates' form: absolute TTLs, no minimum
    d.e = Load(Payload(kTypeHashMetadataPreGa, Len(1) + Len(static_cast<uint64_t>(t2)) + Str("x") + Str("y"), 12));
    ASSERT_NE(d.e, nullptr);
    EXPECT_EQ(ObjectOf<HashValue>(d.e)->FieldExpire("x"), t2);
  }
  EXPECT_EQ(Load(Payload(kTypeHashListpackExPreGa, Str(Listpack({"a", "1", "-5"})), 12)), nullptr);
}

TEST(RdbReader, SortedSets) {
  std::vector<std::pair<std::string, double>> want{{"b", -1.5}, {"a", 2}, {"c", 2}};
  {
    Decoded d;  // type 3: scores as text; inf has its own length byte
    d.e = Load(Payload(kTypeZSet, Len(4) + Str("a") + "\x01" "2" + Str("b") + "\x04-1.5" + Str("c") + "\x01" "2" +
                                      Str("i") + "\xfe"));
    ASSERT_NE(d.e, nullptr);
    auto items = ZItems(d.e);
    ASSERT_EQ(items.size(), 4u);
    EXPECT_EQ(items[3].first, "i");
    EXPECT_TRUE(std::isinf(items[3].second));
    items.pop_back();
    EXPECT_EQ(items, want);
  }
  {
    Decoded d;
    d.e = Load(Payload(kTypeZSet2, Len(3) + Str("c") + Double(2) + Str("a") + Double(2) + Str("b") + Double(-1.5)));
    ASSERT_NE(d.e, nullptr);
    EXPECT_EQ(ZItems(d.e), want);
  }
  {
    Decoded d;
    d.e = Load(Payload(kTypeZSetZiplist, Str(Ziplist({"b", "-1.5", "a", "2", "c", "2"}))));
    ASSERT_NE(d.e, nullptr);
    EXPECT_EQ(ZItems(d.e), want);
  }
  {
    Decoded d;
    d.e = Load(Payload(kTypeZSetListpack, Str(Listpack({"b", "-1.5", "a", "2", "c", "2"}))));
    ASSERT_NE(d.e, nullptr);
    EXPECT_EQ(ZItems(d.e), want);
    EXPECT_STREQ(ObjectOf<ZSetValue>(d.e)->encoding(), "listpack");
  }
  {
    std::string body = Len(200);
    for (int i = 0; i < 200; ++i) body += Str("m" + std::to_string(i)) + Double(200 - i);
    Decoded d;
    d.e = Load(Payload(kTypeZSet2, body));
    ASSERT_NE(d.e, nullptr);
    EXPECT_STREQ(ObjectOf<ZSetValue>(d.e)->encoding(), "skiplist");
    EXPECT_EQ(ZItems(d.e).front().first, "m199");
  }
  EXPECT_EQ(Load(Payload(kTypeZSet2, Len(2) + Str("a") + Double(1) + Str("a") + Double(2))), nullptr);
  EXPECT_EQ(Load(Payload(kTypeZSet2, Len(1) + Str("a") + Double(NAN))), nullptr);
  EXPECT_EQ(Load(Payload(kTypeZSetListpack, Str(Listpack({"a", "x1"})))), nullptr);
}

TEST(RdbReader, Sets) {
  {
    Decoded d;
    d.e = Load(Payload(kTypeSetIntset, Str(Intset({-3, 5, 70000}, 4))));
    ASSERT_NE(d.e, nullptr);
    auto* s = ObjectOf<SetValue>(d.e);
    EXPECT_STREQ(s->encoding(), "intset");
    EXPECT_EQ(s->size(), 3u);
    EXPECT_TRUE(s->Contains("70000"));
  }
  {
    Decoded d;  // 7.2's listpack set: Larder (as 7.0) keeps it as a hash table
    d.e = Load(Payload(kTypeSetListpack, Str(Listpack({"x", "y", "3"})), 11));
    ASSERT_NE(d.e, nullptr);
    EXPECT_STREQ(ObjectOf<SetValue>(d.e)->encoding(), "hashtable");
    EXPECT_EQ(ObjectOf<SetValue>(d.e)->size(), 3u);
  }
  {
    Decoded d;
    d.e = Load(Payload(kTypeSet, Len(2) + Str("1") + Str("2")));
    ASSERT_NE(d.e, nullptr);
    EXPECT_STREQ(ObjectOf<SetValue>(d.e)->encoding(), "intset");
  }
  EXPECT_EQ(Load(Payload(kTypeSetIntset, Str(Intset({5, 3}, 2)))), nullptr);   // unsorted
  EXPECT_EQ(Load(Payload(kTypeSetIntset, Str(Intset({5}, 3)))), nullptr);      // bad encoding
  EXPECT_EQ(Load(Payload(kTypeSetIntset, Str(Intset({}, 2)))), nullptr);       // empty
  EXPECT_EQ(Load(Payload(kTypeSetListpack, Str(Listpack({"x", "x"})), 11)), nullptr);
  EXPECT_EQ(Load(Payload(kTypeSet, Len(2) + Str("a") + Str("a"))), nullptr);
}

// A stream of type 21 (7.2): one node of two entries (the second deleted),
// then a group with one consumer owning one PEL entry.
std::string Stream3(bool consumer_owns_pel = true, bool dup_group = false) {
  std::string lp = Listpack({"1", "1", "1", "f", "0",             // master: 1 live, 1 deleted, fields [f]
                             "2", "0", "0", "v1", "4",            // same fields, id 100-1
                             "3", "0", "1", "v2", "4"});          // same fields + deleted, id 100-2
  std::string body = Len(1) + Str(Be(100, 8) + Be(1, 8)) + Str(lp);
  body += Len(1) + Len(100) + Len(2);                    // length, last id
  body += Len(100) + Len(1) + Len(100) + Len(2) + Len(2);  // first id, max deleted, entries added
  int groups = dup_group ? 2 : 1;
  body += Len(static_cast<uint64_t>(groups));
  for (int g = 0; g < groups; ++g) {
    body += Str("g") + Len(100) + Len(1) + Len(1);  // name, last id, entries read
    body += Len(1) + Be(100, 8) + Be(1, 8) + Le(1700000000000, 8) + Len(3);  // PEL
    body += Len(1) + Str("alice") + Le(1700000000001, 8) + Le(1700000000002, 8);
    body += consumer_owns_pel ? Len(1) + Be(100, 8) + Be(1, 8) : Len(0);
  }
  return body;
}

TEST(RdbReader, Stream3WithGroups) {
  Decoded d;
  d.e = Load(Payload(kTypeStreamListpacks3, Stream3(), 11));
  ASSERT_NE(d.e, nullptr);
  auto* s = ObjectOf<StreamValue>(d.e);
  EXPECT_EQ(s->size(), 1u);
  EXPECT_EQ(s->last_id(), (StreamID{100, 2}));
  EXPECT_EQ(s->max_deleted_id(), (StreamID{100, 2}));
  EXPECT_EQ(s->entries_added(), 2u);
  StreamGroup* g = s->FindGroup("g");
  ASSERT_NE(g, nullptr);
  EXPECT_EQ(g->entries_read, 1);
  ASSERT_EQ(g->pel.size(), 1u);
  EXPECT_EQ(g->pel.begin()->second.delivery_count, 3u);
  StreamConsumer* c = g->FindConsumer("alice");
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->seen_time, 1700000000001);
  EXPECT_EQ(g->pel.begin()->second.consumer, c);
  std::vector<std::string> values;
  s->Range(StreamID::Min(), StreamID::Max(), false, [&](StreamID, const StreamFields& f) {
    values.emplace_back(f[0].second);
    return true;
  });
  EXPECT_EQ(values, std::vector<std::string>{"v1"});
  // A PEL entry no consumer owns, a duplicate group: malformed.
  EXPECT_EQ(Load(Payload(kTypeStreamListpacks3, Stream3(false), 11)), nullptr);
  EXPECT_EQ(Load(Payload(kTypeStreamListpacks3, Stream3(true, true), 11)), nullptr);
}

TEST(RdbReader, PayloadTrailer) {
  std::string p = Payload(kTypeString, Str("v"));
  bool bad = false;
  Decoded d;
  d.e = Load(p, &bad);
  ASSERT_NE(d.e, nullptr);
  std::string wrong = p;
  wrong[wrong.size() - 1] ^= 1;
  EXPECT_EQ(Load(wrong, &bad), nullptr);
  EXPECT_TRUE(bad);
  std::string zero = p.substr(0, p.size() - 8) + std::string(8, '\0');  // checked as any other (7.0)
  EXPECT_EQ(Load(zero, &bad), nullptr);
  EXPECT_TRUE(bad);
  EXPECT_EQ(Load(Payload(kTypeString, Str("v"), 13), &bad), nullptr);
  EXPECT_TRUE(bad);
  EXPECT_EQ(Load(Payload(kTypeModule2, Str("v")), &bad), nullptr);
  EXPECT_FALSE(bad);
  Reader r(Str("v"));
  EXPECT_EQ(ReadValue(r, kTypeModule2, "k", DefaultLimits()), nullptr);
  EXPECT_NE(r.error().find("module type values can't be loaded"), std::string::npos);
}

TEST(RdbReader, TruncatedPayloadsFailCleanly) {
  std::vector<std::string> bodies = {
      Payload(kTypeStreamListpacks3, Stream3(), 11),
      Payload(kTypeHashZiplist, Str(Ziplist({"f1", "v1", "f2", "200"}))),
      Payload(kTypeListQuicklist2, Len(1) + Len(2) + Str(Listpack({"a", "b"}))),
      Payload(kTypeZSet, Len(1) + Str("a") + "\x01" "2"),
  };
  for (const auto& p : bodies) {
    std::string body = p.substr(0, p.size() - 10);
    for (size_t cut = 0; cut < body.size(); ++cut) {
      std::string t = body.substr(0, cut) + p.substr(p.size() - 10, 2);
      t += Le(Crc64(0, t), 8);
      bool bad;
      EXPECT_EQ(ReadPayload(t, "k", DefaultLimits(), &bad), nullptr) << cut;
      // Each byte flipped: never a crash (the sanitizer builds check memory).
      std::string f = p;
      f[cut] = static_cast<char>(f[cut] ^ 0x5a);
      f = f.substr(0, f.size() - 8);
      f += Le(Crc64(0, f), 8);
      if (Entry* e = ReadPayload(f, "k", DefaultLimits(), &bad)) FreeEntry(e);
    }
  }
}

struct Collect : LoadHandler {
  std::vector<std::string> keys;
  std::vector<std::pair<std::string, std::string>> aux;
  std::vector<int64_t> expires, idles;
  std::vector<int> dbs, freqs;
  std::string function;
  bool Function(std::string_view code, std::string*) override {
    function = code;
    return true;
  }
  bool Key(int db, Entry* e, int64_t idle, int freq, std::string*) override {
    keys.emplace_back(e->key());
    dbs.push_back(db);
    expires.push_back(e->has_expire() ? e->expire_ms() : -1);
    idles.push_back(idle);
    freqs.push_back(freq);
    FreeEntry(e);
    return true;
  }
  void Aux(std::string_view n, std::string_view v) override { aux.emplace_back(n, v); }
  std::vector<std::string> empty;
  void EmptyKeySkipped(std::string_view key) override { empty.emplace_back(key); }
};

std::string File(bool checksum = true) {
  std::string f = "REDIS0010";
  f += "\xfa" + Str("redis-ver") + Str("7.0.15");
  f += "\xfe" + Len(0) + "\xfb" + Len(2) + Len(1);
  f += "\xfc" + Le(1800000000000, 8) + "\xf8" + Len(30) + std::string(1, kTypeString) + Str("a") + Str("1");
  f += "\xf9\x07" + std::string(1, kTypeSetIntset) + Str("s") + Str(Intset({1, 2}, 2));
  f += "\xf5" + Str("#!lua name=lib\nredis.register_function('f', function() return 1 end)");
  f += "\xfe" + Len(3) + "\xfd" + Le(1800000000, 4) + std::string(1, kTypeString) + Str("b") + Str("2");
  f += "\xff";
  return f + (checksum ? Le(Crc64(0, f), 8) : Le(0, 8));
}

TEST(RdbLoadFile, Opcodes) {
  for (bool checksum : {true, false}) {
    std::string f = File(checksum);
    Reader r(f);
    Collect c;
    std::string err;
    ASSERT_TRUE(LoadFile(r, DefaultLimits(), c, &err)) << err;
    EXPECT_EQ(c.keys, (std::vector<std::string>{"a", "s", "b"}));
    EXPECT_EQ(c.dbs, (std::vector<int>{0, 0, 3}));
    EXPECT_EQ(c.expires, (std::vector<int64_t>{1800000000000, -1, 1800000000000}));
    EXPECT_EQ(c.idles, (std::vector<int64_t>{30, -1, -1}));
    EXPECT_EQ(c.freqs, (std::vector<int>{-1, 7, -1}));
    EXPECT_EQ(c.aux.size(), 1u);
    EXPECT_NE(c.function.find("name=lib"), std::string::npos);
  }
  std::string f = File();
  f[f.size() - 1] ^= 1;
  Reader r(f);
  Collect c;
  std::string err;
  EXPECT_FALSE(LoadFile(r, DefaultLimits(), c, &err));
  EXPECT_NE(err.find("checksum"), std::string::npos);
}

// An empty collection in a file is skipped, with what follows it loaded
// (Redis 7.0 does the same); as a RESTORE payload it is malformed.
TEST(RdbLoadFile, EmptyCollectionsAreSkipped) {
  std::string f = "REDIS0010";
  f += "\xfe" + Len(0);
  f += "\xfc" + Le(1800000000000, 8) + std::string(1, kTypeSet) + Str("empty-set") + Len(0);
  f += std::string(1, kTypeHash) + Str("empty-hash") + Len(0);
  f += std::string(1, kTypeListQuicklist2) + Str("empty-list") + Len(0);
  f += std::string(1, kTypeString) + Str("a") + Str("1");
  f += "\xff";
  f += Le(Crc64(0, f), 8);
  Reader r(f);
  Collect c;
  std::string err;
  ASSERT_TRUE(LoadFile(r, DefaultLimits(), c, &err)) << err;
  EXPECT_EQ(c.keys, (std::vector<std::string>{"a"}));
  EXPECT_EQ(c.expires, (std::vector<int64_t>{-1}));  // the skipped key's TTL is not carried over
  EXPECT_EQ(c.empty, (std::vector<std::string>{"empty-set", "empty-hash", "empty-list"}));

  std::string p = std::string(1, kTypeSet) + Len(0) + Le(kVersion, 2);
  p += Le(Crc64(0, p), 8);
  bool bad = false;
  EXPECT_EQ(ReadPayload(p, "k", DefaultLimits(), &bad, &err), nullptr);
}

TEST(RdbLoadFile, FromFdAndMalformed) {
  std::string f = File();
  char path[] = "/tmp/rdb_reader_testXXXXXX";
  int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(write(fd, f.data(), f.size()), static_cast<ssize_t>(f.size()));
  lseek(fd, 0, SEEK_SET);
  {
    Reader r(fd);
    Collect c;
    std::string err;
    EXPECT_TRUE(LoadFile(r, DefaultLimits(), c, &err)) << err;
    EXPECT_EQ(c.keys.size(), 3u);
  }
  close(fd);
  unlink(path);
  for (size_t cut = 0; cut < f.size(); ++cut) {
    Reader r(std::string_view(f).substr(0, cut));
    Collect c;
    std::string err;
    EXPECT_FALSE(LoadFile(r, DefaultLimits(), c, &err));
  }
  for (std::string bad : {std::string("REDIS0013\xff"), std::string("RADIS0010\xff"),
                          std::string("REDIS0010\xf7") + Len(1), std::string("REDIS0010\xf6") + Str("x")}) {
    Reader r(bad);
    Collect c;
    std::string err;
    EXPECT_FALSE(LoadFile(r, DefaultLimits(), c, &err)) << bad;
  }
  std::string module_aux = std::string("REDIS0010\xf7") + Len(1);
  Reader r(module_aux);
  Collect c;
  std::string err;
  EXPECT_FALSE(LoadFile(r, DefaultLimits(), c, &err));
  EXPECT_NE(err.find("module aux"), std::string::npos) << err;
}

}  // namespace
}  // namespace larder::rdb

namespace larder::rdb {
namespace {

// A file redis-server 7.0.15 saved (also the fuzzer's seed): every type, a
// TTL, a function library, two databases.
TEST(RdbLoadFile, RedisSavedFile) {
  std::string path = std::string(__FILE__);
  path = path.substr(0, path.rfind('/')) + "/../../fuzz/seeds-rdb/mixed.rdb";
  FILE* f = fopen(path.c_str(), "rb");
  if (!f) GTEST_SKIP() << "no " << path;
  std::string data;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), f)) > 0) data.append(buf, n);
  fclose(f);
  Reader r(data);
  Collect c;
  std::string err;
  ASSERT_TRUE(LoadFile(r, DefaultLimits(), c, &err)) << err;
  EXPECT_EQ(c.keys.size(), 13u);
  EXPECT_NE(c.function.find("name=lib"), std::string::npos);
  EXPECT_EQ(std::count(c.dbs.begin(), c.dbs.end(), 2), 1);
  EXPECT_EQ(std::count_if(c.expires.begin(), c.expires.end(), [](int64_t e) { return e > 0; }), 1);
  bool redis_ver = false;
  for (const auto& [k, v] : c.aux) redis_ver |= k == "redis-ver" && v == "7.0.15";
  EXPECT_TRUE(redis_ver);
}

}  // namespace
}  // namespace larder::rdb
