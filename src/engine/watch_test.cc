#include "engine/watch.h"

#include <gtest/gtest.h>

#include "common/clock.h"
#include "keyspace/db.h"

namespace larder {

namespace {

struct Fixture {
  KeyspaceStats stats;
  Db db{&stats};
  Db other{&stats};
  WatchRegistry reg;
  std::shared_ptr<WatchSet> set = std::make_shared<WatchSet>();

  WatchedKey* Watch(const std::string& key, int db_index = 0) {
    WatchedKey& wk = set->keys.emplace_back();
    wk.db = db_index;
    wk.key = key;
    reg.Add(set, &wk, db_index == 0 ? db : other);
    return &wk;
  }
};

}  // namespace

TEST(WatchTest, ATouchMarksTheSetDirty) {
  RefreshCommandTime();
  Fixture f;
  f.db.SetString("k", "v", Db::kNoExpire, StrEncoding::kRaw);
  f.Watch("k");
  f.reg.Touch(0, "other", f.db);
  EXPECT_FALSE(f.set->Failed(CommandTimeMs()));
  f.reg.Touch(1, "k", f.other);  // same name, other database
  EXPECT_FALSE(f.set->Failed(CommandTimeMs()));
  f.reg.Touch(0, "k", f.db);
  EXPECT_TRUE(f.set->Failed(CommandTimeMs()));
}

TEST(WatchTest, AKeyWithATtlFailsOnceItIsReached) {
  RefreshCommandTime();
  Fixture f;
  f.db.SetString("k", "v", CommandTimeMs() + 50, StrEncoding::kRaw);
  f.Watch("k");
  EXPECT_FALSE(f.set->Failed(CommandTimeMs()));
  EXPECT_TRUE(f.set->Failed(CommandTimeMs() + 50));  // deleted or not, it expired
}

TEST(WatchTest, StaleKeysChangeOnlyByComingBack) {
  RefreshCommandTime();
  Fixture f;
  f.db.SetString("k", "v", CommandTimeMs() - 1, StrEncoding::kRaw);  // already past its TTL
  WatchedKey* wk = f.Watch("k");
  EXPECT_TRUE(wk->stale.load());
  EXPECT_FALSE(f.set->Failed(CommandTimeMs() + 1000));  // its expiry is no change
  EXPECT_EQ(f.db.Find("k"), nullptr);                   // deleted on lookup
  f.reg.Touch(0, "k", f.db);                            // the deletion: no change, no longer stale
  EXPECT_FALSE(f.set->Failed(CommandTimeMs()));
  EXPECT_FALSE(wk->stale.load());
  f.reg.Touch(0, "k", f.db);  // written again: a change
  EXPECT_TRUE(f.set->Failed(CommandTimeMs()));
}

TEST(WatchTest, FlushTouchesOnlyKeysThatExist) {
  RefreshCommandTime();
  Fixture f;
  f.Watch("missing");
  f.reg.TouchDb(0, f.db, nullptr);
  EXPECT_FALSE(f.set->Failed(CommandTimeMs()));
  f.db.SetString("there", "v", Db::kNoExpire, StrEncoding::kRaw);
  f.Watch("there");
  f.reg.TouchDb(0, f.db, nullptr);
  EXPECT_TRUE(f.set->Failed(CommandTimeMs()));
}

TEST(WatchTest, SwapTouchesAKeyBroughtInButNotAStaleOne) {
  RefreshCommandTime();
  Fixture f;
  f.Watch("a");
  f.other.SetString("a", "v", CommandTimeMs() - 1, StrEncoding::kRaw);  // stale in the incoming db
  f.reg.TouchDb(0, f.db, &f.other);
  EXPECT_FALSE(f.set->Failed(CommandTimeMs()));
  f.other.SetString("a", "v", Db::kNoExpire, StrEncoding::kRaw);
  auto fresh = std::make_shared<WatchSet>();
  WatchedKey& wk = fresh->keys.emplace_back();
  wk.key = "a";
  f.reg.Add(fresh, &wk, f.db);
  f.reg.TouchDb(0, f.db, &f.other);
  EXPECT_TRUE(fresh->Failed(CommandTimeMs()));
}

TEST(WatchTest, RemoveForgetsTheSet) {
  RefreshCommandTime();
  Fixture f;
  f.Watch("k");
  EXPECT_FALSE(f.reg.empty());
  f.reg.Remove(f.set.get());
  EXPECT_TRUE(f.reg.empty());
  f.reg.Touch(0, "k", f.db);
  EXPECT_FALSE(f.set->Failed(CommandTimeMs()));
}

}  // namespace larder
