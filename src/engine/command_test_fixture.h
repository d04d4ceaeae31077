// In-process command tests: a GoogleTest fixture that starts an Engine (its
// shard threads, no listener, no socket) and runs commands through the same
// path a connection's commands take, so a family's behaviour is tested in a
// unit test beside it:
//
//   Run({"SET", "k", "v"}) ──► ResolveCommand (lookup, subcommand, arity, as
//   Dispatch) ──► the fixture's "client shard" ──► route as Dispatch does:
//     connection command / keys on the client shard → Execute there
//     keys on another shard                         → Execute on that shard
//     keys on several shards                        → the fan-out coordinator
//                                                     (Call::fan_out), else
//                                                     StartExclusive
//     blocking                                      → StartBlocking
//   ──► the reply: at once, or later through Engine::Deliver to the
//   fixture's receiver (EngineShard::receivers) ──► parsed into a RespValue.
//
// Every call carries a ReplyTarget with the fixture's client id, so a reply
// that comes later (a read-through load, a gather over shards, a blocking
// pop, write-through) reaches the test like any other.
//
// Compiled into the unit test binary only. The fixture knows no command
// family (src/engine may not include src/commands): it takes the function
// that fills the command table; src/commands/command_test_base.h passes
// RegisterFamilies.
//
// Limits: commands that need a Client object (ctx.client: AUTH, HELLO,
// SELECT, QUIT, RESET, CLIENT ..., MONITOR, DEBUG) are refused with a test
// failure; use set_db()/set_resp() for what SELECT and HELLO would change.
// The list of those is kept by hand (NeedsClient in the .cc): a new handler
// that touches ctx.client must join it, or its test dereferences null.
// There is no MULTI, no pub/sub and no pipeline batching (each Run is one
// command; Send/Wait overlap several): a command for another shard travels
// as its own message, not in a CommandGroup (ExecuteGroup), and CLIENT PAUSE
// and the MONITOR feed are not applied.
#pragma once

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <concepts>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "engine/command.h"
#include "engine/engine.h"

namespace larder {

// One parsed RESP2/RESP3 reply.
struct RespValue {
  enum class Type : uint8_t {
    kSimple,     // +OK
    kError,      // -ERR ... / !len (str: the line without '-')
    kInteger,    // :1
    kBulk,       // $3 foo
    kNull,       // $-1, *-1, _ (null_kind says which)
    kArray,      // *n
    kMap,        // %n (elems: key, value, key, value ...)
    kSet,        // ~n
    kPush,       // >n
    kDouble,     // ,1.5 (str: as sent)
    kBool,       // #t (integer: 1 / 0)
    kVerbatim,   // =len txt:... (str: the text, format: "txt")
    kBigNumber,  // (123 (str: as sent)
  };
  Type type = Type::kNull;
  std::string str;
  int64_t integer = 0;
  std::vector<RespValue> elems;
  char null_kind = '$';  // '$', '*' or '_'
  std::string format;    // verbatim strings

  bool is_error() const { return type == Type::kError; }
  bool is_null() const { return type == Type::kNull; }
  bool is_int() const { return type == Type::kInteger; }
  // A string-like reply: simple, bulk, verbatim.
  bool is_string() const { return type == Type::kSimple || type == Type::kBulk || type == Type::kVerbatim; }
  // An aggregate: array, map, set, push.
  bool is_aggregate() const {
    return type == Type::kArray || type == Type::kMap || type == Type::kSet || type == Type::kPush;
  }
  size_t size() const { return elems.size(); }
  const RespValue& operator[](size_t i) const { return elems.at(i); }

