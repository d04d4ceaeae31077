// Keyspace commands through the executor, in process (commands/command_test_base.h).
#include <set>
#include <thread>

#include "common/clock.h"
#include "commands/command_test_base.h"

namespace larder {
namespace {

using ::testing::UnorderedElementsAre;

class KeysFamilyTest : public FamilyTest {};

TEST_F(KeysFamilyTest, DelExistsAcrossShards) {
  std::string a = KeyOnShard(0, "a:"), b = KeyOnShard(1, "b:"), c = KeyOnShard(1, "c:");
  ASSERT_NE(ShardOf(a), ShardOf(b));
  EXPECT_THAT(Run({"MSET", a, "1", b, "2", c, "3"}), IsOk());
  // EXISTS counts a key named twice twice (as Redis), over both shards.
  EXPECT_EQ(Run({"EXISTS", a, b, c, "nokey", a}), 4);
  EXPECT_EQ(Run({"TOUCH", a, b, "nokey"}), 2);
  EXPECT_EQ(Run({"DEL", a, b, "nokey"}), 2);
  EXPECT_EQ(Run({"EXISTS", a, b, c}), 1);
  EXPECT_EQ(Run({"UNLINK", c, a}), 1);
  EXPECT_EQ(Run({"EXISTS", a, b, c}), 0);
  EXPECT_EQ(Run({"DEL", a}), 0);
  EXPECT_EQ(Run({"DBSIZE"}), 0);
}

TEST_F(KeysFamilyTest, ExpireAndTtl) {
  EXPECT_EQ(Run({"TTL", "missing"}), -2);
  EXPECT_EQ(Run({"PTTL", "missing"}), -2);
  EXPECT_EQ(Run({"EXPIRE", "missing", "10"}), 0);
  EXPECT_THAT(Run({"SET", "k", "v"}), IsOk());
  EXPECT_EQ(Run({"TTL", "k"}), -1);
  EXPECT_EQ(Run({"EXPIRETIME", "k"}), -1);
  EXPECT_EQ(Run({"EXPIRE", "k", "100"}), 1);
  EXPECT_THAT(Run({"TTL", "k"}), IntBetween(99, 100));
  EXPECT_THAT(Run({"PTTL", "k"}), IntBetween(99000, 100000));
  EXPECT_EQ(Run({"PEXPIRE", "k", "200000"}), 1);
  EXPECT_THAT(Run({"TTL", "k"}), IntBetween(199, 200));
  int64_t at = UnixTimeMs() / 1000 + 500;
  EXPECT_EQ(Run({"EXPIREAT", "k", std::to_string(at)}), 1);
  EXPECT_EQ(Run({"EXPIRETIME", "k"}), at);
  EXPECT_EQ(Run({"PEXPIRETIME", "k"}), at * 1000);
  EXPECT_EQ(Run({"PEXPIREAT", "k", std::to_string(at * 1000 + 5)}), 1);
  EXPECT_EQ(Run({"PEXPIRETIME", "k"}), at * 1000 + 5);
  EXPECT_EQ(Run({"PERSIST", "k"}), 1);
  EXPECT_EQ(Run({"PERSIST", "k"}), 0);
  EXPECT_EQ(Run({"TTL", "k"}), -1);
  // A time in the past (or zero) deletes the key.
  EXPECT_EQ(Run({"EXPIRE", "k", "0"}), 1);
  EXPECT_EQ(Run({"EXISTS", "k"}), 0);
  EXPECT_THAT(Run({"SET", "k", "v"}), IsOk());
  EXPECT_EQ(Run({"PEXPIREAT", "k", "1"}), 1);
  EXPECT_THAT(Run({"GET", "k"}), IsNil());
  // The key goes once its time passes.
  EXPECT_THAT(Run({"SET", "k", "v"}), IsOk());
  EXPECT_EQ(Run({"PEXPIRE", "k", "30"}), 1);
  std::this_thread::sleep_for(std::chrono::milliseconds(60));
  EXPECT_EQ(Run({"EXISTS", "k"}), 0);
  EXPECT_EQ(Run({"TTL", "k"}), -2);
  EXPECT_THAT(Run({"EXPIRE", "k", "abc"}), IsError("ERR value is not an integer or out of range"));
  EXPECT_THAT(Run({"EXPIRE", "k", "9223372036854775807"}), IsError("ERR invalid expire time in 'expire' command"));
}

TEST_F(KeysFamilyTest, ExpireConditions) {
  EXPECT_THAT(Run({"SET", "k", "v"}), IsOk());
  // No TTL yet: NX sets it, XX and GT refuse (no TTL counts as infinite), LT sets.
  EXPECT_EQ(Run({"EXPIRE", "k", "100", "XX"}), 0);
  EXPECT_EQ(Run({"EXPIRE", "k", "100", "GT"}), 0);
  EXPECT_EQ(Run({"TTL", "k"}), -1);
  EXPECT_EQ(Run({"EXPIRE", "k", "100", "NX"}), 1);
  EXPECT_EQ(Run({"EXPIRE", "k", "50", "NX"}), 0);
  EXPECT_THAT(Run({"TTL", "k"}), IntBetween(99, 100));
  EXPECT_EQ(Run({"EXPIRE", "k", "200", "XX"}), 1);
  EXPECT_THAT(Run({"TTL", "k"}), IntBetween(199, 200));
  EXPECT_EQ(Run({"EXPIRE", "k", "100", "GT"}), 0);
  EXPECT_EQ(Run({"EXPIRE", "k", "300", "GT"}), 1);
  EXPECT_THAT(Run({"TTL", "k"}), IntBetween(299, 300));
  EXPECT_EQ(Run({"EXPIRE", "k", "400", "LT"}), 0);
  EXPECT_EQ(Run({"EXPIRE", "k", "150", "LT"}), 1);
  EXPECT_THAT(Run({"TTL", "k"}), IntBetween(149, 150));
  EXPECT_EQ(Run({"PEXPIRE", "k", "100000", "XX", "LT"}), 1);
  EXPECT_THAT(Run({"TTL", "k"}), IntBetween(99, 100));
  EXPECT_EQ(Run({"PERSIST", "k"}), 1);
  EXPECT_EQ(Run({"EXPIRE", "k", "10", "LT"}), 1);
  EXPECT_THAT(Run({"TTL", "k"}), IntBetween(9, 10));
  EXPECT_THAT(Run({"EXPIRE", "k", "10", "NX", "XX"}),
              IsError("ERR NX and XX, GT or LT options at the same time are not compatible"));
  EXPECT_THAT(Run({"EXPIRE", "k", "10", "GT", "LT"}),
              IsError("ERR GT and LT options at the same time are not compatible"));
  EXPECT_THAT(Run({"EXPIRE", "k", "10", "SOON"}), IsError("ERR Unsupported option SOON"));
}

TEST_F(KeysFamilyTest, Type) {
  EXPECT_THAT(Run({"SET", "s", "v"}), IsOk());
  EXPECT_EQ(Run({"RPUSH", "l", "a"}), 1);
  EXPECT_EQ(Run({"SADD", "st", "a"}), 1);
  EXPECT_EQ(Run({"ZADD", "z", "1", "a"}), 1);
  EXPECT_EQ(Run({"HSET", "h", "f", "v"}), 1);
  EXPECT_EQ(Run({"TYPE", "s"}), "string");
  EXPECT_EQ(Run({"TYPE", "l"}), "list");
  EXPECT_EQ(Run({"TYPE", "st"}), "set");
  EXPECT_EQ(Run({"TYPE", "z"}), "zset");
  EXPECT_EQ(Run({"TYPE", "h"}), "hash");
  EXPECT_EQ(Run({"TYPE", "none"}), "none");
  RespValue t = Run({"TYPE", "s"});
  EXPECT_EQ(t.type, RespValue::Type::kSimple);  // a status reply, not a bulk string
}

TEST_F(KeysFamilyTest, Rename) {
  EXPECT_THAT(Run({"RENAME", "nokey", "x"}), IsError("ERR no such key"));
  EXPECT_THAT(Run({"SET", "{t}a", "1", "EX", "100"}), IsOk());
  EXPECT_THAT(Run({"RENAME", "{t}a", "{t}b"}), IsOk());
  EXPECT_EQ(Run({"EXISTS", "{t}a"}), 0);
  EXPECT_EQ(Run({"GET", "{t}b"}), "1");
  EXPECT_THAT(Run({"TTL", "{t}b"}), IntBetween(99, 100));  // the TTL moves with it
  // Onto itself: OK, nothing changes.
  EXPECT_THAT(Run({"RENAME", "{t}b", "{t}b"}), IsOk());
  EXPECT_EQ(Run({"GET", "{t}b"}), "1");
  EXPECT_THAT(Run({"SET", "{t}c", "3"}), IsOk());
  EXPECT_EQ(Run({"RENAMENX", "{t}b", "{t}c"}), 0);
  EXPECT_EQ(Run({"GET", "{t}c"}), "3");
  EXPECT_EQ(Run({"RENAMENX", "{t}b", "{t}d"}), 1);
  EXPECT_EQ(Run({"GET", "{t}d"}), "1");
}

TEST_F(KeysFamilyTest, RenameAcrossShards) {
  std::string a = KeyOnShard(0, "ren-a:"), b = KeyOnShard(1, "ren-b:");
  EXPECT_EQ(Run({"RPUSH", a, "x", "y"}), 2);
  EXPECT_THAT(Run({"SET", b, "old"}), IsOk());
  // An exclusive operation over both shards: the value moves, the old
  // destination is replaced.
  EXPECT_THAT(Run({"RENAME", a, b}), IsOk());
  EXPECT_EQ(Run({"EXISTS", a}), 0);
  EXPECT_EQ(Run({"TYPE", b}), "list");
  EXPECT_THAT(Run({"LRANGE", b, "0", "-1"}), ArrayOf({"x", "y"}));
}

TEST_F(KeysFamilyTest, Copy) {
  std::string src = KeyOnShard(0, "src:"), dst = KeyOnShard(1, "dst:");
  EXPECT_EQ(Run({"COPY", src, dst}), 0);
  EXPECT_EQ(Run({"HSET", src, "f", "v", "g", "w"}), 2);
  EXPECT_EQ(Run({"EXPIRE", src, "100"}), 1);
  EXPECT_EQ(Run({"COPY", src, dst}), 1);
  EXPECT_THAT(Run({"HGETALL", dst}), ArrayOf({"f", "v", "g", "w"}));
  EXPECT_THAT(Run({"TTL", dst}), IntBetween(99, 100));
  // The copy is its own value.
  EXPECT_EQ(Run({"HSET", dst, "f", "changed"}), 0);
  EXPECT_EQ(Run({"HGET", src, "f"}), "v");
  // An existing destination needs REPLACE.
  EXPECT_THAT(Run({"SET", "{c}x", "1"}), IsOk());
  EXPECT_THAT(Run({"SET", "{c}y", "2"}), IsOk());
  EXPECT_EQ(Run({"COPY", "{c}x", "{c}y"}), 0);
  EXPECT_EQ(Run({"GET", "{c}y"}), "2");
  EXPECT_EQ(Run({"COPY", "{c}x", "{c}y", "REPLACE"}), 1);
  EXPECT_EQ(Run({"GET", "{c}y"}), "1");
  // Into another database.
  EXPECT_EQ(Run({"COPY", "{c}x", "{c}x", "DB", "3"}), 1);
  set_db(3);
  EXPECT_EQ(Run({"GET", "{c}x"}), "1");
  set_db(0);
  EXPECT_THAT(Run({"COPY", "{c}x", "{c}x"}), IsError("ERR source and destination objects are the same"));
  EXPECT_THAT(Run({"COPY", "{c}x", "{c}z", "DB", "99"}), IsError("ERR DB index is out of range"));
  EXPECT_THAT(Run({"COPY", "{c}x", "{c}z", "FAST"}), IsError("ERR syntax error"));
}

TEST_F(KeysFamilyTest, ScanFullIteration) {
  // Keys on both shards; a small COUNT makes the cursor go through several
  // calls and both shards.
  std::set<std::string> want;
  for (int i = 0; i < 300; ++i) {
    std::string k = "scan:" + std::to_string(i);
    EXPECT_THAT(Run({"SET", k, "v"}), IsOk());
    want.insert(k);
  }
  EXPECT_EQ(Run({"RPUSH", "scan:list", "x"}), 1);
  bool shards_seen[2] = {false, false};
  for (const auto& k : want) shards_seen[ShardOf(k)] = true;
  ASSERT_TRUE(shards_seen[0] && shards_seen[1]);

  std::set<std::string> got;
  std::string cursor = "0";
  int calls = 0;
  do {
    RespValue r = Run({"SCAN", cursor, "MATCH", "scan:*", "COUNT", "20", "TYPE", "string"});
    ASSERT_TRUE(r.is_aggregate() && r.size() == 2) << r.DebugString();
    cursor = r[0].str;
    for (const auto& k : r[1].strings()) got.insert(k);
    ASSERT_LT(++calls, 1000);
  } while (cursor != "0");
  EXPECT_GT(calls, 2);
  EXPECT_EQ(got, want);  // every string key once, the list filtered out by TYPE

  // MATCH filters; a keyspace smaller than COUNT comes back in one call.
  RespValue one = Run({"SCAN", "0", "MATCH", "scan:1?", "COUNT", "1000"});
  EXPECT_EQ(one[0], "0");
  EXPECT_THAT(one[1].strings(), UnorderedElementsAre("scan:10", "scan:11", "scan:12", "scan:13", "scan:14",
                                                      "scan:15", "scan:16", "scan:17", "scan:18", "scan:19"));
  EXPECT_THAT(Run({"SCAN", "abc"}), IsError("ERR invalid cursor"));
  EXPECT_THAT(Run({"SCAN", "0", "COUNT", "0"}), IsError("ERR syntax error"));
  EXPECT_EQ(Run({"DBSIZE"}), 301);
}

TEST_F(KeysFamilyTest, KeysAndFlush) {
  std::string a = KeyOnShard(0, "user:"), b = KeyOnShard(1, "user:");
  EXPECT_THAT(Run({"MSET", a, "1", b, "2", "other", "3"}), IsOk());
  EXPECT_THAT(Run({"KEYS", "user:*"}), UnorderedArrayOf({a, b}));
  EXPECT_EQ(Run({"DBSIZE"}), 3);
  EXPECT_THAT(Run({"FLUSHDB"}), IsOk());
  EXPECT_EQ(Run({"DBSIZE"}), 0);
  EXPECT_THAT(Run({"KEYS", "*"}), ArrayOf({}));
}

TEST_F(KeysFamilyTest, ObjectEncoding) {
  EXPECT_THAT(Run({"SET", "n", "12345"}), IsOk());
  EXPECT_THAT(Run({"SET", "s", "hello"}), IsOk());
  EXPECT_EQ(Run({"OBJECT", "ENCODING", "n"}), "int");
  EXPECT_EQ(Run({"OBJECT", "ENCODING", "s"}), "embstr");
  EXPECT_THAT(Run({"OBJECT", "ENCODING", "none"}), IsNil());
  EXPECT_THAT(Run({"OBJECT", "NOSUCH", "s"}), IsError("ERR unknown subcommand 'NOSUCH'"));
}

}  // namespace
}  // namespace larder
