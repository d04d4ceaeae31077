// Helpers for commands that run on the client's thread and gather from
// several shards before replying (DBSIZE, KEYS, INFO, DEL across shards...).
// Each defers the command's reply (CommandContext::Defer), starts the work,
// and delivers the reply through Engine::Deliver when every shard has
// answered; if the client went away meanwhile the reply is dropped.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine/command.h"
#include "engine/engine.h"
#include "shard/shard.h"

namespace larder {

// Runs per_shard(shard) on every shard (each result stored at its shard's
// index), then reply(results, rb) on the client's thread.
template <typename T>
void GatherAll(CommandContext& ctx, std::function<T(Shard&)> per_shard,
               std::function<void(std::vector<T>&, resp::ReplyBuilder&)> reply) {
  ShardSet& set = ctx.engine->shards();
  auto results = std::make_shared<std::vector<T>>(static_cast<size_t>(set.size()));
  Engine* engine = ctx.engine;
  int resp = ctx.rb->protocol();
  ReplyTarget target = ctx.Defer();
  set.FanOutAll(
      [results, per_shard = std::move(per_shard)](Shard& s) {
        (*results)[static_cast<size_t>(s.id())] = per_shard(s);
      },
      [results, reply = std::move(reply), engine, target, resp] {
        std::string out;
        resp::ReplyBuilder rb(&out, resp);
        reply(*results, rb);
        engine->Deliver(target, std::move(out));
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