  // The elements of an aggregate as strings (strings as they are, integers
  // and doubles in decimal, nil as "(nil)"), for gmock's container matchers.
  std::vector<std::string> strings() const;
  // A map (or a RESP2 flat array of pairs) as field → value.
  std::map<std::string, std::string> pairs() const;
  // redis-cli-like text, for failure messages.
  std::string DebugString() const;
};

// Parses one complete reply at the front of `in` into *out; returns the
// bytes it took, or 0 if `in` holds no complete, well-formed reply.
size_t ParseRespValue(std::string_view in, RespValue* out);

// EXPECT_EQ(Run({"GET", "k"}), "v"): a string reply with these bytes.
bool operator==(const RespValue& v, std::string_view s);
// EXPECT_EQ(Run({"INCR", "k"}), 1): an integer reply.
template <std::integral T>
bool operator==(const RespValue& v, T n) {
  return v.type == RespValue::Type::kInteger && v.integer == static_cast<int64_t>(n);
}
void PrintTo(const RespValue& v, std::ostream* os);

// An expected element of ArrayOf: a string, an integer, or kNil.
struct NilT {};
inline constexpr NilT kNil{};
struct RespElem {
  RespElem(const char* s) : kind(kString), str(s) {}
  RespElem(std::string s) : kind(kString), str(std::move(s)) {}
  RespElem(std::string_view s) : kind(kString), str(s) {}
  RespElem(int n) : kind(kInt), integer(n) {}
  RespElem(int64_t n) : kind(kInt), integer(n) {}
  RespElem(NilT) : kind(kNull) {}
  enum Kind { kString, kInt, kNull } kind;
  std::string str;
  int64_t integer = 0;
  bool Matches(const RespValue& v) const;
  std::string Describe() const;
};

// Matchers for EXPECT_THAT.
// An error reply whose line starts with `prefix` ("WRONGTYPE", "ERR value is not").
::testing::Matcher<const RespValue&> IsError(std::string prefix = "");
// A null reply (any of $-1, *-1, _).
::testing::Matcher<const RespValue&> IsNil();
// An OK status reply.
::testing::Matcher<const RespValue&> IsOk();
// An aggregate with exactly these elements, in order / in any order.
::testing::Matcher<const RespValue&> ArrayOf(std::vector<RespElem> elems);
::testing::Matcher<const RespValue&> UnorderedArrayOf(std::vector<RespElem> elems);
// An integer reply in [lo, hi] (TTLs, sizes).
::testing::Matcher<const RespValue&> IntBetween(int64_t lo, int64_t hi);

class CommandTest : public ::testing::Test {
 public:
  using RegisterFn = void (*)(CommandRegistry*);

  struct Options {
    int threads = 2;
    // redis.conf lines, applied as a config file ("maxmemory 1mb",
    // "cache-source db sqlite:/path", "cache-rule ..."). `dir` is set to
    // the test's temporary directory first.
    std::vector<std::string> config;
    // How long Run waits for a reply (a load, a blocking pop) before it fails.
    std::chrono::milliseconds reply_timeout{10000};
    int client_shard = 0;
  };

 protected:
  explicit CommandTest(RegisterFn register_commands);
  ~CommandTest() override;

  // Override to change the options; called by SetUp before the engine
  // starts, with temp_dir() made (prepare the files the config names there).
  virtual void Configure(Options& options) {}

  void SetUp() override;
  void TearDown() override;

  // Runs one command and waits for its reply.
  RespValue Run(std::initializer_list<std::string_view> args);
  RespValue Run(const std::vector<std::string>& args);
  // Starts a command without waiting; Wait(ticket) returns its reply.
  // Commands start in the order sent, as one client's would.
  uint32_t Send(std::vector<std::string> args);
  RespValue Wait(uint32_t ticket);
  // The integer reply of a command (a test failure if it is not one).
  int64_t RunInt(std::initializer_list<std::string_view> args);
  // Whether the reply the last Wait/Run returned came later, through
  // Engine::Deliver (a load, a gather over shards, an exclusive operation, a
  // blocking pop, write-through), rather than from Execute at once.
  bool last_reply_deferred() const { return last_deferred_; }

  // The database and protocol the next commands use (what SELECT and HELLO
  // change for a connection).
  void set_db(int db) { db_ = db; }
  void set_resp(int resp) { resp_ = resp; }

  Engine& engine() { return *engine_; }
  Config& config() { return *config_; }
  const Options& options() const { return options_; }
  // This test's own directory (the config's `dir`), removed after it.
  const std::string& temp_dir() const { return temp_dir_; }
  int ShardOf(std::string_view key) const;
  // A key "<prefix><n>" that lives on `shard`.
  std::string KeyOnShard(int shard, std::string_view prefix = "key:") const;
  // Runs fn on shard `shard`'s thread and waits for it.
  void RunOnShard(int shard, std::function<void(Shard&)> fn);
  // Polls `cond` until it holds or `timeout` passes; returns its last value.
  static bool WaitUntil(const std::function<bool()>& cond,
                        std::chrono::milliseconds timeout = std::chrono::milliseconds(5000));

 private:
  struct Request;
  void Start(std::shared_ptr<Request> req);
  void OnReply(const ReplyTarget& target, std::string reply);
  static const CommandRegistry* TableFor(RegisterFn fn);

  RegisterFn register_;
  Options options_;
  std::unique_ptr<Config> config_;
  std::unique_ptr<Engine> engine_;
  std::string temp_dir_;
  std::string saved_cwd_;  // `dir` changes the working directory; restored after
  bool started_ = false;
  uint64_t client_id_ = 0;
  int db_ = 0;
  int resp_ = 2;
  bool last_deferred_ = false;

  std::mutex mu_;
  std::condition_variable cv_;
  uint32_t next_ticket_ = 1;
  std::map<uint32_t, std::string> replies_;  // by ticket, until Wait takes them
  std::map<uint32_t, int> delivered_;        // replies per ticket (exactly one each)
  std::map<uint32_t, std::shared_ptr<Request>> inflight_;  // kept until answered (handlers may keep views)
};

}  // namespace larder
