// The Lua runtime: the sandbox, the redis.* API and the conversions between
// Lua values and RESP (Redis 7.0's rules).
//
// Lua → RESP (a script's return value):
//   string → bulk; number → integer (truncated); true → :1 (RESP3 script:
//   #t), false → null (RESP3 script: #f); nil → null; a table with a string
//   field err → error, ok → status, double → double, big_number → big
//   number, map → map, set → set, verbatim_string → verbatim; any other
//   table → array of t[1], t[2], ... up to the first nil. Fields are read
//   raw (no metamethod runs while a reply is written).
// RESP → Lua (what redis.call returns), in the script's protocol (setresp):
//   integer → number; bulk → string; null bulk / null array → false;
//   status → {ok=s}; error → {err=s}; array → table; RESP3 only: map →
//   {map={k=v}}, set → {set={m=true}}, null → nil, double → {double=n}, boolean →
//   boolean, big number → {big_number=s}, verbatim → {verbatim_string=
//   {format=f, string=s}}; attributes are skipped.
//
// Errors: every error that ends a run is a table {err=..., source, line}
// (the message handler adds where it was raised, a string error becomes
// {err="ERR <string>"}); the reply is "<err> script: <name>, on
// <source>:<line>." An error that came from a command's reply (counted in
// errorstats when the command replied) is marked so that it is not
// counted again.
#include "script/lua_runtime.h"

#include "common/version.h"

extern "C" {
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <lua5.1/lua-bitop.h>
#include <lua5.1/lua-cjson.h>
}

#include <charconv>
#include <cmath>
#include <cstring>
#include <deque>

#include "common/clock.h"
#include "common/sha1.h"
#include "common/status.h"
#include "script/lua_modules.h"

