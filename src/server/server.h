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

namespace larder {

class Server {
 public:
  explicit Server(Config* config);
  ~Server();

  // Binds, starts the shards and blocks until shutdown. Returns the exit code.
  int Run();

 private:
  void SetupShard(Shard& shard);
  // CONFIG SET port / bind: opens listening sockets on `port` for every
  // bind address on every shard and then swaps them in for the old ones,
  // each on its shard's thread (connections already open stay). If a
  // required address cannot be bound, nothing changes and `err` says why.
  // Port 0 stops listening, as in Redis.
  bool Relisten(int port, const std::string& bind, const char* failure, std::string* err);
  net::Listener::OnAccept AcceptorFor(Shard& shard);

  Config* config_;
  std::unique_ptr<Engine> engine_;
  std::vector<int> listen_fds_;                         // shard 0's sockets, opened at start-up
  std::vector<std::unique_ptr<net::Listener>> listeners_;  // by shard; each touched on its thread
  int unix_fd_ = -1;                                    // unixsocket, accepted by shard 0
  std::unique_ptr<net::Listener> unix_listener_;        // (on shard 0's thread)
  int port_ = 0;
  std::mutex relisten_mu_;
};

}  // namespace larder
