// Helpers for commands that run on the client's thread and gather from
// several shards before replying (DBSIZE, KEYS, INFO, DEL across shards...).
// Each defers the command's reply (CommandContext::Defer), starts the work,
// and delivers the reply through Engine::Deliver when every shard has
// answered; if the client went away meanwhile the reply is dropped.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/clock.h"
#include "engine/client_state.h"
#include "engine/command.h"
#include "engine/engine.h"
#include "shard/shard.h"

namespace larder {

// The reply of a command that finishes on other shards, and its bookkeeping:
// the time the shards spent on it counts in commandstats, the latency
// monitor and the slow log (with the whole command line and the client's
// address and name, kept from when it started), as if it had run in place.
// Made on the client's thread (it defers the command); Timed() on any shard;
// Finish() on the client's thread.
class DeferredReply {
 public:
  explicit DeferredReply(CommandContext& ctx);
  template <typename F>
  void Timed(F&& fn) {
    int64_t t0 = Ticks();
    fn();
    work_ticks_.fetch_add(Ticks() - t0, std::memory_order_relaxed);
  }
  int resp() const { return resp_; }
  // Records the command's time and delivers `reply`.
  void Finish(std::string reply);

 private:
  Engine* engine_;
  const CommandSpec* spec_;
  ReplyTarget target_;
  int resp_;
  std::vector<std::string> args_;
  ClientState origin_;  // addr and name, for the slow log
  std::atomic<int64_t> work_ticks_{0};
};

// Runs per_shard(shard) on every shard (each result stored at its shard's
// index), then reply(results, rb) on the client's thread.
template <typename T>
void GatherAll(CommandContext& ctx, std::function<T(Shard&)> per_shard,
               std::function<void(std::vector<T>&, resp::ReplyBuilder&)> reply) {
  ShardSet& set = ctx.engine->shards();
  auto results = std::make_shared<std::vector<T>>(static_cast<size_t>(set.size()));
  auto done = std::make_shared<DeferredReply>(ctx);
  set.FanOutAll(
      [results, done, per_shard = std::move(per_shard)](Shard& s) {
        done->Timed([&] { (*results)[static_cast<size_t>(s.id())] = per_shard(s); });
      },
      [results, done, reply = std::move(reply)] {
        std::string out;
        resp::ReplyBuilder rb(&out, done->resp());
        reply(*results, rb);
        done->Finish(std::move(out));
      });
}

// Runs fn(shard) on the listed shards, then reply(rb) on the client's thread.
void GatherFrom(CommandContext& ctx, const std::vector<int>& shards, std::function<void(Shard&)> per_shard,
                std::function<void(resp::ReplyBuilder&)> reply);

// Runs fn(rb) with every shard parked (atomic over the whole keyspace), then
// delivers what it wrote to the client.
void ExclusiveAll(CommandContext& ctx, std::function<void(resp::ReplyBuilder&)> fn);

// For commands that reply one integer per key subset (DEL, EXISTS, TOUCH,
// UNLINK): runs the command on each shard with its keys, sums the results.
void IntegerSumFanOut(CommandContext& ctx);

}  // namespace larder
