// ACL: the permission check, the users store, the ACL log, and the ACL file.
#include "engine/acl.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "common/clock.h"
#include "common/glob.h"
#include "common/log.h"
#include "common/strings.h"
#include "engine/command.h"

namespace larder::acl {

std::string HashPassword(std::string_view text) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(text.data(), text.size(), digest, &len, EVP_sha256(), nullptr);
  static const char* kHex = "0123456789abcdef";
  std::string out;
  out.reserve(len * 2);
  for (unsigned int i = 0; i < len; ++i) {
    out.push_back(kHex[digest[i] >> 4]);
    out.push_back(kHex[digest[i] & 15]);
  }
  return out;
}

bool User::PasswordMatches(std::string_view password) const {
  if (nopass) return true;
  std::string hashed = HashPassword(password);
  bool found = false;
  for (const auto& p : passwords) {
    // Compares every byte, so the time taken says nothing about the hash.
    int diff = p.size() != hashed.size();
    for (size_t i = 0; i < hashed.size() && i < p.size(); ++i) diff |= p[i] ^ hashed[i];
    found |= diff == 0;
  }
  return found;
}

// ---- The check ----

namespace {

// The channel arguments of the Pub/Sub commands (Redis's
// getChannelsFromCommand), with whether each is a pattern. Larder has none
// of these commands yet; the check is ready for them.
void ChannelArgs(const CommandSpec& spec, std::span<const std::string_view> argv,
                 std::vector<std::pair<size_t, bool>>* out) {
  const std::string& n = spec.name;
  if (n == "publish" || n == "spublish") {
    if (argv.size() > 1) out->emplace_back(1, false);
  } else if (n == "subscribe" || n == "ssubscribe" || n == "psubscribe") {
    for (size_t i = 1; i < argv.size(); ++i) out->emplace_back(i, n == "psubscribe");
  }
}

bool CommandHasKeys(const CommandSpec& spec) {
  if (spec.get_keys) return true;
  for (const auto& k : spec.key_specs)
    if (!(k.flags & kKsNotKey)) return true;
  return false;
}

Denial CheckSelector(const Selector& s, const CommandSpec& spec, std::span<const std::string_view> argv,
                     std::vector<KeySpecRef>* keys, bool* keys_done, size_t* pos) {
  size_t id = static_cast<size_t>(spec.id);
  if (!s.all_commands && !(spec.flags & kCmdNoAuth) && !s.Allowed(id)) {
    // Maybe allowed with this first argument only (+select|0).
    auto it = s.first_args.find(id);
    size_t idx = spec.parent ? 2 : 1;
    if (argv.size() < 2 || it == s.first_args.end() || idx >= argv.size()) return Denial::kCommand;
    bool match = false;
    for (const auto& a : it->second) match |= EqualsIgnoreCase(a, argv[idx]);
    if (!match) return Denial::kCommand;
  }
  if (!s.all_keys && CommandHasKeys(spec)) {
    if (!*keys_done) {
      *keys = KeysWithFlags(spec, argv);
      *keys_done = true;
    }
    for (const KeySpecRef& k : *keys) {
      uint8_t need = 0;
      if (k.flags & kKsAccess) need |= kRead;
      if (k.flags & (kKsInsert | kKsDelete | kKsUpdate)) need |= kWrite;
      bool ok = false;
      for (const auto& p : s.keys)
        if ((p.perms & need) == need && GlobMatch(p.pattern, argv[k.pos])) {
          ok = true;
          break;
        }
      if (!ok) {
        *pos = k.pos;
        return Denial::kKey;
      }
    }
  }
  if (!s.all_channels) {
    std::vector<std::pair<size_t, bool>> channels;
    ChannelArgs(spec, argv, &channels);
    for (auto [i, is_pattern] : channels) {
      bool ok = false;
      for (const auto& p : s.channels)
        if (is_pattern ? p == argv[i] : GlobMatch(p, argv[i])) {
          ok = true;
          break;
        }
      if (!ok) {
        *pos = i;
        return Denial::kChannel;
      }
    }
  }
  return Denial::kNone;
}

}  // namespace

CheckResult Check(const User& user, const CommandSpec& spec, std::span<const std::string_view> argv) {
  if (user.allows_everything) return {};
  // The key list is found once for all selectors.
  std::vector<KeySpecRef> keys;
  bool keys_done = false;
  CheckResult worst{Denial::kCommand, 0};
  for (const auto& s : user.selectors) {
    size_t pos = 0;
    Denial d = CheckSelector(s, spec, argv, &keys, &keys_done, &pos);
    if (d == Denial::kNone) return {};
    // The denial reported: a key or channel over the command, and of those
    // the one furthest into the arguments.
    if (d > worst.denial || (d == worst.denial && pos > worst.pos)) worst = {d, pos};
  }
  return worst;
}

