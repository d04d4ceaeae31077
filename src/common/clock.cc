#include "common/clock.h"

#include <time.h>

namespace larder {

static int64_t Read(clockid_t id, int64_t div) {
  timespec ts;
  clock_gettime(id, &ts);
  return ts.tv_sec * (1000000000LL / div) + ts.tv_nsec / div;
}

int64_t UnixTimeMs() { return Read(CLOCK_REALTIME, 1000000); }
int64_t UnixTimeUs() { return Read(CLOCK_REALTIME, 1000); }
int64_t MonotonicUs() { return Read(CLOCK_MONOTONIC, 1000); }

}  // namespace larder
