#include "engine/key_specs.h"

#include <absl/container/flat_hash_map.h>

#include <algorithm>
#include <climits>
#include <strings.h>

#include "common/numbers.h"
#include "common/strings.h"
#include "engine/command.h"

namespace larder {

std::vector<const char*> KeySpecFlagNames(uint32_t flags) {
  static const std::pair<uint32_t, const char*> kNames[] = {
      {kKsRO, "RO"},         {kKsRW, "RW"},         {kKsOW, "OW"},
      {kKsRM, "RM"},         {kKsAccess, "access"}, {kKsUpdate, "update"},
      {kKsInsert, "insert"}, {kKsDelete, "delete"}, {kKsNotKey, "not_key"},
      {kKsIncomplete, "incomplete"}, {kKsVariableFlags, "variable_flags"},
  };
  std::vector<const char*> out;
  for (auto& [bit, name] : kNames)
    if (flags & bit) out.push_back(name);
  return out;
}

const RedisCommandMeta* FindRedisCommandMeta(std::string_view name) {
  static const auto* index = [] {
    static const std::vector<RedisCommandMeta> table = {
#include "engine/redis_command_meta.inc"
    };
    auto* m = new absl::flat_hash_map<std::string, const RedisCommandMeta*>();
    for (const auto& c : table) (*m)[c.name] = &c;
    return m;
  }();
  auto it = index->find(absl::string_view(name.data(), name.size()));
  return it == index->end() ? nullptr : it->second;
}

bool KeysFromSpecs(std::span<const KeySpec> specs, int arity, std::span<const std::string_view> args,
                   std::vector<KeySpecRef>* out) {
  out->clear();
  int argc = static_cast<int>(args.size());
  for (const KeySpec& spec : specs) {
    if (spec.flags & kKsNotKey) continue;
    int first = 0;
    switch (spec.bs.type) {
      case BeginSearch::Type::kIndex:
        first = spec.bs.pos;
        break;
      case BeginSearch::Type::kKeyword: {
        int start = spec.bs.startfrom > 0 ? spec.bs.startfrom : argc + spec.bs.startfrom;
        int end = spec.bs.startfrom > 0 ? argc - 1 : 1;
        for (int i = start; i != end; i = start <= end ? i + 1 : i - 1) {
          if (i >= argc || i < 1) break;
          if (args[static_cast<size_t>(i)].size() == spec.bs.keyword.size() &&
              strncasecmp(args[static_cast<size_t>(i)].data(), spec.bs.keyword.data(), spec.bs.keyword.size()) == 0) {
            first = i + 1;
            break;
          }
        }
        if (!first) continue;  // the keyword is not there: no keys from this spec
        break;
      }
      case BeginSearch::Type::kUnknown:
        return false;
    }
    int last, step;
    switch (spec.fk.type) {
      case FindKeys::Type::kRange:
        step = spec.fk.keystep;
        if (spec.fk.lastkey >= 0) last = first + spec.fk.lastkey;
        else if (!spec.fk.limit) last = argc + spec.fk.lastkey;
        else last = first + ((argc - first) / spec.fk.limit + spec.fk.lastkey);
        break;
      case FindKeys::Type::kKeynum: {
        step = spec.fk.keystep;
        int idx = first + spec.fk.keynumidx;
        int64_t numkeys;
        if (spec.fk.keynumidx >= argc || idx >= argc || !ParseInt64(args[static_cast<size_t>(idx)], &numkeys) ||
            numkeys < 0 || numkeys > INT_MAX)
          return false;
        first += spec.fk.firstkey;
        last = first + static_cast<int>(numkeys) - 1;
        break;
      }
      default:
        return false;
    }
    if (last >= argc || last < first || first >= argc) return false;
    for (int i = first; i <= last; i += step) {
      if (i >= argc || i < first) {
        if (arity < 0) continue;  // the handler reports the arity or syntax error
        return false;
      }
      out->push_back({static_cast<size_t>(i), spec.flags});
    }
    if (spec.flags & kKsIncomplete) return false;
  }
  return true;
}

LegacyRange LegacyRangeFromSpecs(std::span<const KeySpec> specs) {
  LegacyRange r;
  if (specs.empty()) return r;
  auto relative_to_abs = [](const KeySpec& s) {
    return s.fk.lastkey >= 0 ? s.bs.pos + s.fk.lastkey : s.fk.lastkey;
  };
  if (specs.size() == 1 && specs[0].plain_range()) {
    r.first = specs[0].bs.pos;
    r.last = relative_to_abs(specs[0]);
    r.step = specs[0].fk.keystep;
    r.movable = specs[0].flags & kKsIncomplete;
    return r;
  }
  int first = INT_MAX;
  int last = 0, prev_last = 0;
  for (const KeySpec& s : specs) {
    if (!s.plain_range() || s.fk.keystep != 1 || (prev_last && prev_last != s.bs.pos - 1)) {
      r.movable = true;
      continue;
    }
    if (s.flags & kKsIncomplete) r.movable = true;
    first = std::min(first, s.bs.pos);
    // Unsigned, as Redis compares: a negative (from the end) last key wins.
    last = static_cast<int>(std::max(static_cast<unsigned>(last), static_cast<unsigned>(relative_to_abs(s))));
    prev_last = last;
  }
  if (first == INT_MAX) {
    r.movable = true;
    return r;
  }
  r.first = first;
  r.last = last;
  r.step = 1;
  return r;
}

// Redis's native key functions for the commands whose key specs cannot give
// the flags (variable_flags): SET (setGetKeys) and BITFIELD (bitfieldGetKeys);
// and for SORT and SORT_RO, whose specs for BY/GET and STORE are "unknown"
// (sortGetKeys, sortROGetKeys: the sorted key read, STORE's destination
// overwritten; the command's get_keys finds them).
namespace {
bool NativeKeyFlags(const CommandSpec& c, std::span<const std::string_view> argv, std::vector<KeySpecRef>* out) {
  if (c.name == "sort" || c.name == "sort_ro") {
    out->push_back({1, kKsRO | kKsAccess});
    if (c.name == "sort_ro") return true;
    // The last STORE's argument; LIMIT, GET and BY skip theirs, STORE does
    // not (so "STORE by STORE x" names "by", as Redis's scan does).
    size_t store = 0;
    for (size_t i = 2; i < argv.size(); ++i) {
      if (EqualsIgnoreCase(argv[i], "limit")) i += 2;
      else if (EqualsIgnoreCase(argv[i], "store") && i + 1 < argv.size()) store = i + 1;
      else if (EqualsIgnoreCase(argv[i], "get") || EqualsIgnoreCase(argv[i], "by")) i += 1;
    }
    if (store) out->push_back({store, kKsOW | kKsUpdate});
    return true;
  }
  if (c.name == "set") {
    uint32_t flags = kKsOW | kKsUpdate;
    for (size_t i = 3; i < argv.size(); ++i)
      if (EqualsIgnoreCase(argv[i], "get")) flags = kKsRW | kKsAccess | kKsUpdate;
    out->push_back({1, flags});
    return true;
  }
  if (c.name == "bitfield") {
    bool readonly = true;
    for (size_t i = 2; i < argv.size(); ++i) {
      size_t rest = argv.size() - i - 1;
      if (EqualsIgnoreCase(argv[i], "get") && rest >= 2) {
        i += 2;
      } else if ((EqualsIgnoreCase(argv[i], "set") || EqualsIgnoreCase(argv[i], "incrby")) && rest >= 3) {
        readonly = false;
        break;
      } else if (EqualsIgnoreCase(argv[i], "overflow") && rest >= 1) {
        i += 1;
      } else {
        readonly = false;  // a syntax error: assume it writes, as Redis does
        break;
      }
    }
    out->push_back({1, readonly ? kKsRO | kKsAccess : kKsRW | kKsAccess | kKsUpdate});
    return true;
  }
  return false;
}

}  // namespace

// Redis's getKeysFromCommandWithSpecs: the key specs when they can be
// followed and their flags are reliable, else the command's key function.
std::vector<KeySpecRef> KeysWithFlags(const CommandSpec& c, std::span<const std::string_view> argv) {
  std::vector<KeySpecRef> keys;
  bool any_key = false, variable = false;
  for (const auto& k : c.key_specs) {
    any_key |= !(k.flags & kKsNotKey);
    variable |= (k.flags & kKsVariableFlags) != 0;
  }
  if (any_key && !variable && KeysFromSpecs(c.key_specs, c.arity, argv, &keys)) return keys;
  keys.clear();
  if (NativeKeyFlags(c, argv, &keys)) return keys;
  if (c.get_keys)
    for (size_t i : c.get_keys(argv)) keys.push_back({i, 0});
  return keys;
}

}  // namespace larder
