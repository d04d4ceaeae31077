// ACL rules: parsing a rule into a user or selector, and describing a user
// back as rules (ACL LIST, ACL GETUSER, ACL SAVE), as Redis 7.0 words them.
#include <algorithm>
#include <cctype>

#include "common/strings.h"
#include "engine/acl.h"
#include "engine/command.h"
#include "resp/parser.h"

namespace larder::acl {

uint32_t CategoryFlag(std::string_view name) {
  for (int i = 0; i < kCategoryCount; ++i)
    if (EqualsIgnoreCase(name, kCategoryNames[i])) return 1u << i;
  return 0;
}

uint32_t ParseCategories(std::string_view s) {
  uint32_t out = 0;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && s[i] == ' ') ++i;
    size_t j = s.find(' ', i);
    if (j == std::string_view::npos) j = s.size();
    std::string_view w = s.substr(i, j - i);
    if (w.size() > 1 && w[0] == '@') out |= CategoryFlag(w.substr(1));
    i = j;
  }
  return out;
}

CommandTable::CommandTable(const CommandRegistry& registry) : registry_(&registry) {
  for (const CommandSpec* c : registry.all()) {
    size_t id = static_cast<size_t>(c->id);
    if (id >= specs_.size()) {
      specs_.resize(id + 1, nullptr);
      categories_.resize(id + 1, 0);
    }
    specs_[id] = c;
    categories_[id] = ParseCategories(c->acl_categories);
    by_name_[c->name] = c;
  }
}

const CommandSpec* CommandTable::Lookup(std::string_view name) const {
  auto it = by_name_.find(AsciiLower(name));
  return it == by_name_.end() ? nullptr : it->second;
}

void Selector::SetAllowed(size_t id, bool on) {
  if (id / 64 >= allowed.size()) return;
  if (on) {
    allowed[id / 64] |= uint64_t{1} << (id % 64);
  } else {
    allowed[id / 64] &= ~(uint64_t{1} << (id % 64));
    all_commands = false;
  }
}

namespace {

bool HasSpaces(std::string_view s) {
  for (char c : s)
    if (std::isspace(static_cast<unsigned char>(c)) || c == 0) return true;
  return false;
}

bool ValidHash(std::string_view h) {
  if (h.size() != 64) return false;
  for (char c : h)
    if (!((c >= 'a' && c <= 'f') || (c >= '0' && c <= '9'))) return false;
  return true;
}

Selector EmptySelector(const CommandTable& table, bool root, bool pubsub_all) {
  Selector s;
  s.root = root;
  s.all_channels = pubsub_all;
  s.allowed.assign((table.size() + 63) / 64, 0);
  return s;
}

void SetAll(Selector& s, const CommandTable& table, bool on) {
  std::fill(s.allowed.begin(), s.allowed.end(), on ? ~uint64_t{0} : 0);
  if (on && table.size() % 64) s.allowed.back() = (uint64_t{1} << (table.size() % 64)) - 1;
  s.all_commands = on;
  s.future_commands = on;
  s.first_args.clear();
}

// Allows or denies a command; a container's subcommands follow it.
void ChangePerm(Selector& s, const CommandSpec& c, bool allow) {
  size_t id = static_cast<size_t>(c.id);
  s.SetAllowed(id, allow);
  s.first_args.erase(id);
  for (const auto& sub : c.subcommands) s.SetAllowed(static_cast<size_t>(sub.id), allow);
}

// Every command of a category, and every subcommand of one: a container in
// the category takes all its subcommands along (as Redis does).
void ChangeCategory(Selector& s, const CommandTable& table, uint32_t flag, bool allow) {
  for (const CommandSpec& c : table.registry().top()) {
    if (table.categories(static_cast<size_t>(c.id)) & flag) ChangePerm(s, c, allow);
    for (const CommandSpec& sub : c.subcommands)
      if (table.categories(static_cast<size_t>(sub.id)) & flag) ChangePerm(s, sub, allow);
  }
}

void CountCategory(const Selector& s, const CommandTable& table, uint32_t flag, size_t* on, size_t* off) {
  *on = *off = 0;
  for (size_t id = 0; id < table.size(); ++id) {
    if (!(table.categories(id) & flag)) continue;
    if (s.Allowed(id)) ++*on;
    else ++*off;
  }
}

bool IsWord(std::string_view op, const char* word) { return EqualsIgnoreCase(op, word); }

}  // namespace

