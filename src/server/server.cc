#include "server/server.h"

#include <signal.h>
#include <unistd.h>

#include <sstream>

#include "commands/families.h"
#include "common/clock.h"
#include "common/log.h"
#include "engine/command.h"
#include "keyspace/memory.h"

namespace larder {

Server::Server(Config* config) : config_(config) {}

Server::~Server() = default;

void Server::SetupShard(Shard& shard) {
  engine_->SetupShard(shard);
  std::vector<int> fds;
  for (int fd : listen_fds_) {
    // Shard 0 uses the sockets opened at start-up; the others open their own
    // on the same port (SO_REUSEPORT) so the kernel balances accepts.
    if (shard.id() == 0) {
      fds.push_back(fd);
      continue;
    }
    std::string addr = net::SocketAddress(fd, true);
    addr = addr.substr(0, addr.rfind(':'));
    std::string err;
    int nfd = net::OpenListener(addr, port_, static_cast<int>(config_->tcp_backlog.load()), &err);
    if (nfd >= 0) fds.push_back(nfd);
    else LOG_WARNING("Shard {} could not open a listener on {}:{}: {}", shard.id(), addr, port_, err);
  }
  listeners_[static_cast<size_t>(shard.id())] =
      std::make_unique<net::Listener>(&shard.loop(), std::move(fds), AcceptorFor(shard));
  if (shard.id() == 0 && unix_fd_ >= 0)
    unix_listener_ = std::make_unique<net::Listener>(&shard.loop(), std::vector<int>{unix_fd_}, AcceptorFor(shard));
}

net::Listener::OnAccept Server::AcceptorFor(Shard& shard) {
  Engine* engine = engine_.get();
  Shard* sp = &shard;
  return [engine, sp](int fd, std::string peer, std::string local) {
    engine->AddClient(*sp, fd, std::move(peer), std::move(local));
  };
}

namespace {
// The addresses of a bind value ("* -::*": '-' marks one that may fail).
std::vector<std::pair<std::string, bool>> BindAddresses(const std::string& bind) {
  std::vector<std::pair<std::string, bool>> out;
  std::istringstream in(bind.empty() ? std::string("* -::*") : bind);
  std::string addr;
  while (in >> addr) {
    bool optional = addr[0] == '-';
    if (optional) addr = addr.substr(1);
    if (addr == "*") addr = "0.0.0.0";
    if (addr == "::*") addr = "::";
    out.emplace_back(addr, optional);
  }
  return out;
}
}  // namespace

bool Server::Relisten(int port, const std::string& bind, const char* failure, std::string* err) {
  std::lock_guard lock(relisten_mu_);
  auto addrs = BindAddresses(bind);
  if (addrs.size() > 16) {
    *err = "Too many bind addresses specified.";
    return false;
  }
  int n = engine_->shards().size();
  std::vector<std::vector<int>> fds(static_cast<size_t>(n));
  auto close_all = [&] {
    for (auto& v : fds)
      for (int fd : v) close(fd);
  };
  if (port != 0) {
    int backlog = static_cast<int>(config_->tcp_backlog.load());
    for (const auto& [addr, optional] : addrs) {
      for (int i = 0; i < n; ++i) {
        std::string why;
        int fd = net::OpenListener(addr, port, backlog, &why);
        if (fd >= 0) {
          fds[static_cast<size_t>(i)].push_back(fd);
          continue;
        }
        if (optional && i == 0) break;  // this address is skipped on every shard
        LOG_WARNING("Could not create server TCP listening socket {}:{}: {}", addr, port, why);
        close_all();
        *err = failure;
        return false;
      }
    }
    if (fds[0].empty()) {
      LOG_WARNING("Failed listening on port {} (tcp)", port);
      *err = failure;
      return false;
    }
  }
  for (int i = 0; i < n; ++i) {
    Shard& shard = engine_->shards().shard(i);
    auto mine = std::make_shared<std::vector<int>>(std::move(fds[static_cast<size_t>(i)]));
    shard.Post([this, i, &shard, mine] {
      listeners_[static_cast<size_t>(i)] =
          std::make_unique<net::Listener>(&shard.loop(), std::move(*mine), AcceptorFor(shard));
    });
  }
  port_ = port;
  engine_->set_listening_port(port);
  LOG_NOTICE("Listening on port {} (bind {}).", port, bind);
  return true;
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
  for (const auto& [addr, optional] : BindAddresses(config_->bind())) {
    std::string err;
    int fd = net::OpenListener(addr, port_, static_cast<int>(config_->tcp_backlog.load()), &err);
    if (fd < 0) {
      if (optional) continue;
      LOG_WARNING("Warning: Could not create server TCP listening socket {}:{}: {}", addr, port_, err);
      LOG_WARNING("Failed listening on port {} (tcp), aborting.", port_);
      return 1;
    }
    if (port_ == 0) port_ = net::BoundPort(fd);
    listen_fds_.push_back(fd);
  }
  std::string unix_path = *config_->Get("unixsocket");
  if (!unix_path.empty()) {
    std::string err;
    int perm = static_cast<int>(strtol(config_->Get("unixsocketperm")->c_str(), nullptr, 8));
    unix_fd_ = net::OpenUnixListener(unix_path, perm, static_cast<int>(config_->tcp_backlog.load()), &err);
    if (unix_fd_ < 0) {
      LOG_WARNING("Failed opening Unix socket: {}", err);
      return 1;
    }
  }
  if (listen_fds_.empty() && unix_fd_ < 0) {
    LOG_WARNING("Failed listening on port {} (tcp), aborting.", port_);
    return 1;
  }

  // The command table, built once before any thread reads it.
  static CommandRegistry* commands = nullptr;
  if (!commands) {
    auto* r = new CommandRegistry();
    RegisterFamilies(r);
    for (const auto& [from, to] : config_->renamed_commands()) {
      std::string why;
      if (!r->Rename(from, to, &why)) {
        LOG_WARNING("\n*** FATAL CONFIG FILE ERROR ***\n>>> 'rename-command {} {}'\n{}", from, to, why);
        return 1;
      }
    }
    r->Finalize();
    commands = r;
  }
  InstallCommands(commands);
  engine_ = std::make_unique<Engine>(config_);
  engine_->set_listening_port(port_);
  std::string init_err;
  if (!engine_->Init(&init_err)) {
    LOG_WARNING("{}", init_err);
    return 1;
  }
  listeners_.resize(static_cast<size_t>(nthreads));

  LOG_NOTICE("Larder {} (Redis 7.0 compatible), {} threads, pid={}", "0.1.0", nthreads, getpid());
  if (!config_->file().empty()) LOG_NOTICE("Configuration loaded from {}", config_->file());
  else LOG_NOTICE("No config file specified, using the default config.");
  // always-show-logo (or a terminal): the banner, with the lines Redis's
  // logo has that tools read (mode, port, PID).
  if (config_->always_show_logo.load() || isatty(STDOUT_FILENO)) {
    LOG_NOTICE("\n    Larder {} (Redis 7.0 compatible)\n    Running in standalone mode\n    Port: {}\n    PID: {}\n",
               "0.1.0", port_, getpid());
  } else {
    LOG_NOTICE("Running mode=standalone, port={}.", port_);
  }

  if (!config_->pidfile().empty()) {
    if (FILE* f = fopen(config_->pidfile().c_str(), "w")) {
      fprintf(f, "%d\n", getpid());
      fclose(f);
    }
  }

  engine_->shards().Start([this](Shard& s) { SetupShard(s); });
  engine_->Started();
  // From now on CONFIG SET port / bind listen again.
  config_->SetApplyHook("port", [this](std::string* err) {
    return Relisten(static_cast<int>(config_->port.load()), config_->bind(),
                    "Unable to listen on this port. Check server logs.", err);
  });
  config_->SetApplyHook("bind", [this](std::string* err) {
    return Relisten(static_cast<int>(config_->port.load()), config_->bind(), "Failed to bind to specified addresses.",
                    err);
  });
  SetAllocatorBackgroundThread(config_->jemalloc_bg_thread.load() != 0);
  config_->SetApplyHook("jemalloc-bg-thread", [this](std::string*) {
    SetAllocatorBackgroundThread(config_->jemalloc_bg_thread.load() != 0);
    return true;
  });
  LOG_NOTICE("Ready to accept connections tcp");
  if (unix_fd_ >= 0) LOG_NOTICE("Ready to accept connections unix");

  // The main thread waits for a signal or a SHUTDOWN command.
  timespec tick{0, 100 * 1000 * 1000};
  while (!engine_->shutdown_requested()) {
    int sig = sigtimedwait(&set, nullptr, &tick);
    if (sig == SIGTERM || sig == SIGINT) {
      LOG_WARNING("Received {} scheduling shutdown...", sig == SIGTERM ? "SIGTERM" : "SIGINT");
      break;
    }
  }
  LOG_WARNING("User requested shutdown...");
  config_->SetApplyHook("port", nullptr);
  config_->SetApplyHook("bind", nullptr);
  config_->SetApplyHook("jemalloc-bg-thread", nullptr);
  // Close every client and listener on its own thread, then stop the loops.
  for (int i = 0; i < engine_->shards().size(); ++i)
    engine_->shards().shard(i).Post([this, i] {
      listeners_[static_cast<size_t>(i)].reset();
      if (i == 0) unix_listener_.reset();
    });
  engine_->Shutdown();
  engine_->shards().Stop();
  if (!config_->pidfile().empty()) unlink(config_->pidfile().c_str());
  if (unix_fd_ >= 0) unlink(config_->Get("unixsocket")->c_str());
  LOG_WARNING("Larder is now ready to exit, bye bye...");
  return 0;
}

}  // namespace larder
