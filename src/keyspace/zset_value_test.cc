#include "keyspace/zset_value.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace larder {

std::vector<std::string> Order(const ZSetValue& z) {
  std::vector<std::string> out;
  auto view = z.Items();  // keep the view alive while iterating
  for (const auto& i : view.items()) out.push_back(i.member);
  return out;
}

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
    auto view = z.Items();
    EXPECT_EQ(LowerBoundScore(view.items(), 10, false), 0u);
    EXPECT_EQ(LowerBoundScore(view.items(), 10, true), 2u);
    EXPECT_STREQ(z.encoding(), limit ? "listpack" : "skiplist");
  }
}

}  // namespace larder
