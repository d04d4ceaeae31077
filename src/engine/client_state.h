// What the server knows about one client connection (CLIENT LIST fields,
// selected database, protocol, authentication). Owned by its Connection and
// touched only on the connection's shard thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace larder {

namespace acl {
struct User;
}
struct CommandSpec;
struct Subscriptions;
struct WatchSet;

// Between MULTI and EXEC/DISCARD: the commands queued, and whether one was
// refused while queueing (EXEC then answers EXECABORT).
struct MultiState {
  struct Queued {
    const CommandSpec* spec;
    std::vector<std::string> args;
  };
  std::vector<Queued> cmds;
  uint32_t flags = 0;  // the queued commands' flags, or-ed (EXEC's OOM and pause checks)
  size_t bytes = 0;    // their arguments' size (bounded by client-query-buffer-limit)
  bool error = false;
};

// CLIENT TRACKING settings of a client while tracking is on (tracking.h).
struct TrackingState {
  int shard = 0;            // the client's shard (where invalidations go)
  uint64_t redirect = 0;    // REDIRECT id, or 0
  bool bcast = false, optin = false, optout = false, noloop = false;
  bool caching = false;       // CLIENT CACHING yes/no given for the next command
  bool caching_used = false;  // ... and used: cleared before the next one
  bool broken_redirect = false;
  bool track_current = false;  // the command being dispatched has its reads remembered
  std::vector<std::string> prefixes;  // BCAST prefixes, sorted
};

struct ClientState {
  uint64_t id = 0;
  int fd = -1;
  std::string addr;    // "ip:port" of the peer
  std::string laddr;   // "ip:port" of our socket
  bool loopback = false;  // from 127.0.0.1 or ::1 (protected mode, "local" settings)
  std::string name;
  int db = 0;
  int resp = 2;
  bool authenticated = false;
  // The ACL user (the default one until AUTH) as it was at `acl_epoch`;
  // Dispatch takes it again by name when the users changed since.
  // `acl_fast` is acl_epoch when that user may run everything, else 0: the
  // whole check of a command is then acl_fast == the store's epoch.
  std::shared_ptr<const acl::User> user;
  uint64_t acl_epoch = 0;
  uint64_t acl_fast = 0;
  bool monitor = false;
  // Channels, patterns and shard channels subscribed (RESP2 subscribed
  // mode while non-zero; CLIENT LIST sub=/psub=/ssub=).
  uint32_t subscriptions = 0, psubscriptions = 0, ssubscriptions = 0;
  uint32_t all_subscriptions = 0;  // their sum (one load on every command's path)
  bool subscribed() const { return all_subscriptions != 0; }
  std::shared_ptr<Subscriptions> subs;  // their names (engine/pubsub.h), from the first SUBSCRIBE
  bool no_evict = false;
  std::unique_ptr<TrackingState> tracking;  // set while CLIENT TRACKING is on
  // CLIENT REPLY: on, off, or skip the next command's reply.
  enum class ReplyMode : uint8_t { kOn, kOff, kSkipNext };
  ReplyMode reply_mode = ReplyMode::kOn;
  int64_t created_ms = 0;
  int64_t last_interaction_ms = 0;
  const struct CommandSpec* last_cmd = nullptr;  // for CLIENT LIST's cmd=
  uint64_t commands = 0;
  std::unique_ptr<MultiState> multi;   // set between MULTI and EXEC/DISCARD
  std::shared_ptr<WatchSet> watch;     // WATCHed keys, until EXEC/DISCARD/UNWATCH
  uint64_t input_bytes = 0;
  uint64_t output_bytes = 0;
};

}  // namespace larder
