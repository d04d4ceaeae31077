// Commands are declared as data: one CommandSpec per command (name, arity,
// flags, key positions, handler), registered by each family in one table at the
// end of its file. The dispatcher does every common check from the spec
// (unknown command, arity, authentication, routing by key), so a handler only
// parses its arguments, runs the operation and writes the reply:
//
//   parse args → Db operation (returns a value or an OpStatus) → ReplyBuilder
//
// Handlers of keyed commands run on the shard that owns the keys; handlers of
// connection commands (Route::kConnection) run on the client's thread. Every
// handler is called by one function, Execute() (engine/executor.h).
#pragma once

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "engine/key_specs.h"
#include "common/status.h"
#include "keyspace/db.h"
#include "resp/reply_builder.h"

namespace larder {

class Shard;
class Engine;
namespace acl {
struct User;
}
class Client;
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
  kCmdNoAsyncLoading = 1u << 17,
  kCmdAsking = 1u << 18,
  // Key positions come from a function (get_keys) or from key specs that are
  // not a plain index + range. Set by the registry (as Redis derives it).
  kCmdMovableKeys = 1u << 19,
  // Internal: a connection command that may answer asynchronously (gathers
  // from shards); it waits for earlier pipelined commands to finish. Set by
  // the registry on every Route::kConnection command not marked kCmdLocalOnly.
  kCmdGathers = 1u << 20,
  // Internal: a connection command that only touches the client's own state
  // and replies at once, so it may run in the middle of a pipelined batch.
  kCmdLocalOnly = 1u << 21,
  // May run with no key (EVAL's numkeys 0): COMMAND INFO's no_mandatory_keys.
  kCmdNoMandatoryKeys = 1u << 23,
  // Internal: a script (EVAL*, FCALL*). It may have to run again holding
  // every shard (engine/atomic.h), so no later command of its client runs
  // before it: on another shard it runs alone, not in a group.
  kCmdScriptRun = 1u << 24,
  // Runs even between MULTI and EXEC instead of being queued (EXEC, DISCARD,
  // MULTI, WATCH, QUIT, RESET: Redis's list in processCommand).
  kCmdNotQueued = 1u << 22,
  // Allowed to a RESP2 client with subscriptions (the SUBSCRIBE family,
  // PING, QUIT, RESET); any other command is refused there.
  kCmdSubscribedOk = 1u << 25,
  // Its replies are confirmations Redis sends even under CLIENT REPLY OFF
  // (SUBSCRIBE and the like: pushes).
  kCmdPushReply = 1u << 26,
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
  // Set by a handler whose command means something else when re-run (XREAD's
  // "$"): the waiter re-runs these arguments instead.
  std::vector<std::string> args;
  // The waiter also runs when its key is deleted (XREADGROUP answers that
  // its stream is gone).
  bool wake_on_delete = false;
  int client_shard = 0;  // who runs the command (CACHE FETCH leases)
  uint64_t client_id = 0;
};

// Where a reply that comes later goes: the client's thread, the client, and
// the reply's place in its pipeline (engine/pipeline.h). Copied freely; a
// reply for a client that went away, or for a place already answered, is
// dropped.
struct ReplyTarget {
  int client_shard = -1;
  uint64_t client_id = 0;
  uint32_t batch = 0;     // the client's batch the reply belongs to
  int32_t group = -1;     // >= 0: command `index` of the batch's group for that shard
  uint32_t index = 0;     // else: the client's late slot `index`
  // Inside an atomic unit (engine/atomic.h): the reply is appended here, at
  // once, while that unit runs (dropped after).
  std::string* capture = nullptr;
  bool valid() const { return client_shard >= 0 || capture; }
};

// The key arguments of one command line, as argument indexes. Up to eight
// live inline (no allocation: the routing of every command reads them).
class KeyPositions {
 public:
  KeyPositions() = default;
  explicit KeyPositions(const std::vector<size_t>& v) {
    for (size_t i : v) push_back(i);
  }
  KeyPositions(KeyPositions&&) = default;
  KeyPositions& operator=(KeyPositions&&) = default;
  void push_back(size_t i) {
    if (n_ < kInline) {
      inline_[n_++] = static_cast<uint32_t>(i);
      return;
    }
    if (n_ == kInline || n_ == cap_) Grow();
    heap_[n_++] = static_cast<uint32_t>(i);
  }
  size_t size() const { return n_; }
  bool empty() const { return n_ == 0; }
  size_t operator[](size_t i) const { return data()[i]; }
  size_t front() const { return data()[0]; }
  const uint32_t* begin() const { return data(); }
  const uint32_t* end() const { return data() + n_; }

