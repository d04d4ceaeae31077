// Lua modules a script sees besides Lua's own, cjson and bit (which come
// from Debian's packages): `cmsgpack` (MessagePack) and `struct` (binary
// packing), written here with the behaviour scripts written for Redis
// expect:
//
//   cmsgpack.pack(v, ...)             → the encodings of each value, concatenated
//   cmsgpack.unpack(s)                → every value in s
//   cmsgpack.unpack_one(s [, off])    → next offset (-1 at the end), value
//   cmsgpack.unpack_limit(s, n [, off]) → next offset, up to n values
//     numbers with an integral value as the smallest integer encoding, others
//     as float 32 when exact, else float 64; tables whose keys are 1..n as
//     arrays, others as maps; nesting deeper than 16 encodes nil.
//   struct.pack(fmt, ...), struct.unpack(fmt, s [, pos]), struct.size(fmt)
//     formats: < > ! (endianness, alignment), x (pad), b B h H l L T i[n]
//     I[n] (integers), f d (floats), s (zero-terminated), c[n] (fixed
//     string; c0: the length is the previous value), space ignored.
#pragma once

struct lua_State;

namespace larder::script {

// luaopen_-style: called with the module name, leaves the module table on
// the stack and sets the global of that name.
int OpenMsgpack(lua_State* L);
int OpenStruct(lua_State* L);

}  // namespace larder::script
