// Running a script or a function as an atomic unit: what EVAL* (script_family.cc)
// and FCALL* (function_family.cc) share.
//
//   handler (on the keys' shard, or exclusive) → AtomicScope::Here(ctx),
//   undo on → the runtime runs the code; each redis.call goes through
//   ScriptHost::Call: resolve, the script checks (no-script commands,
//   writes from a read-only script, deny-oom), SELECT kept as the script's
//   own db, then scope.Call → the reply back to Lua.
//   A call that reaches a key on a shard not held stops the run
//   (uncatchably), its writes are rolled back, and it runs again holding
//   every shard (RunAtomic with no shard list); the script is remembered
//   as needing them.
#pragma once

#include <atomic>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "engine/command.h"

namespace larder {

struct ScriptRun {
  bool is_function = false;
  bool read_only = false;         // EVAL_RO, EVALSHA_RO, FCALL_RO
  uint32_t flags = 0;             // script::ScriptFlag
  std::string name;               // sha (EVAL) or function name (FCALL)
  std::string body;               // EVAL: the chunk (shebang line cut)
  std::vector<std::string> keys;  // copied: a rerun outlives the handler's views
  std::vector<std::string> args;
  std::vector<std::string> command;  // the whole command line (FUNCTION STATS)
  std::shared_ptr<std::atomic<bool>> needs_all;  // EVAL: remembered per sha
};

// Runs `run` for the handler of ctx and writes its reply (now, or later
// through ctx.Defer() when it must run again holding every shard).
void RunScript(CommandContext& ctx, std::shared_ptr<ScriptRun> run);

// Parses numkeys at args[2] as EVAL and FCALL do; false with the error replied.
bool ParseNumKeys(CommandContext& ctx, size_t* numkeys, bool fcall);

// SCRIPT KILL / FUNCTION KILL, from any thread: asks the running script
// to stop. Returns the reply line ("" for OK).
std::string KillRunningScript(bool function);

// The busy script (past busy-reply-threshold), for FUNCTION STATS: false if none.
bool BusyScriptInfo(std::string* name, std::vector<std::string>* command, int64_t* duration_ms);

// INFO: the memory of the interpreters of the calling shard thread.
size_t ScriptMemoryHere(bool functions);

}  // namespace larder
