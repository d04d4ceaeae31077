#include "shard/shard.h"

#include <gtest/gtest.h>

#include <future>
#include <vector>

#include "common/clock.h"
#include "shard/shard_set.h"

namespace larder {

// PostAt's tasks run on the shard's thread once their time has come, in
// time order whatever the posting order, and a task may post another.
TEST(ShardTest, PostAtRunsTasksWhenTheirTimeComes) {
  ShardSet set(1, 1);
  set.Start([](Shard&) {});
  Shard& s = set.shard(0);
  std::promise<void> done;
  std::vector<std::pair<int, int64_t>> ran;  // (which, when): shard thread only
  int64_t t0 = 0;
  s.Post([&] {
    t0 = MonotonicUs();
    s.PostAt(t0 + 30'000, [&] {
      ran.emplace_back(2, MonotonicUs());
      s.PostAt(MonotonicUs() + 5'000, [&] {
        ran.emplace_back(3, MonotonicUs());
        done.set_value();
      });
    });
    s.PostAt(t0 + 10'000, [&] { ran.emplace_back(1, MonotonicUs()); });
  });
  done.get_future().wait();
  set.Stop();
  ASSERT_EQ(ran.size(), 3u);
  EXPECT_EQ(ran[0].first, 1);
  EXPECT_EQ(ran[1].first, 2);
  EXPECT_EQ(ran[2].first, 3);
  EXPECT_GE(ran[0].second, t0 + 10'000);
  EXPECT_GE(ran[1].second, t0 + 30'000);
  EXPECT_GE(ran[2].second, ran[1].second + 5'000);
}

}  // namespace larder
