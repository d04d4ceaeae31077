// The server process: binds the listening sockets, starts the engine's
// shard threads, and waits for a signal or SHUTDOWN.
//
//   main ──► Server::Run ──► Engine::Init (shards, memory budget, caching rules)
//                        ──► ShardSet::Start: on each shard thread, a
//                            Listener (SO_REUSEPORT) whose accepted sockets
//                            become engine Clients, and the engine's timers
//                        ──► waits (SIGTERM/SIGINT/SHUTDOWN) ──► stops
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "config/config.h"
#include "engine/engine.h"
#include "net/listener.h"
#include "net/tls.h"

namespace larder {

class Server {
 public:
  explicit Server(Config* config);
  ~Server();

  // Binds, starts the shards and blocks until shutdown. Returns the exit code.
  int Run();

 private:
  // The plain listeners, or the TLS ones.
  struct Listeners {
    bool tls = false;
    int port = 0;
    std::vector<int> fds;                                // shard 0's sockets, opened at start-up
    std::vector<std::unique_ptr<net::Listener>> shards;  // by shard; each touched on its thread
  };
  void SetupShard(Shard& shard);
  void SetupShardListeners(Shard& shard, Listeners& l);
  // Opens the start-up sockets of `l` on every bind address: false (logged)
  // if a required one fails, or none bound and `may_be_empty` is false.
  bool OpenStartupListeners(Listeners& l, bool may_be_empty);
  // CONFIG SET port / tls-port / bind: opens listening sockets on `port`
  // for every bind address on every shard and then swaps them in for the
  // old ones, each on its shard's thread (connections already open stay).
  // If a required address cannot be bound, nothing changes and `err` says
  // why. Port 0 stops listening, as in Redis.
  bool Relisten(Listeners& l, int port, const std::string& bind, const char* failure, std::string* err);
  // What a listener does with an accepted socket; `tcp`: a TCP one, which
  // gets tcp-keepalive (a Unix-domain socket has none).
  net::Listener::OnAccept AcceptorFor(Shard& shard, bool tls, bool tcp = true);
  // INFO's tcp_port: the plain port, or the TLS port when there is none.
  void PublishPort();

  // TLS: builds a context from the tls-* settings and makes it the one new
  // connections get; false (and the reason, for the log) leaves the old one.
  bool ConfigureTls(std::string* why);
  std::shared_ptr<net::TlsContext> CurrentTlsContext();
  // The apply hook of the options the TLS context is made of.
  bool ApplyTlsSetting(std::string* err);

  Config* config_;
  std::unique_ptr<Engine> engine_;
  Listeners plain_, tls_;
  int unix_fd_ = -1;                                    // unixsocket, accepted by shard 0
  std::unique_ptr<net::Listener> unix_listener_;        // (on shard 0's thread)
  std::mutex relisten_mu_;
  std::mutex tls_mu_;  // guards tls_context_ (read by every shard's accepts)
  std::shared_ptr<net::TlsContext> tls_context_;
};

}  // namespace larder