bool HasUnrestrictedReadAccess(const User& user, const CommandSpec& spec, std::span<const std::string_view> argv) {
  if (user.allows_everything) return true;
  std::vector<KeySpecRef> keys;
  bool keys_done = false;
  for (const auto& s : user.selectors) {
    size_t pos = 0;
    if (CheckSelector(s, spec, argv, &keys, &keys_done, &pos) != Denial::kNone) continue;
    if (s.all_keys) return true;
    for (const auto& p : s.keys)
      if ((p.perms & kRead) && p.pattern == "*") return true;
  }
  return false;
}

const char* DenialName(Denial d) {
  switch (d) {
    case Denial::kCommand: return "command";
    case Denial::kKey: return "key";
    case Denial::kChannel: return "channel";
    case Denial::kAuth: return "auth";
    case Denial::kNone: break;
  }
  return "unknown";
}

// ---- ACL LOG ----

void Log::Add(LogEntry e, size_t max_len) {
  constexpr int64_t kGroupingMs = 60000;
  std::lock_guard lock(mu_);
  size_t scan = std::min<size_t>(entries_.size(), 10);
  for (size_t i = 0; i < scan; ++i) {
    LogEntry& old = entries_[i];
    int64_t delta = old.ctime_ms - e.ctime_ms;
    if (delta < 0) delta = -delta;
    if (old.reason == e.reason && old.context == e.context && delta <= kGroupingMs && old.object == e.object &&
        old.username == e.username) {
      LogEntry merged = std::move(old);
      merged.client_info = std::move(e.client_info);
      merged.ctime_ms = e.ctime_ms;
      ++merged.count;
      entries_.erase(entries_.begin() + static_cast<long>(i));
      entries_.push_front(std::move(merged));
      return;
    }
  }
  entries_.push_front(std::move(e));
  while (entries_.size() > max_len) entries_.pop_back();
}

std::vector<LogEntry> Log::Newest(size_t count) const {
  std::lock_guard lock(mu_);
  count = std::min(count, entries_.size());
  return std::vector<LogEntry>(entries_.begin(), entries_.begin() + static_cast<long>(count));
}

void Log::Reset() {
  std::lock_guard lock(mu_);
  entries_.clear();
}

void Log::Trim(size_t max_len) {
  std::lock_guard lock(mu_);
  while (entries_.size() > max_len) entries_.pop_back();
}

// ---- The users ----

Users::Users(const CommandTable* table) : table_(table) { Put(DefaultUser(*table)); }

std::shared_ptr<const User> Users::Find(std::string_view name) const {
  std::lock_guard lock(mu_);
  auto it = users_.find(name);
  return it == users_.end() ? nullptr : it->second;
}

void Users::Put(User user) {
  user.Finish();
  auto p = std::make_shared<const User>(std::move(user));
  std::string name = p->name;
  std::lock_guard lock(mu_);
  users_[name] = std::move(p);
  Changed();
}

bool Users::Delete(std::string_view name) {
  std::lock_guard lock(mu_);
  auto it = users_.find(name);
  if (it == users_.end()) return false;
  users_.erase(it);
  Changed();
  return true;
}

void Users::ReplaceAll(std::vector<User> users) {
  std::map<std::string, std::shared_ptr<const User>, std::less<>> next;
  for (auto& u : users) {
    u.Finish();
    std::string name = u.name;
    next[name] = std::make_shared<const User>(std::move(u));
  }
  if (!next.count("default")) next["default"] = std::make_shared<const User>(DefaultUser(*table_));
  std::lock_guard lock(mu_);
  users_ = std::move(next);
  Changed();
}

std::vector<std::shared_ptr<const User>> Users::All() const {
  std::lock_guard lock(mu_);
  std::vector<std::shared_ptr<const User>> out;
  for (const auto& [name, u] : users_) out.push_back(u);
  return out;
}

void Users::Changed() {
  auto it = users_.find("default");
  default_open_.store(it != users_.end() && it->second->enabled && it->second->nopass);
  epoch_.fetch_add(1);
}

// ---- Users from configuration ----

