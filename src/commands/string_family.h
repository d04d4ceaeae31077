// Helpers shared by families that write string values.
#pragma once

#include <string_view>

#include "keyspace/entry.h"

namespace larder {

// Parses the expire argument of SET/SETEX/GETEX...; unit_ms is 1 or 1000;
// relative adds the command time. Writes the error reply itself on failure.
struct CommandContext;
bool ParseExpireArg(CommandContext& ctx, std::string_view arg, int64_t unit_ms, bool relative,
                    int64_t* out_ms);

}  // namespace larder
