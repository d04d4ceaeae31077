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

  Config* config_;
  std::unique_ptr<Engine> engine_;
  std::vector<int> listen_fds_;                         // shard 0's sockets, opened at start-up
  std::vector<std::unique_ptr<net::Listener>> listeners_;  // by shard; each touched on its thread
  int port_ = 0;
};

}  // namespace larder
