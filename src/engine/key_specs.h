// Redis 7 key specs: where a command's keys are and how it uses them. COMMAND
// INFO shows them; COMMAND GETKEYS and GETKEYSANDFLAGS find keys with them
// (Redis's getKeysFromCommandWithSpecs). Routing does not use them: it keeps
// CommandSpec's first/last/step and get_keys.
//
// Each Redis command's specs and tips come from redis_command_meta.inc
// (generated from the reference server by scripts/gen_command_meta.py); the
// registry attaches them by name. A Larder command Redis does not have gets
// one spec derived from its key range.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace larder {

// Key spec flags, in the order COMMAND prints them.
enum KeySpecFlag : uint32_t {
  kKsRO = 1u << 0,
  kKsRW = 1u << 1,
  kKsOW = 1u << 2,
  kKsRM = 1u << 3,
  kKsAccess = 1u << 4,
  kKsUpdate = 1u << 5,
  kKsInsert = 1u << 6,
  kKsDelete = 1u << 7,
  kKsNotKey = 1u << 8,
  kKsIncomplete = 1u << 9,
  kKsVariableFlags = 1u << 10,
};

struct BeginSearch {
  enum class Type : uint8_t { kIndex, kKeyword, kUnknown } type = Type::kIndex;
  int pos = 0;            // kIndex
  std::string keyword;    // kKeyword: the key follows this word...
  int startfrom = 0;      // ...searched from here (negative: from the end, backwards)
};

struct FindKeys {
  enum class Type : uint8_t { kRange, kKeynum, kUnknown } type = Type::kRange;
  int lastkey = 0, keystep = 1, limit = 0;  // kRange (lastkey relative to the first key)
  int keynumidx = 0, firstkey = 1;          // kKeynum (and keystep)
};

struct KeySpec {
  uint32_t flags = 0;
  BeginSearch bs;
  FindKeys fk;
  std::string notes;

  bool plain_range() const { return bs.type == BeginSearch::Type::kIndex && fk.type == FindKeys::Type::kRange; }
};

inline BeginSearch BeginIndex(int pos) { return {BeginSearch::Type::kIndex, pos, {}, 0}; }
inline BeginSearch BeginKeyword(const char* word, int startfrom) {
  return {BeginSearch::Type::kKeyword, 0, word, startfrom};
}
inline BeginSearch BeginUnknown() { return {BeginSearch::Type::kUnknown, 0, {}, 0}; }
inline FindKeys FindRange(int lastkey, int keystep, int limit) {
  return {FindKeys::Type::kRange, lastkey, keystep, limit, 0, 1};
}
inline FindKeys FindKeynum(int keynumidx, int firstkey, int keystep) {
  return {FindKeys::Type::kKeynum, 0, keystep, 0, keynumidx, firstkey};
}
inline FindKeys FindUnknown() { return {FindKeys::Type::kUnknown, 0, 1, 0, 0, 1}; }
inline KeySpec MakeKeySpec(uint32_t flags, BeginSearch bs, FindKeys fk, const char* notes = "") {
  return {flags, std::move(bs), std::move(fk), notes};
}

// The names of `flags`, in Redis's order.
std::vector<const char*> KeySpecFlagNames(uint32_t flags);

// Redis's tips and key specs for a command ("get", "object|encoding"), or
// nullptr if the reference server has no such command.
struct RedisCommandMeta {
  std::string name;
  std::vector<std::string> tips;
  std::vector<KeySpec> key_specs;
};
const RedisCommandMeta* FindRedisCommandMeta(std::string_view name);

// A key found in a command line: its argument index and its spec's flags.
struct KeySpecRef {
  size_t pos;
  uint32_t flags;
};

// Redis's getKeysUsingKeySpecs: the keys every spec names in `args` (args[0]
// is the command name), or false when a spec cannot be followed (unknown or
// incomplete, a bad numkeys, positions past the end).
bool KeysFromSpecs(std::span<const KeySpec> specs, int arity, std::span<const std::string_view> args,
                   std::vector<KeySpecRef>* out);

// The (first, last, step) COMMAND INFO shows, derived from the specs as Redis
// does (populateCommandLegacyRangeSpec): 0 0 0 when no plain range covers
// them; `movable` when some key is not in that range (Redis's movablekeys).
struct LegacyRange {
  int first = 0, last = 0, step = 0;
  bool movable = false;
};
LegacyRange LegacyRangeFromSpecs(std::span<const KeySpec> specs);

}  // namespace larder
