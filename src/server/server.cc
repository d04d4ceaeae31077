#include "server/server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <random>
#include <sstream>

#include "commands/command.h"
#include "common/clock.h"
#include "common/log.h"
#include "server/connection.h"

namespace larder {

namespace {

std::string FormatAddr(const sockaddr_storage& ss) {
  char host[INET6_ADDRSTRLEN] = "?";
  int port = 0;
  if (ss.ss_family == AF_INET) {
    auto* a = reinterpret_cast<const sockaddr_in*>(&ss);
    inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
    port = ntohs(a->sin_port);
  } else if (ss.ss_family == AF_INET6) {
    auto* a = reinterpret_cast<const sockaddr_in6*>(&ss);
    inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
    port = ntohs(a->sin6_port);
  }
  return fmt::format("{}:{}", host, port);
}

// Opens a listening socket on addr:port with SO_REUSEPORT, so each shard can
// have its own socket on the same port and the kernel spreads connections.
int OpenListener(const std::string& addr, int port, int backlog, std::string* err) {
  bool v6 = addr.find(':') != std::string::npos;
  int fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    *err = strerror(errno);
    return -1;
  }
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
  int rc;
  if (v6) {
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    sockaddr_in6 sa{};
    sa.sin6_family = AF_INET6;
    sa.sin6_port = htons(static_cast<uint16_t>(port));
    if (inet_pton(AF_INET6, addr.c_str(), &sa.sin6_addr) != 1) {
      *err = "Invalid bind address";
      close(fd);
      return -1;
    }
    rc = bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa));
  } else {
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(static_cast<uint16_t>(port));
    if (inet_pton(AF_INET, addr.c_str(), &sa.sin_addr) != 1) {
      *err = "Invalid bind address";
      close(fd);
      return -1;
    }
    rc = bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa));
  }
  if (rc != 0 || listen(fd, backlog) != 0) {
    *err = strerror(errno);
    close(fd);
    return -1;
  }
  return fd;
}

int BoundPort(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
  if (ss.ss_family == AF_INET) return ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  return ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
}

}  // namespace

// Accepts connections on one shard's listening sockets.
class Listener : public net::EventHandler {
 public:
  Listener(Server* server, Shard* shard, std::vector<int> fds) : server_(server), shard_(shard), fds_(std::move(fds)) {
    handlers_.reserve(fds_.size());
    for (int fd : fds_) {
      handlers_.push_back(std::make_unique<One>(this, fd));
      shard_->loop().Add(fd, EPOLLIN, handlers_.back().get());
    }
  }
  ~Listener() override {
    for (int fd : fds_) {
      shard_->loop().Remove(fd);
      close(fd);
    }
  }
  void OnEvent(uint32_t) override {}

 private:
  struct One : net::EventHandler {
    One(Listener* l, int fd) : l(l), fd(fd) {}
    void OnEvent(uint32_t) override { l->Accept(fd); }
    Listener* l;
    int fd;
  };

  void Accept(int lfd) {
    for (int i = 0; i < 64; ++i) {
      sockaddr_storage ss{};
      socklen_t len = sizeof(ss);
      int fd = accept4(lfd, reinterpret_cast<sockaddr*>(&ss), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
          LOG_WARNING("Accepting client connection: {}", strerror(errno));
        return;
      }
      server_->total_connections_received.fetch_add(1, std::memory_order_relaxed);
      if (server_->connected_clients.load() >= server_->config().maxclients.load()) {
        static const std::string kMsg = "-" + FormatError(OpStatus::kMaxClients) + "\r\n";
        ssize_t n = write(fd, kMsg.data(), kMsg.size());
        (void)n;
        close(fd);
        server_->rejected_connections.fetch_add(1, std::memory_order_relaxed);
        continue;
      }
      int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
      int keepalive = 1;
      setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &keepalive, sizeof(keepalive));
      sockaddr_storage local{};
      socklen_t llen = sizeof(local);
      getsockname(fd, reinterpret_cast<sockaddr*>(&local), &llen);
      server_->connected_clients.fetch_add(1);
      auto conn = std::make_unique<Connection>(server_, shard_, fd, FormatAddr(ss), FormatAddr(local));
      Connection* raw = conn.get();
      LOG_VERBOSE("Accepted {}", raw->state().addr);
      server_->local(shard_->id()).conns.emplace(raw->state().id, std::move(conn));
      raw->Start();
    }
  }

  Server* server_;
  Shard* shard_;
  std::vector<int> fds_;
  std::vector<std::unique_ptr<One>> handlers_;
};

