#include "engine/propagate.h"

#include <algorithm>

#include "engine/atomic.h"
#include "engine/command.h"
#include "engine/engine.h"
#include "engine/executor.h"
#include "resp/reply_builder.h"

namespace larder {

// The AOF holds commands as a client sends them: an array of bulk strings,
// which is what the reply builder writes for RESP2.
void AppendCommand(std::string* out, std::span<const std::string_view> args) {
  resp::ReplyBuilder rb(out, 2);
  rb.ArrayHeader(args.size());
  for (std::string_view a : args) rb.Bulk(a);
}

void AppendCommand(std::string* out, std::initializer_list<std::string_view> args) {
  AppendCommand(out, std::span<const std::string_view>(args.begin(), args.size()));
}

void Propagation::Attach(PropagationSink* sink) {
  std::lock_guard<std::mutex> g(mu_);
  if (std::find(sinks_.begin(), sinks_.end(), sink) == sinks_.end()) sinks_.push_back(sink);
  on_.store(true, std::memory_order_relaxed);
}

void Propagation::Detach(PropagationSink* sink) {
  std::lock_guard<std::mutex> g(mu_);
  std::erase(sinks_, sink);
  on_.store(!sinks_.empty(), std::memory_order_relaxed);
}

void Propagation::FeedLocked(int db, std::string_view bytes) {
  for (PropagationSink* s : sinks_) {
    if (s->db != db) {
      std::string select;
      std::string n = std::to_string(db);
      AppendCommand(&select, {"SELECT", n});
      s->Feed(select);
      s->db = db;
    }
    s->Feed(bytes);
  }
}

void Propagation::Emit(int db, std::string_view bytes) {
  if (bytes.empty()) return;
  std::lock_guard<std::mutex> g(mu_);
  FeedLocked(db, bytes);
}

void Propagation::EmitUnit(std::span<const PropagatedOp> ops) {
  if (ops.empty()) return;
  std::lock_guard<std::mutex> g(mu_);
  bool wrap = ops.size() > 1;
  if (wrap) {
    std::string multi;
    AppendCommand(&multi, {"MULTI"});
    FeedLocked(ops.front().db, multi);
  }
  for (const PropagatedOp& op : ops) FeedLocked(op.db, op.bytes);
  if (wrap) {
    std::string exec;
    AppendCommand(&exec, {"EXEC"});
    FeedLocked(ops.back().db, exec);
  }
}

void Propagation::EmitDel(int db, std::string_view key) {
  std::string del;
  AppendCommand(&del, {"DEL", key});
  Emit(db, del);
}

void PropagateCommand(Engine& engine, const Call& call, const CommandContext& ctx, const Effects& fx,
                      bool replied) {
  if (call.scratch || call.fan_out) return;  // a write-through trial run; a fan-out's parts log themselves
  if (ctx.block && ctx.block->wants_block) return;  // blocked: nothing changed yet
  if (fx.failed) return;
  // A write that finishes later (FLUSHALL...: ExclusiveAll) logs itself
  // where it runs; a command that wrote no reply (a blocking command served
  // with nothing to take) did nothing.
  if (ctx.deferred || !replied) return;
  std::string plain;
  const std::string* bytes = ctx.propagation;
  if (!ctx.propagate_custom) {
    if (!(call.spec->flags & kCmdWrite)) return;
    AppendCommand(&plain, call.args);
    bytes = &plain;
  }
  if (bytes->empty()) return;
  if (call.mode == Call::Mode::kAtomic) {
    if (AtomicScope* unit = CurrentAtomicScope()) {
      unit->AddPropagated(call.db, *bytes);
      return;
    }
  }
  engine.propagation().Emit(call.db, *bytes);
}

}  // namespace larder
