// Read-through and write-through through the executor, in process
// (commands/command_test_base.h), against an SQLite database in the test's
// temporary directory.
#include <sqlite3.h>

#include <map>
#include <thread>

#include "cache/manager.h"
#include "commands/command_test_base.h"
#include "commands/lookup.h"
#include "keyspace/list_value.h"

namespace larder {
namespace {

using ::testing::HasSubstr;

// ~0.2 s of work inside SQLite (it has no sleep function): a recursive count.
constexpr const char* kSlowLoad =
    "SELECT name FROM users WHERE id = :id AND (SELECT count(*) FROM (WITH RECURSIVE c(x) AS "
    "(SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 400000) SELECT x FROM c)) > 0";

class CacheFamilyTest : public FamilyTest {
 protected:
  void Configure(Options& options) override {
    db_path_ = temp_dir() + "/shop.db";
    Sql(
        "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, plan TEXT);"
        "CREATE TABLE counters (id INTEGER PRIMARY KEY, v INTEGER NOT NULL);"
        "INSERT INTO users VALUES (1, 'user 1', 'pro'), (2, 'user 2', 'free'), (3, 'user 3', 'pro'),"
        " (11, 'user 11', 'pro'), (12, 'user 12', NULL);");
    options.config = {
        "cache-source db sqlite:" + db_path_,
        "cache-rule user:<id> source db as hash ttl 100s negative-ttl 1s load "
        "\"SELECT name, plan FROM users WHERE id = :id\"",
        "cache-rule name:<id> source db as string ttl 100s load \"SELECT name FROM users WHERE id = :id\"",
        std::string("cache-rule slow:<id> source db as string ttl 1h load \"") + kSlowLoad + "\"",
        "cache-rule broken:<id> source db load \"SELECT missing_column FROM no_such_table WHERE id = :id\"",
        "cache-rule counter:<id> source db as string ttl 1h write through "
        "store \"INSERT INTO counters (id, v) VALUES (:id, :value) ON CONFLICT (id) DO UPDATE SET v = excluded.v\" "
        "delete \"DELETE FROM counters WHERE id = :id\" load \"SELECT v FROM counters WHERE id = :id\"",
    };
  }

  // Runs statements on the database file (outside the server).
  void Sql(const std::string& sql) {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(db_path_.c_str(), &db), SQLITE_OK);
    char* err = nullptr;
    int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
    std::string msg = err ? err : "";
    sqlite3_free(err);
    sqlite3_close(db);
    ASSERT_EQ(rc, SQLITE_OK) << msg;
  }

  // The first column of each row of a query, as text ("NULL" for null).
  std::vector<std::string> Column(const std::string& sql) {
    std::vector<std::string> out;
    sqlite3* db = nullptr;
    EXPECT_EQ(sqlite3_open(db_path_.c_str(), &db), SQLITE_OK);
    sqlite3_stmt* st = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr), SQLITE_OK) << sqlite3_errmsg(db);
    while (st && sqlite3_step(st) == SQLITE_ROW) {
      const unsigned char* t = sqlite3_column_text(st, 0);
      out.emplace_back(t ? reinterpret_cast<const char*>(t) : "NULL");
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return out;
  }

  // A rule's counters, as INFO cache prints them (CacheManager's RuleStats).
  const cache::RuleStats& Stats(std::string_view pattern) {
    for (const auto& r : *engine().cache().rules())
      if (r->rule.pattern.text() == pattern) return r->stats;
    ADD_FAILURE() << "no rule " << pattern;
    static cache::RuleStats none;
    return none;
  }

  std::string db_path_;
};

