#include "engine/acl.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "engine/command.h"

namespace larder::acl {
namespace {

void Nop(CommandContext&) {}

// A small command table of its own: key specs come from Redis's by name.
const CommandRegistry& Table() {
  static const CommandRegistry* r = [] {
    auto* reg = new CommandRegistry();
    reg->Add(MakeCommand("get", 2, kCmdReadOnly | kCmdFast, 1, 1, 1, Nop, "@read @string @fast", "", "string"));
    reg->Add(MakeCommand("set", -3, kCmdWrite, 1, 1, 1, Nop, "@write @string @slow", "", "string"));
    reg->Add(MakeCommand("mget", -2, kCmdReadOnly | kCmdFast, 1, -1, 1, Nop, "@read @string @fast", "", "string"));
    reg->Add(MakeCommand("lpush", -3, kCmdWrite | kCmdFast, 1, 1, 1, Nop, "@write @list @fast", "", "list"));
    CommandSpec copy = MakeCommand("copy", -3, kCmdWrite, 1, 2, 1, Nop, "@keyspace @write @slow", "", "generic");
    copy.writes = CommandSpec::Writes::kSecond;
    reg->Add(std::move(copy));
    reg->Add(MakeCommand("select", 2, kCmdFast, 0, 0, 0, Nop, "@fast @connection", "", "connection"));
    reg->Add(MakeCommand("ping", -1, kCmdFast, 0, 0, 0, Nop, "@fast @connection", "", "connection"));
    reg->Add(MakeCommand("auth", -2, kCmdFast | kCmdNoAuth, 0, 0, 0, Nop, "@fast @connection", "", "connection"));
    CommandSpec config = MakeCommand("config", -2, 0, 0, 0, 0, nullptr, "@slow", "", "server");
    config.subcommands.push_back(
        MakeCommand("config|get", -3, kCmdAdmin, 0, 0, 0, Nop, "@admin @slow @dangerous", "", "server"));
    config.subcommands.push_back(
        MakeCommand("config|set", -4, kCmdAdmin, 0, 0, 0, Nop, "@admin @slow @dangerous", "", "server"));
    reg->Add(std::move(config));
    reg->Finalize();
    return reg;
  }();
  return *r;
}

const CommandTable& Cmds() {
  static const CommandTable t(Table());
  return t;
}

User Make(std::vector<std::string> rules) {
  User u = User::Create("u", Cmds(), false);
  for (const auto& r : rules) EXPECT_EQ(ApplyUserRule(u, r, Cmds(), false), OpStatus::kOk) << r;
  u.Finish();
  return u;
}

CheckResult CheckLine(const User& u, std::vector<std::string_view> argv) {
  const CommandSpec* spec = Table().Find(argv[0]);
  if (!spec->subcommands.empty()) spec = Table().FindSub(*spec, argv[1]);
  return Check(u, *spec, argv);
}

TEST(AclRules, DefaultUserIsAllowedEverything) {
  User d = DefaultUser(Cmds());
  EXPECT_TRUE(d.allows_everything);
  EXPECT_EQ(DescribeUser(d, Cmds()), "on nopass ~* &* +@all");
  EXPECT_TRUE(CheckLine(d, {"set", "k", "v"}).ok());
}

TEST(AclRules, NewUserHasNothing) {
  User u = User::Create("u", Cmds(), false);
  EXPECT_FALSE(u.allows_everything);
  EXPECT_EQ(DescribeUser(u, Cmds()), "off resetchannels -@all");
  EXPECT_EQ(CheckLine(u, {"get", "k"}).denial, Denial::kCommand);
  // A command allowed before AUTH is never refused for its bit.
  EXPECT_TRUE(CheckLine(u, {"auth", "x"}).ok());
  User all = User::Create("u", Cmds(), true);
  EXPECT_EQ(DescribeUser(all, Cmds()), "off &* -@all");
}

TEST(AclRules, CategoriesDescribeBack) {
  EXPECT_EQ(DescribeCommands(Make({"+@all", "-@string"}).selectors[0], Cmds()), "+@all -@string");
  EXPECT_EQ(DescribeCommands(Make({"-@all", "+@string"}).selectors[0], Cmds()), "-@all +@string");
  EXPECT_EQ(DescribeCommands(Make({"+@all", "-config|set"}).selectors[0], Cmds()), "+@all -config|set");
  EXPECT_EQ(DescribeCommands(Make({"+config|get"}).selectors[0], Cmds()), "-@all +config|get");
  // In this small table @admin is config's two subcommands: it fits best.
  EXPECT_EQ(DescribeCommands(Make({"+config|get", "+config"}).selectors[0], Cmds()), "-@all +@admin +config");
  EXPECT_EQ(DescribeCommands(Make({"+@all", "+config|get"}).selectors[0], Cmds()), "+@all");
  EXPECT_EQ(DescribeCommands(Make({"+get", "+ping"}).selectors[0], Cmds()), "-@all +get +ping");
}

TEST(AclRules, SubcommandsAndFirstArgs) {
  User u = Make({"+@all", "-config|set"});
  EXPECT_TRUE(CheckLine(u, {"config", "get", "x"}).ok() || CheckLine(u, {"config", "get", "x"}).denial != Denial::kCommand);
  EXPECT_EQ(CheckLine(u, {"config", "set", "a", "b"}).denial, Denial::kCommand);
  User s = Make({"+select|0"});
  EXPECT_EQ(DescribeCommands(s.selectors[0], Cmds()), "-@all +select|0");
  EXPECT_TRUE(CheckLine(s, {"select", "0"}).ok());
  EXPECT_EQ(CheckLine(s, {"select", "1"}).denial, Denial::kCommand);
}

TEST(AclRules, RefusedRules) {
  User u = User::Create("u", Cmds(), false);
  EXPECT_EQ(ApplyUserRule(u, "+nosuch", Cmds(), false), OpStatus::kAclUnknownCommand);
  EXPECT_EQ(ApplyUserRule(u, "+@nosuch", Cmds(), false), OpStatus::kAclUnknownCommand);
  EXPECT_EQ(ApplyUserRule(u, "+config|get|x", Cmds(), false), OpStatus::kAclFirstArgOfSub);
  EXPECT_EQ(ApplyUserRule(u, "+config|nosuch", Cmds(), false), OpStatus::kAclUnknownCommand);
  EXPECT_EQ(ApplyUserRule(u, "+get|a|b", Cmds(), false), OpStatus::kAclUnknownCommand);
  EXPECT_EQ(ApplyUserRule(u, "-select|0", Cmds(), false), OpStatus::kAclUnknownCommand);
  EXPECT_EQ(ApplyUserRule(u, "+select|", Cmds(), false), OpStatus::kAclSyntaxError);
  EXPECT_EQ(ApplyUserRule(u, "%", Cmds(), false), OpStatus::kAclSyntaxError);
  EXPECT_EQ(ApplyUserRule(u, "%~", Cmds(), false), OpStatus::kAclSyntaxError);
  EXPECT_EQ(ApplyUserRule(u, "%X~k", Cmds(), false), OpStatus::kAclSyntaxError);
  EXPECT_EQ(ApplyUserRule(u, "bogus", Cmds(), false), OpStatus::kAclSyntaxError);
  EXPECT_EQ(ApplyUserRule(u, "<nopw", Cmds(), false), OpStatus::kAclNoSuchPassword);
  EXPECT_EQ(ApplyUserRule(u, "#abc", Cmds(), false), OpStatus::kAclBadHash);
  EXPECT_EQ(ApplyUserRule(u, "(+get bogus)", Cmds(), false), OpStatus::kAclSyntaxError);
  ASSERT_EQ(ApplyUserRule(u, "allkeys", Cmds(), false), OpStatus::kOk);
  EXPECT_EQ(ApplyUserRule(u, "~k*", Cmds(), false), OpStatus::kAclKeyAfterAll);
  ASSERT_EQ(ApplyUserRule(u, "allchannels", Cmds(), false), OpStatus::kOk);
  EXPECT_EQ(ApplyUserRule(u, "&c", Cmds(), false), OpStatus::kAclChannelAfterAll);
}

TEST(AclRules, Passwords) {
  EXPECT_EQ(HashPassword("foo"), "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae");
  User u = Make({"on", ">foo", ">bar", ">foo"});
  EXPECT_EQ(u.passwords.size(), 2u);
  EXPECT_TRUE(u.PasswordMatches("foo"));
  EXPECT_TRUE(u.PasswordMatches("bar"));
  EXPECT_FALSE(u.PasswordMatches("baz"));
  ASSERT_EQ(ApplyUserRule(u, "<foo", Cmds(), false), OpStatus::kOk);
  EXPECT_FALSE(u.PasswordMatches("foo"));
  ASSERT_EQ(ApplyUserRule(u, "!" + HashPassword("bar"), Cmds(), false), OpStatus::kOk);
  EXPECT_TRUE(u.passwords.empty());
  EXPECT_FALSE(u.PasswordMatches(""));
  ASSERT_EQ(ApplyUserRule(u, "nopass", Cmds(), false), OpStatus::kOk);
  EXPECT_TRUE(u.PasswordMatches("anything"));
  EXPECT_EQ(DescribeUser(Make({"on", "#" + HashPassword("x")}), Cmds()),
            "on #" + HashPassword("x") + " resetchannels -@all");
}

TEST(AclRules, ReadAndWriteKeyPatterns) {
  User r = Make({"+@all", "%R~read*"});
  EXPECT_TRUE(CheckLine(r, {"get", "readstr"}).ok());
  CheckResult w = CheckLine(r, {"set", "readstr", "v"});
  EXPECT_EQ(w.denial, Denial::kKey);
  EXPECT_EQ(w.pos, 1u);
  EXPECT_EQ(CheckLine(r, {"get", "other"}).denial, Denial::kKey);
  User wr = Make({"+@all", "%W~write*"});
  EXPECT_TRUE(CheckLine(wr, {"lpush", "writelist", "1"}).ok());
  EXPECT_EQ(CheckLine(wr, {"get", "writestr"}).denial, Denial::kKey);
  // SET without GET only writes; with GET it reads too.
  EXPECT_TRUE(CheckLine(wr, {"set", "writestr", "v"}).ok());
  EXPECT_EQ(CheckLine(wr, {"set", "writestr", "v", "get"}).denial, Denial::kKey);
  User rw = Make({"+@all", "%R~read*", "%W~write*"});
  EXPECT_TRUE(CheckLine(rw, {"copy", "read", "write"}).ok());
  EXPECT_EQ(CheckLine(rw, {"copy", "write", "read"}).denial, Denial::kKey);
  EXPECT_EQ(DescribeKeys(Make({"%R~foo", "%W~foo", "%RW~bar"}).selectors[0]), "~foo ~bar");
  EXPECT_EQ(DescribeKeys(Make({"%R~a", "%W~b", "~c"}).selectors[0]), "%R~a %W~b ~c");
  // An empty pattern (or none) matches no key.
  EXPECT_EQ(CheckLine(Make({"+@all", "%RW~"}), {"set", "x", "5"}).denial, Denial::kKey);
  EXPECT_EQ(CheckLine(Make({"+@all", "%RW"}), {"set", "x", "5"}).denial, Denial::kKey);
}

TEST(AclRules, SelectorsAndTheDenialReported) {
  User u = Make({"on", "nopass", "-@all", "resetkeys", "(+@write ~write::*)", "(+@read ~read::*)"});
  EXPECT_TRUE(CheckLine(u, {"set", "write::foo", "bar"}).ok());
  EXPECT_TRUE(CheckLine(u, {"get", "read::foo"}).ok());
  EXPECT_EQ(CheckLine(u, {"get", "write::foo"}).denial, Denial::kKey);
  EXPECT_EQ(CheckLine(u, {"ping"}).denial, Denial::kCommand);
  EXPECT_EQ(DescribeUser(u, Cmds()),
            "on nopass resetchannels -@all (~write::* resetchannels -@all +@write) "
            "(~read::* resetchannels -@all +@read)");
  // The key furthest into the arguments that no selector could match.
  User m = Make({"+mget", "~key", "(+mget ~key ~otherkey)"});
  CheckResult r = CheckLine(m, {"mget", "otherkey", "someotherkey"});
  EXPECT_EQ(r.denial, Denial::kKey);
  EXPECT_EQ(r.pos, 2u);
  r = CheckLine(m, {"get", "key"});
  EXPECT_EQ(r.denial, Denial::kCommand);
  User cleared = u;
  ASSERT_EQ(ApplyUserRule(cleared, "clearselectors", Cmds(), false), OpStatus::kOk);
  EXPECT_EQ(cleared.selectors.size(), 1u);
}

TEST(AclRules, MergeSelectorArgs) {
  std::vector<std::string> out;
  size_t bad = 99;
  std::vector<std::string> in = {"on", "(+get", "~k)", "(~x +set)", "nopass"};
  ASSERT_TRUE(MergeSelectorArgs(in, &out, &bad));
  EXPECT_EQ(out, (std::vector<std::string>{"on", "(+get ~k)", "(~x +set)", "nopass"}));
  std::vector<std::string> open = {"on", "(+get", "~k"};
  EXPECT_FALSE(MergeSelectorArgs(open, &out, &bad));
  EXPECT_EQ(bad, 1u);
}

TEST(AclRules, ResetAndPubsubDefault) {
  User u = Make({"on", ">p", "~k", "+get"});
  ASSERT_EQ(ApplyUserRule(u, "reset", Cmds(), false), OpStatus::kOk);
  EXPECT_EQ(DescribeUser(u, Cmds()), "off sanitize-payload resetchannels -@all");
  ASSERT_EQ(ApplyUserRule(u, "reset", Cmds(), true), OpStatus::kOk);
  EXPECT_EQ(DescribeUser(u, Cmds()), "off sanitize-payload &* -@all");
}

TEST(AclRules, CategoriesOfASpec) {
  EXPECT_EQ(ParseCategories("@read @string @fast"),
            CategoryFlag("read") | CategoryFlag("string") | CategoryFlag("FAST"));
  EXPECT_EQ(CategoryFlag("nosuch"), 0u);
}

// SORT's question before it follows BY/GET patterns: may some selector that
// allows the command line read every key (acl-v2.tcl "Test sort with ACL
// permissions", with GET standing in for SORT)?
TEST(AclRules, UnrestrictedReadAccess) {
  auto full = [](std::vector<std::string> rules) {
    User u = Make(std::move(rules));
    std::vector<std::string_view> argv = {"get", "mylist"};
    return HasUnrestrictedReadAccess(u, *Table().Find("get"), argv);
  };
  EXPECT_TRUE(HasUnrestrictedReadAccess(DefaultUser(Cmds()), *Table().Find("get"),
                                        std::vector<std::string_view>{"get", "k"}));
  EXPECT_FALSE(full({"on", "+get", "~mylist"}));
  EXPECT_FALSE(full({"on", "+get", "~mylist", "~v*"}));
  EXPECT_FALSE(full({"on", "+get", "~mylist", "%W~*"}));
  EXPECT_TRUE(full({"on", "+get", "~mylist", "%R~*"}));
  EXPECT_TRUE(full({"on", "+get", "allkeys"}));
  // A selector that reads every key but does not allow the command: no.
  EXPECT_FALSE(full({"on", "+get", "~mylist", "(+set ~*)"}));
  EXPECT_TRUE(full({"on", "(+get ~*)"}));
}

TEST(AclLog, GroupsSimilarEventsAndTrims) {
  Log log;
  LogEntry e;
  e.object = "get";
  e.username = "u";
  e.ctime_ms = 1000;
  log.Add(e, 128);
  e.ctime_ms = 2000;
  log.Add(e, 128);
  auto v = log.Newest(10);
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].count, 2u);
  e.ctime_ms = 2000 + 61000;  // too long after: a new entry
  log.Add(e, 128);
  EXPECT_EQ(log.Newest(10).size(), 2u);
  for (int i = 0; i < 10; ++i) {
    e.object = "k" + std::to_string(i);
    log.Add(e, 5);
  }
  v = log.Newest(100);
  ASSERT_EQ(v.size(), 5u);
  EXPECT_EQ(v[0].object, "k9");
  log.Reset();
  EXPECT_TRUE(log.Newest(10).empty());
}

TEST(AclUsers, EpochAndDefault) {
  Users users(&Cmds());
  uint64_t e0 = users.epoch();
  EXPECT_TRUE(users.default_open());
  User d = *users.Default();
  ASSERT_EQ(ApplyUserRule(d, ">secret", Cmds(), false), OpStatus::kOk);
  users.Put(d);
  EXPECT_GT(users.epoch(), e0);
  EXPECT_FALSE(users.default_open());
  users.Put(Make({"on"}));
  EXPECT_EQ(users.All().size(), 2u);
  EXPECT_TRUE(users.Delete("u"));
  EXPECT_FALSE(users.Delete("u"));
}

}  // namespace
}  // namespace larder::acl