Server::Server(Config* config) : config_(config) {
  start_time_ms_ = UnixTimeMs();
  std::random_device rd;
  std::mt19937_64 rng(rd());
  static const char kHex[] = "0123456789abcdef";
  for (int i = 0; i < 40; ++i) run_id_.push_back(kHex[rng() % 16]);
}

Server::~Server() {
  cache_.reset();  // its threads publish to the memory budget
  MemoryBudget::SetCurrent(nullptr);
}

bool Server::PausedFor(uint32_t flags) const {
  int64_t until = pause_until_ms_.load(std::memory_order_relaxed);
  if (until == 0) return false;
  if (UnixTimeMs() >= until) return false;
  if (pause_all_.load()) return true;
  return (flags & kCmdWrite) != 0;
}

void Server::RecordCommand(Shard* shard, const CommandSpec* spec, int64_t duration_us, bool failed,
                           std::string_view error_line) {
  ShardLocal& l = local(shard->id());
  auto& st = l.cmd_stats[static_cast<size_t>(spec->id)];
  ++st.calls;
  st.usec += static_cast<uint64_t>(duration_us);
  l.commands_processed.store(l.commands_processed.load(std::memory_order_relaxed) + 1,
                             std::memory_order_relaxed);
  if (failed) {
    ++st.failed;
    size_t sp = error_line.find(' ');
    std::string prefix(error_line.substr(0, std::min<size_t>(sp, 64)));
    while (!prefix.empty() && (prefix.back() == '\r' || prefix.back() == '\n')) prefix.pop_back();
    ++l.error_stats[prefix];
    total_error_replies.fetch_add(1, std::memory_order_relaxed);
  }
  int64_t threshold = config_->latency_monitor_threshold.load(std::memory_order_relaxed);
  if (threshold > 0 && duration_us / 1000 >= threshold)
    RecordLatency((spec->flags & kCmdFast) ? "fast-command" : "command", duration_us / 1000);
}

void Server::MaybeSlowlog(Shard* shard, std::span<const std::string_view> args, int64_t duration_us,
                          const std::string& addr, const std::string& name) {
  int64_t threshold = config_->slowlog_log_slower_than.load(std::memory_order_relaxed);
  if (threshold < 0 || duration_us < threshold) return;
  SlowlogEntry e;
  e.id = NextSlowlogId();
  e.time_s = UnixTimeMs() / 1000;
  e.duration_us = duration_us;
  // As Redis: at most 32 arguments (the last says how many more), each at
  // most 128 bytes (with a note of how many more bytes there were).
  size_t n = std::min<size_t>(args.size(), 32);
  for (size_t i = 0; i < n; ++i) {
    if (i == 31 && args.size() > 32) {
      e.args.push_back(fmt::format("... ({} more arguments)", args.size() - 31));
      break;
    }
    if (args[i].size() > 128)
      e.args.push_back(fmt::format("{}... ({} more bytes)", args[i].substr(0, 128), args[i].size() - 128));
    else
      e.args.emplace_back(args[i]);
  }
  e.addr = addr;
  e.name = name;
  auto& log = local(shard->id()).slowlog;
  log.push_front(std::move(e));
  size_t max = static_cast<size_t>(config_->slowlog_max_len.load());
  while (log.size() > max) log.pop_back();
}

void Server::RecordLatency(const std::string& event, int64_t ms) {
  std::lock_guard lock(latency_mu_);
  auto& ev = latency_[event];
  int64_t now = UnixTimeMs() / 1000;
  if (!ev.history.empty() && ev.history.back().time_s == now) {
    ev.history.back().ms = std::max(ev.history.back().ms, ms);
  } else {
    ev.history.push_back({now, ms});
    if (ev.history.size() > 160) ev.history.pop_front();
  }
  ev.max_ms = std::max(ev.max_ms, ms);
}

std::map<std::string, LatencyEvent> Server::LatencySnapshot() {
  std::lock_guard lock(latency_mu_);
  return latency_;
}

size_t Server::LatencyReset(const std::vector<std::string>& events) {
  std::lock_guard lock(latency_mu_);
  if (events.empty()) {
    size_t n = latency_.size();
    latency_.clear();
    return n;
  }
  size_t n = 0;
  for (const auto& e : events) n += latency_.erase(e);
  return n;
}

