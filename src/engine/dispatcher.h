// Dispatch(): every check a command passes once before it runs, and where it
// runs — Redis's processCommand().
//
//   lookup (command, then subcommand) → arity → authentication → CLIENT
//   PAUSE → maxmemory (deny-oom commands) → MONITOR feed → route:
//     connection command         → Execute on the client's thread
//     one shard, this one        → Execute inline
//     one shard, another         → the batch's group for that shard
//     blocking                   → first try on the keys' shard, then wait
//     several shards             → fan-out coordinator, or an exclusive
//                                  operation over the shards involved
//
// Later checks (ACL, cluster redirects, MULTI queueing, pub/sub mode) sit
// here too. Runs on the client's thread.
#pragma once

#include <string_view>
#include <vector>

namespace larder {

class Client;

enum class DispatchResult {
  kDone,        // answered, or its reply has a place in the batch
  kStop,        // runs alone and answers later: no command after it runs before
  kRetryLater,  // not started: it needs the open batch to complete first (or
                // the client is paused); the same command is dispatched again
};

DispatchResult Dispatch(Client& client, std::vector<std::string_view>& args);

}  // namespace larder