namespace larder::script {

namespace {

constexpr const char* kRuntimeKey = "__larder_runtime";
constexpr const char* kReadonlySetKey = "__larder_readonly";
constexpr const char* kFunctionsKey = "__larder_functions";
constexpr const char* kHandlerKey = "__larder_err_handler";
constexpr const char* kRegisteredKey = "__larder_registered";
constexpr int kHookEvery = 100000;

std::string Fmt(OpStatus s) { return FormatError(s); }

}  // namespace

struct Runtime::State {
  lua_State* L = nullptr;
  Kind kind;
  int real_globals = LUA_NOREF;    // the real global table
  int load_globals = LUA_NOREF;    // what a library sees while it loads
  bool loading = false;            // a library is loading (FUNCTION LOAD)
  int64_t load_deadline_ms = 0;
  // The current run.
  Host* host = nullptr;
  int resp = 2;
  bool aborted = false;     // the host stopped the run: nothing may catch it
  std::string abort_error;  // the error line a kill ends the run with
  std::string scratch;
};

namespace {

Runtime::State* StateOf(lua_State* L) {
  lua_getfield(L, LUA_REGISTRYINDEX, kRuntimeKey);
  auto* st = static_cast<Runtime::State*>(lua_touserdata(L, -1));
  lua_pop(L, 1);
  return st;
}

// ---- errors ----

// Pushes {err = "<CODE> <msg>"} as Redis builds it from an error line:
// "-CODE msg" keeps its code, any other text gets ERR.
void PushErrorTable(lua_State* L, std::string_view line, bool counted = false) {
  std::string code, msg;
  if (!line.empty() && line[0] == '-') {
    size_t sp = line.find(' ');
    if (sp == std::string_view::npos) {
      code = "ERR";
      msg = std::string(line.substr(1));
    } else {
      code = std::string(line.substr(1, sp - 1));
      msg = std::string(line.substr(sp + 1));
    }
  } else {
    code = "ERR";
    msg = std::string(line);
  }
  while (!msg.empty() && (msg.back() == '\r' || msg.back() == '\n')) msg.pop_back();
  while (!msg.empty() && (msg.front() == '\r' || msg.front() == '\n')) msg.erase(0, 1);
  std::string full = code + " " + msg;
  lua_newtable(L);
  lua_pushlstring(L, full.data(), full.size());
  lua_setfield(L, -2, "err");
  if (counted) {
    lua_pushboolean(L, 1);
    lua_setfield(L, -2, "ignore_error_stats_update");
  }
}

// An error line from a command's reply or a refusal ("ERR ...", no '-').
void PushReplyError(lua_State* L, std::string_view line, bool counted) {
  std::string dashed = "-" + std::string(line);
  PushErrorTable(L, dashed, counted);
}

[[noreturn]] void RaiseTable(lua_State* L) {
  lua_error(L);
  __builtin_unreachable();
}

// Pushes a C++ string. Raising functions push their message in a statement
// of its own: lua_error longjmps past C++ frames, so a temporary std::string
// still alive when it raises would never be freed.
void PushString(lua_State* L, const std::string& s) { lua_pushlstring(L, s.data(), s.size()); }

// A plain-string error with the position of the Lua code that caused it
// (level 1: the Lua function that called the C function raising).
int RaiseWhere(lua_State* L, OpStatus status) {
  luaL_where(L, 1);
  PushString(L, Fmt(status));
  lua_concat(L, 2);
  return lua_error(L);
}

// The message handler of every run: makes the error a table and notes
// where it was raised (the Lua function, skipping a C function in between).
int ErrorHandler(lua_State* L) {
  lua_Debug ar;
  bool have = lua_getstack(L, 1, &ar) && lua_getinfo(L, "nSl", &ar);
  if (have && std::strcmp(ar.what, "C") == 0) have = lua_getstack(L, 2, &ar) && lua_getinfo(L, "nSl", &ar);
  if (!lua_istable(L, 1)) {
    std::string text;
    if (lua_isstring(L, 1)) {
      size_t n;
      const char* s = lua_tolstring(L, 1, &n);
      text.assign(s, n);
    } else if (lua_isnil(L, 1)) {
      text = "nil";
    } else if (lua_isboolean(L, 1)) {
      text = lua_toboolean(L, 1) ? "true" : "false";
    } else {
      char buf[64];
      std::snprintf(buf, sizeof buf, "%s: %p", luaL_typename(L, 1), lua_topointer(L, 1));
      text = buf;
    }
    lua_settop(L, 0);
    lua_newtable(L);
    std::string full = "ERR " + text;
    lua_pushlstring(L, full.data(), full.size());
    lua_setfield(L, -2, "err");
  }
  if (have) {
    lua_pushstring(L, ar.source);
    lua_setfield(L, 1, "source");
    lua_pushinteger(L, ar.currentline);
    lua_setfield(L, 1, "line");
  }
  lua_settop(L, 1);
  return 1;
}

// ---- read-only tables and protected globals ----

int ReadonlyError(lua_State* L) { return RaiseWhere(L, OpStatus::kScriptReadonlyTable); }

void MarkReadonly(lua_State* L, int idx) {
  idx = idx < 0 ? lua_gettop(L) + idx + 1 : idx;
  lua_getfield(L, LUA_REGISTRYINDEX, kReadonlySetKey);
  lua_pushvalue(L, idx);
  lua_pushboolean(L, 1);
  lua_rawset(L, -3);
  lua_pop(L, 1);
}

bool IsReadonly(lua_State* L, int idx) {
  idx = idx < 0 ? lua_gettop(L) + idx + 1 : idx;
  lua_getfield(L, LUA_REGISTRYINDEX, kReadonlySetKey);
  lua_pushvalue(L, idx);
  lua_rawget(L, -2);
  bool ro = lua_toboolean(L, -1);
  lua_pop(L, 2);
  return ro;
}

// Replaces the table on the top of the stack with a read-only view of it:
// an empty table whose reads go to it and whose writes fail; its
// metatable is hidden behind another such view.
void PushReadonlyView(lua_State* L) {
  int real = lua_gettop(L);
  lua_newtable(L);  // the view
  int view = lua_gettop(L);
  lua_newtable(L);  // its metatable
  int mt = view + 1;
  lua_pushvalue(L, real);
  lua_setfield(L, mt, "__index");
  lua_pushcfunction(L, ReadonlyError);
  lua_setfield(L, mt, "__newindex");
  // What getmetatable() shows: {__index = <the view>}, itself read-only.
  lua_newtable(L);
  lua_pushvalue(L, view);
  lua_setfield(L, -2, "__index");
  lua_newtable(L);  // view of that shown table
  lua_newtable(L);
  lua_pushvalue(L, -3);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, ReadonlyError);
  lua_setfield(L, -2, "__newindex");
  lua_pushboolean(L, 0);
  lua_setfield(L, -2, "__metatable");
  lua_setmetatable(L, -2);
  MarkReadonly(L, -1);
  lua_setfield(L, mt, "__metatable");
  lua_pop(L, 1);  // the shown table (kept by its view)
  lua_setmetatable(L, view);
  MarkReadonly(L, view);
  lua_replace(L, real);
  lua_settop(L, real);
}

// "Script attempted to access nonexistent global variable 'name'", with
// the position (the message is pushed before the raise: no C++ string may
// outlive a longjmp).
int RaiseNonexistentGlobal(lua_State* L) {
  const char* name = lua_isstring(L, 2) ? lua_tostring(L, 2) : "?";
  luaL_where(L, 1);
  PushString(L, FormatError(OpStatus::kScriptNonexistentGlobal, name));
  lua_concat(L, 2);
  return lua_error(L);
}

// __index of the globals: the real table (or, while a library loads, the
// load table), an error for a name that is in neither.
int GlobalsIndex(lua_State* L) {
  Runtime::State* st = StateOf(L);
  lua_rawgeti(L, LUA_REGISTRYINDEX, st->loading ? st->load_globals : st->real_globals);
  lua_pushvalue(L, 2);
  lua_rawget(L, -2);
  if (!lua_isnil(L, -1)) return 1;
  return RaiseNonexistentGlobal(L);
}

// A table whose missing fields are errors like missing globals (the
// library's `redis` table while it loads).
int ProtectedIndex(lua_State* L) { return RaiseNonexistentGlobal(L); }

// The same error raised from inside a library function (no position, as
// Redis's VM reports it).
int ReadonlyErrorPlain(lua_State* L) {
  lua_pushstring(L, Fmt(OpStatus::kScriptReadonlyTable).c_str());
  return lua_error(L);
}

int SafeSetmetatable(lua_State* L) {
  if (lua_istable(L, 1) && IsReadonly(L, 1)) return ReadonlyErrorPlain(L);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
  return lua_gettop(L);
}

int SafeRawset(lua_State* L) {
  if (lua_istable(L, 1) && IsReadonly(L, 1)) return ReadonlyErrorPlain(L);
  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_checkany(L, 2);
  luaL_checkany(L, 3);
  lua_settop(L, 3);
  lua_rawset(L, 1);
  return 1;
}

// loadstring without precompiled chunks (string.dump output).
int SafeLoadstring(lua_State* L) {
  size_t n;
  const char* s = luaL_checklstring(L, 1, &n);
  if (n > 0 && s[0] == LUA_SIGNATURE[0]) {
    lua_pushnil(L);
    lua_pushstring(L, "binary chunks are not allowed");
    return 2;
  }
  const char* name = luaL_optstring(L, 2, s);
  if (luaL_loadbuffer(L, s, n, name) == 0) return 1;
  lua_pushnil(L);
  lua_insert(L, -2);
  return 2;
}

// ---- RESP reply → Lua ----

class ReplyReader {
 public:
  ReplyReader(lua_State* L, std::string_view in) : L_(L), in_(in) {}
  // Pushes one value; false on a malformed reply (pushes nothing more).
  bool Read() {
    if (!lua_checkstack(L_, 5)) return false;
    if (pos_ >= in_.size()) return false;
    char t = in_[pos_++];
    std::string_view line;
    if (!Line(&line)) return false;
    switch (t) {
      case ':': {
        int64_t v = 0;
        std::from_chars(line.data(), line.data() + line.size(), v);
        lua_pushnumber(L_, static_cast<lua_Number>(v));
        return true;
      }
      case '+':
        lua_newtable(L_);
        lua_pushlstring(L_, line.data(), line.size());
        lua_setfield(L_, -2, "ok");
        return true;
      case '-':
        PushReplyError(L_, line, true);
        return true;
      case '$':
      case '=':
      case '!': {
        int64_t n = -1;
        std::from_chars(line.data(), line.data() + line.size(), n);
        if (n < 0) {
          lua_pushboolean(L_, 0);
          return true;
        }
        if (pos_ + static_cast<size_t>(n) + 2 > in_.size()) return false;
        std::string_view s = in_.substr(pos_, static_cast<size_t>(n));
        pos_ += static_cast<size_t>(n) + 2;
        if (t == '$') {
          lua_pushlstring(L_, s.data(), s.size());
        } else if (t == '!') {
          PushReplyError(L_, s, true);
        } else {
          lua_newtable(L_);
          lua_newtable(L_);
          std::string_view fmt = s.substr(0, std::min<size_t>(3, s.size()));
          lua_pushlstring(L_, fmt.data(), fmt.size());
          lua_setfield(L_, -2, "format");
          std::string_view body = s.size() > 4 ? s.substr(4) : std::string_view();
          lua_pushlstring(L_, body.data(), body.size());
          lua_setfield(L_, -2, "string");
          lua_setfield(L_, -2, "verbatim_string");
        }
        return true;
      }
      case '*':
      case '~':
      case '>': {
        int64_t n = -1;
        std::from_chars(line.data(), line.data() + line.size(), n);
        if (n < 0) {
          lua_pushboolean(L_, 0);
          return true;
        }
        lua_newtable(L_);
        if (t == '~') {  // {set = {member = true, ...}}
          lua_newtable(L_);
          for (int64_t i = 0; i < n; ++i) {
            if (!Read()) return false;
            lua_pushboolean(L_, 1);
            lua_settable(L_, -3);
          }
          lua_setfield(L_, -2, "set");
          return true;
        }
        for (int64_t i = 0; i < n; ++i) {
          {
            lua_pushnumber(L_, static_cast<lua_Number>(i + 1));
            if (!Read()) return false;
            lua_settable(L_, -3);
          }
        }
        return true;
      }
      case '%': {
        int64_t n = 0;
        std::from_chars(line.data(), line.data() + line.size(), n);
        lua_newtable(L_);  // {map = {key = value, ...}}
        lua_newtable(L_);
        for (int64_t i = 0; i < n; ++i) {
          if (!Read() || !Read()) return false;
          lua_settable(L_, -3);
        }
        lua_setfield(L_, -2, "map");
        return true;
      }
      case '|': {  // attributes: read and drop, then the real reply
        int64_t n = 0;
        std::from_chars(line.data(), line.data() + line.size(), n);
        for (int64_t i = 0; i < 2 * n; ++i) {
          if (!Read()) return false;
          lua_pop(L_, 1);
        }
        return Read();
      }
      case '_':
        lua_pushnil(L_);
        return true;
      case ',': {
        lua_newtable(L_);
        std::string s(line);
        double d = std::strtod(s.c_str(), nullptr);
        if (s == "inf") d = HUGE_VAL;
        else if (s == "-inf") d = -HUGE_VAL;
        lua_pushnumber(L_, d);
        lua_setfield(L_, -2, "double");
        return true;
      }
      case '#':
        lua_pushboolean(L_, !line.empty() && line[0] == 't');
        return true;
      case '(':
        lua_newtable(L_);
        lua_pushlstring(L_, line.data(), line.size());
        lua_setfield(L_, -2, "big_number");
        return true;
      default: return false;
    }
  }

