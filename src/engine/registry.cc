#include <algorithm>
#include <cstring>

#include "common/numbers.h"
#include "common/strings.h"
#include "engine/command.h"

namespace larder {

namespace {
const CommandRegistry* g_commands = nullptr;

inline char FoldAscii(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }

// FNV-1a over the folded bytes: short names, one multiply per byte.
inline uint32_t NameHash(const char* s, size_t n) {
  uint32_t h = 2166136261u;
  for (size_t i = 0; i < n; ++i) h = (h ^ static_cast<unsigned char>(s[i])) * 16777619u;
  return h;
}
}  // namespace

KeyPositions CommandSpec::KeyIndexes(std::span<const std::string_view> args) const {
  if (get_keys) return KeyPositions(get_keys(args));
  KeyPositions out;
  if (first_key <= 0 || step <= 0) return out;
  if (first_key == last_key) {  // one key: most commands
    if (static_cast<size_t>(first_key) < args.size()) out.push_back(static_cast<size_t>(first_key));
    return out;
  }
  long argc = static_cast<long>(args.size());
  long last = last_key >= 0 ? last_key : argc + last_key;
  if (last >= argc) last = argc - 1;
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
    c.single_key = (!c.get_keys && !c.needs_all_shards && c.first_key > 0 && c.first_key == c.last_key && c.step > 0) ? c.first_key : 0;
  };
  flat_.clear();
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
  }
  size_t size = 16;
  while (size < commands_.size() * 4) size *= 2;
  slots_.assign(size, Slot{});
  mask_ = size - 1;
  for (const auto& c : commands_) {
    std::string name = c.name;
    for (const auto& [from, to] : renames_)
      if (from == c.name) name = to;
    if (name.empty()) continue;  // renamed to "": no client can call it
    size_t i = NameHash(name.data(), name.size()) & mask_;
    while (slots_[i].spec) i = (i + 1) & mask_;
    slots_[i] = Slot{std::move(name), &c};
  }
}

bool CommandRegistry::Rename(std::string_view from, std::string_view to, std::string* err) {
  std::string real = AsciiLower(from), now = AsciiLower(to);
  bool known = false;
  for (const auto& c : commands_) known |= c.name == real;
  for (const auto& [f, t] : renames_) known &= f != real;
  if (!known) {
    *err = "No such command in rename-command";
    return false;
  }
  if (!now.empty()) {
    for (const auto& c : commands_) {
      std::string current = c.name;
      for (const auto& [f, t] : renames_)
        if (f == c.name) current = t;
      if (current == now) {
        *err = "Target command name already exists";
        return false;
      }
    }
    for (const auto& [f, t] : renames_)
      if (t == now) {
        *err = "Target command name already exists";
        return false;
      }
  }
  renames_.emplace_back(std::move(real), std::move(now));
  return true;
}

const CommandSpec* CommandRegistry::Find(std::string_view name) const {
  constexpr size_t kMaxName = 32;  // longer than any command name
  if (name.size() > kMaxName || slots_.empty()) return nullptr;
  char buf[kMaxName];
  uint32_t h = 2166136261u;
  for (size_t i = 0; i < name.size(); ++i) {
    char c = FoldAscii(name[i]);
    buf[i] = c;
    h = (h ^ static_cast<unsigned char>(c)) * 16777619u;
  }
  for (size_t i = h & mask_;; i = (i + 1) & mask_) {
    const Slot& slot = slots_[i];
    if (!slot.spec) return nullptr;
    if (slot.name.size() != name.size()) continue;
    const char* n = slot.name.data();
    size_t k = 0;
    while (k < name.size() && n[k] == buf[k]) ++k;  // short names: no memcmp call
    if (k == name.size()) return slot.spec;
  }
}

const CommandSpec* CommandRegistry::FindByFullName(std::string_view name) const {
  size_t bar = name.find('|');
  if (bar == std::string_view::npos) return Find(name);
  if (name.find('|', bar + 1) != std::string_view::npos) return nullptr;
  const CommandSpec* base = Find(name.substr(0, bar));
  if (!base || base->subcommands.empty()) return nullptr;
  return FindSub(*base, name.substr(bar + 1));
}

const CommandSpec* CommandRegistry::FindSub(const CommandSpec& parent, std::string_view sub) const {
  size_t plen = parent.name.size();
  for (const auto& s : parent.subcommands) {
    if (s.name.size() != plen + 1 + sub.size()) continue;
    bool same = true;
    for (size_t i = 0; i < sub.size() && same; ++i) same = s.name[plen + 1 + i] == FoldAscii(sub[i]);
    if (same) return &s;
  }
  return nullptr;
}

const CommandRegistry& Commands() { return *g_commands; }
void InstallCommands(const CommandRegistry* table) { g_commands = table; }

}  // namespace larder
