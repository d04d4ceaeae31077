#include "engine/multi_shard.h"

#include "common/clock.h"
#include "common/numbers.h"

namespace larder {

void ExclusiveAll(CommandContext& ctx, std::function<void(resp::ReplyBuilder&)> fn) {
  ShardSet& set = ctx.server->shards();
  std::vector<int> all(static_cast<size_t>(set.size()));
  for (int i = 0; i < set.size(); ++i) all[static_cast<size_t>(i)] = i;
  auto out = std::make_shared<std::string>();
  Server* server = ctx.server;
  int self = ctx.shard->id();
  uint64_t client = ctx.conn->state().id;
  int resp = ctx.conn->state().resp;
  ctx.conn->BeginAsync();
  set.RunExclusive(
      all,
      [out, fn = std::move(fn), resp] {
        RefreshCommandTime();
        resp::ReplyBuilder rb(out.get(), resp);
        fn(rb);
      },
      [out, server, self, client] { Connection::FinishAsyncFor(server, self, client, std::move(*out)); });
}

void IntegerSumFanOut(CommandContext& ctx) {
  ShardSet& set = ctx.server->shards();
  struct State {
    std::vector<std::vector<std::string>> argv;  // per shard: command name + its keys
    std::vector<int64_t> sums;
    const CommandSpec* spec;
    Server* server;
    int db;
  };
  auto st = std::make_shared<State>();
  st->argv.resize(static_cast<size_t>(set.size()));
  st->sums.assign(static_cast<size_t>(set.size()), 0);
  st->spec = ctx.spec;
  st->server = ctx.server;
  st->db = ctx.db_index;
  for (size_t i = 1; i < ctx.argc(); ++i) {
    auto& v = st->argv[static_cast<size_t>(set.ShardOf(ctx.arg(i)))];
    if (v.empty()) v.emplace_back(ctx.arg(0));
    v.emplace_back(ctx.arg(i));
  }
  std::vector<int> ids;
  for (size_t s = 0; s < st->argv.size(); ++s)
    if (!st->argv[s].empty()) ids.push_back(static_cast<int>(s));
  Server* server = ctx.server;
  int self = ctx.shard->id();
  uint64_t client = ctx.conn->state().id;
  ctx.conn->BeginAsync();
  set.FanOut(
      ids,
      [st](Shard& shard) {
        auto& words = st->argv[static_cast<size_t>(shard.id())];
        std::vector<std::string_view> argv(words.begin(), words.end());
        std::string out;
        resp::ReplyBuilder rb(&out, 2);
        CommandContext sub(argv, &rb, &shard, st->server, st->spec, st->db);
        st->spec->handler(sub);
        int64_t n = 0;
        if (out.size() > 3 && out[0] == ':') ParseInt64(std::string_view(out).substr(1, out.size() - 3), &n);
        st->sums[static_cast<size_t>(shard.id())] = n;
      },
      [st, server, self, client] {
        int64_t total = 0;
        for (int64_t v : st->sums) total += v;
        Connection::FinishAsyncFor(server, self, client, ":" + std::to_string(total) + "\r\n");
      });
}

}  // namespace larder
