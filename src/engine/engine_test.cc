// The LATENCY HISTOGRAM steps: each command's duration goes to the step
// Redis's HDR histogram reports it under.
#include "engine/engine.h"

#include <gtest/gtest.h>

namespace larder {
namespace {

TEST(LatencyBucket, StepValuesAreRedisReportedOnes) {
  const int64_t expected[] = {1, 2, 4, 8, 16, 33, 66, 132, 264, 528, 1056};
  for (int k = 0; k < 11; ++k) EXPECT_EQ(LatencyBucketUsec(k), expected[k]) << k;
}

TEST(LatencyBucket, EachDurationGoesToTheFirstStepThatHoldsIt) {
  // Checks the short path for 0 and 1 us against the general rule too.
  for (int64_t d = 0; d <= 1000000; ++d) {
    int k = LatencyBucket(d);
    ASSERT_GE(k, 0);
    ASSERT_LT(k, kLatencyBuckets);
    ASSERT_GE(LatencyBucketUsec(k), d) << d;
    if (k > 0) {
      ASSERT_LT(LatencyBucketUsec(k - 1), d) << d;
    }
  }
  EXPECT_EQ(LatencyBucket(-5), 0);
  EXPECT_EQ(LatencyBucket(5000000), LatencyBucket(1000000));  // capped at 1 s
}

}  // namespace
}  // namespace larder