TEST_F(CacheFamilyTest, MissLoadsTheRow) {
  ASSERT_TRUE(engine().cache().active());
  RespValue h = Run({"HGETALL", "user:3"});
  EXPECT_TRUE(last_reply_deferred());  // the reply waited for the load
  EXPECT_EQ(h.pairs(), (std::map<std::string, std::string>{{"name", "user 3"}, {"plan", "pro"}}));
  EXPECT_EQ(Stats("user:<id>").loads.load(), 1u);
  EXPECT_EQ(Stats("user:<id>").misses.load(), 1u);
  // Now it is cached: a hit, answered at once, with the rule's TTL.
  EXPECT_EQ(Run({"HGET", "user:3", "plan"}), "pro");
  EXPECT_FALSE(last_reply_deferred());
  EXPECT_EQ(Stats("user:<id>").loads.load(), 1u);
  EXPECT_GE(Stats("user:<id>").hits.load(), 1u);
  EXPECT_THAT(Run({"TTL", "user:3"}), IntBetween(90, 100));
  EXPECT_EQ(Run({"TYPE", "user:3"}), "hash");
  // A NULL column is left out of the hash.
  EXPECT_EQ(Run({"HGETALL", "user:12"}).pairs(), (std::map<std::string, std::string>{{"name", "user 12"}}));
  // A string rule on the other shard's keys too.
  EXPECT_EQ(Run({"GET", "name:1"}), "user 1");
  EXPECT_EQ(Run({"GET", "name:2"}), "user 2");
  EXPECT_NE(ShardOf("name:1"), ShardOf("name:2"));
  EXPECT_EQ(Stats("name:<id>").loads.load(), 2u);
  // A key no rule matches is a plain miss, answered at once.
  EXPECT_THAT(Run({"GET", "nobody"}), IsNil());
  EXPECT_FALSE(last_reply_deferred());
}

TEST_F(CacheFamilyTest, MissingRowsAreCachedAsMisses) {
  EXPECT_THAT(Run({"HGETALL", "user:500"}), ArrayOf({}));
  EXPECT_EQ(Stats("user:<id>").loads.load(), 1u);
  // Within the negative TTL the miss is remembered: no second load.
  EXPECT_THAT(Run({"HGET", "user:500", "name"}), IsNil());
  EXPECT_EQ(Run({"EXISTS", "user:500"}), 0);
  EXPECT_GE(Stats("user:<id>").negative_hits.load(), 2u);
  EXPECT_EQ(Stats("user:<id>").loads.load(), 1u);
  // The row appears; after the negative TTL (1 s) a read loads it.
  Sql("INSERT INTO users VALUES (500, 'late', 'pro');");
  EXPECT_TRUE(WaitUntil([&] { return Run({"HGET", "user:500", "name"}) == "late"; }, std::chrono::seconds(10)));
  EXPECT_EQ(Stats("user:<id>").loads.load(), 2u);
}

TEST_F(CacheFamilyTest, LoadErrorIsTheReply) {
  RespValue r = Run({"GET", "broken:1"});
  EXPECT_THAT(r, IsError("ERR cache source 'db' failed to load 'broken:1'"));
  EXPECT_THAT(r.str, HasSubstr("no_such_table"));
  EXPECT_TRUE(last_reply_deferred());
  EXPECT_EQ(Stats("broken:<id>").load_errors.load(), 1u);
  // A failed load stores nothing: the next read (EXISTS too) loads again.
  EXPECT_THAT(Run({"EXISTS", "broken:1"}), IsError("ERR cache source 'db' failed to load 'broken:1'"));
  EXPECT_EQ(Stats("broken:<id>").load_errors.load(), 2u);
  EXPECT_EQ(Run({"PING"}), "PONG");
  // INFO cache, gathered over the shards, reports the same counters.
  RespValue info = Run({"INFO", "cache"});
  ASSERT_TRUE(info.is_string()) << info.DebugString();
  EXPECT_THAT(info.str, HasSubstr("cache_rules:5\r\n"));
  EXPECT_THAT(info.str, HasSubstr("pattern=broken:<id>,source=db,hits=0,misses=2,loads=2,load_errors=2,"));
}

TEST_F(CacheFamilyTest, ConcurrentMissesShareOneLoad) {
  // Both GETs are out before the (slow) load ends: the second joins it.
  uint32_t first = Send({"GET", "slow:11"});
  uint32_t second = Send({"GET", "slow:11"});
  uint32_t third = Send({"GET", "slow:11"});
  EXPECT_EQ(Wait(first), "user 11");
  EXPECT_EQ(Wait(second), "user 11");
  EXPECT_EQ(Wait(third), "user 11");
  const cache::RuleStats& st = Stats("slow:<id>");
  EXPECT_EQ(st.loads.load(), 1u);
  EXPECT_EQ(st.misses.load() + st.coalesced.load(), 3u);
  EXPECT_GE(st.coalesced.load(), 2u);
  EXPECT_EQ(Run({"GET", "slow:11"}), "user 11");  // a hit now
  EXPECT_EQ(st.loads.load(), 1u);
}

