#include <absl/container/flat_hash_map.h>

#include <algorithm>
#include <cctype>

#include "commands/command.h"
#include "common/numbers.h"

namespace larder {

std::vector<size_t> CommandSpec::KeyIndexes(std::span<const std::string_view> args) const {
  if (get_keys) return get_keys(args);
  size_t argc = args.size();
  std::vector<size_t> out;
  if (first_key <= 0 || step <= 0) return out;
  long last = last_key >= 0 ? last_key : static_cast<long>(argc) + last_key;
  if (last >= static_cast<long>(argc)) last = static_cast<long>(argc) - 1;
  for (long i = first_key; i <= last; i += step) out.push_back(static_cast<size_t>(i));
  return out;
}

CommandSpec MakeCommand(std::string name, int arity, uint32_t flags, int first_key, int last_key, int step,
                        Handler handler, std::string acl, std::string summary, std::string group) {
  CommandSpec s;
  s.name = std::move(name);
  s.arity = arity;
  s.flags = flags;
  s.first_key = first_key;
  s.last_key = last_key;
  s.step = step;
  s.handler = handler;
  s.acl_categories = std::move(acl);
  s.summary = std::move(summary);
  s.group = std::move(group);
  return s;
}

std::vector<size_t> NumKeysAt(std::span<const std::string_view> args, size_t pos) {
  std::vector<size_t> out;
  int64_t n;
  if (pos >= args.size() || !ParseInt64(args[pos], &n) || n <= 0 ||
      static_cast<uint64_t>(n) > args.size() - pos - 1)
    return out;
  for (int64_t i = 0; i < n; ++i) out.push_back(pos + 1 + static_cast<size_t>(i));
  return out;
}

namespace {
struct Index {
  absl::flat_hash_map<std::string, const CommandSpec*> by_name;
};
Index& GetIndex() {
  static Index index;
  return index;
}
}  // namespace

CommandRegistry::CommandRegistry() = default;

void CommandRegistry::Add(CommandSpec spec) { commands_.push_back(std::move(spec)); }

namespace {
// Tips and key specs as Redis has them for the command (see key_specs.h).
void AttachKeySpecs(CommandSpec& c) {
  bool from_redis = false;
  if (c.key_specs.empty() && c.tips.empty()) {
    if (const RedisCommandMeta* m = FindRedisCommandMeta(c.name)) {
      c.tips = m->tips;
      c.key_specs = m->key_specs;
      from_redis = true;
    } else if (c.first_key > 0 && c.step > 0) {
      uint32_t flags = (c.flags & kCmdWrite) ? (kKsRW | kKsUpdate) : (kKsRO | kKsAccess);
      int last = c.last_key >= 0 ? c.last_key - c.first_key : c.last_key;
      c.key_specs.push_back(MakeKeySpec(flags, BeginIndex(c.first_key), FindRange(last, c.step, 0)));
    }
  }
  c.legacy_range = LegacyRangeFromSpecs(c.key_specs);
  // Redis derives movablekeys from the specs alone (SET and BITFIELD have a
  // key function for their flags, not for positions); a Larder command
  // without Redis's specs is movable when its positions come from get_keys.
  if (c.legacy_range.movable || (!from_redis && c.get_keys)) c.flags |= kCmdMovableKeys;
}
}  // namespace

void CommandRegistry::Finalize() {
  std::sort(commands_.begin(), commands_.end(),
            [](const CommandSpec& a, const CommandSpec& b) { return a.name < b.name; });
  int next_id = 0;
  auto mark = [](CommandSpec& c) {
    if (c.route == Route::kConnection && !(c.flags & kCmdLocalOnly)) c.flags |= kCmdGathers;
    AttachKeySpecs(c);
  };
  for (auto& c : commands_) {
    mark(c);
    for (auto& sub : c.subcommands) mark(sub);
    c.id = next_id++;
    flat_.push_back(&c);
    for (auto& sub : c.subcommands) {
      sub.id = next_id++;
      sub.parent = &c;
      flat_.push_back(&sub);
    }
    GetIndex().by_name[c.name] = &c;
  }
}

const CommandSpec* CommandRegistry::Find(std::string_view name) const {
  auto& idx = GetIndex().by_name;
  if (name.size() > 64) return nullptr;
  char buf[64];
  for (size_t i = 0; i < name.size(); ++i) buf[i] = static_cast<char>(std::tolower(static_cast<unsigned char>(name[i])));
  auto it = idx.find(absl::string_view(buf, name.size()));
  return it == idx.end() ? nullptr : it->second;
}

const CommandRegistry& Commands() {
  static CommandRegistry* registry = [] {
    auto* r = new CommandRegistry();
    RegisterConnectionFamily(r);
    RegisterKeysFamily(r);
    RegisterStringFamily(r);
    RegisterHashFamily(r);
    RegisterSetFamily(r);
    RegisterListFamily(r);
    RegisterZSetFamily(r);
    RegisterBitmapFamily(r);
    RegisterGeoFamily(r);
    RegisterHllFamily(r);
    RegisterMemoryFamily(r);
    RegisterCacheFamily(r);
    RegisterServerFamily(r);
    r->Finalize();
    return r;
  }();
  return *registry;
}

}  // namespace larder