void Server::AddMonitor(int shard, uint64_t client_id) {
  std::lock_guard lock(monitor_mu_);
  monitors_.emplace_back(shard, client_id);
  monitor_count_.store(static_cast<int>(monitors_.size()));
}

void Server::RemoveMonitor(int shard, uint64_t client_id) {
  std::lock_guard lock(monitor_mu_);
  std::erase(monitors_, std::make_pair(shard, client_id));
  monitor_count_.store(static_cast<int>(monitors_.size()));
}

void Server::FeedMonitors(int db, const std::string& addr, std::span<const std::string_view> args) {
  int64_t us = UnixTimeUs();
  std::string line = fmt::format("+{}.{:06d} [{} {}]", us / 1000000, us % 1000000, db, addr);
  for (auto a : args) {
    line += " \"";
    for (unsigned char c : a) {
      switch (c) {
        case '\\': line += "\\\\"; break;
        case '"': line += "\\\""; break;
        case '\n': line += "\\n"; break;
        case '\r': line += "\\r"; break;
        case '\t': line += "\\t"; break;
        case '\a': line += "\\a"; break;
        case '\b': line += "\\b"; break;
        default:
          if (isprint(c)) line.push_back(static_cast<char>(c));
          else line += fmt::format("\\x{:02x}", c);
      }
    }
    line += "\"";
  }
  line += "\r\n";
  std::vector<std::pair<int, uint64_t>> targets;
  {
    std::lock_guard lock(monitor_mu_);
    targets = monitors_;
  }
  for (auto [shard, id] : targets) {
    shards_->Send(shard, [this, shard = shard, id = id, line] {
      auto& conns = local(shard).conns;
      auto it = conns.find(id);
      if (it != conns.end()) it->second->AppendOutput(line);
    });
  }
}

void Server::ResetStats() {
  memory_->ResetPeak();
  total_connections_received.store(0);
  rejected_connections.store(0);
  total_error_replies.store(0);
  shards_->FanOutAll(
      [this](Shard& s) {
        auto& l = local(s.id());
        for (auto& st : l.cmd_stats) st = CommandStat{};
        l.error_stats.clear();
        l.commands_processed.store(0);
        l.net_input_bytes.store(0);
        l.net_output_bytes.store(0);
        s.stats() = KeyspaceStats{};
      },
      [] {});
}

void Server::OpsSampleCron() {
  uint64_t total = 0;
  for (auto& l : locals_) total += l->commands_processed.load(std::memory_order_relaxed);
  int64_t now = MonotonicUs();
  ops_samples_.emplace_back(now, total);
  while (ops_samples_.size() > 16) ops_samples_.pop_front();
  if (ops_samples_.size() >= 2) {
    auto& first = ops_samples_.front();
    auto& last = ops_samples_.back();
    int64_t dt = last.first - first.first;
    if (dt > 0 && last.second >= first.second)
      ops_per_sec.store((last.second - first.second) * 1000000 / static_cast<uint64_t>(dt));
  }
}

void Server::Cron(Shard& shard) {
  ShardLocal& l = local(shard.id());
  int64_t now = UnixTimeMs();
  int64_t timeout = config_->timeout.load(std::memory_order_relaxed);
  if (timeout > 0) {
    for (auto& [id, conn] : l.conns) {
      if (conn->closed() || conn->state().monitor) continue;
      if (now - conn->state().last_interaction_ms > timeout * 1000) {
        LOG_VERBOSE("Closing idle client id={}", id);
        conn->Close();
      }
    }
  }
  if (!l.paused.empty() && !PausedFor(kCmdWrite | kCmdReadOnly)) {
    auto ids = std::move(l.paused);
    l.paused.clear();
    for (uint64_t id : ids) {
      auto it = l.conns.find(id);
      if (it != l.conns.end()) it->second->Resume();
    }
  } else if (!l.paused.empty()) {
    // Paused for writes only: let clients with a read next try again.
    auto ids = std::move(l.paused);
    l.paused.clear();
    for (uint64_t id : ids) {
      auto it = l.conns.find(id);
      if (it != l.conns.end()) it->second->Resume();
    }
  }
  if (shard.id() == 0) {
    OpsSampleCron();
    memory_->Tick();
  }
}

// ---- maxmemory ----

