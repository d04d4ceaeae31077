#include "engine/blocking.h"

#include <algorithm>
#include <cmath>

#include "common/clock.h"
#include "common/numbers.h"
#include "engine/engine.h"
#include "engine/executor.h"
#include "shard/shard.h"

namespace larder {

void BlockingRegistry::Add(int db, std::string_view key, std::shared_ptr<Waiter> w) {
  auto& q = waiting_[Key(db, std::string(key))];
  auto pos = q.end();  // the newest, as a rule: found from the back
  while (pos != q.begin() && (*(pos - 1))->ticket > w->ticket) --pos;
  q.insert(pos, std::move(w));
}

bool BlockingRegistry::HasWaiters(int db, std::string_view key) const {
  return !waiting_.empty() && waiting_.contains(Key(db, std::string(key)));
}

void BlockingRegistry::MarkReady(int db, std::string_view key) { ready_.emplace_back(db, std::string(key)); }

void BlockingRegistry::MarkReadyIn(int db, Db& d) {
  for (const auto& [k, q] : waiting_) {
    if (k.first != db) continue;
    bool wants_delete = std::any_of(q.begin(), q.end(), [](const auto& w) { return w->wake_on_delete; });
    if (wants_delete || d.Find(k.second)) ready_.push_back(k);
  }
}

void BlockingRegistry::Prune(int db, const std::string& key) {
  auto it = waiting_.find(Key(db, key));
  if (it == waiting_.end()) return;
  auto& q = it->second;
  std::erase_if(q, [](const std::shared_ptr<Waiter>& w) { return w->done.load(); });
  if (q.empty()) waiting_.erase(it);
}

namespace {

// Sends the removal of a finished waiter's registrations to its keys' shards.
void Unregister(Engine* engine, const std::shared_ptr<Waiter>& w) {
  ShardSet& set = engine->shards();
  for (const auto& k : w->keys) {
    int owner = set.ShardOf(k);
    set.Send(owner, [engine, owner, db = w->db, k] { engine->local(owner).blocking.Prune(db, k); });
  }
}

// Runs the waiter's command on `shard` in serving mode (`exclusive`: with
// every shard of its keys parked); returns its reply (empty if it found
// nothing, which cannot happen for a ready key but is safe). Its call was
// counted when it first ran.
std::string RunForWaiter(Engine* engine, Shard* shard, Waiter& w, bool exclusive = false) {
  std::vector<std::string_view> argv(w.args.begin(), w.args.end());
  BlockRequest req;
  req.serving = true;
  req.client_shard = w.client_shard;
  req.client_id = w.client_id;
  Call call(w.spec, argv, w.db, w.resp);
  call.mode = Call::Mode::kInternal;
  call.exclusive = exclusive;
  call.block = &req;
  std::string out;
  Execute(*engine, *shard, call, &out);
  return out;
}

// A waiter answered with an error (XREADGROUP whose group or stream went
// away): errorstats and its command's failed_calls count it, as Redis does.
void CountErrorReply(Engine* engine, Shard* shard, const Waiter& w, const std::string& reply) {
  if (reply.empty() || reply[0] != '-') return;
  std::string_view line(reply);
  line.remove_prefix(1);
  if (line.size() >= 2) line.remove_suffix(2);
  engine->RecordError(shard, line);
  ++engine->local(shard->id()).cmd_stats[static_cast<size_t>(w.spec->id)].failed;
}

}  // namespace

void BlockingRegistry::ServeReady(Engine* engine, Shard* shard) {
  // Serving may push (BLMOVE) and mark more keys ready: loop until quiet.
  ShardSet& set = engine->shards();
  for (int round = 0; round < 16 && !ready_.empty(); ++round) {
    auto ready = std::move(ready_);
    ready_.clear();
    for (auto& key : ready) {
      if (!across_.empty() && across_.contains(key)) continue;  // the exclusive operation serves it
      auto it = waiting_.find(key);
      if (it == waiting_.end()) continue;
      auto& q = it->second;
      if (!shard->db(key.first).Find(key.second)) {
        // Deleted: only the waiters that want to hear it (XREADGROUP) run.
        std::erase_if(q, [&](const std::shared_ptr<Waiter>& w) {
          if (!w->wake_on_delete) return w->done.load();
          if (w->done.exchange(true)) return true;
          std::string reply = RunForWaiter(engine, shard, *w);
          Unregister(engine, w);
          CountErrorReply(engine, shard, *w, reply);
          engine->Deliver(w->target, std::move(reply));
          return true;
        });
        if (q.empty()) waiting_.erase(it);
        continue;
      }
      while (!q.empty()) {
        Entry* e = shard->db(key.first).Find(key.second);
        if (!e) break;  // drained (or deleted): the rest keep waiting
        std::shared_ptr<Waiter> w = q.front();
        bool across = w->shards.size() > 1;
        if (across && !w->done.load() && !set.HeldCovers(w->shards)) {
          across_.insert(key);
          ServeAcross(engine, shard, key, w);
          break;
        }
        q.pop_front();
        if (w->done.exchange(true)) continue;  // timed out or gone meanwhile
        std::string reply = RunForWaiter(engine, shard, *w, across);
        if (reply.empty()) {
          // Nothing for it after all (another type now?): keep it waiting.
          w->done.store(false);
          q.push_front(w);
          break;
        }
        Unregister(engine, w);
        CountErrorReply(engine, shard, *w, reply);
        engine->Deliver(w->target, std::move(reply));
      }
      if (q.empty()) waiting_.erase(it);
    }
  }
}

void BlockingRegistry::ServeAcross(Engine* engine, Shard* shard, const Key& key, const std::shared_ptr<Waiter>& w) {
  std::vector<int> ids = w->shards;
  int self = shard->id();
  if (!std::binary_search(ids.begin(), ids.end(), self)) ids.insert(std::upper_bound(ids.begin(), ids.end(), self), self);
  engine->shards().RunExclusive(
      ids,
      [engine, self, key, ids] {
        ShardSet& set = engine->shards();
        BlockingRegistry& reg = engine->local(self).blocking;
        reg.across_.erase(key);
        if (reg.waiting_.contains(key)) reg.ready_.push_back(key);
        // The shards are parked: held, for the serve (and what it starts).
        const std::vector<char>* prev = ShardSet::Held();
        std::vector<char> held(static_cast<size_t>(set.size()), 0);
        for (int id : ids) held[static_cast<size_t>(id)] = 1;
        ShardSet::SetHeld(&held);
        RefreshCommandTime();
        for (int id : ids) ServeBlockedClients(engine, &set.shard(id));
        ShardSet::SetHeld(prev);
      },
      [] {});
}

void BlockingRegistry::WakeAll(Engine* engine, int db, const std::string& key, const std::string& reply_resp2,
                               const std::string& reply_resp3) {
  auto it = waiting_.find(Key(db, key));
  if (it == waiting_.end()) return;
  auto q = std::move(it->second);
  waiting_.erase(it);
  for (auto& w : q) {
    if (w->done.exchange(true)) continue;
    Unregister(engine, w);
    engine->Deliver(w->target, w->resp >= 3 ? reply_resp3 : reply_resp2);
  }
}

void SignalKeyReady(CommandContext& ctx, std::string_view key) {
  int owner = ctx.exclusive ? ctx.engine->shards().ShardOf(key) : ctx.shard->id();
  BlockingRegistry& reg = ctx.engine->local(owner).blocking;
  if (reg.HasWaiters(ctx.db_index, key)) reg.MarkReady(ctx.db_index, key);
}

void ServeBlockedClients(Engine* engine, Shard* shard) {
  ServeBlockedClients(engine->local(shard->id()).blocking, engine, shard);
}

void RequestBlock(CommandContext& ctx, int64_t timeout_ms, std::vector<std::string> keys) {
  if (!ctx.block) {
    // Inside MULTI/EXEC or a script a blocking command does not block: it
    // answers as at its timeout (a null array, or a null for the commands
    // that move one element).
    const std::string& n = ctx.spec->name;
    if (n == "brpoplpush" || n == "blmove") ctx.rb->Null();
    else ctx.rb->NullArray();
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

void AbandonWaiter(Engine* engine, const std::shared_ptr<Waiter>& w) { Unregister(engine, w); }

bool Serving(const CommandContext& ctx) { return ctx.block && ctx.block->serving; }

bool YieldsToWaiters(const CommandContext& ctx, std::string_view key) {
  if (!ctx.block || ctx.block->serving) return false;
  int owner = ctx.exclusive ? ctx.engine->shards().ShardOf(key) : ctx.shard->id();
  return ctx.engine->local(owner).blocking.ServePending(ctx.db_index, key);
}

bool LocalForServing(const CommandContext& ctx, std::string_view key) {
  return !Serving(ctx) || ctx.exclusive || ctx.engine->shards().ShardOf(key) == ctx.shard->id();
}

Entry* PopCandidate(CommandContext& ctx, std::string_view key, ObjType type, bool* failed) {
  *failed = false;
  if (!LocalForServing(ctx, key) || YieldsToWaiters(ctx, key)) return nullptr;
  Entry* e = ctx.DbFor(key).FindWrite(key);
  if (!e || e->type == type) return e;
  if (!Serving(ctx)) {
    ctx.Error(OpStatus::kWrongType);
    *failed = true;
  }
  return nullptr;
}

}  // namespace larder
