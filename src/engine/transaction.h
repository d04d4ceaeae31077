// MULTI/EXEC/WATCH, the parts the dispatcher and the client need (the
// commands themselves are in commands/transaction_family.cc):
//
//   MULTI      → ClientState::multi is set; from then on Dispatch queues
//                every command not flagged kCmdNotQueued (QueueCommand,
//                after the same checks as ever: a refusal flags the
//                transaction, EXEC then answers EXECABORT) and answers QUEUED
//   EXEC       → one atomic unit (engine/atomic.h) holding the shards of
//                the queued commands' keys and of the watched keys
//   WATCH key  → the key is registered on its shard (engine/watch.h)
#pragma once

#include <memory>
#include <span>
#include <string_view>

#include "engine/command.h"
#include "engine/dispatcher.h"

namespace larder {

class Client;
class Engine;
struct ClientState;
struct WatchSet;

// Queues a command between MULTI and EXEC and answers QUEUED; a write of a
// write-through or write-behind key is refused instead (see
// docs/compatibility.md: those keys are written by their rule, one command
// at a time).
DispatchResult QueueCommand(Client& client, const CommandSpec* spec, std::span<const std::string_view> argv);

// The first key of a write command that a write-through or write-behind
// rule owns, or null.
const std::string_view* WriteRuleKey(Engine& engine, const CommandSpec* spec, std::span<const std::string_view> argv);

// Forgets the client's watched keys on their shards (UNWATCH, EXEC,
// DISCARD, disconnect). From the client's thread.
void ReleaseWatch(Engine* engine, std::shared_ptr<WatchSet> set);
// Ends MULTI (if any) and releases the watched keys.
void DiscardTransaction(Engine* engine, ClientState& state);

}  // namespace larder
