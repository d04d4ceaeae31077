#include "engine/notify.h"

#include "engine/command.h"
#include "engine/engine.h"

namespace larder {

void NotifyKeyspaceEvent(CommandContext& ctx, uint32_t cls, std::string_view event, std::string_view key) {
  NotifyKeyspaceEvent(*ctx.engine, ctx.db_index, cls, event, key);
}

void NotifyKeyspaceEvent(Engine&, int, uint32_t, std::string_view, std::string_view) {
  // Delivered once pub/sub lands (engine/pubsub.h).
}

}  // namespace larder
