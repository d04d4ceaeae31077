#include "server/server.h"

#include <signal.h>
#include <unistd.h>

#include <sstream>

#include "commands/families.h"
#include "common/clock.h"
#include "common/log.h"
#include "engine/aof.h"
#include "engine/command.h"
#include "keyspace/memory.h"

namespace larder {

Server::Server(Config* config) : config_(config) {}

Server::~Server() = default;

void Server::SetupShard(Shard& shard) {
  engine_->SetupShard(shard);
  net::StartHandshakeReaper(&shard.loop());
  SetupShardListeners(shard, plain_);
  SetupShardListeners(shard, tls_);
}

void Server::SetupShardListeners(Shard& shard, Listeners& l) {
  std::vector<int> fds;
  for (int fd : l.fds) {
    // Shard 0 uses the sockets opened at start-up; the others open their own
    // on the same port (SO_REUSEPORT) so the kernel balances accepts.
    if (shard.id() == 0) {
      fds.push_back(fd);
      continue;
    }
    std::string addr = net::SocketAddress(fd, true);
    addr = addr.substr(0, addr.rfind(':'));
    std::string err;
    int nfd = net::OpenListener(addr, l.port, static_cast<int>(config_->tcp_backlog.load()), &err);
    if (nfd >= 0) fds.push_back(nfd);
    else LOG_WARNING("Shard {} could not open a listener on {}:{}: {}", shard.id(), addr, l.port, err);
  }
  l.shards[static_cast<size_t>(shard.id())] =
      std::make_unique<net::Listener>(&shard.loop(), std::move(fds), AcceptorFor(shard, l.tls));
  if (!l.tls && shard.id() == 0 && unix_fd_ >= 0)
    unix_listener_ =
        std::make_unique<net::Listener>(&shard.loop(), std::vector<int>{unix_fd_}, AcceptorFor(shard, false, false));
}

net::Listener::OnAccept Server::AcceptorFor(Shard& shard, bool tls, bool tcp) {
  Engine* engine = engine_.get();
  Shard* sp = &shard;
  Config* config = config_;
  if (!tls) {
    return [engine, sp, config, tcp](int fd, std::string peer, std::string local) {
      if (tcp) net::SetTcpKeepAlive(fd, static_cast<int>(config->tcp_keepalive.load(std::memory_order_relaxed)));
      engine->AddClient(*sp, fd, std::move(peer), std::move(local));
    };
  }
  return [this, engine, sp](int fd, std::string peer, std::string local) {
    net::SetTcpKeepAlive(fd, static_cast<int>(config_->tcp_keepalive.load(std::memory_order_relaxed)));
    std::shared_ptr<net::TlsContext> context = CurrentTlsContext();
    auto auth = static_cast<net::TlsClientAuth>(config_->tls_auth_clients.load(std::memory_order_relaxed));
    std::string err = "TLS is not configured";
    std::unique_ptr<net::TlsSession> session;
    if (context) session = net::TlsSession::Create(*context, fd, auth, &err);
    if (!session) {
      LOG_WARNING("Error accepting a TLS client connection: {} (addr={})", err, peer);
      close(fd);
      return;
    }
    engine->AddClient(*sp, fd, std::move(peer), std::move(local), std::move(session));
  };
}

std::shared_ptr<net::TlsContext> Server::CurrentTlsContext() {
  std::lock_guard lock(tls_mu_);
  return tls_context_;
}

bool Server::ConfigureTls(std::string* why) {
  net::TlsSettings s;
  s.cert_file = *config_->Get("tls-cert-file");
  s.key_file = *config_->Get("tls-key-file");
  s.key_file_pass = *config_->Get("tls-key-file-pass");
  s.ca_cert_file = *config_->Get("tls-ca-cert-file");
  s.ca_cert_dir = *config_->Get("tls-ca-cert-dir");
  s.dh_params_file = *config_->Get("tls-dh-params-file");
  s.protocols = *config_->Get("tls-protocols");
  s.ciphers = *config_->Get("tls-ciphers");
  s.ciphersuites = *config_->Get("tls-ciphersuites");
  s.prefer_server_ciphers = *config_->Get("tls-prefer-server-ciphers") == "yes";
  s.session_caching = *config_->Get("tls-session-caching") == "yes";
  s.session_cache_size = std::stoll(*config_->Get("tls-session-cache-size"));
  s.session_cache_timeout = std::stoll(*config_->Get("tls-session-cache-timeout"));
  s.verifies_clients = config_->tls_auth_clients.load() != 0;
  std::shared_ptr<net::TlsContext> context = net::TlsContext::Build(s, why);
  if (!context) return false;
  std::lock_guard lock(tls_mu_);
  tls_context_ = std::move(context);  // connections made from the old one keep it
  return true;
}

bool Server::ApplyTlsSetting(std::string* err) {
  // As Redis: the settings are only checked while TLS is in use.
  if (config_->tls_port.load() == 0) return true;
  std::string why;
  if (ConfigureTls(&why)) return true;
  LOG_WARNING("{}", why);
  *err = "Unable to update TLS configuration. Check server logs.";
  return false;
}

void Server::PublishPort() { engine_->set_listening_port(plain_.port ? plain_.port : tls_.port); }

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

// The options a TLS context is built from (Redis's applyTlsCfg ones).
constexpr const char* kTlsContextOptions[] = {
    "tls-cert-file",   "tls-key-file",           "tls-key-file-pass",         "tls-ca-cert-file",
    "tls-ca-cert-dir", "tls-dh-params-file",     "tls-protocols",             "tls-ciphers",
    "tls-ciphersuites", "tls-prefer-server-ciphers", "tls-session-caching", "tls-session-cache-size",
    "tls-session-cache-timeout"};
}  // namespace