OpStatus ApplySelectorRule(Selector& s, std::string_view op, const CommandTable& table) {
  auto at = [&](size_t i) { return i < op.size() ? op[i] : '\0'; };
  if (IsWord(op, "allkeys") || IsWord(op, "~*")) {
    s.all_keys = true;
    s.keys.clear();
  } else if (IsWord(op, "resetkeys")) {
    s.all_keys = false;
    s.keys.clear();
  } else if (IsWord(op, "allchannels") || IsWord(op, "&*")) {
    s.all_channels = true;
    s.channels.clear();
  } else if (IsWord(op, "resetchannels")) {
    s.all_channels = false;
    s.channels.clear();
  } else if (IsWord(op, "allcommands") || IsWord(op, "+@all")) {
    SetAll(s, table, true);
  } else if (IsWord(op, "nocommands") || IsWord(op, "-@all")) {
    SetAll(s, table, false);
  } else if (at(0) == '~' || at(0) == '%') {
    if (s.all_keys) return OpStatus::kAclKeyAfterAll;
    uint8_t perms = 0;
    size_t offset = 1;
    if (op[0] == '%') {
      for (; offset < op.size(); ++offset) {
        char c = static_cast<char>(std::toupper(static_cast<unsigned char>(op[offset])));
        if (c == 'R' && !(perms & kRead)) {
          perms |= kRead;
        } else if (c == 'W' && !(perms & kWrite)) {
          perms |= kWrite;
        } else if (op[offset] == '~') {
          ++offset;
          break;
        } else {
          return OpStatus::kAclSyntaxError;
        }
      }
      if (!perms) return OpStatus::kAclSyntaxError;  // "%" and "%~"
    } else {
      perms = kReadWrite;
    }
    std::string_view pattern = op.substr(std::min(offset, op.size()));
    if (HasSpaces(pattern)) return OpStatus::kAclSyntaxError;
    bool merged = false;
    for (auto& k : s.keys)
      if (k.pattern == pattern) {
        k.perms |= perms;
        merged = true;
      }
    if (!merged) s.keys.push_back({std::string(pattern), perms});
    s.all_keys = false;
  } else if (at(0) == '&') {
    if (s.all_channels) return OpStatus::kAclChannelAfterAll;
    std::string_view pattern = op.substr(1);
    if (HasSpaces(pattern)) return OpStatus::kAclSyntaxError;
    if (std::find(s.channels.begin(), s.channels.end(), pattern) == s.channels.end())
      s.channels.emplace_back(pattern);
    s.all_channels = false;
  } else if (at(0) == '+' && at(1) != '@') {
    std::string_view name = op.substr(1);
    size_t bar = name.rfind('|');
    if (bar == std::string_view::npos) {
      const CommandSpec* c = table.Lookup(name);
      if (!c) return OpStatus::kAclUnknownCommand;
      ChangePerm(s, *c, true);
      return OpStatus::kOk;
    }
    const CommandSpec* base = table.Lookup(name.substr(0, bar));
    if (!base) return OpStatus::kAclUnknownCommand;
    if (base->parent) return OpStatus::kAclFirstArgOfSub;
    std::string_view sub = name.substr(bar + 1);
    if (sub.empty()) return OpStatus::kAclSyntaxError;
    if (!base->subcommands.empty()) {
      const CommandSpec* c = table.Lookup(name);
      if (!c) return OpStatus::kAclUnknownCommand;
      ChangePerm(s, *c, true);
      return OpStatus::kOk;
    }
    // +select|0: a first argument of an otherwise denied command.
    auto& list = s.first_args[static_cast<size_t>(base->id)];
    for (const auto& a : list)
      if (EqualsIgnoreCase(a, sub)) return OpStatus::kOk;
    list.emplace_back(sub);
  } else if (at(0) == '-' && at(1) != '@') {
    const CommandSpec* c = table.Lookup(op.substr(1));
    if (!c) return OpStatus::kAclUnknownCommand;
    ChangePerm(s, *c, false);
  } else if ((at(0) == '+' || at(0) == '-') && at(1) == '@') {
    uint32_t flag = CategoryFlag(op.substr(2));
    if (!flag) return OpStatus::kAclUnknownCommand;
    ChangeCategory(s, table, flag, op[0] == '+');
  } else {
    return OpStatus::kAclSyntaxError;
  }
  return OpStatus::kOk;
}

