#include "keyspace/zset_value.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

namespace larder {

namespace {
std::vector<std::string> Order(const ZSetValue& z) {
  std::vector<std::string> out;
  z.ForEach([&](const ZSetValue::Ref& r) { out.emplace_back(r.member); });
  return out;
}
size_t LowerBoundScore(const ZSetValue& z, double s, bool exclusive) {
  return z.CountWhile([&](const ZSetValue::Ref& r) { return exclusive ? r.score <= s : r.score < s; });
}
}  // namespace

TEST(ZSetValueTest, ScoreUpdateKeepsMemberOrderWithinEqualScores) {
  for (size_t limit : {size_t{128}, size_t{0}}) {  // packed and indexed
    ZSetValue z;
    ZSetLimits limits{limit, 64};
    z.Set("a", -1, limits);
    z.Set("b", 10, limits);
    z.Set("130", 10, limits);
    z.Set("a", 10, limits);  // moves "a" among equals: must land between "130" and "b"
    EXPECT_EQ(Order(z), (std::vector<std::string>{"130", "a", "b"})) << limit;
    EXPECT_EQ(*z.Rank("b"), 2u);
    EXPECT_TRUE(z.Remove("130"));
    EXPECT_EQ(*z.Rank("b"), 1u);
    EXPECT_EQ(LowerBoundScore(z, 10, false), 0u);
    EXPECT_EQ(LowerBoundScore(z, 10, true), 2u);
    EXPECT_STREQ(z.encoding(), limit ? "listpack" : "skiplist");
  }
}

// The skiplist form against a model (a std::set of (score, member)) through
// random inserts, score updates, removals and rank erasures: order, ranks,
// walks from any rank in both directions and bounds agree at every step.
TEST(ZSetValueTest, SkiplistAgreesWithAModel) {
  std::mt19937_64 rng(11);
  ZSetValue z;
  ZSetLimits limits{0, 64};
  std::map<std::string, double> scores;
  std::set<std::pair<double, std::string>> model;
  auto check = [&] {
    ASSERT_EQ(z.size(), model.size());
    std::vector<std::string> want;
    for (const auto& [s, m] : model) want.push_back(m);
    ASSERT_EQ(Order(z), want);
    for (size_t probe = 0; probe < 5 && !want.empty(); ++probe) {
      size_t r = rng() % want.size();
      ASSERT_EQ(*z.Rank(want[r]), r);
      std::vector<std::string> up, down;
      z.Walk(r, false, [&](const ZSetValue::Ref& x) {
        up.emplace_back(x.member);
        return up.size() < 3;
      });
      z.Walk(r, true, [&](const ZSetValue::Ref& x) {
        down.emplace_back(x.member);
        return down.size() < 3;
      });
      for (size_t i = 0; i < up.size(); ++i) ASSERT_EQ(up[i], want[r + i]);
      for (size_t i = 0; i < down.size(); ++i) ASSERT_EQ(down[i], want[want.size() - 1 - r - i]);
      double s = static_cast<double>(rng() % 50);
      size_t below = 0;
      for (const auto& [sc, m] : model) below += sc < s;
      ASSERT_EQ(LowerBoundScore(z, s, false), below);
    }
  };
  for (int step = 0; step < 4000; ++step) {
    std::string m = "m" + std::to_string(rng() % 600);
    double s = static_cast<double>(rng() % 50);
    int op = static_cast<int>(rng() % 10);
    if (op < 6) {
      if (scores.count(m)) model.erase({scores[m], m});
      scores[m] = s;
      model.insert({s, m});
      z.Set(m, s, limits);
    } else if (op < 9) {
      bool had = scores.count(m) > 0;
      if (had) {
        model.erase({scores[m], m});
        scores.erase(m);
      }
      ASSERT_EQ(z.Remove(m), had);
    } else if (!model.empty()) {
      size_t first = rng() % model.size();
      size_t last = std::min(model.size(), first + rng() % 4);
      auto it = std::next(model.begin(), static_cast<long>(first));
      for (size_t i = first; i < last; ++i) {
        scores.erase(it->second);
        it = model.erase(it);
      }
      z.EraseRanks(first, last);
    }
    if (step % 50 == 0) check();
  }
  check();
  auto copy = z.Clone();
  EXPECT_EQ(Order(*copy), Order(z));
}

}  // namespace larder