 private:
  bool Line(std::string_view* line) {
    size_t e = in_.find("\r\n", pos_);
    if (e == std::string_view::npos) return false;
    *line = in_.substr(pos_, e - pos_);
    pos_ = e + 2;
    return true;
  }
  lua_State* L_;
  std::string_view in_;
  size_t pos_ = 0;
};

// ---- Lua → RESP ----

// \r and \n become spaces (a status or error line must stay one line).
std::string OneLine(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c == '\r' || c == '\n') c = ' ';
  return out;
}

// The string field `name` of the table at the top, read raw.
bool RawStringField(lua_State* L, const char* name, std::string* out) {
  lua_pushstring(L, name);
  lua_rawget(L, -2);
  bool ok = lua_type(L, -1) == LUA_TSTRING;
  if (ok) {
    size_t n;
    const char* s = lua_tolstring(L, -1, &n);
    out->assign(s, n);
  }
  lua_pop(L, 1);
  return ok;
}

// Writes the value at the top of the stack and pops it.
void WriteReply(lua_State* L, int script_resp, resp::ReplyBuilder* rb) {
  if (!lua_checkstack(L, 4)) {
    rb->Error(Fmt(OpStatus::kScriptStackLimit));
    lua_pop(L, 1);
    return;
  }
  switch (lua_type(L, -1)) {
    case LUA_TSTRING: {
      size_t n;
      const char* s = lua_tolstring(L, -1, &n);
      rb->Bulk(std::string_view(s, n));
      break;
    }
    case LUA_TBOOLEAN:
      if (script_resp == 2) {
        if (lua_toboolean(L, -1)) rb->Integer(1);
        else rb->Null();
      } else {
        rb->Bool(lua_toboolean(L, -1));
      }
      break;
    case LUA_TNUMBER: rb->Integer(static_cast<int64_t>(lua_tonumber(L, -1))); break;
    case LUA_TTABLE: {
      std::string s;
      if (RawStringField(L, "err", &s)) {
        lua_pushstring(L, "ignore_error_stats_update");
        lua_rawget(L, -2);
        bool counted = lua_toboolean(L, -1);
        lua_pop(L, 1);
        std::string line = OneLine(s);
        if (counted) rb->ErrorCounted(line);
        else rb->Error(line);
        break;
      }
      if (RawStringField(L, "ok", &s)) {
        rb->SimpleString(OneLine(s));
        break;
      }
      lua_pushstring(L, "double");
      lua_rawget(L, -2);
      if (lua_type(L, -1) == LUA_TNUMBER) {
        rb->Double(lua_tonumber(L, -1));
        lua_pop(L, 1);
        break;
      }
      lua_pop(L, 1);
      if (RawStringField(L, "big_number", &s)) {
        s = OneLine(s);
        if (rb->protocol() >= 3) rb->Raw("(" + s + "\r\n");
        else rb->Bulk(s);
        break;
      }
      lua_pushstring(L, "map");
      lua_rawget(L, -2);
      if (lua_type(L, -1) == LUA_TTABLE) {
        std::string buf;
        size_t n = 0;
        {
          resp::ReplyBuilder inner(&buf, rb->protocol());
          lua_pushnil(L);
          while (lua_next(L, -2)) {
            lua_pushvalue(L, -2);  // key copy on top
            WriteReply(L, script_resp, &inner);
            WriteReply(L, script_resp, &inner);
            ++n;
          }
        }
        rb->MapHeader(n);
        rb->Raw(buf);
        lua_pop(L, 1);
        break;
      }
      lua_pop(L, 1);
      lua_pushstring(L, "set");
      lua_rawget(L, -2);
      if (lua_type(L, -1) == LUA_TTABLE) {
        std::string buf;
        size_t n = 0;
        {
          resp::ReplyBuilder inner(&buf, rb->protocol());
          lua_pushnil(L);
          while (lua_next(L, -2)) {
            lua_pop(L, 1);
            lua_pushvalue(L, -1);
            WriteReply(L, script_resp, &inner);
            ++n;
          }
        }
        rb->SetHeader(n);
        rb->Raw(buf);
        lua_pop(L, 1);
        break;
      }
      lua_pop(L, 1);
      lua_pushstring(L, "verbatim_string");
      lua_rawget(L, -2);
      if (lua_type(L, -1) == LUA_TTABLE) {
        std::string fmt, str;
        bool a = RawStringField(L, "format", &fmt);
        bool b = RawStringField(L, "string", &str);
        lua_pop(L, 1);
        if (a && b) {
          rb->Verbatim(str, fmt);
          break;
        }
      } else {
        lua_pop(L, 1);
      }
      // An array: t[1], t[2] ... up to the first nil.
      std::string buf;
      size_t n = 0;
      {
        resp::ReplyBuilder inner(&buf, rb->protocol());
        for (int j = 1;; ++j) {
          lua_rawgeti(L, -1, j);
          if (lua_isnil(L, -1)) {
            lua_pop(L, 1);
            break;
          }
          WriteReply(L, script_resp, &inner);
          ++n;
        }
      }
      rb->ArrayHeader(n);
      rb->Raw(buf);
      break;
    }
    default: rb->Null(); break;
  }
  lua_pop(L, 1);
}

// ---- redis.* ----

// The arguments of redis.call/pcall as strings; false (error table pushed)
// when one is neither a string nor a number.
bool ArgsOf(lua_State* L, std::vector<std::string>* out) {
  int argc = lua_gettop(L);
  if (argc == 0) {
    PushErrorTable(L, Fmt(OpStatus::kScriptCallNoArgs));
    return false;
  }
  out->clear();
  out->reserve(static_cast<size_t>(argc));
  for (int i = 1; i <= argc; ++i) {
    int t = lua_type(L, i);
    if (t == LUA_TNUMBER) {
      char buf[64];
      double d = lua_tonumber(L, i);
      auto r = std::to_chars(buf, buf + sizeof buf, d);
      out->emplace_back(buf, r.ptr);
    } else if (t == LUA_TSTRING) {
      size_t n;
      const char* s = lua_tolstring(L, i, &n);
      out->emplace_back(s, n);
    } else {
      PushErrorTable(L, Fmt(OpStatus::kScriptCallArgType));
      return false;
    }
  }
  return true;
}

