// Execute(): the one function that runs a command, whatever brought it:
//
//   inline on the client's thread           (Dispatch, its key is local)
//   in a CommandGroup on the key's shard    (ExecuteGroup, a pipeline's batch)
//   again after its keys loaded             (read-through, Mode::kReplay)
//   a write that waited for its key         (Mode::kLoadedWrite)
//   a blocked command that is served        (BlockingRegistry::ServeReady)
//   an exclusive multi-shard operation      (MSET, RENAME across shards)
//   a fan-out's per-shard part              (DEL, EXISTS across shards)
//   a connection command                    (CLIENT, INFO, CONFIG ...)
//
// and the coming paths (a transaction's EXEC, a script's redis.call, AOF
// replay, a replication stream) will call it too. It does, in order:
//
//   1. the caching rules before the handler: a read of a key that is
//      loading, or a write that needs a missing key's old value, waits
//      (Outcome::kDeferred) and runs again when the cache resumes it; a
//      write-through write runs against a copy and goes to the database;
//   2. the handler (parse args → operation → reply);
//   3. what the command did, as data (Effects): whether it failed, with how
//      many error replies (the reply builder reports each: no reply bytes
//      are inspected), which keys it read and which it wrote;
//   4. what follows from the effects: clients blocked on a written key are
//      served, a CACHE FETCH lease on it ends, a write-behind key's change
//      goes to the journal (the reply waits for it);
//   5. statistics (commandstats, errorstats, latency monitor), the slow log,
//      and the maxmemory accounting of what the command allocated.
//
// Runs on the calling thread: the shard that owns the command's keys (or,
// for connection and fan-out commands, the client's thread).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "engine/command.h"

namespace larder {

class Engine;
class Client;
class Db;
struct CommandGroup;
struct ClientState;

struct Call {
  enum class Mode : uint8_t {
    kNormal,
    kReplay,       // its keys were loaded: no read-through check, no lookup statistics
    kLoadedWrite,  // a write whose key was loaded for it: it does not wait again
    kInternal,     // a part of another command: no cache, no statistics, no slow log
    kAtomic,       // a command of an atomic unit (EXEC, a script's call: engine/atomic.h):
                   // no cache step, statistics and slow log as usual; blocked
                   // clients are served and memory evicted when the unit ends
  };
  Call() = default;
  Call(const CommandSpec* s, std::span<const std::string_view> a, int d, int r) : spec(s), args(a), db(d), resp(r) {}

  const CommandSpec* spec = nullptr;
  std::span<const std::string_view> args;
  int db = 0;
  int resp = 2;
  Mode mode = Mode::kNormal;
  // Who sent it, for the slow log (null for runs with no client at hand).
  const ClientState* origin = nullptr;
  // On the client's thread: the client (connection and fan-out commands,
  // and where an inline command's late reply slot is opened).
  Client* client = nullptr;
  // In a group on another shard: the group and the command's index in it.
  CommandGroup* group = nullptr;
  uint32_t group_index = 0;
  // A run that already has its reply's place (a replay, a queued write).
  ReplyTarget target;
  // The ACL user it runs as when no `origin` says (an exclusive operation
  // keeps its client's user); null with no origin: no restriction.
  const acl::User* user = nullptr;
  // A script's redis.call (SORT orders its unordered results then).
  bool from_script = false;
  // Handler context options.
  bool exclusive = false;
  BlockRequest* block = nullptr;
  Db* scratch = nullptr;
  bool fan_out = false;  // runs spec->fan_out (the coordinator) instead of the handler
  // CLIENT TRACKING: a read whose keys are remembered for the client that
  // sent it (decided on its thread: a group's command, a replay).
  bool track = false;
};

// Keys of a command with the database they are in; `written` per key.
struct KeyRef {
  int db;
  std::string_view key;
  bool written;
};

struct Effects {
  bool failed = false;     // at least one error reply
  uint32_t errors = 0;     // error replies written
  int64_t duration_us = 0;
  int64_t integer = 0;     // the last integer replied (fan-out parts sum it)
  bool deferred = false;   // the reply comes later
  std::span<const std::string_view> args;
  int db = 0;
  const CommandSpec* spec = nullptr;

  // The command's key arguments (computed when first asked: most commands
  // never need the list).
  const KeyPositions& keys() const {
    if (!keys_ready_) {
      keys_ = spec->KeyIndexes(args);
      keys_ready_ = true;
    }
    return keys_;
  }
  size_t key_count() const { return keys().size(); }
  KeyRef key(size_t nth) const {
    return KeyRef{db, args[keys()[nth]], !failed && spec->WritesKey(nth)};
  }

 private:
  mutable KeyPositions keys_;
  mutable bool keys_ready_ = false;
};

enum class Outcome : uint8_t { kReplied, kDeferred };

// Runs `call`; its reply is appended to `out` unless it is deferred (then
// it reaches the client later through Engine::Deliver). `fx`, if given,
// receives the effects.
Outcome Execute(Engine& engine, Shard& shard, const Call& call, std::string* out, Effects* fx = nullptr);

// Where a deferred command's reply goes (opens a late slot for an inline
// command). Invalid when the call has no client to answer.
ReplyTarget TargetFor(const Call& call);

}  // namespace larder
