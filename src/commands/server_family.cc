// Server commands: INFO, CONFIG, COMMAND, TIME, SLOWLOG, MONITOR, LATENCY,
// DEBUG, SHUTDOWN. They run on the client's thread; those that need every
// shard gather asynchronously.
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <thread>

#include "engine/aof.h"
#include "engine/multi_shard.h"
#include "commands/families.h"
#include "commands/persistence_family.h"
#include "engine/client.h"
#include "engine/command.h"
#include "common/strings.h"
#include "common/clock.h"
#include "common/glob.h"
#include "common/log.h"
#include "common/numbers.h"
#include "commands/info.h"
#include "common/sha1.h"
#include "keyspace/digest.h"
#include "keyspace/memory.h"
#include "keyspace/objects.h"
#include "rdb/rdb.h"
#include "script/store.h"

namespace larder {

namespace {

void Info(CommandContext& ctx) {
  std::vector<std::string> sections;
  for (size_t i = 1; i < ctx.argc(); ++i) sections.push_back(AsciiLower(ctx.arg(i)));
  Engine* server = ctx.engine;
  bool per_command = WantsCommandStats(sections);
  GatherAll<ShardSnapshot>(
      ctx, [server, per_command](Shard& s) { return TakeShardSnapshot(server, s, per_command); },
      [server, sections](std::vector<ShardSnapshot>& snaps, resp::ReplyBuilder& rb) {
        rb.Verbatim(BuildInfo(server, snaps, sections));
      });
}

// ---- CONFIG ----

void ConfigGet(CommandContext& ctx) {
  std::vector<std::pair<std::string, std::string>> out;
  for (size_t i = 2; i < ctx.argc(); ++i) {
    for (auto& kv : ctx.engine->config().Match(ctx.arg(i))) {
      if (std::none_of(out.begin(), out.end(), [&](auto& o) { return o.first == kv.first; }))
        out.push_back(std::move(kv));
    }
  }
  ctx.rb->MapHeader(out.size());
  for (auto& [k, v] : out) {
    ctx.rb->Bulk(k);
    ctx.rb->Bulk(v);
  }
}

// As Redis's configSetCommand: the names first (in order, the first unknown,
// immutable or repeated one fails the command), then every value is set
// (a bad one restores the earlier ones), then the changed values that need
// it are applied (port, bind); a failed apply restores every old value and
// applies them again.
void ConfigSet(CommandContext& ctx) {
  if (ctx.argc() % 2 != 0) return ctx.ArityError();
  Config& cfg = ctx.engine->config();
  struct Pair {
    std::string name;   // canonical
    std::string_view typed, value;
  };
  std::vector<Pair> pairs;
  for (size_t i = 2; i + 1 < ctx.argc(); i += 2) {
    if (!cfg.Known(ctx.arg(i))) return ctx.Error(OpStatus::kConfigSetUnknown, ctx.arg(i));
    std::string name = cfg.CanonicalName(ctx.arg(i));
    if (!cfg.Settable(name)) return ctx.Error(OpStatus::kConfigSetFailed, ctx.arg(i), "can't set immutable config");
    if (cfg.Protected(name) &&
        !AllowProtectedAction(cfg.enable_protected_configs.load(), ctx.from_loopback()))
      return ctx.Error(OpStatus::kConfigSetFailed, ctx.arg(i), "can't set protected config");
    for (auto& p : pairs)
      if (p.name == name) return ctx.Error(OpStatus::kConfigSetDuplicate, ctx.arg(i));
    pairs.push_back(Pair{name, ctx.arg(i), ctx.arg(i + 1)});
  }
  std::vector<std::pair<std::string, std::string>> previous;
  auto restore = [&] {
    for (auto& [n, v] : previous) {
      std::string ignored;
      cfg.Set(n, v, true, &ignored);
    }
  };
  std::vector<std::string> changed;
  for (auto& [name, typed, value] : pairs) {
    std::string err;
    std::string old = *cfg.Get(name);
    if (!cfg.Set(name, value, false, &err)) {
      restore();
      return ctx.Error(OpStatus::kConfigSetFailed, AsciiLower(typed), err);
    }
    previous.emplace_back(name, old);
    if (*cfg.Get(name) != old && cfg.HasApplyHook(name)) changed.push_back(name);
  }
  for (size_t i = 0; i < changed.size(); ++i) {
    std::string err;
    if (cfg.Apply(changed[i], &err)) continue;
    LOG_WARNING("Failed applying new configuration. Possibly related to new {} setting. Restoring previous settings.",
                changed[i]);
    restore();
    for (size_t j = 0; j < i; ++j) {
      std::string ignored;
      cfg.Apply(changed[j], &ignored);
    }
    return ctx.Error(OpStatus::kConfigSetFailed, changed[i], err);
  }
  ctx.engine->ApplyEvictionConfig();
  ctx.rb->Ok();
}

void ConfigResetStat(CommandContext& ctx) {
  ctx.engine->ResetStats();
  ctx.engine->LatencyReset({});
  ctx.rb->Ok();
}

void ConfigRewrite(CommandContext& ctx) {
  std::string err;
  if (!ctx.engine->config().Rewrite(&err)) return ctx.Error(err);
  LOG_NOTICE("CONFIG REWRITE executed with success.");
  ctx.rb->Ok();
}

void ConfigHelp(CommandContext& ctx) {
  static const char* kLines[] = {
      "CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
      "GET <pattern>", "    Return parameters matching the glob-like <pattern> and their values.",
      "SET <directive> <value>", "    Set the configuration <directive> to <value>.",
      "RESETSTAT", "    Reset statistics reported by the INFO command.",
      "REWRITE", "    Rewrite the configuration file.",
      "HELP", "    Prints this help."};
  ctx.HelpLines(kLines);
}

// ---- COMMAND ----

// In Redis's order (addReplyCommandFlags); like Redis, may_replicate and
// sentinel are not shown.
const std::pair<uint32_t, const char*> kFlagNames[] = {
    {kCmdWrite, "write"},         {kCmdReadOnly, "readonly"},     {kCmdDenyOom, "denyoom"},
    {kCmdAdmin, "admin"},         {kCmdPubSub, "pubsub"},         {kCmdNoScript, "noscript"},
    {kCmdBlocking, "blocking"},   {kCmdLoading, "loading"},       {kCmdStale, "stale"},
    {kCmdSkipMonitor, "skip_monitor"}, {kCmdSkipSlowlog, "skip_slowlog"}, {kCmdAsking, "asking"},
    {kCmdFast, "fast"},           {kCmdNoAuth, "no_auth"},        {kCmdNoMandatoryKeys, "no_mandatory_keys"},
    {kCmdNoAsyncLoading, "no_async_loading"},
    {kCmdNoMulti, "no_multi"},    {kCmdMovableKeys, "movablekeys"}, {kCmdAllowBusy, "allow_busy"},
};

std::vector<std::string> Words(const std::string& s) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < s.size()) {
    size_t j = s.find(' ', i);
    if (j == std::string::npos) j = s.size();
    if (j > i) out.push_back(s.substr(i, j - i));
    i = j + 1;
  }
  return out;
}

