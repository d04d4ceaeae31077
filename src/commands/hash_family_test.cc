// Hash commands through the executor, in process (commands/command_test_base.h).
#include <map>

#include "common/clock.h"
#include "commands/command_test_base.h"

namespace larder {
namespace {

using ::testing::AnyOf;
using ::testing::Each;
using ::testing::UnorderedElementsAre;

class HashFamilyTest : public FamilyTest {};

TEST_F(HashFamilyTest, SetGetDel) {
  EXPECT_EQ(Run({"HSET", "h", "a", "1", "b", "2"}), 2);
  EXPECT_EQ(Run({"HSET", "h", "a", "10", "c", "3"}), 1);  // only new fields count
  EXPECT_EQ(Run({"HGET", "h", "a"}), "10");
  EXPECT_THAT(Run({"HGET", "h", "nosuch"}), IsNil());
  EXPECT_THAT(Run({"HGET", "nokey", "a"}), IsNil());
  EXPECT_THAT(Run({"HMGET", "h", "a", "nosuch", "c"}), ArrayOf({"10", kNil, "3"}));
  EXPECT_EQ(Run({"HLEN", "h"}), 3);
  EXPECT_EQ(Run({"HSTRLEN", "h", "a"}), 2);
  EXPECT_EQ(Run({"HEXISTS", "h", "b"}), 1);
  EXPECT_EQ(Run({"HSETNX", "h", "b", "x"}), 0);
  EXPECT_EQ(Run({"HSETNX", "h", "d", "4"}), 1);
  EXPECT_EQ(Run({"HGETALL", "h"}).pairs(),
            (std::map<std::string, std::string>{{"a", "10"}, {"b", "2"}, {"c", "3"}, {"d", "4"}}));
  EXPECT_THAT(Run({"HKEYS", "h"}).strings(), UnorderedElementsAre("a", "b", "c", "d"));
  EXPECT_THAT(Run({"HVALS", "h"}).strings(), UnorderedElementsAre("10", "2", "3", "4"));
  EXPECT_EQ(Run({"HDEL", "h", "a", "nosuch", "b"}), 2);
  EXPECT_EQ(Run({"HLEN", "h"}), 2);
  // The last field deleted deletes the key.
  EXPECT_EQ(Run({"HDEL", "h", "c", "d"}), 2);
  EXPECT_EQ(Run({"EXISTS", "h"}), 0);
  EXPECT_EQ(Run({"HDEL", "h", "c"}), 0);
  EXPECT_THAT(Run({"HSET", "h", "a"}), IsError("ERR wrong number of arguments for 'hset' command"));
  EXPECT_THAT(Run({"SET", "s", "v"}), IsOk());
  EXPECT_THAT(Run({"HSET", "s", "a", "1"}), IsError("WRONGTYPE Operation against a key holding the wrong kind of value"));
  EXPECT_THAT(Run({"HGET", "s", "a"}), IsError("WRONGTYPE"));
}

TEST_F(HashFamilyTest, Resp3MapReply) {
  EXPECT_EQ(Run({"HSET", "h", "a", "1"}), 1);
  set_resp(3);
  RespValue m = Run({"HGETALL", "h"});
  EXPECT_EQ(m.type, RespValue::Type::kMap);
  EXPECT_EQ(m.pairs(), (std::map<std::string, std::string>{{"a", "1"}}));
}

TEST_F(HashFamilyTest, IncrBy) {
  EXPECT_EQ(Run({"HINCRBY", "h", "n", "5"}), 5);
  EXPECT_EQ(Run({"HINCRBY", "h", "n", "-7"}), -2);
  EXPECT_EQ(Run({"HGET", "h", "n"}), "-2");
  EXPECT_THAT(Run({"HINCRBY", "h", "n", "x"}), IsError("ERR value is not an integer or out of range"));
  EXPECT_EQ(Run({"HSET", "h", "s", "abc", "big", "9223372036854775807"}), 2);
  EXPECT_THAT(Run({"HINCRBY", "h", "s", "1"}), IsError("ERR hash value is not an integer"));
  EXPECT_THAT(Run({"HINCRBY", "h", "big", "1"}), IsError("ERR increment or decrement would overflow"));
  EXPECT_EQ(Run({"HGET", "h", "big"}), "9223372036854775807");
  // A refused increment creates no key.
  EXPECT_THAT(Run({"HINCRBY", "fresh", "f", "9223372036854775808"}), IsError("ERR value is not an integer"));
  EXPECT_EQ(Run({"EXISTS", "fresh"}), 0);
}

TEST_F(HashFamilyTest, IncrByFloat) {
  EXPECT_EQ(Run({"HINCRBYFLOAT", "h", "f", "10.5"}), "10.5");
  EXPECT_EQ(Run({"HINCRBYFLOAT", "h", "f", "0.1"}), "10.6");
  EXPECT_EQ(Run({"HSET", "h", "e", "5.0e3"}), 1);
  EXPECT_EQ(Run({"HINCRBYFLOAT", "h", "e", "2.0e2"}), "5200");
  EXPECT_EQ(Run({"HSET", "h", "i", "3"}), 1);
  EXPECT_EQ(Run({"HINCRBYFLOAT", "h", "i", "1.5"}), "4.5");
  EXPECT_THAT(Run({"HINCRBYFLOAT", "h", "i", "x"}), IsError("ERR value is not a valid float"));
  EXPECT_THAT(Run({"HINCRBYFLOAT", "h", "i", "inf"}), IsError("ERR value is NaN or Infinity"));
  EXPECT_EQ(Run({"HSET", "h", "s", "abc"}), 1);
  EXPECT_THAT(Run({"HINCRBYFLOAT", "h", "s", "1"}), IsError("ERR hash value is not a float"));
}

TEST_F(HashFamilyTest, RandField) {
  EXPECT_THAT(Run({"HRANDFIELD", "nokey"}), IsNil());
  EXPECT_THAT(Run({"HRANDFIELD", "nokey", "3"}), ArrayOf({}));
  EXPECT_EQ(Run({"HSET", "h", "a", "1", "b", "2", "c", "3"}), 3);
  RespValue one = Run({"HRANDFIELD", "h"});
  EXPECT_THAT(one.str, AnyOf("a", "b", "c"));
  // A positive count: distinct fields, at most the hash's size.
  RespValue two = Run({"HRANDFIELD", "h", "2"});
  ASSERT_EQ(two.size(), 2u) << two.DebugString();
  EXPECT_NE(two[0].str, two[1].str);
  EXPECT_THAT(Run({"HRANDFIELD", "h", "10"}).strings(), UnorderedElementsAre("a", "b", "c"));
  // A negative count: exactly that many, repeats allowed.
  RespValue many = Run({"HRANDFIELD", "h", "-20"});
  ASSERT_EQ(many.size(), 20u);
  EXPECT_THAT(many.strings(), Each(AnyOf("a", "b", "c")));
  // WITHVALUES: field, value pairs (RESP2 flat, RESP3 nested).
  RespValue wv = Run({"HRANDFIELD", "h", "3", "WITHVALUES"});
  EXPECT_EQ(wv.pairs(), (std::map<std::string, std::string>{{"a", "1"}, {"b", "2"}, {"c", "3"}}));
  set_resp(3);
  RespValue nested = Run({"HRANDFIELD", "h", "-2", "WITHVALUES"});
  ASSERT_EQ(nested.size(), 2u);
  ASSERT_EQ(nested[0].size(), 2u) << nested.DebugString();
  std::map<std::string, std::string> values{{"a", "1"}, {"b", "2"}, {"c", "3"}};
  for (const auto& pair : nested.elems) EXPECT_EQ(pair[1].str, values[pair[0].str]) << nested.DebugString();
  set_resp(2);
  EXPECT_THAT(Run({"HRANDFIELD", "h", "0"}), ArrayOf({}));
  EXPECT_THAT(Run({"HRANDFIELD", "h", "x"}), IsError("ERR value is not an integer or out of range"));
  EXPECT_THAT(Run({"HRANDFIELD", "h", "1", "WITHVALUES", "extra"}), IsError("ERR syntax error"));
}

TEST_F(HashFamilyTest, Scan) {
  std::map<std::string, std::string> want;
  std::vector<std::string> cmd = {"HSET", "h"};
  for (int i = 0; i < 200; ++i) {  // past hash-max-listpack-entries: a hashtable
    cmd.push_back("f" + std::to_string(i));
    cmd.push_back("v" + std::to_string(i));
    want["f" + std::to_string(i)] = "v" + std::to_string(i);
  }
  EXPECT_EQ(Run(cmd), 200);
  EXPECT_EQ(Run({"OBJECT", "ENCODING", "h"}), "hashtable");
  std::map<std::string, std::string> got;
  std::string cursor = "0";
  int calls = 0;
  do {
    RespValue r = Run({"HSCAN", "h", cursor, "COUNT", "10"});
    ASSERT_EQ(r.size(), 2u) << r.DebugString();
    cursor = r[0].str;
    for (auto& [f, v] : r[1].pairs()) got[f] = v;
    ASSERT_LT(++calls, 1000);
  } while (cursor != "0");
  EXPECT_EQ(got, want);
  std::map<std::string, std::string> matched;  // MATCH filters each step's fields
  cursor = "0";
  do {
    RespValue m = Run({"HSCAN", "h", cursor, "MATCH", "f19*"});
    cursor = m[0].str;
    for (auto& [f, v] : m[1].pairs()) matched[f] = v;
  } while (cursor != "0");
  EXPECT_EQ(matched, (std::map<std::string, std::string>{{"f19", "v19"}, {"f190", "v190"}, {"f191", "v191"},
                                                               {"f192", "v192"}, {"f193", "v193"}, {"f194", "v194"},
                                                               {"f195", "v195"}, {"f196", "v196"}, {"f197", "v197"},
                                                               {"f198", "v198"}, {"f199", "v199"}}));
  RespValue none = Run({"HSCAN", "nokey", "0"});
  ASSERT_EQ(none.size(), 2u) << none.DebugString();
  EXPECT_EQ(none[0], "0");
  EXPECT_THAT(none[1], ArrayOf({}));
  EXPECT_THAT(Run({"HSCAN", "h", "x"}), IsError("ERR invalid cursor"));
}

TEST_F(HashFamilyTest, FieldTtls) {
  EXPECT_EQ(Run({"HSET", "h", "a", "1", "b", "2", "c", "3"}), 3);
  EXPECT_THAT(Run({"HEXPIRE", "h", "100", "FIELDS", "2", "a", "nosuch"}), ArrayOf({1, -2}));
  RespValue ttl = Run({"HTTL", "h", "FIELDS", "3", "a", "b", "nosuch"});
  ASSERT_EQ(ttl.size(), 3u) << ttl.DebugString();
  EXPECT_THAT(ttl[0], IntBetween(99, 100));
  EXPECT_EQ(ttl[1], -1);
  EXPECT_EQ(ttl[2], -2);
  EXPECT_THAT(Run({"HPTTL", "h", "FIELDS", "1", "a"})[0], IntBetween(99000, 100000));
  EXPECT_EQ(Run({"OBJECT", "ENCODING", "h"}), "listpackex");
  // Conditions as EXPIRE's.
  EXPECT_THAT(Run({"HEXPIRE", "h", "50", "NX", "FIELDS", "2", "a", "b"}), ArrayOf({0, 1}));
  EXPECT_THAT(Run({"HEXPIRE", "h", "500", "GT", "FIELDS", "1", "a"}), ArrayOf({1}));
  EXPECT_THAT(Run({"HEXPIRE", "h", "600", "LT", "FIELDS", "1", "a"}), ArrayOf({0}));
  EXPECT_THAT(Run({"HEXPIRE", "h", "10", "XX", "FIELDS", "1", "c"}), ArrayOf({0}));
  int64_t at = UnixTimeMs() / 1000 + 1000;
  EXPECT_THAT(Run({"HEXPIREAT", "h", std::to_string(at), "FIELDS", "1", "c"}), ArrayOf({1}));
  EXPECT_THAT(Run({"HEXPIRETIME", "h", "FIELDS", "1", "c"}), ArrayOf({at}));
  EXPECT_THAT(Run({"HPEXPIRETIME", "h", "FIELDS", "1", "c"}), ArrayOf({at * 1000}));
  EXPECT_THAT(Run({"HPERSIST", "h", "FIELDS", "3", "a", "b", "nosuch"}), ArrayOf({1, 1, -2}));
  EXPECT_THAT(Run({"HTTL", "h", "FIELDS", "2", "a", "b"}), ArrayOf({-1, -1}));
  // HINCRBY keeps a field's TTL, HSET drops it.
  EXPECT_THAT(Run({"HEXPIRE", "h", "100", "FIELDS", "1", "c"}), ArrayOf({1}));
  EXPECT_EQ(Run({"HINCRBY", "h", "c", "1"}), 4);
  EXPECT_THAT(Run({"HTTL", "h", "FIELDS", "1", "c"})[0], IntBetween(99, 100));
  EXPECT_EQ(Run({"HSET", "h", "c", "9"}), 0);
  EXPECT_THAT(Run({"HTTL", "h", "FIELDS", "1", "c"}), ArrayOf({-1}));
  // A time in the past deletes the field (2), the last field the key.
  EXPECT_THAT(Run({"HEXPIRE", "h", "0", "FIELDS", "1", "a"}), ArrayOf({2}));
  EXPECT_THAT(Run({"HEXPIREAT", "h", "1", "FIELDS", "2", "b", "c"}), ArrayOf({2, 2}));
  EXPECT_EQ(Run({"EXISTS", "h"}), 0);
  EXPECT_THAT(Run({"HTTL", "h", "FIELDS", "1", "a"}), ArrayOf({-2}));
  // A field goes once its time passes.
  EXPECT_EQ(Run({"HSET", "lazy", "keep", "1", "go", "2"}), 2);
  EXPECT_THAT(Run({"HPEXPIRE", "lazy", "30", "FIELDS", "1", "go"}), ArrayOf({1}));
  EXPECT_TRUE(WaitUntil([&] { return Run({"HGET", "lazy", "go"}).is_null(); }));
  EXPECT_THAT(Run({"HGETALL", "lazy"}), ArrayOf({"keep", "1"}));
  EXPECT_EQ(Run({"HLEN", "lazy"}), 1);
  // Argument errors.
  EXPECT_THAT(Run({"HEXPIRE", "lazy", "-1", "FIELDS", "1", "keep"}), IsError("ERR invalid expire time, must be >= 0"));
  EXPECT_THAT(Run({"HEXPIRE", "lazy", "10", "FIELDS", "2", "keep"}),
              IsError("ERR The `numfields` parameter must match the number of arguments"));
  EXPECT_THAT(Run({"HEXPIRE", "lazy", "10", "BAD", "FIELDS", "1", "keep"}),
              IsError("ERR Mandatory argument FIELDS is missing or not at the right position"));
  EXPECT_THAT(Run({"SET", "s", "v"}), IsOk());
  EXPECT_THAT(Run({"HTTL", "s", "FIELDS", "1", "f"}), IsError("WRONGTYPE"));
}

}  // namespace
}  // namespace larder
