#include "engine/multi_shard.h"

#include "common/clock.h"
#include "engine/executor.h"

namespace larder {

void GatherFrom(CommandContext& ctx, const std::vector<int>& shards, std::function<void(Shard&)> per_shard,
                std::function<void(resp::ReplyBuilder&)> reply) {
  Engine* engine = ctx.engine;
  int resp = ctx.rb->protocol();
  ReplyTarget target = ctx.Defer();
  ctx.engine->shards().FanOut(shards, std::move(per_shard), [reply = std::move(reply), engine, target, resp] {
    std::string out;
    resp::ReplyBuilder rb(&out, resp);
    reply(rb);
    engine->Deliver(target, std::move(out));
  });
}

void ExclusiveAll(CommandContext& ctx, std::function<void(resp::ReplyBuilder&)> fn) {
  ShardSet& set = ctx.engine->shards();
  std::vector<int> all(static_cast<size_t>(set.size()));
  for (int i = 0; i < set.size(); ++i) all[static_cast<size_t>(i)] = i;
  Engine* engine = ctx.engine;
  int resp = ctx.rb->protocol();
  ReplyTarget target = ctx.Defer();
  set.RunExclusive(
      all,
      [fn = std::move(fn), resp, engine, target] {
        RefreshCommandTime();
        std::string out;
        resp::ReplyBuilder rb(&out, resp);
        fn(rb);
        engine->Deliver(target, std::move(out));
      },
      [] {});
}

void IntegerSumFanOut(CommandContext& ctx) {
  ShardSet& set = ctx.engine->shards();
  struct State {
    std::vector<std::vector<std::string>> argv;  // per shard: command name + its keys
    std::vector<int64_t> sums;
    const CommandSpec* spec;
    Engine* engine;
    int db;
  };
  auto st = std::make_shared<State>();
  st->argv.resize(static_cast<size_t>(set.size()));
  st->sums.assign(static_cast<size_t>(set.size()), 0);
  st->spec = ctx.spec;
  st->engine = ctx.engine;
  st->db = ctx.db_index;
  for (size_t i = 1; i < ctx.argc(); ++i) {
    auto& v = st->argv[static_cast<size_t>(set.ShardOf(ctx.arg(i)))];
    if (v.empty()) v.emplace_back(ctx.arg(0));
    v.emplace_back(ctx.arg(i));
  }
  std::vector<int> ids;
  for (size_t s = 0; s < st->argv.size(); ++s)
    if (!st->argv[s].empty()) ids.push_back(static_cast<int>(s));
  GatherFrom(
      ctx, ids,
      [st](Shard& shard) {
        auto& words = st->argv[static_cast<size_t>(shard.id())];
        std::vector<std::string_view> argv(words.begin(), words.end());
        Call part;
        part.spec = st->spec;
        part.args = argv;
        part.db = st->db;
        part.mode = Call::Mode::kInternal;
        std::string out;
        Effects fx;
        Execute(*st->engine, shard, part, &out, &fx);
        st->sums[static_cast<size_t>(shard.id())] = fx.integer;
      },
      [st](resp::ReplyBuilder& rb) {
        int64_t total = 0;
        for (int64_t v : st->sums) total += v;
        rb.Integer(total);
      });
}

}  // namespace larder
