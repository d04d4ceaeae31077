// The propagation stream: what each write command changed, as the commands
// Redis 7.0 would propagate, in one order every consumer reads (the AOF
// file writer now, a replication backlog later).
//
//   Execute (any shard thread), after a write that succeeded
//     ──► PropagateCommand: the command line as sent, or what the handler
//         said it is logged as (ctx.Propagate: EXPIRE → PEXPIREAT, SPOP →
//         SREM, XADD * → the ID made...)
//     ──► inside an atomic unit (EXEC, a script): kept in the unit, which
//         emits them when it ends, in MULTI/EXEC when more than one
//     ──► Propagation::Emit: under the stream's lock, SELECT when the
//         sink's database changes, then each sink's Feed
//
// Order: a shard's writes reach the stream in the order they ran (one
// thread); an exclusive operation (MSET across shards, FLUSHALL, a unit over
// several shards) emits while the shards it touches are parked, so after
// all they wrote before and before all they write after; writes of
// different shards in between touch different keys and may interleave in
// any order. One lock (not per-shard buffers merged later) keeps that order
// by construction; it costs a lock per write with a sink attached, nothing
// without one (Executor: one relaxed load and one predictable branch).
#pragma once

#include <atomic>
#include <initializer_list>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace larder {

class Engine;
struct Call;
struct CommandContext;
struct Effects;

// Appends one command in RESP (an array of bulk strings), as the AOF holds it.
void AppendCommand(std::string* out, std::span<const std::string_view> args);
void AppendCommand(std::string* out, std::initializer_list<std::string_view> args);

// A consumer of the stream. Feed runs under the stream's lock (keep it short:
// append to a buffer). `db` is the database the next command runs in as the
// sink last saw it: the stream writes SELECT when the next one differs.
class PropagationSink {
 public:
  virtual ~PropagationSink() = default;
  virtual void Feed(std::string_view bytes) = 0;
  int db = -1;  // -1: the next command starts with SELECT (a new file)
};

// One propagated command: its database and its RESP bytes (possibly several
// commands of the same database).
struct PropagatedOp {
  int db;
  std::string bytes;
};

class Propagation {
 public:
  // Whether any sink is attached: commands are propagated only then.
  bool on() const { return on_.load(std::memory_order_relaxed); }
  void Attach(PropagationSink* sink);
  void Detach(PropagationSink* sink);

  // Any thread: commands of database `db`, to every sink in one step.
  void Emit(int db, std::string_view bytes);
  // A unit's commands: in MULTI ... EXEC when there are several (Redis 7.0
  // wraps only then: a transaction with one write is logged as that write).
  void EmitUnit(std::span<const PropagatedOp> ops);
  // A key that expired or was evicted: DEL key (Redis 7.0 with lazyfree-lazy-* no).
  void EmitDel(int db, std::string_view key);

  // Runs `fn` under the stream's lock (a new incremental file opens there,
  // so no command falls between two files).
  template <typename F>
  void Locked(F&& fn) {
    std::lock_guard<std::mutex> g(mu_);
    fn();
  }

 private:
  void FeedLocked(int db, std::string_view bytes);
  std::mutex mu_;
  std::vector<PropagationSink*> sinks_;
  std::atomic<bool> on_{false};
};

// After a command ran (executor.cc, only while Propagation::on()): what it
// wrote goes to the stream, or to the atomic unit it runs in.
// `replied`: the handler wrote a reply (a served blocking command that found
// nothing writes none, and changed nothing).
void PropagateCommand(Engine& engine, const Call& call, const CommandContext& ctx, const Effects& fx,
                      bool replied);

}  // namespace larder