namespace {
void PublishShardKeys(MemoryBudget& budget, Shard& shard) {
  uint64_t keys = 0, vol = 0;
  for (auto& db : shard.dbs()) {
    keys += db.size();
    vol += db.expires();
  }
  budget.PublishKeys(shard.id(), keys, vol);
}

// Redis's eviction time limit per call for maxmemory-eviction-tenacity.
int64_t EvictionTimeLimitUs(int64_t tenacity) {
  if (tenacity <= 10) return 50 * tenacity;
  if (tenacity < 100) return static_cast<int64_t>(500.0 * std::pow(1.15, static_cast<double>(tenacity - 10)));
  return INT64_MAX;
}
}  // namespace

size_t Server::EvictShare(Shard& shard, int64_t over) {
  Policy policy = CurrentPolicy();
  if (policy == Policy::kNoEviction || over <= 0) return 0;
  // This shard's part of the excess, in proportion to its share of the
  // (evictable) keys; the other shards free theirs when they next run a
  // command or their cron (every 10 ms).
  bool vol = IsVolatile(policy);
  uint64_t mine = vol ? memory_->volatile_keys_of(shard.id()) : memory_->keys_of(shard.id());
  uint64_t all = vol ? memory_->volatile_keys() : memory_->keys();
  double share = all ? static_cast<double>(mine) / static_cast<double>(all) : 1.0 / shards_->size();
  auto part = static_cast<int64_t>(static_cast<double>(over) * share) + 1;
  // What the shard owes: its part of the excess, less what it freed beyond
  // its part before (a key is freed whole, and keys differ in size), never
  // more than its part of this excess (the same excess is seen again until
  // every shard has paid).
  int64_t& debt = shard.evictor().debt();
  debt = std::min(debt + part, part);
  if (debt <= 0) return 0;
  auto want = static_cast<size_t>(debt);
  int64_t limit = EvictionTimeLimitUs(config_->maxmemory_eviction_tenacity.load(std::memory_order_relaxed));
  int samples = static_cast<int>(config_->maxmemory_samples.load(std::memory_order_relaxed));
  uint64_t evicted = 0;
  size_t freed = 0;
  int64_t start = MonotonicUs();
  // In slices, so that the time limit is checked between them.
  while (freed < want) {
    size_t got = shard.evictor().Evict(shard.dbs(), std::min<size_t>(want - freed, 64 * 1024), policy, samples,
                                       shard.rng(), &evicted);
    freed += got;
    if (got == 0 || MonotonicUs() - start > limit) break;
  }
  // Keep the credit of freeing more than owed (whole keys), within bounds:
  // it is what keeps the shards' shares in proportion over time.
  int64_t max = config_->maxmemory.load(std::memory_order_relaxed);
  debt = std::max(debt - static_cast<int64_t>(freed), -std::max<int64_t>(max / 64, 64 * 1024));
  shard.stats().evicted_keys += evicted;
  PublishShardKeys(*memory_, shard);
  memory_->PublishThread(shard.id());
  return freed;
}

bool Server::AdmitUnderMaxmemory(Shard& shard) {
  int64_t max = config_->maxmemory.load(std::memory_order_relaxed);
  if (max <= 0) return true;
  memory_->PublishThread(shard.id());
  int64_t over = memory_->Used() - max;
  if (over <= 0) return true;
  Policy policy = CurrentPolicy();
  if (policy == Policy::kNoEviction) return false;
  // The shards evict their parts after their next command or in their cron;
  // refuse only when nothing anywhere can be evicted.
  return (IsVolatile(policy) ? memory_->volatile_keys() : memory_->keys()) > 0;
}

void Server::AfterCommand(Shard& shard) {
  int64_t max = config_->maxmemory.load(std::memory_order_relaxed);
  if (max <= 0) return;
  memory_->PublishThread(shard.id());
  int64_t used = memory_->Used();
  memory_->NotePeak(used);  // at the limit, the peak is what matters: note every one
  if (used > max) EvictShare(shard, used - max);
}

void Server::EvictionCron(Shard& shard) {
  PublishShardKeys(*memory_, shard);
  memory_->PublishThread(shard.id());
  int64_t max = config_->maxmemory.load(std::memory_order_relaxed);
  if (max <= 0) return;
  int64_t over = memory_->Used() - max;
  if (over > 0) EvictShare(shard, over);
}