User User::Create(std::string name, const CommandTable& table, bool pubsub_all) {
  User u;
  u.name = std::move(name);
  u.selectors.push_back(EmptySelector(table, true, pubsub_all));
  u.Finish();
  return u;
}

User DefaultUser(const CommandTable& table) {
  User u = User::Create("default", table, false);
  for (const char* op : {"+@all", "~*", "&*", "on", "nopass"}) ApplyUserRule(u, op, table, false);
  u.Finish();
  return u;
}

void User::Finish() {
  allows_everything = false;
  for (const auto& s : selectors)
    if (s.all_commands && s.all_keys && s.all_channels) allows_everything = true;
}

OpStatus ApplyUserRule(User& u, std::string_view op, const CommandTable& table, bool pubsub_all) {
  if (op.empty()) return OpStatus::kOk;
  if (IsWord(op, "on")) {
    u.enabled = true;
  } else if (IsWord(op, "off")) {
    u.enabled = false;
  } else if (IsWord(op, "skip-sanitize-payload")) {
    u.sanitize = User::Sanitize::kSkip;
  } else if (IsWord(op, "sanitize-payload")) {
    u.sanitize = User::Sanitize::kSanitize;
  } else if (IsWord(op, "nopass")) {
    u.nopass = true;
    u.passwords.clear();
  } else if (IsWord(op, "resetpass")) {
    u.nopass = false;
    u.passwords.clear();
  } else if (op[0] == '>' || op[0] == '#') {
    std::string hash;
    if (op[0] == '>') {
      hash = HashPassword(op.substr(1));
    } else {
      if (!ValidHash(op.substr(1))) return OpStatus::kAclBadHash;
      hash = std::string(op.substr(1));
    }
    if (std::find(u.passwords.begin(), u.passwords.end(), hash) == u.passwords.end()) u.passwords.push_back(hash);
    u.nopass = false;
  } else if (op[0] == '<' || op[0] == '!') {
    std::string hash;
    if (op[0] == '<') {
      hash = HashPassword(op.substr(1));
    } else {
      if (!ValidHash(op.substr(1))) return OpStatus::kAclBadHash;
      hash = std::string(op.substr(1));
    }
    auto it = std::find(u.passwords.begin(), u.passwords.end(), hash);
    if (it == u.passwords.end()) return OpStatus::kAclNoSuchPassword;
    u.passwords.erase(it);
  } else if (op[0] == '(' && op.back() == ')') {
    Selector s = EmptySelector(table, false, pubsub_all);
    std::vector<std::string> ops;
    if (!resp::SplitInlineArgs(op.substr(1, op.size() - 2), &ops)) return OpStatus::kAclSyntaxError;
    for (const auto& o : ops) {
      OpStatus st = ApplySelectorRule(s, o, table);
      if (st != OpStatus::kOk) return st;
    }
    u.selectors.push_back(std::move(s));
  } else if (IsWord(op, "clearselectors")) {
    u.selectors.resize(1);
  } else if (IsWord(op, "reset")) {
    for (const char* r : {"resetpass", "resetkeys", "resetchannels"}) ApplyUserRule(u, r, table, pubsub_all);
    if (pubsub_all) ApplyUserRule(u, "allchannels", table, pubsub_all);
    for (const char* r : {"off", "sanitize-payload", "clearselectors", "-@all"}) ApplyUserRule(u, r, table, pubsub_all);
  } else {
    return ApplySelectorRule(u.selectors[0], op, table);
  }
  return OpStatus::kOk;
}

bool MergeSelectorArgs(std::span<const std::string> args, std::vector<std::string>* out, size_t* bad) {
  out->clear();
  std::string selector;
  bool open = false;
  size_t open_at = 0;
  for (size_t j = 0; j < args.size(); ++j) {
    const std::string& op = args[j];
    if (!open && !op.empty() && op[0] == '(' && op.back() != ')') {
      selector = op;
      open = true;
      open_at = j;
      continue;
    }
    if (open) {
      selector += " " + op;
      if (!op.empty() && op.back() == ')') {
        open = false;
        out->push_back(std::move(selector));
      }
      continue;
    }
    out->push_back(op);
  }
  if (open) {
    *bad = open_at;
    return false;
  }
  return true;
}

