// Helpers for commands that run on the client's thread and gather from
// several shards before replying (DBSIZE, KEYS, INFO, DEL across shards...).
// Each starts the work, marks the client as waiting, and delivers the reply on
// the client's thread when every shard has answered; if the client went away
// meanwhile the reply is dropped.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine/command.h"
#include "server/connection.h"
#include "server/server.h"
#include "shard/shard.h"

namespace larder {

// Runs per_shard(shard) on every shard (each result stored at its shard's
// index), then reply(results, rb) on the client's thread.
template <typename T>
void GatherAll(CommandContext& ctx, std::function<T(Shard&)> per_shard,
               std::function<void(std::vector<T>&, resp::ReplyBuilder&)> reply) {
  ShardSet& set = ctx.server->shards();
  auto results = std::make_shared<std::vector<T>>(static_cast<size_t>(set.size()));
  Server* server = ctx.server;
  int self = ctx.shard->id();
  uint64_t client = ctx.conn->state().id;
  int resp = ctx.conn->state().resp;
  ctx.conn->BeginAsync();
  set.FanOutAll(
      [results, per_shard = std::move(per_shard)](Shard& s) {
        (*results)[static_cast<size_t>(s.id())] = per_shard(s);
      },
      [results, reply = std::move(reply), server, self, client, resp] {
        std::string out;
        resp::ReplyBuilder rb(&out, resp);
        reply(*results, rb);
        Connection::FinishAsyncFor(server, self, client, std::move(out));
      });
}

// Runs fn(rb) with every shard parked (atomic over the whole keyspace), then
// delivers what it wrote to the client.
void ExclusiveAll(CommandContext& ctx, std::function<void(resp::ReplyBuilder&)> fn);

// For commands that reply one integer per key subset (DEL, EXISTS, TOUCH,
// UNLINK): runs the handler on each shard with its keys, sums the results.
void IntegerSumFanOut(CommandContext& ctx);

}  // namespace larder
