// The Lua runtime alone, against a fake host: the sandbox, the conversions
// both ways and the error forms.
#include "script/lua_runtime.h"

#include <gtest/gtest.h>

#include <map>

namespace larder::script {
namespace {

// Answers redis.call from a table of canned RESP replies by command name.
class FakeHost : public Host {
 public:
  std::map<std::string, std::string> replies;
  std::vector<std::string> calls;
  bool abort = false;
  Outcome Call(std::span<const std::string_view> argv, int, std::string* out) override {
    calls.emplace_back(argv[0]);
    if (abort) return Outcome::kAbort;
    auto it = replies.find(std::string(argv[0]));
    if (it == replies.end()) {
      *out = "ERR Unknown Redis command called from script";
      return Outcome::kError;
    }
    *out = it->second;
    return Outcome::kReply;
  }
  int AclCheck(std::span<const std::string_view>) override { return 1; }
  bool Continue(std::string*) override { return true; }
  void Log(int, std::string_view) override {}
};

class ScriptRuntimeTest : public ::testing::Test {
 protected:
  Runtime rt{Runtime::Kind::kEval, false};
  FakeHost host;
  // Runs body as a script and returns its RESP reply.
  std::string Eval(std::string_view body, int resp = 2) {
    static int n = 0;
    std::string sha = "s" + std::to_string(++n);
    std::string out, err;
    if (!rt.CompileScript(sha, body, &err)) return "-" + err + "\r\n";
    resp::ReplyBuilder rb(&out, resp);
    rt.Run(sha, sha, {}, {}, host, &rb);
    return out;
  }
};

TEST_F(ScriptRuntimeTest, LuaToResp) {
  EXPECT_EQ(Eval("return 'hello'"), "$5\r\nhello\r\n");
  EXPECT_EQ(Eval("return 100.5"), ":100\r\n");
  EXPECT_EQ(Eval("return true"), ":1\r\n");
  EXPECT_EQ(Eval("return false"), "$-1\r\n");
  EXPECT_EQ(Eval("return {ok='fine'}"), "+fine\r\n");
  EXPECT_EQ(Eval("return {err='ERR this is an error'}"), "-ERR this is an error\r\n");
  EXPECT_EQ(Eval("return {1,2,3,'ciao',{1,2}}"), "*5\r\n:1\r\n:2\r\n:3\r\n$4\r\nciao\r\n*2\r\n:1\r\n:2\r\n");
  EXPECT_EQ(Eval("return {1,nil,3}"), "*1\r\n:1\r\n");
  EXPECT_EQ(Eval("return _G"), "*0\r\n");
}

TEST_F(ScriptRuntimeTest, Resp3Values) {
  EXPECT_EQ(Eval("redis.setresp(3); return true", 3), "#t\r\n");
  EXPECT_EQ(Eval("redis.setresp(3); return {double=3.5}", 3), ",3.5\r\n");
  EXPECT_EQ(Eval("return {map={a=1}}", 3), "%1\r\n$1\r\na\r\n:1\r\n");
  EXPECT_EQ(Eval("return {map={a=1}}", 2), "*2\r\n$1\r\na\r\n:1\r\n");
  EXPECT_EQ(Eval("return {big_number='123\\r\\n4'}", 3), "(123  4\r\n");
}

TEST_F(ScriptRuntimeTest, RespToLua) {
  host.replies["get"] = "$3\r\nbar\r\n";
  host.replies["incr"] = ":7\r\n";
  host.replies["set"] = "+OK\r\n";
  host.replies["nil"] = "$-1\r\n";
  host.replies["lrange"] = "*2\r\n$1\r\na\r\n$1\r\nb\r\n";
  host.replies["bad"] = "-WRONGTYPE nope\r\n";
  EXPECT_EQ(Eval("local v = redis.call('get','x'); return {type(v), v}"), "*2\r\n$6\r\nstring\r\n$3\r\nbar\r\n");
  EXPECT_EQ(Eval("local v = redis.call('incr','x'); return {type(v), v}"), "*2\r\n$6\r\nnumber\r\n:7\r\n");
  EXPECT_EQ(Eval("return redis.call('set','x','y')['ok']"), "$2\r\nOK\r\n");
  EXPECT_EQ(Eval("return redis.call('nil') == false"), ":1\r\n");
  EXPECT_EQ(Eval("return #redis.call('lrange')"), ":2\r\n");
  EXPECT_EQ(Eval("return redis.pcall('bad')['err']"), "$14\r\nWRONGTYPE nope\r\n");
  std::string r = Eval("return redis.call('bad')");
  EXPECT_EQ(r.substr(0, 25), "-WRONGTYPE nope script: s");
  EXPECT_NE(r.find(", on @user_script:1.\r\n"), std::string::npos) << r;
}

TEST_F(ScriptRuntimeTest, ErrorsCarryWhere) {
  std::string r = Eval("return a");
  EXPECT_EQ(r.find("-ERR user_script:1: Script attempted to access nonexistent global variable 'a'"), 0u) << r;
  EXPECT_NE(r.find("on @user_script:1."), std::string::npos) << r;
  EXPECT_NE(Eval("a = 10").find("Attempt to modify a readonly table"), std::string::npos);
  EXPECT_NE(Eval("redis.call = function() end").find("Attempt to modify a readonly table"), std::string::npos);
  EXPECT_NE(Eval("setmetatable(_G, {})").find("Attempt to modify a readonly table"), std::string::npos);
  EXPECT_NE(Eval("local g = getmetatable(_G); g.__index = {}").find("Attempt to modify a readonly table"),
            std::string::npos);
  EXPECT_NE(Eval("print('x')").find("nonexistent global variable 'print'"), std::string::npos);
  EXPECT_NE(Eval("return redis.call()").find("Please specify at least one argument"), std::string::npos);
  EXPECT_EQ(Eval("return redis.error_reply('MY_CODE custom')"), "-MY_CODE custom\r\n");
  EXPECT_EQ(Eval("return redis.status_reply('FINE')"), "+FINE\r\n");
  EXPECT_EQ(Eval("return redis.sha1hex('')"), "$40\r\nda39a3ee5e6b4b0d3255bfef95601890afd80709\r\n");
  EXPECT_EQ(Eval("return 'x' --c"), "$1\r\nx\r\n");
  EXPECT_EQ(Eval("return loadstring(string.dump(function() return 1 end))").substr(0, 4), "$-1\r");
}

TEST_F(ScriptRuntimeTest, AbortIsNotCatchable) {
  host.abort = true;
  std::string out;
  std::string err;
  ASSERT_TRUE(rt.CompileScript("ab", "pcall(redis.call, 'get', 'x'); return 'caught'", &err));
  resp::ReplyBuilder rb(&out, 2);
  EXPECT_FALSE(rt.Run("ab", "ab", {}, {}, host, &rb));
  EXPECT_EQ(out, "");
}

TEST_F(ScriptRuntimeTest, Modules) {
  EXPECT_EQ(Eval("local e = cmsgpack.pack(0.1); local h = '' for i = 1, #e do h = h .. string.format('%02x', "
                 "string.byte(e, i)) end return h"),
            "$18\r\ncb3fb999999999999a\r\n");
  EXPECT_EQ(Eval("local e = cmsgpack.pack(-1099511627776); local h = '' for i = 1, #e do h = h .. "
                 "string.format('%02x', string.byte(e, i)) end return h"),
            "$18\r\nd3ffffff0000000000\r\n");
  EXPECT_EQ(Eval("return cmsgpack.unpack(cmsgpack.pack({1,2,{a='b'}}))[3].a"), "$1\r\nb\r\n");
  EXPECT_EQ(Eval("return cjson.decode('[1,2]')[2]"), ":2\r\n");
  EXPECT_EQ(Eval("return bit.bor(1,2,4)"), ":7\r\n");
  EXPECT_EQ(Eval("return {struct.unpack('>I2', struct.pack('>I2', 258))}"), "*2\r\n:258\r\n:3\r\n");
  EXPECT_EQ(Eval("return bit.tohex(65535, -2147483648)"), "$8\r\n0000FFFF\r\n");
}

TEST(ScriptShebangTest, Flags) {
  uint32_t flags;
  size_t skip;
  std::string err;
  EXPECT_TRUE(ParseShebang("return 1", &flags, &skip, &err));
  EXPECT_EQ(flags, kFlagEvalCompat);
  EXPECT_TRUE(ParseShebang("#!lua flags=no-writes,allow-oom\nreturn 1", &flags, &skip, &err));
  EXPECT_EQ(flags, kFlagNoWrites | kFlagAllowOom);
  EXPECT_EQ(skip, 31u);
  EXPECT_FALSE(ParseShebang("#!lua flags=what?\nreturn 1", &flags, &skip, &err));
  EXPECT_EQ(err, "ERR Unexpected flag in script shebang: what?");
  EXPECT_FALSE(ParseShebang("#!not-lua\nreturn 1", &flags, &skip, &err));
  EXPECT_EQ(err, "ERR Unexpected engine in script shebang: #!not-lua");
}

TEST(ScriptLibraryTest, RegisterFunctions) {
  Runtime rt(Runtime::Kind::kFunction, false);
  std::vector<Runtime::Function> fns;
  std::string err;
  ASSERT_TRUE(rt.LoadLibrary("redis.register_function('f1', function(k, a) return a[1] end)\n"
                             "redis.register_function{function_name='f2', callback=function() return 2 end, "
                             "flags={'no-writes'}, description='two'}",
                             &fns, &err))
      << err;
  ASSERT_EQ(fns.size(), 2u);
  EXPECT_TRUE(rt.HasFunction("f1"));
  FakeHost host;
  std::string out;
  resp::ReplyBuilder rb(&out, 2);
  std::vector<std::string_view> args{"x"};
  rt.Run("f1", "f1", {}, args, host, &rb);
  EXPECT_EQ(out, "$1\r\nx\r\n");
  fns.clear();
  EXPECT_FALSE(rt.LoadLibrary("return math.random()", &fns, &err));
  EXPECT_NE(err.find("nonexistent global variable 'math'"), std::string::npos) << err;
  EXPECT_FALSE(rt.LoadLibrary("return redis.call('ping')", &fns, &err));
  EXPECT_NE(err.find("nonexistent global variable 'call'"), std::string::npos) << err;
  EXPECT_FALSE(rt.LoadLibrary("return 1", &fns, &err));
  EXPECT_EQ(err, "ERR No functions registered");
}

}  // namespace
}  // namespace larder::script
