#include "keyspace/lazy_free.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>

#include "keyspace/db.h"
#include "keyspace/objects.h"

namespace larder {
namespace {

Entry* BigSet(const std::string& key, int n) {
  auto* s = new SetValue();
  for (int i = 0; i < n; ++i) s->Add("m" + std::to_string(i), 512);
  return NewObjectEntry(key, ObjType::kSet, s, -1);
}

void WaitIdle(const LazyFreer& f) {
  for (int i = 0; i < 5000 && f.pending() > 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

TEST(LazyFreeTest, OnlyBigValuesWhoseDeletionMayBeLazyGoToTheThread) {
  LazyFreer f;
  LazyFreer::SetCurrent(&f);
  std::atomic<int64_t> yes{1}, no{0};
  LazyFreePolicy policy{&no, &yes, &no, &no, &no};  // lazyfree-lazy-user-del only
  KeyspaceStats stats;
  Db db(&stats);
  db.AttachLazyFree(&policy);
  db.Add(BigSet("big", 1000));
  db.Add(BigSet("small", 10));
  db.Add(BigSet("server", 1000));
  db.Add(BigSet("unlinked", 1000));
  EXPECT_EQ(FreeEffort(db.Find("big")), 1000u);
  EXPECT_TRUE(db.Delete("small", DeleteCause::kUser));    // under the threshold: at once
  EXPECT_TRUE(db.Delete("server", DeleteCause::kServer));  // lazyfree-lazy-server-del is off
  WaitIdle(f);
  EXPECT_EQ(f.freed(), 0u);
  EXPECT_TRUE(db.Delete("big", DeleteCause::kUser));
  EXPECT_TRUE(db.Delete("unlinked", DeleteCause::kUnlink));  // UNLINK: always
  WaitIdle(f);
  EXPECT_EQ(f.pending(), 0u);
  EXPECT_EQ(f.freed(), 2u);
  // A lazy flush hands the whole table over, counted by keys.
  for (int i = 0; i < 5; ++i) db.Add(BigSet("k" + std::to_string(i), 3));
  db.Clear(true);
  EXPECT_EQ(db.size(), 0u);
  EXPECT_EQ(db.Find("k1"), nullptr);
  WaitIdle(f);
  EXPECT_EQ(f.freed(), 7u);
  LazyFreer::SetCurrent(nullptr);
}

TEST(LazyFreeTest, WithoutAFreerEverythingIsFreedAtOnce) {
  std::atomic<int64_t> yes{1};
  LazyFreePolicy policy{&yes, &yes, &yes, &yes, &yes};
  KeyspaceStats stats;
  Db db(&stats);
  db.AttachLazyFree(&policy);
  db.Add(BigSet("big", 1000));
  EXPECT_TRUE(db.Delete("big", DeleteCause::kUnlink));
  db.Add(BigSet("big", 1000));
  db.Clear(true);
  EXPECT_EQ(db.size(), 0u);
}

}  // namespace
}  // namespace larder
