#include "config/config.h"

#include <gtest/gtest.h>

#include <fstream>

#include "common/status.h"

namespace larder {

TEST(ConfigTest, DefaultsAndSet) {
  Config c;
  EXPECT_EQ(*c.Get("maxclients"), "10000");
  EXPECT_EQ(*c.Get("maxmemory-policy"), "noeviction");
  std::string err;
  EXPECT_TRUE(c.Set("maxmemory", "1gb", false, &err));
  EXPECT_EQ(*c.Get("maxmemory"), "1073741824");
  EXPECT_EQ(c.maxmemory.load(), 1073741824);
  EXPECT_FALSE(c.Set("maxclients", "abc", false, &err));
  EXPECT_EQ(err, "argument couldn't be parsed into an integer");
  EXPECT_FALSE(c.Set("timeout", "-1", false, &err));
  EXPECT_EQ(err, "argument must be between 0 and 2147483647 inclusive");
  EXPECT_FALSE(c.Set("loglevel", "loud", false, &err));
  EXPECT_FALSE(c.Set("port", "1234", false, &err));  // immutable at runtime
}

TEST(ConfigTest, FileErrorsNameTheLine) {
  std::string path = testing::TempDir() + "/larder_bad.conf";
  {
    std::ofstream f(path);
    f << "# comment\nport 7000\nnosuch option\n";
  }
  Config c;
  std::string err;
  EXPECT_FALSE(c.LoadFile(path, &err));
  EXPECT_NE(err.find("at line 3"), std::string::npos) << err;
  EXPECT_NE(err.find(">>> 'nosuch option'"), std::string::npos) << err;
}

TEST(ConfigTest, RewriteKeepsComments) {
  std::string path = testing::TempDir() + "/larder_rw.conf";
  {
    std::ofstream f(path);
    f << "# my settings\nmaxclients 100\n";
  }
  Config c;
  std::string err;
  ASSERT_TRUE(c.LoadFile(path, &err)) << err;
  ASSERT_TRUE(c.Set("maxclients", "200", false, &err));
  ASSERT_TRUE(c.Set("timeout", "30", false, &err));
  ASSERT_TRUE(c.Rewrite(&err)) << err;
  std::ifstream in(path);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("# my settings"), std::string::npos);
  EXPECT_NE(text.find("maxclients 200"), std::string::npos);
  EXPECT_NE(text.find("timeout 30"), std::string::npos);
  Config again;
  ASSERT_TRUE(again.LoadFile(path, &err)) << err;
  EXPECT_EQ(again.timeout.load(), 30);
}

}  // namespace larder