void ReplyKeySpec(resp::ReplyBuilder& rb, const KeySpec& k) {
  rb.MapHeader(k.notes.empty() ? 3 : 4);
  if (!k.notes.empty()) {
    rb.Bulk("notes");
    rb.Bulk(k.notes);
  }
  rb.Bulk("flags");
  auto flags = KeySpecFlagNames(k.flags);
  rb.SetHeader(flags.size());
  for (const char* f : flags) rb.SimpleString(f);
  rb.Bulk("begin_search");
  rb.MapHeader(2);
  rb.Bulk("type");
  switch (k.bs.type) {
    case BeginSearch::Type::kIndex:
      rb.Bulk("index");
      rb.Bulk("spec");
      rb.MapHeader(1);
      rb.Bulk("index");
      rb.Integer(k.bs.pos);
      break;
    case BeginSearch::Type::kKeyword:
      rb.Bulk("keyword");
      rb.Bulk("spec");
      rb.MapHeader(2);
      rb.Bulk("keyword");
      rb.Bulk(k.bs.keyword);
      rb.Bulk("startfrom");
      rb.Integer(k.bs.startfrom);
      break;
    case BeginSearch::Type::kUnknown:
      rb.Bulk("unknown");
      rb.Bulk("spec");
      rb.MapHeader(0);
      break;
  }
  rb.Bulk("find_keys");
  rb.MapHeader(2);
  rb.Bulk("type");
  switch (k.fk.type) {
    case FindKeys::Type::kRange:
      rb.Bulk("range");
      rb.Bulk("spec");
      rb.MapHeader(3);
      rb.Bulk("lastkey");
      rb.Integer(k.fk.lastkey);
      rb.Bulk("keystep");
      rb.Integer(k.fk.keystep);
      rb.Bulk("limit");
      rb.Integer(k.fk.limit);
      break;
    case FindKeys::Type::kKeynum:
      rb.Bulk("keynum");
      rb.Bulk("spec");
      rb.MapHeader(3);
      rb.Bulk("keynumidx");
      rb.Integer(k.fk.keynumidx);
      rb.Bulk("firstkey");
      rb.Integer(k.fk.firstkey);
      rb.Bulk("keystep");
      rb.Integer(k.fk.keystep);
      break;
    case FindKeys::Type::kUnknown:
      rb.Bulk("unknown");
      rb.Bulk("spec");
      rb.MapHeader(0);
      break;
  }
}

// As Redis's addReplyCommandInfo: first/last/step come from the key specs
// (the "legacy range"), not from the routing fields.
void ReplyCommandInfo(resp::ReplyBuilder& rb, const CommandSpec& c) {
  rb.ArrayHeader(10);
  rb.Bulk(c.name);
  rb.Integer(c.arity);
  std::vector<const char*> flags;
  for (auto& [bit, name] : kFlagNames)
    if (c.flags & bit) flags.push_back(name);
  rb.SetHeader(flags.size());
  for (auto* f : flags) rb.SimpleString(f);
  rb.Integer(c.legacy_range.first);
  rb.Integer(c.legacy_range.last);
  rb.Integer(c.legacy_range.step);
  auto acl = Words(c.acl_categories);
  rb.SetHeader(acl.size());
  for (auto& a : acl) rb.SimpleString(a);
  rb.SetHeader(c.tips.size());
  for (const auto& t : c.tips) rb.Bulk(t);
  rb.SetHeader(c.key_specs.size());
  for (const auto& k : c.key_specs) ReplyKeySpec(rb, k);
  if (c.subcommands.empty()) {
    rb.SetHeader(0);
  } else {
    rb.ArrayHeader(c.subcommands.size());
    for (const auto& s : c.subcommands) ReplyCommandInfo(rb, s);
  }
}

void ReplyCommandDocs(resp::ReplyBuilder& rb, const CommandSpec& c) {
  rb.MapHeader(c.subcommands.empty() ? 3 : 4);
  rb.Bulk("summary");
  rb.Bulk(c.summary);
  rb.Bulk("since");
  rb.Bulk(c.since);
  rb.Bulk("group");
  rb.Bulk(c.group);
  if (!c.subcommands.empty()) {
    rb.Bulk("subcommands");
    rb.MapHeader(c.subcommands.size());
    for (const auto& s : c.subcommands) {
      rb.Bulk(s.name);
      ReplyCommandDocs(rb, s);
    }
  }
}

void Command(CommandContext& ctx) {
  const auto& all = Commands().top();
  ctx.rb->ArrayHeader(all.size());
  for (const auto& c : all) ReplyCommandInfo(*ctx.rb, c);
}

void CommandCount(CommandContext& ctx) { ctx.rb->Integer(static_cast<int64_t>(Commands().count())); }

void CommandInfo(CommandContext& ctx) {
  if (ctx.argc() == 2) return Command(ctx);
  ctx.rb->ArrayHeader(ctx.argc() - 2);
  for (size_t i = 2; i < ctx.argc(); ++i) {
    const CommandSpec* c = Commands().FindByFullName(ctx.arg(i));
    if (c) ReplyCommandInfo(*ctx.rb, *c);
    else ctx.rb->NullArray();
  }
}

void CommandDocs(CommandContext& ctx) {
  std::vector<const CommandSpec*> list;
  if (ctx.argc() == 2) {
    for (const auto& c : Commands().top()) list.push_back(&c);
  } else {
    for (size_t i = 2; i < ctx.argc(); ++i)
      if (const CommandSpec* c = Commands().FindByFullName(ctx.arg(i))) list.push_back(c);
  }
  ctx.rb->MapHeader(list.size());
  for (const CommandSpec* c : list) {
    ctx.rb->Bulk(c->name);
    ReplyCommandDocs(*ctx.rb, *c);
  }
}

// COMMAND LIST [FILTERBY MODULE name | ACLCAT category | PATTERN glob]:
// every command and subcommand that passes the filter (Larder has no
// modules, so MODULE matches nothing).
bool HasAclCategory(const CommandSpec& c, std::string_view category) {
  for (const auto& w : Words(c.acl_categories))
    if (w.size() == category.size() + 1 && w[0] == '@' && EqualsIgnoreCase(std::string_view(w).substr(1), category))
      return true;
  return false;
}

void CommandList(CommandContext& ctx) {
  enum class Filter { kNone, kModule, kAclCat, kPattern } filter = Filter::kNone;
  std::string_view arg;
  if (ctx.argc() == 5 && EqualsIgnoreCase(ctx.arg(2), "filterby")) {
    std::string_view type = ctx.arg(3);
    if (EqualsIgnoreCase(type, "module")) filter = Filter::kModule;
    else if (EqualsIgnoreCase(type, "aclcat")) filter = Filter::kAclCat;
    else if (EqualsIgnoreCase(type, "pattern")) filter = Filter::kPattern;
    else return ctx.SyntaxError();
    arg = ctx.arg(4);
  } else if (ctx.argc() != 2) {
    return ctx.SyntaxError();
  }
  std::vector<std::string> names;
  for (const CommandSpec* c : Commands().all()) {
    bool keep = filter == Filter::kNone || (filter == Filter::kPattern && GlobMatch(arg, c->name, true)) ||
                (filter == Filter::kAclCat && HasAclCategory(*c, arg));
    if (keep) names.push_back(c->name);
  }
  ctx.rb->ArrayHeader(names.size());
  for (auto& n : names) ctx.rb->Bulk(n);
}

