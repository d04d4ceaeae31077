// ACL: users, their rules and the permission check, as Redis 7.0 has them.
//
//   ACL SETUSER / user lines / aclfile ──► ApplyUserRule (acl_rules.cc) on a
//   copy of the user ──► Users::Put (a new immutable snapshot, epoch + 1)
//   Dispatch ──► client's snapshot still current? ──► AllowsEverything: done
//            └─► else Check(user, spec, argv): command bit, keys, channels
//
// A User is immutable once published: a change builds a new User and swaps
// it in under the store's lock, and bumps a global epoch. Each client keeps
// a shared_ptr to the snapshot it authenticated with and the epoch it was
// taken at; Dispatch compares that epoch with the store's (one relaxed load)
// and refreshes the snapshot by name when it moved. So the hot path for the
// default user (`on nopass ~* &* +@all`) is one compare of two integers.
//
// Commands are numbered densely by CommandSpec::id (every command and
// subcommand); a selector's allowed commands are a bitmap over those ids.
// Categories come from each spec's acl_categories string.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace larder {

struct CommandSpec;
class CommandRegistry;

namespace acl {

// Redis's categories, in ACL CAT's order (the index is the category's bit).
inline constexpr const char* kCategoryNames[] = {
    "keyspace", "read",     "write",   "set",      "sortedset", "list",       "hash",
    "string",   "bitmap",   "hyperloglog", "geo",  "stream",    "pubsub",     "admin",
    "fast",     "slow",     "blocking", "dangerous", "connection", "transaction", "scripting"};
inline constexpr int kCategoryCount = sizeof(kCategoryNames) / sizeof(kCategoryNames[0]);
// The category's bit, or 0 when there is no such category (case-insensitive).
uint32_t CategoryFlag(std::string_view name);
// The bits of an acl_categories string ("@write @string @slow").
uint32_t ParseCategories(std::string_view acl_categories);

// The command table as ACL rules see it: every spec by id, its categories,
// and the lookups rules make. Built once from the installed table.
class CommandTable {
 public:
  explicit CommandTable(const CommandRegistry& registry);
  const CommandRegistry& registry() const { return *registry_; }
  size_t size() const { return specs_.size(); }  // ids are 0 .. size()-1
  const CommandSpec* spec(size_t id) const { return specs_[id]; }
  uint32_t categories(size_t id) const { return categories_[id]; }
  // A command or "container|subcommand", case-insensitive; null if none (as
  // Redis's strict lookup: "get|x" is none, "config|get|x" is none). By the
  // commands' own names: rules are about commands, whatever a
  // rename-command makes clients call them.
  const CommandSpec* Lookup(std::string_view name) const;

 private:
  const CommandRegistry* registry_;
  std::map<std::string, const CommandSpec*, std::less<>> by_name_;  // every full name
  std::vector<const CommandSpec*> specs_;
  std::vector<uint32_t> categories_;
};

enum KeyPerm : uint8_t { kRead = 1, kWrite = 2, kReadWrite = 3 };

struct KeyPattern {
  std::string pattern;
  uint8_t perms = kReadWrite;
};

// One set of permissions: the user's root one, or a "(...)" selector.
struct Selector {
  bool root = false;
  bool all_keys = false;
  bool all_channels = false;
  // Every command bit set and none cleared since (+@all): Check skips the bitmap.
  bool all_commands = false;
  // Started from +@all (Redis's reserved "future commands" bit): ACL LIST
  // then describes it as +@all minus what was taken away.
  bool future_commands = false;
  std::vector<uint64_t> allowed;  // bit per command id
  // +select|0: first arguments allowed for an otherwise denied command, by id.
  std::map<size_t, std::vector<std::string>> first_args;
  std::vector<KeyPattern> keys;
  std::vector<std::string> channels;

  bool Allowed(size_t id) const { return id / 64 < allowed.size() && (allowed[id / 64] >> (id % 64)) & 1; }
  void SetAllowed(size_t id, bool on);
};

struct User {
  std::string name;
  bool enabled = false;
  bool nopass = false;
  // sanitize-payload / skip-sanitize-payload (accepted, no effect: no RESTORE).
  enum class Sanitize : uint8_t { kNone, kSanitize, kSkip } sanitize = Sanitize::kNone;
  std::vector<std::string> passwords;  // SHA-256, lowercase hex
  std::vector<Selector> selectors;     // [0] is the root selector
  // on nopass, and one selector with all commands, all keys and all
  // channels: Check would always say yes. Set by Finish().
  bool allows_everything = false;

