// EVAL, EVALSHA, EVAL_RO, EVALSHA_RO and SCRIPT; and the run of a script or
// function as an atomic unit (script_run.h), which FCALL shares.
#include <algorithm>
#include <mutex>

#include "commands/families.h"
#include "commands/script_run.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/numbers.h"
#include "common/sha1.h"
#include "common/strings.h"
#include "engine/acl.h"
#include "engine/atomic.h"
#include "engine/dispatcher.h"
#include "engine/engine.h"
#include "script/lua_runtime.h"
#include "script/store.h"
#include "shard/shard.h"

namespace larder {

namespace {

// A script that runs. Once it has run past busy-reply-threshold it is
// published as the busy script: the engine answers BUSY, SCRIPT KILL /
// FUNCTION KILL / FUNCTION STATS (any thread) reach it here, and its shard's
// loop answers its other connections from the instruction hook.
struct Running {
  bool is_function = false;
  std::string name;
  std::vector<std::string> command;
  int64_t start_ms = 0;
  bool busy = false;  // published (this thread only)
  std::atomic<bool> wrote{false};
  std::atomic<bool> kill{false};
};
std::mutex g_busy_mu;
Running* g_busy = nullptr;  // under g_busy_mu

bool DeprecatedApi(Engine* engine) {
  return engine->config().lua_enable_deprecated_api.load(std::memory_order_relaxed) != 0;
}

class ScriptHost : public script::Host {
 public:
  ScriptHost(AtomicScope& scope, Engine* engine, int db, const ScriptRun& run, Running* running)
      : scope_(scope), engine_(engine), db_(db), run_(run), running_(running) {}

  Outcome Call(std::span<const std::string_view> argv, int resp, std::string* out) override {
    Shard* shard = CurrentShard();
    std::string error;
    const CommandSpec* rejected = nullptr;
    const CommandSpec* spec = ResolveCommand(argv, &error, &rejected);
    if (!spec) {
      if (rejected) engine_->RecordRejected(shard, rejected);
      return Refuse(shard, nullptr, rejected ? OpStatus::kScriptWrongArity : OpStatus::kScriptUnknownCommand, out);
    }
    if ((spec->flags & kCmdNoScript) && !script::DenyScriptsDisabled().load(std::memory_order_relaxed))
      return Refuse(shard, spec, OpStatus::kScriptCommandNotAllowed, out);
    bool writes = spec->flags & kCmdWrite;
    if (writes && (run_.read_only || (run_.flags & script::kFlagNoWrites)))
      return Refuse(shard, spec, OpStatus::kScriptWriteInRo, out);
    if ((spec->flags & kCmdDenyOom) && !(run_.flags & script::kFlagAllowOom) && !scope_.wrote() &&
        !engine_->AdmitUnderMaxmemory(*shard))
      return Refuse(shard, spec, OpStatus::kOutOfMemory, out);
    if (spec->name == "select") return Select(shard, spec, argv, out);
    out->clear();
    AtomicScope::CallResult r = scope_.Call(spec, argv, db_, resp, out);
    if (r == AtomicScope::CallResult::kNotHeld) return Outcome::kAbort;
    // kRefused (a write of a write-through key): its error reply is in *out.
    if (writes) running_->wrote.store(true, std::memory_order_relaxed);
    return Outcome::kReply;
  }

  int AclCheck(std::span<const std::string_view> argv) override {
    std::string error;
    const CommandSpec* rejected = nullptr;
    const CommandSpec* spec = ResolveCommand(argv, &error, &rejected);
    if (!spec) return -1;
    if (!user_) return 1;
    return acl::Check(*user_, *spec, argv).ok() ? 1 : 0;
  }
  const acl::User* user_ = nullptr;  // the caller's (ctx.user), null: may run everything

