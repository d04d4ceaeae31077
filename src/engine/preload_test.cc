// PreloadKeys against a real SQLite source: the fast paths (caching off, no
// key a rule covers) answer at once without a message; loads on both shards
// answer on the calling shard once both landed; a failed load gives its
// error.
#include "engine/preload.h"

#include <sqlite3.h>

#include <atomic>
#include <mutex>
#include <optional>

#include "engine/command_test_fixture.h"
#include "keyspace/db.h"
#include "shard/shard.h"

namespace larder {
namespace {

void NoCommands(CommandRegistry*) {}

class PreloadTest : public CommandTest {
 protected:
  PreloadTest() : CommandTest(NoCommands) {}
  void Configure(Options& options) override {
    if (!with_rules_) return;
    std::string path = temp_dir() + "/p.db";
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db,
                           "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT);"
                           "INSERT INTO users VALUES (1, 'ann'), (2, 'bob'), (3, 'cy'), (4, 'di');",
                           nullptr, nullptr, nullptr),
              SQLITE_OK);
    sqlite3_close(db);
    options.config = {
        "cache-source db sqlite:" + path,
        "cache-rule user:<id> source db as string ttl 100s load \"SELECT name FROM users WHERE id = :id\"",
        "cache-rule broken:<id> source db load \"SELECT missing_column FROM no_such_table WHERE id = :id\"",
    };
  }

  struct Outcome {
    bool returned_done = false;  // PreloadKeys said `then` already ran
    bool ran_inside = false;     // `then` ran before PreloadKeys returned
    int shard_ran = -1;
    std::optional<std::string> error;
  };
  // Calls PreloadKeys on shard 0 and waits for `then`.
  Outcome Preload(std::vector<std::string> keys) {
    auto out = std::make_shared<Outcome>();
    auto done = std::make_shared<std::atomic<bool>>(false);
    RunOnShard(0, [&, out, done](Shard&) {
      std::vector<PreloadKey> list;
      for (const auto& k : keys) list.push_back(PreloadKey{0, k, ShardOf(k)});
      auto inside = std::make_shared<bool>(true);
      out->returned_done = PreloadKeys(&engine(), std::move(list), [out, done, inside](const std::string* e) {
        out->ran_inside = *inside;
        out->shard_ran = CurrentShard()->id();
        if (e) out->error = *e;
        done->store(true);
      });
      *inside = false;
    });
    EXPECT_TRUE(WaitUntil([&] { return done->load(); }));
    return *out;
  }
  bool Cached(const std::string& key) {
    bool there = false;
    RunOnShard(ShardOf(key), [&](Shard& s) { there = s.db(0).Find(key) != nullptr; });
    return there;
  }
  bool with_rules_ = true;
};

class PreloadNoCacheTest : public PreloadTest {
 protected:
  PreloadNoCacheTest() { with_rules_ = false; }
};

TEST_F(PreloadNoCacheTest, CachingOffAnswersAtOnce) {
  Outcome o = Preload({"user:1", KeyOnShard(1, "user:")});
  EXPECT_TRUE(o.returned_done);
  EXPECT_TRUE(o.ran_inside);
  EXPECT_FALSE(o.error);
}

TEST_F(PreloadTest, KeysNoRuleCoversAnswerAtOnce) {
  Outcome o = Preload({KeyOnShard(0, "plain:"), KeyOnShard(1, "plain:")});
  EXPECT_TRUE(o.returned_done);
  EXPECT_TRUE(o.ran_inside);
  EXPECT_FALSE(o.error);
}

TEST_F(PreloadTest, LoadsOnEveryShardThenAnswersOnTheCallingShard) {
  std::vector<std::string> keys = {"user:1", "user:2", "user:3", "user:4", "user:1"};
  bool both = false;
  for (const auto& k : keys) both |= ShardOf(k) != ShardOf(keys[0]);
  ASSERT_TRUE(both) << "the test wants keys on both shards";
  Outcome o = Preload(keys);
  EXPECT_FALSE(o.returned_done);
  EXPECT_FALSE(o.ran_inside);
  EXPECT_EQ(o.shard_ran, 0);
  EXPECT_FALSE(o.error);
  for (const auto& k : keys) EXPECT_TRUE(Cached(k)) << k;
  // Cached now: nothing to wait for, so `then` runs at once.
  std::vector<std::string> here;
  for (const auto& k : keys)
    if (ShardOf(k) == 0) here.push_back(k);
  if (!here.empty()) {
    Outcome again = Preload(here);
    EXPECT_TRUE(again.returned_done);
    EXPECT_FALSE(again.error);
  }
}

TEST_F(PreloadTest, ALoadErrorIsTheAnswer) {
  Outcome o = Preload({"user:1", KeyOnShard(1, "broken:")});
  EXPECT_FALSE(o.returned_done);
  ASSERT_TRUE(o.error);
  EXPECT_NE(o.error->find("failed to load"), std::string::npos) << *o.error;
  EXPECT_EQ(o.shard_ran, 0);
}

}  // namespace
}  // namespace larder
