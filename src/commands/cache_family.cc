// CACHE: read-through rules at runtime.
//
//   CACHE RULES                       the rules, in match order, as config lines
//   CACHE SOURCES                     the sources: name and URI
//   CACHE RULE ADD <pattern> <options as in cache-rule>
//   CACHE RULE DEL <pattern>
//
// Changes take effect at once on every thread and are kept by CONFIG REWRITE.
#include <string>
#include <vector>

#include "commands/command.h"
#include "common/strings.h"
#include "server/server.h"

namespace larder {

namespace {

void SyncConfig(Server* server) {
  std::vector<cache::Rule> rules;
  for (const auto& r : *server->cache().rules()) rules.push_back(r->rule);
  server->config().SetCacheDirectives(server->cache().source_specs(), std::move(rules));
}

void CacheRules(CommandContext& ctx) {
  auto rules = ctx.server->cache().rules();
  ctx.rb->ArrayHeader(rules->size());
  for (const auto& r : *rules) ctx.rb->Bulk(r->rule.ToLine());
}

void CacheSources(CommandContext& ctx) {
  auto specs = ctx.server->cache().source_specs();
  ctx.rb->ArrayHeader(specs.size());
  for (const auto& s : specs) {
    ctx.rb->ArrayHeader(2);
    ctx.rb->Bulk(s.name);
    ctx.rb->Bulk(s.uri);
  }
}

void CacheRule(CommandContext& ctx) {
  std::string_view op = ctx.arg(2);
  if (EqualsIgnoreCase(op, "add")) {
    if (ctx.argc() < 4) return ctx.ArityError();
    std::vector<std::string> words(ctx.args.begin() + 3, ctx.args.end());
    cache::Rule rule;
    std::string err;
    if (!cache::ParseRule(words, &rule, &err) || !ctx.server->cache().AddRule(rule, &err))
      return ctx.Error("ERR invalid cache rule: " + err);
    SyncConfig(ctx.server);
    return ctx.rb->Ok();
  }
  if (EqualsIgnoreCase(op, "del")) {
    if (ctx.argc() != 4) return ctx.ArityError();
    bool removed = ctx.server->cache().RemoveRule(ctx.arg(3));
    if (removed) SyncConfig(ctx.server);
    return ctx.rb->Integer(removed ? 1 : 0);
  }
  ctx.SyntaxError();
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
      "HELP",
      "    Prints this help.",
  };
  ctx.HelpLines(kLines);
}

}  // namespace

void RegisterCacheFamily(CommandRegistry* r) {
  auto sub = [](const char* name, int arity, uint32_t flags, Handler h, const char* summary) {
    CommandSpec s = MakeCommand(name, arity, flags | kCmdLocalOnly, 0, 0, 0, h, "@admin @slow", summary, "cache");
    s.route = Route::kConnection;
    s.since = "0.1.0";
    return s;
  };
  CommandSpec c = MakeCommand("cache", -2, 0, 0, 0, 0, nullptr, "@slow", "Read-through cache rules.", "cache");
  c.route = Route::kConnection;
  c.since = "0.1.0";
  c.subcommands.push_back(sub("cache|rules", 2, 0, CacheRules, "Lists the read-through rules."));
  c.subcommands.push_back(sub("cache|sources", 2, 0, CacheSources, "Lists the cache sources."));
  c.subcommands.push_back(sub("cache|rule", -3, kCmdAdmin, CacheRule, "Adds or removes a read-through rule."));
  c.subcommands.push_back(sub("cache|help", 2, kCmdLoading | kCmdStale, CacheHelp, "Shows the CACHE subcommands."));
  r->Add(std::move(c));
}

}  // namespace larder
