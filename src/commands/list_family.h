// Pieces of the list family that the blocking commands reuse.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "engine/command.h"
#include "keyspace/list_value.h"

namespace larder {

class Config;

// A new, empty list with the configured node size and compression depth.
ListValue* NewList(const Config& c);

// Removes up to `count` elements from one end.
std::vector<std::string> PopElements(ListValue* l, bool left, size_t count);

// Arguments of LMPOP/BLMPOP from the numkeys argument on.
struct LMPopRequest {
  std::vector<std::string_view> keys;
  bool left = true;
  int64_t count = 1;
  bool has_count = false;
};
// Parses "numkeys key... LEFT|RIGHT [COUNT n]" at args[numkeys_pos]; writes the
// error reply and returns false on bad input.
bool ParseLMPop(CommandContext& ctx, size_t numkeys_pos, LMPopRequest* req);
// Pops from the first non-empty list and writes [key, [elements]]. Returns
// false (nothing written) if every list is empty; true if it replied
// (including WRONGTYPE).
bool ServeLMPop(CommandContext& ctx, const LMPopRequest& req);


}  // namespace larder
