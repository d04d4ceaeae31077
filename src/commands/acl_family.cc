// ACL: users and permissions (ACL SETUSER, GETUSER, LIST, LOG, DRYRUN ...).
// The rules and the check live in engine/acl.h; these handlers parse,
// call it, and reply as Redis 7.0 does. They run on the client's thread.
#include <openssl/rand.h>

#include <algorithm>

#include "commands/families.h"
#include "common/clock.h"
#include "common/numbers.h"
#include "common/strings.h"
#include "engine/acl.h"
#include "engine/client.h"
#include "engine/client_state.h"
#include "engine/command.h"
#include "engine/engine.h"
#include "engine/multi_shard.h"

namespace larder {

namespace {

bool HasSpaces(std::string_view s) {
  for (char c : s)
    if (std::isspace(static_cast<unsigned char>(c)) || c == 0) return true;
  return false;
}

// Closes the connections authenticated as one of `names` (or, with
// `all_but_default`, as any user but the default one), then replies with
// `reply`. The caller's own connection closes after its reply.
void KillUsersThenReply(CommandContext& ctx, std::vector<std::string> names, bool all_but_default,
                        std::function<void(resp::ReplyBuilder&)> reply) {
  Engine* engine = ctx.engine;
  uint64_t me = ctx.client_state().id;
  GatherAll<int>(
      ctx,
      [engine, names, all_but_default, me](Shard& s) {
        for (auto& [id, conn] : engine->local(s.id()).clients) {
          if (conn->closed() || !conn->state().user) continue;
          const std::string& user = conn->state().user->name;
          bool hit = all_but_default ? user != "default"
                                     : std::find(names.begin(), names.end(), user) != names.end();
          if (!hit) continue;
          if (id == me) conn->CloseAfterReply();
          else conn->Close();
        }
        return 0;
      },
      [reply](std::vector<int>&, resp::ReplyBuilder& rb) { reply(rb); });
}

void AclSetUser(CommandContext& ctx) {
  acl::Users& users = ctx.engine->users();
  std::string_view name = ctx.arg(2);
  if (HasSpaces(name)) return ctx.Error(OpStatus::kAclUsernameSpaces);
  std::vector<std::string> args(ctx.args.begin() + 3, ctx.args.end());
  std::vector<std::string> rules;
  size_t bad = 0;
  if (!acl::MergeSelectorArgs(args, &rules, &bad)) return ctx.Error(OpStatus::kAclUnmatchedParen, ctx.arg(bad + 3));
  // All rules apply to a copy; the user changes only if every one is valid.
  std::shared_ptr<const acl::User> current = users.Find(name);
  acl::User u = current ? *current : acl::User::Create(std::string(name), users.table(), ctx.engine->acl_pubsub_all());
  for (const auto& r : rules) {
    OpStatus st = acl::ApplyUserRule(u, r, users.table(), ctx.engine->acl_pubsub_all());
    if (st != OpStatus::kOk) return ctx.Error(OpStatus::kAclSetUserModifier, r, ErrorText(st));
  }
  users.Put(std::move(u));
  ctx.rb->Ok();
}

void AclDelUser(CommandContext& ctx) {
  acl::Users& users = ctx.engine->users();
  for (size_t j = 2; j < ctx.argc(); ++j)
    if (ctx.arg(j) == "default") return ctx.Error(OpStatus::kAclDefaultUndeletable);
  std::vector<std::string> deleted;
  for (size_t j = 2; j < ctx.argc(); ++j)
    if (users.Delete(ctx.arg(j))) deleted.emplace_back(ctx.arg(j));
  int64_t n = static_cast<int64_t>(deleted.size());
  if (deleted.empty()) return ctx.rb->Integer(0);
  KillUsersThenReply(ctx, std::move(deleted), false, [n](resp::ReplyBuilder& rb) { rb.Integer(n); });
}

void ReplySelector(resp::ReplyBuilder& rb, const acl::Selector& s, const acl::CommandTable& table) {
  rb.Bulk("commands");
  rb.Bulk(acl::DescribeCommands(s, table));
  rb.Bulk("keys");
  rb.Bulk(acl::DescribeKeys(s));
  rb.Bulk("channels");
  rb.Bulk(acl::DescribeChannels(s));
}

void AclGetUser(CommandContext& ctx) {
  acl::Users& users = ctx.engine->users();
  std::shared_ptr<const acl::User> u = users.Find(ctx.arg(2));
  if (!u) return ctx.rb->Null();
  resp::ReplyBuilder& rb = *ctx.rb;
  rb.MapHeader(6);
  rb.Bulk("flags");
  std::vector<const char*> flags;
  flags.push_back(u->enabled ? "on" : "off");
  if (u->nopass) flags.push_back("nopass");
  if (u->sanitize == acl::User::Sanitize::kSkip) flags.push_back("skip-sanitize-payload");
  if (u->sanitize == acl::User::Sanitize::kSanitize) flags.push_back("sanitize-payload");
  rb.SetHeader(flags.size());
  for (const char* f : flags) rb.Bulk(f);
  rb.Bulk("passwords");
  rb.ArrayHeader(u->passwords.size());
  for (const auto& p : u->passwords) rb.Bulk(p);
  ReplySelector(rb, u->selectors[0], users.table());
  rb.Bulk("selectors");
  rb.ArrayHeader(u->selectors.size() - 1);
  for (size_t i = 1; i < u->selectors.size(); ++i) {
    rb.MapHeader(3);
    ReplySelector(rb, u->selectors[i], users.table());
  }
}

void AclList(CommandContext& ctx) {
  acl::Users& users = ctx.engine->users();
  auto all = users.All();
  ctx.rb->ArrayHeader(all.size());
  for (const auto& u : all) ctx.rb->Bulk("user " + u->name + " " + acl::DescribeUser(*u, users.table()));
}

void AclUsers(CommandContext& ctx) {
  auto all = ctx.engine->users().All();
  ctx.rb->ArrayHeader(all.size());
  for (const auto& u : all) ctx.rb->Bulk(u->name);
}

void AclWhoami(CommandContext& ctx) {
  const ClientState& c = ctx.client_state();
  ctx.rb->Bulk(c.user ? std::string_view(c.user->name) : std::string_view("default"));
}

void AclCat(CommandContext& ctx) {
  if (ctx.argc() > 3) return ctx.Error(OpStatus::kSubcommandSyntax, ctx.arg(1), "ACL");
  if (ctx.argc() == 2) {
    ctx.rb->ArrayHeader(acl::kCategoryCount);
    for (const char* c : acl::kCategoryNames) ctx.rb->Bulk(c);
    return;
  }
  uint32_t flag = acl::CategoryFlag(ctx.arg(2));
  if (!flag) return ctx.Error(OpStatus::kAclUnknownCategory, ctx.arg(2).substr(0, 128));
  const acl::CommandTable& table = ctx.engine->users().table();
  std::vector<std::string_view> names;
  for (size_t id = 0; id < table.size(); ++id)
    if (table.categories(id) & flag) names.push_back(table.spec(id)->name);
  ctx.rb->ArrayHeader(names.size());
  for (auto n : names) ctx.rb->Bulk(n);
}

void AclGenPass(CommandContext& ctx) {
  if (ctx.argc() > 3) return ctx.Error(OpStatus::kSubcommandSyntax, ctx.arg(1), "ACL");
  constexpr int64_t kMaxBits = 4096;
  int64_t bits = 256;
  if (ctx.argc() == 3 && !ParseInt64(ctx.arg(2), &bits)) return ctx.Error(OpStatus::kNotAnInteger);
  if (bits <= 0 || bits > kMaxBits) return ctx.Error(OpStatus::kAclGenpassBits);
  size_t chars = static_cast<size_t>((bits + 3) / 4);
  unsigned char raw[kMaxBits / 8];
  RAND_bytes(raw, static_cast<int>((chars + 1) / 2));
  static const char* kHex = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < chars; ++i) out.push_back(kHex[(raw[i / 2] >> (i % 2 ? 0 : 4)) & 15]);
  ctx.rb->Bulk(out);
}

void AclLog(CommandContext& ctx) {
  if (ctx.argc() > 3) return ctx.Error(OpStatus::kSubcommandSyntax, ctx.arg(1), "ACL");
  acl::Log& log = ctx.engine->users().log();
  int64_t count = 10;
  if (ctx.argc() == 3) {
    if (EqualsIgnoreCase(ctx.arg(2), "reset")) {
      log.Reset();
      return ctx.rb->Ok();
    }
    if (!ParseInt64(ctx.arg(2), &count)) return ctx.Error(OpStatus::kNotAnInteger);
    if (count < 0) count = 0;
  }
  auto entries = log.Newest(static_cast<size_t>(count));
  int64_t now = UnixTimeMs();
  resp::ReplyBuilder& rb = *ctx.rb;
  rb.ArrayHeader(entries.size());
  for (const auto& e : entries) {
    rb.MapHeader(7);
    rb.Bulk("count");
    rb.Integer(static_cast<int64_t>(e.count));
    rb.Bulk("reason");
    rb.Bulk(acl::DenialName(e.reason));
    rb.Bulk("context");
    rb.Bulk(e.context);
    rb.Bulk("object");
    rb.Bulk(e.object);
    rb.Bulk("username");
    rb.Bulk(e.username);
    rb.Bulk("age-seconds");
    rb.Double(static_cast<double>(now - e.ctime_ms) / 1000);
    rb.Bulk("client-info");
    rb.Bulk(e.client_info);
  }
}

void AclDryRun(CommandContext& ctx) {
  acl::Users& users = ctx.engine->users();
  std::shared_ptr<const acl::User> u = users.Find(ctx.arg(2));
  if (!u) return ctx.Error(OpStatus::kAclDryRunNoUser, ctx.arg(2));
  std::span<const std::string_view> argv = ctx.args.subspan(3);
  // Redis's lookupCommand: the container alone, or its subcommand.
  const CommandSpec* spec = Commands().Find(argv[0]);
  if (spec && !spec->subcommands.empty() && argv.size() >= 2) spec = Commands().FindSub(*spec, argv[1]);
  if (!spec) return ctx.Error(OpStatus::kAclDryRunNoCommand, argv[0]);
  if (!spec->ArityOk(argv.size())) return ctx.Error(OpStatus::kWrongArity, spec->name);
  acl::CheckResult r = acl::Check(*u, *spec, argv);
  switch (r.denial) {
    case acl::Denial::kNone: return ctx.rb->Ok();
    case acl::Denial::kCommand: return ctx.rb->Bulk(FormatError(OpStatus::kAclDryRunCommand, spec->name));
    case acl::Denial::kKey: return ctx.rb->Bulk(FormatError(OpStatus::kAclDryRunKey, argv[r.pos]));
    default: return ctx.rb->Bulk(FormatError(OpStatus::kAclDryRunChannel, argv[r.pos]));
  }
}

void AclLoad(CommandContext& ctx) {
  std::string path = ctx.engine->config().aclfile();
  if (path.empty()) return ctx.Error(OpStatus::kAclNoAclFile);
  std::string errors = acl::LoadFile(path, &ctx.engine->users(), ctx.engine->acl_pubsub_all());
  if (!errors.empty()) return ctx.Error(OpStatus::kAclLoadFailed, errors);
  // As Redis, every connection of a user other than the default one ends:
  // the users it authenticated as were replaced.
  KillUsersThenReply(ctx, {}, true, [](resp::ReplyBuilder& rb) { rb.Ok(); });
}

void AclSave(CommandContext& ctx) {
  std::string path = ctx.engine->config().aclfile();
  if (path.empty()) return ctx.Error(OpStatus::kAclNoAclFile);
  if (!acl::SaveFile(path, ctx.engine->users())) return ctx.Error(OpStatus::kAclSaveFailed);
  ctx.rb->Ok();
}

void AclHelp(CommandContext& ctx) {
  static const char* kLines[] = {
      "ACL <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
      "CAT [<category>]",
      "    List all commands that belong to <category>, or all command categories",
      "    when no category is specified.",
      "DELUSER <username> [<username> ...]",
      "    Delete a list of users.",
      "DRYRUN <username> <command> [<arg> ...]",
      "    Returns whether the user can execute the given command without executing the command.",
      "GETUSER <username>",
      "    Get the user's details.",
      "GENPASS [<bits>]",
      "    Generate a secure 256-bit user password. The optional `bits` argument can",
      "    be used to specify a different size.",
      "LIST",
      "    Show users details in config file format.",
      "LOAD",
      "    Reload users from the ACL file.",
      "LOG [<count> | RESET]",
      "    Show the ACL log entries.",
      "SAVE",
      "    Save the current config to the ACL file.",
      "SETUSER <username> <attribute> [<attribute> ...]",
      "    Create or modify a user with the specified attributes.",
      "USERS",
      "    List all the registered usernames.",
      "WHOAMI",
      "    Return the current connection username.",
      "HELP",
      "    Prints this help."};
  ctx.HelpLines(kLines);
}

}  // namespace