TEST_F(CacheFamilyTest, WriteThroughReachesTheDatabase) {
  EXPECT_THAT(Run({"SET", "counter:7", "42"}), IsOk());
  EXPECT_TRUE(last_reply_deferred());  // the reply waited for the database
  EXPECT_EQ(Column("SELECT v FROM counters WHERE id = 7"), std::vector<std::string>{"42"});
  EXPECT_EQ(Run({"GET", "counter:7"}), "42");
  EXPECT_GE(Stats("counter:<id>").writes_through.load(), 1u);
  // A read-modify-write: INCR on the cached value, written through.
  EXPECT_EQ(Run({"INCR", "counter:7"}), 43);
  EXPECT_EQ(Column("SELECT v FROM counters WHERE id = 7"), std::vector<std::string>{"43"});
  // INCR of a key not cached yet loads the row first.
  Sql("INSERT INTO counters VALUES (8, 100);");
  EXPECT_EQ(Run({"INCR", "counter:8"}), 101);
  EXPECT_EQ(Column("SELECT v FROM counters WHERE id = 8"), std::vector<std::string>{"101"});
  // DEL deletes the row.
  EXPECT_EQ(Run({"DEL", "counter:7"}), 1);
  EXPECT_EQ(Column("SELECT v FROM counters WHERE id = 7"), std::vector<std::string>{});
  // A command refused by the command itself writes nothing.
  EXPECT_THAT(Run({"SET", "counter:8", "x"}), IsOk());
  EXPECT_THAT(Run({"INCR", "counter:8"}), IsError("ERR value is not an integer"));
  EXPECT_EQ(Column("SELECT v FROM counters WHERE id = 8"), std::vector<std::string>{"x"});
  // A write-through key must be written alone (no multi-key write).
  EXPECT_THAT(Run({"MSET", "counter:1", "1", "other", "2"}),
              IsError("ERR a write-through or write-behind key must be written by a command on that key alone"));
  EXPECT_EQ(Column("SELECT count(*) FROM counters WHERE id = 1"), std::vector<std::string>{"0"});
}

// publish-stream: the entry goes through the executor as the command named
// "xadd". Until the stream commands exist, a stand-in records each call's
// fields in a list at the stream key, which shows the path: the lookup by
// name, the hop to the stream key's shard, the run.
void FakeXAdd(CommandContext& ctx) {
  auto* l = LookupOrCreateObject<ListValue, ObjType::kList>(ctx, ctx.arg(1));
  if (!l) return;
  std::string entry(ctx.arg(2));
  for (size_t i = 3; i < ctx.argc(); ++i) entry.append(" ").append(ctx.arg(i));
  l->PushBack(entry);
  ctx.rb->Bulk("1-0");
}

void RegisterWithXAdd(CommandRegistry* r) {
  RegisterFamilies(r);
  if (!r->Find("xadd"))
    r->Add(MakeCommand("xadd", -5, kCmdWrite | kCmdDenyOom, 1, 1, 1, FakeXAdd, "@write @stream @fast",
                       "test stand-in for XADD", "stream"));
}

class PublishStreamTest : public CommandTest {
 protected:
  PublishStreamTest() : CommandTest(&RegisterWithXAdd) {}
  void Configure(Options& options) override {
    std::string path = temp_dir() + "/items.db";
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db, "CREATE TABLE items (id INTEGER PRIMARY KEY, v TEXT NOT NULL);", nullptr, nullptr,
                           nullptr),
              SQLITE_OK);
    sqlite3_close(db);
    options.config = {
        "cache-source db sqlite:" + path,
        "cache-rule item:<id> source db as string ttl 1h write through publish-stream item-log "
        "store \"INSERT INTO items (id, v) VALUES (:id, :value) ON CONFLICT (id) DO UPDATE SET v = excluded.v\" "
        "load \"SELECT v FROM items WHERE id = :id\"",
    };
  }
};

TEST_F(PublishStreamTest, EachChangeIsAppendedToTheStreamThroughXAdd) {
  EXPECT_THAT(Run({"SET", "item:1", "one"}), IsOk());
  EXPECT_THAT(Run({"SET", "item:2", "two"}), IsOk());
  ASSERT_TRUE(WaitUntil([&] { return RunInt({"LLEN", "item-log"}) == 2; }));
  EXPECT_THAT(Run({"LRANGE", "item-log", "0", "-1"}),
              UnorderedArrayOf({"* event cache-written key item:1 db 0", "* event cache-written key item:2 db 0"}));
}

}  // namespace
}  // namespace larder