 private:
  static constexpr size_t kInline = 8;
  const uint32_t* data() const { return n_ <= kInline ? inline_ : heap_.get(); }
  void Grow() {
    size_t cap = n_ == kInline ? 2 * kInline : 2 * cap_;
    std::unique_ptr<uint32_t[]> h(new uint32_t[cap]);
    for (size_t i = 0; i < n_; ++i) h[i] = data()[i];
    heap_ = std::move(h);
    cap_ = cap;
  }
  uint32_t inline_[kInline];
  uint32_t n_ = 0;
  uint32_t cap_ = 0;
  std::unique_ptr<uint32_t[]> heap_;
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
  // Arguments SLOWLOG and MONITOR show as "(redacted)" (MIGRATE's
  // passwords, as Redis's redactClientCommandArgument): their indexes.
  std::vector<size_t> (*redacted_args)(std::span<const std::string_view> args) = nullptr;
  // For commands that may reach keys no key argument names (SORT's BY and
  // GET patterns): true when this command line may, and then it runs as one
  // exclusive operation over every shard, reaching each key through
  // ctx.DbFor(). Left null, or false, it is routed by its key arguments. A
  // command with it is never routed as a one-key command (single_key 0).
  bool (*needs_all_shards)(std::span<const std::string_view> args) = nullptr;
  // Which of a write command's keys it writes (the others it only reads):
  // all of them (SET, MSET, RENAME, LMOVE), only the first (the destination
  // of SINTERSTORE, ZUNIONSTORE, BITOP, PFMERGE...) or only the second
  // (COPY's destination).
  enum class Writes : uint8_t { kAll, kFirst, kSecond };
  Writes writes = Writes::kAll;
  std::string acl_categories;   // "@write @string @slow"
  std::string summary;          // for COMMAND DOCS
  std::string since = "1.0.0";
  std::string group = "generic";
  std::vector<CommandSpec> subcommands;
  // COMMAND INFO's tips and key specs. Left empty, the registry fills them
  // with Redis's (by name) or, for a Larder command, derives one key spec
  // from the key range; `legacy_range` and kCmdMovableKeys follow from them.
  std::vector<std::string> tips;
  std::vector<KeySpec> key_specs;
  LegacyRange legacy_range;
  int id = -1;                  // dense index for statistics
  // The argument index of the only key of a one-key command (GET, SET,
  // HSET...), 0 for every other command; set by the registry, so that the
  // routing of most commands needs no key list at all.
  int single_key = 0;
  const CommandSpec* parent = nullptr;

  bool ArityOk(size_t argc) const {
    return arity >= 0 ? argc == static_cast<size_t>(arity) : argc >= static_cast<size_t>(-arity);
  }
  // Indexes of the key arguments of a command line.
  KeyPositions KeyIndexes(std::span<const std::string_view> args) const;
  // Whether key number `nth` (0-based, of KeyIndexes) is written.
  bool WritesKey(size_t nth) const {
    if (!(flags & kCmdWrite)) return false;
    return writes == Writes::kAll || (writes == Writes::kFirst ? nth == 0 : nth == 1);
  }
  // The full name as errors and statistics print it ("config|get").
};

// Everything a handler may touch. The reply builder writes into the buffer
// that goes back to the client; `shard` is the shard executing the handler.
struct CommandContext {
  CommandContext() = default;
  // The fields every handler call sets; the optional ones are set after.
  CommandContext(std::span<const std::string_view> a, resp::ReplyBuilder* r, Shard* sh, Engine* e,
                 const CommandSpec* sp, int db)
      : args(a), rb(r), shard(sh), engine(e), spec(sp), db_index(db) {}

  std::span<const std::string_view> args;
  resp::ReplyBuilder* rb = nullptr;
  Shard* shard = nullptr;
  Engine* engine = nullptr;
  const CommandSpec* spec = nullptr;
  int db_index = 0;
  // Set only for Route::kConnection and fan-out handlers (client's thread).
  Client* client = nullptr;
  // True when running with the shards of all the command's keys parked.
  bool exclusive = false;
  // Non-null for blocking commands (see engine/blocking.h).
  BlockRequest* block = nullptr;
  // The ACL user the command runs as, for a handler whose behaviour depends
  // on it (SORT's BY and GET); null for an internal call (no restriction).
  const acl::User* user = nullptr;
  // Called from a script (redis.call): Call::from_script.
  bool from_script = false;
  // Write-through: the command runs against this copy of its key first.
  Db* scratch = nullptr;
  // Set by Defer(): the reply comes later.
  bool deferred = false;
  // Set by DeferredReply: its Finish times the command (LATENCY HISTOGRAM).
  bool timed_later = false;
  // The reply's place when the call brought one (Call::target): what Defer()
  // returns for a caller with no Client (the command test fixture; later a
  // script or EXEC).
  ReplyTarget target;
  // Propagation (engine/propagate.h): non-null while the AOF (or later a
  // replica) listens. A handler whose command must be logged as something
  // else (relative TTLs made absolute, SPOP as SREM, XADD * with its ID)
  // calls Propagate() with each command it is logged as, or
  // PropagateNothing(); otherwise a successful write is logged as sent.
  std::string* propagation = nullptr;
  bool propagate_custom = false;
  void Propagate(std::span<const std::string_view> args);
  void Propagate(std::initializer_list<std::string_view> args) {
    Propagate(std::span<const std::string_view>(args.begin(), args.size()));
  }
  void PropagateNothing() { propagate_custom = true; }
  // A write command that found nothing to change (SETBIT of the bit it
  // already has): not logged, and not counted in the dirty counter.
  bool unchanged = false;
  void NothingChanged() {
    unchanged = true;
    PropagateNothing();
  }