void RegisterAclFamily(CommandRegistry* r) {
  constexpr uint32_t A = kCmdAdmin, NS = kCmdNoScript, L = kCmdLoading, S = kCmdStale, LO = kCmdLocalOnly;
  auto make = [](const char* name, int arity, uint32_t flags, Handler h, const char* acl, const char* summary) {
    CommandSpec s = MakeCommand(name, arity, flags, 0, 0, 0, h, acl, summary, "server");
    s.route = Route::kConnection;
    s.since = "6.0.0";
    return s;
  };
  const char* kAdmin = "@admin @slow @dangerous";
  CommandSpec c = make("acl", -2, 0, nullptr, "@slow", "A container for Access List Control commands.");
  auto sub = [&](const char* name, int arity, uint32_t flags, Handler h, const char* acl, const char* summary) {
    c.subcommands.push_back(make(name, arity, flags, h, acl, summary));
  };
  sub("acl|cat", -2, NS | L | S | LO, AclCat, "@slow", "Lists the ACL categories, or the commands inside a category.");
  sub("acl|deluser", -3, A | NS | L | S, AclDelUser, kAdmin, "Deletes ACL users, and terminates their connections.");
  sub("acl|dryrun", -4, A | NS | L | S | LO, AclDryRun, kAdmin,
      "Simulates the execution of a command by a user, without executing the command.");
  sub("acl|genpass", -2, NS | L | S | LO, AclGenPass, "@slow",
      "Generates a pseudorandom, secure password that can be used to identify ACL users.");
  sub("acl|getuser", 3, A | NS | L | S | LO, AclGetUser, kAdmin, "Lists the ACL rules of a user.");
  sub("acl|help", 2, L | S | LO, AclHelp, "@slow", "Returns helpful text about the different subcommands.");
  sub("acl|list", 2, A | NS | L | S | LO, AclList, kAdmin, "Dumps the effective rules in ACL file format.");
  sub("acl|load", 2, A | NS | L | S, AclLoad, kAdmin, "Reloads the rules from the configured ACL file.");
  sub("acl|log", -2, A | NS | L | S | LO, AclLog, kAdmin, "Lists recent security events generated due to ACL rules.");
  sub("acl|save", 2, A | NS | L | S | LO, AclSave, kAdmin, "Saves the effective ACL rules in the configured ACL file.");
  sub("acl|setuser", -3, A | NS | L | S | LO, AclSetUser, kAdmin, "Creates and modifies an ACL user and its rules.");
  sub("acl|users", 2, A | NS | L | S | LO, AclUsers, kAdmin, "Lists all ACL users.");
  sub("acl|whoami", 2, NS | L | S | LO, AclWhoami, "@slow", "Returns the authenticated username of the current connection.");
  r->Add(std::move(c));
}

}  // namespace larder
