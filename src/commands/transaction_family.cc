// Transactions: MULTI, EXEC, DISCARD, WATCH, UNWATCH (Redis 7.0's
// semantics and texts). Queueing is the dispatcher's (engine/transaction.h);
// EXEC runs the queue as one atomic unit (engine/atomic.h), WATCH registers
// keys on their shards (engine/watch.h).
#include <algorithm>
#include <memory>

#include "commands/families.h"
#include "common/clock.h"
#include "engine/acl.h"
#include "engine/atomic.h"
#include "engine/client.h"
#include "engine/client_state.h"
#include "engine/command.h"
#include "engine/engine.h"
#include "engine/multi_shard.h"
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

bool IsScript(const CommandSpec* spec) {
  const std::string& n = spec->parent ? spec->parent->name : spec->name;
  return n == "eval" || n == "evalsha" || n == "eval_ro" || n == "evalsha_ro" || n == "fcall" || n == "fcall_ro";
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
    if (IsScript(q.spec)) all = true;
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
    if (watch && watch->Failed(CommandTimeMs())) {
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
  if (shards.size() == 1 && shards[0] == me) {
    RunAtomicHere(engine, ctx.client, body, ctx.rb->buffer());
  } else {
    ReplyTarget target = ctx.Defer();
    RunAtomic(engine, std::move(shards), nullptr, body, target);
  }
  // The registrations go once the unit has run (messages to held shards
  // wait behind it).
  ReleaseWatch(engine, std::move(watch));
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