cache::FsyncPolicy Server::FsyncPolicyNow() const {
  std::string v = config_->Get("appendfsync").value_or("everysec");
  if (v == "always") return cache::FsyncPolicy::kAlways;
  if (v == "no") return cache::FsyncPolicy::kNo;
  return cache::FsyncPolicy::kEverysec;
}

void Server::ApplyEvictionConfig() {
  if (cache_ && cache_->journal()) cache_->journal()->set_policy(FsyncPolicyNow());
  SetLfuKnobs(static_cast<int>(config_->lfu_log_factor.load()), static_cast<int>(config_->lfu_decay_time.load()));
  Policy old = CurrentPolicy();
  auto now = static_cast<Policy>(config_->maxmemory_policy.load());
  if (now == old) return;
  SetPolicy(now);
  if (!shards_ || IsS3Fifo(now) == IsS3Fifo(old)) return;
  // Entering S3-FIFO: every key joins the main queue; leaving it: drop the queues.
  bool rebuild = IsS3Fifo(now);
  for (int i = 0; i < shards_->size(); ++i) {
    Shard* s = &shards_->shard(i);
    s->Post([s, rebuild] {
      if (rebuild) s->evictor().Rebuild(s->dbs());
      else s->evictor().Clear();
    });
  }
}

void Server::BlockedTimeoutCron(Shard& shard) {
  ShardLocal& l = local(shard.id());
  if (l.blocked.empty()) return;
  int64_t now = UnixTimeMs();
  // Blocked clients whose timeout passed get a nil reply.
  {
    std::erase_if(l.blocked, [&](const std::shared_ptr<Waiter>& w) {
      if (w->done.load()) return true;
      if (w->deadline_ms == 0 || now < w->deadline_ms) return false;
      if (w->done.exchange(true)) return true;
      AbandonWaiter(this, w);
      Connection::FinishBlockedFor(this, shard.id(), w->client_id, w->resp >= 3 ? "_\r\n" : "*-1\r\n");
      return true;
    });
  }
}

void Server::SetupShard(Shard& shard) {
  ShardLocal& l = local(shard.id());
  l.cache = std::make_unique<cache::ShardCache>(this, &shard);
  cache::SetCurrentShardCache(l.cache.get());
  l.cmd_stats.resize(Commands().all().size());
  std::vector<int> fds;
  for (int fd : listen_fds_) {
    // Shard 0 uses the sockets opened at start-up; the others open their own
    // on the same port (SO_REUSEPORT) so the kernel balances accepts.
    if (shard.id() == 0) {
      fds.push_back(fd);
      continue;
    }
    sockaddr_storage ss{};
    socklen_t len = sizeof(ss);
    getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
    std::string addr = FormatAddr(ss);
    addr = addr.substr(0, addr.rfind(':'));
    std::string err;
    int nfd = OpenListener(addr, port_, static_cast<int>(config_->tcp_backlog.load()), &err);
    if (nfd >= 0) fds.push_back(nfd);
    else LOG_WARNING("Shard {} could not open a listener on {}:{}: {}", shard.id(), addr, port_, err);
  }
  l.listener = std::make_unique<Listener>(this, &shard, std::move(fds));
  shard.SetAfterEventsHook([this, &shard] {
    ShardLocal& sl = local(shard.id());
    sl.cache->FlushChanges();  // write-behind: this iteration's changes to the journal
    if (sl.to_close.empty()) return;
    auto ids = std::move(sl.to_close);
    sl.to_close.clear();
    for (uint64_t id : ids) sl.conns.erase(id);
  });
  shard.loop().RunEvery(100, [this, &shard] { Cron(shard); });
  shard.loop().RunEvery(10, [this, &shard] {
    BlockedTimeoutCron(shard);
    EvictionCron(shard);
  });
}

