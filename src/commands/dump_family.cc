// DUMP and MIGRATE: a key's value in Redis's serialization format (the
// payload RESTORE takes, rdb/rdb.h DumpPayload), and moving keys to another
// server with it. RESTORE itself is in restore_family.cc.
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "commands/families.h"
#include "common/clock.h"
#include "common/numbers.h"
#include "common/strings.h"
#include "engine/command.h"
#include "engine/notify.h"
#include "keyspace/db.h"
#include "rdb/rdb.h"

namespace larder {

namespace {

// DUMP key: the payload, or a null when the key is missing.
void Dump(CommandContext& ctx) {
  Entry* e = ctx.DbFor(ctx.arg(1)).FindRead(ctx.arg(1));
  if (!e) return ctx.rb->Null();
  ctx.rb->Bulk(rdb::DumpPayload(e));
}

// ---- MIGRATE ----
//
// MIGRATE runs synchronously on the shard thread that holds its keys (all
// shards involved parked, for KEYS across shards, as any multi-shard write
// runs): it connects, sends AUTH/SELECT/RESTORE, and reads the replies with
// every socket step (connect, each write, each reply line) bounded by the
// command's timeout, so the shard stalls at most that long per step. Redis
// blocks its only thread the same way. Unlike Redis, no connection is kept
// for the next MIGRATE to the same target (so SELECT is always sent).

// A blocking conversation with the target over a non-blocking socket, each
// step waiting at most `timeout_ms`.
class SyncConn {
 public:
  explicit SyncConn(int64_t timeout_ms) : timeout_ms_(timeout_ms) {}
  ~SyncConn() {
    if (fd_ >= 0) close(fd_);
  }
  SyncConn(const SyncConn&) = delete;
  SyncConn& operator=(const SyncConn&) = delete;

  bool Connect(const std::string& host, const std::string& port) {
    addrinfo hints{}, *res = nullptr;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(host.c_str(), port.c_str(), &hints, &res) != 0) return false;
    bool ok = false;
    for (addrinfo* ai = res; ai && !ok; ai = ai->ai_next) {
      int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
      if (fd < 0) continue;
      int rc = connect(fd, ai->ai_addr, ai->ai_addrlen);
      if (rc != 0 && errno == EINPROGRESS && Wait(fd, POLLOUT)) {
        int err = 0;
        socklen_t len = sizeof(err);
        rc = (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0) ? 0 : -1;
      }
      if (rc == 0) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        fd_ = fd;
        ok = true;
      } else {
        close(fd);
      }
    }
    freeaddrinfo(res);
    return ok;
  }

  // The whole buffer, in chunks of at most 64 KB each within the timeout.
  bool WriteAll(std::string_view data) {
    while (!data.empty()) {
      size_t chunk = std::min<size_t>(data.size(), 64 * 1024);
      std::string_view part = data.substr(0, chunk);
      int64_t deadline = MonotonicUs() + timeout_ms_ * 1000;
      while (!part.empty()) {
        ssize_t n = send(fd_, part.data(), part.size(), MSG_NOSIGNAL);
        if (n > 0) {
          part.remove_prefix(static_cast<size_t>(n));
          continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno != EAGAIN) return false;
        if (!Wait(fd_, POLLOUT, deadline)) return false;
      }
      data.remove_prefix(chunk);
    }
    return true;
  }

  // One reply line without its CRLF (at most 1 KB kept, as Redis reads it).
  bool ReadLine(std::string* line) {
    line->clear();
    int64_t deadline = MonotonicUs() + timeout_ms_ * 1000;
    for (;;) {
      size_t nl = in_.find('\n');
      if (nl != std::string::npos) {
        line->assign(in_, 0, std::min<size_t>(nl, 1023));
        if (!line->empty() && line->back() == '\r') line->pop_back();
        in_.erase(0, nl + 1);
        return true;
      }
      if (in_.size() > 64 * 1024) in_.erase(0, in_.size() - 1024);  // a line that never ends
      char buf[4096];
      ssize_t n = recv(fd_, buf, sizeof(buf), 0);
      if (n > 0) {
        in_.append(buf, static_cast<size_t>(n));
        continue;
      }
      if (n == 0) return false;
      if (errno == EINTR) continue;
      if (errno != EAGAIN) return false;
      if (!Wait(fd_, POLLIN, deadline)) return false;
    }
  }

 private:
  bool Wait(int fd, short events) { return Wait(fd, events, MonotonicUs() + timeout_ms_ * 1000); }
  static bool Wait(int fd, short events, int64_t deadline_us) {
    for (;;) {
      int64_t left = deadline_us - MonotonicUs();
      if (left <= 0) return false;
      pollfd p{fd, events, 0};
      int rc = poll(&p, 1, static_cast<int>(std::min<int64_t>((left + 999) / 1000, INT32_MAX)));
      if (rc > 0) return true;
      if (rc < 0 && errno == EINTR) continue;
      return false;
    }
  }

  int64_t timeout_ms_;
  int fd_ = -1;
  std::string in_;
};

void AppendBulk(std::string* out, std::string_view s) {
  out->push_back('$');
  out->append(std::to_string(s.size()));
  out->append("\r\n");
  out->append(s);
  out->append("\r\n");
}

void AppendCommand(std::string* out, std::initializer_list<std::string_view> args) {
  out->push_back('*');
  out->append(std::to_string(args.size()));
  out->append("\r\n");
  for (std::string_view a : args) AppendBulk(out, a);
}

