#include "engine/aof_format.h"

#include <gtest/gtest.h>

namespace larder::aof {
namespace {

TEST(AofFormatTest, ManifestOfRedis7) {
  Manifest m;
  std::string err;
  ASSERT_TRUE(ParseManifest("# comment\nfile a.1.base.rdb seq 1 type b\nfile a.1.incr.aof seq 1 type i\n"
                            "FILE a.2.incr.aof SEQ 2 TYPE i\n",
                            &m, &err))
      << err;
  ASSERT_EQ(m.base.size(), 1u);
  EXPECT_EQ(m.base[0].name, "a.1.base.rdb");
  ASSERT_EQ(m.incr.size(), 2u);
  EXPECT_EQ(m.cur_incr_seq, 2);
}

TEST(AofFormatTest, QuotedNamesAndEscapes) {
  Manifest m;
  std::string err;
  ASSERT_TRUE(ParseManifest("file \"a b\\x41.rdb\" seq 1 type b\n", &m, &err)) << err;
  EXPECT_EQ(m.base[0].name, "a bA.rdb");
  EXPECT_EQ(ManifestName("a bA.rdb"), "\"a bA.rdb\"");
  // Not hex after \x: the x stands for itself (found by the fuzzer: no throw).
  ASSERT_TRUE(ParseManifest("file \"n\\xZZ\" seq 1 type b\n", &m, &err)) << err;
  EXPECT_EQ(m.base[0].name, "nxZZ");
}

TEST(AofFormatTest, BadManifestsSayWhyAsRedis) {
  Manifest m;
  std::string err;
  EXPECT_FALSE(ParseManifest("", &m, &err));
  EXPECT_EQ(err, "Found an empty AOF manifest");
  EXPECT_FALSE(ParseManifest("file a seq 1 type b\nfile b seq 2 type b\n", &m, &err));
  EXPECT_NE(err.find("Found duplicate base file information"), std::string::npos);
  EXPECT_FALSE(ParseManifest("file a seq 2 type i\nfile b seq 1 type i\n", &m, &err));
  EXPECT_NE(err.find("non-monotonic"), std::string::npos);
  EXPECT_FALSE(ParseManifest("file a seq 1 type b", &m, &err));  // no newline
  EXPECT_FALSE(ParseManifest("file x/y seq 1 type b\n", &m, &err));
  EXPECT_FALSE(ParseManifest("file a seq 1 type z\n", &m, &err));
}

TEST(AofFormatTest, CommandsTruncatedAndMalformed) {
  std::string_view d = "#TS:1\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*2\r\n$3\r\nGET\r\n$4\r\nk";
  size_t pos = 0;
  std::vector<std::string_view> argv;
  ASSERT_EQ(ParseCommand(d, &pos, &argv), ParseResult::kOk);
  EXPECT_EQ(argv, (std::vector<std::string_view>{"GET", "k"}));
  size_t before = pos;
  EXPECT_EQ(ParseCommand(d, &pos, &argv), ParseResult::kTruncated);
  (void)before;
  pos = 0;
  EXPECT_EQ(ParseCommand("+OK\r\n", &pos, &argv), ParseResult::kBadFormat);
  pos = 0;
  EXPECT_EQ(ParseCommand("", &pos, &argv), ParseResult::kEof);
}

}  // namespace
}  // namespace larder::aof
