#include "engine/command_test_fixture.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#include <fmt/format.h>

#include "cache/shard_cache.h"
#include "common/clock.h"
#include "common/numbers.h"
#include "engine/blocking.h"
#include "engine/dispatcher.h"
#include "engine/executor.h"
#include "shard/shard.h"

namespace larder {

// ---- RespValue ----

namespace {

// The line at `pos` (up to CRLF): its text, and where the next one starts.
bool Line(std::string_view in, size_t pos, std::string_view* line, size_t* next) {
  size_t end = in.find("\r\n", pos);
  if (end == std::string_view::npos) return false;
  *line = in.substr(pos, end - pos);
  *next = end + 2;
  return true;
}

size_t Parse(std::string_view in, size_t pos, RespValue* out, int depth) {
  using T = RespValue::Type;
  if (pos >= in.size() || depth > 64) return 0;
  char kind = in[pos];
  std::string_view line;
  size_t next;
  if (!Line(in, pos + 1, &line, &next)) return 0;
  *out = RespValue();
  auto length = [&](int64_t* n) { return ParseInt64(line, n); };
  switch (kind) {
    case '+': out->type = T::kSimple; out->str = line; return next;
    case '-': out->type = T::kError; out->str = line; return next;
    case ':':
      out->type = T::kInteger;
      return ParseInt64(line, &out->integer) ? next : 0;
    case ',': out->type = T::kDouble; out->str = line; return next;
    case '(': out->type = T::kBigNumber; out->str = line; return next;
    case '#':
      if (line != "t" && line != "f") return 0;
      out->type = T::kBool;
      out->integer = line == "t";
      return next;
    case '_':
      if (!line.empty()) return 0;
      out->type = T::kNull;
      out->null_kind = '_';
      return next;
    case '$': case '!': case '=': {
      int64_t n;
      if (!length(&n)) return 0;
      if (n == -1 && kind == '$') {
        out->type = T::kNull;
        out->null_kind = '$';
        return next;
      }
      if (n < 0 || in.size() < next + static_cast<size_t>(n) + 2) return 0;
      std::string_view body = in.substr(next, static_cast<size_t>(n));
      if (in.substr(next + static_cast<size_t>(n), 2) != "\r\n") return 0;
      if (kind == '$') {
        out->type = T::kBulk;
        out->str = body;
      } else if (kind == '!') {
        out->type = T::kError;
        out->str = body;
      } else {
        if (body.size() < 4 || body[3] != ':') return 0;
        out->type = T::kVerbatim;
        out->format = body.substr(0, 3);
        out->str = body.substr(4);
      }
      return next + static_cast<size_t>(n) + 2;
    }
    case '*': case '%': case '~': case '>': case '|': {
      int64_t n;
      if (!length(&n)) return 0;
      if (n == -1 && kind == '*') {
        out->type = T::kNull;
        out->null_kind = '*';
        return next;
      }
      if (n < 0) return 0;
      size_t count = static_cast<size_t>(n) * (kind == '%' || kind == '|' ? 2 : 1);
      std::vector<RespValue> elems(count);
      for (size_t i = 0; i < count; ++i) {
        size_t used = Parse(in, next, &elems[i], depth + 1);
        if (!used) return 0;
        next = used;
      }
      if (kind == '|') return Parse(in, next, out, depth + 1);  // attributes: the value follows
      out->type = kind == '*' ? T::kArray : kind == '%' ? T::kMap : kind == '~' ? T::kSet : T::kPush;
      out->elems = std::move(elems);
      return next;
    }
    default:
      return 0;
  }
}

std::string ElemString(const RespValue& e) {
  if (e.is_string() || e.type == RespValue::Type::kDouble || e.type == RespValue::Type::kBigNumber) return e.str;
  if (e.type == RespValue::Type::kInteger || e.type == RespValue::Type::kBool) return std::to_string(e.integer);
  if (e.is_null()) return "(nil)";
  return e.DebugString();
}

void Debug(const RespValue& v, std::string* out) {
  using T = RespValue::Type;
  switch (v.type) {
    case T::kSimple: out->append(v.str); break;
    case T::kError: out->append("(error) " + v.str); break;
    case T::kInteger: out->append("(integer) " + std::to_string(v.integer)); break;
    case T::kBulk:
    case T::kVerbatim: {
      out->push_back('"');
      for (unsigned char c : v.str) {
        if (c == '"' || c == '\\') out->append({'\\', static_cast<char>(c)});
        else if (c >= 32 && c < 127) out->push_back(static_cast<char>(c));
        else out->append(fmt::format("\\x{:02x}", c));
      }
      out->push_back('"');
      break;
    }
    case T::kNull: out->append("(nil)"); break;
    case T::kDouble: out->append("(double) " + v.str); break;
    case T::kBigNumber: out->append("(big number) " + v.str); break;
    case T::kBool: out->append(v.integer ? "(true)" : "(false)"); break;
    case T::kArray:
    case T::kMap:
    case T::kSet:
    case T::kPush: {
      const char* open = v.type == T::kMap ? "{" : v.type == T::kSet ? "~[" : v.type == T::kPush ? ">[" : "[";
      out->append(open);
      for (size_t i = 0; i < v.elems.size(); ++i) {
        if (i) out->append(v.type == T::kMap && i % 2 ? ": " : ", ");
        Debug(v.elems[i], out);
      }
      out->append(v.type == T::kMap ? "}" : "]");
      break;
    }
  }
}

}  // namespace

size_t ParseRespValue(std::string_view in, RespValue* out) { return Parse(in, 0, out, 0); }

std::vector<std::string> RespValue::strings() const {
  std::vector<std::string> out;
  for (const auto& e : elems) out.push_back(ElemString(e));
  return out;
}

std::map<std::string, std::string> RespValue::pairs() const {
  std::map<std::string, std::string> out;
  for (size_t i = 0; i + 1 < elems.size(); i += 2) out[ElemString(elems[i])] = ElemString(elems[i + 1]);
  return out;
}

std::string RespValue::DebugString() const {
  std::string out;
  Debug(*this, &out);
  return out;
}

bool operator==(const RespValue& v, std::string_view s) { return v.is_string() && v.str == s; }

void PrintTo(const RespValue& v, std::ostream* os) { *os << v.DebugString(); }

bool RespElem::Matches(const RespValue& v) const {
  switch (kind) {
    case kString: return v.is_string() && v.str == str;
    case kInt: return v.is_int() && v.integer == integer;
    case kNull: return v.is_null();
  }
  return false;
}

std::string RespElem::Describe() const {
  switch (kind) {
    case kString: return "\"" + str + "\"";
    case kInt: return "(integer) " + std::to_string(integer);
    case kNull: return "(nil)";
  }
  return "";
}

namespace {

class IsErrorMatcher : public ::testing::MatcherInterface<const RespValue&> {
 public:
  explicit IsErrorMatcher(std::string prefix) : prefix_(std::move(prefix)) {}
  bool MatchAndExplain(const RespValue& v, ::testing::MatchResultListener*) const override {
    return v.is_error() && v.str.compare(0, prefix_.size(), prefix_) == 0;
  }
  void DescribeTo(std::ostream* os) const override { *os << "is an error starting with \"" << prefix_ << "\""; }
  void DescribeNegationTo(std::ostream* os) const override {
    *os << "is not an error starting with \"" << prefix_ << "\"";
  }

