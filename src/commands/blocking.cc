#include "commands/blocking.h"

#include <cmath>

#include "commands/command.h"
#include "common/clock.h"
#include "common/numbers.h"
#include "server/connection.h"
#include "server/server.h"
#include "shard/shard.h"

namespace larder {

void BlockingRegistry::Add(int db, std::string_view key, std::shared_ptr<Waiter> w) {
  waiting_[Key(db, std::string(key))].push_back(std::move(w));
}

bool BlockingRegistry::HasWaiters(int db, std::string_view key) const {
  return !waiting_.empty() && waiting_.contains(Key(db, std::string(key)));
}

void BlockingRegistry::MarkReady(int db, std::string_view key) { ready_.emplace_back(db, std::string(key)); }

void BlockingRegistry::Prune(int db, const std::string& key) {
  auto it = waiting_.find(Key(db, key));
  if (it == waiting_.end()) return;
  auto& q = it->second;
  std::erase_if(q, [](const std::shared_ptr<Waiter>& w) { return w->done.load(); });
  if (q.empty()) waiting_.erase(it);
}

namespace {

// Sends the removal of a finished waiter's registrations to its keys' shards.
void Unregister(Server* server, const std::shared_ptr<Waiter>& w) {
  ShardSet& set = server->shards();
  for (const auto& k : w->keys) {
    int owner = set.ShardOf(k);
    set.Send(owner, [server, owner, db = w->db, k] { server->local(owner).blocking.Prune(db, k); });
  }
}

// Runs the waiter's command on `shard` in serving mode; returns its reply
// (empty if it found nothing, which cannot happen for a ready key but is safe).
std::string RunForWaiter(Server* server, Shard* shard, Waiter& w) {
  std::vector<std::string_view> argv(w.args.begin(), w.args.end());
  std::string out;
  resp::ReplyBuilder rb(&out, w.resp);
  BlockRequest req;
  req.serving = true;
  req.client_shard = w.client_shard;
  req.client_id = w.client_id;
  CommandContext ctx(argv, &rb, shard, server, w.spec, w.db);
  ctx.block = &req;
  w.spec->handler(ctx);
  return out;
}

}  // namespace

void BlockingRegistry::ServeReady(Server* server, Shard* shard) {
  // Serving may push (BLMOVE) and mark more keys ready: loop until quiet.
  for (int round = 0; round < 16 && !ready_.empty(); ++round) {
    auto ready = std::move(ready_);
    ready_.clear();
    for (auto& key : ready) {
      auto it = waiting_.find(key);
      if (it == waiting_.end()) continue;
      auto& q = it->second;
      while (!q.empty()) {
        Entry* e = shard->db(key.first).Find(key.second);
        if (!e) break;  // drained (or deleted): the rest keep waiting
        std::shared_ptr<Waiter> w = q.front();
        q.pop_front();
        if (w->done.exchange(true)) continue;  // timed out or gone meanwhile
        std::string reply = RunForWaiter(server, shard, *w);
        if (reply.empty()) {
          // Nothing for it after all (another type now?): keep it waiting.
          w->done.store(false);
          q.push_front(w);
          break;
        }
        Unregister(server, w);
        server->shards().Send(w->client_shard, [server, w, reply = std::move(reply)]() mutable {
          Connection::FinishBlockedFor(server, w->client_shard, w->client_id, std::move(reply));
        });
      }
      if (q.empty()) waiting_.erase(it);
    }
  }
}

void BlockingRegistry::WakeAll(Server* server, int db, const std::string& key, const std::string& reply_resp2,
                               const std::string& reply_resp3) {
  auto it = waiting_.find(Key(db, key));
  if (it == waiting_.end()) return;
  auto q = std::move(it->second);
  waiting_.erase(it);
  for (auto& w : q) {
    if (w->done.exchange(true)) continue;
    Unregister(server, w);
    std::string reply = w->resp >= 3 ? reply_resp3 : reply_resp2;
    server->shards().Send(w->client_shard, [server, w, reply = std::move(reply)]() mutable {
      Connection::FinishBlockedFor(server, w->client_shard, w->client_id, std::move(reply));
    });
  }
}

void SignalKeyReady(CommandContext& ctx, std::string_view key) {
  int owner = ctx.exclusive ? ctx.server->shards().ShardOf(key) : ctx.shard->id();
  BlockingRegistry& reg = ctx.server->local(owner).blocking;
  if (reg.HasWaiters(ctx.db_index, key)) reg.MarkReady(ctx.db_index, key);
}

void ServeBlockedClients(Server* server, Shard* shard) {
  BlockingRegistry& reg = server->local(shard->id()).blocking;
  if (reg.has_ready()) reg.ServeReady(server, shard);
}

void RequestBlock(CommandContext& ctx, int64_t timeout_ms, std::vector<std::string> keys) {
  if (!ctx.block) {
    ctx.rb->NullArray();  // not reachable through dispatch; answer as a timeout
    return;
  }
  ctx.block->wants_block = true;
  ctx.block->timeout_ms = timeout_ms;
  ctx.block->keys = std::move(keys);
}

bool ParseBlockTimeout(CommandContext& ctx, std::string_view arg, int64_t* ms) {
  long double secs;
  if (!ParseLongDouble(arg, &secs) || std::isinf(secs)) {
    ctx.Error(OpStatus::kTimeoutNotFloat);
    return false;
  }
  if (secs < 0) {
    ctx.Error(OpStatus::kTimeoutNegative);
    return false;
  }
  long double v = secs * 1000.0L;
  if (v > 9.2e15L) {
    ctx.Error(OpStatus::kTimeoutOutOfRange);
    return false;
  }
  *ms = static_cast<int64_t>(std::ceil(v));
  return true;
}

void AbandonWaiter(Server* server, const std::shared_ptr<Waiter>& w) { Unregister(server, w); }

bool Serving(const CommandContext& ctx) { return ctx.block && ctx.block->serving; }

bool LocalForServing(const CommandContext& ctx, std::string_view key) {
  return !Serving(ctx) || ctx.exclusive || ctx.server->shards().ShardOf(key) == ctx.shard->id();
}

Entry* PopCandidate(CommandContext& ctx, std::string_view key, ObjType type, bool* failed) {
  *failed = false;
  if (!LocalForServing(ctx, key)) return nullptr;
  Entry* e = ctx.DbFor(key).FindWrite(key);
  if (!e || e->type == type) return e;
  if (!Serving(ctx)) {
    ctx.Error(OpStatus::kWrongType);
    *failed = true;
  }
  return nullptr;
}

}  // namespace larder