// COMMAND GETKEYS / GETKEYSANDFLAGS <command line> (Redis's commandGetKeys).
void GetKeysReply(CommandContext& ctx, bool with_flags) {
  std::vector<std::string_view> argv(ctx.args.begin() + 2, ctx.args.end());
  const CommandSpec* c = Commands().Find(argv[0]);
  if (c && !c->subcommands.empty()) {
    std::string want = c->name + "|" + AsciiLower(argv[1]);
    const CommandSpec* sub = nullptr;
    for (const auto& s : c->subcommands)
      if (s.name == want) sub = &s;
    c = sub;
  }
  if (!c) return ctx.Error(OpStatus::kInvalidCommand);
  bool has_keys = c->get_keys != nullptr;
  for (const auto& k : c->key_specs) has_keys |= !(k.flags & kKsNotKey);
  if (!has_keys) return ctx.Error(OpStatus::kNoKeyArguments);
  if (!c->ArityOk(argv.size())) return ctx.Error(OpStatus::kInvalidCommandArity);
  auto keys = KeysWithFlags(*c, argv);
  if (keys.empty()) return ctx.Error(OpStatus::kInvalidCommandArgs);
  ctx.rb->ArrayHeader(keys.size());
  for (const KeySpecRef& k : keys) {
    if (!with_flags) {
      ctx.rb->Bulk(argv[k.pos]);
      continue;
    }
    ctx.rb->ArrayHeader(2);
    ctx.rb->Bulk(argv[k.pos]);
    auto names = KeySpecFlagNames(k.flags);
    ctx.rb->SetHeader(names.size());
    for (const char* f : names) ctx.rb->SimpleString(f);
  }
}

void CommandGetKeys(CommandContext& ctx) { GetKeysReply(ctx, false); }
void CommandGetKeysAndFlags(CommandContext& ctx) { GetKeysReply(ctx, true); }

void CommandHelp(CommandContext& ctx) {
  static const char* kLines[] = {
      "COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
      "(no subcommand)", "    Return details about all Redis commands.",
      "COUNT", "    Return the total number of commands in this Redis server.",
      "LIST", "    Return a list of all commands in this Redis server.",
      "INFO [<command-name> ...]", "    Return details about multiple Redis commands.",
      "    If no command names are given, documentation details for all",
      "    commands are returned.",
      "DOCS [<command-name> ...]", "    Return documentation details about multiple Redis commands.",
      "    If no command names are given, documentation details for all",
      "    commands are returned.",
      "GETKEYS <full-command>", "    Return the keys from a full Redis command.",
      "GETKEYSANDFLAGS <full-command>", "    Return the keys and the access flags from a full Redis command.",
      "HELP", "    Prints this help."};
  ctx.HelpLines(kLines);
}

// ---- TIME, SLOWLOG, LATENCY, MONITOR ----

void Time(CommandContext& ctx) {
  int64_t us = UnixTimeUs();
  ctx.rb->ArrayHeader(2);
  ctx.rb->Bulk(std::to_string(us / 1000000));
  ctx.rb->Bulk(std::to_string(us % 1000000));
}

// The slow log is kept per shard (each keeps its newest slowlog-max-len);
// these merge the shards' logs by id into the server's newest entries. As
// Redis logs a command after it ran, SLOWLOG GET never shows itself and the
// entry of SLOWLOG RESET is the first of the new log: the client's own
// shard is read (or reset) at once, before this command is logged there;
// from the others only entries logged before the command started count.

// This shard's entries now, and the other shards' older than `before`.
std::vector<SlowlogEntry> SlowlogPart(Engine* server, Shard& s, uint64_t before) {
  std::vector<SlowlogEntry> out;
  for (const auto& e : server->local(s.id()).slowlog)
    if (e.id < before) out.push_back(e);
  return out;
}

void GatherSlowlog(CommandContext& ctx, std::function<void(std::vector<SlowlogEntry>&, resp::ReplyBuilder&)> reply) {
  Engine* server = ctx.engine;
  uint64_t before = server->PeekSlowlogId();
  int self = ctx.shard->id();
  auto own = std::make_shared<std::vector<SlowlogEntry>>(SlowlogPart(server, *ctx.shard, before));
  GatherAll<std::vector<SlowlogEntry>>(
      ctx,
      [server, before, self, own](Shard& s) {
        return s.id() == self ? std::move(*own) : SlowlogPart(server, s, before);
      },
      [reply = std::move(reply)](std::vector<std::vector<SlowlogEntry>>& parts, resp::ReplyBuilder& rb) {
        std::vector<SlowlogEntry> all;
        for (auto& p : parts) all.insert(all.end(), std::make_move_iterator(p.begin()), std::make_move_iterator(p.end()));
        std::sort(all.begin(), all.end(), [](auto& a, auto& b) { return a.id > b.id; });
        reply(all, rb);
      });
}

void SlowlogGet(CommandContext& ctx) {
  int64_t count = 10;
  if (ctx.argc() == 3) {
    if (!ParseInt64(ctx.arg(2), &count) || count < -1)
      return ctx.Error(OpStatus::kSlowlogCount);
    if (count == -1) count = INT64_MAX;
  }
  count = std::min(count, ctx.engine->config().slowlog_max_len.load());
  GatherSlowlog(ctx, [count](std::vector<SlowlogEntry>& all, resp::ReplyBuilder& rb) {
    if (static_cast<int64_t>(all.size()) > count) all.resize(static_cast<size_t>(std::max<int64_t>(count, 0)));
    rb.ArrayHeader(all.size());
    for (auto& e : all) {
      rb.ArrayHeader(6);
      rb.Integer(static_cast<int64_t>(e.id));
      rb.Integer(e.time_s);
      rb.Integer(e.duration_us);
      rb.ArrayHeader(e.args.size());
      for (auto& a : e.args) rb.Bulk(a);
      rb.Bulk(e.addr);
      rb.Bulk(e.name);
    }
  });
}

void SlowlogLen(CommandContext& ctx) {
  int64_t max = ctx.engine->config().slowlog_max_len.load();
  GatherSlowlog(ctx, [max](std::vector<SlowlogEntry>& all, resp::ReplyBuilder& rb) {
    rb.Integer(std::min(static_cast<int64_t>(all.size()), max));
  });
}

void SlowlogReset(CommandContext& ctx) {
  Engine* server = ctx.engine;
  uint64_t before = server->PeekSlowlogId();
  int self = ctx.shard->id();
  server->local(self).slowlog.clear();
  GatherAll<int>(
      ctx,
      [server, before, self](Shard& s) {
        if (s.id() != self)
          std::erase_if(server->local(s.id()).slowlog, [before](const SlowlogEntry& e) { return e.id < before; });
        return 0;
      },
      [](std::vector<int>&, resp::ReplyBuilder& rb) { rb.Ok(); });
}

void SlowlogHelp(CommandContext& ctx) {
  static const char* kLines[] = {
      "SLOWLOG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
      "GET [<count>]", "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
      "    Entries are made of:", "    id, timestamp, time in microseconds, arguments array, client IP and port,",
      "    client name", "LEN", "    Return the length of the slowlog.", "RESET",
      "    Reset the slowlog.", "HELP", "    Prints this help."};
  ctx.HelpLines(kLines);
}

void LatencyLatest(CommandContext& ctx) {
  auto snap = ctx.engine->LatencySnapshot();
  ctx.rb->ArrayHeader(snap.size());
  for (auto& [name, ev] : snap) {
    ctx.rb->ArrayHeader(4);
    ctx.rb->Bulk(name);
    ctx.rb->Integer(ev.history.empty() ? 0 : ev.history.back().time_s);
    ctx.rb->Integer(ev.history.empty() ? 0 : ev.history.back().ms);
    ctx.rb->Integer(ev.max_ms);
  }
}

void LatencyHistory(CommandContext& ctx) {
  auto snap = ctx.engine->LatencySnapshot();
  auto it = snap.find(std::string(ctx.arg(2)));
  if (it == snap.end()) return ctx.rb->ArrayHeader(0);
  ctx.rb->ArrayHeader(it->second.history.size());
  for (auto& s : it->second.history) {
    ctx.rb->ArrayHeader(2);
    ctx.rb->Integer(s.time_s);
    ctx.rb->Integer(s.ms);
  }
}

void LatencyReset(CommandContext& ctx) {
  std::vector<std::string> events;
  for (size_t i = 2; i < ctx.argc(); ++i) events.emplace_back(ctx.arg(i));
  ctx.rb->Integer(static_cast<int64_t>(ctx.engine->LatencyReset(events)));
}

