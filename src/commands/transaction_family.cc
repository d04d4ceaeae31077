// Transactions: MULTI, EXEC, DISCARD, WATCH, UNWATCH (Redis 7.0's
// semantics and texts). Queueing is the dispatcher's (engine/transaction.h);
// EXEC runs the queue as one atomic unit (engine/atomic.h), WATCH registers
// keys on their shards (engine/watch.h).
#include <algorithm>
#include <functional>
#include <memory>
#include <optional>

#include "commands/families.h"
#include "common/clock.h"
#include "common/numbers.h"
#include "engine/acl.h"
#include "engine/atomic.h"
#include "engine/client.h"
#include "engine/client_state.h"
#include "engine/command.h"
#include "engine/engine.h"
#include "engine/multi_shard.h"
#include "engine/preload.h"
#include "engine/transaction.h"
#include "engine/watch.h"
#include "shard/shard.h"

namespace larder {

namespace {

void Multi(CommandContext& ctx) {
  ClientState& st = ctx.client_state();
  if (st.multi) return ctx.Error(OpStatus::kMultiNested);
  st.multi = std::make_unique<MultiState>();
  ctx.rb->Ok();
}

void Discard(CommandContext& ctx) {
  ClientState& st = ctx.client_state();
  if (!st.multi) return ctx.Error(OpStatus::kDiscardWithoutMulti);
  DiscardTransaction(ctx.engine, st);
  ctx.rb->Ok();
}

void Unwatch(CommandContext& ctx) {
  ClientState& st = ctx.client_state();
  if (st.watch) ReleaseWatch(ctx.engine, std::move(st.watch));
  st.watch.reset();
  ctx.rb->Ok();
}

void Watch(CommandContext& ctx) {
  ClientState& st = ctx.client_state();
  if (st.multi) return ctx.Error(OpStatus::kWatchInMulti);
  if (!st.watch) st.watch = std::make_shared<WatchSet>();
  std::shared_ptr<WatchSet> set = st.watch;
  Engine* engine = ctx.engine;
  ShardSet& shards = engine->shards();
  int me = ctx.shard->id();
  auto fresh = std::make_shared<std::vector<WatchedKey*>>();
  std::vector<int> remote;
  for (size_t i = 1; i < ctx.argc(); ++i) {
    if (set->Watches(st.db, ctx.arg(i))) continue;
    WatchedKey& wk = set->keys.emplace_back();
    wk.db = st.db;
    wk.key.assign(ctx.arg(i));
    wk.shard = shards.ShardOf(wk.key);
    if (wk.shard == me) engine->local(me).watches.Add(set, &wk, ctx.shard->db(wk.db));
    else {
      fresh->push_back(&wk);
      remote.push_back(wk.shard);
    }
  }
  if (remote.empty()) return ctx.rb->Ok();
  std::sort(remote.begin(), remote.end());
  remote.erase(std::unique(remote.begin(), remote.end()), remote.end());
  GatherFrom(
      ctx, remote,
      [engine, set, fresh](Shard& s) {
        for (WatchedKey* wk : *fresh)
          if (wk->shard == s.id()) engine->local(s.id()).watches.Add(set, wk, s.db(wk->db));
      },
      [](resp::ReplyBuilder& rb) { rb.Ok(); });
}

// The keys EXEC loads before its unit runs: those of its queued read-only
// commands (in the database each will run in, following SELECT). Writes
// load nothing: a write-through or write-behind key is refused inside a
// transaction, and outside one a write loads only such a key.
std::vector<PreloadKey> ReadKeys(Engine& engine, const MultiState& m, int db) {
  ShardSet& set = engine.shards();
  std::vector<PreloadKey> out;
  for (const auto& q : m.cmds) {
    std::vector<std::string_view> argv(q.args.begin(), q.args.end());
    if (q.spec->name == "select" && argv.size() == 2) {
      int64_t n;
      if (ParseInt64(argv[1], &n) && n >= 0 && n < set.num_dbs()) db = static_cast<int>(n);
      continue;
    }
    if (!(q.spec->flags & kCmdReadOnly) || q.spec->route == Route::kConnection) continue;
    for (size_t i : q.spec->KeyIndexes(argv)) out.push_back(PreloadKey{db, std::string(argv[i]), set.ShardOf(argv[i])});
  }
  return out;
}

void Exec(CommandContext& ctx) {
  ClientState& st = ctx.client_state();
  if (!st.multi) return ctx.Error(OpStatus::kExecWithoutMulti);
  std::shared_ptr<MultiState> m(std::move(st.multi));
  std::shared_ptr<WatchSet> watch = std::move(st.watch);
  st.watch.reset();
  Engine* engine = ctx.engine;
  if (m->error) {
    ReleaseWatch(engine, std::move(watch));
    return ctx.Error(OpStatus::kExecAbort);
  }
  // A rule may have started to own a queued key since it was queued.
  for (const auto& q : m->cmds) {
    std::vector<std::string_view> argv(q.args.begin(), q.args.end());
    if (const std::string_view* key = WriteRuleKey(*engine, q.spec, argv)) {
      std::string k(*key);
      ReleaseWatch(engine, std::move(watch));
      return ctx.Error(OpStatus::kAtomicWriteRuleKey, k);
    }
  }
  // The shards to hold: those of every queued key and of every watched key
  // (the check and the run are one step); all of them for a command that
  // reaches the whole keyspace or the server, or a script (it may touch
  // keys it did not declare). The client's own for connection commands.
  ShardSet& set = engine->shards();
  int me = ctx.shard->id();
  bool all = false, here = false;
  std::vector<int> shards;
  for (const auto& q : m->cmds) {
    if (q.spec->route == Route::kConnection) {
      here = true;
      if (!(q.spec->flags & kCmdLocalOnly)) all = true;
      continue;
    }
    if (q.spec->flags & kCmdScriptRun) all = true;  // it may reach keys it did not declare
    std::vector<std::string_view> argv(q.args.begin(), q.args.end());
    if (q.spec->needs_all_shards && q.spec->needs_all_shards(argv)) all = true;
    KeyPositions keys = q.spec->KeyIndexes(argv);
    if (keys.empty()) all = true;
    for (size_t i : keys) shards.push_back(set.ShardOf(argv[i]));
  }
  if (watch)
    for (const WatchedKey& k : watch->keys) shards.push_back(k.shard);
  if (here) shards.push_back(me);
  if (all || shards.empty()) {
    shards.clear();
    for (int i = 0; i < set.size(); ++i) shards.push_back(i);
  }
  std::sort(shards.begin(), shards.end());
  shards.erase(std::unique(shards.begin(), shards.end()), shards.end());
  bool client_held = std::binary_search(shards.begin(), shards.end(), me);
  uint64_t client_id = st.id;
  int db = st.db, resp = st.resp;
  auto origin = std::make_shared<ClientState>();  // for the slow log and MONITOR
  origin->addr = st.addr;
  origin->name = st.name;
  origin->user = st.user;  // SORT's BY/GET check runs as the client
  // CLIENT TRACKING: its reads are remembered for it, NOLOOP knows its writes.
  origin->id = st.id;
  if (st.tracking) origin->tracking = std::make_unique<TrackingState>(*st.tracking);
  std::vector<std::string> exec_argv(ctx.args.begin(), ctx.args.end());
  // ACL: each command is checked again as it runs, in case the rules
  // changed since it was queued (not needed for a user that may run all).
  bool acl_all = st.acl_fast == engine->users().epoch();

  auto body = [engine, m, watch, me, client_id, client_held, db, resp, origin, exec_argv, acl_all](
                  AtomicScope& scope, std::string* out) mutable {
    scope.set_origin(origin.get());
    scope.set_monitor_name(origin->addr);
    Client* client = nullptr;
    if (client_held) {  // the client's thread is held: it is there, or it has gone
      auto& clients = engine->local(me).clients;
      auto it = clients.find(client_id);
      if (it != clients.end()) client = it->second.get();
      scope.set_client(client);
    }
    auto feed_exec = [&] {
      if (!engine->has_monitors()) return;
      std::vector<std::string_view> argv(exec_argv.begin(), exec_argv.end());
      engine->FeedMonitors(db, origin->addr, argv);
    };
    resp::ReplyBuilder head(out, resp);
    bool failed = watch && watch->Failed(CommandTimeMs());
    if (watch) {
      // Unwatched in the same step as the check, here where every watched
      // key's shard is held (a message could overtake the unit and let a
      // write slip between unwatching and the check).
      std::vector<char> done(static_cast<size_t>(engine->shards().size()), 0);
      for (const WatchedKey& k : watch->keys)
        if (!done[static_cast<size_t>(k.shard)]++) engine->local(k.shard).watches.Remove(watch.get());
    }
    if (failed) {
      head.NullArray();
      feed_exec();
      return true;
    }
    head.ArrayHeader(m->cmds.size());
    for (const auto& q : m->cmds) {
      std::vector<std::string_view> argv(q.args.begin(), q.args.end());
      if (!acl_all && origin->user) {
        acl::CheckResult r = acl::Check(*origin->user, *q.spec, argv);
        if (!r.ok()) {
          OpStatus why = r.denial == acl::Denial::kCommand ? OpStatus::kExecAclNoCommand
                         : r.denial == acl::Denial::kKey   ? OpStatus::kExecAclNoKey
                                                           : OpStatus::kExecAclNoChannel;
          resp::ReplyBuilder rb(out, resp);
          rb.Error(FormatError(OpStatus::kExecAclChanged, FormatError(why)));
          continue;
        }
      }
      scope.Call(q.spec, argv, db, resp, out);
      if (client) {  // SELECT, HELLO inside the transaction
        db = client->state().db;
        resp = client->state().resp;
      }
    }
    feed_exec();
    return true;
  };
  bool here_only = shards.size() == 1 && shards[0] == me;

  // Read-through: what the queued reads name loads first (the unit itself
  // cannot wait for the database). Nothing to load: the unit runs now.
  std::vector<PreloadKey> reads;
  if (engine->cache().active()) [[unlikely]] reads = ReadKeys(*engine, *m, db);
  if (reads.empty()) {
    if (here_only) {
      RunAtomicHere(engine, ctx.client, body, ctx.rb->buffer());
    } else {
      ReplyTarget target = ctx.Defer();
      RunAtomic(engine, std::move(shards), nullptr, body, target);
    }
    return;  // (the unit unwatches, in the step of its check)
  }
  // The loads answer later (or, all keys cached, at once): the unit runs
  // then, on this thread; a load error answers EXEC instead and nothing
  // runs. The watched keys stay registered meanwhile: a change while the
  // loads run (a load of a watched key too) fails the transaction.
  struct Later {
    bool started = false;  // the reply's late slot is open (the loads answer later)
    bool now = false;      // they answered before PreloadKeys returned
    std::optional<std::string> error;
    ReplyTarget target;
  };
  auto later = std::make_shared<Later>();
  std::function<bool(AtomicScope&, std::string*)> unit = std::move(body);
  auto start = [engine, me, resp, later, here_only, shards, unit, watch](const std::string* error) mutable {
    if (!later->started) {  // still inside the handler: it goes on below
      later->now = true;
      if (error) later->error = *error;
      return;
    }
    if (error) {
      engine->RecordError(&engine->shards().shard(me), *error);
      engine->DeliverError(later->target, *error, resp);
      ReleaseWatch(engine, std::move(watch));
    } else if (here_only) {
      std::string out;
      RunAtomicHere(engine, nullptr, unit, &out);
      engine->Deliver(later->target, std::move(out));
    } else {
      RunAtomic(engine, std::move(shards), nullptr, unit, later->target);
    }
  };
  PreloadKeys(engine, std::move(reads), start);
  if (!later->now) {
    later->target = ctx.Defer();
    later->started = true;
    return;
  }
  if (later->error) {
    ReleaseWatch(engine, std::move(watch));
    return ctx.rb->Error(*later->error);
  }
  if (here_only) {
    RunAtomicHere(engine, ctx.client, unit, ctx.rb->buffer());
  } else {
    ReplyTarget target = ctx.Defer();
    RunAtomic(engine, std::move(shards), nullptr, unit, target);
  }
}

}  // namespace

void RegisterTransactionFamily(CommandRegistry* r) {
  constexpr uint32_t F = kCmdFast, L = kCmdLoading, S = kCmdStale, NS = kCmdNoScript, AB = kCmdAllowBusy,
                     LO = kCmdLocalOnly, NQ = kCmdNotQueued;
  auto make = [](const char* name, int arity, uint32_t flags, int first, int last, Handler h, const char* summary) {
    CommandSpec s = MakeCommand(name, arity, flags, first, last, first ? 1 : 0, h, "@fast @transaction", summary,
                                "transactions");
    s.route = Route::kConnection;
    s.since = name == std::string_view("watch") || name == std::string_view("unwatch") ? "2.2.0" : "1.2.0";
    return s;
  };
  r->Add(make("multi", 1, NS | L | S | F | AB | LO | NQ, 0, 0, Multi, "Starts a transaction."));
  CommandSpec exec = make("exec", 1, NS | L | S | kCmdSkipSlowlog | NQ, 0, 0, Exec,
                          "Executes all commands in a transaction.");
  exec.acl_categories = "@slow @transaction";
  r->Add(std::move(exec));
  r->Add(make("discard", 1, NS | L | S | F | AB | LO | NQ, 0, 0, Discard, "Discards a transaction."));
  r->Add(make("watch", -2, NS | L | S | F | AB | NQ, 1, -1, Watch,
              "Monitors changes to keys to determine the execution of a transaction."));
  r->Add(make("unwatch", 1, NS | L | S | F | AB | LO, 0, 0, Unwatch,
              "Forgets about watched keys of a transaction."));
}

}  // namespace larder