  // A user as ACL SETUSER creates it: off, no password, no permissions
  // (channels per acl-pubsub-default).
  static User Create(std::string name, const CommandTable& table, bool pubsub_all);
  // Recomputes allows_everything; call after the last rule.
  void Finish();
  // Whether `password` is one of the user's (or the user is nopass).
  bool PasswordMatches(std::string_view password) const;
};

// Redis's default user: on nopass ~* &* +@all.
User DefaultUser(const CommandTable& table);

// SHA-256 of `text` as 64 lowercase hex digits.
std::string HashPassword(std::string_view text);

// ---- Rules (acl_rules.cc) ----

// Applies one rule ("on", ">pass", "~key*", "+@read", "(+get ~k*)", "reset"
// ...) to `user`. kOk, or the reason it is refused: an OpStatus whose text
// is the reason alone (kAclSyntaxError...), for the caller's line.
OpStatus ApplyUserRule(User& user, std::string_view op, const CommandTable& table, bool pubsub_all);
// Applies one rule to a selector (the rules valid inside parentheses).
OpStatus ApplySelectorRule(Selector& s, std::string_view op, const CommandTable& table);
// Joins selector rules spread over several arguments ("(+get" "~k)") into
// one, as Redis does for ACL SETUSER and user lines. False if a "(" is never
// closed; *bad is then the index of the argument that opened it.
bool MergeSelectorArgs(std::span<const std::string> args, std::vector<std::string>* out, size_t* bad);

// The command rules of a selector as ACL GETUSER prints them: "+@all" or
// "-@all", then the categories that fit best, then single commands.
std::string DescribeCommands(const Selector& s, const CommandTable& table);
// A selector's keys, channels and commands as ACL LIST prints them.
std::string DescribeSelector(const Selector& s, const CommandTable& table);
// The whole user after its name, as ACL LIST and ACL SAVE print it.
std::string DescribeUser(const User& u, const CommandTable& table);
// GETUSER's "keys" and "channels" fields of a selector.
std::string DescribeKeys(const Selector& s);
std::string DescribeChannels(const Selector& s);

// ---- The check (acl.cc) ----

enum class Denial : uint8_t { kNone, kCommand, kKey, kChannel, kAuth };

struct CheckResult {
  Denial denial = Denial::kNone;
  size_t pos = 0;  // the offending argument (kKey, kChannel)
  bool ok() const { return denial == Denial::kNone; }
};

// Whether `user` may run `spec` with `argv` (argv[0] is the command name):
// some selector must allow the command, each of its keys for the way the
// command uses it, and each of its channels. When none does, the denial
// Redis reports: the command if no selector allowed it, else the key or
// channel that failed, the one furthest into the arguments.
CheckResult Check(const User& user, const CommandSpec& spec, std::span<const std::string_view> argv);

// Whether some selector of `user` allows this command line and may read
// every key (allkeys, or a "*" pattern with read permission): Redis's
// ACLUserCheckCmdWithUnrestrictedKeyAccess, which SORT asks before it follows
// BY and GET patterns to keys that no key argument names.
bool HasUnrestrictedReadAccess(const User& user, const CommandSpec& spec, std::span<const std::string_view> argv);

// ---- ACL LOG ----

struct LogEntry {
  uint64_t count = 1;
  Denial reason = Denial::kCommand;
  std::string context = "toplevel";
  std::string object;
  std::string username;
  int64_t ctime_ms = 0;
  std::string client_info;
};

// Newest first, at most acllog-max-len; an event like one of the newest ten
// (same reason, context, object and user, within 60 s) bumps its count.
class Log {
 public:
  void Add(LogEntry e, size_t max_len);
  std::vector<LogEntry> Newest(size_t count) const;
  void Reset();
  void Trim(size_t max_len);

 private:
  mutable std::mutex mu_;
  std::deque<LogEntry> entries_;
};

// ---- The users ----

// Every user, by name. Any thread; a change takes the lock and bumps the
// epoch, a reader of the hot path only reads the epoch.
class Users {
 public:
  explicit Users(const CommandTable* table);

  const CommandTable& table() const { return *table_; }
  std::shared_ptr<const User> Find(std::string_view name) const;
  std::shared_ptr<const User> Default() const { return Find("default"); }
  // Creates or replaces a user (the default one too).
  void Put(User user);
  // False if there was no such user.
  bool Delete(std::string_view name);
  // Replaces every user at once (ACL LOAD); one without "default" gets
  // Redis's default user.
  void ReplaceAll(std::vector<User> users);
  std::vector<std::shared_ptr<const User>> All() const;  // by name

  uint64_t epoch() const { return epoch_.load(std::memory_order_relaxed); }
  // New connections need no AUTH: the default user is on and nopass.
  bool default_open() const { return default_open_.load(std::memory_order_relaxed); }

  Log& log() { return log_; }

 private:
  void Changed();  // under mu_

  const CommandTable* table_;
  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<const User>, std::less<>> users_;
  std::atomic<uint64_t> epoch_{1};
  std::atomic<bool> default_open_{true};
  Log log_;
};

// ACL LOG's "reason" for a denial.
const char* DenialName(Denial d);

// ---- Users from configuration ----

// Builds a user from a `user` line's words (name, rules...): an existing
// one (`base`, the default user) is reset first. kOk, or the reason with
// *bad_rule the rule refused.
OpStatus BuildUser(std::span<const std::string> words, const User* base, const CommandTable& table,
                   bool pubsub_all, User* out, std::string* bad_rule);
// ACL LOAD: every line of the file, all or nothing. Returns "" when the
// users were replaced, else Redis's report of every problem found.
std::string LoadFile(const std::string& path, Users* users, bool pubsub_all);
// ACL SAVE: every user as a `user` line, written to a temporary file and
// renamed over `path`. False with the reason logged.
bool SaveFile(const std::string& path, const Users& users);

}  // namespace acl
}  // namespace larder