// Redis's lookupCommandBySds: "name" or "container|sub", any case.
using LatencyCounts = std::array<uint64_t, kLatencyBuckets>;

// One command's entry of LATENCY HISTOGRAM, if it has calls: its name, the
// call count and the cumulative count at each step that has calls.
bool ReplyLatencyHistogram(resp::ReplyBuilder& rb, const CommandSpec& c, const std::vector<LatencyCounts>& all) {
  if (c.id < 0 || static_cast<size_t>(c.id) >= all.size()) return false;
  const LatencyCounts& h = all[static_cast<size_t>(c.id)];
  uint64_t total = 0;
  int steps = 0;
  for (uint64_t n : h) {
    total += n;
    steps += n > 0;
  }
  if (total == 0) return false;
  rb.Bulk(c.name);
  rb.MapHeader(2);
  rb.Bulk("calls");
  rb.Integer(static_cast<int64_t>(total));
  rb.Bulk("histogram_usec");
  rb.MapHeader(static_cast<size_t>(steps));
  uint64_t cumulative = 0;
  for (int k = 0; k < kLatencyBuckets; ++k) {
    if (h[static_cast<size_t>(k)] == 0) continue;
    cumulative += h[static_cast<size_t>(k)];
    rb.Integer(LatencyBucketUsec(k));
    rb.Integer(static_cast<int64_t>(cumulative));
  }
  return true;
}

// LATENCY HISTOGRAM [command ...]: the per-command latency distributions
// (summed over the shards), for every command that ran or for the ones
// named (a container names its subcommands; unknown names are skipped).
void LatencyHistogram(CommandContext& ctx) {
  std::vector<const CommandSpec*> wanted;
  bool all_commands = ctx.argc() == 2;
  for (size_t i = 2; i < ctx.argc(); ++i)
    if (const CommandSpec* c = Commands().FindByFullName(ctx.arg(i))) wanted.push_back(c);
  Engine* server = ctx.engine;
  auto counts = [server](int shard) {
    const auto& stats = server->local(shard).cmd_stats;
    std::vector<LatencyCounts> out(stats.size());
    for (size_t i = 0; i < stats.size(); ++i)
      std::copy(std::begin(stats[i].latency), std::end(stats[i].latency), out[i].begin());
    return out;
  };
  // This shard's counts now, before this command itself is counted (Redis
  // records a command after it ran).
  int self = ctx.shard->id();
  auto own = std::make_shared<std::vector<LatencyCounts>>(counts(self));
  GatherAll<std::vector<LatencyCounts>>(
      ctx,
      [counts, self, own](Shard& s) { return s.id() == self ? std::move(*own) : counts(s.id()); },
      [all_commands, wanted](std::vector<std::vector<LatencyCounts>>& parts, resp::ReplyBuilder& rb) {
        std::vector<LatencyCounts> sum;
        for (auto& p : parts) {
          if (sum.size() < p.size()) sum.resize(p.size(), LatencyCounts{});
          for (size_t i = 0; i < p.size(); ++i)
            for (int k = 0; k < kLatencyBuckets; ++k) sum[i][static_cast<size_t>(k)] += p[i][static_cast<size_t>(k)];
        }
        std::vector<const CommandSpec*> list;
        auto add_with_subcommands = [&](const CommandSpec& c) {
          list.push_back(&c);
          for (const auto& s : c.subcommands) list.push_back(&s);
        };
        if (all_commands) {
          for (const auto& c : Commands().top()) add_with_subcommands(c);
        } else {
          for (const CommandSpec* c : wanted) add_with_subcommands(*c);
        }
        std::string body;
        resp::ReplyBuilder inner(&body, rb.protocol());
        size_t n = 0;
        for (const CommandSpec* c : list) n += ReplyLatencyHistogram(inner, *c, sum);
        rb.MapHeader(n);
        rb.Raw(body);
      });
}

// LATENCY DOCTOR: Redis's report on the latency monitor's events, with the
// advice that applies to the events Larder records.
std::string LatencyReport(Engine* server) {
  auto events = server->LatencySnapshot();
  int64_t threshold = server->config().latency_monitor_threshold.load();
  if (events.empty() && threshold == 0)
    return "I'm sorry, Dave, I can't do that. Latency monitoring is disabled in this Redis instance. You may use "
           "\"CONFIG SET latency-monitor-threshold <milliseconds>.\" in order to enable it. If we weren't in a deep "
           "space mission I'd suggest to take a look at https://redis.io/topics/latency-monitor.\n";
  std::string report;
  bool slowlog_enabled = false, slowlog_tuning = false, slowlog_inspect = false, scheduler = false, hz = false,
       large_objects = false, mass_eviction = false;
  int advices = 0, n = 0;
  int64_t now = UnixTimeMs() / 1000;
  int64_t slower_than = server->config().slowlog_log_slower_than.load();
  for (const auto& [name, ev] : events) {
    if (ev.history.empty()) continue;
    if (++n == 1)
      report += "Dave, I have observed latency spikes in this Redis instance. You don't mind talking about it, do "
                "you Dave?\n\n";
    int64_t sum = 0, oldest = 0;
    for (const auto& smp : ev.history) {
      sum += smp.ms;
      if (oldest == 0 || smp.time_s < oldest) oldest = smp.time_s;
    }
    int64_t samples = static_cast<int64_t>(ev.history.size());
    int64_t avg = sum / samples;
    int64_t period = now - oldest;
    if (period <= 0) period = 1;
    int64_t dev = 0;
    for (const auto& smp : ev.history) dev += std::abs(avg - smp.ms);
    int64_t mad = dev / samples;
    report += fmt::format(
        "{}. {}: {} latency spikes (average {}ms, mean deviation {}ms, period {:.2f} sec). Worst all time event "
        "{}ms.",
        n, name, samples, avg, mad, static_cast<double>(period) / static_cast<double>(samples), ev.max_ms);
    if (name == "command") {
      if (slower_than < 0) {
        slowlog_enabled = true;
        ++advices;
      } else if (slower_than / 1000 > threshold) {
        slowlog_tuning = true;
        ++advices;
      }
      slowlog_inspect = large_objects = true;
      advices += 2;
    } else if (name == "fast-command") {
      scheduler = true;
      ++advices;
    } else if (name == "expire-cycle") {
      hz = large_objects = true;
      advices += 2;
    } else if (name == "eviction-del") {
      large_objects = true;
      ++advices;
    } else if (name == "eviction-cycle") {
      mass_eviction = true;
      ++advices;
    }
    report += "\n";
  }
  if (n == 0 && advices == 0)
    return report + "Dave, no latency spike was observed during the lifetime of this Redis instance, not in the "
                    "slightest bit. I honestly think you ought to sit down calmly, take a stress pill, and think "
                    "things over.\n";
  if (advices == 0)
    return report + "\nWhile there are latency events logged, I'm not able to suggest any easy fix. Please use the "
                    "Redis community to get some help, providing this report in your help request.\n";
  report += "\nI have a few advices for you:\n\n";
  if (slowlog_enabled)
    report += fmt::format(
        "- There are latency issues with potentially slow commands you are using. Try to enable the Slow Log Redis "
        "feature using the command 'CONFIG SET slowlog-log-slower-than {}'. If the Slow log is disabled Redis is "
        "not able to log slow commands execution for you.\n",
        threshold * 1000);
  if (slowlog_tuning)
    report += fmt::format(
        "- Your current Slow Log configuration only logs events that are slower than your configured latency "
        "monitor threshold. Please use 'CONFIG SET slowlog-log-slower-than {}'.\n",
        threshold * 1000);
  if (slowlog_inspect)
    report += "- Check your Slow Log to understand what are the commands you are running which are too slow to "
              "execute. Please check https://redis.io/commands/slowlog for more information.\n";
  if (scheduler)
    report += "- The system is slow to execute Redis code paths not containing system calls. This usually means "
              "the system does not provide Redis CPU time to run for long periods. You should try to:\n"
              "  1) Lower the system load.\n"
              "  2) Use a computer / VM just for Redis if you are running other software in the same system.\n"
              "  3) Check if you have a \"noisy neighbour\" problem.\n"
              "  4) Check with 'redis-cli --intrinsic-latency 100' what is the intrinsic latency in your system.\n"
              "  5) Check if the problem is allocator-related by recompiling Redis with MALLOC=libc, if you are "
              "using Jemalloc. However this may create fragmentation problems.\n";
  if (hz && server->config().hz.load() < 100)
    report += "- In order to make the Redis keys expiring process more incremental, try to set the 'hz' "
              "configuration parameter to 100 using 'CONFIG SET hz 100'.\n";
  if (large_objects)
    report += "- Deleting, expiring or evicting (because of maxmemory policy) large objects is a blocking "
              "operation. If you have very large objects that are often deleted, expired, or evicted, try to "
              "fragment those objects into multiple smaller objects.\n";
  if (mass_eviction)
    report += "- Sudden changes to the 'maxmemory' setting via 'CONFIG SET', or allocation of large objects via "
              "sets or sorted sets intersections, STORE option of SORT, Redis Cluster large keys migrations "
              "(RESTORE command), may create sudden memory pressure forcing the server to block trying to evict "
              "keys. \n";
  return report;
}

