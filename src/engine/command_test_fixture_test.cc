// The command test fixture itself: its RESP reply parser, and its routes
// (own shard, another shard, fan-out, exclusive, a gather that defers with
// no Client) checked with a few commands of its own, no family involved.
#include "engine/command_test_fixture.h"

#include "engine/multi_shard.h"
#include "keyspace/entry.h"
#include "shard/shard.h"

namespace larder {
namespace {

RespValue Parsed(std::string_view bytes) {
  RespValue v;
  size_t used = ParseRespValue(bytes, &v);
  EXPECT_EQ(used, bytes.size()) << ::testing::PrintToString(std::string(bytes));
  return v;
}

TEST(RespValueTest, ParsesEveryType) {
  using T = RespValue::Type;
  EXPECT_THAT(Parsed("+OK\r\n"), IsOk());
  EXPECT_THAT(Parsed("-WRONGTYPE Operation\r\n"), IsError("WRONGTYPE"));
  EXPECT_EQ(Parsed(":-42\r\n"), -42);
  EXPECT_EQ(Parsed("$5\r\na\r\nbc\r\n"), "a\r\nbc");
  EXPECT_EQ(Parsed("$-1\r\n").null_kind, '$');
  EXPECT_EQ(Parsed("*-1\r\n").null_kind, '*');
  EXPECT_EQ(Parsed("_\r\n").null_kind, '_');
  EXPECT_THAT(Parsed("*3\r\n$1\r\na\r\n:2\r\n$-1\r\n"), ArrayOf({"a", 2, kNil}));
  RespValue m = Parsed("%2\r\n+a\r\n:1\r\n+b\r\n:2\r\n");
  EXPECT_EQ(m.type, T::kMap);
  EXPECT_EQ(m.pairs(), (std::map<std::string, std::string>{{"a", "1"}, {"b", "2"}}));
  EXPECT_EQ(Parsed("~1\r\n+x\r\n").type, T::kSet);
  EXPECT_EQ(Parsed(">2\r\n+message\r\n+x\r\n").type, T::kPush);
  EXPECT_EQ(Parsed(",3.5\r\n").str, "3.5");
  EXPECT_EQ(Parsed("#t\r\n").integer, 1);
  EXPECT_EQ(Parsed("(12345678901234567890\r\n").type, T::kBigNumber);
  RespValue v = Parsed("=9\r\ntxt:hello\r\n");
  EXPECT_EQ(v, "hello");
  EXPECT_EQ(v.format, "txt");
  EXPECT_THAT(Parsed("!5\r\nERR x\r\n"), IsError("ERR x"));
  EXPECT_EQ(Parsed("|1\r\n+ttl\r\n:3\r\n:7\r\n"), 7);  // an attribute, then the value
  EXPECT_THAT(Parsed("*2\r\n*1\r\n:1\r\n*0\r\n")[0], ArrayOf({1}));
  // Incomplete or malformed input: nothing parsed.
  RespValue out;
  EXPECT_EQ(ParseRespValue("$5\r\nabc\r\n", &out), 0u);
  EXPECT_EQ(ParseRespValue("*2\r\n:1\r\n", &out), 0u);
  EXPECT_EQ(ParseRespValue(":x\r\n", &out), 0u);
  EXPECT_EQ(ParseRespValue("?\r\n", &out), 0u);
}

// A few commands that report how they ran.
void TSet(CommandContext& ctx) {
  Db& db = ctx.DbFor(ctx.arg(1));
  db.Delete(ctx.arg(1));
  db.Add(NewStringEntry(ctx.arg(1), ctx.arg(2), -1));
  ctx.rb->Ok();
}
void TGet(CommandContext& ctx) {
  Entry* e = ctx.DbFor(ctx.arg(1)).Find(ctx.arg(1));
  if (e) ctx.rb->Bulk(e->value());
  else ctx.rb->Null();
}
void TWhere(CommandContext& ctx) { ctx.rb->Integer(ctx.shard->id()); }
void TCount(CommandContext& ctx) {
  int64_t n = 0;
  for (size_t i = 1; i < ctx.argc(); ++i) n += ctx.DbFor(ctx.arg(i)).Find(ctx.arg(i)) != nullptr;
  ctx.rb->Integer(n);
}
// Swaps two string values; replies whether it ran as an exclusive operation.
void TSwap(CommandContext& ctx) {
  std::string a, b;
  if (Entry* e = ctx.DbFor(ctx.arg(1)).Find(ctx.arg(1))) a = e->value();
  if (Entry* e = ctx.DbFor(ctx.arg(2)).Find(ctx.arg(2))) b = e->value();
  for (auto [key, value] : {std::pair{ctx.arg(1), b}, std::pair{ctx.arg(2), a}}) {
    Db& db = ctx.DbFor(key);
    db.Delete(key);
    db.Add(NewStringEntry(key, value, -1));
  }
  ctx.rb->Integer(ctx.exclusive ? 1 : 0);
}
// Keys over every shard, gathered: defers with no Client.
void TSize(CommandContext& ctx) {
  int db = ctx.db_index;
  GatherAll<int64_t>(
      ctx, [db](Shard& s) { return static_cast<int64_t>(s.db(db).size()); },
      [](std::vector<int64_t>& sizes, resp::ReplyBuilder& rb) {
        int64_t total = 0;
        for (int64_t n : sizes) total += n;
        rb.Integer(total);
      });
}

void RegisterTestCommands(CommandRegistry* r) {
  constexpr uint32_t W = kCmdWrite, R = kCmdReadOnly;
  r->Add(MakeCommand("tset", 3, W, 1, 1, 1, TSet, "@write", "", "test"));
  r->Add(MakeCommand("tget", 2, R, 1, 1, 1, TGet, "@read", "", "test"));
  r->Add(MakeCommand("twhere", 2, R, 1, 1, 1, TWhere, "@read", "", "test"));
  CommandSpec count = MakeCommand("tcount", -2, R, 1, -1, 1, TCount, "@read", "", "test");
  count.fan_out = IntegerSumFanOut;
  r->Add(count);
  r->Add(MakeCommand("tswap", 3, W, 1, 2, 1, TSwap, "@write", "", "test"));
  CommandSpec size = MakeCommand("tsize", 1, R, 0, 0, 0, TSize, "@read", "", "test");
  size.route = Route::kConnection;
  r->Add(size);
}

class FixtureTest : public CommandTest {
 protected:
  FixtureTest() : CommandTest(&RegisterTestCommands) {}
  void Configure(Options& options) override { options.threads = 3; }
};

TEST_F(FixtureTest, RoutesToTheKeysShard) {
  for (int s = 0; s < 3; ++s) {
    std::string k = KeyOnShard(s);
    EXPECT_EQ(Run({"TWHERE", k}), s);
    EXPECT_THAT(Run({"TSET", k, "v" + std::to_string(s)}), IsOk());
    EXPECT_EQ(Run({"TGET", k}), "v" + std::to_string(s));
    EXPECT_FALSE(last_reply_deferred());
  }
}

TEST_F(FixtureTest, MultiShardRoutes) {
  std::string a = KeyOnShard(0, "a"), b = KeyOnShard(1, "b"), c = KeyOnShard(2, "c");
  EXPECT_THAT(Run({"TSET", a, "1"}), IsOk());
  EXPECT_THAT(Run({"TSET", b, "2"}), IsOk());
  // Fan-out: each shard counts its keys, the coordinator sums.
  EXPECT_EQ(Run({"TCOUNT", a, b, c}), 2);
  EXPECT_TRUE(last_reply_deferred());
  // On one shard the command itself runs, no coordinator.
  EXPECT_EQ(Run({"TCOUNT", a}), 1);
  EXPECT_FALSE(last_reply_deferred());
  // No fan-out: one exclusive operation over both shards.
  EXPECT_EQ(Run({"TSWAP", a, b}), 1);
  EXPECT_EQ(Run({"TGET", a}), "2");
  EXPECT_EQ(Run({"TGET", b}), "1");
  std::string a2 = KeyOnShard(0, "a2-");
  EXPECT_EQ(Run({"TSWAP", a, a2}), 0);  // one shard: not exclusive
  EXPECT_EQ(Run({"TGET", a}), "");
  // A gather over every shard, deferred without a Client.
  EXPECT_EQ(Run({"TSIZE"}), 3);
  EXPECT_TRUE(last_reply_deferred());
  set_db(5);
  EXPECT_EQ(Run({"TSIZE"}), 0);
}

TEST_F(FixtureTest, RefusalsAsTheDispatcher) {
  EXPECT_THAT(Run({"TGET"}), IsError("ERR wrong number of arguments for 'tget' command"));
  EXPECT_THAT(Run({"GET", "k"}), IsError("ERR unknown command 'GET', with args beginning with: 'k' "));
}

TEST_F(FixtureTest, SendKeepsOrder) {
  std::string k = KeyOnShard(1);
  std::vector<uint32_t> tickets;
  for (int i = 0; i < 50; ++i) tickets.push_back(Send({"TSET", k, std::to_string(i)}));
  uint32_t last = Send({"TGET", k});
  for (uint32_t t : tickets) EXPECT_THAT(Wait(t), IsOk());
  EXPECT_EQ(Wait(last), "49");
}

}  // namespace
}  // namespace larder
