#include "engine/dispatcher.h"

#include <algorithm>

#include "cache/shard_cache.h"
#include "common/clock.h"
#include "common/strings.h"
#include "engine/acl.h"
#include "engine/blocking.h"
#include "engine/client.h"
#include "engine/engine.h"
#include "engine/executor.h"
#include "engine/tracking.h"
#include "engine/transaction.h"
#include "shard/shard.h"

namespace larder {

void StartExclusive(Engine* engine, const CommandSpec* spec, std::span<const std::string_view> args, int db,
                    int resp, std::vector<int> shards, ReplyTarget target, std::shared_ptr<const acl::User> user,
                    std::shared_ptr<const ClientState> origin) {
  auto owned = std::make_shared<std::vector<std::string>>(args.begin(), args.end());
  engine->shards().RunExclusive(
      shards,
      [engine, spec, owned, db, resp, shards, target, user = std::move(user), origin = std::move(origin)] {
        RefreshCommandTime();
        std::vector<std::string_view> argv(owned->begin(), owned->end());
        Call call(spec, argv, db, resp);
        call.exclusive = true;
        call.user = user.get();
        call.origin = origin.get();
        call.target = target;  // a handler that answers later (a script run again) answers there
        std::string reply;
        Outcome o = Execute(*engine, *CurrentShard(), call, &reply);
        for (int id : shards) ServeBlockedClients(engine, &engine->shards().shard(id));
        if (o == Outcome::kReplied) engine->Deliver(target, std::move(reply));
      },
      [] {});
}

void StartBlocking(Engine* engine, std::shared_ptr<Waiter> w, std::vector<int> shards) {
  std::sort(shards.begin(), shards.end());
  shards.erase(std::unique(shards.begin(), shards.end()), shards.end());
  bool exclusive = shards.size() > 1;
  w->ticket = engine->NextBlockTicket();
  w->shards = std::move(shards);
  auto attempt = [engine, w, exclusive] {
    RefreshCommandTime();
    std::vector<std::string_view> argv(w->args.begin(), w->args.end());
    BlockRequest req;
    req.client_shard = w->client_shard;
    req.client_id = w->client_id;
    Call call(w->spec, argv, w->db, w->resp);
    call.exclusive = exclusive;
    call.block = &req;
    std::string out;
    Execute(*engine, *CurrentShard(), call, &out);
    ShardSet& set = engine->shards();
    for (int id : w->shards) ServeBlockedClients(engine, &set.shard(id));
    if (req.wants_block) {
      w->keys = std::move(req.keys);
      if (!req.args.empty()) w->args = std::move(req.args);
      w->wake_on_delete = req.wake_on_delete;
      w->deadline_ms = req.timeout_ms > 0 ? CommandTimeMs() + req.timeout_ms : 0;
      for (const auto& k : w->keys) engine->local(set.ShardOf(k)).blocking.Add(w->db, k, w);
      set.Send(w->client_shard, [engine, w] { engine->local(w->client_shard).blocked.push_back(w); });
      return;
    }
    w->done.store(true);
    engine->Deliver(w->target, std::move(out));
  };
  if (exclusive) {
    engine->shards().RunExclusive(w->shards, std::move(attempt), [] {});
  } else {
    engine->shards().FanOut({w->shards[0]}, [attempt = std::move(attempt)](Shard&) mutable { attempt(); }, [] {});
  }
}

namespace {

std::string UnknownCommandError(std::span<const std::string_view> args) {
  // As Redis: quote arguments while the list is under 128 bytes, each cut to
  // what is left of those 128.
  std::string list;
  for (size_t i = 1; i < args.size() && list.size() < 128; ++i) {
    size_t room = 128 - list.size();
    list.push_back('\'');
    list.append(args[i].substr(0, room));
    list.append("' ");
  }
  return FormatError(OpStatus::kUnknownCommand, args[0].substr(0, 128), list);
}

// A multi-shard command with no fan-out of its own, for a client: its reply
// fills a late slot.
void StartExclusiveFor(Client& client, const CommandSpec* spec, std::span<const std::string_view> args,
                       std::vector<int> shards) {
  const ClientState& st = client.state();
  std::shared_ptr<ClientState> origin;
  if (st.tracking) [[unlikely]] {
    origin = std::make_shared<ClientState>();
    origin->id = st.id;
    origin->addr = st.addr;
    origin->name = st.name;
    origin->user = st.user;
    origin->tracking = std::make_unique<TrackingState>(*st.tracking);
  }
  StartExclusive(client.engine(), spec, args, st.db, st.resp, std::move(shards), client.pipeline().AddLate(), st.user,
                 std::move(origin));
}

// A blocking command for a client: the client holds the waiter (a
// disconnect abandons it), the reply (data, or nil at the timeout) fills a
// late slot.
void StartBlockingFor(Client& client, const CommandSpec* spec, std::span<const std::string_view> args,
                      std::vector<int> shards) {
  auto w = std::make_shared<Waiter>();
  w->client_shard = client.shard()->id();
  w->client_id = client.state().id;
  w->db = client.state().db;
  w->resp = client.state().resp;
  w->spec = spec;
  w->args.assign(args.begin(), args.end());
  w->target = client.pipeline().AddLate();
  client.set_blocked(w);
  StartBlocking(client.engine(), std::move(w), std::move(shards));
}

// Runs a command on the client's thread (a connection command, a fan-out
// coordinator, or a keyed command whose keys are here).
DispatchResult RunHere(Client& client, const CommandSpec* spec, std::span<const std::string_view> args,
                       bool fan_out) {
  Engine& engine = *client.engine();
  Pipeline& p = client.pipeline();
  std::string* out = p.InlineTarget(&client.stream().output());
  Call call(spec, args, client.state().db, client.state().resp);
  call.origin = &client.state();
  call.client = &client;
  call.fan_out = fan_out;
  if (Execute(engine, *client.shard(), call, out) == Outcome::kReplied) {
    p.EndInline();
    return DispatchResult::kDone;
  }
  return DispatchResult::kStop;  // (its reply comes later)
}

// The ACL check's slow path: the users changed since the client's snapshot
// (take it again; a deleted user's client is closed, as Redis does), or the
// user may not run everything (check this command line).
bool AclAllows(Client& client, const CommandSpec* spec, std::span<const std::string_view> argv) {
  ClientState& state = client.state();
  acl::Users& users = client.engine()->users();
  uint64_t epoch = users.epoch();
  if (state.acl_epoch != epoch) {
    std::shared_ptr<const acl::User> now = users.Find(state.user ? std::string_view(state.user->name) : "default");
    if (!now) {
      state.user = users.Default();
      state.authenticated = false;
      client.Close();
      return false;
    }
    state.user = std::move(now);
    state.acl_epoch = epoch;
    state.acl_fast = state.user->allows_everything ? epoch : 0;
    if (state.acl_fast) return true;
  }
  acl::CheckResult r = acl::Check(*state.user, *spec, argv);
  if (r.ok()) [[likely]] return true;
  std::string object = r.denial == acl::Denial::kCommand ? spec->name : std::string(argv[r.pos]);
  state.last_cmd = spec;  // the log's client info names the refused command, as Redis's
  LogAclDenial(client, r.denial, std::move(object), state.user->name);
  switch (r.denial) {
    case acl::Denial::kCommand: client.ReplyError(FormatError(OpStatus::kNoPermCommand, spec->name)); break;
    case acl::Denial::kKey: client.ReplyError(FormatError(OpStatus::kNoPermKey)); break;
    default: client.ReplyError(FormatError(OpStatus::kNoPermChannel)); break;
  }
  client.engine()->RecordRejected(client.shard(), spec);
  return false;
}

}  // namespace

void LogAclDenial(Client& client, acl::Denial reason, std::string object, std::string username) {
  acl::LogEntry e;
  e.reason = reason;
  e.object = std::move(object);
  e.username = std::move(username);
  e.ctime_ms = UnixTimeMs();
  e.client_info = client.ClientListLine();
  Engine& engine = *client.engine();
  engine.users().log().Add(std::move(e),
                           static_cast<size_t>(engine.config().acllog_max_len.load(std::memory_order_relaxed)));
}

const CommandSpec* ResolveCommand(std::span<const std::string_view> argv, std::string* error,
                                  const CommandSpec** rejected) {
  *rejected = nullptr;
  const CommandSpec* spec = Commands().Find(argv[0]);
  if (!spec) {
    *error = UnknownCommandError(argv);
    return nullptr;
  }
  if (!spec->subcommands.empty() && argv.size() < 2 && (!spec->handler || !spec->ArityOk(argv.size()))) {
    *error = FormatError(OpStatus::kWrongArity, spec->name);
    return nullptr;
  }
  // A container with a handler of its own (COMMAND) runs it when called alone.
  if (!spec->subcommands.empty() && argv.size() >= 2) {
    const CommandSpec* sub = Commands().FindSub(*spec, argv[1]);
    if (!sub) {
      std::string upper = spec->name;
      for (auto& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      *error = FormatError(OpStatus::kUnknownSubcommand, argv[1].substr(0, 128), upper);
      return nullptr;
    }
    spec = sub;
  }
  if (!spec->ArityOk(argv.size())) {
    *error = FormatError(OpStatus::kWrongArity, spec->name);
    *rejected = spec;
    return nullptr;
  }
  return spec;
}

// EXEC refused before it runs (arity, authentication, OOM): Redis's
// execCommandAbort words it EXECABORT with the refusal's text (without the
// generic "ERR "), and the transaction, if any, ends.
static std::string ExecAbortText(Engine* engine, ClientState& state, std::string_view error) {
  if (error.starts_with("ERR ")) error.remove_prefix(4);
  std::string text = FormatError(OpStatus::kExecAbortBecause, error);
  DiscardTransaction(engine, state);
  return text;
}

// Every check, then the route (Dispatch below adds CLIENT REPLY's muting).
static DispatchResult DispatchCommand(Client& client, std::vector<std::string_view>& argv_vec) {
  Engine& engine = *client.engine();
  ClientState& state = client.state();
  std::span<const std::string_view> argv(argv_vec.data(), argv_vec.size());
  std::string refused;
  const CommandSpec* rejected;
  const CommandSpec* spec = ResolveCommand(argv, &refused, &rejected);
  // A refusal between MULTI and EXEC also makes EXEC answer EXECABORT.
  auto flag_multi = [&state] {
    if (state.multi) [[unlikely]] state.multi->error = true;
  };
  if (!spec) {
    if (rejected && rejected->name == "exec") [[unlikely]] refused = ExecAbortText(&engine, state, refused);
    client.ReplyError(refused);
    if (rejected) engine.RecordRejected(client.shard(), rejected);
    flag_multi();
    return DispatchResult::kDone;
  }
  if (!state.authenticated && !(spec->flags & kCmdNoAuth)) {
    if (engine.users().default_open()) {
      state.authenticated = true;
    } else {
      std::string error = FormatError(OpStatus::kNoAuth);
      if (spec->name == "exec") error = ExecAbortText(&engine, state, error);
      client.ReplyError(error);
      flag_multi();
      return DispatchResult::kDone;
    }
  }
  // A script running past busy-reply-threshold: only SCRIPT KILL and the
  // like get through.
  if (int busy = engine.busy_script.load(std::memory_order_relaxed)) [[unlikely]] {
    if (!(spec->flags & kCmdAllowBusy)) {
      std::string error = FormatError(busy == 2 ? OpStatus::kBusyFunction : OpStatus::kBusyScript);
      if (spec->name == "exec") error = ExecAbortText(&engine, state, error);
      client.ReplyError(error);
      engine.RecordRejected(client.shard(), spec);
      flag_multi();
      return DispatchResult::kDone;
    }
  }
  // Loading a file: only commands flagged for it. A failed background save
  // with stop-writes-on-bgsave-error: no writes (nor PING, as in Redis).
  if (int gate = engine.persistence().gate()) [[unlikely]] {
    OpStatus why = OpStatus::kOk;
    if ((gate & (Persistence::kGateLoading | Persistence::kGateStarting)) && !(spec->flags & kCmdLoading))
      why = OpStatus::kLoading;
    else if ((gate & Persistence::kGateMisconf) && ((spec->flags & kCmdWrite) || spec->name == "ping") &&
             engine.persistence().RefusesWrites())
      why = OpStatus::kMisconf;
    if (why != OpStatus::kOk) {
      std::string error = FormatError(why);
      if (spec->name == "exec") error = ExecAbortText(&engine, state, error);
      client.ReplyError(error);
      engine.RecordRejected(client.shard(), spec);
      flag_multi();
      return DispatchResult::kDone;
    }
  }
  uint32_t flags = spec->flags;
  if (state.multi) [[unlikely]] {
    if (flags & kCmdNoMulti) {
      client.ReplyError(FormatError(OpStatus::kNotAllowedInMulti));
      engine.RecordRejected(client.shard(), spec);
      flag_multi();
      return DispatchResult::kDone;
    }
    // EXEC is admitted (paused, refused under OOM) by what it will run.
    if (spec->name == "exec") flags |= state.multi->flags & (kCmdDenyOom | kCmdWrite | kCmdMayReplicate);
  }
  // ACL: one compare when the client's user may run everything.
  if (state.acl_fast != engine.users().epoch()) [[unlikely]] {
    if (!AclAllows(client, spec, argv)) {
      flag_multi();
      return DispatchResult::kDone;
    }
  }
  if (engine.PausedFor(flags)) [[unlikely]] {
    client.Pause();
    engine.local(client.shard()->id()).paused.push_back(state.id);
    return DispatchResult::kRetryLater;
  }
  // maxmemory: refuse commands that may grow memory when over the limit and
  // nothing can be evicted; between MULTI and EXEC, any command but those
  // that end the transaction (queueing takes memory too).
  bool oom_check = (flags & kCmdDenyOom) || (state.multi && !(flags & kCmdNotQueued));
  if (oom_check && !engine.AdmitUnderMaxmemory(*client.shard())) {
    std::string error = FormatError(OpStatus::kOutOfMemory);
    if (spec->name == "exec") error = ExecAbortText(&engine, state, error);
    client.ReplyError(error);
    engine.RecordRejected(client.shard(), spec);
    flag_multi();
    return DispatchResult::kDone;
  }
  // RESP2 subscribed mode: only the commands that make sense there.
  if (state.subscribed() && state.resp == 2 && !(flags & kCmdSubscribedOk)) [[unlikely]] {
    client.ReplyError(FormatError(OpStatus::kNotInSubscribedMode, spec->name));
    engine.RecordRejected(client.shard(), spec);
    flag_multi();
    return DispatchResult::kDone;
  }
  if (state.multi && !(flags & kCmdNotQueued)) [[unlikely]] return QueueCommand(client, spec, argv);
  Pipeline& pipeline = client.pipeline();
  bool barrier = (spec->route == Route::kConnection && (spec->flags & kCmdGathers)) ||
                 (spec->flags & kCmdBlocking);
  // A command that runs alone waits for the batch before it (and must not
  // be fed to MONITOR twice).
  if (barrier && pipeline.open()) return DispatchResult::kRetryLater;

  ShardSet& set = engine.shards();
  KeyPositions keys;
  int target = client.shard()->id();
  bool single = true;
  bool all_shards = false;
  if (spec->route == Route::kKeys && spec->single_key) [[likely]] {
    // One key: no key list (GET, SET, HSET, ...).
    if (static_cast<size_t>(spec->single_key) < argv.size()) {
      keys.push_back(static_cast<size_t>(spec->single_key));
      target = set.ShardOf(argv[spec->single_key]);
    }
    if (target != client.shard()->id() && !(spec->flags & kCmdBlocking) &&
        !pipeline.AddRemote(target, spec, argv, state.db, state.resp))
      return DispatchResult::kRetryLater;  // the group is full: submit the batch first
  } else if (spec->route == Route::kKeys) {
    keys = spec->KeyIndexes(argv);
    if (!keys.empty()) {
      target = set.ShardOf(argv[keys[0]]);
      for (size_t i = 1; i < keys.size() && single; ++i) single = set.ShardOf(argv[keys[i]]) == target;
    }
    // Keys no argument names (SORT ... BY pattern) may be on any shard.
    if (spec->needs_all_shards && set.size() > 1 && spec->needs_all_shards(argv)) [[unlikely]] {
      single = false;
      all_shards = true;
    }
    if (!single && !barrier && pipeline.open()) return DispatchResult::kRetryLater;
    if (keys.size() > 1 && (spec->flags & kCmdWrite) && engine.cache().active()) {
      cache::ShardCache* sc = cache::CurrentShardCache();
      for (size_t i : keys)
        if (sc && sc->IsWriteKey(argv[i])) {
          client.ReplyError(FormatError(OpStatus::kWriteKeyNotAlone));
          return DispatchResult::kDone;
        }
    }
    if (spec->flags & kCmdScriptRun) [[unlikely]] {
      // A script runs after the batch before it (it may run again holding
      // every shard, after what was sent to them), alone when elsewhere.
      if (pipeline.open()) return DispatchResult::kRetryLater;
    } else if (single && target != client.shard()->id() && !(spec->flags & kCmdBlocking) &&
               !pipeline.AddRemote(target, spec, argv, state.db, state.resp)) {
      return DispatchResult::kRetryLater;  // the group is full: submit the batch first
    }
  }
  // (EXEC is fed after the commands it ran, as Redis feeds each command
  // once it has run.)
  if (engine.has_monitors() && !(spec->flags & kCmdSkipMonitor) &&
      !(state.multi && !state.multi->error && spec->name == "exec"))
    engine.FeedMonitors(state.db, state.addr, argv);
  state.last_cmd = spec;
  ++state.commands;
  if (state.tracking) [[unlikely]] {
    // CLIENT TRACKING: a read sent to another shard carries the decision.
    if (NoteTrackedCommand(state, spec) && spec->route == Route::kKeys && single && target != client.shard()->id() &&
        !(spec->flags & (kCmdBlocking | kCmdScriptRun)))
      pipeline.TrackLast(target);
  }

  if (spec->route == Route::kConnection) {
    RunHere(client, spec, argv, false);
    return barrier ? DispatchResult::kStop : DispatchResult::kDone;
  }
  if (spec->flags & kCmdBlocking) {
    std::vector<int> shards;
    for (size_t i : keys) shards.push_back(set.ShardOf(argv[i]));
    if (shards.empty()) shards.push_back(client.shard()->id());
    StartBlockingFor(client, spec, argv, std::move(shards));
    return DispatchResult::kStop;
  }
  if (single) {
    if (spec->flags & kCmdScriptRun) [[unlikely]] {
      if (target != client.shard()->id()) {
        StartExclusiveFor(client, spec, argv, {target});
        return DispatchResult::kStop;
      }
      // Answered later (it runs again holding every shard): nothing after it
      // runs before.
      return RunHere(client, spec, argv, false);
    }
    if (target == client.shard()->id()) RunHere(client, spec, argv, false);
    return DispatchResult::kDone;  // (a remote one joined its group above)
  }
  if (spec->fan_out && !all_shards) {
    RunHere(client, spec, argv, true);
    return DispatchResult::kStop;
  }
  std::vector<int> shards;
  if (all_shards) {
    for (int i = 0; i < set.size(); ++i) shards.push_back(i);
  } else {
    for (size_t i : keys) shards.push_back(set.ShardOf(argv[i]));
  }
  StartExclusiveFor(client, spec, argv, std::move(shards));
  return DispatchResult::kStop;
}

DispatchResult Dispatch(Client& client, std::vector<std::string_view>& argv) {
  ClientState& state = client.state();
  if (state.reply_mode == ClientState::ReplyMode::kOn) [[likely]] return DispatchCommand(client, argv);
  // CLIENT REPLY OFF or SKIP: the command runs, its reply is dropped (CLIENT
  // REPLY itself decides what it answers).
  Pipeline& p = client.pipeline();
  size_t first_slot = p.slot_count();
  std::string& out = client.stream().output();
  size_t out_size = out.size();
  auto mode = state.reply_mode;
  DispatchResult r = DispatchCommand(client, argv);
  if (r == DispatchResult::kRetryLater) return r;
  bool reply_cmd = argv.size() == 3 && EqualsIgnoreCase(argv[0], "client") && EqualsIgnoreCase(argv[1], "reply");
  const CommandSpec* spec = argv.empty() ? nullptr : Commands().Find(argv[0]);
  if (spec && (spec->flags & kCmdPushReply)) reply_cmd = true;  // (SUBSCRIBE's confirmations are pushes)
  if (!reply_cmd) {
    p.Mute(first_slot, &out, out_size);
    if (mode == ClientState::ReplyMode::kSkipNext) state.reply_mode = ClientState::ReplyMode::kOn;
  }
  return r;
}

}  // namespace larder
