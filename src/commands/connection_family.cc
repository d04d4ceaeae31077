// Connection commands: they run on the client's own thread and touch its
// state (PING, HELLO, AUTH, SELECT, CLIENT ...).
#include <algorithm>

#include "engine/multi_shard.h"
#include "commands/families.h"
#include "engine/acl.h"
#include "engine/blocking.h"
#include "engine/dispatcher.h"
#include "engine/engine.h"
#include "engine/pubsub.h"
#include "engine/client.h"
#include "engine/command.h"
#include "common/strings.h"
#include "common/version.h"
#include "common/clock.h"
#include "common/numbers.h"
#include "engine/client_state.h"
#include "engine/tracking.h"
#include "engine/transaction.h"

namespace larder {

namespace {

ClientState& Client(CommandContext& ctx) { return ctx.client_state(); }

void Ping(CommandContext& ctx) {
  if (ctx.argc() > 2) return ctx.ArityError();
  if (ctx.client && ctx.client_state().resp == 2 && ctx.client_state().subscribed()) {
    // Subscribed mode (RESP2): the reply looks like a message.
    ctx.rb->ArrayHeader(2);
    ctx.rb->Bulk("pong");
    return ctx.rb->Bulk(ctx.argc() == 2 ? ctx.arg(1) : std::string_view());
  }
  if (ctx.argc() == 2) return ctx.rb->Bulk(ctx.arg(1));
  ctx.rb->SimpleString("PONG");
}

void Echo(CommandContext& ctx) { ctx.rb->Bulk(ctx.arg(1)); }

// AUTH and HELLO ... AUTH: the user must exist, be on, and know one of its
// passwords (or be nopass). On success the connection is that user's; a
// failure is logged (ACL LOG, reason "auth") and answered WRONGPASS.
bool Authenticate(CommandContext& ctx, std::string_view user, std::string_view pass) {
  acl::Users& users = ctx.engine->users();
  std::shared_ptr<const acl::User> u = users.Find(user);
  if (!u || !u->enabled || !u->PasswordMatches(pass)) {
    LogAclDenial(*ctx.client, acl::Denial::kAuth, std::string(ctx.arg(0)), std::string(user));
    ctx.Error(OpStatus::kWrongPass);
    return false;
  }
  ClientState& c = Client(ctx);
  c.authenticated = true;
  c.user = std::move(u);
  c.acl_epoch = 0;  // the next command takes the user's current rules
  c.acl_fast = 0;
  return true;
}

void Auth(CommandContext& ctx) {
  if (ctx.argc() > 3) return ctx.SyntaxError();
  if (ctx.argc() == 2) {
    std::shared_ptr<const acl::User> def = ctx.engine->users().Default();
    if (def->nopass) return ctx.Error(OpStatus::kAuthWithoutPassword);
  }
  std::string_view user = ctx.argc() == 3 ? ctx.arg(1) : "default";
  std::string_view pass = ctx.argc() == 3 ? ctx.arg(2) : ctx.arg(1);
  if (!Authenticate(ctx, user, pass)) return;
  ctx.rb->Ok();
}

void Hello(CommandContext& ctx) {
  ClientState& c = Client(ctx);
  int ver = c.resp;
  size_t j = 1;
  if (ctx.argc() >= 2) {
    int64_t v;
    if (!ParseInt64(ctx.arg(1), &v)) return ctx.Error(OpStatus::kProtoVersionNotInteger);
    if (v < 2 || v > 3) return ctx.Error(OpStatus::kNoProto);
    ver = static_cast<int>(v);
    j = 2;
  }
  std::string_view setname;
  bool has_setname = false;
  for (; j < ctx.argc(); ++j) {
    size_t more = ctx.argc() - j - 1;
    if (EqualsIgnoreCase(ctx.arg(j), "auth") && more >= 2) {
      if (!Authenticate(ctx, ctx.arg(j + 1), ctx.arg(j + 2))) return;
      j += 2;
    } else if (EqualsIgnoreCase(ctx.arg(j), "setname") && more >= 1) {
      setname = ctx.arg(j + 1);
      has_setname = true;
      ++j;
    } else {
      return ctx.Error(OpStatus::kHelloSyntax, ctx.arg(j));
    }
  }
  if (!c.authenticated)
    return ctx.Error(OpStatus::kHelloNoAuth);
  if (has_setname) {
    for (char ch : setname)
      if (ch < '!' || ch > '~')
        return ctx.Error(OpStatus::kBadClientName);
    c.name = std::string(setname);
  }
  c.resp = ver;
  resp::ReplyBuilder rb(ctx.rb->buffer(), ver);
  rb.MapHeader(7);
  rb.Bulk("server");
  rb.Bulk("redis");
  rb.Bulk("version");
  rb.Bulk(kRedisVersion);  // common/version.h
  rb.Bulk("proto");
  rb.Integer(ver);
  rb.Bulk("id");
  rb.Integer(static_cast<int64_t>(c.id));
  rb.Bulk("mode");
  rb.Bulk("standalone");
  rb.Bulk("role");
  rb.Bulk("master");
  rb.Bulk("modules");
  rb.EmptyArray();
}

void Select(CommandContext& ctx) {
  int64_t v;
  if (!ParseInt64(ctx.arg(1), &v)) return ctx.Error(OpStatus::kNotAnInteger);
  if (v < 0 || v >= ctx.engine->config().databases.load()) return ctx.Error(OpStatus::kDbIndexOutOfRange);
  Client(ctx).db = static_cast<int>(v);
  ctx.rb->Ok();
}

void Quit(CommandContext& ctx) {
  ctx.rb->Ok();
  ctx.client->CloseAfterReply();
}

void Reset(CommandContext& ctx) {
  ClientState& c = Client(ctx);
  if (c.monitor) {
    ctx.engine->RemoveMonitor(ctx.shard->id(), c.id);
    c.monitor = false;
  }
  DiscardTransaction(ctx.engine, c);
  DisableTracking(*ctx.engine, *ctx.client);
  if (c.subs) ctx.engine->pubsub().UnsubscribeAll(*ctx.client);
  c.db = 0;
  c.resp = 2;
  c.name.clear();
  c.no_evict = false;
  c.authenticated = ctx.engine->users().default_open();
  c.user = ctx.engine->users().Default();
  c.acl_epoch = 0;
  c.acl_fast = 0;
  ctx.rb->SimpleString("RESET");
}

// ---- CLIENT ----

void ClientId(CommandContext& ctx) { ctx.rb->Integer(static_cast<int64_t>(Client(ctx).id)); }

bool ValidName(std::string_view name) {
  for (char ch : name)
    if (ch < '!' || ch > '~') return false;
  return true;
}

void ClientSetName(CommandContext& ctx) {
  if (!ValidName(ctx.arg(2)))
    return ctx.Error(OpStatus::kBadClientName);
  Client(ctx).name = std::string(ctx.arg(2));
  ctx.rb->Ok();
}

void ClientGetName(CommandContext& ctx) {
  if (Client(ctx).name.empty()) return ctx.rb->Null();
  ctx.rb->Bulk(Client(ctx).name);
}

void ClientSetInfo(CommandContext& ctx) {
  std::string_view attr = ctx.arg(2);
  if (!EqualsIgnoreCase(attr, "lib-name") && !EqualsIgnoreCase(attr, "lib-ver"))
    return ctx.Error(OpStatus::kUnrecognizedOption, attr);
  ctx.rb->Ok();
}

void ClientInfo(CommandContext& ctx) { ctx.rb->Verbatim(ctx.client->ClientListLine() + "\n"); }

// CLIENT LIST / KILL TYPE: normal, pubsub (a client with subscriptions), or
// a replica or master (none yet); kAnyType without the option.
enum ClientType { kAnyType = -1, kNormalType = 0, kReplicaType = 1, kPubsubType = 2 };
bool ParseClientType(std::string_view t, int* type) {
  if (EqualsIgnoreCase(t, "normal")) *type = kNormalType;
  else if (EqualsIgnoreCase(t, "pubsub")) *type = kPubsubType;
  else if (EqualsIgnoreCase(t, "master") || EqualsIgnoreCase(t, "replica") || EqualsIgnoreCase(t, "slave"))
    *type = kReplicaType;
  else return false;
  return true;
}
bool OfType(const ClientState& c, int type) {
  return type == kAnyType || type == (c.subscribed() ? kPubsubType : kNormalType);
}

void ClientList(CommandContext& ctx) {
  std::vector<uint64_t> ids;
  int type = kAnyType;
  for (size_t j = 2; j < ctx.argc(); ++j) {
    if (EqualsIgnoreCase(ctx.arg(j), "type") && j + 1 < ctx.argc()) {
      std::string_view t = ctx.arg(++j);
      if (!ParseClientType(t, &type)) return ctx.Error(OpStatus::kUnknownClientType, t);
    } else if (EqualsIgnoreCase(ctx.arg(j), "id") && j + 1 < ctx.argc()) {
      for (++j; j < ctx.argc(); ++j) {
        uint64_t id;
        if (!ParseUint64(ctx.arg(j), &id) || id == 0) return ctx.Error(OpStatus::kInvalidClientId);
        ids.push_back(id);
      }
    } else {
      return ctx.SyntaxError();
    }
  }
  Engine* server = ctx.engine;
  GatherAll<std::vector<std::pair<uint64_t, std::string>>>(
      ctx,
      [server, ids, type](Shard& s) {
        std::vector<std::pair<uint64_t, std::string>> lines;
        for (auto& [id, conn] : server->local(s.id()).clients) {
          if (conn->closed() || !OfType(conn->state(), type)) continue;
          if (!ids.empty() && std::find(ids.begin(), ids.end(), id) == ids.end()) continue;
          lines.emplace_back(id, conn->ClientListLine());
        }
        return lines;
      },
      [](auto& parts, resp::ReplyBuilder& rb) {
        std::vector<std::pair<uint64_t, std::string>> all;
        for (auto& p : parts) all.insert(all.end(), p.begin(), p.end());
        std::sort(all.begin(), all.end());
        std::string text;
        for (auto& [id, line] : all) text += line + "\n";
        rb.Verbatim(text);
      });
}

void ClientKill(CommandContext& ctx) {
  struct Filter {
    std::string addr, laddr, user;
    uint64_t id = 0;
    bool skipme = true;
    bool has_any = false;
    int type = kAnyType;
  };
  Filter f;
  bool old_style = ctx.argc() == 3;
  if (old_style) {
    f.addr = ctx.arg(2);
    f.skipme = false;
  } else {
    // As Redis: option by option, each error as it is met.
    for (size_t j = 2; j < ctx.argc(); j += 2) {
      std::string_view k = ctx.arg(j);
      if (j + 1 >= ctx.argc()) return ctx.SyntaxError();
      std::string_view v = ctx.arg(j + 1);
      if (EqualsIgnoreCase(k, "id")) {
        if (!ParseUint64(v, &f.id) || f.id == 0 || f.id > static_cast<uint64_t>(INT64_MAX))
          return ctx.Error(OpStatus::kClientIdNotPositive);
      } else if (EqualsIgnoreCase(k, "addr")) {
        f.addr = v;
      } else if (EqualsIgnoreCase(k, "laddr")) {
        f.laddr = v;
      } else if (EqualsIgnoreCase(k, "user")) {
        if (!ctx.engine->users().Find(v)) return ctx.Error(OpStatus::kNoSuchUser, v);
        f.user = v;
      } else if (EqualsIgnoreCase(k, "type")) {
        if (!ParseClientType(v, &f.type)) return ctx.Error(OpStatus::kUnknownClientType, v);
      } else if (EqualsIgnoreCase(k, "skipme")) {
        if (EqualsIgnoreCase(v, "yes")) f.skipme = true;
        else if (EqualsIgnoreCase(v, "no")) f.skipme = false;
        else return ctx.SyntaxError();
      } else {
        return ctx.SyntaxError();
      }
      f.has_any = true;
    }
  }
  Engine* server = ctx.engine;
  uint64_t me = Client(ctx).id;
  GatherAll<int64_t>(
      ctx,
      [server, f, me](Shard& s) {
        int64_t killed = 0;
        for (auto& [id, conn] : server->local(s.id()).clients) {
          if (conn->closed()) continue;
          const ClientState& c = conn->state();
          if (!OfType(c, f.type)) continue;
          if (f.id && c.id != f.id) continue;
          if (!f.addr.empty() && c.addr != f.addr) continue;
          if (!f.laddr.empty() && c.laddr != f.laddr) continue;
          if (!f.user.empty() && (c.user ? std::string_view(c.user->name) : "default") != f.user) continue;
          if (f.skipme && c.id == me) continue;
          // The caller itself is closed after its reply is written.
          if (c.id == me) conn->CloseAfterReply();
          else conn->Close();
          ++killed;
        }
        return killed;
      },
      [old_style](std::vector<int64_t>& v, resp::ReplyBuilder& rb) {
        int64_t n = 0;
        for (auto x : v) n += x;
        if (!old_style) return rb.Integer(n);
        if (n == 0) return rb.Error(FormatError(OpStatus::kNoSuchClient));
        rb.Ok();
      });
}

void ClientNoEvict(CommandContext& ctx) {
  if (EqualsIgnoreCase(ctx.arg(2), "on")) Client(ctx).no_evict = true;
  else if (EqualsIgnoreCase(ctx.arg(2), "off")) Client(ctx).no_evict = false;
  else return ctx.SyntaxError();
  ctx.rb->Ok();
}

void ClientPause(CommandContext& ctx) {
  int64_t ms;
  if (!ParseInt64(ctx.arg(2), &ms)) return ctx.Error(OpStatus::kTimeoutNotInteger);
  if (ms < 0) return ctx.Error(OpStatus::kTimeoutNegative);
  bool all = true;
  if (ctx.argc() == 4) {
    if (EqualsIgnoreCase(ctx.arg(3), "write")) all = false;
    else if (!EqualsIgnoreCase(ctx.arg(3), "all")) return ctx.SyntaxError();
  } else if (ctx.argc() > 4) {
    return ctx.SyntaxError();
  }
  ctx.engine->Pause(UnixTimeMs() + ms, all);
  ctx.rb->Ok();
}

void ClientUnpause(CommandContext& ctx) {
  ctx.engine->Unpause();
  ctx.rb->Ok();
}

void ClientReply(CommandContext& ctx) {
  // OFF and SKIP answer nothing; the dispatcher drops the replies that follow.
  ClientState& c = ctx.client_state();
  if (EqualsIgnoreCase(ctx.arg(2), "on")) {
    c.reply_mode = ClientState::ReplyMode::kOn;
    return ctx.rb->Ok();
  }
  if (EqualsIgnoreCase(ctx.arg(2), "off")) {
    c.reply_mode = ClientState::ReplyMode::kOff;
    return;
  }
  if (EqualsIgnoreCase(ctx.arg(2), "skip")) {
    if (c.reply_mode != ClientState::ReplyMode::kOff) c.reply_mode = ClientState::ReplyMode::kSkipNext;
    return;
  }
  ctx.SyntaxError();
}

// CLIENT UNBLOCK <id> [TIMEOUT|ERROR]: ends a blocking command of another
// client as if it timed out (a nil reply), or with an UNBLOCKED error.
// Clients held by CLIENT PAUSE are not unblocked (as in Redis).
void ClientUnblock(CommandContext& ctx) {
  if (ctx.argc() > 4) return ctx.Error(OpStatus::kSubcommandSyntax, ctx.arg(1), "CLIENT");
  bool error = false;
  if (ctx.argc() == 4) {
    if (EqualsIgnoreCase(ctx.arg(3), "error")) error = true;
    else if (!EqualsIgnoreCase(ctx.arg(3), "timeout")) return ctx.Error(OpStatus::kUnblockReason);
  }
  int64_t id;
  if (!ParseInt64(ctx.arg(2), &id)) return ctx.Error(OpStatus::kNotAnInteger);
  Engine* server = ctx.engine;
  GatherAll<int64_t>(
      ctx,
      [server, id, error](Shard& s) -> int64_t {
        for (const auto& w : server->local(s.id()).blocked) {
          if (static_cast<int64_t>(w->client_id) != id || w->done.load()) continue;
          if (w->done.exchange(true)) continue;  // served or timed out meanwhile
          AbandonWaiter(server, w);
          if (error) {
            std::string line = FormatError(OpStatus::kUnblocked);
            server->RecordError(&s, line);
            server->DeliverError(w->target, line, w->resp);
          } else {
            server->Deliver(w->target, w->resp >= 3 ? "_\r\n" : "*-1\r\n");
          }
          return 1;
        }
        return 0;
      },
      [](std::vector<int64_t>& v, resp::ReplyBuilder& rb) {
        int64_t n = 0;
        for (auto x : v) n += x;
        rb.Integer(n > 0 ? 1 : 0);
      });
}

// CLIENT TRACKING ON|OFF [REDIRECT id] [PREFIX p ...] [BCAST] [OPTIN]
// [OPTOUT] [NOLOOP]: options parsed first, then checked in Redis's order.
void ClientTracking(CommandContext& ctx) {
  uint64_t redirect = 0;
  bool bcast = false, optin = false, optout = false, noloop = false;
  std::vector<std::string> prefixes;
  for (size_t j = 3; j < ctx.argc(); ++j) {
    bool more = j + 1 < ctx.argc();
    std::string_view o = ctx.arg(j);
    if (EqualsIgnoreCase(o, "redirect") && more) {
      ++j;
      if (redirect != 0) return ctx.Error(OpStatus::kTrackingOneRedirect);
      int64_t id;
      if (!ParseInt64(ctx.arg(j), &id)) return ctx.Error(OpStatus::kNotAnInteger);
      if (id <= 0 || ctx.engine->tracking().ShardOfClient(static_cast<uint64_t>(id)) < 0)
        return ctx.Error(OpStatus::kTrackingRedirectMissing);
      redirect = static_cast<uint64_t>(id);
    } else if (EqualsIgnoreCase(o, "bcast")) {
      bcast = true;
    } else if (EqualsIgnoreCase(o, "optin")) {
      optin = true;
    } else if (EqualsIgnoreCase(o, "optout")) {
      optout = true;
    } else if (EqualsIgnoreCase(o, "noloop")) {
      noloop = true;
    } else if (EqualsIgnoreCase(o, "prefix") && more) {
      prefixes.emplace_back(ctx.arg(++j));
    } else {
      return ctx.SyntaxError();
    }
  }
  ClientState& c = Client(ctx);
  if (EqualsIgnoreCase(ctx.arg(2), "on")) {
    if (!bcast && !prefixes.empty()) return ctx.Error(OpStatus::kTrackingPrefixNeedsBcast);
    if (c.tracking && c.tracking->bcast != bcast) return ctx.Error(OpStatus::kTrackingBcastSwitch);
    if (bcast && (optin || optout)) return ctx.Error(OpStatus::kTrackingBcastOptInOut);
    if (optin && optout) return ctx.Error(OpStatus::kTrackingOptInAndOut);
    // No two prefixes of one client may overlap (one a prefix of the other).
    auto overlap = [](std::string_view a, std::string_view b) {
      size_t n = std::min(a.size(), b.size());
      return a.substr(0, n) == b.substr(0, n);
    };
    for (size_t i = 0; i < prefixes.size(); ++i) {
      if (c.tracking)
        for (const auto& have : c.tracking->prefixes)
          if (overlap(have, prefixes[i]))
            return ctx.Error(OpStatus::kTrackingPrefixOverlapsExisting, prefixes[i], have);
      for (size_t j = i + 1; j < prefixes.size(); ++j)
        if (overlap(prefixes[i], prefixes[j]))
          return ctx.Error(OpStatus::kTrackingPrefixOverlapsGiven, prefixes[i], prefixes[j]);
    }
    EnableTracking(*ctx.engine, *ctx.client, redirect, bcast, optin, optout, noloop, prefixes);
  } else if (EqualsIgnoreCase(ctx.arg(2), "off")) {
    DisableTracking(*ctx.engine, *ctx.client);
  } else {
    return ctx.SyntaxError();
  }
  ctx.rb->Ok();
}

void ClientCaching(CommandContext& ctx) {
  ClientState& c = Client(ctx);
  if (!c.tracking) return ctx.Error(OpStatus::kCachingNotTracking);
  std::string_view o = ctx.arg(2);
  if (EqualsIgnoreCase(o, "yes")) {
    if (!c.tracking->optin) return ctx.Error(OpStatus::kCachingYesNotOptIn);
  } else if (EqualsIgnoreCase(o, "no")) {
    if (!c.tracking->optout) return ctx.Error(OpStatus::kCachingNoNotOptOut);
  } else {
    return ctx.SyntaxError();
  }
  c.tracking->caching = true;
  c.tracking->caching_used = false;
  ctx.rb->Ok();
}

void ClientGetRedir(CommandContext& ctx) {
  const ClientState& c = Client(ctx);
  ctx.rb->Integer(c.tracking ? static_cast<int64_t>(c.tracking->redirect) : -1);
}

void ClientTrackingInfo(CommandContext& ctx) {
  const ClientState& c = Client(ctx);
  const TrackingState* t = c.tracking.get();
  std::vector<std::string_view> flags{t ? "on" : "off"};
  if (t) {
    if (t->bcast) flags.push_back("bcast");
    if (t->optin) flags.push_back("optin");
    if (t->optin && t->caching) flags.push_back("caching-yes");
    if (t->optout) flags.push_back("optout");
    if (t->optout && t->caching) flags.push_back("caching-no");
    if (t->noloop) flags.push_back("noloop");
    if (t->broken_redirect) flags.push_back("broken_redirect");
  }
  resp::ReplyBuilder& rb = *ctx.rb;
  rb.MapHeader(3);
  rb.Bulk("flags");
  rb.SetHeader(flags.size());
  for (auto f : flags) rb.Bulk(f);
  rb.Bulk("redirect");
  rb.Integer(t ? static_cast<int64_t>(t->redirect) : -1);
  rb.Bulk("prefixes");
  rb.ArrayHeader(t ? t->prefixes.size() : 0);
  if (t)
    for (const auto& p : t->prefixes) rb.Bulk(p);
}

void ClientHelp(CommandContext& ctx) {
  // Redis 7.0.15's text, line for line.
  static const char* kLines[] = {
      "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
      "CACHING (YES|NO)", "    Enable/disable tracking of the keys for next command in OPTIN/OPTOUT modes.",
      "GETREDIR", "    Return the client ID we are redirecting to when tracking is enabled.",
      "GETNAME", "    Return the name of the current connection.",
      "ID", "    Return the ID of the current connection.",
      "INFO", "    Return information about the current client connection.",
      "KILL <ip:port>", "    Kill connection made from <ip:port>.",
      "KILL <option> <value> [<option> <value> [...]]",
      "    Kill connections. Options are:",
      "    * ADDR (<ip:port>|<unixsocket>:0)", "      Kill connections made from the specified address",
      "    * LADDR (<ip:port>|<unixsocket>:0)", "      Kill connections made to specified local address",
      "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)", "      Kill connections by type.",
      "    * USER <username>", "      Kill connections authenticated by <username>.",
      "    * SKIPME (YES|NO)", "      Skip killing current connection (default: yes).",
      "LIST [options ...]", "    Return information about client connections. Options:",
      "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)", "      Return clients of specified type.",
      "UNPAUSE", "    Stop the current client pause, resuming traffic.",
      "PAUSE <timeout> [WRITE|ALL]", "    Suspend all, or just write, clients for <timeout> milliseconds.",
      "REPLY (ON|OFF|SKIP)", "    Control the replies sent to the current connection.",
      "SETNAME <name>", "    Assign the name <name> to the current connection.",
      "UNBLOCK <clientid> [TIMEOUT|ERROR]", "    Unblock the specified blocked client.",
      "TRACKING (ON|OFF) [REDIRECT <id>] [BCAST] [PREFIX <prefix> [...]]",
      "         [OPTIN] [OPTOUT] [NOLOOP]", "    Control server assisted client side caching.",
      "TRACKINGINFO", "    Report tracking status for the current connection.",
      "NO-EVICT (ON|OFF)", "    Protect current client connection from eviction.",
      "HELP", "    Prints this help."};
  ctx.HelpLines(kLines);
}

}  // namespace

void RegisterConnectionFamily(CommandRegistry* r) {
  constexpr uint32_t LO = kCmdLocalOnly;
  constexpr uint32_t F = kCmdFast, NA = kCmdNoAuth, L = kCmdLoading, S = kCmdStale, NS = kCmdNoScript;
  auto make = [](const char* name, int arity, uint32_t flags, Handler h, const char* acl, const char* summary) {
    CommandSpec s = MakeCommand(name, arity, flags, 0, 0, 0, h, acl, summary, "connection");
    s.route = Route::kConnection;
    return s;
  };
  r->Add(make("ping", -1, F | LO | kCmdSubscribedOk, Ping, "@fast @connection", "Returns the server's liveliness response."));
  r->Add(make("echo", 2, F | LO | L | S, Echo, "@fast @connection", "Returns the given string."));
  r->Add(make("auth", -2, LO | NS | L | S | kCmdSkipMonitor | kCmdSkipSlowlog | F | NA | kCmdAllowBusy, Auth,
              "@fast @connection", "Authenticates the connection."));
  r->Add(make("hello", -1, LO | NS | L | S | kCmdSkipMonitor | kCmdSkipSlowlog | F | NA | kCmdAllowBusy, Hello,
              "@fast @connection", "Handshakes with the Redis server."));
  r->Add(make("select", 2, L | S | F | LO, Select, "@fast @connection", "Changes the selected database."));
  r->Add(make("quit", -1, kCmdSubscribedOk | kCmdAllowBusy | NS | L | S | F | NA | LO | kCmdNotQueued, Quit, "@fast @connection", "Closes the connection."));
  r->Add(make("reset", 1, kCmdSubscribedOk | NS | L | S | F | NA | kCmdAllowBusy | LO | kCmdNotQueued, Reset, "@fast @connection", "Resets the connection."));

  CommandSpec client = make("client", -2, 0, nullptr, "@slow", "A container for client connection commands.");
  auto sub = [&](const char* name, int arity, uint32_t flags, Handler h, const char* acl, const char* summary) {
    client.subcommands.push_back(make(name, arity, flags, h, acl, summary));
  };
  const uint32_t base = NS | L | S;
  sub("client|id", 2, base | LO, ClientId, "@slow @connection", "Returns the unique client ID of the connection.");
  sub("client|setname", 3, base | LO, ClientSetName, "@slow @connection", "Sets the connection name.");
  sub("client|getname", 2, base | LO, ClientGetName, "@slow @connection", "Returns the name of the connection.");
  sub("client|setinfo", 4, base | LO, ClientSetInfo, "@slow @connection", "Sets information specific to the client.");
  sub("client|info", 2, base | LO, ClientInfo, "@slow @connection", "Returns information about the connection.");
  sub("client|list", -2, base | kCmdAdmin | kCmdGathers, ClientList, "@admin @slow @dangerous @connection", "Lists open connections.");
  sub("client|kill", -3, kCmdAdmin | base | kCmdGathers, ClientKill, "@admin @slow @dangerous @connection", "Terminates open connections.");
  sub("client|no-evict", 3, kCmdAdmin | base | LO, ClientNoEvict, "@admin @slow @dangerous @connection", "Sets the client eviction mode of the connection.");
  sub("client|pause", -3, kCmdAdmin | base, ClientPause, "@admin @slow @dangerous @connection", "Suspends commands processing.");
  sub("client|unpause", 2, kCmdAdmin | base, ClientUnpause, "@admin @slow @dangerous @connection", "Resumes processing commands from paused clients.");
  sub("client|unblock", -3, kCmdAdmin | base | kCmdGathers, ClientUnblock, "@admin @slow @dangerous @connection",
      "Unblock a client blocked in a blocking command from a different connection");
  sub("client|reply", 3, base | LO, ClientReply, "@slow @connection", "Instructs the server whether to reply to commands.");
  sub("client|tracking", -3, base | LO, ClientTracking, "@slow @connection",
      "Controls server-assisted client-side caching for the connection.");
  sub("client|caching", 3, base | LO, ClientCaching, "@slow @connection",
      "Instructs the server whether to track the keys in the next request.");
  sub("client|getredir", 2, base | LO, ClientGetRedir, "@slow @connection",
      "Returns the client ID to which the connection's tracking notifications are redirected.");
  sub("client|trackinginfo", 2, base | LO, ClientTrackingInfo, "@slow @connection",
      "Returns information about server-assisted client-side caching for the connection.");
  sub("client|help", 2, L | S | LO, ClientHelp, "@slow @connection", "Returns helpful text about the different subcommands.");
  r->Add(std::move(client));
}

}  // namespace larder