OpStatus BuildUser(std::span<const std::string> words, const User* base, const CommandTable& table,
                   bool pubsub_all, User* out, std::string* bad_rule) {
  std::vector<std::string> rules;
  size_t bad = 0;
  if (!MergeSelectorArgs(words.subspan(1), &rules, &bad)) {
    *bad_rule = words[1 + bad];
    return OpStatus::kAclSyntaxError;
  }
  if (base) {
    *out = *base;
    ApplyUserRule(*out, "reset", table, pubsub_all);
  } else {
    *out = User::Create(words[0], table, pubsub_all);
  }
  for (const auto& r : rules) {
    OpStatus st = ApplyUserRule(*out, r, table, pubsub_all);
    if (st != OpStatus::kOk) {
      *bad_rule = r;
      return st;
    }
  }
  out->Finish();
  return OpStatus::kOk;
}

namespace {
std::string Trim(std::string s, const char* chars) {
  size_t b = s.find_first_not_of(chars);
  if (b == std::string::npos) return "";
  size_t e = s.find_last_not_of(chars);
  return s.substr(b, e - b + 1);
}

bool HasSpaceOrNul(std::string_view s) {
  for (char c : s)
    if (std::isspace(static_cast<unsigned char>(c)) || c == 0) return true;
  return false;
}
}  // namespace

std::string LoadFile(const std::string& path, Users* users, bool pubsub_all) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return FormatError(OpStatus::kAclFileOpen, path, strerror(errno));
  std::stringstream buf;
  buf << in.rdbuf();
  std::string text = buf.str();
  const CommandTable& table = users->table();
  std::string errors;
  std::vector<User> loaded;
  auto known = [&](const std::string& name) {
    for (const auto& u : loaded)
      if (u.name == name) return true;
    return false;
  };
  size_t start = 0;
  int line_no = 0;
  while (start <= text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string line = Trim(text.substr(start, end - start), " \t\r\n");
    start = end + 1;
    ++line_no;
    if (line.empty()) continue;
    // Words are split on single spaces, as Redis does (no quoting).
    std::vector<std::string> argv;
    size_t p = 0;
    for (;;) {
      size_t q = line.find(' ', p);
      argv.push_back(line.substr(p, q == std::string::npos ? std::string::npos : q - p));
      if (q == std::string::npos) break;
      p = q + 1;
    }
    if (argv[0] != "user" || argv.size() < 2) {
      errors += FormatError(OpStatus::kAclFileNoUser, path, line_no);
      continue;
    }
    if (HasSpaceOrNul(argv[1])) {
      errors += FormatError(OpStatus::kAclFileBadName, path, line_no, argv[1]);
      continue;
    }
    if (known(argv[1])) {
      errors += FormatError(OpStatus::kAclFileDuplicate, argv[1], line_no);
      continue;
    }
    User u = User::Create(argv[1], table, pubsub_all);
    std::vector<std::string> rules;
    size_t bad;
    if (!MergeSelectorArgs(std::span<const std::string>(argv).subspan(2), &rules, &bad))
      errors += FormatError(OpStatus::kAclFileParen, path, line_no);
    bool syntax_error = false;
    for (auto& r : rules) {
      r = Trim(r, "\t\r\n");
      OpStatus st = ApplyUserRule(u, r, table, pubsub_all);
      if (st == OpStatus::kOk) continue;
      if (st == OpStatus::kAclUnknownCommand) {
        errors += FormatError(OpStatus::kAclFileUnknown, path, line_no, r, ErrorText(st));
      } else if (!syntax_error) {
        // Only the first: a later error may follow from it.
        errors += FormatError(OpStatus::kAclFileRule, path, line_no, ErrorText(st));
        syntax_error = true;
      }
    }
    loaded.push_back(std::move(u));
  }
  if (!errors.empty()) return errors + std::string(ErrorText(OpStatus::kAclFileNothingChanged));
  users->ReplaceAll(std::move(loaded));
  return "";
}

bool SaveFile(const std::string& path, const Users& users) {
  std::string text;
  for (const auto& u : users.All()) text += "user " + u->name + " " + DescribeUser(*u, users.table()) + "\n";
  std::string tmp = fmt::format("{}.tmp-{}-{}", path, getpid(), UnixTimeMs());
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) {
    LOG_WARNING("Opening temp ACL file for ACL SAVE: {}", strerror(errno));
    return false;
  }
  bool ok = write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  if (!ok) LOG_WARNING("Writing ACL file for ACL SAVE: {}", strerror(errno));
  close(fd);
  if (ok && rename(tmp.c_str(), path.c_str()) != 0) {
    LOG_WARNING("Renaming ACL file for ACL SAVE: {}", strerror(errno));
    ok = false;
  }
  if (!ok) unlink(tmp.c_str());
  return ok;
}

}  // namespace larder::acl