  // From the instruction hook: past the threshold the script becomes the
  // busy one and the shard's other connections are served (with BUSY);
  // false once it is killed.
  bool Continue(std::string* reason) override {
    if (!running_->busy) {
      int64_t limit = engine_->config().busy_reply_threshold.load(std::memory_order_relaxed);
      if (limit > 0 && UnixTimeMs() - running_->start_ms >= limit) {
        std::lock_guard lock(g_busy_mu);
        if (!g_busy) {
          g_busy = running_;
          running_->busy = true;
          engine_->busy_script.store(run_.is_function ? 2 : 1, std::memory_order_relaxed);
          LOG_WARNING("Slow script detected: still in execution after {} milliseconds. You can try killing the "
                      "script using the {} command. Script name is: {}.",
                      UnixTimeMs() - running_->start_ms, run_.is_function ? "FUNCTION KILL" : "SCRIPT KILL",
                      run_.name);
        }
      }
    }
    if (running_->busy) {
      if (Shard* shard = CurrentShard()) shard->loop().PollOnce(0);
    }
    // SHUTDOWN (allowed while busy) ends the script so the shard can stop.
    if (!running_->kill.load(std::memory_order_relaxed) && !engine_->shutdown_requested()) return true;
    *reason = FormatError(run_.is_function ? OpStatus::kFunctionKilled : OpStatus::kScriptKilled);
    return false;
  }

  void Log(int level, std::string_view message) override {
    LogLine(static_cast<LogLevel>(std::clamp(level, 0, 3)), message);
  }

 private:
  // A call the script may not make: counted as the command's rejected call
  // and in errorstats now (the error table says so, not to count it twice).
  Outcome Refuse(Shard* shard, const CommandSpec* spec, OpStatus s, std::string* out) {
    if (spec) engine_->RecordRejected(shard, spec);
    *out = FormatError(s);
    engine_->RecordError(shard, *out);
    return Outcome::kError;
  }

  // SELECT changes the script's own database only.
  Outcome Select(Shard* shard, const CommandSpec* spec, std::span<const std::string_view> argv, std::string* out) {
    int64_t idx;
    bool ok = ParseInt64(argv[1], &idx);
    int64_t dbs = engine_->config().databases.load(std::memory_order_relaxed);
    out->clear();
    if (!ok) {
      *out = "-" + FormatError(OpStatus::kNotAnInteger) + "\r\n";
    } else if (idx < 0 || idx >= dbs) {
      *out = "-" + FormatError(OpStatus::kDbIndexOutOfRange) + "\r\n";
    } else {
      db_ = static_cast<int>(idx);
      *out = "+OK\r\n";
    }
    bool failed = (*out)[0] == '-';
    if (failed) engine_->RecordError(shard, out->substr(1, out->size() - 3));
    engine_->RecordCommand(shard, spec, 0, failed);
    return Outcome::kReply;
  }

