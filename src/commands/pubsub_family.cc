// Pub/sub commands: SUBSCRIBE, PSUBSCRIBE, SSUBSCRIBE and their UNs,
// PUBLISH, SPUBLISH and PUBSUB's introspection. They run on the client's
// thread; the registry and delivery across threads are engine/pubsub.h.
#include "commands/families.h"
#include "common/glob.h"
#include "common/strings.h"
#include "engine/client.h"
#include "engine/command.h"
#include "engine/engine.h"
#include "engine/pubsub.h"

namespace larder {

namespace {

// Redis's names of the confirmations, by kind: {subscribe, unsubscribe}.
constexpr std::string_view kConfirm[3][2] = {
    {"subscribe", "unsubscribe"}, {"psubscribe", "punsubscribe"}, {"ssubscribe", "sunsubscribe"}};

// The count a confirmation carries: channels and patterns together, shard
// channels apart (Redis 7.0).
int64_t CountFor(const ClientState& c, PubSubKind kind) {
  if (kind == PubSubKind::kShard) return c.ssubscriptions;
  return static_cast<int64_t>(c.subscriptions) + c.psubscriptions;
}

void Confirm(CommandContext& ctx, PubSubKind kind, bool sub, const std::string_view* name) {
  ctx.rb->PushHeader(3);
  ctx.rb->Bulk(kConfirm[static_cast<int>(kind)][sub ? 0 : 1]);
  if (name) ctx.rb->Bulk(*name);
  else ctx.rb->Null();
  ctx.rb->Integer(CountFor(ctx.client_state(), kind));
}

void SubscribeTo(CommandContext& ctx, PubSubKind kind) {
  PubSub& ps = ctx.engine->pubsub();
  for (size_t i = 1; i < ctx.argc(); ++i) {
    std::string_view name = ctx.arg(i);
    ps.Subscribe(*ctx.client, kind, name);
    Confirm(ctx, kind, true, &name);
  }
}

void UnsubscribeFrom(CommandContext& ctx, PubSubKind kind) {
  PubSub& ps = ctx.engine->pubsub();
  ClientState& c = ctx.client_state();
  if (ctx.argc() > 1) {
    for (size_t i = 1; i < ctx.argc(); ++i) {
      std::string_view name = ctx.arg(i);
      ps.Unsubscribe(*ctx.client, kind, name);
      Confirm(ctx, kind, false, &name);
    }
    return;
  }
  // Every one of this kind (a confirmation each), or one with no name.
  std::vector<std::string> names;
  if (c.subs) {
    const auto& set = c.subs->names[static_cast<int>(kind)];
    names.assign(set.begin(), set.end());
  }
  if (names.empty()) return Confirm(ctx, kind, false, nullptr);
  for (const auto& n : names) {
    ps.Unsubscribe(*ctx.client, kind, n);
    std::string_view name = n;
    Confirm(ctx, kind, false, &name);
  }
}

void Subscribe(CommandContext& ctx) { SubscribeTo(ctx, PubSubKind::kChannel); }
void Psubscribe(CommandContext& ctx) { SubscribeTo(ctx, PubSubKind::kPattern); }
void Ssubscribe(CommandContext& ctx) { SubscribeTo(ctx, PubSubKind::kShard); }
void Unsubscribe(CommandContext& ctx) { UnsubscribeFrom(ctx, PubSubKind::kChannel); }
void Punsubscribe(CommandContext& ctx) { UnsubscribeFrom(ctx, PubSubKind::kPattern); }
void Sunsubscribe(CommandContext& ctx) { UnsubscribeFrom(ctx, PubSubKind::kShard); }

void Publish(CommandContext& ctx) {
  ctx.rb->Integer(static_cast<int64_t>(ctx.engine->pubsub().Publish(ctx.arg(1), ctx.arg(2))));
}

void Spublish(CommandContext& ctx) {
  ctx.rb->Integer(static_cast<int64_t>(ctx.engine->pubsub().PublishShard(ctx.arg(1), ctx.arg(2))));
}

void ChannelList(CommandContext& ctx, bool shard) {
  if (ctx.argc() > 3) return ctx.Error(OpStatus::kSubcommandSyntax, ctx.arg(1), "PUBSUB");
  std::vector<std::string> names = ctx.engine->pubsub().Channels(shard, ctx.argc() > 2 ? ctx.arg(2) : "");
  ctx.rb->ArrayHeader(names.size());
  for (const auto& n : names) ctx.rb->Bulk(n);
}

void NumSub(CommandContext& ctx, bool shard) {
  ctx.rb->ArrayHeader((ctx.argc() - 2) * 2);
  for (size_t i = 2; i < ctx.argc(); ++i) {
    ctx.rb->Bulk(ctx.arg(i));
    ctx.rb->Integer(static_cast<int64_t>(ctx.engine->pubsub().NumSub(shard, ctx.arg(i))));
  }
}

void PubsubChannels(CommandContext& ctx) { ChannelList(ctx, false); }
void PubsubShardChannels(CommandContext& ctx) { ChannelList(ctx, true); }
void PubsubNumSub(CommandContext& ctx) { NumSub(ctx, false); }
void PubsubShardNumSub(CommandContext& ctx) { NumSub(ctx, true); }
void PubsubNumPat(CommandContext& ctx) { ctx.rb->Integer(static_cast<int64_t>(ctx.engine->pubsub().NumPat())); }

void PubsubHelp(CommandContext& ctx) {
  static const char* const kLines[] = {
      "PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
      "CHANNELS [<pattern>]",
      "    Return the currently active channels matching a <pattern> (default: '*').",
      "NUMPAT",
      "    Return number of subscriptions to patterns.",
      "NUMSUB [<channel> ...]",
      "    Return the number of subscribers for the specified channels, excluding",
      "    pattern subscriptions(default: no channels).",
      "SHARDCHANNELS [<pattern>]",
      "    Return the currently active shard level channels matching a <pattern> (default: '*').",
      "SHARDNUMSUB [<shardchannel> ...]",
      "    Return the number of subscribers for the specified shard level channel(s)",
      "HELP",
      "    Prints this help."};
  ctx.HelpLines(kLines);
}

}  // namespace

void RegisterPubSubFamily(CommandRegistry* r) {
  constexpr uint32_t PS = kCmdPubSub | kCmdLoading | kCmdStale | kCmdLocalOnly;
  constexpr uint32_t SUB = PS | kCmdNoScript | kCmdSubscribedOk | kCmdPushReply;
  auto make = [](const char* name, int arity, uint32_t flags, Handler h, const char* summary, const char* since) {
    CommandSpec s = MakeCommand(name, arity, flags, 0, 0, 0, h, (flags & kCmdFast) ? "@pubsub @fast" : "@pubsub @slow",
                                summary, "pubsub");
    s.route = Route::kConnection;
    s.since = since;
    return s;
  };
  r->Add(make("subscribe", -2, SUB, Subscribe, "Listens for messages published to channels.", "2.0.0"));
  r->Add(make("unsubscribe", -1, SUB, Unsubscribe, "Stops listening to messages posted to channels.", "2.0.0"));
  r->Add(make("psubscribe", -2, SUB, Psubscribe, "Listens for messages published to channels that match one or more patterns.", "2.0.0"));
  r->Add(make("punsubscribe", -1, SUB, Punsubscribe, "Stops listening to messages published to channels that match one or more patterns.", "2.0.0"));
  r->Add(make("ssubscribe", -2, SUB, Ssubscribe, "Listens for messages published to shard channels.", "7.0.0"));
  r->Add(make("sunsubscribe", -1, SUB, Sunsubscribe, "Stops listening to messages posted to shard channels.", "7.0.0"));
  r->Add(make("publish", 3, PS | kCmdFast | kCmdMayReplicate, Publish, "Posts a message to a channel.", "2.0.0"));
  r->Add(make("spublish", 3, PS | kCmdFast | kCmdMayReplicate, Spublish, "Post a message to a shard channel", "7.0.0"));

  auto sub = [](const char* name, int arity, Handler h, const char* summary) {
    bool help = std::string_view(name) == "pubsub|help";  // (Redis's HELP is not a pub/sub command)
    CommandSpec s = MakeCommand(name, arity, (help ? 0 : kCmdPubSub) | kCmdLoading | kCmdStale | kCmdLocalOnly, 0, 0,
                                0, h, help ? "@slow" : "@pubsub @slow", summary, "pubsub");
    s.route = Route::kConnection;
    s.since = "2.8.0";
    return s;
  };
  CommandSpec pubsub = MakeCommand("pubsub", -2, 0, 0, 0, 0, nullptr, "@slow", "A container for Pub/Sub commands.", "pubsub");
  pubsub.route = Route::kConnection;
  pubsub.since = "2.8.0";
  pubsub.subcommands.push_back(sub("pubsub|channels", -2, PubsubChannels, "Returns the active channels."));
  pubsub.subcommands.push_back(sub("pubsub|numpat", 2, PubsubNumPat, "Returns a count of unique pattern subscriptions."));
  pubsub.subcommands.push_back(sub("pubsub|numsub", -2, PubsubNumSub, "Returns a count of subscribers to channels."));
  pubsub.subcommands.push_back(sub("pubsub|shardchannels", -2, PubsubShardChannels, "Returns the active shard channels."));
  pubsub.subcommands.push_back(sub("pubsub|shardnumsub", -2, PubsubShardNumSub, "Returns the count of subscribers of shard channels."));
  pubsub.subcommands.push_back(sub("pubsub|help", 2, PubsubHelp, "Returns helpful text about the different subcommands."));
  for (auto& s : pubsub.subcommands) s.since = s.name == "pubsub|shardchannels" || s.name == "pubsub|shardnumsub" ? "7.0.0" : "2.8.0";
  r->Add(std::move(pubsub));
}

}  // namespace larder
