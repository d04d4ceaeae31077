#include "keyspace/table.h"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include "keyspace/db.h"

namespace larder {

namespace {
Entry* Make(const std::string& k, const std::string& v = "v") { return NewStringEntry(k, v, -1); }
}  // namespace

TEST(TableTest, InsertFindUnlink) {
  Table t;
  for (int i = 0; i < 10000; ++i) t.Insert(Make("key:" + std::to_string(i)));
  EXPECT_EQ(t.size(), 10000u);
  for (int i = 0; i < 10000; ++i) ASSERT_NE(t.Find("key:" + std::to_string(i)), nullptr);
  EXPECT_EQ(t.Find("nope"), nullptr);
  for (int i = 0; i < 10000; i += 2) {
    Entry* e = t.Unlink("key:" + std::to_string(i));
    ASSERT_NE(e, nullptr);
    FreeEntry(e);
  }
  EXPECT_EQ(t.size(), 5000u);
  EXPECT_EQ(t.Find("key:2"), nullptr);
  EXPECT_NE(t.Find("key:3"), nullptr);
}

TEST(TableTest, ScanVisitsEveryStableKeyAcrossResizes) {
  Table t;
  for (int i = 0; i < 1000; ++i) t.Insert(Make("stable:" + std::to_string(i)));
  std::set<std::string> seen;
  uint64_t cursor = 0;
  int round = 0;
  do {
    cursor = t.Scan(cursor, [&](Entry* e) { seen.emplace(e->key()); });
    // Grow the table a lot during the scan, then shrink it again.
    if (round < 50) {
      for (int i = 0; i < 200; ++i) t.Insert(Make("churn:" + std::to_string(round * 200 + i)));
    } else if (round < 100) {
      for (int i = 0; i < 200; ++i) {
        Entry* e = t.Unlink("churn:" + std::to_string((round - 50) * 200 + i));
        if (e) FreeEntry(e);
      }
      t.MaybeShrink();
    }
    t.RehashSteps(3);
    ++round;
  } while (cursor != 0);
  for (int i = 0; i < 1000; ++i) EXPECT_TRUE(seen.count("stable:" + std::to_string(i))) << i;
}

// ScanMany is Scan n times: the same entries in the same order and the same
// cursor after each call, for batch sizes below, at and above its prefetch
// window, with and without a rehash in progress.
TEST(TableTest, ScanManyWalksAsScanDoes) {
  for (bool rehash : {false, true}) {
    Table t;
    for (int i = 0; i < 5000; ++i) t.Insert(Make("key:" + std::to_string(i)));
    while (t.RehashSteps(1000)) {
    }
    if (rehash) {
      // Insert until a resize starts, and leave it in progress.
      for (int i = 0; !t.rehashing(); ++i) t.Insert(Make("grow:" + std::to_string(i)));
      ASSERT_TRUE(t.rehashing());
    }
    for (int n : {1, 3, 8, 16, 17, 32, 100}) {
      std::vector<std::string> plain, many;
      uint64_t a = 0, b = 0;
      do {
        for (int i = 0; i < n && (i == 0 || a != 0); ++i)
          a = t.Scan(a, [&](Entry* e) { plain.emplace_back(e->key()); });
        b = t.ScanMany(b, n, [&](Entry* e) { many.emplace_back(e->key()); });
        ASSERT_EQ(a, b) << "n=" << n << " rehash=" << rehash;
      } while (a != 0);
      EXPECT_EQ(plain, many) << "n=" << n << " rehash=" << rehash;
      EXPECT_GE(plain.size(), t.size());
    }
  }
}

TEST(TableTest, RelinkAfterGrowth) {
  KeyspaceStats stats;
  Db db(&stats);
  db.SetString("k", "v", Db::kNoExpire, StrEncoding::kEmbstr);
  Entry* e = db.Find("k");
  e = db.ResizeValue(e, 5000, true);
  memset(e->mutable_value(), 'x', 5000);
  EXPECT_EQ(db.Find("k")->value().size(), 5000u);
  e = db.SetExpire(db.Find("k"), 1LL << 50);
  EXPECT_TRUE(db.Find("k")->has_expire());
  EXPECT_EQ(db.expires(), 1u);
  EXPECT_EQ(db.Find("k")->value(), std::string(5000, 'x'));
  db.SetExpire(db.Find("k"), -1);
  EXPECT_EQ(db.expires(), 0u);
  EXPECT_FALSE(db.Find("k")->has_expire());
}

TEST(TableTest, ActiveExpireRemovesExpiredKeys) {
  KeyspaceStats stats;
  Db db(&stats);
  for (int i = 0; i < 5000; ++i)
    db.SetString("k" + std::to_string(i), "v", i % 2 ? 1000 : Db::kNoExpire, StrEncoding::kEmbstr);
  EXPECT_EQ(db.expires(), 2500u);
  while (db.expires() > 0) db.ActiveExpireCycle(/*now_ms=*/2000, /*budget_us=*/100000);
  EXPECT_EQ(db.size(), 2500u);
  EXPECT_EQ(stats.expired_keys, 2500u);
}

}  // namespace larder