namespace larder {

TEST(ConfigTest, MaxmemoryClientsTakesRedisValuesButOnlyZero) {
  Config c;
  std::string err;
  EXPECT_EQ(*c.Get("maxmemory-clients"), "0");
  EXPECT_FALSE(c.Set("maxmemory-clients", "200%", false, &err));
  EXPECT_EQ(err, "percentage argument must be less or equal to 100");
  EXPECT_FALSE(c.Set("maxmemory-clients", "abc", false, &err));
  EXPECT_EQ(err, "argument must be a memory or percent value");
  EXPECT_FALSE(c.Set("maxmemory-clients", "-1%", false, &err));
  EXPECT_EQ(err, "argument must be a memory or percent value");
  EXPECT_FALSE(c.Set("maxmemory-clients", "10%", false, &err));
  EXPECT_NE(err.find("only 0"), std::string::npos) << err;
  EXPECT_FALSE(c.Set("maxmemory-clients", "1mb", true, &err));  // at start-up too
  EXPECT_TRUE(c.Set("maxmemory-clients", "0", false, &err));
  EXPECT_TRUE(c.Set("maxmemory-clients", "0%", false, &err));
  EXPECT_EQ(*c.Get("maxmemory-clients"), "0");
}

TEST(ConfigTest, ApplyHookMakesAnImmutableOptionSettable) {
  Config c;
  std::string err;
  EXPECT_FALSE(c.Settable("port"));
  int applied = 0;
  c.SetApplyHook("port", [&](std::string*) {
    ++applied;
    return true;
  });
  EXPECT_TRUE(c.Settable("port"));
  EXPECT_TRUE(c.Set("port", "1234", false, &err)) << err;
  EXPECT_TRUE(c.Apply("port", &err));
  EXPECT_EQ(applied, 1);
  c.SetApplyHook("port", nullptr);
  EXPECT_FALSE(c.Settable("port"));
  EXPECT_FALSE(c.Settable("daemonize"));
  EXPECT_TRUE(c.Settable("maxmemory"));
}

// Settings Larder cannot honour take only the value that means "off"
// (docs/compatibility.md, "Settings Larder accepts but does not act on").
TEST(ConfigTest, IoThreadsOnlyOne) {
  Config c;
  std::string err;
  EXPECT_EQ(*c.Get("io-threads"), "1");
  EXPECT_FALSE(c.Set("io-threads", "4", true, &err));
  EXPECT_EQ(err, ErrorText(OpStatus::kConfigNoIoThreads));
  EXPECT_EQ(*c.Get("io-threads"), "1");
  EXPECT_TRUE(c.Set("io-threads", "1", true, &err));
  EXPECT_FALSE(c.Set("io-threads", "1", false, &err));  // immutable, as in Redis
  EXPECT_EQ(err, "can't set immutable config");
}

TEST(ConfigTest, TcpKeepaliveIsKept) {
  Config c;
  std::string err;
  EXPECT_EQ(c.tcp_keepalive.load(), 300);
  EXPECT_TRUE(c.Set("tcp-keepalive", "60", false, &err));
  EXPECT_EQ(c.tcp_keepalive.load(), 60);
  EXPECT_TRUE(c.Set("tcp-keepalive", "0", false, &err));
  EXPECT_EQ(c.tcp_keepalive.load(), 0);
}

TEST(ConfigTest, ListKnobsAndAliases) {
  Config c;
  std::string err;
  EXPECT_EQ(*c.Get("list-max-listpack-size"), "-2");
  EXPECT_TRUE(c.Set("list-max-ziplist-size", "5", false, &err));
  EXPECT_EQ(*c.Get("list-max-listpack-size"), "5");
  EXPECT_EQ(c.CanonicalName("LIST-MAX-ZIPLIST-SIZE"), "list-max-listpack-size");
  EXPECT_FALSE(c.Set("list-compress-depth", "-1", false, &err));
  EXPECT_EQ(err, "argument must be between 0 and 2147483647 inclusive");
}

TEST(ConfigTest, UserLinesAndAclSettings) {
  std::string path = testing::TempDir() + "/larder_users.conf";
  {
    std::ofstream f(path);
    f << "user alice on >pw ~a* +@all\nuser default on nopass ~* +@all\n";
  }
  Config c;
  std::string err;
  ASSERT_TRUE(c.LoadFile(path, &err)) << err;
  ASSERT_TRUE(c.ApplyArgs({"--user", "bob", "on", "nopass", "--acllog-max-len", "5"}, &err)) << err;
  ASSERT_EQ(c.user_lines().size(), 3u);
  EXPECT_EQ(c.user_lines()[0], (std::vector<std::string>{"alice", "on", ">pw", "~a*", "+@all"}));
  EXPECT_EQ(c.user_lines()[2], (std::vector<std::string>{"bob", "on", "nopass"}));
  EXPECT_EQ(c.acllog_max_len.load(), 5);
  EXPECT_EQ(*c.Get("acl-pubsub-default"), "resetchannels");
  EXPECT_FALSE(c.Set("aclfile", "/tmp/x.acl", false, &err));  // fixed at start-up
  EXPECT_FALSE(c.ApplyArgs({"--user", "bob", "off"}, &err));
  EXPECT_NE(err.find("Error in user declaration 'bob': Duplicate user found"), std::string::npos) << err;
}

// Redis's Tcl suite writes `save ""` into its config files as "save " (no
// argument): Redis takes that as no save points when it is the first save
// line, and as adding none after others.
TEST(ConfigTest, SaveLineWithoutPoints) {
  auto load = [](const std::string& text) {
    std::string path = ::testing::TempDir() + "/larder_save_line.conf";
    std::ofstream(path) << text;
    Config c;
    std::string err;
    bool ok = c.LoadFile(path, &err);
    EXPECT_TRUE(ok) << err;
    return ok ? *c.Get("save") : std::string("(failed)");
  };
  EXPECT_EQ(load("port 1234\nsave \n"), "");
  EXPECT_EQ(load("save\n"), "");
  EXPECT_EQ(load("save 900 1\nsave\nsave 60 5\n"), "900 1 60 5");
}

TEST(ConfigTest, CommandLineReadsAsRedisDoes) {
  auto apply = [](std::vector<std::string> args, std::string* err) {
    Config c;
    bool ok = c.ApplyArgs(args, err);
    return std::make_pair(ok, ok ? *c.Get("maxmemory") + "|" + *c.Get("save") + "|" + *c.Get("loglevel") : "");
  };
  std::string err;
  // An argument holding spaces is a whole line; values may start with "--"
  // while the option has none yet; "--save" alone is save "".
  EXPECT_EQ(apply({"--maxmemory 700mb", "--loglevel verbose"}, &err).second, "734003200|3600 1 300 100 60 10000|verbose");
  EXPECT_EQ(apply({"--save", "--loglevel", "verbose"}, &err).second, "0||verbose");
  EXPECT_EQ(apply({"--loglevel", "verbose", "--save"}, &err).second, "0||verbose");
  EXPECT_EQ(apply({"loglevel", "verbose"}, &err).second, "0|3600 1 300 100 60 10000|verbose");
  EXPECT_FALSE(apply({"--port", "6379", "6380"}, &err).first);
  EXPECT_NE(err.find("'port \"6379\" \"6380\"'"), std::string::npos) << err;
  EXPECT_FALSE(apply({"--port", "--bla", "--loglevel", "verbose"}, &err).first);
  EXPECT_NE(err.find("'port \"--bla\"'"), std::string::npos) << err;
  EXPECT_FALSE(apply({"--port"}, &err).first);
  EXPECT_NE(err.find("'port'"), std::string::npos) << err;
}

}  // namespace larder