void LatencyDoctor(CommandContext& ctx) { ctx.rb->Verbatim(LatencyReport(ctx.engine)); }

void LatencyHelp(CommandContext& ctx) {
  static const char* kLines[] = {
      "LATENCY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
      "DOCTOR", "    Return a human readable latency analysis report.",
      "GRAPH <event>", "    Return an ASCII latency graph for the <event> class.",
      "HISTORY <event>", "    Return time-latency samples for the <event> class.",
      "LATEST", "    Return the latest latency samples for all events.",
      "RESET [<event> ...]", "    Reset latency data of one or more <event> classes.",
      "    (default: reset all data for all event classes)",
      "HISTOGRAM [COMMAND ...]", "    Return a cumulative distribution of latencies in the format of a histogram for the specified command names.",
      "    If no commands are specified then all histograms are replied.",
      "HELP", "    Prints this help."};
  ctx.HelpLines(kLines);
}

void Monitor(CommandContext& ctx) {
  ClientState& c = ctx.client_state();
  if (c.monitor) return ctx.rb->Ok();
  c.monitor = true;
  ctx.engine->AddMonitor(ctx.shard->id(), c.id);
  ctx.rb->Ok();
}

// ---- DEBUG, SHUTDOWN ----

// ---- DEBUG helpers ----

// DEBUG OBJECT <key>: Redis's line; the encoding is OBJECT ENCODING's.
void DebugObject(CommandContext& ctx) {
  std::string key(ctx.arg(2));
  int db = ctx.db_index;
  int owner = ctx.engine->shards().ShardOf(key);
  auto out = std::make_shared<std::string>();
  auto found = std::make_shared<bool>(false);
  GatherFrom(
      ctx, {owner},
      [key, db, out, found](Shard& s) {
        Entry* e = s.db(db).Find(key);
        if (!e) return;
        *found = true;
        *out = fmt::format("Value at:{} refcount:1 encoding:{} serializedlength:{} lru:{} lru_seconds_idle:{}",
                           static_cast<const void*>(e), ObjectEncodingName(e), e->val_len,
                           (e->access / kLruTicksPerSecond) & ((1u << 24) - 1), IdleSeconds(e));
      },
      [out, found](resp::ReplyBuilder& rb) {
        if (*found) rb.SimpleString(*out);
        else rb.Error(ErrorText(OpStatus::kNoSuchKey));
      });
}

// DEBUG DIGEST: every shard digests its part of each database; the parts
// combine by xor (keys are unordered), the database indexes in order.
void DebugDigest(CommandContext& ctx) {
  struct Part {
    std::vector<Digest> dbs;
    std::vector<char> non_empty;
  };
  GatherAll<Part>(
      ctx,
      [](Shard& s) {
        Part p;
        int n = static_cast<int>(s.dbs().size());
        p.dbs.assign(static_cast<size_t>(n), Digest{});
        p.non_empty.assign(static_cast<size_t>(n), 0);
        for (int i = 0; i < n; ++i) {
          Table& t = s.db(i).table();
          if (t.size() == 0) continue;
          p.non_empty[static_cast<size_t>(i)] = 1;
          Digest& d = p.dbs[static_cast<size_t>(i)];
          // As Redis, keys whose TTL has passed but are not yet deleted count.
          t.ForEach([&d](Entry* e) { XorInto(&d, KeyContribution(e)); });
        }
        return p;
      },
      [](std::vector<Part>& parts, resp::ReplyBuilder& rb) {
        size_t n = parts.empty() ? 0 : parts[0].dbs.size();
        std::vector<Digest> dbs(n, Digest{});
        std::unique_ptr<bool[]> non_empty(new bool[n]());
        for (auto& p : parts)
          for (size_t i = 0; i < n; ++i) {
            XorInto(&dbs[i], p.dbs[i]);
            non_empty[i] = non_empty[i] || p.non_empty[i];
          }
        rb.SimpleString(HexDigest(DatasetDigest(dbs.data(), non_empty.get(), static_cast<int>(n))));
      });
}

// DEBUG DIGEST-VALUE key...: each key's value digest, from its own shard
// (logically expired keys included, as Redis).
void DebugDigestValue(CommandContext& ctx) {
  auto keys = std::make_shared<std::vector<std::string>>(ctx.args.begin() + 2, ctx.args.end());
  auto out = std::make_shared<std::vector<Digest>>(keys->size(), Digest{});
  ShardSet& set = ctx.engine->shards();
  std::vector<int> owners;
  for (const auto& k : *keys) {
    int s = set.ShardOf(k);
    if (std::find(owners.begin(), owners.end(), s) == owners.end()) owners.push_back(s);
  }
  int db = ctx.db_index;
  ShardSet* sp = &set;
  GatherFrom(
      ctx, owners,
      [keys, out, db, sp](Shard& s) {
        for (size_t i = 0; i < keys->size(); ++i) {
          if (sp->ShardOf((*keys)[i]) != s.id()) continue;
          if (Entry* e = s.db(db).table().Find((*keys)[i])) MixValueDigest(e, &(*out)[i]);
        }
      },
      [out](resp::ReplyBuilder& rb) {
        rb.ArrayHeader(out->size());
        for (const Digest& d : *out) rb.SimpleString(HexDigest(d));
      });
}

