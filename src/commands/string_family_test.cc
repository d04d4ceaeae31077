// String commands through the executor, in process (commands/command_test_base.h).
#include <thread>

#include "commands/command_test_base.h"

namespace larder {
namespace {

using ::testing::ElementsAre;

class StringFamilyTest : public FamilyTest {};

TEST_F(StringFamilyTest, SetAndGet) {
  EXPECT_THAT(Run({"SET", "k", "v"}), IsOk());
  EXPECT_EQ(Run({"GET", "k"}), "v");
  EXPECT_THAT(Run({"GET", "missing"}), IsNil());
  EXPECT_EQ(Run({"STRLEN", "k"}), 1);
  // Binary-safe values.
  std::string bin("a\0b\r\n", 5);
  EXPECT_THAT(Run({"SET", "bin", bin}), IsOk());
  EXPECT_EQ(Run({"GET", "bin"}), bin);
  EXPECT_EQ(Run({"STRLEN", "bin"}), 5);
}

TEST_F(StringFamilyTest, SetNxXx) {
  EXPECT_THAT(Run({"SET", "k", "1", "XX"}), IsNil());
  EXPECT_THAT(Run({"GET", "k"}), IsNil());
  EXPECT_THAT(Run({"SET", "k", "1", "NX"}), IsOk());
  EXPECT_THAT(Run({"SET", "k", "2", "NX"}), IsNil());
  EXPECT_EQ(Run({"GET", "k"}), "1");
  EXPECT_THAT(Run({"SET", "k", "3", "XX"}), IsOk());
  EXPECT_EQ(Run({"GET", "k"}), "3");
  EXPECT_THAT(Run({"SET", "k", "4", "NX", "XX"}), IsError("ERR syntax error"));
  EXPECT_EQ(Run({"SETNX", "k", "5"}), 0);
  EXPECT_EQ(Run({"SETNX", "other", "5"}), 1);
  EXPECT_EQ(Run({"GET", "other"}), "5");
}

TEST_F(StringFamilyTest, SetGetOption) {
  EXPECT_THAT(Run({"SET", "k", "a", "GET"}), IsNil());
  EXPECT_EQ(Run({"SET", "k", "b", "GET"}), "a");
  EXPECT_EQ(Run({"GET", "k"}), "b");
  // NX with GET (Redis 7): the old value, and no write when it exists.
  EXPECT_EQ(Run({"SET", "k", "c", "NX", "GET"}), "b");
  EXPECT_EQ(Run({"GET", "k"}), "b");
  // GET on a key of another type fails and writes nothing.
  EXPECT_EQ(Run({"HSET", "h", "f", "v"}), 1);
  EXPECT_THAT(Run({"SET", "h", "x", "GET"}), IsError("WRONGTYPE"));
  EXPECT_EQ(Run({"TYPE", "h"}), "hash");
  EXPECT_EQ(Run({"GETSET", "k", "d"}), "b");
  EXPECT_EQ(Run({"GETDEL", "k"}), "d");
  EXPECT_EQ(Run({"EXISTS", "k"}), 0);
}

TEST_F(StringFamilyTest, SetExpiryOptions) {
  EXPECT_THAT(Run({"SET", "k", "v", "EX", "100"}), IsOk());
  EXPECT_THAT(Run({"TTL", "k"}), IntBetween(99, 100));
  EXPECT_THAT(Run({"SET", "k", "v", "PX", "50000"}), IsOk());
  EXPECT_THAT(Run({"PTTL", "k"}), IntBetween(49000, 50000));
  // A plain SET clears the TTL; KEEPTTL keeps it.
  EXPECT_THAT(Run({"SET", "k", "v2", "KEEPTTL"}), IsOk());
  EXPECT_THAT(Run({"PTTL", "k"}), IntBetween(49000, 50000));
  EXPECT_EQ(Run({"GET", "k"}), "v2");
  EXPECT_THAT(Run({"SET", "k", "v3"}), IsOk());
  EXPECT_EQ(Run({"TTL", "k"}), -1);
  // EXAT / PXAT: absolute times; one in the past deletes at once.
  EXPECT_THAT(Run({"SET", "k", "v", "PXAT", "1000"}), IsOk());
  EXPECT_THAT(Run({"GET", "k"}), IsNil());
  // Invalid expire values and conflicting options.
  EXPECT_THAT(Run({"SET", "k", "v", "EX", "0"}), IsError("ERR invalid expire time in 'set' command"));
  EXPECT_THAT(Run({"SET", "k", "v", "EX", "-5"}), IsError("ERR invalid expire time"));
  EXPECT_THAT(Run({"SET", "k", "v", "EX", "abc"}), IsError("ERR value is not an integer"));
  EXPECT_THAT(Run({"SET", "k", "v", "EX", "10", "PX", "100"}), IsError("ERR syntax error"));
  EXPECT_THAT(Run({"SET", "k", "v", "EX", "10", "KEEPTTL"}), IsError("ERR syntax error"));
  EXPECT_THAT(Run({"SET", "k", "v", "EX"}), IsError("ERR syntax error"));
  // The key really goes once the time passed.
  EXPECT_THAT(Run({"SET", "short", "v", "PX", "30"}), IsOk());
  std::this_thread::sleep_for(std::chrono::milliseconds(60));
  EXPECT_THAT(Run({"GET", "short"}), IsNil());
  EXPECT_EQ(Run({"SETEX", "k", "100", "v"}), "OK");
  EXPECT_THAT(Run({"TTL", "k"}), IntBetween(99, 100));
  EXPECT_THAT(Run({"PSETEX", "k", "0", "v"}), IsError("ERR invalid expire time in 'psetex' command"));
}

TEST_F(StringFamilyTest, GetEx) {
  EXPECT_THAT(Run({"GETEX", "missing", "EX", "10"}), IsNil());
  EXPECT_THAT(Run({"SET", "k", "v"}), IsOk());
  EXPECT_EQ(Run({"GETEX", "k"}), "v");
  EXPECT_EQ(Run({"TTL", "k"}), -1);
  EXPECT_EQ(Run({"GETEX", "k", "EX", "100"}), "v");
  EXPECT_THAT(Run({"TTL", "k"}), IntBetween(99, 100));
  EXPECT_EQ(Run({"GETEX", "k", "PX", "200000"}), "v");
  EXPECT_THAT(Run({"PTTL", "k"}), IntBetween(199000, 200000));
  EXPECT_EQ(Run({"GETEX", "k", "PERSIST"}), "v");
  EXPECT_EQ(Run({"TTL", "k"}), -1);
  EXPECT_THAT(Run({"GETEX", "k", "EX", "10", "PERSIST"}), IsError("ERR syntax error"));
  EXPECT_THAT(Run({"GETEX", "k", "EX", "0"}), IsError("ERR invalid expire time in 'getex' command"));
  // An absolute time in the past: the value, then the key is gone.
  EXPECT_EQ(Run({"GETEX", "k", "PXAT", "1000"}), "v");
  EXPECT_EQ(Run({"EXISTS", "k"}), 0);
  EXPECT_EQ(Run({"RPUSH", "l", "a"}), 1);
  EXPECT_THAT(Run({"GETEX", "l"}), IsError("WRONGTYPE"));
}

TEST_F(StringFamilyTest, IncrFamily) {
  EXPECT_EQ(Run({"INCR", "n"}), 1);
  EXPECT_EQ(Run({"INCRBY", "n", "41"}), 42);
  EXPECT_EQ(Run({"DECR", "n"}), 41);
  EXPECT_EQ(Run({"DECRBY", "n", "50"}), -9);
  EXPECT_EQ(Run({"GET", "n"}), "-9");
  EXPECT_THAT(Run({"INCRBY", "n", "x"}), IsError("ERR value is not an integer or out of range"));
  EXPECT_THAT(Run({"SET", "s", "abc"}), IsOk());
  EXPECT_THAT(Run({"INCR", "s"}), IsError("ERR value is not an integer or out of range"));
  EXPECT_THAT(Run({"SET", "s", " 1"}), IsOk());  // no spaces, as Redis
  EXPECT_THAT(Run({"INCR", "s"}), IsError("ERR value is not an integer"));
  EXPECT_EQ(Run({"RPUSH", "l", "a"}), 1);
  EXPECT_THAT(Run({"INCR", "l"}), IsError("WRONGTYPE"));
  // INCR keeps the TTL.
  EXPECT_THAT(Run({"SET", "t", "1", "EX", "100"}), IsOk());
  EXPECT_EQ(Run({"INCR", "t"}), 2);
  EXPECT_THAT(Run({"TTL", "t"}), IntBetween(99, 100));
}

TEST_F(StringFamilyTest, IncrOverflow) {
  EXPECT_THAT(Run({"SET", "n", "9223372036854775806"}), IsOk());
  EXPECT_EQ(Run({"INCR", "n"}), INT64_MAX);
  EXPECT_THAT(Run({"INCR", "n"}), IsError("ERR increment or decrement would overflow"));
  EXPECT_EQ(Run({"GET", "n"}), "9223372036854775807");
  EXPECT_THAT(Run({"SET", "m", "-9223372036854775808"}), IsOk());
  EXPECT_THAT(Run({"DECR", "m"}), IsError("ERR increment or decrement would overflow"));
  EXPECT_THAT(Run({"DECRBY", "m", "-9223372036854775808"}), IsError("ERR decrement would overflow"));
  EXPECT_THAT(Run({"SET", "big", "9223372036854775808"}), IsOk());  // one past int64
  EXPECT_THAT(Run({"INCR", "big"}), IsError("ERR value is not an integer or out of range"));
}

TEST_F(StringFamilyTest, IncrByFloat) {
  EXPECT_EQ(Run({"INCRBYFLOAT", "f", "10.5"}), "10.5");
  EXPECT_EQ(Run({"INCRBYFLOAT", "f", "0.1"}), "10.6");
  EXPECT_EQ(Run({"INCRBYFLOAT", "f", "-5e1"}), "-39.4");
  EXPECT_THAT(Run({"SET", "i", "3"}), IsOk());
  EXPECT_EQ(Run({"INCRBYFLOAT", "i", "2"}), "5");
  EXPECT_THAT(Run({"INCRBYFLOAT", "i", "x"}), IsError("ERR value is not a valid float"));
  EXPECT_THAT(Run({"INCRBYFLOAT", "i", "inf"}), IsError("ERR increment would produce NaN or Infinity"));
  EXPECT_EQ(Run({"GET", "i"}), "5");
}

TEST_F(StringFamilyTest, Append) {
  EXPECT_EQ(Run({"APPEND", "k", "Hello"}), 5);
  EXPECT_EQ(Run({"APPEND", "k", " World"}), 11);
  EXPECT_EQ(Run({"GET", "k"}), "Hello World");
  EXPECT_EQ(Run({"SET", "n", "1"}), "OK");
  EXPECT_EQ(Run({"APPEND", "n", "23"}), 3);
  EXPECT_EQ(Run({"INCR", "n"}), 124);
  EXPECT_EQ(Run({"SADD", "s", "a"}), 1);
  EXPECT_THAT(Run({"APPEND", "s", "x"}), IsError("WRONGTYPE"));
}

TEST_F(StringFamilyTest, GetRangeSetRange) {
  EXPECT_THAT(Run({"SET", "k", "This is a string"}), IsOk());
  EXPECT_EQ(Run({"GETRANGE", "k", "0", "3"}), "This");
  EXPECT_EQ(Run({"GETRANGE", "k", "-3", "-1"}), "ing");
  EXPECT_EQ(Run({"GETRANGE", "k", "0", "-1"}), "This is a string");
  EXPECT_EQ(Run({"GETRANGE", "k", "10", "100"}), "string");
  EXPECT_EQ(Run({"GETRANGE", "k", "5", "3"}), "");
  EXPECT_EQ(Run({"GETRANGE", "missing", "0", "-1"}), "");
  EXPECT_EQ(Run({"SUBSTR", "k", "0", "3"}), "This");

  EXPECT_THAT(Run({"SET", "w", "Hello World"}), IsOk());
  EXPECT_EQ(Run({"SETRANGE", "w", "6", "Redis"}), 11);
  EXPECT_EQ(Run({"GET", "w"}), "Hello Redis");
  // Past the end: zero padding.
  EXPECT_EQ(Run({"SETRANGE", "pad", "3", "x"}), 4);
  EXPECT_EQ(Run({"GET", "pad"}), std::string("\0\0\0x", 4));
  // An empty value on a missing key creates nothing.
  EXPECT_EQ(Run({"SETRANGE", "none", "5", ""}), 0);
  EXPECT_EQ(Run({"EXISTS", "none"}), 0);
  EXPECT_THAT(Run({"SETRANGE", "w", "-1", "x"}), IsError("ERR offset is out of range"));
  EXPECT_THAT(Run({"SETRANGE", "w", "536870912", "x"}), IsError("ERR string exceeds maximum allowed size"));
}

TEST_F(StringFamilyTest, MsetMgetAcrossShards) {
  std::string a = KeyOnShard(0, "a:"), b = KeyOnShard(1, "b:"), c = KeyOnShard(1, "c:");
  ASSERT_NE(ShardOf(a), ShardOf(b));
  // MSET over two shards runs as one exclusive operation.
  EXPECT_THAT(Run({"MSET", a, "1", b, "2", c, "3"}), IsOk());
  EXPECT_EQ(Run({"GET", a}), "1");
  EXPECT_EQ(Run({"GET", b}), "2");
  // MGET over two shards: the fan-out coordinator gathers in request order.
  EXPECT_THAT(Run({"MGET", b, "nokey", a, c}), ArrayOf({"2", kNil, "1", "3"}));
  EXPECT_THAT(Run({"MGET", a}), ArrayOf({"1"}));
  // A key of another type reads as nil in MGET.
  EXPECT_EQ(Run({"RPUSH", "list", "x"}), 1);
  EXPECT_THAT(Run({"MGET", "list", a}), ArrayOf({kNil, "1"}));
  // MSETNX: all or nothing, across shards too.
  std::string d = KeyOnShard(0, "d:");
  EXPECT_EQ(Run({"MSETNX", d, "4", b, "x"}), 0);
  EXPECT_EQ(Run({"EXISTS", d}), 0);
  EXPECT_EQ(Run({"GET", b}), "2");
  std::string e = KeyOnShard(1, "e:");
  EXPECT_EQ(Run({"MSETNX", d, "4", e, "5"}), 1);
  EXPECT_THAT(Run({"MGET", d, e}), ArrayOf({"4", "5"}));
  EXPECT_THAT(Run({"MSET", a, "1", b}), IsError("ERR wrong number of arguments for 'mset' command"));
}

TEST_F(StringFamilyTest, Lcs) {
  EXPECT_THAT(Run({"MSET", "{x}1", "ohmytext", "{x}2", "mynewtext"}), IsOk());
  EXPECT_EQ(Run({"LCS", "{x}1", "{x}2"}), "mytext");
  EXPECT_EQ(Run({"LCS", "{x}1", "{x}2", "LEN"}), 6);
  // IDX: the matches, longest last first, each as [[a-start, a-end], [b-start, b-end]].
  RespValue idx = Run({"LCS", "{x}1", "{x}2", "IDX", "MINMATCHLEN", "4", "WITHMATCHLEN"});
  ASSERT_TRUE(idx.is_aggregate()) << idx.DebugString();
  auto fields = idx.strings();
  ASSERT_EQ(idx.size(), 4u);
  EXPECT_EQ(fields[0], "matches");
  EXPECT_EQ(fields[2], "len");
  EXPECT_EQ(idx[3], 6);
  const RespValue& matches = idx[1];
  ASSERT_EQ(matches.size(), 1u) << idx.DebugString();
  EXPECT_THAT(matches[0][0], ArrayOf({4, 7}));
  EXPECT_THAT(matches[0][1], ArrayOf({5, 8}));
  EXPECT_EQ(matches[0][2], 4);
  // Missing keys are empty strings; other types are refused.
  EXPECT_EQ(Run({"LCS", "{x}1", "{x}none"}), "");
  EXPECT_EQ(Run({"RPUSH", "{x}l", "a"}), 1);
  EXPECT_THAT(Run({"LCS", "{x}1", "{x}l"}), IsError("ERR The specified keys must contain string values"));
  EXPECT_THAT(Run({"LCS", "{x}1", "{x}2", "LEN", "IDX"}),
              IsError("ERR If you want both the length and indexes"));
}

TEST_F(StringFamilyTest, LcsAcrossShards) {
  std::string a = KeyOnShard(0, "lcs-a:"), b = KeyOnShard(1, "lcs-b:");
  EXPECT_THAT(Run({"SET", a, "ABCBDAB"}), IsOk());
  EXPECT_THAT(Run({"SET", b, "BDCABA"}), IsOk());
  EXPECT_EQ(Run({"LCS", a, b, "LEN"}), 4);
  RespValue v = Run({"LCS", a, b});
  ASSERT_TRUE(v.is_string()) << v.DebugString();
  EXPECT_EQ(v.str.size(), 4u);
}

TEST_F(StringFamilyTest, DispatcherChecks) {
  EXPECT_THAT(Run({"GET"}), IsError("ERR wrong number of arguments for 'get' command"));
  EXPECT_THAT(Run({"NOSUCH", "a"}), IsError("ERR unknown command 'NOSUCH', with args beginning with: 'a' "));
  EXPECT_THAT(Run({"SET", "k"}), IsError("ERR wrong number of arguments for 'set' command"));
  // Case does not matter for the name.
  EXPECT_THAT(Run({"sEt", "k", "v"}), IsOk());
  EXPECT_EQ(Run({"get", "k"}), "v");
  // The refusals count as a connection's would: errorstats, rejected_calls.
  EXPECT_THAT(Run({"INCR", "k"}), IsError("ERR value is not an integer"));
  RespValue errors = Run({"INFO", "errorstats"});
  EXPECT_THAT(errors.str, ::testing::HasSubstr("errorstat_ERR:count=4\r\n"));
  std::string stats = Run({"INFO", "commandstats"}).str;
  auto line = [&](const std::string& name) {
    size_t at = stats.find("cmdstat_" + name + ":");
    return at == std::string::npos ? std::string() : stats.substr(at, stats.find("\r\n", at) - at);
  };
  EXPECT_THAT(line("get"), ::testing::StartsWith("cmdstat_get:calls=1,"));
  EXPECT_THAT(line("get"), ::testing::EndsWith("rejected_calls=1,failed_calls=0"));
  EXPECT_THAT(line("incr"), ::testing::StartsWith("cmdstat_incr:calls=1,"));
  EXPECT_THAT(line("incr"), ::testing::EndsWith("rejected_calls=0,failed_calls=1"));
}

TEST_F(StringFamilyTest, Resp3Null) {
  set_resp(3);
  RespValue v = Run({"GET", "missing"});
  EXPECT_THAT(v, IsNil());
  EXPECT_EQ(v.null_kind, '_');
  set_resp(2);
  EXPECT_EQ(Run({"GET", "missing"}).null_kind, '$');
}

TEST_F(StringFamilyTest, DatabasesAreSeparate) {
  EXPECT_THAT(Run({"SET", "k", "zero"}), IsOk());
  set_db(1);
  EXPECT_THAT(Run({"GET", "k"}), IsNil());
  EXPECT_THAT(Run({"SET", "k", "one"}), IsOk());
  set_db(0);
  EXPECT_EQ(Run({"GET", "k"}), "zero");
}

}  // namespace
}  // namespace larder
