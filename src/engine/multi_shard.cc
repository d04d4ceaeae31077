#include "engine/multi_shard.h"

#include "common/clock.h"
#include "engine/executor.h"
#include "engine/propagate.h"

namespace larder {

DeferredReply::DeferredReply(CommandContext& ctx)
    : engine_(ctx.engine),
      spec_(ctx.spec),
      resp_(ctx.rb->protocol()),
      args_(ctx.args.begin(), ctx.args.end()) {
  if (ctx.client) {
    origin_.addr = ctx.client_state().addr;
    origin_.name = ctx.client_state().name;
  }
  target_ = ctx.Defer();
  ctx.timed_later = true;
}

void DeferredReply::Finish(std::string reply) {
  int64_t us = TicksToUs(work_ticks_.load(std::memory_order_relaxed));
  Shard* here = CurrentShard();
  if (here) {
    engine_->RecordDeferredWork(here, spec_, us);
    if (!(spec_->flags & kCmdSkipSlowlog)) {
      std::vector<std::string_view> argv(args_.begin(), args_.end());
      engine_->MaybeSlowlog(here, argv, us, &origin_);
    }
  }
  engine_->Deliver(target_, std::move(reply));
}

void GatherFrom(CommandContext& ctx, const std::vector<int>& shards, std::function<void(Shard&)> per_shard,
                std::function<void(resp::ReplyBuilder&)> reply) {
  auto done = std::make_shared<DeferredReply>(ctx);
  ctx.engine->shards().FanOut(
      shards, [done, per_shard = std::move(per_shard)](Shard& s) { done->Timed([&] { per_shard(s); }); },
      [done, reply = std::move(reply)] {
        std::string out;
        resp::ReplyBuilder rb(&out, done->resp());
        reply(rb);
        done->Finish(std::move(out));
      });
}

void ExclusiveAll(CommandContext& ctx, std::function<void(resp::ReplyBuilder&)> fn) {
  ShardSet& set = ctx.engine->shards();
  std::vector<int> all(static_cast<size_t>(set.size()));
  for (int i = 0; i < set.size(); ++i) all[static_cast<size_t>(i)] = i;
  auto done = std::make_shared<DeferredReply>(ctx);
  auto out = std::make_shared<std::string>();
  // A write (FLUSHALL, FLUSHDB, SWAPDB) is logged where it runs, with every
  // shard parked: after all writes before it, before all after it.
  std::vector<std::string> logged;
  if (ctx.propagation) logged.assign(ctx.args.begin(), ctx.args.end());
  Engine* engine = ctx.engine;
  int db = ctx.db_index;
  set.RunExclusive(
      all,
      [fn = std::move(fn), done, out, logged = std::move(logged), engine, db] {
        RefreshCommandTime();
        resp::ReplyBuilder rb(out.get(), done->resp());
        done->Timed([&] { fn(rb); });
        if (!logged.empty() && !out->empty() && (*out)[0] != '-' && engine->propagation().on()) {
          std::vector<std::string_view> argv(logged.begin(), logged.end());
          std::string bytes;
          AppendCommand(&bytes, argv);
          engine->propagation().Emit(db, bytes);
        }
      },
      [done, out] { done->Finish(std::move(*out)); });
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
