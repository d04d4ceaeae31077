// Stream commands through the executor, in process (commands/command_test_base.h).
#include <chrono>
#include <string>
#include <thread>

#include "commands/command_test_base.h"

namespace larder {
namespace {

class StreamFamilyTest : public FamilyTest {
 protected:
  // The fixture starts commands in order but does not wait for a blocking
  // one to register: poll INFO until `n` clients are blocked.
  void WaitBlocked(int n) {
    std::string want = "blocked_clients:" + std::to_string(n);
    for (int i = 0; i < 400; ++i) {
      if (Run({"INFO", "clients"}).str.find(want) != std::string::npos) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    ADD_FAILURE() << "never saw " << want;
  }
};

TEST_F(StreamFamilyTest, AddRangeLenDel) {
  EXPECT_EQ(Run({"XADD", "s", "1-1", "a", "1"}), "1-1");
  EXPECT_EQ(Run({"XADD", "s", "1-*", "b", "2"}), "1-2");
  EXPECT_EQ(Run({"XADD", "s", "2", "c", "3"}), "2-0");
  EXPECT_EQ(Run({"XLEN", "s"}), 3);
  EXPECT_EQ(Run({"TYPE", "s"}), "stream");
  EXPECT_EQ(Run({"OBJECT", "ENCODING", "s"}), "stream");
  RespValue r = Run({"XRANGE", "s", "(1-1", "+"});
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[0][0], "1-2");
  EXPECT_THAT(r[0][1], ArrayOf({"b", "2"}));
  EXPECT_EQ(Run({"XREVRANGE", "s", "+", "-", "COUNT", "1"})[0][0], "2-0");
  EXPECT_EQ(Run({"XDEL", "s", "1-2", "9-9"}), 1);
  EXPECT_EQ(Run({"XLEN", "s"}), 2);
  EXPECT_THAT(Run({"XADD", "s", "1-5", "x", "y"}),
              IsError("ERR The ID specified in XADD is equal or smaller than the target stream top item"));
  EXPECT_THAT(Run({"XADD", "n", "NOMKSTREAM", "*", "a", "b"}), IsNil());
  EXPECT_EQ(Run({"EXISTS", "n"}), 0);
}

TEST_F(StreamFamilyTest, GroupReadAckPendingClaim) {
  EXPECT_EQ(Run({"XADD", "s", "1-0", "f", "v"}), "1-0");
  EXPECT_EQ(Run({"XADD", "s", "2-0", "f", "w"}), "2-0");
  EXPECT_THAT(Run({"XGROUP", "CREATE", "s", "g", "0"}), IsOk());
  EXPECT_THAT(Run({"XGROUP", "CREATE", "s", "g", "0"}), IsError("BUSYGROUP Consumer Group name already exists"));
  RespValue r = Run({"XREADGROUP", "GROUP", "g", "alice", "COUNT", "1", "STREAMS", "s", ">"});
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0][0], "s");
  EXPECT_EQ(r[0][1][0][0], "1-0");
  RespValue p = Run({"XPENDING", "s", "g"});
  EXPECT_EQ(p[0], 1);
  EXPECT_EQ(p[1], "1-0");
  EXPECT_EQ(Run({"XCLAIM", "s", "g", "bob", "0", "1-0", "JUSTID"})[0], "1-0");
  RespValue ac = Run({"XAUTOCLAIM", "s", "g", "carol", "0", "0", "JUSTID"});
  EXPECT_EQ(ac[0], "0-0");
  EXPECT_THAT(ac[1], ArrayOf({"1-0"}));
  EXPECT_EQ(Run({"XACK", "s", "g", "1-0", "1-0"}), 1);
  EXPECT_EQ(Run({"XPENDING", "s", "g"})[0], 0);
  EXPECT_THAT(Run({"XREADGROUP", "GROUP", "nog", "a", "STREAMS", "s", ">"}),
              IsError("NOGROUP No such key 's' or consumer group 'nog' in XREADGROUP with GROUP option"));
}

TEST_F(StreamFamilyTest, TrimSetIdAndGroupLag) {
  for (int i = 1; i <= 5; ++i) Run({"XADD", "s", std::to_string(i) + "-0", "f", "v"});
  EXPECT_EQ(Run({"XTRIM", "s", "MAXLEN", "3"}), 2);
  EXPECT_THAT(Run({"XTRIM", "s", "MAXLEN", "1", "LIMIT", "5"}),
              IsError("ERR syntax error, LIMIT cannot be used without the special ~ option"));
  EXPECT_THAT(Run({"XSETID", "s", "1-0"}),
              IsError("ERR The ID specified in XSETID is smaller than the target stream top item"));
  EXPECT_THAT(Run({"XGROUP", "CREATE", "s", "g", "0"}), IsOk());
  RespValue groups = Run({"XINFO", "GROUPS", "s"});
  ASSERT_EQ(groups.size(), 1u);
  auto g = groups[0].pairs();
  EXPECT_EQ(g["lag"], "3");  // five added, none read: the counter is estimated
  Run({"XREADGROUP", "GROUP", "g", "c", "COUNT", "1", "STREAMS", "s", ">"});
  g = Run({"XINFO", "GROUPS", "s"})[0].pairs();
  EXPECT_EQ(g["entries-read"], "3");
  EXPECT_EQ(g["lag"], "2");
  EXPECT_THAT(Run({"XPENDING", "nokey", "g"}), IsError("NOGROUP No such key 'nokey' or consumer group 'g'"));
  EXPECT_EQ(Run({"XCLAIM", "s", "g", "d", "0", "5-0", "FORCE", "JUSTID"})[0], "5-0");
  EXPECT_EQ(Run({"XPENDING", "s", "g"})[0], 2);
}

TEST_F(StreamFamilyTest, BlockedReadIsServedByAnAddOnAnotherShard) {
  std::string a = KeyOnShard(0, "s:"), b = KeyOnShard(1, "s:");
  EXPECT_EQ(Run({"XADD", b, "1-0", "f", "old"}), "1-0");
  // (The fixture does not order a multi-shard command before a later
  // one-shard command, so "$" is left to tests/integration/test_streams.py.)
  uint32_t read = Send({"XREAD", "BLOCK", "5000", "STREAMS", a, b, "0-0", "1-0"});
  EXPECT_EQ(Run({"XADD", b, "2-0", "f", "new"}), "2-0");
  RespValue r = Wait(read);
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0][0], b);
  EXPECT_EQ(r[0][1][0][0], "2-0");
}

TEST_F(StreamFamilyTest, BlockedGroupReadLearnsItsGroupIsGone) {
  EXPECT_THAT(Run({"XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"}), IsOk());
  uint32_t read = Send({"XREADGROUP", "GROUP", "g", "c", "BLOCK", "5000", "STREAMS", "s", ">"});
  WaitBlocked(1);
  EXPECT_EQ(Run({"XGROUP", "DESTROY", "s", "g"}), 1);
  EXPECT_THAT(Wait(read), IsError("NOGROUP the consumer group this client was blocked on no longer exists"));
}

}  // namespace
}  // namespace larder
