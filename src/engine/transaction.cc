#include "engine/transaction.h"

#include "cache/shard_cache.h"
#include "engine/client.h"
#include "engine/engine.h"
#include "engine/watch.h"
#include "shard/shard.h"

namespace larder {

const std::string_view* WriteRuleKey(Engine& engine, const CommandSpec* spec,
                                     std::span<const std::string_view> argv) {
  if (!(spec->flags & kCmdWrite) || !engine.cache().active()) return nullptr;
  cache::ShardCache* sc = cache::CurrentShardCache();
  if (!sc) return nullptr;
  KeyPositions keys = spec->KeyIndexes(argv);
  for (size_t n = 0; n < keys.size(); ++n)
    if (spec->WritesKey(n) && sc->IsWriteKey(argv[keys[n]])) return &argv[keys[n]];
  return nullptr;
}

DispatchResult QueueCommand(Client& client, const CommandSpec* spec, std::span<const std::string_view> argv) {
  ClientState& state = client.state();
  MultiState& m = *state.multi;
  Engine& engine = *client.engine();
  if (const std::string_view* key = WriteRuleKey(engine, spec, argv)) [[unlikely]] {
    client.ReplyError(FormatError(OpStatus::kAtomicWriteRuleKey, *key));
    m.error = true;
    return DispatchResult::kDone;
  }
  size_t bytes = sizeof(MultiState::Queued);
  for (std::string_view a : argv) bytes += a.size() + sizeof(std::string);
  // Queued commands are client memory as the input buffer is: bounded by
  // the same limit.
  auto limit = static_cast<size_t>(engine.config().client_query_buffer_limit.load(std::memory_order_relaxed));
  if (m.bytes + bytes > limit) {
    client.ReplyError(FormatError(OpStatus::kMultiQueueLimit));
    m.error = true;
    return DispatchResult::kDone;
  }
  m.bytes += bytes;
  m.flags |= spec->flags;
  m.cmds.push_back(MultiState::Queued{spec, std::vector<std::string>(argv.begin(), argv.end())});
  state.last_cmd = spec;
  client.ReplyRaw("+QUEUED\r\n");
  return DispatchResult::kDone;
}

void ReleaseWatch(Engine* engine, std::shared_ptr<WatchSet> set) {
  if (!set) return;
  ShardSet& shards = engine->shards();
  std::vector<char> sent(static_cast<size_t>(shards.size()), 0);
  for (const WatchedKey& k : set->keys) {
    if (sent[static_cast<size_t>(k.shard)]) continue;
    sent[static_cast<size_t>(k.shard)] = 1;
    int s = k.shard;
    shards.Send(s, [engine, s, set] { engine->local(s).watches.Remove(set.get()); });
  }
}

void DiscardTransaction(Engine* engine, ClientState& state) {
  state.multi.reset();
  if (state.watch) ReleaseWatch(engine, std::move(state.watch));
  state.watch.reset();
}

}  // namespace larder