  size_t argc() const { return args.size(); }
  std::string_view arg(size_t i) const { return args[i]; }
  // The selected database on the shard that owns `key` (exclusive-aware).
  Db& DbFor(std::string_view key);
  Db& DbFor(std::string_view key, int db_index);
  // The selected database on the executing shard.
  Db& db();

  // A handler on the client's thread (connection and fan-out commands) that
  // answers later: it writes nothing now and delivers the reply to the
  // returned target with Engine::Deliver() once it has it. The client
  // runs nothing else meanwhile. Without a Client the call's own `target`
  // is the place.
  ReplyTarget Defer();
  // The call being run (Defer: a late slot in its group, when it has one).
  const struct Call* call = nullptr;
  // The client that sent the command (connection and fan-out handlers).
  ClientState& client_state();
  // A reply that grows with a count the client chose (HRANDFIELD -N, ...)
  // stops once the buffer, with `more` bytes still to come, passes the
  // client-output-buffer-limit hard limit: the client is then disconnected
  // without it (Redis stops such a command when the client is to be
  // closed). `more` must not exceed what the rest adds to the reply.
  bool ReplyOverLimit(size_t more = 0) const;
  // Whether a protected action set to "local" is allowed: a loopback
  // client, or an in-process caller (no client).
  bool from_loopback() const;

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
  // Case-insensitive lookup of a top-level command: an ASCII case fold and
  // an open-addressing table of its own (no allocation, a few dozen
  // instructions for a short name).
  const CommandSpec* Find(std::string_view name) const;
  // A subcommand of `parent` ("config" + "get"), case-insensitive; null if none.
  const CommandSpec* FindSub(const CommandSpec& parent, std::string_view sub) const;
  // A command or "container|subcommand" (COMMAND INFO/DOCS, LATENCY HISTOGRAM).
  const CommandSpec* FindByFullName(std::string_view name) const;
  const std::vector<const CommandSpec*>& all() const { return flat_; }  // every command and subcommand
  const std::vector<CommandSpec>& top() const { return commands_; }
  size_t count() const { return commands_.size(); }

  void Add(CommandSpec spec);
  // rename-command: clients call `from` by the name `to` from now on, or
  // not at all when `to` is empty (its statistics keep the real name, as
  // Redis). Before Finalize(); false with the reason if it cannot.
  bool Rename(std::string_view from, std::string_view to, std::string* err);
  // Sorts the table, numbers the commands and builds the index; call once
  // after the last Add().
  void Finalize();

 private:
  std::vector<CommandSpec> commands_;
  std::vector<const CommandSpec*> flat_;
  // Open addressing over folded names (power-of-two size, linear probing):
  // the name clients use (the command's own unless renamed) and the command.
  struct Slot {
    std::string name;
    const CommandSpec* spec = nullptr;
  };
  std::vector<Slot> slots_;
  size_t mask_ = 0;
  std::vector<std::pair<std::string, std::string>> renames_;  // (real name, name clients use or "")
};

// The process-wide table. The families fill it (commands/families.h,
// RegisterFamilies) and InstallCommands() makes it the one every thread
// reads; both happen once at start-up, before any shard runs.
const CommandRegistry& Commands();
void InstallCommands(const CommandRegistry* table);

// The keys of a command line with their key spec flags (Redis's
// getKeysFromCommandWithSpecs): COMMAND GETKEYSANDFLAGS and the ACL key
// check read them.
std::vector<KeySpecRef> KeysWithFlags(const CommandSpec& c, std::span<const std::string_view> argv);

// Keys of "numkeys key [key ...]" commands: numkeys at args[pos].
std::vector<size_t> NumKeysAt(std::span<const std::string_view> args, size_t pos);

}  // namespace larder