 private:
  std::string prefix_;
};

class PredicateMatcher : public ::testing::MatcherInterface<const RespValue&> {
 public:
  PredicateMatcher(std::function<bool(const RespValue&)> pred, std::string what)
      : pred_(std::move(pred)), what_(std::move(what)) {}
  bool MatchAndExplain(const RespValue& v, ::testing::MatchResultListener*) const override { return pred_(v); }
  void DescribeTo(std::ostream* os) const override { *os << "is " << what_; }
  void DescribeNegationTo(std::ostream* os) const override { *os << "is not " << what_; }

 private:
  std::function<bool(const RespValue&)> pred_;
  std::string what_;
};

std::string DescribeElems(const std::vector<RespElem>& elems) {
  std::string s = "[";
  for (size_t i = 0; i < elems.size(); ++i) s += (i ? ", " : "") + elems[i].Describe();
  return s + "]";
}

}  // namespace

::testing::Matcher<const RespValue&> IsError(std::string prefix) {
  return ::testing::MakeMatcher(new IsErrorMatcher(std::move(prefix)));
}

::testing::Matcher<const RespValue&> IsNil() {
  return ::testing::MakeMatcher(new PredicateMatcher([](const RespValue& v) { return v.is_null(); }, "(nil)"));
}

::testing::Matcher<const RespValue&> IsOk() {
  return ::testing::MakeMatcher(new PredicateMatcher(
      [](const RespValue& v) { return v.type == RespValue::Type::kSimple && v.str == "OK"; }, "OK"));
}

::testing::Matcher<const RespValue&> ArrayOf(std::vector<RespElem> elems) {
  std::string what = "an aggregate " + DescribeElems(elems);
  return ::testing::MakeMatcher(new PredicateMatcher(
      [elems = std::move(elems)](const RespValue& v) {
        if (!v.is_aggregate() || v.size() != elems.size()) return false;
        for (size_t i = 0; i < elems.size(); ++i)
          if (!elems[i].Matches(v[i])) return false;
        return true;
      },
      what));
}

::testing::Matcher<const RespValue&> UnorderedArrayOf(std::vector<RespElem> elems) {
  std::string what = "an aggregate of, in any order, " + DescribeElems(elems);
  return ::testing::MakeMatcher(new PredicateMatcher(
      [elems = std::move(elems)](const RespValue& v) {
        if (!v.is_aggregate() || v.size() != elems.size()) return false;
        std::vector<bool> used(v.size(), false);
        for (const auto& want : elems) {
          bool found = false;
          for (size_t i = 0; i < v.size() && !found; ++i)
            if (!used[i] && want.Matches(v[i])) used[i] = found = true;
          if (!found) return false;
        }
        return true;
      },
      what));
}

::testing::Matcher<const RespValue&> IntBetween(int64_t lo, int64_t hi) {
  return ::testing::MakeMatcher(new PredicateMatcher(
      [lo, hi](const RespValue& v) { return v.is_int() && v.integer >= lo && v.integer <= hi; },
      fmt::format("an integer in [{}, {}]", lo, hi)));
}

// ---- CommandTest ----

struct CommandTest::Request {
  std::vector<std::string> args;
  std::vector<std::string_view> argv;
  const CommandSpec* spec = nullptr;      // null: refused (error below)
  const CommandSpec* rejected = nullptr;  // refused for its arity (counts in rejected_calls)
  std::string error;
  ReplyTarget target;
  int db = 0;
  int resp = 2;
  // Set before the fixture delivers a reply Execute gave at once (so it is
  // seen by whoever takes the reply).
  std::atomic<bool> immediate{false};
};

namespace {

// Commands whose handlers use the connection itself (ctx.client): there is
// none here.
bool NeedsClient(const CommandSpec* spec) {
  const std::string& top = spec->parent ? spec->parent->name : spec->name;
  static const char* const kNames[] = {"auth", "hello", "select", "quit", "reset", "client", "monitor", "debug"};
  for (const char* n : kNames)
    if (top == n) return true;
  return false;
}

std::string CommandLine(const std::vector<std::string>& args) {
  std::string s;
  for (const auto& a : args) s += (s.empty() ? "" : " ") + a;
  return s.size() > 200 ? s.substr(0, 200) + "..." : s;
}

}  // namespace

CommandTest::CommandTest(RegisterFn register_commands) : register_(register_commands) {}

CommandTest::~CommandTest() = default;

const CommandRegistry* CommandTest::TableFor(RegisterFn fn) {
  // One table per registration function for the whole process (the table
  // is process-wide: InstallCommands); kept until exit.
  static std::mutex mu;
  static std::map<RegisterFn, const CommandRegistry*>* tables = new std::map<RegisterFn, const CommandRegistry*>();
  std::lock_guard lock(mu);
  auto& t = (*tables)[fn];
  if (!t) {
    auto* r = new CommandRegistry();
    fn(r);
    r->Finalize();
    t = r;
  }
  return t;
}

void CommandTest::SetUp() {
  char cwd[4096];
  ASSERT_NE(getcwd(cwd, sizeof(cwd)), nullptr);
  saved_cwd_ = cwd;
  std::string tmpl = (std::filesystem::temp_directory_path() / "larder-cmdtest-XXXXXX").string();
  ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
  temp_dir_ = tmpl;

  Configure(options_);
  ASSERT_GE(options_.threads, 1);
  ASSERT_LT(options_.client_shard, options_.threads);
  InstallCommands(TableFor(register_));

  config_ = std::make_unique<Config>();
  config_->threads.store(options_.threads);
  std::string conf = temp_dir_ + "/larder.conf";
  {
    std::ofstream f(conf);
    f << "loglevel warning\n";
    f << "dir " << temp_dir_ << "\n";
    for (const auto& line : options_.config) f << line << "\n";
  }
  std::string err;
  ASSERT_TRUE(config_->LoadFile(conf, &err)) << err;
  config_->threads.store(options_.threads);

  engine_ = std::make_unique<Engine>(config_.get());
  ASSERT_TRUE(engine_->Init(&err)) << err;
  Engine* engine = engine_.get();
  engine_->shards().Start([engine](Shard& s) { engine->SetupShard(s); });
  started_ = true;
  engine_->Started();

  client_id_ = engine_->NextClientId();
  RunOnShard(options_.client_shard, [this](Shard&) {
    engine_->local(options_.client_shard).receivers[client_id_] = [this](const ReplyTarget& t, std::string r) {
      OnReply(t, std::move(r));
    };
  });
}

void CommandTest::TearDown() {
  if (engine_ && started_) {
    RunOnShard(options_.client_shard, [this](Shard&) { engine_->local(options_.client_shard).receivers.erase(client_id_); });
    engine_->Shutdown();
    engine_->shards().Stop();
  }
  engine_.reset();
  config_.reset();
  {
    std::lock_guard lock(mu_);
    for (const auto& [ticket, n] : delivered_)
      EXPECT_EQ(n, 1) << "command " << ticket << " got " << n << " replies";
    inflight_.clear();
    replies_.clear();
  }
  if (!saved_cwd_.empty() && chdir(saved_cwd_.c_str()) != 0) ADD_FAILURE() << "cannot go back to " << saved_cwd_;
  if (!temp_dir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(temp_dir_, ec);
  }
}

uint32_t CommandTest::Send(std::vector<std::string> args) {
  auto req = std::make_shared<Request>();
  req->args = std::move(args);
  req->argv.assign(req->args.begin(), req->args.end());
  req->db = db_;
  req->resp = resp_;
  uint32_t ticket;
  {
    std::lock_guard lock(mu_);
    ticket = next_ticket_++;
    inflight_[ticket] = req;
  }
  req->target.client_shard = options_.client_shard;
  req->target.client_id = client_id_;
  req->target.batch = ticket;
  req->target.index = ticket;
  if (req->argv.empty()) {
    req->error = "ERR empty command";
  } else {
    req->spec = ResolveCommand(req->argv, &req->error, &req->rejected);
    if (req->spec && NeedsClient(req->spec)) {
      ADD_FAILURE() << "'" << CommandLine(req->args) << "' needs a client connection; the fixture has none";
      req->error = "ERR command test fixture: " + req->spec->name + " needs a client connection";
      req->spec = nullptr;
    }
  }
  engine_->shards().shard(options_.client_shard).Post([this, req] { Start(req); });
  return ticket;
}

void CommandTest::Start(std::shared_ptr<Request> req) {
  // As Dispatch, on the client's shard thread.
  RefreshCommandTime();
  Engine& engine = *engine_;
  ShardSet& set = engine.shards();
  Shard& here = *CurrentShard();
  // A refusal counts in errorstats, as Client::ReplyError counts it.
  auto refuse = [&](std::string_view line) {
    engine.RecordError(&here, line);
    req->immediate.store(true);
    engine.DeliverError(req->target, line, req->resp);
  };
  if (!req->spec) {
    if (req->rejected) engine.RecordRejected(&here, req->rejected);
    return refuse(req->error);
  }
  const CommandSpec* spec = req->spec;
  std::span<const std::string_view> argv(req->argv);
  if ((spec->flags & kCmdDenyOom) && !engine.AdmitUnderMaxmemory(here)) {
    engine.RecordRejected(&here, spec);
    return refuse(FormatError(OpStatus::kOutOfMemory));
  }
  auto run = [req](Engine& e, Shard& shard, bool fan_out) {
    Call call(req->spec, req->argv, req->db, req->resp);
    call.target = req->target;
    call.fan_out = fan_out;
    std::string out;
    if (Execute(e, shard, call, &out) == Outcome::kReplied) {
      req->immediate.store(true);
      e.Deliver(req->target, std::move(out));
    }
  };
  if (spec->route == Route::kConnection) return run(engine, here, false);

  KeyPositions keys = spec->KeyIndexes(argv);
  std::vector<int> shards;
  for (size_t i : keys) shards.push_back(set.ShardOf(argv[i]));
  bool single = std::all_of(shards.begin(), shards.end(), [&](int s) { return s == shards[0]; });
  // As Dispatch: a command line that reaches keys no argument names runs
  // over every shard.
  bool all_shards = spec->needs_all_shards && set.size() > 1 && spec->needs_all_shards(argv);
  if (all_shards) {
    single = false;
    shards.clear();
    for (int i = 0; i < set.size(); ++i) shards.push_back(i);
  }
  if (keys.size() > 1 && (spec->flags & kCmdWrite) && engine.cache().active()) {
    cache::ShardCache* sc = cache::CurrentShardCache();
    for (size_t i : keys)
      if (sc && sc->IsWriteKey(argv[i])) return refuse(FormatError(OpStatus::kWriteKeyNotAlone));
  }
  if (spec->flags & kCmdBlocking) {
    auto w = std::make_shared<Waiter>();
    w->client_shard = here.id();
    w->client_id = client_id_;
    w->db = req->db;
    w->resp = req->resp;
    w->spec = spec;
    w->args = req->args;
    w->target = req->target;
    if (shards.empty()) shards.push_back(here.id());
    StartBlocking(&engine, std::move(w), std::move(shards));
    return;
  }
  if (single) {
    int target = shards.empty() ? here.id() : shards[0];
    if (target == here.id()) return run(engine, here, false);
    Engine* e = &engine;
    set.Send(target, [e, run] {
      RefreshCommandTime();
      run(*e, *CurrentShard(), false);
    });
    return;
  }
  if (spec->fan_out && !all_shards) return run(engine, here, true);
  StartExclusive(&engine, spec, argv, req->db, req->resp, std::move(shards), req->target);
}

void CommandTest::OnReply(const ReplyTarget& target, std::string reply) {
  std::lock_guard lock(mu_);
  if (++delivered_[target.index] == 1) replies_[target.index] = std::move(reply);
  cv_.notify_all();
}

RespValue CommandTest::Wait(uint32_t ticket) {
  std::string bytes;
  std::string line;
  {
    std::unique_lock lock(mu_);
    auto it = inflight_.find(ticket);
    if (it != inflight_.end()) line = CommandLine(it->second->args);
    if (!cv_.wait_for(lock, options_.reply_timeout, [&] { return replies_.count(ticket) > 0; })) {
      ADD_FAILURE() << "no reply to '" << line << "' within " << options_.reply_timeout.count() << " ms";
      RespValue v;
      v.type = RespValue::Type::kError;
      v.str = "ERR command test fixture: no reply";
      return v;
    }
    bytes = std::move(replies_[ticket]);
    replies_.erase(ticket);
    if (it != inflight_.end()) {
      last_deferred_ = !it->second->immediate.load();
      inflight_.erase(it);
    }
  }
  RespValue v;
  size_t used = ParseRespValue(bytes, &v);
  if (used == 0 || used != bytes.size()) {
    ADD_FAILURE() << "'" << line << "': the reply is not one RESP value: " << ::testing::PrintToString(bytes);
    v = RespValue();
    v.type = RespValue::Type::kError;
    v.str = "ERR command test fixture: malformed reply";
  }
  return v;
}

RespValue CommandTest::Run(std::initializer_list<std::string_view> args) {
  return Wait(Send(std::vector<std::string>(args.begin(), args.end())));
}

RespValue CommandTest::Run(const std::vector<std::string>& args) { return Wait(Send(args)); }

int64_t CommandTest::RunInt(std::initializer_list<std::string_view> args) {
  RespValue v = Run(args);
  EXPECT_TRUE(v.is_int()) << v.DebugString();
  return v.integer;
}

int CommandTest::ShardOf(std::string_view key) const { return engine_->shards().ShardOf(key); }

std::string CommandTest::KeyOnShard(int shard, std::string_view prefix) const {
  for (int i = 0;; ++i) {
    std::string k = std::string(prefix) + std::to_string(i);
    if (ShardOf(k) == shard) return k;
  }
}

void CommandTest::RunOnShard(int shard, std::function<void(Shard&)> fn) {
  std::mutex m;
  std::condition_variable cv;
  bool done = false;
  engine_->shards().shard(shard).Post([&] {
    fn(*CurrentShard());
    std::lock_guard lock(m);
    done = true;
    cv.notify_all();
  });
  std::unique_lock lock(m);
  if (!cv.wait_for(lock, options_.reply_timeout, [&] { return done; })) {
    ADD_FAILURE() << "shard " << shard << " did not run the task";
    // The task still refers to this frame: wait for it rather than return.
    cv.wait(lock, [&] { return done; });
  }
}

bool CommandTest::WaitUntil(const std::function<bool()>& cond, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!cond()) {
    if (std::chrono::steady_clock::now() >= deadline) return cond();
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return true;
}

}  // namespace larder