void Hook(lua_State* L, lua_Debug*);

// Ends the run: raises now, and (the hook at every instruction) again
// after any pcall that catches it, until the run is out.
[[noreturn]] void RaiseAbort(lua_State* L, Runtime::State* st) {
  lua_sethook(L, Hook, LUA_MASKCOUNT, 1);
  PushReplyError(L, st->abort_error.empty() ? "ERR script stopped" : st->abort_error, false);
  RaiseTable(L);
}

// What a redis.call/pcall does once its C++ state is gone: lua_error
// longjmps past C++ frames, so nothing with a destructor may be alive when
// it raises (CallHost's vectors and strings end before GenericCall raises).
enum class AfterCall { kReturn, kRaise, kAbort };

AfterCall CallHost(lua_State* L, Runtime::State* st, bool raise) {
  std::vector<std::string> args;
  if (!ArgsOf(L, &args)) return raise ? AfterCall::kRaise : AfterCall::kReturn;
  std::vector<std::string_view> argv(args.begin(), args.end());
  std::string out;
  Host::Outcome o = st->host->Call(argv, st->resp, &out);
  if (o == Host::Outcome::kAbort || st->aborted) {
    st->aborted = true;
    return AfterCall::kAbort;  // uncatchable from here on
  }
  lua_settop(L, 0);
  if (o == Host::Outcome::kError) {
    PushReplyError(L, out, true);  // the host counted it
    return raise ? AfterCall::kRaise : AfterCall::kReturn;
  }
  ReplyReader reader(L, out);
  if (!reader.Read()) {
    lua_settop(L, 0);
    PushReplyError(L, Fmt(OpStatus::kScriptStackLimit), false);
    return AfterCall::kRaise;
  }
  if (raise && lua_istable(L, -1)) {
    lua_getfield(L, -1, "err");
    bool is_err = lua_isstring(L, -1);
    lua_pop(L, 1);
    if (is_err) return AfterCall::kRaise;
  }
  return AfterCall::kReturn;
}

int GenericCall(lua_State* L, bool raise) {
  Runtime::State* st = StateOf(L);
  if (st->aborted) RaiseAbort(L, st);
  if (!st->host) {
    PushErrorTable(L, Fmt(OpStatus::kScriptCallOutsideRun));
    RaiseTable(L);
  }
  switch (CallHost(L, st, raise)) {
    case AfterCall::kReturn: return 1;
    case AfterCall::kRaise: RaiseTable(L);
    case AfterCall::kAbort: RaiseAbort(L, st);
  }
  return 1;
}

int RedisCall(lua_State* L) { return GenericCall(L, true); }
int RedisPcall(lua_State* L) { return GenericCall(L, false); }

int RedisSha1hex(lua_State* L) {
  if (lua_gettop(L) != 1) {
    PushErrorTable(L, Fmt(OpStatus::kScriptWrongArgs));
    RaiseTable(L);
  }
  size_t n;
  const char* s = lua_tolstring(L, 1, &n);
  std::string hex = HexDigest(Sha1::Of(s ? std::string_view(s, n) : std::string_view()));
  lua_pushlstring(L, hex.data(), hex.size());
  return 1;
}

int RedisErrorReply(lua_State* L) {
  if (lua_gettop(L) != 1 || lua_type(L, -1) != LUA_TSTRING) {
    PushErrorTable(L, Fmt(OpStatus::kScriptErrorReplyArg));
    RaiseTable(L);
  }
  size_t n;
  const char* s = lua_tolstring(L, 1, &n);
  std::string line(s, n);
  if (line.empty() || line[0] != '-') line.insert(line.begin(), '-');
  PushErrorTable(L, line);
  return 1;
}

int RedisStatusReply(lua_State* L) {
  if (lua_gettop(L) != 1 || lua_type(L, -1) != LUA_TSTRING) {
    PushErrorTable(L, Fmt(OpStatus::kScriptStatusReplyArg));
    RaiseTable(L);
  }
  lua_newtable(L);
  lua_pushvalue(L, 1);
  lua_setfield(L, -2, "ok");
  return 1;
}

int RedisLog(lua_State* L) {
  int argc = lua_gettop(L);
  if (argc < 2) {
    PushErrorTable(L, Fmt(OpStatus::kScriptLogArgs));
    RaiseTable(L);
  }
  if (!lua_isnumber(L, 1)) {
    PushErrorTable(L, Fmt(OpStatus::kScriptLogLevelType));
    RaiseTable(L);
  }
  int level = static_cast<int>(lua_tonumber(L, 1));
  if (level < 0 || level > 3) {
    PushErrorTable(L, Fmt(OpStatus::kScriptLogLevel));
    RaiseTable(L);
  }
  std::string msg;
  for (int i = 2; i <= argc; ++i) {
    size_t n;
    const char* s = lua_tolstring(L, i, &n);
    if (!s) continue;
    if (!msg.empty()) msg.push_back(' ');
    msg.append(s, n);
  }
  Runtime::State* st = StateOf(L);
  if (st->host) st->host->Log(level, msg);
  return 0;
}

int RedisSetresp(lua_State* L) {
  Runtime::State* st = StateOf(L);
  if (lua_gettop(L) != 1) {
    PushErrorTable(L, Fmt(OpStatus::kScriptSetrespArgs));
    RaiseTable(L);
  }
  int v = static_cast<int>(lua_tonumber(L, 1));
  if (v != 2 && v != 3) {
    PushErrorTable(L, Fmt(OpStatus::kScriptSetrespValue));
    RaiseTable(L);
  }
  st->resp = v;
  return 0;
}

int RedisSetRepl(lua_State* L) {
  if (lua_gettop(L) != 1) {
    PushErrorTable(L, Fmt(OpStatus::kScriptSetReplArgs));
    RaiseTable(L);
  }
  int v = static_cast<int>(lua_tonumber(L, 1));
  if (v < 0 || v > 3) {
    PushErrorTable(L, Fmt(OpStatus::kScriptSetReplValue));
    RaiseTable(L);
  }
  return 0;
}

int RedisTrue(lua_State* L) {
  lua_pushboolean(L, 1);
  return 1;
}
int RedisFalse(lua_State* L) {
  lua_pushboolean(L, 0);
  return 1;
}
int RedisNothing(lua_State*) { return 0; }

int RedisAclCheck(lua_State* L) {
  Runtime::State* st = StateOf(L);
  std::vector<std::string> args;
  if (!ArgsOf(L, &args)) RaiseTable(L);
  std::vector<std::string_view> argv(args.begin(), args.end());
  int r = st->host ? st->host->AclCheck(argv) : -1;
  if (r < 0) {
    PushErrorTable(L, Fmt(OpStatus::kScriptAclCheckInvalid));
    RaiseTable(L);
  }
  lua_pushboolean(L, r == 1);
  return 1;
}

// ---- redis.register_function ----

bool ValidName(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_')) return false;
  return true;
}

