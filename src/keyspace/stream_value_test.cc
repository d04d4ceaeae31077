#include "keyspace/stream_value.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace larder {
namespace {

std::vector<std::string> Ids(const StreamValue& s, bool rev = false, StreamID from = StreamID::Min(),
                             StreamID to = StreamID::Max()) {
  std::vector<std::string> out;
  s.Range(from, to, rev, [&](StreamID id, const StreamFields&) {
    out.push_back(id.ToString());
    return true;
  });
  return out;
}

void Add(StreamValue& s, uint64_t ms, uint64_t seq, std::vector<std::string_view> fv,
         StreamLimits limits = {}) {
  s.Append({ms, seq}, fv, limits);
}

// Entries 1-0 .. n-0 of {f: v}, at most `per_block` to a block.
void Fill(StreamValue& s, uint64_t n, size_t per_block) {
  for (uint64_t i = 1; i <= n; ++i) Add(s, i, 0, {"f", "v"}, StreamLimits{0, per_block});
}

TEST(StreamValueTest, IdsIncrementAndDecrementAcrossTheParts) {
  StreamID a{1, UINT64_MAX};
  EXPECT_TRUE(a.Incr());
  EXPECT_EQ(a, (StreamID{2, 0}));
  EXPECT_TRUE(a.Decr());
  EXPECT_EQ(a, (StreamID{1, UINT64_MAX}));
  StreamID max = StreamID::Max();
  EXPECT_FALSE(max.Incr());
  StreamID min;
  EXPECT_FALSE(min.Decr());
}

TEST(StreamValueTest, EntriesKeepTheirFieldsWithAndWithoutTheMasterSchema) {
  StreamValue s;
  Add(s, 1, 0, {"a", "1", "b", "2"});
  Add(s, 1, 5, {"a", "3", "b", "4"});    // same fields as the master: values only
  Add(s, 2, 0, {"x", "9"});              // other fields
  Add(s, 2, 1, {"a", "5", "b", ""});     // empty value
  std::vector<std::string> seen;
  s.Range(StreamID::Min(), StreamID::Max(), false, [&](StreamID id, const StreamFields& f) {
    std::string line = id.ToString();
    for (auto& [k, v] : f) line += " " + std::string(k) + "=" + std::string(v);
    seen.push_back(line);
    return true;
  });
  EXPECT_EQ(seen, (std::vector<std::string>{"1-0 a=1 b=2", "1-5 a=3 b=4", "2-0 x=9", "2-1 a=5 b="}));
  EXPECT_EQ(Ids(s, true), (std::vector<std::string>{"2-1", "2-0", "1-5", "1-0"}));
  EXPECT_EQ(s.size(), 4u);
  EXPECT_EQ(s.blocks(), 1u);
}

TEST(StreamValueTest, BlocksSplitAtTheEntryLimitAndRangesCrossThem) {
  StreamValue s;
  Fill(s, 10, 3);
  EXPECT_EQ(s.blocks(), 4u);
  EXPECT_EQ(Ids(s, false, {3, 0}, {7, 0}), (std::vector<std::string>{"3-0", "4-0", "5-0", "6-0", "7-0"}));
  EXPECT_EQ(Ids(s, true, {3, 0}, {5, 0}), (std::vector<std::string>{"5-0", "4-0", "3-0"}));
}

TEST(StreamValueTest, BlocksSplitWhereARedisListpackReachesTheByteLimit) {
  // Block counts redis-server 7.0.15 reports (XINFO STREAM radix-tree-keys)
  // for the same entries with stream-node-max-bytes 100 and no entry limit:
  // string values, and values that listpack stores as integers.
  StreamValue strings, ints;
  StreamLimits limits{100, 0};
  for (uint64_t i = 1; i <= 50; ++i) {
    Add(strings, i, 0, {"f", "vvvvvvvvvv"}, limits);
    std::string n = std::to_string(i * 1000);
    Add(ints, i, 0, {"f", n}, limits);
  }
  EXPECT_EQ(strings.blocks(), 13u);
  EXPECT_EQ(ints.blocks(), 8u);
}

TEST(StreamValueTest, DeleteMarksEntriesAndDropsEmptyBlocks) {
  StreamValue s;
  Fill(s, 4, 2);
  EXPECT_TRUE(s.Delete({1, 0}));
  EXPECT_FALSE(s.Delete({1, 0}));
  EXPECT_FALSE(s.Contains({1, 0}));
  EXPECT_EQ(s.first_id(), (StreamID{2, 0}));
  EXPECT_TRUE(s.Delete({2, 0}));
  EXPECT_EQ(s.blocks(), 1u);
  EXPECT_EQ(Ids(s), (std::vector<std::string>{"3-0", "4-0"}));
  EXPECT_EQ(s.LastLiveId(), (StreamID{4, 0}));
}

TEST(StreamValueTest, ApproximateTrimRemovesOnlyWholeBlocks) {
  StreamValue s;
  Fill(s, 25, 10);
  StreamValue::TrimArgs t;
  t.strategy = StreamValue::TrimArgs::kMaxLen;
  t.maxlen = 12;
  t.approx = true;
  EXPECT_EQ(s.Trim(t), 10);
  EXPECT_EQ(s.size(), 15u);
  t.approx = false;
  EXPECT_EQ(s.Trim(t), 3);
  EXPECT_EQ(s.size(), 12u);
  EXPECT_EQ(s.first_id(), (StreamID{14, 0}));
  t.strategy = StreamValue::TrimArgs::kMinId;
  t.minid = {20, 0};
  EXPECT_EQ(s.Trim(t), 6);
  EXPECT_EQ(Ids(s).front(), "20-0");
}

TEST(StreamValueTest, CloneCopiesGroupsAndRepointsTheirPendingEntries) {
  StreamValue s;
  Add(s, 1, 0, {"f", "v"});
  StreamGroup* g = s.CreateGroup("g", {}, 0);
  StreamConsumer* c = g->CreateConsumer("alice", 100);
  g->pel[{1, 0}] = StreamNack{100, 1, c};
  c->pending.insert({1, 0});
  auto copy = s.Clone();
  StreamGroup* cg = copy->FindGroup("g");
  ASSERT_NE(cg, nullptr);
  EXPECT_EQ(cg->pel.at({1, 0}).consumer, cg->FindConsumer("alice"));
  EXPECT_NE(cg->FindConsumer("alice"), c);
  EXPECT_EQ(cg->DeleteConsumer("alice"), 1u);
  EXPECT_TRUE(cg->pel.empty());
  EXPECT_EQ(g->pel.size(), 1u);
}

}  // namespace
}  // namespace larder
