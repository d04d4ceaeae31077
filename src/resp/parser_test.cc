#include "resp/parser.h"

#include <gtest/gtest.h>

namespace larder::resp {

using R = RequestParser::Result;

TEST(ParserTest, MultiBulk) {
  RequestParser p;
  std::vector<std::string_view> args;
  size_t used;
  std::string in = "*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n*1\r\n$4\r\nPING\r\n";
  ASSERT_EQ(p.Parse(in, &args, &used), R::kCommand);
  ASSERT_EQ(args.size(), 2u);
  EXPECT_EQ(args[0], "GET");
  EXPECT_EQ(args[1], "key");
  std::string_view rest = std::string_view(in).substr(used);
  ASSERT_EQ(p.Parse(rest, &args, &used), R::kCommand);
  EXPECT_EQ(args[0], "PING");
}

TEST(ParserTest, ByteByByte) {
  RequestParser p;
  std::vector<std::string_view> args;
  size_t used;
  std::string in = "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhello\r\n";
  for (size_t n = 1; n < in.size(); ++n) {
    ASSERT_EQ(p.Parse(std::string_view(in).substr(0, n), &args, &used), R::kNeedMore) << n;
  }
  ASSERT_EQ(p.Parse(in, &args, &used), R::kCommand);
  EXPECT_EQ(used, in.size());
  EXPECT_EQ(args[2], "hello");
}

TEST(ParserTest, Inline) {
  RequestParser p;
  std::vector<std::string_view> args;
  size_t used;
  ASSERT_EQ(p.Parse("set k \"a b\\x41\" 'c d'\r\n", &args, &used), R::kCommand);
  ASSERT_EQ(args.size(), 4u);
  EXPECT_EQ(args[2], "a bA");
  EXPECT_EQ(args[3], "c d");
  ASSERT_EQ(p.Parse("\r\n", &args, &used), R::kEmpty);
  ASSERT_EQ(p.Parse("get \"unbalanced\r\n", &args, &used), R::kError);
  EXPECT_EQ(p.error(), "ERR Protocol error: unbalanced quotes in request");
}

TEST(ParserTest, Errors) {
  std::vector<std::string_view> args;
  size_t used;
  {
    RequestParser p;
    ASSERT_EQ(p.Parse("*x\r\n", &args, &used), R::kError);
    EXPECT_EQ(p.error(), "ERR Protocol error: invalid multibulk length");
  }
  {
    RequestParser p;
    ASSERT_EQ(p.Parse("*1\r\n+foo\r\n", &args, &used), R::kError);
    EXPECT_EQ(p.error(), "ERR Protocol error: expected '$', got '+'");
  }
  {
    RequestParser p;
    ASSERT_EQ(p.Parse("*1\r\n$-1\r\n", &args, &used), R::kError);
    EXPECT_EQ(p.error(), "ERR Protocol error: invalid bulk length");
  }
  {
    RequestParser p;
    RequestParser::Limits l;
    l.max_bulk_len = 10;
    p.set_limits(l);
    ASSERT_EQ(p.Parse("*1\r\n$11\r\n", &args, &used), R::kError);
  }
  {
    RequestParser p;
    std::string big(70 * 1024, 'a');
    ASSERT_EQ(p.Parse(big, &args, &used), R::kError);
    EXPECT_EQ(p.error(), "ERR Protocol error: too big inline request");
  }
  {
    RequestParser p;
    std::string big = "*1\r\n$" + std::string(70 * 1024, '1');
    ASSERT_EQ(p.Parse(big, &args, &used), R::kError);
    EXPECT_EQ(p.error(), "ERR Protocol error: too big bulk count string");
  }
}

TEST(ParserTest, HugeCountDoesNotPreallocate) {
  RequestParser p;
  std::vector<std::string_view> args;
  size_t used;
  // Announces two billion arguments but sends none: must just wait for more.
  ASSERT_EQ(p.Parse("*2000000000\r\n", &args, &used), R::kNeedMore);
  ASSERT_EQ(p.Parse("*2000000000\r\n$1\r\na\r\n", &args, &used), R::kNeedMore);
}

TEST(ParserTest, ZeroAndNegativeCounts) {
  RequestParser p;
  std::vector<std::string_view> args;
  size_t used;
  ASSERT_EQ(p.Parse("*0\r\n", &args, &used), R::kEmpty);
  EXPECT_EQ(used, 4u);
  ASSERT_EQ(p.Parse("*-1\r\n", &args, &used), R::kEmpty);
}

}  // namespace larder::resp