// Reads a flags table at `idx`; false on an unknown flag.
bool ReadFlags(lua_State* L, int idx, uint32_t* flags) {
  *flags = 0;
  for (int j = 1;; ++j) {
    lua_rawgeti(L, idx, j);
    if (lua_isnil(L, -1)) {
      lua_pop(L, 1);
      return true;
    }
    if (!lua_isstring(L, -1)) {
      lua_pop(L, 1);
      return false;
    }
    std::string f = lua_tostring(L, -1);
    lua_pop(L, 1);
    for (char& c : f) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (f == "no-writes") *flags |= kFlagNoWrites;
    else if (f == "allow-oom") *flags |= kFlagAllowOom;
    else if (f == "allow-stale") *flags |= kFlagAllowStale;
    else if (f == "no-cluster") *flags |= kFlagNoCluster;
    else if (f == "allow-cross-slot-keys") *flags |= kFlagAllowCrossSlot;
    else return false;
  }
}

[[noreturn]] void RegisterError(lua_State* L, OpStatus s) {
  lua_settop(L, 0);
  PushErrorTable(L, Fmt(s));
  RaiseTable(L);
}

int RegisterFunction(lua_State* L) {
  Runtime::State* st = StateOf(L);
  if (!st->loading) RegisterError(L, OpStatus::kScriptRegisterOnlyLoad);
  int argc = lua_gettop(L);
  Runtime::Function fn;
  if (argc == 1) {
    if (!lua_istable(L, 1)) RegisterError(L, OpStatus::kScriptRegisterSingleArg);
    bool have_cb = false;
    lua_pushnil(L);
    while (lua_next(L, 1)) {
      if (lua_type(L, -2) != LUA_TSTRING) RegisterError(L, OpStatus::kScriptRegisterKeyType);
      std::string key = lua_tostring(L, -2);
      if (key == "function_name") {
        if (lua_type(L, -1) != LUA_TSTRING) RegisterError(L, OpStatus::kScriptRegisterNameType);
        size_t n;
        const char* name = lua_tolstring(L, -1, &n);
        fn.name.assign(name, n);
      } else if (key == "description") {
        if (lua_type(L, -1) != LUA_TSTRING) RegisterError(L, OpStatus::kScriptRegisterDescType);
        fn.description = lua_tostring(L, -1);
        fn.has_description = true;
      } else if (key == "callback") {
        if (!lua_isfunction(L, -1)) RegisterError(L, OpStatus::kScriptRegisterCallbackType);
        have_cb = true;
      } else if (key == "flags") {
        if (!lua_istable(L, -1)) RegisterError(L, OpStatus::kScriptRegisterFlagsType);
        if (!ReadFlags(L, lua_gettop(L), &fn.flags)) RegisterError(L, OpStatus::kScriptRegisterUnknownFlag);
      } else {
        RegisterError(L, OpStatus::kScriptRegisterUnknownArg);
      }
      lua_pop(L, 1);
    }
    if (fn.name.empty() && !lua_istable(L, 1)) RegisterError(L, OpStatus::kScriptRegisterNoName);
    lua_getfield(L, 1, "function_name");
    bool has_name = !lua_isnil(L, -1);
    lua_pop(L, 1);
    if (!has_name) RegisterError(L, OpStatus::kScriptRegisterNoName);
    if (!have_cb) RegisterError(L, OpStatus::kScriptRegisterNoCallback);
    lua_getfield(L, 1, "callback");
  } else if (argc == 2) {
    if (lua_type(L, 1) != LUA_TSTRING) RegisterError(L, OpStatus::kScriptRegisterFirstArg);
    if (!lua_isfunction(L, 2)) RegisterError(L, OpStatus::kScriptRegisterSecondArg);
    size_t n;
    const char* name = lua_tolstring(L, 1, &n);
    fn.name.assign(name, n);
    lua_pushvalue(L, 2);
  } else {
    RegisterError(L, OpStatus::kScriptRegisterArgs);
  }
  // The callback is on the top.
  if (!ValidName(fn.name)) RegisterError(L, OpStatus::kFunctionNameInvalid);
  lua_getfield(L, LUA_REGISTRYINDEX, kRegisteredKey);
  lua_getfield(L, -1, fn.name.c_str());
  bool dup = !lua_isnil(L, -1);
  lua_pop(L, 1);
  if (dup) RegisterError(L, OpStatus::kFunctionExistsInLibrary);
  // registered[name] = {callback, description, flags}
  lua_newtable(L);
  lua_pushvalue(L, -3);
  lua_setfield(L, -2, "callback");
  lua_pushlstring(L, fn.description.data(), fn.description.size());
  lua_setfield(L, -2, "description");
  lua_pushboolean(L, fn.has_description);
  lua_setfield(L, -2, "has_description");
  lua_pushnumber(L, fn.flags);
  lua_setfield(L, -2, "flags");
  lua_setfield(L, -2, fn.name.c_str());
  lua_pop(L, 2);
  return 0;
}

// ---- the hook ----

void Hook(lua_State* L, lua_Debug*) {
  Runtime::State* st = StateOf(L);
  if (st->aborted) RaiseAbort(L, st);
  if (st->loading) {
    if (st->load_deadline_ms && UnixTimeMs() > st->load_deadline_ms) {
      st->aborted = true;
      st->abort_error = Fmt(OpStatus::kFunctionLoadTimeout);
      lua_sethook(L, Hook, LUA_MASKCOUNT, 1);
      RaiseAbort(L, st);
    }
    return;
  }
  if (!st->host) return;
  std::string reason;
  if (!st->host->Continue(&reason)) {
    st->aborted = true;
    st->abort_error = reason;
    lua_sethook(L, Hook, LUA_MASKCOUNT, 1);
    RaiseAbort(L, st);
  }
}

void SetField(lua_State* L, const char* name, lua_CFunction f) {
  lua_pushcfunction(L, f);
  lua_setfield(L, -2, name);
}
void SetNumber(lua_State* L, const char* name, double v) {
  lua_pushnumber(L, v);
  lua_setfield(L, -2, name);
}

void PushRedisTable(lua_State* L) {
  lua_newtable(L);
  SetField(L, "call", RedisCall);
  SetField(L, "pcall", RedisPcall);
  SetField(L, "sha1hex", RedisSha1hex);
  SetField(L, "error_reply", RedisErrorReply);
  SetField(L, "status_reply", RedisStatusReply);
  SetField(L, "log", RedisLog);
  SetField(L, "setresp", RedisSetresp);
  SetField(L, "set_repl", RedisSetRepl);
  SetField(L, "replicate_commands", RedisTrue);
  SetField(L, "breakpoint", RedisFalse);
  SetField(L, "debug", RedisNothing);
  SetField(L, "acl_check_cmd", RedisAclCheck);
  SetNumber(L, "LOG_DEBUG", 0);
  SetNumber(L, "LOG_VERBOSE", 1);
  SetNumber(L, "LOG_NOTICE", 2);
  SetNumber(L, "LOG_WARNING", 3);
  SetNumber(L, "REPL_NONE", 0);
  SetNumber(L, "REPL_AOF", 1);
  SetNumber(L, "REPL_SLAVE", 2);
  SetNumber(L, "REPL_REPLICA", 2);
  SetNumber(L, "REPL_ALL", 3);
  lua_pushstring(L, std::string(kRedisVersion).c_str());
  lua_setfield(L, -2, "REDIS_VERSION");
  SetNumber(L, "REDIS_VERSION_NUM", kRedisVersionNum);
}