// The key positions of MIGRATE (Redis's migrateGetKeys): argument 3, or
// with KEYS (and an empty argument 3) every argument after it.
std::vector<size_t> MigrateKeys(std::span<const std::string_view> args) {
  for (size_t i = 6; i < args.size(); ++i) {
    if (EqualsIgnoreCase(args[i], "keys")) {
      if (!args[3].empty()) return {};
      std::vector<size_t> keys;
      for (size_t k = i + 1; k < args.size(); ++k) keys.push_back(k);
      return keys;
    }
    if (EqualsIgnoreCase(args[i], "auth")) i += 1;
    else if (EqualsIgnoreCase(args[i], "auth2")) i += 2;
  }
  return {3};
}

// MIGRATE host port key|"" destination-db timeout [COPY] [REPLACE]
//   [AUTH password | AUTH2 username password] [KEYS key ...]
void Migrate(CommandContext& ctx) {
  bool copy = false, replace = false;
  std::string_view username, password;
  bool have_user = false, have_pass = false;
  size_t first_key = 3, num_keys = 1;
  for (size_t j = 6; j < ctx.argc(); ++j) {
    size_t more = ctx.argc() - 1 - j;
    std::string_view a = ctx.arg(j);
    if (EqualsIgnoreCase(a, "copy")) {
      copy = true;
    } else if (EqualsIgnoreCase(a, "replace")) {
      replace = true;
    } else if (EqualsIgnoreCase(a, "auth")) {
      if (more < 1) return ctx.SyntaxError();
      password = ctx.arg(++j);
      have_pass = true;
    } else if (EqualsIgnoreCase(a, "auth2")) {
      if (more < 2) return ctx.SyntaxError();
      username = ctx.arg(++j);
      password = ctx.arg(++j);
      have_user = have_pass = true;
    } else if (EqualsIgnoreCase(a, "keys")) {
      if (!ctx.arg(3).empty()) return ctx.Error(OpStatus::kMigrateKeysNeedEmptyKey);
      first_key = j + 1;
      num_keys = ctx.argc() - j - 1;
      break;
    } else {
      return ctx.SyntaxError();
    }
  }
  int64_t timeout, dbid;
  if (!ParseInt64(ctx.arg(5), &timeout) || !ParseInt64(ctx.arg(4), &dbid))
    return ctx.Error(OpStatus::kNotAnInteger);
  if (timeout <= 0) timeout = 1000;

  std::vector<std::string_view> keys;
  for (size_t j = 0; j < num_keys; ++j)
    if (ctx.DbFor(ctx.arg(first_key + j)).FindRead(ctx.arg(first_key + j))) keys.push_back(ctx.arg(first_key + j));
  if (keys.empty()) return ctx.rb->SimpleString("NOKEY");

  SyncConn conn(timeout);
  if (!conn.Connect(std::string(ctx.arg(1)), std::string(ctx.arg(2)))) return ctx.Error(OpStatus::kMigrateConnect);

  std::string cmd;
  if (have_pass) {
    if (have_user) AppendCommand(&cmd, {"AUTH", username, password});
    else AppendCommand(&cmd, {"AUTH", password});
  }
  std::string db_text = std::to_string(dbid);
  AppendCommand(&cmd, {"SELECT", db_text});
  std::vector<std::string_view> sent;
  int64_t now = UnixTimeMs();
  for (std::string_view key : keys) {
    Entry* e = ctx.DbFor(key).Find(key);
    if (!e) continue;
    int64_t ttl = 0;
    if (e->has_expire()) {
      ttl = e->expire_ms() - now;
      if (ttl < 0) continue;
      if (ttl < 1) ttl = 1;
    }
    std::string ttl_text = std::to_string(ttl);
    std::string payload = rdb::DumpPayload(e);
    if (replace) AppendCommand(&cmd, {"RESTORE", key, ttl_text, payload, "REPLACE"});
    else AppendCommand(&cmd, {"RESTORE", key, ttl_text, payload});
    sent.push_back(key);
  }
  if (!conn.WriteAll(cmd)) return ctx.Error(OpStatus::kMigrateIo, "writing");

  std::string auth_reply, select_reply, line;
  if (have_pass && !conn.ReadLine(&auth_reply)) return ctx.Error(OpStatus::kMigrateIo, "reading");
  if (!conn.ReadLine(&select_reply)) return ctx.Error(OpStatus::kMigrateIo, "reading");
  bool target_error = false;
  size_t done = 0;
  for (std::string_view key : sent) {
    if (!conn.ReadLine(&line)) break;
    ++done;
    bool failed = (have_pass && auth_reply.starts_with('-')) || select_reply.starts_with('-') || line.starts_with('-');
    if (failed) {
      if (!target_error) {
        target_error = true;
        const std::string& err = (have_pass && auth_reply.starts_with('-')) ? auth_reply
                                 : select_reply.starts_with('-')            ? select_reply
                                                                            : line;
        ctx.Error(OpStatus::kMigrateTargetError, std::string_view(err).substr(1));
      }
    } else if (!copy) {
      Db& db = ctx.DbFor(key);
      if (db.Delete(key)) NotifyKeyspaceEvent(ctx, kNotifyGeneric, "del", key);
    }
  }
  if (target_error) return;
  if (done < sent.size()) return ctx.Error(OpStatus::kMigrateIo, "reading");
  ctx.rb->Ok();
}

}  // namespace

void RegisterDumpFamily(CommandRegistry* r) {
  CommandSpec s = MakeCommand("dump", 2, kCmdReadOnly, 1, 1, 1, Dump, "@keyspace @read @slow",
                              "Return a serialized version of the value stored at the specified key.", "generic");
  s.since = "2.6.0";
  r->Add(s);
  s = MakeCommand("migrate", -6, kCmdWrite, 3, 3, 1, Migrate, "@keyspace @write @slow @dangerous",
                  "Atomically transfer a key from a Redis instance to another one.", "generic");
  s.since = "2.6.0";
  s.get_keys = MigrateKeys;
  r->Add(std::move(s));
}

}  // namespace larder
