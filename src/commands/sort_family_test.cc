// SORT and SORT_RO through the executor, in process (commands/command_test_base.h),
// at two shards: patterns whose keys live on the other shard (the exclusive
// run over every shard), STORE across shards, and the key list Effects and
// COMMAND GETKEYS read.
#include "commands/command_test_base.h"

namespace larder {
namespace {

class SortFamilyTest : public FamilyTest {};

TEST_F(SortFamilyTest, NumericAlphaDescLimit) {
  EXPECT_EQ(Run({"RPUSH", "l", "3", "10", "1", "2.5"}), 4);
  EXPECT_THAT(Run({"SORT", "l"}), ArrayOf({"1", "2.5", "3", "10"}));
  EXPECT_THAT(Run({"SORT", "l", "DESC"}), ArrayOf({"10", "3", "2.5", "1"}));
  EXPECT_THAT(Run({"SORT", "l", "ALPHA"}), ArrayOf({"1", "10", "2.5", "3"}));
  EXPECT_THAT(Run({"SORT", "l", "LIMIT", "1", "2"}), ArrayOf({"2.5", "3"}));
  EXPECT_THAT(Run({"SORT", "l", "LIMIT", "-5", "1"}), ArrayOf({"1"}));
  EXPECT_THAT(Run({"SORT", "l", "LIMIT", "9", "1"}), ArrayOf({}));
  EXPECT_THAT(Run({"SORT_RO", "l", "LIMIT", "2", "-1"}), ArrayOf({"3", "10"}));
  EXPECT_THAT(Run({"SORT", "missing"}), ArrayOf({}));
}

TEST_F(SortFamilyTest, Errors) {
  EXPECT_EQ(Run({"SET", "s", "x"}), "OK");
  EXPECT_THAT(Run({"SORT", "s"}), IsError("WRONGTYPE"));
  EXPECT_EQ(Run({"RPUSH", "l", "1", "x"}), 2);
  EXPECT_THAT(Run({"SORT", "l"}), IsError("ERR One or more scores can't be converted into double"));
  EXPECT_THAT(Run({"SORT", "l", "LIMIT", "a", "1"}), IsError("ERR value is not an integer or out of range"));
  EXPECT_THAT(Run({"SORT", "l", "LIMIT", "1"}), IsError("ERR syntax error"));
  EXPECT_THAT(Run({"SORT_RO", "l", "STORE", "d"}), IsError("ERR syntax error"));
  // Options are read before the key: a syntax error wins over WRONGTYPE.
  EXPECT_THAT(Run({"SORT", "s", "BOGUS"}), IsError("ERR syntax error"));
}

TEST_F(SortFamilyTest, PatternsOnTheOtherShard) {
  // Elements whose weight and hash keys are spread over both shards.
  EXPECT_EQ(Run({"RPUSH", "l", "a", "b", "c", "d"}), 4);
  const char* weights[] = {"4", "2", "3", "1"};
  const char* names[] = {"a", "b", "c", "d"};
  for (int i = 0; i < 4; ++i) {
    EXPECT_THAT(Run({"SET", std::string("w_") + names[i], weights[i]}), IsOk());
    EXPECT_EQ(Run({"HSET", std::string("h_") + names[i], "f", weights[i]}), 1);
  }
  EXPECT_NE(engine().shards().ShardOf("w_a"), engine().shards().ShardOf("w_b"));
  EXPECT_THAT(Run({"SORT", "l", "BY", "w_*"}), ArrayOf({"d", "b", "c", "a"}));
  EXPECT_THAT(Run({"SORT", "l", "BY", "h_*->f", "DESC"}), ArrayOf({"a", "c", "b", "d"}));
  EXPECT_THAT(Run({"SORT", "l", "BY", "w_*", "GET", "#", "GET", "h_*->f", "LIMIT", "0", "2"}),
              ArrayOf({"d", "1", "b", "2"}));
  EXPECT_THAT(Run({"SORT", "l", "BY", "nosort", "GET", "nokey_*"}), ArrayOf({kNil, kNil, kNil, kNil}));
  EXPECT_THAT(Run({"SORT", "l", "BY", "nosort", "GET", "const"}), ArrayOf({kNil, kNil, kNil, kNil}));
  // STORE with GET: missing values are stored as empty strings.
  std::string far = KeyOnShard(1, "dst:");
  EXPECT_EQ(Run({"SORT", "l", "BY", "w_*", "GET", "w_*", "GET", "x_*", "STORE", far}), 8);
  EXPECT_THAT(Run({"LRANGE", far, "0", "-1"}), ArrayOf({"1", "", "2", "", "3", "", "4", ""}));
}

TEST_F(SortFamilyTest, StoreAcrossShardsWritesAList) {
  std::string src = KeyOnShard(0, "src:"), dst = KeyOnShard(1, "dst:");
  EXPECT_EQ(Run({"SADD", src, "b", "a", "c"}), 3);
  EXPECT_THAT(Run({"SET", dst, "old", "EX", "100"}), IsOk());
  EXPECT_EQ(Run({"SORT", src, "ALPHA", "STORE", dst}), 3);
  EXPECT_THAT(Run({"LRANGE", dst, "0", "-1"}), ArrayOf({"a", "b", "c"}));
  EXPECT_EQ(Run({"TTL", dst}), -1);
  // A set sorted by nothing is sorted ALPHA when stored.
  EXPECT_EQ(Run({"SORT", src, "BY", "nosort", "DESC", "STORE", dst}), 3);
  EXPECT_THAT(Run({"LRANGE", dst, "0", "-1"}), ArrayOf({"c", "b", "a"}));
  // An empty result deletes the destination.
  EXPECT_EQ(Run({"SORT", src, "ALPHA", "LIMIT", "5", "1", "STORE", dst}), 0);
  EXPECT_EQ(Run({"EXISTS", dst}), 0);
}

TEST_F(SortFamilyTest, StoreServesABlockedPop) {
  std::string src = KeyOnShard(0, "src:"), dst = KeyOnShard(1, "dst:");
  EXPECT_EQ(Run({"RPUSH", src, "2", "1"}), 2);
  uint32_t pop = Send({"BLPOP", dst, "5"});
  EXPECT_EQ(Run({"SORT", src, "STORE", dst}), 2);
  EXPECT_THAT(Wait(pop), ArrayOf({dst, "1"}));
}

TEST_F(SortFamilyTest, NosortKeepsTheOrderOfListsAndSortedSets) {
  EXPECT_EQ(Run({"LPUSH", "testa", "2", "1", "4", "3", "5"}), 5);
  EXPECT_THAT(Run({"SORT", "testa", "BY", "nosort"}), ArrayOf({"5", "3", "4", "1", "2"}));
  EXPECT_THAT(Run({"SORT", "testa", "BY", "nosort", "DESC", "LIMIT", "1", "2"}), ArrayOf({"1", "4"}));
  EXPECT_EQ(Run({"ZADD", "z", "1", "a", "5", "b", "2", "c", "10", "d", "3", "e"}), 5);
  EXPECT_THAT(Run({"SORT", "z", "BY", "nosort"}), ArrayOf({"a", "c", "e", "b", "d"}));
  EXPECT_THAT(Run({"SORT", "z", "BY", "nosort", "DESC", "LIMIT", "0", "2"}), ArrayOf({"d", "b"}));
  EXPECT_THAT(Run({"SORT", "z", "BY", "nosort", "LIMIT", "-10", "100"}), ArrayOf({"a", "c", "e", "b", "d"}));
  EXPECT_THAT(Run({"SORT", "z", "ALPHA", "DESC"}), ArrayOf({"e", "d", "c", "b", "a"}));
}

TEST_F(SortFamilyTest, Keys) {
  EXPECT_THAT(Run({"COMMAND", "GETKEYS", "SORT", "abc", "STORE", "def"}), ArrayOf({"abc", "def"}));
  EXPECT_THAT(Run({"COMMAND", "GETKEYS", "SORT", "abc", "STORE", "invalid", "STORE", "stillbad", "STORE", "def"}),
              ArrayOf({"abc", "def"}));
  EXPECT_THAT(Run({"COMMAND", "GETKEYS", "SORT_RO", "abc"}), ArrayOf({"abc"}));
  // The executor's key list: the destination is the key written.
  const CommandSpec* sort = Commands().Find("sort");
  std::vector<std::string_view> argv = {"SORT", "src", "GET", "#", "STORE", "dst"};
  KeyPositions keys = sort->KeyIndexes(argv);
  ASSERT_EQ(keys.size(), 2u);
  EXPECT_EQ(keys[0], 1u);
  EXPECT_EQ(keys[1], 5u);
  EXPECT_FALSE(sort->WritesKey(0));
  EXPECT_TRUE(sort->WritesKey(1));
  EXPECT_FALSE(sort->needs_all_shards(argv));
  std::vector<std::string_view> by = {"SORT", "src", "BY", "w_*"};
  EXPECT_TRUE(sort->needs_all_shards(by));
  std::vector<std::string_view> tagged = {"SORT", "{t}src", "BY", "{t}w_*", "GET", "{t}h_*->f"};
  EXPECT_FALSE(sort->needs_all_shards(tagged));
}

}  // namespace
}  // namespace larder