// bit.tohex(x, n) with n = INT32_MIN overflows inside BitOp (-n stays
// negative); as Redis does, such an n counts as INT32_MIN + 1.
int SafeToHex(lua_State* L) {
  if (lua_gettop(L) >= 2 && lua_isnumber(L, 2) && lua_tonumber(L, 2) <= -2147483648.0) {
    lua_pushnumber(L, -2147483647.0);
    lua_replace(L, 2);
  }
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
  return lua_gettop(L);
}

// unpack(t [, i [, j]]) with the count computed without overflow (Lua
// 5.1's own wraps around for ranges near the int limits and crashes).
int SafeUnpack(lua_State* L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  int64_t i = luaL_optinteger(L, 2, 1);
  int64_t e = lua_isnoneornil(L, 3) ? static_cast<int64_t>(lua_objlen(L, 1)) : luaL_checkinteger(L, 3);
  if (i > e) return 0;
  int64_t n = e - i + 1;
  if (n >= INT32_MAX || !lua_checkstack(L, static_cast<int>(n))) return luaL_error(L, "too many results to unpack");
  for (int64_t k = i; k <= e; ++k) lua_rawgeti(L, 1, static_cast<int>(k));
  return static_cast<int>(n);
}

// Opens a library and makes it the global `name` (some modules only
// return their table).
void OpenLib(lua_State* L, const char* name, lua_CFunction f) {
  lua_pushcfunction(L, f);
  lua_pushstring(L, name);
  lua_call(L, 1, 1);
  if (name[0] && lua_istable(L, -1)) lua_setglobal(L, name);
  else lua_pop(L, 1);
}

}  // namespace

Runtime::Runtime(Kind kind, bool deprecated_api) : kind_(kind), st_(std::make_unique<State>()) {
  lua_State* L = luaL_newstate();
  st_->L = L;
  st_->kind = kind;
  lua_pushlightuserdata(L, st_.get());
  lua_setfield(L, LUA_REGISTRYINDEX, kRuntimeKey);
  lua_newtable(L);
  lua_newtable(L);  // weak keys
  lua_pushstring(L, "k");
  lua_setfield(L, -2, "__mode");
  lua_setmetatable(L, -2);
  lua_setfield(L, LUA_REGISTRYINDEX, kReadonlySetKey);
  lua_newtable(L);
  lua_setfield(L, LUA_REGISTRYINDEX, kFunctionsKey);
  lua_pushcfunction(L, ErrorHandler);
  lua_setfield(L, LUA_REGISTRYINDEX, kHandlerKey);

  OpenLib(L, "", luaopen_base);
  OpenLib(L, LUA_TABLIBNAME, luaopen_table);
  OpenLib(L, LUA_STRLIBNAME, luaopen_string);
  OpenLib(L, LUA_MATHLIBNAME, luaopen_math);
  OpenLib(L, "cjson", luaopen_cjson);
  OpenLib(L, "bit", luaopen_bit);
  lua_getglobal(L, "bit");
  lua_getfield(L, -1, "tohex");
  lua_pushcclosure(L, SafeToHex, 1);
  lua_setfield(L, -2, "tohex");
  lua_pop(L, 1);
  OpenLib(L, "struct", OpenStruct);
  OpenLib(L, "cmsgpack", OpenMsgpack);
  // luaopen_cjson / bit register globals through luaL_register: they are
  // globals now. Drop what the sandbox does not allow.
  for (const char* name : {"dofile", "loadfile", "print", "module", "require", "package"}) {
    lua_pushnil(L);
    lua_setglobal(L, name);
  }
  if (!deprecated_api) {
    for (const char* name : {"setfenv", "getfenv", "newproxy"}) {
      lua_pushnil(L);
      lua_setglobal(L, name);
    }
  }
  lua_getglobal(L, "setmetatable");
  lua_pushcclosure(L, SafeSetmetatable, 1);
  lua_setglobal(L, "setmetatable");
  lua_pushcfunction(L, SafeRawset);
  lua_setglobal(L, "rawset");
  lua_pushcfunction(L, SafeLoadstring);
  lua_setglobal(L, "loadstring");
  lua_pushcfunction(L, SafeUnpack);
  lua_setglobal(L, "unpack");

  PushRedisTable(L);
  if (kind == Kind::kFunction) {
    lua_pushcfunction(L, RegisterFunction);  // kept for the load table below
    lua_setfield(L, LUA_REGISTRYINDEX, "__larder_register");
  }
  lua_setglobal(L, "redis");

  // Library tables become read-only views.
  for (const char* name : {"redis", "cjson", "bit", "struct", "cmsgpack", "string", "table", "math", "coroutine"}) {
    lua_getglobal(L, name);
    if (lua_istable(L, -1)) {
      PushReadonlyView(L);
      lua_setglobal(L, name);
    } else {
      lua_pop(L, 1);
    }
  }
  // The string metatable shows a read-only view.
  lua_pushstring(L, "");
  if (lua_getmetatable(L, -1)) {
    lua_pushvalue(L, -1);
    PushReadonlyView(L);
    lua_setfield(L, -2, "__metatable");
    lua_pop(L, 1);
  }
  lua_pop(L, 1);

  // What a library sees while it loads: redis = {register_function, log,
  // LOG_*, REDIS_VERSION*}, missing names are errors.
  if (kind == Kind::kFunction) {
    lua_newtable(L);  // load globals
    lua_newtable(L);  // its redis
    lua_getfield(L, LUA_REGISTRYINDEX, "__larder_register");
    lua_setfield(L, -2, "register_function");
    SetField(L, "log", RedisLog);
    SetNumber(L, "LOG_DEBUG", 0);
    SetNumber(L, "LOG_VERBOSE", 1);
    SetNumber(L, "LOG_NOTICE", 2);
    SetNumber(L, "LOG_WARNING", 3);
    lua_pushstring(L, std::string(kRedisVersion).c_str());
    lua_setfield(L, -2, "REDIS_VERSION");
    SetNumber(L, "REDIS_VERSION_NUM", kRedisVersionNum);
    // Protected: reads of missing names fail, writes fail.
    lua_newtable(L);
    lua_newtable(L);
    lua_pushvalue(L, -3);
    lua_setfield(L, -2, "__index");
    lua_setmetatable(L, -2);  // inner lookup table: real fields, then...
    // view: __index = function(t,k) real[k] or error
    lua_newtable(L);                      // view
    lua_newtable(L);                      // view mt
    lua_pushvalue(L, -4);                 // real redis-load table
    lua_pushcclosure(
        L,
        [](lua_State* l) -> int {
          lua_pushvalue(l, 2);
          lua_rawget(l, lua_upvalueindex(1));
          if (!lua_isnil(l, -1)) return 1;
          return ProtectedIndex(l);
        },
        1);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, ReadonlyError);
    lua_setfield(L, -2, "__newindex");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_setmetatable(L, -2);
    MarkReadonly(L, -1);
    lua_setfield(L, -4, "redis");  // load_globals.redis = view
    lua_pop(L, 2);                 // the helper tables
    st_->load_globals = luaL_ref(L, LUA_REGISTRYINDEX);
  }

  // Protected globals: an empty table that reads through GlobalsIndex and
  // refuses writes; _G is it.
  lua_pushvalue(L, LUA_GLOBALSINDEX);
  st_->real_globals = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_newtable(L);  // proxy
  lua_newtable(L);  // its metatable
  lua_pushcfunction(L, GlobalsIndex);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, ReadonlyError);
  lua_setfield(L, -2, "__newindex");
  // getmetatable(_G): a read-only table whose __index is a read-only view
  // of the real globals.
  lua_newtable(L);
  lua_rawgeti(L, LUA_REGISTRYINDEX, st_->real_globals);
  PushReadonlyView(L);
  lua_setfield(L, -2, "__index");
  PushReadonlyView(L);
  lua_setfield(L, -2, "__metatable");
  lua_setmetatable(L, -2);
  MarkReadonly(L, -1);
  lua_pushvalue(L, -1);
  lua_setglobal(L, "_G");  // still the real table: real._G = proxy
  lua_replace(L, LUA_GLOBALSINDEX);
  lua_settop(L, 0);
  lua_sethook(L, Hook, LUA_MASKCOUNT, kHookEvery);
}

