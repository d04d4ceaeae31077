// libFuzzer target: the JSON a client SETs on an `as json` write rule's key,
// split into the members a store statement binds (cache/json_row.h).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "cache/json_row.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  std::vector<std::pair<std::string, std::optional<std::string>>> members;
  if (larder::cache::JsonObjectMembers(in, &members)) {
    // What parsed writes back as JSON strings that parse again.
    std::string out = "{";
    for (size_t i = 0; i < members.size(); ++i) {
      if (i) out.push_back(',');
      larder::cache::AppendJsonString(&out, members[i].first);
      out += ":";
      if (members[i].second) larder::cache::AppendJsonString(&out, *members[i].second);
      else out += "null";
    }
    out += "}";
    std::vector<std::pair<std::string, std::optional<std::string>>> again;
    if (!larder::cache::JsonObjectMembers(out, &again) || again.size() != members.size()) __builtin_trap();
  }
  return 0;
}
