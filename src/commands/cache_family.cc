// CACHE: read-through rules at runtime.
//
//   CACHE RULES                       the rules, in match order, as config lines
//   CACHE SOURCES                     the sources: name and URI
//   CACHE RULE ADD <pattern> <options as in cache-rule>
//   CACHE RULE DEL <pattern>
//   CACHE DEADLETTER LIST|REPLAY|DROP   refused write-behind changes
//
// Changes take effect at once on every thread and are kept by CONFIG REWRITE.
#include <string>
#include <vector>

#include "engine/blocking.h"
#include "commands/families.h"
#include "cache/shard_cache.h"
#include "engine/command.h"
#include "common/clock.h"
#include "common/numbers.h"
#include "common/strings.h"
#include "engine/engine.h"
#include "engine/multi_shard.h"

namespace larder {

namespace {

void SyncConfig(Engine* server) {
  std::vector<cache::Rule> rules;
  for (const auto& r : *server->cache().rules()) rules.push_back(r->rule);
  server->config().SetCacheDirectives(server->cache().source_specs(), std::move(rules));
}

void CacheRules(CommandContext& ctx) {
  auto rules = ctx.engine->cache().rules();
  ctx.rb->ArrayHeader(rules->size());
  for (const auto& r : *rules) ctx.rb->Bulk(r->rule.ToLine());
}

void CacheSources(CommandContext& ctx) {
  auto specs = ctx.engine->cache().source_specs();
  ctx.rb->ArrayHeader(specs.size());
  for (const auto& s : specs) {
    ctx.rb->ArrayHeader(2);
    ctx.rb->Bulk(s.name);
    ctx.rb->Bulk(s.RedactedUri());
  }
}

// CACHE RULE ADD/DEL and CACHE WARM run SQL on a source's connection:
// allowed as enable-cache-rule-command says (loopback clients by default).
bool CacheRuleCommandAllowed(CommandContext& ctx) {
  if (AllowProtectedAction(ctx.engine->config().enable_cache_rule_command.load(), ctx.from_loopback())) return true;
  ctx.Error(OpStatus::kCacheRuleNotAllowed);
  return false;
}

void CacheRule(CommandContext& ctx) {
  if (!CacheRuleCommandAllowed(ctx)) return;
  std::string_view op = ctx.arg(2);
  if (EqualsIgnoreCase(op, "add")) {
    if (ctx.argc() < 4) return ctx.ArityError();
    std::vector<std::string> words(ctx.args.begin() + 3, ctx.args.end());
    cache::Rule rule;
    std::string err;
    if (!cache::ParseRule(words, &rule, &err) || !ctx.engine->cache().AddRule(rule, &err))
      return ctx.Error(OpStatus::kInvalidCacheRule, err);
    SyncConfig(ctx.engine);
    return ctx.rb->Ok();
  }
  if (EqualsIgnoreCase(op, "del")) {
    if (ctx.argc() != 4) return ctx.ArityError();
    std::string err;
    if (!ctx.engine->cache().CanRemoveRule(ctx.arg(3), &err)) return ctx.Error(err);
    bool removed = ctx.engine->cache().RemoveRule(ctx.arg(3));
    if (removed) SyncConfig(ctx.engine);
    return ctx.rb->Integer(removed ? 1 : 0);
  }
  ctx.SyntaxError();
}

// CACHE FETCH key lease-ms [EARLY ms]: single-flight for cache-aside code.
//   ["hit", value]       the key is there
//   ["compute", nil]     it is not, and this caller computes it (holds a lease
//                        for lease-ms) and stores it with SET; the others wait
//   ["refresh", value]   with EARLY: the key expires within ms; this one
//                        caller recomputes it while the others keep reading
//   nil                  waited lease-ms (the computing caller was too slow or
//                        went away): call again; the first to do so computes
void CacheFetch(CommandContext& ctx) {
  std::string_view key = ctx.arg(2);
  int64_t lease_ms, early_ms = -1;
  if (!ParseInt64(ctx.arg(3), &lease_ms) || lease_ms <= 0)
    return ctx.Error(OpStatus::kLeaseNotPositive);
  for (size_t i = 4; i < ctx.argc(); ++i) {
    if (EqualsIgnoreCase(ctx.arg(i), "early") && i + 1 < ctx.argc()) {
      if (!ParseInt64(ctx.arg(++i), &early_ms) || early_ms < 0)
        return ctx.Error(OpStatus::kEarlyNegative);
    } else {
      return ctx.SyntaxError();
    }
  }
  cache::ShardCache* sc = cache::CurrentShardCache();
  Db& db = ctx.DbFor(key);
  Entry* e = db.FindRead(key);
  if (e && e->type != ObjType::kString) return ctx.Error(OpStatus::kWrongType);
  int64_t now = CommandTimeMs();
  int client_shard = ctx.block ? ctx.block->client_shard : 0;
  uint64_t client_id = ctx.block ? ctx.block->client_id : 0;
  auto reply = [&](const char* status, const Entry* value) {
    ctx.rb->ArrayHeader(2);
    ctx.rb->Bulk(status);
    if (value) ctx.rb->Bulk(value->value());
    else ctx.rb->Null();
  };
  auto grant = [&] {
    sc->leases().Grant(db.index(), key, {client_shard, client_id, now + lease_ms});
    ctx.engine->cache().NoteLease();
  };
  if (e) {
    if (early_ms >= 0 && e->has_expire() && e->expire_ms() - now <= early_ms && !sc->leases().Find(db.index(), key)) {
      grant();
      return reply("refresh", e);
    }
    return reply("hit", e);
  }
  if (Serving(ctx)) return;  // woken but the key is gone again: keep waiting
  const cache::Leases::Lease* lease = sc->leases().Find(db.index(), key);
  if (!lease || (lease->client_shard == client_shard && lease->client_id == client_id)) {
    grant();
    return reply("compute", nullptr);
  }
  RequestBlock(ctx, lease->until_ms - now + 1, {std::string(key)});
}

// CACHE INVALIDATE key [key ...]: as a database notification would, drops
// each loaded key (the next read loads it again) and makes a load of it
// that runs now run again; the number of keys acted on.
void CacheInvalidate(CommandContext& ctx) {
  ShardSet& set = ctx.engine->shards();
  auto keys = std::make_shared<std::vector<std::vector<std::string>>>(static_cast<size_t>(set.size()));
  for (size_t i = 2; i < ctx.argc(); ++i)
    (*keys)[static_cast<size_t>(set.ShardOf(ctx.arg(i)))].emplace_back(ctx.arg(i));
  std::vector<int> ids;
  for (size_t s = 0; s < keys->size(); ++s)
    if (!(*keys)[s].empty()) ids.push_back(static_cast<int>(s));
  auto count = std::make_shared<std::atomic<int64_t>>(0);
  Engine* engine = ctx.engine;
  int db = ctx.db_index;
  GatherFrom(
      ctx, ids,
      [engine, keys, count, db](Shard& shard) {
        RefreshCommandTime();
        cache::ShardCache& sc = engine->cache().shard(shard.id());
        for (const auto& k : (*keys)[static_cast<size_t>(shard.id())])
          if (sc.Invalidate(db, k)) count->fetch_add(1);
      },
      [count](resp::ReplyBuilder& rb) { rb.Integer(count->load()); });
}

// CACHE WARM <pattern> <query>: the query's rows become the rule's keys
// (placeholders as columns, then the value columns); runs in the background,
// progress in INFO cache.
void CacheWarm(CommandContext& ctx) {
  if (!CacheRuleCommandAllowed(ctx)) return;
  std::string err;
  if (!ctx.engine->cache().Warm(ctx.arg(2), std::string(ctx.arg(3)), &err))
    return ctx.Error(OpStatus::kCacheWarmRefused, err);
  ctx.rb->SimpleString("Warming started");
}

// CACHE DEADLETTER LIST | REPLAY <id>|ALL | DROP <id>|ALL: write-behind
// changes the database refused.
void CacheDeadLetter(CommandContext& ctx) {
  cache::CacheManager& cm = ctx.engine->cache();
  std::string_view op = ctx.arg(2);
  if (EqualsIgnoreCase(op, "list")) {
    if (ctx.argc() != 3) return ctx.ArityError();
    auto items = cm.dead_letters().List();
    ctx.rb->ArrayHeader(items.size());
    for (const auto& d : items) {
      // id, key, operation, rule, error, time, then the values as name/value pairs.
      ctx.rb->ArrayHeader(7);
      ctx.rb->Integer(static_cast<int64_t>(d.id));
      ctx.rb->Bulk(d.change.key);
      ctx.rb->Bulk(d.change.del ? "delete" : "store");
      ctx.rb->Bulk(d.rule);
      ctx.rb->Bulk(d.error);
      ctx.rb->Integer(d.at_ms);
      ctx.rb->ArrayHeader(d.change.values.size() * 2);
      for (const auto& [name, value] : d.change.values) {
        ctx.rb->Bulk(name);
        if (value) ctx.rb->Bulk(*value);
        else ctx.rb->Null();
      }
    }
    return;
  }
  bool replay = EqualsIgnoreCase(op, "replay");
  if (!replay && !EqualsIgnoreCase(op, "drop")) return ctx.SyntaxError();
  if (ctx.argc() != 4) return ctx.ArityError();
  int64_t id = 0;
  if (!EqualsIgnoreCase(ctx.arg(3), "all") && (!ParseInt64(ctx.arg(3), &id) || id <= 0))
    return ctx.Error(OpStatus::kDeadLetterId);
  cache::Journal* journal = cm.journal();
  if (replay && !journal) return ctx.Error(OpStatus::kWriteBehindDisabled);
  auto taken = cm.dead_letters().Take(static_cast<uint64_t>(id));
  int64_t n = 0;
  for (auto& d : taken) {
    // Replayed: journaled again and queued to the rule that takes the key now.
    std::shared_ptr<cache::LiveRule> rule;
    cache::Params p;
    for (const auto& r : *cm.rules())
      if (r->rule.pattern.Match(d.change.key, &p)) {
        rule = r;
        break;
      }
    if (replay && (!rule || !rule->writes)) {
      cm.dead_letters().Add(d);  // nowhere to send it: kept
      continue;
    }
    if (replay) {
      d.change.at_ms = UnixTimeMs();
      std::string err;
      if (!journal->Append(&d.change, -1, rule->writes.get(), &err)) {
        cm.dead_letters().Add(d);
        return ctx.Error(OpStatus::kReplayJournalFailed, err);
      }
    }
    ++n;
  }
  ctx.rb->Integer(n);
}

void CacheHelp(CommandContext& ctx) {
  static const char* const kLines[] = {
      "CACHE <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
      "RULES",
      "    List the read-through rules in match order, as cache-rule config lines.",
      "SOURCES",
      "    List the cache sources (name and URI).",
      "RULE ADD <pattern> source <name> load <statement> [<option> <value> ...]",
      "    Add a rule (options as in the cache-rule config directive).",
      "RULE DEL <pattern>",
      "    Remove the rule with this pattern.",
      "INVALIDATE <key> [<key> ...]",
      "    Drop loaded keys as a database notification would (the next read loads them;",
      "    a load running now runs again). Returns how many keys were acted on.",
      "WARM <pattern> <query>",
      "    Preload a rule's keys from a query returning the pattern's placeholders as",
      "    columns, then the value columns (in the background; progress in INFO cache).",
      "FETCH <key> <lease-ms> [EARLY <ms>]",
      "    Cache-aside single flight: the value ('hit'), or 'compute' for exactly one",
      "    caller, who SETs the key while the others wait; 'refresh' for one caller when",
      "    the key expires within EARLY ms. nil after waiting lease-ms: ask again.",
      "DEADLETTER LIST",
      "    Write-behind changes the database refused: id, key, store or delete, rule,",
      "    error, time (ms), values.",
      "DEADLETTER REPLAY <id>|ALL",
      "    Queue them again (to the rule that takes the key now).",
      "DEADLETTER DROP <id>|ALL",
      "    Forget them.",
      "HELP",
      "    Prints this help.",
  };
  ctx.HelpLines(kLines);
}

}  // namespace

void RegisterCacheFamily(CommandRegistry* r) {
  // Changing rules, warming and replaying dead letters write to the
  // database behind the cache: @admin @dangerous, kept from ordinary users.
  auto sub = [](const char* name, int arity, uint32_t flags, Handler h, const char* summary,
                const char* acl = "@admin @slow") {
    CommandSpec s = MakeCommand(name, arity, flags | kCmdLocalOnly, 0, 0, 0, h, acl, summary, "cache");
    s.route = Route::kConnection;
    s.since = "0.1.0";
    return s;
  };
  CommandSpec c = MakeCommand("cache", -2, 0, 0, 0, 0, nullptr, "@slow", "Read-through cache rules.", "cache");
  c.route = Route::kConnection;
  c.since = "0.1.0";
  c.subcommands.push_back(sub("cache|rules", 2, 0, CacheRules, "Lists the read-through rules."));
  c.subcommands.push_back(sub("cache|sources", 2, 0, CacheSources, "Lists the cache sources."));
  c.subcommands.push_back(sub("cache|rule", -3, kCmdAdmin, CacheRule, "Adds or removes a read-through rule.",
                              "@admin @slow @dangerous"));
  {
    CommandSpec f = MakeCommand("cache|fetch", -4, kCmdWrite | kCmdBlocking | kCmdFast, 2, 2, 1, CacheFetch,
                                "@write @string @blocking", "Gets a key, or the lease to compute it.", "cache");
    f.since = "0.1.0";
    c.subcommands.push_back(std::move(f));
  }
  // Run from the connection, which sends each key to its shard. Like the
  // other CACHE subcommands it declares no key positions (ACL key
  // patterns do not apply to it: docs/caching.md).
  {
    CommandSpec inv = MakeCommand("cache|invalidate", -3, kCmdWrite | kCmdFast, 0, 0, 0, CacheInvalidate,
                                  "@write @keyspace @fast", "Drops loaded keys so that their next read loads them.",
                                  "cache");
    inv.route = Route::kConnection;  // gathers from the keys' shards (not kCmdLocalOnly)
    inv.since = "0.1.0";
    c.subcommands.push_back(std::move(inv));
  }
  c.subcommands.push_back(sub("cache|warm", 4, kCmdAdmin, CacheWarm, "Preloads a rule's keys from a query.",
                              "@admin @slow @dangerous"));
  c.subcommands.push_back(
      sub("cache|deadletter", -3, kCmdAdmin, CacheDeadLetter, "Lists, replays or drops refused write-behind changes.",
          "@admin @slow @dangerous"));
  c.subcommands.push_back(sub("cache|help", 2, kCmdLoading | kCmdStale, CacheHelp, "Shows the CACHE subcommands."));
  r->Add(std::move(c));
}

}  // namespace larder
