#include "common/clock.h"

#include <time.h>

namespace larder {

static int64_t Read(clockid_t id, int64_t div) {
  timespec ts;
  clock_gettime(id, &ts);
  return ts.tv_sec * (1000000000LL / div) + ts.tv_nsec / div;
}

#if defined(__x86_64__)
namespace {
// Cycles per microsecond, measured against CLOCK_MONOTONIC over ~5 ms.
double CalibrateTicksPerUs() {
  int64_t t0 = Read(CLOCK_MONOTONIC, 1000);
  uint64_t c0 = __builtin_ia32_rdtsc();
  int64_t t1;
  do {
    t1 = Read(CLOCK_MONOTONIC, 1000);
  } while (t1 - t0 < 5000);
  uint64_t c1 = __builtin_ia32_rdtsc();
  double r = static_cast<double>(c1 - c0) / static_cast<double>(t1 - t0);
  return r > 0 ? r : 1.0;
}
const double kTicksPerUs = CalibrateTicksPerUs();
}  // namespace

int64_t Ticks() { return static_cast<int64_t>(__builtin_ia32_rdtsc()); }
int64_t TicksToUs(int64_t ticks) { return static_cast<int64_t>(static_cast<double>(ticks) / kTicksPerUs); }
#else
int64_t Ticks() { return Read(CLOCK_MONOTONIC, 1000); }
int64_t TicksToUs(int64_t ticks) { return ticks; }
#endif

int64_t UnixTimeMs() { return Read(CLOCK_REALTIME, 1000000); }
int64_t UnixTimeUs() { return Read(CLOCK_REALTIME, 1000); }
int64_t MonotonicUs() { return Read(CLOCK_MONOTONIC, 1000); }

}  // namespace larder