// DEBUG PROTOCOL <type>: one test value of each reply type, as Redis 7.0
// sends it in RESP2 and RESP3.
void DebugProtocol(CommandContext& ctx) {
  std::string_view name = ctx.arg(2);
  resp::ReplyBuilder& rb = *ctx.rb;
  bool resp3 = rb.protocol() >= 3;
  if (EqualsIgnoreCase(name, "string")) return rb.Bulk("Hello World");
  if (EqualsIgnoreCase(name, "integer")) return rb.Integer(12345);
  if (EqualsIgnoreCase(name, "double")) return rb.Double(3.141);
  if (EqualsIgnoreCase(name, "bignum")) {
    constexpr std::string_view kBig = "1234567999999999999999999999999999999";
    if (resp3) return rb.Raw(fmt::format("({}\r\n", kBig));
    return rb.Bulk(kBig);
  }
  if (EqualsIgnoreCase(name, "null")) return rb.Null();
  if (EqualsIgnoreCase(name, "array") || EqualsIgnoreCase(name, "set")) {
    if (EqualsIgnoreCase(name, "set")) rb.SetHeader(3);
    else rb.ArrayHeader(3);
    for (int j = 0; j < 3; ++j) rb.Integer(j);
    return;
  }
  if (EqualsIgnoreCase(name, "map")) {
    rb.MapHeader(3);
    for (int j = 0; j < 3; ++j) {
      rb.Integer(j);
      rb.Bool(j == 1);
    }
    return;
  }
  if (EqualsIgnoreCase(name, "attrib")) {
    if (resp3) {
      rb.Raw("|1\r\n");
      rb.Bulk("key-popularity");
      rb.ArrayHeader(2);
      rb.Bulk("key:123");
      rb.Integer(90);
    }
    // An attribute is not a reply: a real one follows it.
    return rb.Bulk("Some real reply following the attribute");
  }
  if (EqualsIgnoreCase(name, "push")) {
    if (!resp3) return ctx.Error(OpStatus::kResp2NotSupported);
    rb.PushHeader(2);
    rb.Bulk("server-cpu-usage");
    rb.Integer(42);
    return rb.Bulk("Some real reply following the push reply");
  }
  if (EqualsIgnoreCase(name, "true")) return rb.Bool(true);
  if (EqualsIgnoreCase(name, "false")) return rb.Bool(false);
  if (EqualsIgnoreCase(name, "verbatim")) return rb.Verbatim("This is a verbatim\nstring");
  ctx.Error(OpStatus::kDebugProtocolType);
}

// Redis's getPositiveLongFromObjectOrReply: a long >= 0.
bool ParsePositiveLong(std::string_view s, int64_t* out) { return ParseInt64(s, out) && *out >= 0; }

// DEBUG POPULATE count [prefix] [size]: string keys prefix:0..count-1 with
// values "value:<n>" (cut or zero-padded to `size` bytes when given); keys
// that exist are left alone. Each shard creates its own keys.
void DebugPopulate(CommandContext& ctx) {
  int64_t count, size = 0;
  if (!ParsePositiveLong(ctx.arg(2), &count)) return ctx.Error(OpStatus::kValueNotPositive);
  if (ctx.argc() == 5 && !ParsePositiveLong(ctx.arg(4), &size)) return ctx.Error(OpStatus::kValueNotPositive);
  std::string prefix = ctx.argc() >= 4 ? std::string(ctx.arg(3)) : "key";
  int db = ctx.db_index;
  ShardSet* set = &ctx.engine->shards();
  GatherAll<int>(
      ctx,
      [=](Shard& s) {
        Db& d = s.db(db);
        std::string key, value;
        for (int64_t j = 0; j < count; ++j) {
          // Redis formats the name into a 128-byte buffer.
          key = fmt::format("{}:{}", prefix, j);
          if (key.size() > 127) key.resize(127);
          if (set->ShardOf(key) != s.id() || d.Find(key)) continue;
          value = fmt::format("value:{}", j);
          if (size > 0) value.resize(static_cast<size_t>(size), '\0');
          d.SetString(key, value, Db::kNoExpire, value.size() <= 44 ? StrEncoding::kEmbstr : StrEncoding::kRaw);
        }
        return 0;
      },
      [](std::vector<int>&, resp::ReplyBuilder& rb) { rb.Ok(); });
}

void Debug(CommandContext& ctx) {
  int64_t mode = ctx.engine->config().enable_debug_command.load();
  if (!AllowProtectedAction(mode, ctx.from_loopback())) return ctx.Error(OpStatus::kDebugNotAllowed);
  std::string sub = AsciiLower(ctx.arg(1));
  size_t argc = ctx.argc();
  if (sub == "sleep" && argc == 3) {
    double secs;
    if (!ParseDouble(ctx.arg(2), &secs)) return ctx.Error(OpStatus::kNotAFloat);
    int64_t us = static_cast<int64_t>(secs * 1e6);
    // As in Redis the whole server sleeps: every shard is parked meanwhile.
    return ExclusiveAll(ctx, [us](resp::ReplyBuilder& rb) {
      if (us > 0) std::this_thread::sleep_for(std::chrono::microseconds(us));
      rb.Ok();
    });
  }
  if (sub == "loadaof" && argc == 2) {
    // As Redis: what is buffered is written and synced, the dataset emptied
    // and the AOF loaded again; a helper thread parks the shards for it.
    Engine* engine = ctx.engine;
    ReplyTarget target = ctx.Defer();
    int resp = ctx.rb->protocol();
    std::thread([engine, target, resp] {
      std::string err;
      if (engine->aof().enabled() && !engine->aof().Reload(&err)) {
        engine->DeliverError(target, FormatError(OpStatus::kAofLoadFailed, err), resp);
        return;
      }
      engine->Deliver(target, "+OK\r\n");
    }).detach();
    return;
  }
  if (sub == "error" && argc == 3) {
    // As Redis: the text is the whole error line (newlines become spaces),
    // sent as raw bytes, so it is not counted in the error statistics.
    // A builder of its own, with no error sink: the executor never hears of it.
    resp::ReplyBuilder raw(ctx.rb->buffer(), ctx.rb->protocol());
    return raw.Error(ctx.arg(2));
  }
  if (sub == "set-disable-deny-scripts" && argc == 3) {
    script::DenyScriptsDisabled().store(ctx.arg(2) != "0");
    return ctx.rb->Ok();
  }
  if (sub == "set-skip-checksum-validation" && argc == 3) {
    rdb::g_skip_payload_checksum.store(ctx.arg(2) != "0");
    return ctx.rb->Ok();
  }
  if (sub == "quicklist-packed-threshold" && argc == 3) {
    // Elements from this size on get list nodes of their own (0: 1 GB again).
    int64_t sz;
    bool overflow;
    if (!Config::ParseMemory(ctx.arg(2), &sz, &overflow) || overflow || sz < 0 ||
        static_cast<uint64_t>(sz) > (uint64_t{1} << 32) - (1 << 20))
      return ctx.Error(OpStatus::kPackedThresholdRange);
    QuickList::packed_threshold.store(sz == 0 ? QuickList::kDefaultPackedThreshold : static_cast<size_t>(sz));
    return ctx.rb->Ok();
  }
  if (sub == "set-active-expire" && argc == 3) {
    Shard::active_expire_enabled.store(ctx.arg(2) != "0");
    return ctx.rb->Ok();
  }
  if (sub == "object" && argc == 3) return DebugObject(ctx);
  if (sub == "reload") return DebugReload(ctx);
  if (sub == "digest" && argc == 2) return DebugDigest(ctx);
  if (sub == "digest-value" && argc >= 2) return DebugDigestValue(ctx);
  if (sub == "protocol" && argc == 3) return DebugProtocol(ctx);
  if (sub == "populate" && argc >= 3 && argc <= 5) return DebugPopulate(ctx);
  if (sub == "mallctl" && (argc == 3 || argc == 4)) {
    int64_t set = 0, old = 0;
    if (argc == 4 && !ParseInt64(ctx.arg(3), &set)) return ctx.Error(OpStatus::kNotAnInteger);
    int rc = AllocatorCtlInt(std::string(ctx.arg(2)), argc == 4 ? &set : nullptr, &old);
    if (rc != 0) return ctx.Error(OpStatus::kAllocatorCtl, strerror(rc));
    return ctx.rb->Integer(old);
  }
  if (sub == "mallctl-str" && (argc == 3 || argc == 4)) {
    std::string set(argc == 4 ? ctx.arg(3) : ""), old;
    bool has_old = false;
    int rc = AllocatorCtlStr(std::string(ctx.arg(2)), argc == 4 ? &set : nullptr, &old, &has_old);
    // As Redis: the old value if it could be read, else the write's outcome.
    if (has_old) return ctx.rb->Bulk(old);
    if (rc != 0) return ctx.Error(OpStatus::kAllocatorCtl, strerror(rc));
    return ctx.rb->Ok();
  }
  if (sub == "log" && argc == 3) {
    LOG_WARNING("DEBUG LOG: {}", ctx.arg(2));
    return ctx.rb->Ok();
  }
  if (sub == "change-repl-id" && argc == 2) {
    LOG_NOTICE("Changing replication IDs after receiving DEBUG change-repl-id");
    ctx.engine->ChangeReplId();
    return ctx.rb->Ok();
  }
  if (sub == "help") {
    static const char* kLines[] = {
        "DEBUG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "CHANGE-REPL-ID", "    Change the replication IDs of the instance.",
        "    Dangerous: should be used only for testing the replication subsystem.",
        "DIGEST", "    Output a hex signature representing the current DB content.",
        "DIGEST-VALUE <key> [<key> ...]", "    Output a hex signature of the values of all the specified keys.",
        "ERROR <string>", "    Return a Redis protocol error with <string> as message. Useful for clients",
        "    unit tests to simulate Redis errors.",
        "LOG <message>", "    Write <message> to the server log.",
        "LOADAOF", "    Flush the AOF buffers on disk and reload the AOF in memory.",
        "MALLCTL <key> [<val>]", "    Get or set a malloc tuning integer.",
        "MALLCTL-STR <key> [<val>]", "    Get or set a malloc tuning string.",
        "OBJECT <key>", "    Show low level info about `key` and associated value.",
        "POPULATE <count> [<prefix>] [<size>]",
        "    Create <count> string keys named key:<num>. If <prefix> is specified then",
        "    it is used instead of the 'key' prefix. These are not propagated to",
        "    replicas. Cluster slots are not respected so keys not belonging to the",
        "    current node can be created in cluster mode.",
        "PROTOCOL <type>", "    Reply with a test value of the specified type. <type> can be: string,",
        "    integer, double, bignum, null, array, set, map, attrib, push, verbatim,", "    true, false.",
        "SET-ACTIVE-EXPIRE <0|1>", "    Setting it to 0 disables expiring keys in background when they are not",
        "    accessed (otherwise the Redis behavior). Setting it to 1 reenables back the", "    default.",
        "SLEEP <seconds>", "    Stop the server for <seconds>. Decimals allowed.",
        "HELP", "    Prints this help."};
    ctx.HelpLines(kLines);
    return;
  }
  ctx.Error(OpStatus::kDebugUnknownSubcommand, ctx.arg(1));
}