Runtime::~Runtime() {
  if (st_->L) lua_close(st_->L);
}

size_t Runtime::memory() const { return static_cast<size_t>(lua_gc(st_->L, LUA_GCCOUNT, 0)) * 1024; }

bool Runtime::HasScript(std::string_view sha) const {
  lua_State* L = st_->L;
  std::string key = "f_" + std::string(sha);
  lua_getfield(L, LUA_REGISTRYINDEX, kFunctionsKey);
  lua_getfield(L, -1, key.c_str());
  bool has = lua_isfunction(L, -1);
  lua_pop(L, 2);
  return has;
}

bool Runtime::CompileScript(std::string_view sha, std::string_view body, std::string* error) {
  lua_State* L = st_->L;
  if (luaL_loadbuffer(L, body.data(), body.size(), "@user_script")) {
    *error = FormatError(OpStatus::kScriptCompile, OneLine(lua_tostring(L, -1)));
    lua_pop(L, 1);
    return false;
  }
  std::string key = "f_" + std::string(sha);
  lua_getfield(L, LUA_REGISTRYINDEX, kFunctionsKey);
  lua_insert(L, -2);
  lua_setfield(L, -2, key.c_str());
  lua_pop(L, 1);
  return true;
}

bool Runtime::LoadLibrary(std::string_view code, std::vector<Function>* functions, std::string* error) {
  lua_State* L = st_->L;
  if (luaL_loadbuffer(L, code.data(), code.size(), "@user_function")) {
    *error = FormatError(OpStatus::kFunctionCompile, OneLine(lua_tostring(L, -1)));
    lua_pop(L, 1);
    return false;
  }
  lua_newtable(L);
  lua_setfield(L, LUA_REGISTRYINDEX, kRegisteredKey);
  lua_getfield(L, LUA_REGISTRYINDEX, kHandlerKey);
  lua_insert(L, -2);
  st_->loading = true;
  st_->aborted = false;
  st_->abort_error.clear();
  st_->load_deadline_ms = UnixTimeMs() + 500;
  lua_sethook(L, Hook, LUA_MASKCOUNT, kHookEvery);
  int rc = lua_pcall(L, 0, 0, -2);
  st_->loading = false;
  bool aborted = st_->aborted;
  st_->aborted = false;
  lua_sethook(L, Hook, LUA_MASKCOUNT, kHookEvery);
  if (rc) {
    std::string msg;
    if (aborted) {
      msg = st_->abort_error;
    } else if (lua_istable(L, -1)) {
      lua_getfield(L, -1, "err");
      msg = lua_isstring(L, -1) ? lua_tostring(L, -1) : "ERR unknown error";
      lua_pop(L, 1);
    } else {
      msg = "ERR unknown error";
    }
    // As Redis: "ERR Error registering functions: <the error's own line>".
    *error = FormatError(OpStatus::kFunctionRegisterError, OneLine(msg));
    lua_settop(L, 0);
    return false;
  }
  lua_settop(L, 0);
  // Move the registered functions into the run table.
  lua_getfield(L, LUA_REGISTRYINDEX, kRegisteredKey);
  lua_getfield(L, LUA_REGISTRYINDEX, kFunctionsKey);
  lua_pushnil(L);
  while (lua_next(L, 1)) {
    Function fn;
    fn.name = lua_tostring(L, -2);
    lua_getfield(L, -1, "description");
    fn.description = lua_tostring(L, -1);
    lua_pop(L, 1);
    lua_getfield(L, -1, "has_description");
    fn.has_description = lua_toboolean(L, -1);
    lua_pop(L, 1);
    lua_getfield(L, -1, "flags");
    fn.flags = static_cast<uint32_t>(lua_tonumber(L, -1));
    lua_pop(L, 1);
    lua_getfield(L, -1, "callback");
    lua_setfield(L, 2, fn.name.c_str());
    lua_pop(L, 1);
    functions->push_back(std::move(fn));
  }
  lua_settop(L, 0);
  lua_pushnil(L);
  lua_setfield(L, LUA_REGISTRYINDEX, kRegisteredKey);
  if (functions->empty()) {
    *error = Fmt(OpStatus::kFunctionNoneRegistered);
    return false;
  }
  return true;
}

bool Runtime::HasFunction(std::string_view name) const {
  lua_State* L = st_->L;
  lua_getfield(L, LUA_REGISTRYINDEX, kFunctionsKey);
  lua_getfield(L, -1, std::string(name).c_str());
  bool has = lua_isfunction(L, -1);
  lua_pop(L, 2);
  return has;
}

void Runtime::DropFunction(std::string_view name) {
  lua_State* L = st_->L;
  lua_getfield(L, LUA_REGISTRYINDEX, kFunctionsKey);
  lua_pushnil(L);
  lua_setfield(L, -2, std::string(name).c_str());
  lua_pop(L, 1);
}

namespace {
void PushArray(lua_State* L, std::span<const std::string_view> items) {
  lua_createtable(L, static_cast<int>(items.size()), 0);
  for (size_t i = 0; i < items.size(); ++i) {
    lua_pushlstring(L, items[i].data(), items[i].size());
    lua_rawseti(L, -2, static_cast<int>(i + 1));
  }
}
}  // namespace