int Server::Run() {
  signal(SIGPIPE, SIG_IGN);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);  // inherited by the shard threads

  int nthreads = static_cast<int>(config_->threads.load());
  port_ = static_cast<int>(config_->port.load());
  std::istringstream bind_list(config_->bind());
  std::string addr;
  while (bind_list >> addr) {
    bool optional = addr[0] == '-';
    if (optional) addr = addr.substr(1);
    if (addr == "*") addr = "0.0.0.0";
    if (addr == "::*") addr = "::";
    std::string err;
    int fd = OpenListener(addr, port_, static_cast<int>(config_->tcp_backlog.load()), &err);
    if (fd < 0) {
      if (optional) continue;
      LOG_WARNING("Warning: Could not create server TCP listening socket {}:{}: {}", addr, port_, err);
      LOG_WARNING("Failed listening on port {} (tcp), aborting.", port_);
      return 1;
    }
    if (port_ == 0) port_ = BoundPort(fd);
    listen_fds_.push_back(fd);
  }
  if (listen_fds_.empty()) {
    LOG_WARNING("Failed listening on port {} (tcp), aborting.", port_);
    return 1;
  }

  int num_dbs = static_cast<int>(config_->databases.load());
  shards_ = std::make_unique<ShardSet>(nthreads, num_dbs);
  memory_ = std::make_unique<MemoryBudget>(nthreads);
  MemoryBudget::SetCurrent(memory_.get());
  ApplyEvictionConfig();
  cache_ = std::make_unique<cache::CacheManager>();
  for (const auto& s : config_->cache_sources()) {
    std::string err;
    cache_->AddSource(s, &err);
  }
  for (const auto& r : config_->cache_rules()) {
    std::string err;
    if (!cache_->AddRule(r, &err)) LOG_WARNING("cache-rule {}: {}", r.pattern.text(), err);
  }
  cache_->SetInvalidation(config_->Get("cache-invalidation-channel").value_or("larder_invalidate"),
                          [this](std::string key) {
                            int owner = shards_->ShardOf(key);
                            shards_->shard(owner).Post([this, owner, key = std::move(key)] {
                              local(owner).cache->Invalidate(0, key);
                            });
                          });
  for (int i = 0; i < nthreads; ++i) locals_.push_back(std::make_unique<ShardLocal>());
  if (!config_->cache_sources().empty() || cache::CacheManager::HasJournal(config_->dir())) {
    std::string err;
    if (!cache_->OpenWriteBehind(config_->dir(), FsyncPolicyNow(), nthreads,
                                 [this](int shard, uint64_t seq) {
                                   shards_->shard(shard).Post([this, shard, seq] { local(shard).cache->Durable(seq); });
                                 },
                                 &err)) {
      LOG_WARNING("Write-behind: {}", err);
      return 1;
    }
  }
  cache_->StartSources();
  if (cache_->active())
    LOG_NOTICE("Read-through: {} cache rule(s) over {} source(s)", config_->cache_rules().size(),
               config_->cache_sources().size());
  (void)Commands();  // build the command table before any thread uses it

  LOG_NOTICE("Larder {} (Redis 7.0 compatible), {} threads, pid={}", "0.1.0", nthreads, getpid());
  if (!config_->file().empty()) LOG_NOTICE("Configuration loaded from {}", config_->file());
  else LOG_NOTICE("No config file specified, using the default config.");
  LOG_NOTICE("Running mode=standalone, port={}.", port_);

  if (!config_->pidfile().empty()) {
    if (FILE* f = fopen(config_->pidfile().c_str(), "w")) {
      fprintf(f, "%d\n", getpid());
      fclose(f);
    }
  }

  shards_->Start([this](Shard& s) { SetupShard(s); });
  memory_startup_ = static_cast<size_t>(memory_->Calibrate());
  for (const auto& [pattern, query] : config_->cache_warms()) {
    std::string err;
    if (!cache_->Warm(this, pattern, query, &err)) LOG_WARNING("cache-warm {}: {}", pattern, err);
  }
  LOG_NOTICE("Ready to accept connections tcp");

  // The main thread waits for a signal or a SHUTDOWN command.
  timespec tick{0, 100 * 1000 * 1000};
  while (!shutdown_.load()) {
    int sig = sigtimedwait(&set, nullptr, &tick);
    if (sig == SIGTERM || sig == SIGINT) {
      LOG_WARNING("Received {} scheduling shutdown...", sig == SIGTERM ? "SIGTERM" : "SIGINT");
      break;
    }
  }
  LOG_WARNING("User requested shutdown...");
  // Close every client and listener on its own thread, then stop the loops.
  for (int i = 0; i < shards_->size(); ++i) {
    shards_->shard(i).Post([this, i] {
      ShardLocal& l = local(i);
      for (auto& [id, conn] : l.conns) conn->Close();
      l.conns.clear();
      l.listener.reset();
    });
  }
  cache_->StopSources();  // loads and warming stop while the shards still run
  shards_->Stop();
  if (!config_->pidfile().empty()) unlink(config_->pidfile().c_str());
  LOG_WARNING("Larder is now ready to exit, bye bye...");
  return 0;
}

}  // namespace larder