// ---- CLUSTER, READONLY, READWRITE, ASKING ----
// Larder has no cluster mode: these answer as a Redis started with
// cluster-enabled no (after the usual arity and subcommand checks).

void ClusterDisabled(CommandContext& ctx) { ctx.Error(OpStatus::kClusterDisabled); }

// BGREWRITEAOF: a new base from a snapshot taken without fork (engine/aof.h).
void BgRewriteAof(CommandContext& ctx) {
  std::string err;
  if (!ctx.engine->aof().Rewrite(&err)) return ctx.Error(OpStatus::kAofRewriteFailed, err);
  ctx.rb->SimpleString("Background append only file rewriting started");
}

void Shutdown(CommandContext& ctx) {
  bool nosave = false, save = false, force = false;
  for (size_t i = 1; i < ctx.argc(); ++i) {
    std::string o = AsciiLower(ctx.arg(i));
    if (o == "abort") return ctx.Error(OpStatus::kNoShutdownInProgress);
    if (o != "nosave" && o != "save" && o != "now" && o != "force") return ctx.SyntaxError();
    nosave |= o == "nosave";
    save |= o == "save";
    force |= o == "force";
  }
  if (nosave && save) return ctx.SyntaxError();
  Engine* engine = ctx.engine;
  // With save points (or SAVE) the dump is written first; if that fails
  // the server stays up and says so, unless FORCE.
  // (Never while a file loads: the dump would hold part of it, as Redis.)
  if (nosave || engine->persistence().loading() || (!save && engine->config().Get("save").value_or("").empty())) {
    engine->RequestShutdown();  // the main thread logs and stops the shards
    return;                     // no reply: the connection closes when the server stops
  }
  ReplyTarget target = ctx.Defer();
  int resp = ctx.rb->protocol();
  std::thread([engine, target, resp, force] {
    LOG_NOTICE("Saving the final RDB snapshot before exiting.");
    std::string error;
    if (engine->persistence().SaveBlocking(&error) || force) {
      engine->SetShutdownSaved();
      engine->RequestShutdown();
      return;
    }
    LOG_WARNING("Error trying to save the DB, can't exit.");
    engine->DeliverError(target, FormatError(OpStatus::kShutdownErrors), resp);
  }).detach();
}

}  // namespace

