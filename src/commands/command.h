// Commands are declared as data: one CommandSpec per command (name, arity,
// flags, key positions, handler), registered by each family in one table at the
// end of its file. The dispatcher does every common check from the spec
// (unknown command, arity, authentication, routing by key), so a handler only
// parses its arguments, runs the operation and writes the reply:
//
//   parse args → Db operation (returns a value or an OpStatus) → ReplyBuilder
//
// Handlers of keyed commands run on the shard that owns the keys; handlers of
// connection commands (Route::kConnection) run on the client's thread.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "keyspace/db.h"
#include "resp/reply_builder.h"

namespace larder {

class Shard;
class Server;
class Connection;
struct ClientState;

enum CmdFlag : uint32_t {
  kCmdWrite = 1u << 0,
  kCmdReadOnly = 1u << 1,
  kCmdDenyOom = 1u << 2,
  kCmdFast = 1u << 3,
  kCmdAdmin = 1u << 4,
  kCmdNoAuth = 1u << 5,      // allowed before AUTH
  kCmdLoading = 1u << 6,
  kCmdStale = 1u << 7,
  kCmdNoScript = 1u << 8,
  kCmdSkipMonitor = 1u << 9,
  kCmdSkipSlowlog = 1u << 10,
  kCmdBlocking = 1u << 11,
  kCmdAllowBusy = 1u << 12,
  kCmdNoMulti = 1u << 13,
  kCmdSentinel = 1u << 14,
  kCmdPubSub = 1u << 15,
  kCmdMayReplicate = 1u << 16,
  // Internal: a connection command that may answer asynchronously (gathers
  // from shards); it waits for earlier pipelined commands to finish. Set by
  // the registry on every Route::kConnection command not marked kCmdLocalOnly.
  kCmdGathers = 1u << 20,
  // Internal: a connection command that only touches the client's own state
  // and replies at once, so it may run in the middle of a pipelined batch.
  kCmdLocalOnly = 1u << 21,
};

enum class Route : uint8_t {
  kKeys,        // runs where its keys live (see CommandSpec::fan_out for several shards)
  kConnection,  // runs on the client's own thread, may answer asynchronously
};

struct CommandContext;
using Handler = void (*)(CommandContext&);

// Set on the context of a blocking command (kCmdBlocking).
struct BlockRequest {
  bool serving = false;      // re-run for a waiter: reply if data is there, never block
  bool wants_block = false;  // set by the handler (RequestBlock) when it found no data
  int64_t timeout_ms = 0;
  std::vector<std::string> keys;
  int client_shard = 0;  // who runs the command (CACHE FETCH leases)
  uint64_t client_id = 0;
};

struct CommandSpec {
  std::string name;       // lowercase; "config|get" for a subcommand
  int arity = 0;          // Redis meaning: negative = at least -arity
  uint32_t flags = 0;
  int first_key = 0, last_key = 0, step = 0;  // last_key < 0 counts from the end
  Handler handler = nullptr;
  Route route = Route::kKeys;
  // For keyed commands whose keys span shards: runs on the client's thread and
  // fans out itself (MGET, DEL, ...). Without it the command runs as one
  // exclusive operation across the shards involved (MSET, RENAME, ...).
  Handler fan_out = nullptr;
  // For commands whose keys are not a fixed range (SINTERCARD numkeys k...,
  // ZUNION, LMPOP): returns the key indexes, or none if the arguments are
  // malformed (the handler then reports the error).
  std::vector<size_t> (*get_keys)(std::span<const std::string_view> args) = nullptr;
  std::string acl_categories;   // "@write @string @slow"
  std::string summary;          // for COMMAND DOCS
  std::string since = "1.0.0";
  std::string group = "generic";
  std::vector<CommandSpec> subcommands;
  int id = -1;                  // dense index for statistics
  const CommandSpec* parent = nullptr;