bool Runtime::Run(std::string_view name, std::string_view name_in_errors, std::span<const std::string_view> keys,
                  std::span<const std::string_view> args, Host& host, resp::ReplyBuilder* rb) {
  lua_State* L = st_->L;
  lua_settop(L, 0);
  if (!lua_checkstack(L, 8)) {
    rb->Error(Fmt(OpStatus::kScriptStackLimit));
    return true;
  }
  st_->host = &host;
  st_->resp = 2;
  st_->aborted = false;
  st_->abort_error.clear();
  lua_getfield(L, LUA_REGISTRYINDEX, kHandlerKey);
  lua_getfield(L, LUA_REGISTRYINDEX, kFunctionsKey);
  std::string key = kind_ == Kind::kEval ? "f_" + std::string(name) : std::string(name);
  lua_getfield(L, -1, key.c_str());
  lua_remove(L, -2);
  int nargs = 0;
  if (kind_ == Kind::kEval) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, st_->real_globals);
    PushArray(L, keys);
    lua_setfield(L, -2, "KEYS");
    PushArray(L, args);
    lua_setfield(L, -2, "ARGV");
    lua_pop(L, 1);
  } else {
    PushArray(L, keys);
    PushArray(L, args);
    nargs = 2;
  }
  lua_sethook(L, Hook, LUA_MASKCOUNT, kHookEvery);
  int rc = lua_pcall(L, nargs, 1, 1);
  bool aborted = st_->aborted;
  st_->host = nullptr;
  st_->aborted = false;
  lua_sethook(L, Hook, LUA_MASKCOUNT, kHookEvery);
  static thread_local int gc_count = 0;
  if (++gc_count == 50) {
    lua_gc(L, LUA_GCSTEP, 50);
    gc_count = 0;
  }
  if (aborted && st_->abort_error.empty()) {
    lua_settop(L, 0);
    return false;  // the host stopped it: it runs again elsewhere
  }
  if (rc) {
    if (!lua_istable(L, -1)) {
      const char* msg = lua_isstring(L, -1) ? lua_tostring(L, -1) : "execution failure";
      rb->Error(FormatError(OpStatus::kScriptRunFailed, name_in_errors, OneLine(std::string(msg).substr(0, 100))));
    } else {
      std::string err, source;
      RawStringField(L, "err", &err);
      bool has_source = RawStringField(L, "source", &source);
      lua_getfield(L, -1, "line");
      bool has_line = lua_isnumber(L, -1);
      int line = static_cast<int>(lua_tonumber(L, -1));
      lua_pop(L, 1);
      lua_getfield(L, -1, "ignore_error_stats_update");
      bool counted = lua_toboolean(L, -1);
      lua_pop(L, 1);
      std::string msg = err;
      if (has_source && has_line)
        msg += FormatError(OpStatus::kScriptErrorWhere, name_in_errors, source, line);
      msg = OneLine(msg);
      if (counted) rb->ErrorCounted(msg);
      else rb->Error(msg);
    }
    lua_settop(L, 0);
    return true;
  }
  WriteReply(L, st_->resp, rb);
  lua_settop(L, 0);
  return true;
}

// ---- shebang lines ----

namespace {
// Splits a line at spaces; a part in double quotes loses them. The views
// point into the line or into unquoted_ (kept for the thread's next split).
thread_local std::deque<std::string> unquoted_;
std::vector<std::string_view> Words(std::string_view line) {
  unquoted_.clear();
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r')) ++i;
    size_t j = i;
    while (j < line.size() && line[j] != ' ' && line[j] != '\t' && line[j] != '\r') ++j;
    if (j > i) {
      std::string_view w = line.substr(i, j - i);
      // name="foo": the quotes go (as Redis splits the line).
      size_t q = w.find('"');
      if (q != std::string_view::npos && w.size() >= q + 2 && w.back() == '"') {
        unquoted_.push_back(std::string(w.substr(0, q)) + std::string(w.substr(q + 1, w.size() - q - 2)));
        w = unquoted_.back();
      }
      out.push_back(w);
    }
    i = j;
  }
  return out;
}
}  // namespace

bool ParseShebang(std::string_view body, uint32_t* flags, size_t* skip, std::string* error) {
  *flags = 0;
  *skip = 0;
  if (body.substr(0, 2) != "#!") {  // (no shebang: compat mode)
    *flags = kFlagEvalCompat;
    return true;
  }
  size_t nl = body.find('\n');
  if (nl == std::string_view::npos) {
    *error = Fmt(OpStatus::kScriptShebangInvalid);
    return false;
  }
  std::vector<std::string_view> parts = Words(body.substr(0, nl));
  if (parts.empty() || parts[0].size() < 2) {
    *error = Fmt(OpStatus::kScriptShebangInvalidEngine);
    return false;
  }
  if (parts[0].substr(2) != "lua") {
    *error = FormatError(OpStatus::kScriptShebangEngine, parts[0]);
    return false;
  }
  for (size_t j = 1; j < parts.size(); ++j) {
    std::string_view p = parts[j];
    if (p.substr(0, 6) != "flags=") {
      *error = FormatError(OpStatus::kScriptShebangOption, p);
      return false;
    }
    p.remove_prefix(6);
    while (!p.empty()) {
      size_t c = p.find(',');
      std::string_view f = p.substr(0, c);
      p = c == std::string_view::npos ? std::string_view() : p.substr(c + 1);
      if (f == "no-writes") *flags |= kFlagNoWrites;
      else if (f == "allow-oom") *flags |= kFlagAllowOom;
      else if (f == "allow-stale") *flags |= kFlagAllowStale;
      else if (f == "no-cluster") *flags |= kFlagNoCluster;
      else if (f == "allow-cross-slot-keys") *flags |= kFlagAllowCrossSlot;
      else if (!f.empty()) {
        *error = FormatError(OpStatus::kScriptShebangFlag, f);
        return false;
      }
    }
  }
  *skip = nl;  // keep the newline: line numbers stay the user's
  return true;
}

bool ParseLibraryShebang(std::string_view code, std::string* name, size_t* skip, std::string* error) {
  size_t nl = code.find('\n');
  if (code.substr(0, 2) != "#!" || nl == std::string_view::npos) {
    *error = Fmt(OpStatus::kFunctionMissingMetadata);
    return false;
  }
  std::vector<std::string_view> parts = Words(code.substr(0, nl));
  std::string_view engine = parts.empty() ? std::string_view() : parts[0].substr(2);
  bool have_name = false;
  for (size_t i = 1; i < parts.size(); ++i) {
    std::string_view p = parts[i];
    if (p.size() >= 5 && strncasecmp(p.data(), "name=", 5) == 0) {
      if (have_name) {
        *error = Fmt(OpStatus::kFunctionMetadataNameTwice);
        return false;
      }
      *name = std::string(p.substr(5));
      have_name = true;
      continue;
    }
    *error = FormatError(OpStatus::kFunctionMetadataValue, OneLine(p));
    return false;
  }
  if (!have_name) {
    *error = Fmt(OpStatus::kFunctionNoLibraryName);
    return false;
  }
  if (!ValidName(*name)) {
    *error = Fmt(OpStatus::kFunctionLibraryNameInvalid);
    return false;
  }
  std::string e(engine);
  for (char& c : e) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (e != "lua") {
    *error = FormatError(OpStatus::kFunctionEngineNotFound, OneLine(engine));
    return false;
  }
  *skip = nl;
  return true;
}

std::vector<std::string> FlagNames(uint32_t flags) {
  std::vector<std::string> out;
  if (flags & kFlagNoWrites) out.push_back("no-writes");
  if (flags & kFlagAllowOom) out.push_back("allow-oom");
  if (flags & kFlagAllowStale) out.push_back("allow-stale");
  if (flags & kFlagNoCluster) out.push_back("no-cluster");
  if (flags & kFlagAllowCrossSlot) out.push_back("allow-cross-slot-keys");
  return out;
}

}  // namespace larder::script
