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

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "commands/dump_family.h"
#include "commands/families.h"
#include "config/config.h"
#include "engine/engine.h"
#include "common/clock.h"
#include "common/numbers.h"
#include "common/strings.h"
#include "engine/command.h"
#include "engine/notify.h"
#include "keyspace/db.h"
#include "rdb/rdb.h"
#include "resp/reply_builder.h"

namespace larder {

namespace {

// What the payload follows from the configuration: rdbcompression (as
// Redis's DUMP does) and list-max-listpack-size (its lists' nodes).
rdb::Writer::Options PayloadOptions(CommandContext& ctx) {
  rdb::Writer::Options o;
  o.compress = ctx.engine->config().Get("rdbcompression").value_or("yes") == "yes";
  int64_t fill;
  if (ParseInt64(ctx.engine->config().Get("list-max-listpack-size").value_or("-2"), &fill))
    o.list_fill = static_cast<int>(std::clamp<int64_t>(fill, INT_MIN, INT_MAX));
  return o;
}

// DUMP key: the payload, or a null when the key is missing.
void Dump(CommandContext& ctx) {
  Entry* e = ctx.DbFor(ctx.arg(1)).FindRead(ctx.arg(1));
  if (!e) return ctx.rb->Null();
  ctx.rb->Bulk(rdb::DumpPayload(e, PayloadOptions(ctx)));
}

// ---- MIGRATE ----
//
// MIGRATE runs synchronously on the shard thread that holds its keys (all
// shards involved parked, for KEYS across shards, as any multi-shard write
// runs): it connects, sends AUTH/SELECT/RESTORE, and reads the replies with
// every socket step (connect, each write, each reply line) bounded by the
// command's timeout, so the shard stalls at most that long per step. Redis
// blocks its only thread the same way.

// A blocking conversation with the target over a non-blocking socket, each
// step waiting at most `timeout_ms`.
class SyncConn {
 public:
  // Timeouts past a year are a year (the deadlines stay within int64 us).
  explicit SyncConn(int64_t timeout_ms) { set_timeout(timeout_ms); }
  void set_timeout(int64_t ms) { timeout_ms_ = std::min<int64_t>(ms, 365LL * 86400 * 1000); }
  // Whether the last failed step failed by running out of time (no retry then).
  bool timed_out() const { return timed_out_; }
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
    timed_out_ = false;
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
    timed_out_ = false;
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
      if (n == 0) {
        timed_out_ = false;
        return false;
      }
      if (errno == EINTR) continue;
      if (errno != EAGAIN) return false;
      if (!Wait(fd_, POLLIN, deadline)) return false;
    }
  }

 private:
  bool Wait(int fd, short events) { return Wait(fd, events, MonotonicUs() + timeout_ms_ * 1000); }
  bool Wait(int fd, short events, int64_t deadline_us) {
    timed_out_ = false;
    for (;;) {
      int64_t left = deadline_us - MonotonicUs();
      if (left <= 0) {
        timed_out_ = true;
        return false;
      }
      pollfd p{fd, events, 0};
      int rc = poll(&p, 1, static_cast<int>(std::min<int64_t>((left + 999) / 1000, INT32_MAX)));
      if (rc > 0) return true;
      if (rc < 0 && errno == EINTR) continue;
      timed_out_ = rc == 0;
      return false;
    }
  }

  int64_t timeout_ms_ = 1000;
  bool timed_out_ = false;
  int fd_ = -1;
  std::string in_;
};

// The connections MIGRATE keeps to its targets, as Redis does
// (migrate_cached_sockets): by "host:port" as given, at most 64 (one of
// them is closed for a new one), each closed once idle for 10 s, which is
// checked at each MIGRATE and INFO (Redis checks once a second). A MIGRATE
// takes its target's connection out while it talks and puts it back after,
// so shards migrating to one target at once do not wait for each other (the
// second opens its own, closed when it comes back to a filled slot).
class MigrateSockets {
 public:
  struct Cached {
    std::unique_ptr<SyncConn> conn;
    int64_t last_dbid = -1;  // the database selected on it, -1: unknown
    int64_t last_use_ms = 0;
  };
  static constexpr size_t kMax = 64;
  static constexpr int64_t kIdleMs = 10000;

  std::optional<Cached> Take(const std::string& name) {
    std::lock_guard lock(mu_);
    CloseIdle();
    auto it = map_.find(name);
    if (it == map_.end()) return std::nullopt;
    Cached c = std::move(it->second);
    map_.erase(it);
    return c;
  }
  void Put(const std::string& name, Cached c) {
    c.last_use_ms = MonotonicUs() / 1000;
    std::lock_guard lock(mu_);
    if (map_.contains(name)) return;
    if (map_.size() >= kMax) map_.erase(map_.begin());
    map_.emplace(name, std::move(c));
  }
  size_t Count() {
    std::lock_guard lock(mu_);
    CloseIdle();
    return map_.size();
  }

