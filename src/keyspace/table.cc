#include "keyspace/table.h"

#include <xxhash.h>

namespace larder {

uint64_t HashKey(std::string_view key) { return XXH3_64bits(key.data(), key.size()); }

}  // namespace larder
