#include "cache/rules.h"

#include <gtest/gtest.h>

#include "cache/shard_cache.h"

namespace larder::cache {
namespace {

TEST(CacheRules, Durations) {
  int64_t ms;
  ASSERT_TRUE(ParseDuration("250ms", &ms));
  EXPECT_EQ(ms, 250);
  ASSERT_TRUE(ParseDuration("10s", &ms));
  EXPECT_EQ(ms, 10000);
  ASSERT_TRUE(ParseDuration("5m", &ms));
  EXPECT_EQ(ms, 300000);
  ASSERT_TRUE(ParseDuration("2h", &ms));
  EXPECT_EQ(ms, 7200000);
  ASSERT_TRUE(ParseDuration("7", &ms));
  EXPECT_EQ(ms, 7000);
  EXPECT_FALSE(ParseDuration("", &ms));
  EXPECT_FALSE(ParseDuration("-1s", &ms));
  EXPECT_FALSE(ParseDuration("3d", &ms));
  EXPECT_FALSE(ParseDuration("1.5s", &ms));
  EXPECT_EQ(FormatDuration(600000), "10m");
  EXPECT_EQ(FormatDuration(1500), "1500ms");
}

TEST(CacheRules, PatternsMatchPlaceholdersWithoutColons) {
  Pattern p;
  std::string err;
  ASSERT_TRUE(Pattern::Parse("user:<id>", &p, &err)) << err;
  std::vector<std::pair<std::string, std::string>> params;
  ASSERT_TRUE(p.Match("user:42", &params));
  ASSERT_EQ(params.size(), 1u);
  EXPECT_EQ(params[0].first, "id");
  EXPECT_EQ(params[0].second, "42");
  EXPECT_FALSE(p.Match("user:", &params));
  EXPECT_FALSE(p.Match("user:1:2", &params));
  EXPECT_FALSE(p.Match("users:1", &params));

  ASSERT_TRUE(Pattern::Parse("order:<shop>:<id>:v", &p, &err)) << err;
  ASSERT_TRUE(p.Match("order:eu:77:v", &params));
  EXPECT_EQ(params[0].second, "eu");
  EXPECT_EQ(params[1].second, "77");
  ASSERT_TRUE(Pattern::Parse("p<a>-<b>", &p, &err)) << err;
  ASSERT_TRUE(p.Match("px-y-z", &params));  // the first placeholder takes the longest fit
  EXPECT_EQ(params[0].second, "x-y");
  EXPECT_EQ(params[1].second, "z");

  EXPECT_FALSE(Pattern::Parse("a<>", &p, &err));
  EXPECT_FALSE(Pattern::Parse("a<x", &p, &err));
  EXPECT_FALSE(Pattern::Parse("a<x><y>", &p, &err));
  EXPECT_FALSE(Pattern::Parse("a<x>:<x>", &p, &err));
}

TEST(CacheRules, SqlParametersSkipQuotesAndCasts) {
  auto names = SqlParameters("SELECT a::text, ':no' FROM t WHERE id = :id AND x = :x OR id = :id");
  ASSERT_EQ(names.size(), 2u);
  EXPECT_EQ(names[0], "id");
  EXPECT_EQ(names[1], "x");
  EXPECT_EQ(SqlToNumbered("SELECT a::text, ':id' FROM t WHERE id = :id AND x = :x", {"id", "x"}),
            "SELECT a::text, ':id' FROM t WHERE id = $1 AND x = $2");
}

TEST(CacheRules, ParsesTheDocumentedLineAndRoundTrips) {
  std::vector<std::string> args = {"user:<id>", "source", "main", "as", "hash", "ttl", "10m", "jitter", "10",
                                   "negative-ttl", "60", "grace", "5m", "refresh-ahead", "yes",
                                   "stale-on-error", "yes", "load-timeout", "2s", "max-loads", "64", "load",
                                   "SELECT name, email, plan FROM users WHERE id = :id"};
  Rule r;
  std::string err;
  ASSERT_TRUE(ParseRule(args, &r, &err)) << err;
  EXPECT_EQ(r.kind, ValueKind::kHash);
  EXPECT_EQ(r.ttl_ms, 600000);
  EXPECT_EQ(r.jitter_pct, 10);
  EXPECT_EQ(r.negative_ttl_ms, 60000);
  EXPECT_EQ(r.grace_ms, 300000);
  EXPECT_TRUE(r.refresh_ahead);
  EXPECT_EQ(r.load_timeout_ms, 2000);
  EXPECT_EQ(r.max_loads, 64);
  EXPECT_EQ(r.sql_params, std::vector<std::string>{"id"});
  EXPECT_NE(r.ToLine().find("load \"SELECT name, email, plan FROM users WHERE id = :id\""), std::string::npos);
}

TEST(CacheRules, RejectsBadRules) {
  Rule r;
  std::string err;
  EXPECT_FALSE(ParseRule({"user:<id>", "load", "SELECT 1"}, &r, &err));
  EXPECT_NE(err.find("source"), std::string::npos);
  EXPECT_FALSE(ParseRule({"user:<id>", "source", "main"}, &r, &err));
  EXPECT_NE(err.find("load"), std::string::npos);
  EXPECT_FALSE(ParseRule({"user:<id>", "source", "main", "load", "SELECT :other"}, &r, &err));
  EXPECT_NE(err.find(":other"), std::string::npos);
  EXPECT_FALSE(ParseRule({"user:<id>", "source", "m", "ttl", "soon", "load", "x"}, &r, &err));
  EXPECT_FALSE(ParseRule({"user:<id>", "source", "m", "colour", "red", "load", "x"}, &r, &err));
  EXPECT_FALSE(ParseRule({"user:<id>", "source", "m", "load"}, &r, &err));
  SourceSpec s;
  EXPECT_TRUE(ParseSource({"demo", "sqlite:examples/shop/shop.db"}, &s, &err));
  EXPECT_EQ(s.sqlite_path(), "examples/shop/shop.db");
  EXPECT_TRUE(ParseSource({"main", "postgresql://larder@127.0.0.1:5432/shop"}, &s, &err));
  EXPECT_FALSE(ParseSource({"x", "mysql://a"}, &s, &err));
}

TEST(CacheRules, PublishOptionsParseAndRoundTrip) {
  Rule r;
  std::string err;
  ASSERT_TRUE(ParseRule({"item:<id>", "source", "db", "publish-channel", "item changes", "publish-stream", "item-log",
                         "load", "SELECT v FROM t WHERE id = :id"},
                        &r, &err))
      << err;
  EXPECT_EQ(r.publish_channel, "item changes");
  EXPECT_EQ(r.publish_stream, "item-log");
  std::string line = r.ToLine();
  EXPECT_NE(line.find("publish-channel \"item changes\" publish-stream item-log load"), std::string::npos) << line;
  Rule plain;
  ASSERT_TRUE(ParseRule({"k:<id>", "source", "db", "load", "SELECT 1 WHERE :id"}, &plain, &err)) << err;
  EXPECT_EQ(plain.ToLine().find("publish"), std::string::npos);
}

TEST(CacheRules, EventMessagesAreJson) {
  EXPECT_EQ(RuleEventMessage(kEventLoaded, "user:7", 0), R"({"event":"cache-loaded","key":"user:7","db":0})");
  EXPECT_EQ(RuleEventMessage(kEventWritten, "a\"b\n", 12), R"({"event":"cache-written","key":"a\"b\n","db":12})");
}

}  // namespace
}  // namespace larder::cache
