// The RDB writer: CRC-64, length and string encodings, listpack/intset/
// stream node bytes, DUMP payloads, and a whole file redis-check-rdb accepts.
// The expected payloads below are what redis-server 7.0.15's DUMP returns
// for the same values (tests/integration/test_rdb_write.py compares many
// more against a running redis-server).
#include "rdb/rdb.h"

#include <gtest/gtest.h>
#include <lzf.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "keyspace/objects.h"
#include "rdb/format.h"
#include "rdb/lp_write.h"

namespace larder::rdb {
namespace {

using namespace std::string_literals;

std::string Hex(std::string_view s) {
  std::string out;
  char buf[4];
  for (unsigned char c : s) {
    snprintf(buf, sizeof(buf), "%02x", c);
    out += buf;
  }
  return out;
}

struct EntryDeleter {
  void operator()(Entry* e) const { FreeEntry(e); }
};
using EntryPtr = std::unique_ptr<Entry, EntryDeleter>;

EntryPtr StringEntry(std::string_view key, std::string_view v, int64_t expire = -1) {
  return EntryPtr(NewStringEntry(key, v, expire));
}
template <typename T>
EntryPtr ObjectEntry(std::string_view key, ObjType t, std::unique_ptr<T> v) {
  return EntryPtr(NewObjectEntry(key, t, v.release(), -1));
}

TEST(Crc64, CheckValue) {
  EXPECT_EQ(Crc64(0, "123456789"), 0xe9c6d914c4b8d9caull);
  EXPECT_EQ(Crc64(0, ""), 0u);
  // Continuing from a previous CRC equals one pass.
  EXPECT_EQ(Crc64(Crc64(0, "1234"), "56789"), 0xe9c6d914c4b8d9caull);
}

TEST(Writer, Lengths) {
  auto len = [](uint64_t n) {
    Writer w;
    w.Length(n);
    return Hex(w.Take());
  };
  EXPECT_EQ(len(0), "00");
  EXPECT_EQ(len(63), "3f");
  EXPECT_EQ(len(64), "4040");
  EXPECT_EQ(len(16383), "7fff");
  EXPECT_EQ(len(16384), "8000004000");
  EXPECT_EQ(len(0xffffffffull), "80ffffffff");
  EXPECT_EQ(len(0x100000000ull), "810000000100000000");
}

TEST(Writer, StringEncodings) {
  auto str = [](std::string_view s, bool compress = true) {
    Writer w(Writer::Options{compress, true});
    w.String(s);
    return Hex(w.Take());
  };
  EXPECT_EQ(str(""), "00");
  EXPECT_EQ(str("hello"), "0568656c6c6f");
  EXPECT_EQ(str("-12"), "c0f4");
  EXPECT_EQ(str("127"), "c07f");
  EXPECT_EQ(str("128"), "c18000");
  EXPECT_EQ(str("-32768"), "c10080");
  EXPECT_EQ(str("70000"), "c270110100");
  EXPECT_EQ(str("-2147483648"), "c200000080");
  EXPECT_EQ(str("2147483648"), "0a32313437343833363438");  // past 32 bits: plain
  EXPECT_EQ(str("007"), "03303037");                        // not canonical
  EXPECT_EQ(str("+1"), "022b31");
  // LZF over 20 bytes when it saves; plain otherwise or with compression off.
  std::string rep(100, 'a');
  std::string lzf = [&] {
    Writer w;
    w.String(rep);
    return w.Take();
  }();
  ASSERT_EQ(static_cast<uint8_t>(lzf[0]), 0xc3);
  size_t clen = static_cast<uint8_t>(lzf[1]);
  ASSERT_EQ(Hex(lzf.substr(2, 2)), "4064");  // the original length, 100 (14-bit)
  ASSERT_EQ(lzf.size(), 4 + clen);
  char out[100];
  ASSERT_EQ(lzf_decompress(lzf.data() + 4, static_cast<unsigned>(clen), out, sizeof(out)), 100u);
  EXPECT_EQ(std::string(out, 100), rep);
  EXPECT_EQ(str(rep, false), "4064" + Hex(rep));
  EXPECT_EQ(str("aaaaaaaaaaaaaaaaaaaa"), "14" + Hex("aaaaaaaaaaaaaaaaaaaa"));  // 20 bytes: never LZF
}

TEST(Writer, FixedWidthValues) {
  Writer w;
  w.Millis(0x0102030405060708ll);
  w.BinaryDouble(1.5);
  EXPECT_EQ(Hex(w.Take()), "0807060504030201000000000000f83f");
  EXPECT_EQ(w.written(), 16u);
}

TEST(Writer, CrcCoversTakenAndPendingBytes) {
  Writer w;
  w.Raw("1234");
  std::string first = w.Take();
  w.Raw("56789");
  EXPECT_EQ(w.crc(), 0xe9c6d914c4b8d9caull);
  EXPECT_EQ(w.written(), 9u);
}

TEST(Listpack, EntryEncodings) {
  ListpackBuilder lp;
  lp.Add("a");
  lp.Add("1");
  lp.Add("-300");       // 13-bit int
  lp.Add("70000");      // 24-bit int
  lp.Add("x");
  EXPECT_EQ(lp.count(), 5u);
  std::string b = lp.Finish();
  EXPECT_EQ(Hex(b), "170000000500816102"
                    "0101"
                    "ded402"
                    "f270110104"
                    "817802"
                    "ff");
  EXPECT_EQ(ListpackEntrySize("a"), 3u);
  EXPECT_EQ(ListpackEntrySize("-300"), 3u);
  EXPECT_EQ(ListpackEntrySize(std::string(64, 'z')), 64u + 2 + 1);
  EXPECT_EQ(ListpackEntrySize(std::string(200, 'z')), 200u + 2 + 2);  // 2-byte backlen
}

TEST(Intset, Widths) {
  std::vector<int64_t> a = {-40000, 7};
  EXPECT_EQ(Hex(IntsetBytes(a)), "0400000002000000c063ffff07000000");
  std::vector<int64_t> b = {1, 2};
  EXPECT_EQ(Hex(IntsetBytes(b)), "020000000200000001000200");
}

// DUMP payloads redis-server 7.0.15 returns for the same values.
TEST(DumpPayload, MatchesRedis) {
  {
    auto h = std::make_unique<HashValue>();
    HashLimits lim;
    h->Set("a", "1", lim);
    h->Set("bb", "-300", lim);
    auto e = ObjectEntry("h", ObjType::kHash, std::move(h));
    EXPECT_EQ(TypeOf(e.get()), kTypeHashListpack);
    EXPECT_EQ(Hex(DumpPayload(e.get())), "1013130000000400816102010182626203ded402ff0a00c8577f4155ad70cc");
  }
  {
    auto l = std::make_unique<ListValue>();
    l->PushBack("x");
    l->PushBack("70000");
    auto e = ObjectEntry("l", ObjType::kList, std::move(l));
    EXPECT_EQ(Hex(DumpPayload(e.get())), "1201020f0f0000000200817802f270110104ff0a00625aa0d40551fe94");
  }
  {
    auto z = std::make_unique<ZSetValue>();
    z->Set("m", 2.5, ZSetLimits{});
    auto e = ObjectEntry("z", ObjType::kZSet, std::move(z));
    EXPECT_EQ(Hex(DumpPayload(e.get())), "110f0f0000000200816d0283322e3504ff0a005fe9804553c3b52d");
  }
  {
    auto s = std::make_unique<SetValue>();
    s->Add("7", 512);
    s->Add("-40000", 512);
    auto e = ObjectEntry("s", ObjType::kSet, std::move(s));
    EXPECT_EQ(TypeOf(e.get()), kTypeSetIntset);
    EXPECT_EQ(Hex(DumpPayload(e.get())), "0b100400000002000000c063ffff070000000a00c47608a07505137e");
  }
  {
    auto x = std::make_unique<StreamValue>();
    std::vector<std::string_view> fv = {"f", "v"};
    x->Append(StreamID{5, 1}, fv, StreamLimits{});
    auto e = ObjectEntry("x", ObjType::kStream, std::move(x));
    EXPECT_EQ(Hex(DumpPayload(e.get())),
              "130110000000000000000500000000000000011d1d0000000a0001010001010181660200010201000100018176020401ff"
              "0105010501000001000a00b9dc3931cba8a05d");
  }
  {
    auto e = StringEntry("k", "12345");
    std::string p = DumpPayload(e.get());
    EXPECT_EQ(Hex(p.substr(0, p.size() - 8)), "00c139300a00");
    uint64_t crc = 0;
    for (int i = 7; i >= 0; --i) crc = (crc << 8) | static_cast<uint8_t>(p[p.size() - 8 + static_cast<size_t>(i)]);
    EXPECT_EQ(crc, Crc64(0, p.substr(0, p.size() - 8)));
  }
}

TEST(WriteKey, TtlAndAccessInfo) {
  auto e = StringEntry("k", "v", 0x0102030405060708ll);
  Writer w;
  WriteKey(w, e.get(), AccessInfo::kNone);
  EXPECT_EQ(Hex(w.Take()), "fc0807060504030201" "00016b0176");
  Writer w2;
  WriteKey(w2, e.get(), AccessInfo::kFreq);
  std::string b = w2.Take();
  EXPECT_EQ(static_cast<uint8_t>(b[9]), kOpFreq);
  Writer w3;
  WriteKey(w3, e.get(), AccessInfo::kIdle);
  b = w3.Take();
  EXPECT_EQ(static_cast<uint8_t>(b[9]), kOpIdle);
}

// A whole file with every framing piece: redis-check-rdb (Debian's
// redis-tools, the 7.0.15 checker) must accept it.
TEST(WriteFile, RedisCheckRdbAccepts) {
  const char* checker = "/usr/bin/redis-check-rdb";
  if (access(checker, X_OK) != 0) GTEST_SKIP() << "redis-check-rdb is not installed";
  Writer w;
  WriteHeader(w);
  WriteAux(w, "redis-ver", "7.0.15");
  WriteAuxInt(w, "redis-bits", 64);
  WriteAuxInt(w, "ctime", 1700000000);
  WriteAuxInt(w, "used-mem", 1234567);
  WriteAuxInt(w, "aof-base", 0);
  WriteFunction(w, "#!lua name=mylib\nredis.register_function('myfunc', function(keys, args) return 1 end)");
  WriteSelectDb(w, 0);
  WriteResizeDb(w, 4, 1);
  auto s = StringEntry("str", std::string(300, 'q'), 4102444800000ll);
  WriteKey(w, s.get(), AccessInfo::kNone);
  auto h = std::make_unique<HashValue>();
  for (int i = 0; i < 200; ++i) h->Set("f" + std::to_string(i), "v", HashLimits{});
  auto he = ObjectEntry("hash", ObjType::kHash, std::move(h));
  WriteKey(w, he.get(), AccessInfo::kFreq);
  auto l = std::make_unique<ListValue>();
  for (int i = 0; i < 5000; ++i) l->PushBack("item" + std::to_string(i));
  auto le = ObjectEntry("list", ObjType::kList, std::move(l));
  WriteKey(w, le.get(), AccessInfo::kIdle);
  auto x = std::make_unique<StreamValue>();
  for (uint64_t i = 1; i <= 300; ++i) {
    std::string v = std::to_string(i);
    std::vector<std::string_view> fv = {"a", v};
    x->Append(StreamID{i, 0}, fv, StreamLimits{});
  }
  StreamGroup* g = x->CreateGroup("grp", StreamID{3, 0}, 3);
  StreamConsumer* c = g->CreateConsumer("alice", 1700000000000);
  g->pel[StreamID{2, 0}] = StreamNack{1700000000000, 2, c};
  c->pending.insert(StreamID{2, 0});
  auto xe = ObjectEntry("stream", ObjType::kStream, std::move(x));
  WriteKey(w, xe.get(), AccessInfo::kNone);
  WriteSelectDb(w, 3);
  WriteResizeDb(w, 1, 0);
  auto z = std::make_unique<ZSetValue>();
  for (int i = 0; i < 300; ++i) z->Set("m" + std::to_string(i), i * 0.5, ZSetLimits{});
  auto ze = ObjectEntry("zset", ObjType::kZSet, std::move(z));
  WriteKey(w, ze.get(), AccessInfo::kNone);
  WriteEof(w);
  std::string file = w.Take();

  char path[] = "/tmp/larder-rdb-XXXXXX";
  int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(write(fd, file.data(), file.size()), static_cast<ssize_t>(file.size()));
  close(fd);
  std::string cmd = std::string(checker) + " " + path + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string out;
  char buf[512];
  while (fgets(buf, sizeof(buf), p)) out += buf;
  int rc = pclose(p);
  unlink(path);
  EXPECT_TRUE(WIFEXITED(rc) && WEXITSTATUS(rc) == 0) << out;
  EXPECT_NE(out.find("RDB looks OK"), std::string::npos) << out;
  EXPECT_NE(out.find("5 keys read"), std::string::npos) << out;
}

TEST(WriteFile, ChecksumOff) {
  Writer w(Writer::Options{true, false});
  WriteHeader(w);
  WriteEof(w);
  EXPECT_EQ(w.Take(), "REDIS0010\xff"s + std::string(8, '\0'));
}

}  // namespace
}  // namespace larder::rdb
