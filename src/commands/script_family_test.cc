// EVAL, EVALSHA and SCRIPT through the executor, in process.
#include "commands/command_test_base.h"

namespace larder {
namespace {

class ScriptFamilyTest : public FamilyTest {};

TEST_F(ScriptFamilyTest, EvalCallsCommands) {
  EXPECT_EQ(Run({"EVAL", "return 'hello'", "0"}), "hello");
  EXPECT_THAT(Run({"SET", "mykey", "myval"}), IsOk());
  EXPECT_EQ(Run({"EVAL", "return redis.call('get',KEYS[1])", "1", "mykey"}), "myval");
  EXPECT_EQ(Run({"EVALSHA", "fd758d1589d044dd850a6f05d52f2eefd27f033f", "1", "mykey"}), "myval");
  EXPECT_EQ(Run({"EVALSHA", "FD758D1589D044DD850A6F05D52F2EEFD27F033F", "1", "mykey"}), "myval");
  EXPECT_THAT(Run({"EVALSHA", "ffd632c7d33e571e9f24556ebed26c3479a87130", "0"}),
              IsError("NOSCRIPT No matching script. Please use EVAL."));
}

TEST_F(ScriptFamilyTest, NumKeys) {
  EXPECT_THAT(Run({"EVAL", "return 1", "-12"}), IsError("ERR Number of keys can't be negative"));
  EXPECT_THAT(Run({"EVAL", "return 1", "3", "a"}),
              IsError("ERR Number of keys can't be greater than number of args"));
  EXPECT_THAT(Run({"EVAL", "return 1", "x"}), IsError("ERR value is not an integer"));
}

TEST_F(ScriptFamilyTest, ScriptLoadExistsFlush) {
  EXPECT_EQ(Run({"SCRIPT", "LOAD", "return 'loaded'"}), "b534286061d4b9e4026607613b95c06c06015ae8");
  EXPECT_EQ(Run({"EVALSHA", "b534286061d4b9e4026607613b95c06c06015ae8", "0"}), "loaded");
  EXPECT_THAT(Run({"SCRIPT", "EXISTS", "b534286061d4b9e4026607613b95c06c06015ae8", "ab"}), ArrayOf({1, 0}));
  EXPECT_THAT(Run({"SCRIPT", "FLUSH"}), IsOk());
  EXPECT_THAT(Run({"SCRIPT", "EXISTS", "b534286061d4b9e4026607613b95c06c06015ae8"}), ArrayOf({0}));
}

TEST_F(ScriptFamilyTest, ScriptChecks) {
  EXPECT_THAT(Run({"EVAL", "return redis.call('nosuchcommand')", "0"}),
              IsError("ERR Unknown Redis command called from script"));
  EXPECT_THAT(Run({"EVAL", "return redis.call('get','a','b')", "0"}),
              IsError("ERR Wrong number of args calling Redis command from script"));
  EXPECT_THAT(Run({"EVAL_RO", "return redis.call('set','k','v')", "1", "k"}),
              IsError("ERR Write commands are not allowed from read-only scripts."));
  EXPECT_THAT(Run({"EVAL", "return redis.pcall('blpop','x',0)", "0"}),
              IsError("ERR This Redis command is not allowed from script"));
}

TEST_F(ScriptFamilyTest, KeysOnTheOtherShardRunHoldingAll) {
  std::string k0 = KeyOnShard(0), k1 = KeyOnShard(1);
  EXPECT_THAT(Run({"SET", k1, "v1"}), IsOk());
  // Declared: routed to the key's shard.
  EXPECT_EQ(Run({"EVAL", "return redis.call('get', KEYS[1])", "1", k1}), "v1");
  // Undeclared, on the other shard: runs again holding every shard.
  EXPECT_EQ(Run({"EVAL", "return redis.call('get', ARGV[1])", "0", k1}), "v1");
}

}  // namespace
}  // namespace larder
