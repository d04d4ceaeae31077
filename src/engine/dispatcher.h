// Dispatch(): every check a command passes once before it runs, and where it
// runs — Redis's processCommand().
//
//   lookup (command, then subcommand) → arity → authentication → ACL → CLIENT
//   PAUSE → maxmemory (deny-oom commands) → MONITOR feed → route:
//     connection command         → Execute on the client's thread
//     one shard, this one        → Execute inline
//     one shard, another         → the batch's group for that shard
//     blocking                   → first try on the keys' shard, then wait
//     several shards             → fan-out coordinator, or an exclusive
//                                  operation over the shards involved
//
// Later checks (cluster redirects, MULTI queueing, pub/sub mode) sit
// here too. Runs on the client's thread.
#pragma once

#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "engine/command.h"

namespace larder {

class Client;
class Engine;
struct Waiter;

enum class DispatchResult {
  kDone,        // answered, or its reply has a place in the batch
  kStop,        // runs alone and answers later: no command after it runs before
  kRetryLater,  // not started: it needs the open batch to complete first (or
                // the client is paused); the same command is dispatched again
};

DispatchResult Dispatch(Client& client, std::vector<std::string_view>& args);

namespace acl {
enum class Denial : uint8_t;
}
// Adds an ACL LOG entry for a refusal to `client` (a command, key or
// channel its user may not use, or a failed AUTH as `username`).
void LogAclDenial(Client& client, acl::Denial reason, std::string object, std::string username);

// Dispatch's first checks, for callers without a Client too (the command
// test fixture): the command a request line names (lookup, subcommand,
// arity). Null when refused, with the error line in *error; *rejected is the
// command refused for its arity (it counts in rejected_calls), else null.
const CommandSpec* ResolveCommand(std::span<const std::string_view> argv, std::string* error,
                                  const CommandSpec** rejected);

// The routes of a command whose keys are on several shards, and of a
// blocking command, for a caller whose reply's place is already open
// (`target`, `w->target`): Dispatch uses them with a client's late slot,
// callers without a Client with a target of their own (the command test
// fixture). Run on the caller's shard thread.
//
// Exclusive: the command runs once, with every shard in `shards` parked, as
// `user` (null: no ACL restriction; see CommandContext::user). `origin`:
// a copy of a tracking client's state (CLIENT TRACKING: its id and
// settings, for the reads it tracks and NOLOOP), else null.
void StartExclusive(Engine* engine, const CommandSpec* spec, std::span<const std::string_view> args, int db,
                    int resp, std::vector<int> shards, ReplyTarget target,
                    std::shared_ptr<const acl::User> user = nullptr,
                    std::shared_ptr<const ClientState> origin = nullptr);
// Blocking: the first attempt runs where the keys live (exclusive when
// they span shards); finding no data it registers the waiter there in the
// same step, so no push can slip between. `w` carries the command, the
// caller's shard and id, and the target.
void StartBlocking(Engine* engine, std::shared_ptr<Waiter> w, std::vector<int> shards);

}  // namespace larder