  AtomicScope& scope_;
  Engine* engine_;
  int db_;
  const ScriptRun& run_;
  Running* running_;
};

// One run in `scope`; false when it reached a shard not held (nothing
// written to rb, its writes to be rolled back).
bool RunIn(AtomicScope& scope, Engine* engine, int db, const ScriptRun& run, resp::ReplyBuilder* rb,
           const acl::User* user) {
  script::Runtime* rt;
  std::string error;
  if (run.is_function) {
    rt = script::LocalFunctions(DeprecatedApi(engine), &error);
    if (!rt) {
      rb->Error(error);
      return true;
    }
    if (!rt->HasFunction(run.name)) {
      rb->Error(FormatError(OpStatus::kFunctionNotFound));
      return true;
    }
  } else {
    rt = &script::LocalEval(DeprecatedApi(engine));
    if (!rt->HasScript(run.name) && !rt->CompileScript(run.name, run.body, &error)) {
      rb->Error(error);
      return true;
    }
  }
  std::vector<std::string_view> keys(run.keys.begin(), run.keys.end());
  std::vector<std::string_view> args(run.args.begin(), run.args.end());
  Running running;
  running.is_function = run.is_function;
  running.name = run.name;
  running.command = run.command;
  running.start_ms = UnixTimeMs();
  ScriptHost host(scope, engine, db, run, &running);
  host.user_ = user;
  bool done = rt->Run(run.name, run.name, keys, args, host, rb);
  if (running.busy) {
    std::lock_guard lock(g_busy_mu);
    g_busy = nullptr;
    engine->busy_script.store(0, std::memory_order_relaxed);
  }
  return done;
}

}  // namespace

void RunScript(CommandContext& ctx, std::shared_ptr<ScriptRun> run) {
  Engine* engine = ctx.engine;
  int db = ctx.db_index;
  int resp = ctx.rb->protocol();
  {
    std::unique_ptr<AtomicScope> scope = AtomicScope::Here(ctx);
    bool straight_to_all = run->needs_all && run->needs_all->load(std::memory_order_relaxed) && !scope->holds_all();
    scope->set_script(true);
    if (!straight_to_all) {
      scope->EnableUndo();
      if (RunIn(*scope, engine, db, *run, ctx.rb, ctx.user)) {
        scope->Finish();
        return;
      }
      scope->Rollback();
      if (run->needs_all) run->needs_all->store(true, std::memory_order_relaxed);
    }
  }
  ReplyTarget target = ctx.Defer();
  RunAtomic(
      engine, {}, nullptr,
      [run, engine, db, resp](AtomicScope& scope, std::string* out) {
        resp::ReplyBuilder rb(out, resp);
        scope.set_script(true);
        return RunIn(scope, engine, db, *run, &rb, nullptr);
      },
      target);
}

bool ParseNumKeys(CommandContext& ctx, size_t* numkeys, bool fcall) {
  int64_t n;
  if (!ParseInt64(ctx.arg(2), &n)) {
    ctx.Error(fcall ? OpStatus::kFunctionBadNumKeys : OpStatus::kNotAnInteger);
    return false;
  }
  if (n > static_cast<int64_t>(ctx.argc() - 3)) {
    ctx.Error(OpStatus::kNumKeysTooMany);
    return false;
  }
  if (n < 0) {
    ctx.Error(OpStatus::kNumKeysNegative);
    return false;
  }
  *numkeys = static_cast<size_t>(n);
  return true;
}

std::string KillRunningScript(bool function) {
  std::lock_guard lock(g_busy_mu);
  if (!g_busy) return FormatError(OpStatus::kNotBusy);
  if (g_busy->is_function != function)
    return FormatError(g_busy->is_function ? OpStatus::kBusyFunction : OpStatus::kBusyScript);
  if (g_busy->wrote.load(std::memory_order_relaxed)) return FormatError(OpStatus::kUnkillable);
  g_busy->kill.store(true);
  return "";
}

bool BusyScriptInfo(std::string* name, std::vector<std::string>* command, int64_t* duration_ms) {
  std::lock_guard lock(g_busy_mu);
  if (!g_busy) return false;
  *name = g_busy->name;
  *command = g_busy->command;
  *duration_ms = UnixTimeMs() - g_busy->start_ms;
  return true;
}

size_t ScriptMemoryHere(bool functions) {
  return functions ? script::LocalFunctionsMemory() : script::LocalEvalMemory();
}

namespace {

void EvalGeneric(CommandContext& ctx, bool by_sha, bool read_only) {
  size_t numkeys;
  if (!ParseNumKeys(ctx, &numkeys, false)) return;
  auto run = std::make_shared<ScriptRun>();
  run->read_only = read_only;
  if (by_sha) {
    std::string sha(ctx.arg(1));
    for (char& c : sha) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    std::optional<script::ScriptCache::Entry> e;
    if (sha.size() == 40) e = script::Scripts().Find(sha);
    if (!e) return ctx.Error(OpStatus::kNoScript);
    run->name = sha;
    run->body = e->body.substr(e->skip);
    run->flags = e->flags;
    run->needs_all = e->needs_all;
  } else {
    std::string_view body = ctx.arg(1);
    std::string error;
    size_t skip;
    if (!script::ParseShebang(body, &run->flags, &skip, &error)) return ctx.Error(error);
    // Compiled here first: a body that does not compile is not cached.
    std::string sha = HexDigest(Sha1::Of(body));
    script::Runtime& rt = script::LocalEval(DeprecatedApi(ctx.engine));
    if (!rt.HasScript(sha) && !rt.CompileScript(sha, body.substr(skip), &error)) return ctx.Error(error);
    script::Scripts().Add(body, run->flags, skip);
    std::optional<script::ScriptCache::Entry> e = script::Scripts().Find(sha);
    run->name = sha;
    run->body = std::string(body.substr(skip));
    if (e) run->needs_all = e->needs_all;
  }
  // A script with flags is checked before it runs.
  if (!(run->flags & script::kFlagEvalCompat)) {
    if (read_only && !(run->flags & script::kFlagNoWrites)) return ctx.Error(OpStatus::kScriptWriteWithRo);
    if (!(run->flags & (script::kFlagAllowOom | script::kFlagNoWrites)) &&
        !ctx.engine->AdmitUnderMaxmemory(*ctx.shard))
      return ctx.Error(OpStatus::kOutOfMemory);
  }
  run->keys.assign(ctx.args.begin() + 3, ctx.args.begin() + 3 + static_cast<long>(numkeys));
  run->args.assign(ctx.args.begin() + 3 + static_cast<long>(numkeys), ctx.args.end());
  run->command.assign(ctx.args.begin(), ctx.args.end());
  RunScript(ctx, std::move(run));
}

void Eval(CommandContext& ctx) { EvalGeneric(ctx, false, false); }
void EvalRo(CommandContext& ctx) { EvalGeneric(ctx, false, true); }
void EvalSha(CommandContext& ctx) { EvalGeneric(ctx, true, false); }
void EvalShaRo(CommandContext& ctx) { EvalGeneric(ctx, true, true); }

void ScriptLoad(CommandContext& ctx) {
  std::string_view body = ctx.arg(2);
  uint32_t flags;
  size_t skip;
  std::string error;
  if (!script::ParseShebang(body, &flags, &skip, &error)) return ctx.Error(error);
  std::string sha = HexDigest(Sha1::Of(body));
  script::Runtime& rt = script::LocalEval(DeprecatedApi(ctx.engine));
  if (!rt.HasScript(sha) && !rt.CompileScript(sha, body.substr(skip), &error)) return ctx.Error(error);
  script::Scripts().Add(body, flags, skip);
  ctx.rb->Bulk(sha);
}

void ScriptExists(CommandContext& ctx) {
  ctx.rb->ArrayHeader(ctx.argc() - 2);
  for (size_t i = 2; i < ctx.argc(); ++i) {
    std::string sha(ctx.arg(i));
    for (char& c : sha) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    ctx.rb->Integer(script::Scripts().Exists(sha) ? 1 : 0);
  }
}

void ScriptFlush(CommandContext& ctx) {
  if (ctx.argc() > 3) return ctx.Error(OpStatus::kSubcommandSyntax, ctx.arg(1), "SCRIPT");
  if (ctx.argc() == 3 && !EqualsIgnoreCase(ctx.arg(2), "sync") && !EqualsIgnoreCase(ctx.arg(2), "async"))
    return ctx.Error(OpStatus::kScriptFlushMode);
  script::Scripts().Flush();
  ctx.rb->Ok();
}

void ScriptKill(CommandContext& ctx) {
  std::string r = KillRunningScript(false);
  if (r.empty()) return ctx.rb->Ok();
  ctx.Error(std::string_view(r));
}

void ScriptHelp(CommandContext& ctx) {
  static const char* const kLines[] = {
      "SCRIPT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
      "DEBUG (YES|SYNC|NO)",
      "    Set the debug mode for subsequent scripts executed.",
      "EXISTS <sha1> [<sha1> ...]",
      "    Return information about the existence of the scripts in the script cache.",
      "FLUSH [ASYNC|SYNC]",
      "    Flush the Lua scripts cache. Very dangerous on replicas.",
      "    When called without the optional mode argument, the behavior is determined by the",
      "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
      "    * ASYNC: Asynchronously flush the scripts cache.",
      "    * SYNC: Synchronously flush the scripts cache.",
      "KILL",
      "    Kill the currently executing Lua script.",
      "LOAD <script>",
      "    Load a script into the scripts cache without executing it.",
      "HELP",
      "    Prints this help.",
  };
  ctx.HelpLines(kLines);
}

std::vector<size_t> EvalKeys(std::span<const std::string_view> args) { return NumKeysAt(args, 2); }

}  // namespace

void RegisterScriptFamily(CommandRegistry* r) {
  constexpr uint32_t NS = kCmdNoScript, S = kCmdStale, SK = kCmdSkipMonitor | kCmdNoMandatoryKeys | kCmdScriptRun, M = kCmdMayReplicate,
                     NM = kCmdNoMulti, AB = kCmdAllowBusy, LO = kCmdLocalOnly;
  auto eval = [r](const char* name, uint32_t flags, Handler h, const char* acl, const char* summary,
                  const char* since) {
    CommandSpec s = MakeCommand(name, -3, flags, 0, 0, 0, h, acl, summary, "scripting");
    s.get_keys = EvalKeys;
    s.since = since;
    r->Add(std::move(s));
  };
  eval("eval", NS | SK | M | kCmdStale, Eval, "@slow @scripting", "Executes a server-side Lua script.", "2.6.0");
  eval("evalsha", NS | SK | M | kCmdStale, EvalSha, "@slow @scripting",
       "Executes a server-side Lua script by SHA1 digest.", "2.6.0");
  eval("eval_ro", NS | SK | kCmdStale | kCmdReadOnly, EvalRo, "@slow @scripting",
       "Executes a read-only server-side Lua script.", "7.0.0");
  eval("evalsha_ro", NS | SK | kCmdStale | kCmdReadOnly, EvalShaRo, "@slow @scripting",
       "Executes a read-only server-side Lua script by SHA1 digest.", "7.0.0");

  auto sub = [](const char* name, int arity, uint32_t flags, Handler h, const char* acl, const char* summary,
                const char* since) {
    CommandSpec s = MakeCommand(name, arity, flags | LO, 0, 0, 0, h, acl, summary, "scripting");
    s.route = Route::kConnection;
    s.since = since;
    return s;
  };
  CommandSpec script = sub("script", -2, 0, nullptr, "@slow", "A container for Lua scripts management commands.", "2.6.0");
  script.subcommands.push_back(sub("script|exists", -3, NS, ScriptExists, "@slow @scripting",
                                   "Determines whether server-side Lua scripts exist in the script cache.", "2.6.0"));
  script.subcommands.push_back(sub("script|flush", -2, NS, ScriptFlush, "@slow @scripting",
                                   "Removes all server-side Lua scripts from the script cache.", "2.6.0"));
  script.subcommands.push_back(sub("script|help", 2, kCmdLoading | S, ScriptHelp, "@slow @scripting",
                                   "Returns helpful text about the different subcommands.", "5.0.0"));
  script.subcommands.push_back(sub("script|kill", 2, NS | AB, ScriptKill, "@slow @scripting",
                                   "Terminates a server-side Lua script during execution.", "2.6.0"));
  script.subcommands.push_back(sub("script|load", 3, NS | S, ScriptLoad, "@slow @scripting",
                                   "Loads a server-side Lua script to the script cache.", "2.6.0"));
  (void)NM;
  r->Add(std::move(script));
}

}  // namespace larder
