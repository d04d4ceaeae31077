#include "net/event_loop.h"

#include <gtest/gtest.h>

#include <vector>

#include "common/clock.h"

namespace larder::net {

// WakeBy ends the next wait at its deadline with no event and no timer due;
// one set from the after-events hook bounds the wait that follows it.
TEST(EventLoopTest, WakeByEndsTheNextWaitAtItsDeadline) {
  EventLoop loop;
  std::vector<int64_t> wakes;
  int64_t first = MonotonicUs() + 20'000, second = 0;
  loop.WakeBy(first);
  loop.SetAfterEvents([&] {
    wakes.push_back(MonotonicUs());
    if (wakes.size() == 1) {
      second = MonotonicUs() + 10'000;
      loop.WakeBy(second);
    } else {
      loop.Stop();
    }
  });
  loop.Run();  // nothing else would ever end its waits
  ASSERT_EQ(wakes.size(), 2u);
  EXPECT_GE(wakes[0], first);
  EXPECT_GE(wakes[1], second);
  EXPECT_EQ(loop.events(), 0u);
}

}  // namespace larder::net
