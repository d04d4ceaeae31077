#include "script/lua_modules.h"

extern "C" {
#include <lauxlib.h>
#include <lua.h>
}

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>

namespace larder::script {

namespace {

// ---- MessagePack ----

constexpr int kMaxNesting = 16;

void PutBE(std::string* out, uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

void EncodeInt(std::string* out, int64_t v) {
  if (v >= 0) {
    if (v < 128) out->push_back(static_cast<char>(v));
    else if (v < 256) { out->push_back('\xcc'); PutBE(out, static_cast<uint64_t>(v), 1); }
    else if (v < 65536) { out->push_back('\xcd'); PutBE(out, static_cast<uint64_t>(v), 2); }
    else if (v <= 0xffffffffLL) { out->push_back('\xce'); PutBE(out, static_cast<uint64_t>(v), 4); }
    else { out->push_back('\xcf'); PutBE(out, static_cast<uint64_t>(v), 8); }
  } else {
    if (v >= -32) out->push_back(static_cast<char>(v));
    else if (v >= -128) { out->push_back('\xd0'); PutBE(out, static_cast<uint64_t>(v), 1); }
    else if (v >= -32768) { out->push_back('\xd1'); PutBE(out, static_cast<uint64_t>(v), 2); }
    else if (v >= -2147483648LL) { out->push_back('\xd2'); PutBE(out, static_cast<uint64_t>(v), 4); }
    else { out->push_back('\xd3'); PutBE(out, static_cast<uint64_t>(v), 8); }
  }
}

void EncodeNumber(std::string* out, double d) {
  if (std::isfinite(d) && std::floor(d) == d && d >= -9.2233720368547758e18 && d < 9.2233720368547758e18) {
    EncodeInt(out, static_cast<int64_t>(d));
    return;
  }
  float f = static_cast<float>(d);
  if (static_cast<double>(f) == d) {
    uint32_t bits;
    std::memcpy(&bits, &f, 4);
    out->push_back('\xca');
    PutBE(out, bits, 4);
  } else {
    uint64_t bits;
    std::memcpy(&bits, &d, 8);
    out->push_back('\xcb');
    PutBE(out, bits, 8);
  }
}

void EncodeString(std::string* out, const char* s, size_t n) {
  if (n < 32) out->push_back(static_cast<char>(0xa0 | n));
  else if (n <= 0xff) { out->push_back('\xd9'); PutBE(out, n, 1); }
  else if (n <= 0xffff) { out->push_back('\xda'); PutBE(out, n, 2); }
  else { out->push_back('\xdb'); PutBE(out, n, 4); }
  out->append(s, n);
}

// The array length of the table at the top when its keys are exactly
// 1..n, else -1.
int64_t ArrayLength(lua_State* L) {
  int64_t count = 0, max = 0;
  lua_pushnil(L);
  while (lua_next(L, -2)) {
    lua_pop(L, 1);
    if (lua_type(L, -1) != LUA_TNUMBER) {
      lua_pop(L, 1);
      return -1;
    }
    double n = lua_tonumber(L, -1);
    if (n <= 0 || std::floor(n) != n) {
      lua_pop(L, 1);
      return -1;
    }
    if (n > static_cast<double>(max)) max = static_cast<int64_t>(n);
    ++count;
  }
  return max == count ? count : -1;
}

void EncodeValue(lua_State* L, std::string* out, int level);

void EncodeTable(lua_State* L, std::string* out, int level) {
  int64_t n = ArrayLength(L);
  if (n >= 0) {
    if (n < 16) out->push_back(static_cast<char>(0x90 | n));
    else if (n <= 0xffff) { out->push_back('\xdc'); PutBE(out, static_cast<uint64_t>(n), 2); }
    else { out->push_back('\xdd'); PutBE(out, static_cast<uint64_t>(n), 4); }
    for (int64_t j = 1; j <= n; ++j) {
      lua_rawgeti(L, -1, static_cast<int>(j));
      EncodeValue(L, out, level + 1);
      lua_pop(L, 1);
    }
    return;
  }
  uint64_t pairs = 0;
  lua_pushnil(L);
  while (lua_next(L, -2)) {
    lua_pop(L, 1);
    ++pairs;
  }
  if (pairs < 16) out->push_back(static_cast<char>(0x80 | pairs));
  else if (pairs <= 0xffff) { out->push_back('\xde'); PutBE(out, pairs, 2); }
  else { out->push_back('\xdf'); PutBE(out, pairs, 4); }
  lua_pushnil(L);
  while (lua_next(L, -2)) {
    lua_pushvalue(L, -2);
    EncodeValue(L, out, level + 1);
    lua_pop(L, 1);
    EncodeValue(L, out, level + 1);
    lua_pop(L, 1);
  }
}

// Encodes the value at the top (leaves it there).
void EncodeValue(lua_State* L, std::string* out, int level) {
  // (MpPack made room for the deepest nesting: no raise while `out` lives.)
  int t = lua_type(L, -1);
  if (t == LUA_TTABLE && level == kMaxNesting) t = LUA_TNIL;
  switch (t) {
    case LUA_TBOOLEAN: out->push_back(lua_toboolean(L, -1) ? '\xc3' : '\xc2'); break;
    case LUA_TNUMBER: EncodeNumber(out, lua_tonumber(L, -1)); break;
    case LUA_TSTRING: {
      size_t n;
      const char* s = lua_tolstring(L, -1, &n);
      EncodeString(out, s, n);
      break;
    }
    case LUA_TTABLE: EncodeTable(L, out, level); break;
    default: out->push_back('\xc0'); break;
  }
}

int MpPack(lua_State* L) {
  int n = lua_gettop(L);
  if (n == 0) return luaL_argerror(L, 0, "MessagePack pack needs input.");
  // Room for every level of nesting now: lua_error would longjmp past `out`.
  luaL_checkstack(L, 4 * (kMaxNesting + 2), "msgpack nesting");
  std::string out;
  for (int i = 1; i <= n; ++i) {
    lua_pushvalue(L, i);
    EncodeValue(L, &out, 0);
    lua_pop(L, 1);
  }
  lua_pushlstring(L, out.data(), out.size());
  return 1;
}

class Decoder {
 public:
  Decoder(lua_State* L, const unsigned char* p, size_t n) : L_(L), p_(p), n_(n) {}
  size_t pos = 0;
  // Pushes one value; false (with *error) on bad or short input.
  bool Decode(const char** error) {
    luaL_checkstack(L_, 4, "msgpack nesting");
    if (pos >= n_) return Short(error);
    unsigned char c = p_[pos++];
    if (c <= 0x7f) return Num(c);
    if (c >= 0xe0) return Num(static_cast<int8_t>(c));
    if ((c & 0xe0) == 0xa0) return Str(c & 0x1f, error);
    if ((c & 0xf0) == 0x90) return Arr(c & 0x0f, error);
    if ((c & 0xf0) == 0x80) return Map(c & 0x0f, error);
    uint64_t v;
    switch (c) {
      case 0xc0: lua_pushnil(L_); return true;
      case 0xc2: lua_pushboolean(L_, 0); return true;
      case 0xc3: lua_pushboolean(L_, 1); return true;
      case 0xca: {
        if (!Get(4, &v, error)) return false;
        uint32_t b = static_cast<uint32_t>(v);
        float f;
        std::memcpy(&f, &b, 4);
        return Num(f);
      }
      case 0xcb: {
        if (!Get(8, &v, error)) return false;
        double d;
        std::memcpy(&d, &v, 8);
        return Num(d);
      }
      case 0xcc: return Get(1, &v, error) && Num(static_cast<double>(v));
      case 0xcd: return Get(2, &v, error) && Num(static_cast<double>(v));
      case 0xce: return Get(4, &v, error) && Num(static_cast<double>(v));
      case 0xcf: return Get(8, &v, error) && Num(static_cast<double>(v));
      case 0xd0: return Get(1, &v, error) && Num(static_cast<int8_t>(v));
      case 0xd1: return Get(2, &v, error) && Num(static_cast<int16_t>(v));
      case 0xd2: return Get(4, &v, error) && Num(static_cast<int32_t>(v));
      case 0xd3: return Get(8, &v, error) && Num(static_cast<double>(static_cast<int64_t>(v)));
      case 0xc4: case 0xd9: return Get(1, &v, error) && Str(v, error);
      case 0xc5: case 0xda: return Get(2, &v, error) && Str(v, error);
      case 0xc6: case 0xdb: return Get(4, &v, error) && Str(v, error);
      case 0xdc: return Get(2, &v, error) && Arr(v, error);
      case 0xdd: return Get(4, &v, error) && Arr(v, error);
      case 0xde: return Get(2, &v, error) && Map(v, error);
      case 0xdf: return Get(4, &v, error) && Map(v, error);
      default: *error = "Bad data format in input."; return false;
    }
  }

 private:
  bool Short(const char** error) {
    *error = "Missing bytes in input.";
    return false;
  }
  bool Num(double d) {
    lua_pushnumber(L_, d);
    return true;
  }
  bool Get(int bytes, uint64_t* v, const char** error) {
    if (pos + static_cast<size_t>(bytes) > n_) return Short(error);
    *v = 0;
    for (int i = 0; i < bytes; ++i) *v = (*v << 8) | p_[pos++];
    return true;
  }
  bool Str(uint64_t len, const char** error) {
    if (pos + len > n_) return Short(error);
    lua_pushlstring(L_, reinterpret_cast<const char*>(p_ + pos), len);
    pos += len;
    return true;
  }
  bool Arr(uint64_t len, const char** error) {
    lua_newtable(L_);
    for (uint64_t i = 1; i <= len; ++i) {
      if (!Decode(error)) return false;
      lua_rawseti(L_, -2, static_cast<int>(i));
    }
    return true;
  }
  bool Map(uint64_t len, const char** error) {
    lua_newtable(L_);
    for (uint64_t i = 0; i < len; ++i) {
      if (!Decode(error) || !Decode(error)) return false;
      lua_rawset(L_, -3);
    }
    return true;
  }
  lua_State* L_;
  const unsigned char* p_;
  size_t n_;
};

// Decodes up to `limit` values (0: all) from offset; pushes them and
// returns how many, with the offset after them in *next (-1 at the end).
int DecodeSome(lua_State* L, const char* s, size_t n, size_t offset, int64_t limit, int64_t* next) {
  Decoder d(L, reinterpret_cast<const unsigned char*>(s), n);
  d.pos = offset;
  int count = 0;
  while (d.pos < n && (limit <= 0 || count < limit)) {
    const char* error = nullptr;
    if (!d.Decode(&error)) return luaL_error(L, "%s", error);
    ++count;
  }
  *next = d.pos >= n ? -1 : static_cast<int64_t>(d.pos);
  return count;
}

int MpUnpack(lua_State* L) {
  size_t n;
  const char* s = luaL_checklstring(L, 1, &n);
  lua_settop(L, 1);
  int64_t next;
  return DecodeSome(L, s, n, 0, 0, &next);
}

int MpUnpackLimited(lua_State* L, int64_t limit, int offset_arg) {
  size_t n;
  const char* s = luaL_checklstring(L, 1, &n);
  int64_t offset = static_cast<int64_t>(luaL_optnumber(L, offset_arg, 0));
  if (offset < 0 || limit < 0) return luaL_error(L, "Invalid request to unpack with offset of %d and limit of %d.",
                                                  static_cast<int>(offset), static_cast<int>(limit));
  if (static_cast<size_t>(offset) > n) return luaL_error(L, "Start offset %d greater than input length %d.",
                                                         static_cast<int>(offset), static_cast<int>(n));
  lua_settop(L, 0);
  lua_pushnil(L);  // the offset's place
  int64_t next = -1;
  int count = DecodeSome(L, s, n, static_cast<size_t>(offset), limit, &next);
  lua_pushnumber(L, static_cast<double>(next));
  lua_replace(L, 1);
  return count + 1;
}

int MpUnpackOne(lua_State* L) { return MpUnpackLimited(L, 1, 2); }
int MpUnpackLimit(lua_State* L) { return MpUnpackLimited(L, static_cast<int64_t>(luaL_checknumber(L, 2)), 3); }

// ---- struct ----

struct Format {
  bool little = true;
  size_t align = 1;
};

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

size_t ReadSize(const char** f, size_t dflt) {
  if (!IsDigit(**f)) return dflt;
  size_t v = 0;
  while (IsDigit(**f)) v = v * 10 + static_cast<size_t>(*(*f)++ - '0');
  return v;
}

// The size of option `opt` (the format pointer is past it).
size_t OptSize(lua_State* L, char opt, const char** f) {
  switch (opt) {
    case 'B': case 'b': return 1;
    case 'H': case 'h': return 2;
    case 'L': case 'l': return 8;
    case 'T': return sizeof(size_t);
    case 'f': return sizeof(float);
    case 'd': return sizeof(double);
    case 'x': return 1;
    case 'c': return ReadSize(f, 1);
    case 'i': case 'I': {
      size_t n = ReadSize(f, 4);
      if (n > 8) luaL_error(L, "integral size %d is larger than limit of %d", static_cast<int>(n), 8);
      return n;
    }
    default: return 0;
  }
}

size_t Padding(const Format& h, size_t len, size_t size) {
  if (size == 0 || h.align <= 1) return 0;
  size_t a = std::min(size, h.align);
  return (a - (len & (a - 1))) & (a - 1);
}

void Control(lua_State* L, char opt, const char** f, Format* h) {
  switch (opt) {
    case ' ': break;
    case '>': h->little = false; break;
    case '<': h->little = true; break;
    case '=': h->little = true; break;
    case '!': {
      size_t a = ReadSize(f, 8);
      if (a & (a - 1)) luaL_error(L, "alignment %d is not a power of 2", static_cast<int>(a));
      h->align = a;
      break;
    }
    default: luaL_error(L, "invalid format option '%c'", opt);
  }
}

void PutInt(std::string* out, uint64_t v, bool little, size_t size) {
  for (size_t i = 0; i < size; ++i) {
    size_t shift = little ? i : size - 1 - i;
    out->push_back(shift < 8 ? static_cast<char>((v >> (8 * shift)) & 0xff) : 0);
  }
}

int StructPack(lua_State* L) {
  const char* f = luaL_checkstring(L, 1);
  Format h;
  std::string out;
  int arg = 2;
  while (*f) {
    char opt = *f++;
    size_t size = OptSize(L, opt, &f);
    size_t pad = Padding(h, out.size(), size);
    out.append(pad, '\0');
    switch (opt) {
      case 'b': case 'B': case 'h': case 'H': case 'l': case 'L': case 'T': case 'i': case 'I': {
        double n = luaL_checknumber(L, arg++);
        int64_t v = n < 0 ? static_cast<int64_t>(n) : static_cast<int64_t>(static_cast<uint64_t>(n));
        PutInt(&out, static_cast<uint64_t>(v), h.little, size);
        break;
      }
      case 'x': out.push_back('\0'); break;
      case 'f': {
        float v = static_cast<float>(luaL_checknumber(L, arg++));
        uint32_t b;
        std::memcpy(&b, &v, 4);
        PutInt(&out, b, h.little, 4);
        break;
      }
      case 'd': {
        double v = luaL_checknumber(L, arg++);
        uint64_t b;
        std::memcpy(&b, &v, 8);
        PutInt(&out, b, h.little, 8);
        break;
      }
      case 'c': case 's': {
        size_t l;
        const char* s = luaL_checklstring(L, arg++, &l);
        if (opt == 'c') {
          if (size == 0) size = l;
          luaL_argcheck(L, l >= size, arg - 1, "string too short");
          out.append(s, size);
        } else {
          out.append(s, l);
          out.push_back('\0');
        }
        break;
      }
      default: Control(L, opt, &f, &h);
    }
  }
  lua_pushlstring(L, out.data(), out.size());
  return 1;
}

int StructUnpack(lua_State* L) {
  Format h;
  const char* f = luaL_checkstring(L, 1);
  size_t ld;
  const char* data = luaL_checklstring(L, 2, &ld);
  size_t pos = static_cast<size_t>(luaL_optinteger(L, 3, 1)) - 1;
  luaL_argcheck(L, pos <= ld, 3, "offset must be 1 or greater");
  lua_settop(L, 2);
  int results = 0;
  while (*f) {
    char opt = *f++;
    size_t size = OptSize(L, opt, &f);
    pos += Padding(h, pos, size);
    luaL_argcheck(L, size <= ld && pos <= ld - size, 2, "data string too short");
    luaL_checkstack(L, 2, "too many results");
    switch (opt) {
      case 'b': case 'B': case 'h': case 'H': case 'l': case 'L': case 'T': case 'i': case 'I': {
        uint64_t v = 0;
        for (size_t i = 0; i < size; ++i) {
          size_t idx = h.little ? size - 1 - i : i;
          v = (v << 8) | static_cast<unsigned char>(data[pos + idx]);
        }
        bool is_signed = opt == 'b' || opt == 'h' || opt == 'l' || opt == 'i';
        double n;
        if (is_signed && size < 8 && (v >> (8 * size - 1)) & 1) n = static_cast<double>(static_cast<int64_t>(v | (~0ULL << (8 * size))));
        else if (is_signed) n = static_cast<double>(static_cast<int64_t>(v));
        else n = static_cast<double>(v);
        lua_pushnumber(L, n);
        ++results;
        break;
      }
      case 'x': break;
      case 'f': {
        uint32_t b = 0;
        for (size_t i = 0; i < 4; ++i) b = (b << 8) | static_cast<unsigned char>(data[pos + (h.little ? 3 - i : i)]);
        float v;
        std::memcpy(&v, &b, 4);
        lua_pushnumber(L, v);
        ++results;
        break;
      }
      case 'd': {
        uint64_t b = 0;
        for (size_t i = 0; i < 8; ++i) b = (b << 8) | static_cast<unsigned char>(data[pos + (h.little ? 7 - i : i)]);
        double v;
        std::memcpy(&v, &b, 8);
        lua_pushnumber(L, v);
        ++results;
        break;
      }
      case 'c': {
        if (size == 0) {
          if (results == 0 || !lua_isnumber(L, -1)) luaL_error(L, "format 'c0' needs a previous size");
          size = static_cast<size_t>(lua_tonumber(L, -1));
          lua_pop(L, 1);
          --results;
          luaL_argcheck(L, size <= ld && pos <= ld - size, 2, "data string too short");
        }
        lua_pushlstring(L, data + pos, size);
        ++results;
        break;
      }
      case 's': {
        const char* e = static_cast<const char*>(std::memchr(data + pos, '\0', ld - pos));
        if (!e) luaL_error(L, "unfinished string in data");
        size = static_cast<size_t>(e - (data + pos)) + 1;
        lua_pushlstring(L, data + pos, size - 1);
        ++results;
        break;
      }
      default: Control(L, opt, &f, &h);
    }
    pos += size;
  }
  lua_pushinteger(L, static_cast<lua_Integer>(pos + 1));
  return results + 1;
}

int StructSize(lua_State* L) {
  Format h;
  const char* f = luaL_checkstring(L, 1);
  size_t pos = 0;
  while (*f) {
    char opt = *f++;
    size_t size = OptSize(L, opt, &f);
    pos += Padding(h, pos, size);
    if (opt == 's') luaL_argerror(L, 1, "options 's' has no fixed size");
    if (opt == 'c' && size == 0) luaL_argerror(L, 1, "options 'c0' has no fixed size");
    if (!std::strchr("bBhHlLTiIfdxc", opt)) Control(L, opt, &f, &h);
    pos += size;
  }
  lua_pushnumber(L, static_cast<double>(pos));
  return 1;
}

}  // namespace

int OpenMsgpack(lua_State* L) {
  static const luaL_Reg kFns[] = {{"pack", MpPack},
                                  {"unpack", MpUnpack},
                                  {"unpack_one", MpUnpackOne},
                                  {"unpack_limit", MpUnpackLimit},
                                  {nullptr, nullptr}};
  luaL_register(L, "cmsgpack", kFns);
  lua_pushstring(L, "lua-cmsgpack");
  lua_setfield(L, -2, "_NAME");
  return 1;
}

int OpenStruct(lua_State* L) {
  static const luaL_Reg kFns[] = {
      {"pack", StructPack}, {"unpack", StructUnpack}, {"size", StructSize}, {nullptr, nullptr}};
  luaL_register(L, "struct", kFns);
  return 1;
}

}  // namespace larder::script