 private:
  void CloseIdle() {
    int64_t now = MonotonicUs() / 1000;
    std::erase_if(map_, [now](const auto& kv) { return now - kv.second.last_use_ms > kIdleMs; });
  }
  std::mutex mu_;
  std::map<std::string, Cached> map_;
};

MigrateSockets& CachedSockets() {
  static MigrateSockets sockets;
  return sockets;
}

// A command as the target reads it: a RESP array of bulk strings (what a
// RESP2 reply builder writes for an array of bulks).
void AppendCommand(std::string* out, std::initializer_list<std::string_view> args) {
  resp::ReplyBuilder rb(out, 2);
  rb.ArrayHeader(args.size());
  for (std::string_view a : args) rb.Bulk(a);
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

  // The RESTOREs (keys that expired since the lookup are left out).
  std::string restores;
  std::vector<std::string_view> sent;
  int64_t now = UnixTimeMs();
  rdb::Writer::Options payload_opts = PayloadOptions(ctx);
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
    std::string payload = rdb::DumpPayload(e, payload_opts);
    if (replace) AppendCommand(&restores, {"RESTORE", key, ttl_text, payload, "REPLACE"});
    else AppendCommand(&restores, {"RESTORE", key, ttl_text, payload});
    sent.push_back(key);
  }

  std::string name = std::string(ctx.arg(1)) + ":" + std::string(ctx.arg(2));
  // A cached connection the target has closed fails at once: as Redis, one
  // more try on a new connection, unless the failure was a timeout or some
  // key was already acknowledged.
  for (bool may_retry = true;; may_retry = false) {
    std::optional<MigrateSockets::Cached> cached = CachedSockets().Take(name);
    if (!cached) {
      cached.emplace();
      cached->conn = std::make_unique<SyncConn>(timeout);
      if (!cached->conn->Connect(std::string(ctx.arg(1)), std::string(ctx.arg(2))))
        return ctx.Error(OpStatus::kMigrateConnect);
    }
    SyncConn& conn = *cached->conn;
    conn.set_timeout(timeout);

    std::string cmd;
    if (have_pass) {
      if (have_user) AppendCommand(&cmd, {"AUTH", username, password});
      else AppendCommand(&cmd, {"AUTH", password});
    }
    bool select = cached->last_dbid != dbid;
    std::string db_text = std::to_string(dbid);
    if (select) AppendCommand(&cmd, {"SELECT", db_text});
    cmd += restores;

    bool write_error = false;
    std::string auth_reply, select_reply, line;
    if (!conn.WriteAll(cmd)) {
      write_error = true;
    } else if ((!have_pass || conn.ReadLine(&auth_reply)) && (!select || conn.ReadLine(&select_reply))) {
      bool target_error = false;
      size_t done = 0;
      for (std::string_view key : sent) {
        if (!conn.ReadLine(&line)) break;
        ++done;
        bool failed = (have_pass && auth_reply.starts_with('-')) || (select && select_reply.starts_with('-')) ||
                      line.starts_with('-');
        if (failed) {
          if (!target_error) {
            target_error = true;
            cached->last_dbid = -1;
            const std::string& err = (have_pass && auth_reply.starts_with('-')) ? auth_reply
                                     : (select && select_reply.starts_with('-')) ? select_reply
                                                                                 : line;
            ctx.Error(OpStatus::kMigrateTargetError, std::string_view(err).substr(1));
          }
        } else if (!copy) {
          Db& db = ctx.DbFor(key);
          if (db.Delete(key)) NotifyKeyspaceEvent(ctx, kNotifyGeneric, "del", key);
        }
      }
      bool socket_error = done < sent.size();
      if (!socket_error) {
        if (!target_error) {
          cached->last_dbid = dbid;
          ctx.rb->Ok();
        }
        CachedSockets().Put(name, std::move(*cached));
        return;
      }
      // The connection is dropped; the keys acknowledged are gone already.
      if (target_error) return;
      if (done > 0 || !may_retry || conn.timed_out()) return ctx.Error(OpStatus::kMigrateIo, "reading");
      continue;
    }
    if (!may_retry || conn.timed_out()) return ctx.Error(OpStatus::kMigrateIo, write_error ? "writing" : "reading");
  }
}

}  // namespace

size_t MigrateCachedSockets() { return CachedSockets().Count(); }

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
