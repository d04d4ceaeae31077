// Atomic units: several commands that no other client observes in part, as
// one step — a transaction's EXEC and a script (EVAL, FCALL).
//
// A unit runs with the shards of its keys *held*: a unit whose keys are all
// on one shard runs on that shard's thread (the other shards go on); one
// whose keys span shards runs as an exclusive operation (ShardSet::
// RunExclusive) with each of those shards parked; one that needs the whole
// server (connection commands, commands without keys, a script that reaches
// keys it did not declare on a shard it does not hold) holds every shard.
//
// Inside, `AtomicScope::Call` runs one command line through Execute (in
// Mode::kAtomic: no read-through wait — EXEC loads its reads before the
// unit, engine/preload.h — no write-behind hold, statistics and the slow
// log as for any call) on the shard that owns its keys; work that
// would go to other shards (a fan-out, an exclusive operation) runs inline
// because those shards are held too. What follows from the writes (blocked
// clients served, eviction) happens once, when the unit ends.
//
//   EXEC:  Dispatch (client's thread) → RunAtomic(shards of the queued keys)
//          → on the holding thread: each queued command via scope.Call →
//          the array of replies delivered to the client's late slot
//   EVAL:  routed like any keyed command by its declared keys → the handler
//          runs on the keys' shard (or exclusive) → AtomicScope::Here(ctx)
//          → redis.call → scope.Call; a key on a shard not held →
//          kNotHeld → the script stops, its writes are undone, and it runs
//          again holding every shard (RunAtomic with no shard list)
#pragma once

#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "engine/command.h"
#include "engine/executor.h"
#include "engine/propagate.h"

namespace larder {

class Client;
class Engine;
struct ClientState;
namespace acl {
struct User;
}

class AtomicScope {
 public:
  enum class CallResult : uint8_t {
    kOk,       // ran; its reply is in *out
    kNotHeld,  // a key lives on a shard this unit does not hold: nothing ran
    kRefused,  // a write of a write-through/write-behind key: nothing ran, the
               // error is in *out (a script stops and rolls back)
  };

  // A scope over what the running handler already holds: its own shard, or
  // with ctx.exclusive the shards of its keys. For a script's handler.
  static std::unique_ptr<AtomicScope> Here(CommandContext& ctx);

  ~AtomicScope();
  AtomicScope(const AtomicScope&) = delete;
  AtomicScope& operator=(const AtomicScope&) = delete;

  Engine& engine() const { return *engine_; }
  bool Holds(int shard) const;
  bool holds_all() const { return all_; }
  // The client whose unit this is, when its shard is held and it is known
  // (EXEC); connection commands run against it. Null for a script.
  Client* client() const { return client_; }
  // EXEC: the client, found again once its shard is held (it may have gone).
  void set_client(Client* c) { client_ = c; }
  // Who the unit's commands are from, for the slow log (EXEC: the client's
  // address and name), and how MONITOR names them ("lua" for a script, as
  // Redis; the client's address for EXEC).
  void set_origin(const ClientState* origin) { origin_ = origin; }
  void set_monitor_name(std::string name) { monitor_name_ = std::move(name); }
  // The unit is a script: its calls carry Call::from_script.
  void set_script(bool on) { script_ = on; }

  // Runs one command line now and appends its reply (RESP `resp`) to *out.
  // `spec` is the resolved command (or subcommand) for argv. `origin`
  // names the client for the slow log. fx, if given, gets the effects.
  CallResult Call(const CommandSpec* spec, std::span<const std::string_view> argv, int db, int resp,
                  std::string* out, Effects* fx = nullptr);

  // Undo: from now on the scope keeps the state before the unit of every key
  // a write command is about to change; Rollback() puts them back (a script
  // that must run again holding more shards). Off by default (EXEC needs
  // none: its keys are known before it starts).
  void EnableUndo() { undo_enabled_ = true; }
  void Rollback();
  // Whether any write command ran (successfully or not) in this unit.
  bool wrote() const { return wrote_; }

  // The keys written so far, for what follows the unit (blocked clients,
  // WATCH). Called by RunAtomic and by a handler that used Here().
  void Finish();

  struct Undo;  // one key's state before the unit (atomic.cc)

  // Propagation (engine/propagate.h): a command of the unit that wrote, as
  // it is logged. The outermost unit emits them all when it finishes (in
  // MULTI/EXEC when more than one); Rollback() drops them with the writes.
  void AddPropagated(int db, std::string_view bytes);

 private:
  friend void RunAtomic(Engine*, std::vector<int>, Client*, std::function<bool(AtomicScope&, std::string*)>,
                        ReplyTarget);
  friend void RunAtomicHere(Engine*, Client*, const std::function<bool(AtomicScope&, std::string*)>&,
                            std::string*);
  AtomicScope(Engine* engine, std::vector<int> held, bool all, Client* client);
  // The shard that owns argv's keys, or -1 (no keys), or -2 (not held).
  int OwnerOf(const CommandSpec* spec, std::span<const std::string_view> argv, KeyPositions* keys) const;

  Engine* engine_;
  std::vector<int> held_;  // sorted
  bool all_;
  Client* client_;
  bool undo_enabled_ = false;
  bool wrote_ = false;
  std::vector<Undo> undo_;
  std::vector<int> touched_;  // shards whose keys were written
  std::string capture_;       // replies of work that finishes "later" inline
  std::vector<char> mask_;    // held, by shard id (ShardSet::SetHeld)
  const ClientState* origin_ = nullptr;
  const acl::User* user_ = nullptr;  // a script's caller (its handler's ctx.user)
  std::string monitor_name_ = "lua";
  bool script_ = false;
  AtomicScope* outer_ = nullptr;  // the unit this one runs inside (a script in EXEC)
  const std::vector<char>* prev_held_ = nullptr;
  std::string* prev_capture_ = nullptr;
  std::vector<PropagatedOp> propagated_;
};

// The same, at once on this thread, for a unit that needs only this shard
// (an EXEC whose keys are all here): what `body` writes goes to *out.
// `body` must not ask to run again.
void RunAtomicHere(Engine* engine, Client* client, const std::function<bool(AtomicScope&, std::string* out)>& body,
                   std::string* out);

// The unit running on this thread, or null.
AtomicScope* CurrentAtomicScope();

// The capture of the unit running on this thread (Engine::Deliver appends a
// reply whose target names it; any other capture is gone: dropped).
std::string* ActiveCapture();

// Runs `body` as one atomic unit holding `shards` (empty: every shard) and
// delivers what it wrote to `target`. `body` returns true when done, false to
// run again holding every shard (its scope's writes are rolled back first).
// `client` (may be null) is the client of an EXEC; it must live on a held
// shard. Call from a shard thread.
void RunAtomic(Engine* engine, std::vector<int> shards, Client* client,
               std::function<bool(AtomicScope&, std::string* out)> body, ReplyTarget target);

}  // namespace larder
