// List commands through the executor, in process (commands/command_test_base.h):
// mostly the blocking route (StartBlocking), which has a reply that comes later.
#include <chrono>

#include "commands/command_test_base.h"

namespace larder {
namespace {

class ListFamilyTest : public FamilyTest {};

TEST_F(ListFamilyTest, PushPopRange) {
  EXPECT_EQ(Run({"RPUSH", "l", "a", "b", "c"}), 3);
  EXPECT_EQ(Run({"LPUSH", "l", "z"}), 4);
  EXPECT_THAT(Run({"LRANGE", "l", "0", "-1"}), ArrayOf({"z", "a", "b", "c"}));
  EXPECT_EQ(Run({"LPOP", "l"}), "z");
  EXPECT_THAT(Run({"RPOP", "l", "2"}), ArrayOf({"c", "b"}));
  EXPECT_EQ(Run({"LLEN", "l"}), 1);
}

TEST_F(ListFamilyTest, BlockingPopWithDataAnswersAtOnce) {
  EXPECT_EQ(Run({"RPUSH", "l", "a"}), 1);
  EXPECT_THAT(Run({"BLPOP", "nothing", "l", "1"}), ArrayOf({"l", "a"}));
  EXPECT_EQ(Run({"EXISTS", "l"}), 0);
}

TEST_F(ListFamilyTest, BlockingPopTimesOut) {
  auto t0 = std::chrono::steady_clock::now();
  RespValue r = Run({"BLPOP", "empty", "0.1"});
  EXPECT_THAT(r, IsNil());
  EXPECT_EQ(r.null_kind, '*');  // RESP2: a null array
  EXPECT_GE(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(90));
  EXPECT_TRUE(last_reply_deferred());
}

TEST_F(ListFamilyTest, BlockedPopIsServedByAPush) {
  std::string a = KeyOnShard(0, "q:"), b = KeyOnShard(1, "q:");
  // Waits on keys of both shards; a push to either serves it.
  uint32_t pop = Send({"BRPOP", a, b, "5"});
  // The push comes after the pop is registered (commands start in order).
  EXPECT_EQ(Run({"LPUSH", b, "x"}), 1);
  EXPECT_THAT(Wait(pop), ArrayOf({b, "x"}));
  EXPECT_EQ(Run({"EXISTS", b}), 0);
  // BLMOVE: the element moves once it arrives.
  uint32_t move = Send({"BLMOVE", a, "{dst}", "LEFT", "RIGHT", "5"});
  EXPECT_EQ(Run({"RPUSH", a, "y"}), 1);
  EXPECT_EQ(Wait(move), "y");
  EXPECT_THAT(Run({"LRANGE", "{dst}", "0", "-1"}), ArrayOf({"y"}));
}

TEST_F(ListFamilyTest, BlockedMoveToAWrongTypeKeyOnAnotherShardLeavesTheElement) {
  // As Redis: the first waiter's destination holds a string, so it gets
  // WRONGTYPE and the element goes to the next waiter. The destination is on
  // the other shard, so the serve runs with both shards parked.
  std::string src = KeyOnShard(0, "bl:"), bad = KeyOnShard(1, "t1:"), good = KeyOnShard(1, "t2:");
  EXPECT_EQ(Run({"SET", bad, "nolist"}), "OK");
  uint32_t first = Send({"BRPOPLPUSH", src, bad, "5"});
  uint32_t second = Send({"BRPOPLPUSH", src, good, "5"});
  EXPECT_EQ(Run({"LPUSH", src, "foo"}), 1);
  RespValue err = Wait(first);
  EXPECT_EQ(err.type, RespValue::Type::kError);
  EXPECT_THAT(err.str, ::testing::StartsWith("WRONGTYPE"));
  EXPECT_EQ(Wait(second), "foo");
  // The move is one step: the element is in the destination by the reply.
  EXPECT_THAT(Run({"LRANGE", good, "0", "-1"}), ArrayOf({"foo"}));
  EXPECT_EQ(Run({"EXISTS", src}), 0);
  EXPECT_EQ(Run({"GET", bad}), "nolist");
}

}  // namespace
}  // namespace larder