  bool ArityOk(size_t argc) const {
    return arity >= 0 ? argc == static_cast<size_t>(arity) : argc >= static_cast<size_t>(-arity);
  }
  // Indexes of the key arguments of a command line.
  std::vector<size_t> KeyIndexes(std::span<const std::string_view> args) const;
  // The full name as errors and statistics print it ("config|get").
  const std::string& full_name() const { return name; }
};

// Everything a handler may touch. The reply builder writes into the buffer
// that goes back to the client; `shard` is the shard executing the handler.
struct CommandContext {
  CommandContext() = default;
  // The fields every handler call sets; the optional ones are set after.
  CommandContext(std::span<const std::string_view> a, resp::ReplyBuilder* r, Shard* sh, Server* sv,
                 const CommandSpec* sp, int db)
      : args(a), rb(r), shard(sh), server(sv), spec(sp), db_index(db) {}

  std::span<const std::string_view> args;
  resp::ReplyBuilder* rb = nullptr;
  Shard* shard = nullptr;
  Server* server = nullptr;
  const CommandSpec* spec = nullptr;
  int db_index = 0;
  // Set only for Route::kConnection and fan-out handlers (client's thread).
  Connection* conn = nullptr;
  // True when running with the shards of all the command's keys parked.
  bool exclusive = false;
  // Non-null for blocking commands (see commands/blocking.h).
  BlockRequest* block = nullptr;
  // Write-through: the command runs against this copy of its key first.
  Db* scratch = nullptr;

  size_t argc() const { return args.size(); }
  std::string_view arg(size_t i) const { return args[i]; }
  // The selected database on the shard that owns `key` (exclusive-aware).
  Db& DbFor(std::string_view key);
  Db& DbFor(std::string_view key, int db_index);
  // The selected database on the executing shard.
  Db& db();

  // Error replies come from the table in common/status.h; `args` fill the
  // entry's "{}" placeholders. The string_view form is for a line built
  // elsewhere (already from the table, e.g. one a shard sends back).
  void Error(OpStatus s) { rb->Error(FormatError(s)); }
  template <typename... A>
  void Error(OpStatus s, A&&... args) {
    rb->Error(FormatError(s, args...));
  }
  void Error(std::string_view msg) { rb->Error(msg); }
  void SyntaxError() { rb->Error(FormatError(OpStatus::kSyntaxError)); }
  void ArityError();
  // A HELP reply: each line as a simple string.
  void HelpLines(std::span<const char* const> lines);
};

// Builds a spec from the common fields; families set the rest (route,
// fan_out, get_keys, since, subcommands) on the result.
CommandSpec MakeCommand(std::string name, int arity, uint32_t flags, int first_key, int last_key, int step,
                        Handler handler, std::string acl, std::string summary, std::string group);

class CommandRegistry {
 public:
  CommandRegistry();
  // Case-insensitive lookup of a top-level command.
  const CommandSpec* Find(std::string_view name) const;
  const std::vector<const CommandSpec*>& all() const { return flat_; }  // every command and subcommand
  const std::vector<CommandSpec>& top() const { return commands_; }
  size_t count() const { return commands_.size(); }

  void Add(CommandSpec spec);

 private:
  std::vector<CommandSpec> commands_;
  std::vector<const CommandSpec*> flat_;
  void Finalize();
  friend const CommandRegistry& Commands();
};

// The process-wide table, built once on first use from the family tables.
const CommandRegistry& Commands();

// Family registration functions, listed explicitly in registry.cc (no static
// initialisers, so the order and the set of families are visible in one place).
void RegisterConnectionFamily(CommandRegistry* r);
void RegisterKeysFamily(CommandRegistry* r);
void RegisterStringFamily(CommandRegistry* r);
void RegisterHashFamily(CommandRegistry* r);
void RegisterSetFamily(CommandRegistry* r);
void RegisterListFamily(CommandRegistry* r);
void RegisterZSetFamily(CommandRegistry* r);
void RegisterBitmapFamily(CommandRegistry* r);
void RegisterGeoFamily(CommandRegistry* r);
void RegisterHllFamily(CommandRegistry* r);
void RegisterMemoryFamily(CommandRegistry* r);
void RegisterCacheFamily(CommandRegistry* r);

// Keys of "numkeys key [key ...]" commands: numkeys at args[pos].
std::vector<size_t> NumKeysAt(std::span<const std::string_view> args, size_t pos);
void RegisterServerFamily(CommandRegistry* r);

}  // namespace larder