bool Server::OpenStartupListeners(Listeners& l, bool may_be_empty) {
  const char* kind = l.tls ? "TLS" : "TCP";
  for (const auto& [addr, optional] : BindAddresses(config_->bind())) {
    std::string err;
    int fd = net::OpenListener(addr, l.port, static_cast<int>(config_->tcp_backlog.load()), &err);
    if (fd < 0) {
      if (optional) continue;
      LOG_WARNING("Warning: Could not create server {} listening socket {}:{}: {}", kind, addr, l.port, err);
      LOG_WARNING("Failed listening on port {} ({}), aborting.", l.port, kind);
      return false;
    }
    if (l.port == 0) l.port = net::BoundPort(fd);
    l.fds.push_back(fd);
  }
  if (l.fds.empty() && !may_be_empty) {
    LOG_WARNING("Failed listening on port {} ({}), aborting.", l.port, kind);
    return false;
  }
  return true;
}

bool Server::Relisten(Listeners& l, int port, const std::string& bind, const char* failure, std::string* err) {
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
        LOG_WARNING("Could not create server {} listening socket {}:{}: {}", l.tls ? "TLS" : "TCP", addr, port, why);
        close_all();
        *err = failure;
        return false;
      }
    }
    if (fds[0].empty()) {
      LOG_WARNING("Failed listening on port {} ({})", port, l.tls ? "tls" : "tcp");
      *err = failure;
      return false;
    }
  }
  for (int i = 0; i < n; ++i) {
    Shard& shard = engine_->shards().shard(i);
    auto mine = std::make_shared<std::vector<int>>(std::move(fds[static_cast<size_t>(i)]));
    shard.Post([this, i, &shard, mine, lp = &l] {
      lp->shards[static_cast<size_t>(i)] =
          std::make_unique<net::Listener>(&shard.loop(), std::move(*mine), AcceptorFor(shard, lp->tls));
    });
  }
  l.port = port;
  PublishPort();
  LOG_NOTICE("Listening on port {} ({}, bind {}).", port, l.tls ? "tls" : "tcp", bind);
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
  plain_.port = static_cast<int>(config_->port.load());
  tls_.tls = true;
  tls_.port = static_cast<int>(config_->tls_port.load());
  if (tls_.port != 0) {
    std::string why;
    if (!ConfigureTls(&why)) {
      LOG_WARNING("{}", why);
      LOG_WARNING("Failed to configure TLS. Check logs for more info.");
      return 1;
    }
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
  // "port 0" with a TLS port serves TLS only, as in Redis; without one it
  // binds a free port (tests). With a Unix socket, no TCP address may bind.
  if ((plain_.port != 0 || tls_.port == 0) && !OpenStartupListeners(plain_, unix_fd_ >= 0)) return 1;
  if (tls_.port != 0 && !OpenStartupListeners(tls_, false)) return 1;

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
  PublishPort();
  std::string init_err;
  if (!engine_->Init(&init_err)) {
    LOG_WARNING("{}", init_err);
    return 1;
  }
  plain_.shards.resize(static_cast<size_t>(nthreads));
  tls_.shards.resize(static_cast<size_t>(nthreads));

  LOG_NOTICE("Larder {} (Redis 7.0 compatible), {} threads, pid={}", "0.1.0", nthreads, getpid());
  if (!config_->file().empty()) LOG_NOTICE("Configuration loaded from {}", config_->file());
  else LOG_NOTICE("No config file specified, using the default config.");
  // always-show-logo (or a terminal): the banner, with the lines Redis's
  // logo has that tools read (mode, port, PID).
  int shown_port = plain_.port ? plain_.port : tls_.port;
  if (config_->always_show_logo.load() || isatty(STDOUT_FILENO)) {
    LOG_NOTICE("\n    Larder {} (Redis 7.0 compatible)\n    Running in standalone mode\n    Port: {}\n    PID: {}\n",
               "0.1.0", shown_port, getpid());
  } else {
    LOG_NOTICE("Running mode=standalone, port={}.", shown_port);
  }

  if (!config_->pidfile().empty()) {
    if (FILE* f = fopen(config_->pidfile().c_str(), "w")) {
      fprintf(f, "%d\n", getpid());
      fclose(f);
    }
  }

  engine_->persistence().SetStarting(true);
  engine_->shards().Start([this](Shard& s) { SetupShard(s); });
  // The dump file, if there is one (clients meanwhile get -LOADING); with
  // appendonly yes the AOF instead, as Redis (below).
  if (config_->Get("appendonly").value_or("no") != "yes") {
    std::string err;
    if (!engine_->persistence().LoadFileAtStart(engine_->persistence().DumpPath(), &err)) {
      LOG_WARNING("{}", err);  // (Redis's last line: why it stops)
      engine_->shards().Stop();
      return 1;
    }
  }
  // appendonly yes: the AOF is loaded (clients get -LOADING meanwhile) and
  // opened for appends.
  std::string aof_err;
  if (!engine_->aof().StartUp(&aof_err)) {
    LOG_WARNING("{}", aof_err);
    engine_->shards().Stop();
    return 1;
  }
  engine_->aof().InstallConfigHooks();
  engine_->persistence().SetStarting(false);
  engine_->Started();
  // From now on CONFIG SET port / tls-port / bind listen again, and CONFIG
  // SET of a TLS setting builds a new context.
  config_->SetApplyHook("port", [this](std::string* err) {
    return Relisten(plain_, static_cast<int>(config_->port.load()), config_->bind(),
                    "Unable to listen on this port. Check server logs.", err);
  });
  config_->SetApplyHook("tls-port", [this](std::string* err) {
    // Turning TLS on reads the files again: they were not checked while it was off.
    std::string why;
    if (config_->tls_port.load() != 0 && (tls_.port == 0 || !CurrentTlsContext()) && !ConfigureTls(&why)) {
      LOG_WARNING("{}", why);
      *err = "Unable to update TLS configuration. Check server logs.";
      return false;
    }
    return Relisten(tls_, static_cast<int>(config_->tls_port.load()), config_->bind(),
                    "Unable to listen on this port. Check server logs.", err);
  });
  config_->SetApplyHook("bind", [this](std::string* err) {
    const char* failure = "Failed to bind to specified addresses.";
    if (!Relisten(plain_, static_cast<int>(config_->port.load()), config_->bind(), failure, err)) return false;
    return tls_.port == 0 || Relisten(tls_, tls_.port, config_->bind(), failure, err);
  });
  for (const char* name : kTlsContextOptions)
    config_->SetApplyHook(name, [this](std::string* err) { return ApplyTlsSetting(err); });
  SetAllocatorBackgroundThread(config_->jemalloc_bg_thread.load() != 0);
  config_->SetApplyHook("jemalloc-bg-thread", [this](std::string*) {
    SetAllocatorBackgroundThread(config_->jemalloc_bg_thread.load() != 0);
    return true;
  });
  if (!plain_.fds.empty()) LOG_NOTICE("Ready to accept connections tcp");
  if (tls_.port != 0) LOG_NOTICE("Ready to accept connections tls");
  if (unix_fd_ >= 0) LOG_NOTICE("Ready to accept connections unix");

  // The main thread waits for a signal or a SHUTDOWN command.
  timespec tick{0, 100 * 1000 * 1000};
  while (!engine_->shutdown_requested()) {
    int sig = sigtimedwait(&set, nullptr, &tick);
    if (sig == SIGTERM || sig == SIGINT) {
      LOG_WARNING("Received {} scheduling shutdown...", sig == SIGTERM ? "SIGTERM" : "SIGINT");
      // With save points the dump is written first, as Redis does; if that
      // fails the server keeps running.
      if (!config_->Get("save").value_or("").empty() && !engine_->persistence().loading()) {
        LOG_NOTICE("Saving the final RDB snapshot before exiting.");
        std::string err;
        // A second SIGINT while it saves means exit now, as in Redis: the
        // half-written temp file goes, the last complete dump stays.
        auto insist = [this, &set] {
          timespec now{0, 0};
          for (int again; (again = sigtimedwait(&set, nullptr, &now)) > 0;) {
            if (again == SIGINT) {
              LOG_WARNING("You insist... exiting now.");
              engine_->persistence().RemoveTempFile();
              _exit(1);
            }
            LOG_WARNING("Received SIGTERM scheduling shutdown...");
          }
        };
        if (!engine_->persistence().SaveBlocking(&err, insist)) {
          LOG_WARNING("Error trying to save the DB, can't exit.");
          continue;
        }
      }
      break;
    }
  }
  LOG_WARNING("User requested shutdown...");
  for (const char* name : {"port", "tls-port", "bind", "jemalloc-bg-thread"}) config_->SetApplyHook(name, nullptr);
  for (const char* name : kTlsContextOptions) config_->SetApplyHook(name, nullptr);
  // Close every client and listener on its own thread, then stop the loops.
  for (int i = 0; i < engine_->shards().size(); ++i)
    engine_->shards().shard(i).Post([this, i] {
      plain_.shards[static_cast<size_t>(i)].reset();
      tls_.shards[static_cast<size_t>(i)].reset();
      if (i == 0) unix_listener_.reset();
    });
  engine_->Shutdown();
  engine_->shards().Stop();
  engine_->aof().Stop();  // what was written is synced
  if (!config_->pidfile().empty()) unlink(config_->pidfile().c_str());
  if (unix_fd_ >= 0) unlink(config_->Get("unixsocket")->c_str());
  LOG_WARNING("Larder is now ready to exit, bye bye...");
  return 0;
}

}  // namespace larder
