// What DEBUG (server_family.cc) borrows from the persistence commands.
#pragma once

#include "engine/command.h"

namespace larder {

// DEBUG RELOAD [MERGE] [NOFLUSH] [NOSAVE]: save, empty the keyspace, load the file.
void DebugReload(CommandContext& ctx);

}  // namespace larder