// ---- Describing ----

// Redis's ACLDescribeSelectorCommandRules: start from +@all (if the
// selector started there) or -@all, then repeatedly take the category that
// fits the remaining difference best (more commands in common than not, the
// fewest differences), then single commands for what no category covers.
// Subcommands follow their container, first arguments a denied command.
std::string DescribeCommands(const Selector& s, const CommandTable& table) {
  bool additive = !s.future_commands;
  std::string rules = additive ? "-@all " : "+@all ";
  Selector fake = EmptySelector(table, false, false);
  SetAll(fake, table, !additive);
  Selector temp = EmptySelector(table, false, false);
  temp.allowed = s.allowed;
  bool applied[kCategoryCount] = {};
  for (;;) {
    int best = -1;
    size_t mindiff = SIZE_MAX, maxsame = 0;
    for (int j = 0; j < kCategoryCount; ++j) {
      if (applied[j]) continue;
      size_t on, off;
      CountCategory(temp, table, 1u << j, &on, &off);
      size_t diff = additive ? off : on;
      size_t same = additive ? on : off;
      if (same > diff && (diff < mindiff || (diff == mindiff && same > maxsame))) {
        best = j;
        mindiff = diff;
        maxsame = same;
      }
    }
    if (best < 0) break;
    ChangeCategory(fake, table, 1u << best, additive);
    ChangeCategory(temp, table, 1u << best, !additive);
    rules += additive ? "+@" : "-@";
    rules += kCategoryNames[best];
    rules += ' ';
    applied[best] = true;
  }
  auto single = [&](const CommandSpec& c) {
    size_t id = static_cast<size_t>(c.id);
    bool userbit = s.Allowed(id);
    if (userbit != fake.Allowed(id)) {
      rules += userbit ? '+' : '-';
      rules += c.name;
      rules += ' ';
      ChangePerm(fake, c, userbit);
    }
  };
  auto first_args = [&](const CommandSpec& c) {
    size_t id = static_cast<size_t>(c.id);
    auto it = s.first_args.find(id);
    if (s.Allowed(id) || it == s.first_args.end()) return;
    for (const auto& a : it->second) rules += "+" + c.name + "|" + a + " ";
  };
  for (const CommandSpec& c : table.registry().top()) {
    single(c);
    for (const CommandSpec& sub : c.subcommands) {
      single(sub);
      first_args(sub);
    }
    first_args(c);
  }
  rules.pop_back();
  return rules;
}

namespace {
std::string PatternString(const KeyPattern& k) {
  const char* prefix = k.perms == kReadWrite ? "~" : k.perms == kRead ? "%R~" : "%W~";
  return prefix + k.pattern;
}
}  // namespace

std::string DescribeKeys(const Selector& s) {
  if (s.all_keys) return "~*";
  std::string out;
  for (const auto& k : s.keys) {
    if (!out.empty()) out += ' ';
    out += PatternString(k);
  }
  return out;
}

std::string DescribeChannels(const Selector& s) {
  if (s.all_channels) return "&*";
  std::string out;
  for (const auto& c : s.channels) {
    if (!out.empty()) out += ' ';
    out += "&" + c;
  }
  return out;
}

std::string DescribeSelector(const Selector& s, const CommandTable& table) {
  std::string out;
  if (s.all_keys) {
    out += "~* ";
  } else {
    for (const auto& k : s.keys) out += PatternString(k) + " ";
  }
  if (s.all_channels) {
    out += "&* ";
  } else {
    out += "resetchannels ";
    for (const auto& c : s.channels) out += "&" + c + " ";
  }
  return out + DescribeCommands(s, table);
}

std::string DescribeUser(const User& u, const CommandTable& table) {
  std::string out = u.enabled ? "on " : "off ";
  if (u.nopass) out += "nopass ";
  if (u.sanitize == User::Sanitize::kSkip) out += "skip-sanitize-payload ";
  if (u.sanitize == User::Sanitize::kSanitize) out += "sanitize-payload ";
  for (const auto& p : u.passwords) out += "#" + p + " ";
  for (const auto& s : u.selectors) {
    if (s.root) out += DescribeSelector(s, table);
    else out += " (" + DescribeSelector(s, table) + ")";
  }
  return out;
}

}  // namespace larder::acl
