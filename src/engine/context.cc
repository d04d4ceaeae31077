#include "engine/client.h"
#include "engine/command.h"
#include "engine/engine.h"
#include "engine/executor.h"
#include "engine/propagate.h"
#include "shard/shard.h"

namespace larder {

Db& CommandContext::db() { return shard->db(db_index); }

Db& CommandContext::DbFor(std::string_view key) { return DbFor(key, db_index); }

Db& CommandContext::DbFor(std::string_view key, int index) {
  if (scratch) return *scratch;
  if (!exclusive) return shard->db(index);
  // All shards of the command's keys are parked: reach into the owner.
  ShardSet& set = engine->shards();
  return set.shard(set.ShardOf(key)).db(index);
}

ReplyTarget CommandContext::Defer() {
  deferred = true;
  if (target.capture || target.valid()) return target;
  if (call) return TargetFor(*call);
  if (!client) return target;
  return client->pipeline().AddLate();
}

void CommandContext::Propagate(std::span<const std::string_view> a) {
  propagate_custom = true;
  if (propagation) AppendCommand(propagation, a);
}

ClientState& CommandContext::client_state() { return client->state(); }
bool CommandContext::from_loopback() const { return !client || client->state().loopback; }
bool CommandContext::ReplyOverLimit(size_t more) const {
  int64_t hard = engine->config().output_limits[Config::kNormalClient].hard.load(std::memory_order_relaxed);
  return hard > 0 && rb->buffer()->size() + more >= static_cast<size_t>(hard);
}

void CommandContext::ArityError() {
  rb->Error(FormatError(OpStatus::kWrongArity, spec->name));
}

void CommandContext::HelpLines(std::span<const char* const> lines) {
  rb->ArrayHeader(lines.size());
  for (const char* l : lines) rb->SimpleString(l);
}

}  // namespace larder
