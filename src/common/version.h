// The Redis version Larder reports: INFO's redis_version, HELLO's version,
// Lua's redis.REDIS_VERSION / REDIS_VERSION_NUM. Replies and error texts
// follow Redis 7.0.15 (the reference); the number reported is 7.4.0, the
// version whose features clients gate on and Larder has (hash field TTLs,
// CLIENT TRACKING for redis-py's client-side cache, which refuses a server
// below 7.4.0). The reasoning is in docs/compatibility.md ("Version").
#pragma once

#include <string_view>

namespace larder {

inline constexpr std::string_view kRedisVersion = "7.4.0";
inline constexpr int kRedisVersionNum = 0x070400;  // REDIS_VERSION_NUM: 0x00MMmmpp

}  // namespace larder
