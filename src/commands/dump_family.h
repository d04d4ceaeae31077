// What the DUMP/MIGRATE family tells INFO.
#pragma once

#include <cstddef>

namespace larder {

// INFO's migrate_cached_sockets: the connections MIGRATE keeps open to its
// targets (those idle for 10 s are closed first). Any thread.
size_t MigrateCachedSockets();

}  // namespace larder
