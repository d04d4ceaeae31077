// Wall-clock and monotonic time helpers. Expiry times are absolute Unix
// milliseconds, as in Redis (EXPIRETIME returns them unchanged).
#pragma once

#include <cstdint>

namespace larder {

int64_t UnixTimeMs();     // CLOCK_REALTIME in milliseconds
int64_t UnixTimeUs();     // CLOCK_REALTIME in microseconds
int64_t MonotonicUs();    // CLOCK_MONOTONIC in microseconds; for durations only

// A cheap timer for per-command durations (commandstats, slow log): the CPU's
// time-stamp counter where it is invariant (x86-64), else CLOCK_MONOTONIC.
// Ticks() costs a few ns against ~20 ns for clock_gettime; TicksToUs()
// converts a difference, calibrated once at start-up.
int64_t Ticks();
int64_t TicksToUs(int64_t ticks);

}  // namespace larder

namespace larder {

// The time a command sees: fixed while one command runs, so a command that
// checks a TTL twice gets one answer (Redis 7's command time snapshot).
// Per thread; the shard loop refreshes it before each command.
inline thread_local int64_t tl_command_time_ms = 0;
inline int64_t CommandTimeMs() { return tl_command_time_ms; }
inline void RefreshCommandTime() { tl_command_time_ms = UnixTimeMs(); }

}  // namespace larder
