#include "cache/write_behind.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>

#include "cache/shard_cache.h"
#include "cache/rules.h"

namespace larder::cache {
namespace {

Change MakeChange(std::string key, std::string value) {
  Change c;
  c.db = 3;
  c.key = std::move(key);
  c.values = {{"value", std::move(value)}, {"owner", std::nullopt}};
  c.at_ms = 1234;
  return c;
}

TEST(WriteBehind, ChangesRoundTrip) {
  Change c = MakeChange("item:7", std::string("a\0b", 3));
  c.seq = 99;
  Change back;
  ASSERT_TRUE(DecodeChange(EncodeChange(c), &back));
  EXPECT_EQ(back.seq, 99u);
  EXPECT_EQ(back.db, 3);
  EXPECT_FALSE(back.del);
  EXPECT_EQ(back.key, "item:7");
  EXPECT_EQ(back.values, c.values);
  EXPECT_EQ(back.at_ms, 1234);
  std::string enc = EncodeChange(c);
  for (size_t n = 0; n < enc.size(); ++n) EXPECT_FALSE(DecodeChange(enc.substr(0, n), &back)) << n;
}

// Appends records, "crashes" (closes without a clean end) after cutting the
// last record short, and checks that reopening reads back exactly the
// intact ones and continues the sequence after them.
TEST(WriteBehind, JournalReadsBackIntactRecordsAndCutsATornTail) {
  auto dir = std::filesystem::temp_directory_path() / ("larder-wbj-" + std::to_string(getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  std::string err;
  {
    Journal j;
    ASSERT_TRUE(j.Open(dir, FsyncPolicy::kAlways, [](Change) { FAIL() << "empty journal"; }, &err)) << err;
    uint64_t durable = 0;
    j.Start(1, [&](int, uint64_t seq) { durable = seq; }, [] { return uint64_t{0}; }, [] { return std::vector<Change>{}; });
    for (int i = 0; i < 5; ++i) {
      Change c = MakeChange("k" + std::to_string(i), "v" + std::to_string(i));
      ASSERT_TRUE(j.Append(&c, 0, nullptr, &err));
      EXPECT_EQ(c.seq, static_cast<uint64_t>(i + 1));
    }
    for (int i = 0; i < 200 && durable < 5; ++i) usleep(10000);
    EXPECT_EQ(durable, 5u);
    j.Stop();
  }
  auto seg = dir / "larder-wb-000001.journal";
  auto size = std::filesystem::file_size(seg);
  std::filesystem::resize_file(seg, size - 3);  // the last record torn
  std::vector<Change> seen;
  {
    Journal j;
    ASSERT_TRUE(j.Open(dir, FsyncPolicy::kAlways, [&](Change c) { seen.push_back(std::move(c)); }, &err)) << err;
    EXPECT_EQ(j.next_seq(), 5u);
  }
  ASSERT_EQ(seen.size(), 4u);
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(seen[static_cast<size_t>(i)].key, "k" + std::to_string(i));
    EXPECT_EQ(seen[static_cast<size_t>(i)].seq, static_cast<uint64_t>(i + 1));
  }
  EXPECT_LT(std::filesystem::file_size(seg), size - 3);  // cut back to the last intact record
  std::filesystem::remove_all(dir);
}

// The database is away: every change stays needed, segments pile up, and
// the journal is compacted to the queues' content (one change per key);
// reading it back gives each key's newest value.
TEST(WriteBehind, JournalCompactsToWhatTheQueuesHold) {
  auto dir = std::filesystem::temp_directory_path() / ("larder-wbc-" + std::to_string(getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  std::string err;
  // A real queue (its flusher not started: the database is away).
  LiveRule rule;
  DeadLetters dead;
  WriteQueue queue(&rule, &dead);
  std::map<std::string, std::string> latest;
  uint64_t before_compaction = 0;
  {
    Journal j;
    j.set_segment_bytes(4096);
    ASSERT_TRUE(j.Open(dir, FsyncPolicy::kNo, [](Change) {}, &err)) << err;
    j.Start(1, [](int, uint64_t) {}, [] { return uint64_t{1}; }, [&] {
      std::vector<Change> out;
      queue.AppendLive(&out);
      return out;
    });
    for (int i = 0; i < 3000; ++i) {
      Change c = MakeChange("k" + std::to_string(i % 10), "v" + std::to_string(i));
      latest[c.key] = *c.values[0].second;
      ASSERT_TRUE(j.Append(&c, 0, &queue, &err));
      before_compaction = std::max<uint64_t>(before_compaction, j.bytes());
      if (i % 100 == 0) usleep(20000);  // let the journal thread look
    }
    for (int i = 0; i < 100 && j.bytes() > 4096 * 4; ++i) usleep(20000);
    EXPECT_GT(before_compaction, 4096u * 4);
    EXPECT_LT(j.bytes(), before_compaction);
    EXPECT_EQ(queue.depth(), 10u);
    j.Stop();
  }
  std::map<std::string, std::string> replayed;
  {
    Journal j;
    ASSERT_TRUE(j.Open(dir, FsyncPolicy::kNo, [&](Change c) { replayed[c.key] = *c.values[0].second; }, &err)) << err;
  }
  ASSERT_EQ(replayed.size(), 10u);
  for (const auto& [k, v] : latest) EXPECT_EQ(replayed[k], v) << k;
  std::filesystem::remove_all(dir);
}

TEST(WriteBehind, DeadLettersKeepTheNewestPerKeyAcrossRestarts) {
  auto dir = std::filesystem::temp_directory_path() / ("larder-wbd-" + std::to_string(getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  std::string err;
  auto letter = [](std::string key, std::string value, uint64_t seq) {
    DeadLetter d;
    d.rule = "k<id>";
    d.change = MakeChange(std::move(key), std::move(value));
    d.change.seq = seq;
    d.error = "refused";
    return d;
  };
  auto keys_and_values = [](const DeadLetters& d) {
    std::vector<std::string> out;
    for (const auto& l : d.List()) out.push_back(l.change.key + "=" + *l.change.values[0].second);
    return out;
  };
  {
    DeadLetters d;
    ASSERT_TRUE(d.Open(dir, &err)) << err;
    d.Add(letter("k1", "old", 1));
    d.Add(letter("k2", "b", 2));
    d.Add(letter("k1", "new", 3));  // supersedes k1=old
    d.Add(letter("k2", "b", 2));    // the same change read back again: kept once
    EXPECT_EQ(keys_and_values(d), (std::vector<std::string>{"k2=b", "k1=new"}));
  }
  {
    DeadLetters d;
    ASSERT_TRUE(d.Open(dir, &err)) << err;
    EXPECT_EQ(keys_and_values(d), (std::vector<std::string>{"k2=b", "k1=new"}));
    auto taken = d.Take(d.List()[0].id);
    ASSERT_EQ(taken.size(), 1u);
    EXPECT_EQ(taken[0].change.key, "k2");
  }
  {
    DeadLetters d;
    ASSERT_TRUE(d.Open(dir, &err)) << err;
    EXPECT_EQ(keys_and_values(d), (std::vector<std::string>{"k1=new"}));
    EXPECT_EQ(d.Take(0).size(), 1u);
    EXPECT_EQ(d.size(), 0u);
  }
  std::filesystem::remove_all(dir);
}

TEST(WriteBehind, RulesParseTheWriteModes) {
  Rule r;
  std::string err;
  std::vector<std::string> args = {"item:<id>", "source", "main", "as", "string", "ttl", "1h", "write", "behind",
                                   "write-delay", "200ms", "write-batch", "500", "load",
                                   "SELECT v FROM kv WHERE id = :id", "store",
                                   "INSERT INTO kv(id, v) VALUES (:id, :value)", "delete",
                                   "DELETE FROM kv WHERE id = :id"};
  ASSERT_TRUE(ParseRule(args, &r, &err)) << err;
  EXPECT_TRUE(r.write_behind);
  EXPECT_FALSE(r.write_through);
  EXPECT_EQ(r.write_delay_ms, 200);
  EXPECT_EQ(r.write_batch, 500);
  EXPECT_NE(r.ToLine().find("write behind write-delay 200ms write-batch 500 store"), std::string::npos);
  // The line it prints parses to the same rule.
  Rule again;
  ASSERT_TRUE(ParseRule({"item:<id>", "source", "main", "write", "behind", "write-batch", "7", "load", "SELECT 1",
                         "store", "INSERT INTO kv VALUES (:id, :value)"},
                        &again, &err))
      << err;
  EXPECT_EQ(again.write_batch, 7);
  EXPECT_EQ(again.write_delay_ms, 1000);
  EXPECT_FALSE(ParseRule({"item:<id>", "source", "m", "write", "behind", "load", "x"}, &r, &err));
  EXPECT_NE(err.find("store"), std::string::npos);
  EXPECT_FALSE(ParseRule({"item:<id>", "source", "m", "write", "sideways", "load", "x"}, &r, &err));
  EXPECT_FALSE(ParseRule({"item:<id>", "source", "m", "write-batch", "0", "load", "x"}, &r, &err));
  EXPECT_FALSE(ParseRule({"item:<id>", "source", "m", "load", "x", "store", "INSERT INTO t VALUES (:value)"}, &r,
                         &err));
  EXPECT_NE(err.find("write behind"), std::string::npos);
  EXPECT_FALSE(ParseRule({"item:<id>", "source", "m", "write", "behind", "load", "x", "store",
                          "INSERT INTO t VALUES (:id, :colour)"},
                         &r, &err));
  EXPECT_NE(err.find(":colour"), std::string::npos);
  EXPECT_FALSE(ParseRule({"item:<id>", "source", "m", "write", "through", "load", "x", "store",
                          "INSERT INTO t VALUES (:id, :value)", "delete", "DELETE FROM t WHERE k = :key"},
                         &r, &err));
}

}  // namespace
}  // namespace larder::cache