void RegisterServerFamily(CommandRegistry* r) {
  auto make = [](const char* name, int arity, uint32_t flags, Handler h, const char* acl, const char* summary) {
    CommandSpec s = MakeCommand(name, arity, flags, 0, 0, 0, h, acl, summary, "server");
    s.route = Route::kConnection;
    return s;
  };
  constexpr uint32_t L = kCmdLoading, S = kCmdStale, A = kCmdAdmin, NS = kCmdNoScript, G = kCmdGathers;
  r->Add(make("info", -1, L | S | G, Info, "@slow @dangerous", "Returns information and statistics about the server."));
  r->Add(make("time", 1, kCmdLocalOnly | L | S | kCmdFast, Time, "@fast", "Returns the server time."));
  r->Add(make("monitor", 1, A | NS | L | S, Monitor, "@admin @slow @dangerous", "Listens for all requests received by the server in real-time."));
  r->Add(make("debug", -2, A | NS | L | S, Debug, "@admin @slow @dangerous", "A container for debugging commands."));
  r->Add(make("bgrewriteaof", 1, A | NS | kCmdNoAsyncLoading, BgRewriteAof, "@admin @slow @dangerous",
              "Asynchronously rewrites the append-only file to disk."));
  r->Add(make("shutdown", -1, A | NS | L | S | kCmdNoMulti | kCmdSentinel | kCmdAllowBusy, Shutdown,
              "@admin @slow @dangerous", "Synchronously saves the database(s) to disk and shuts down the Redis server."));

  CommandSpec config = make("config", -2, 0, nullptr, "@slow", "A container for server configuration commands.");
  config.subcommands.push_back(make("config|get", -3, A | NS | L | S, ConfigGet, "@admin @slow @dangerous", "Returns the effective values of configuration parameters."));
  config.subcommands.push_back(make("config|set", -4, A | NS | L | S | kCmdMayReplicate, ConfigSet, "@admin @slow @dangerous", "Sets configuration parameters in-flight."));
  config.subcommands.push_back(make("config|resetstat", 2, A | NS | L | S, ConfigResetStat, "@admin @slow @dangerous", "Resets the server's statistics."));
  config.subcommands.push_back(make("config|rewrite", 2, A | NS | L | S, ConfigRewrite, "@admin @slow @dangerous", "Persists the effective configuration to file."));
  config.subcommands.push_back(make("config|help", 2, L | S, ConfigHelp, "@slow", "Returns helpful text about the different subcommands."));
  r->Add(std::move(config));

  CommandSpec command = make("command", -1, L | S, Command, "@slow @connection", "Returns detailed information about all commands.");
  command.subcommands.push_back(make("command|count", 2, L | S, CommandCount, "@slow @connection", "Returns a count of commands."));
  command.subcommands.push_back(make("command|info", -2, L | S, CommandInfo, "@slow @connection", "Returns information about one, multiple or all commands."));
  command.subcommands.push_back(make("command|docs", -2, L | S, CommandDocs, "@slow @connection", "Returns documentary information about one, multiple or all commands."));
  command.subcommands.push_back(make("command|list", -2, L | S, CommandList, "@slow @connection", "Returns a list of command names."));
  command.subcommands.push_back(make("command|getkeys", -4, L | S, CommandGetKeys, "@slow @connection", "Extracts the key names from an arbitrary command."));
  command.subcommands.push_back(make("command|getkeysandflags", -4, L | S, CommandGetKeysAndFlags, "@slow @connection", "Extract keys and access flags given a full Redis command"));
  command.subcommands.push_back(make("command|help", 2, L | S, CommandHelp, "@slow @connection", "Returns helpful text about the different subcommands."));
  r->Add(std::move(command));

  {
    constexpr uint32_t NAL = kCmdNoAsyncLoading, LO = kCmdLocalOnly;
    auto cluster_cmd = [&](const char* name, int arity, uint32_t flags, const char* acl, const char* summary,
                           const char* since) {
      CommandSpec s = make(name, arity, flags | LO, ClusterDisabled, acl, summary);
      s.group = "cluster";
      s.since = since;
      return s;
    };
    const char* kAdmin = "@admin @slow @dangerous";
    CommandSpec cluster = cluster_cmd("cluster", -2, 0, "@slow", "A container for cluster commands", "3.0.0");
    cluster.handler = nullptr;
    struct Sub {
      const char* name;
      int arity;
      uint32_t flags;
      bool admin;
      const char* summary;
      const char* since;
    };
    static const Sub kSubs[] = {
        {"addslots", -3, A | S | NAL, true, "Assign new hash slots to receiving node", "3.0.0"},
        {"addslotsrange", -4, A | S | NAL, true, "Assign new hash slots to receiving node", "7.0.0"},
        {"bumpepoch", 2, A | S | NAL, true, "Advance the cluster config epoch", "3.0.0"},
        {"count-failure-reports", 3, A | S, true, "Return the number of failure reports active for a given node", "3.0.0"},
        {"countkeysinslot", 3, S, false, "Return the number of local keys in the specified hash slot", "3.0.0"},
        {"delslots", -3, A | S | NAL, true, "Set hash slots as unbound in receiving node", "3.0.0"},
        {"delslotsrange", -4, A | S | NAL, true, "Set hash slots as unbound in receiving node", "7.0.0"},
        {"failover", -2, A | S | NAL, true, "Forces a replica to perform a manual failover of its master.", "3.0.0"},
        {"flushslots", 2, A | S | NAL, true, "Delete a node's own slots information", "3.0.0"},
        {"forget", 3, A | S | NAL, true, "Remove a node from the nodes table", "3.0.0"},
        {"getkeysinslot", 4, S, false, "Return local key names in the specified hash slot", "3.0.0"},
        {"help", 2, L | S, false, "Show helpful text about the different subcommands", "5.0.0"},
        {"info", 2, S, false, "Provides info about Redis Cluster node state", "3.0.0"},
        {"keyslot", 3, S, false, "Returns the hash slot of the specified key", "3.0.0"},
        {"links", 2, S, false, "Returns a list of all TCP links to and from peer nodes in cluster", "7.0.0"},
        {"meet", -4, A | S | NAL, true, "Force a node cluster to handshake with another node", "3.0.0"},
        {"myid", 2, S, false, "Return the node id", "3.0.0"},
        {"nodes", 2, S, false, "Get Cluster config for the node", "3.0.0"},
        {"replicas", 3, A | S, true, "List replica nodes of the specified master node", "5.0.0"},
        {"replicate", 3, A | S | NAL, true, "Reconfigure a node as a replica of the specified master node", "3.0.0"},
        {"reset", -2, A | NS | S, true, "Reset a Redis Cluster node", "3.0.0"},
        {"saveconfig", 2, A | S | NAL, true, "Forces the node to save cluster state on disk", "3.0.0"},
        {"set-config-epoch", 3, A | S | NAL, true, "Set the configuration epoch in a new node", "3.0.0"},
        {"setslot", -4, A | S | NAL, true, "Bind a hash slot to a specific node", "3.0.0"},
        {"shards", 2, S, false, "Get array of cluster slots to node mappings", "7.0.0"},
        {"slaves", 3, A | S, true, "List replica nodes of the specified master node", "3.0.0"},
        {"slots", 2, S, false, "Get array of Cluster slot to node mappings", "3.0.0"},
    };
    for (const Sub& sub : kSubs)
      cluster.subcommands.push_back(cluster_cmd((std::string("cluster|") + sub.name).c_str(), sub.arity, sub.flags,
                                                sub.admin ? kAdmin : "@slow", sub.summary, sub.since));
    r->Add(std::move(cluster));
    r->Add(cluster_cmd("readonly", 1, L | S | kCmdFast, "@fast @connection",
                       "Enables read queries for a connection to a cluster replica node", "3.0.0"));
    r->Add(cluster_cmd("readwrite", 1, L | S | kCmdFast, "@fast @connection",
                       "Disables read queries for a connection to a cluster replica node", "3.0.0"));
    r->Add(cluster_cmd("asking", 1, kCmdFast, "@fast @connection", "Sent by cluster clients after an -ASK redirect",
                       "3.0.0"));
  }

  CommandSpec slowlog = make("slowlog", -2, 0, nullptr, "@slow", "A container for slow log commands.");
  slowlog.subcommands.push_back(make("slowlog|get", -2, A | L | S | G, SlowlogGet, "@admin @slow @dangerous", "Returns the slow log's entries."));
  slowlog.subcommands.push_back(make("slowlog|len", 2, A | L | S | G, SlowlogLen, "@admin @slow @dangerous", "Returns the number of entries in the slow log."));
  slowlog.subcommands.push_back(make("slowlog|reset", 2, A | L | S | G, SlowlogReset, "@admin @slow @dangerous", "Clears all entries from the slow log."));
  slowlog.subcommands.push_back(make("slowlog|help", 2, L | S, SlowlogHelp, "@slow", "Show helpful text about the different subcommands"));
  r->Add(std::move(slowlog));

  CommandSpec latency = make("latency", -2, 0, nullptr, "@slow", "A container for latency diagnostics commands.");
  latency.subcommands.push_back(make("latency|latest", 2, A | NS | L | S, LatencyLatest, "@admin @slow @dangerous", "Returns the latest latency samples for all events."));
  latency.subcommands.push_back(make("latency|history", 3, A | NS | L | S, LatencyHistory, "@admin @slow @dangerous", "Returns timestamp-latency samples for an event."));
  latency.subcommands.push_back(make("latency|reset", -2, A | NS | L | S, LatencyReset, "@admin @slow @dangerous", "Resets the latency data for one or more events."));
  latency.subcommands.push_back(make("latency|doctor", 2, A | NS | L | S, LatencyDoctor, "@admin @slow @dangerous", "Return a human readable latency analysis report."));
  latency.subcommands.push_back(make("latency|histogram", -2, A | NS | L | S | G, LatencyHistogram, "@admin @slow @dangerous", "Return the cumulative distribution of latencies of a subset of commands or all."));
  latency.subcommands.push_back(make("latency|help", 2, L | S, LatencyHelp, "@slow", "Returns helpful text about the different subcommands."));
  r->Add(std::move(latency));
}

}  // namespace larder
