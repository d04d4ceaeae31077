// The Lua runtime of EVAL and FCALL: one interpreter (Lua 5.1) per shard
// thread and kind (scripts, function libraries), made lazily, knowing no
// command and no server. What a script asks of the server (redis.call,
// redis.acl_check_cmd, redis.log, the busy check) goes through a `Host`
// that the command layer implements for the one run.
//
//   EVAL body:  CompileScript(sha, body)  → the chunk kept as f_<sha>
//               Run("f_<sha>", keys, args, host, rb) → KEYS/ARGV globals,
//               the chunk runs, its value is written to rb as RESP
//   FUNCTION:   LoadLibrary(code)  → runs the library with only
//               redis.register_function (and log) visible; keeps the
//               functions it registered under their names
//               Run(name, keys, args, host, rb) → callback(KEYS, ARGV)
//
// The sandbox is Redis's: the base library without dofile/loadfile/print
// (and setfenv/getfenv/newproxy), table, string, math, cjson, bit, struct,
// cmsgpack; every global and every library table is read-only, and reading
// a global that does not exist is an error. Conversions between Lua values
// and RESP follow Redis 7.0 (see lua_runtime.cc).
//
// Thread rule: a Runtime is used by the thread that made it only.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "resp/reply_builder.h"

struct lua_State;

namespace larder::script {

// Flags of a script (its "#!lua flags=" line) or of a function
// (register_function's flags).
enum ScriptFlag : uint32_t {
  kFlagNoWrites = 1u << 0,
  kFlagAllowOom = 1u << 1,
  kFlagAllowStale = 1u << 2,
  kFlagNoCluster = 1u << 3,
  kFlagAllowCrossSlot = 1u << 4,
  // A script without a shebang line: Redis's compatible mode (no flag
  // checks before the run, deny-oom checked per command).
  kFlagEvalCompat = 1u << 10,
};

// Parses the "#!lua ..." first line of an EVAL body. Without one: the
// compat flag, *skip 0. *skip: the bytes the line takes (the chunk starts
// after it). False with the error line on a bad line.
bool ParseShebang(std::string_view body, uint32_t* flags, size_t* skip, std::string* error);
// Parses "#!lua name=<lib>" of a library; false with the error line.
bool ParseLibraryShebang(std::string_view code, std::string* name, size_t* skip, std::string* error);
// Flag names ("no-writes"...) as FUNCTION LIST prints them.
std::vector<std::string> FlagNames(uint32_t flags);

// What a running script asks of the server.
class Host {
 public:
  virtual ~Host() = default;
  enum class Outcome : uint8_t {
    kReply,  // *out: the command's RESP reply in protocol `resp` (an error reply included)
    kError,  // *out: a refusal's error line, without '-' ("ERR Unknown Redis command ...")
    kAbort,  // the run must stop now, uncatchably (*out: the reason, unused)
  };
  virtual Outcome Call(std::span<const std::string_view> argv, int resp, std::string* out) = 0;
  // redis.acl_check_cmd: 1 allowed, 0 denied, -1 no such command.
  virtual int AclCheck(std::span<const std::string_view> argv) = 0;
  // Called from the instruction hook every so often: false stops the run
  // (SCRIPT KILL, a stopped unit); *reason is then the error line.
  virtual bool Continue(std::string* reason) = 0;
  virtual void Log(int level, std::string_view message) = 0;
};

class Runtime {
 public:
  enum class Kind : uint8_t { kEval, kFunction };
  Runtime(Kind kind, bool deprecated_api);
  ~Runtime();
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  Kind kind() const { return kind_; }

  // Scripts (Kind::kEval). `body` without its shebang line.
  bool HasScript(std::string_view sha) const;
  bool CompileScript(std::string_view sha, std::string_view body, std::string* error);

  // Libraries (Kind::kFunction). Runs `code` (its shebang line already
  // cut) and returns the functions it registered; false with the error.
  struct Function {
    std::string name;
    std::string description;
    bool has_description = false;
    uint32_t flags = 0;
  };
  bool LoadLibrary(std::string_view code, std::vector<Function>* functions, std::string* error);
  bool HasFunction(std::string_view name) const;
  // Drops the functions (a library deleted or replaced).
  void DropFunction(std::string_view name);

  // Runs script f_<sha> (eval) or function `name`, writing its reply (or
  // its error) to rb. `name_in_errors`: the sha or the function name, as
  // errors cite it. Returns false when the host aborted the run (nothing
  // was written to rb).
  bool Run(std::string_view name, std::string_view name_in_errors, std::span<const std::string_view> keys,
           std::span<const std::string_view> args, Host& host, resp::ReplyBuilder* rb);

  // Lua's own memory (used_memory_lua, used_memory_vm_eval).
  size_t memory() const;

  // Internal state reached from the C functions Lua calls.
  struct State;

 private:
  Kind kind_;
  std::unique_ptr<State> st_;
};

}  // namespace larder::script
