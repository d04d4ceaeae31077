// Listening sockets and the accept loop. Each shard thread has its own
// sockets on the same port (SO_REUSEPORT), so the kernel spreads new
// connections over the shards. Knows nothing of clients: each accepted
// socket goes to a callback with the peer's and our own address.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "net/event_loop.h"

namespace larder::net {

// Opens a non-blocking listening socket on addr:port ("0.0.0.0", "::", a
// literal address) with SO_REUSEPORT; -1 and the reason on failure.
int OpenListener(const std::string& addr, int port, int backlog, std::string* err);
// Opens a non-blocking Unix-domain listening socket at `path` (a stale
// socket file there is removed first), with permissions `perm` (0: the
// umask's); -1 and the reason on failure.
int OpenUnixListener(const std::string& path, int perm, int backlog, std::string* err);
// The port a socket is bound to (after binding to port 0).
int BoundPort(int fd);
// "ip:port" of a socket's own end (local) or its peer's; "path:0" for a
// Unix-domain socket (both ends, as Redis shows them).
std::string SocketAddress(int fd, bool local);
// Keepalive on an accepted TCP connection: the first probe after `idle_s`
// seconds without traffic, then every third of that, and the peer is given
// up after three unanswered probes (so a dead peer is dropped about twice
// `idle_s` after its last word). 0 turns keepalive off.
void SetTcpKeepAlive(int fd, int idle_s);

// Accepts on a set of listening sockets of one event loop.
class Listener {
 public:
  // fd, peer "ip:port", local "ip:port"; the callee owns fd.
  using OnAccept = std::function<void(int fd, std::string peer, std::string local)>;
  // Takes ownership of `fds` (closed by the destructor).
  Listener(EventLoop* loop, std::vector<int> fds, OnAccept on_accept);
  ~Listener();

 private:
  struct Socket : EventHandler {
    Socket(Listener* l, int fd) : owner(l), fd(fd) {}
    void OnEvent(uint32_t) override { owner->Accept(fd); }
    Listener* owner;
    int fd;
  };
  void Accept(int fd);

  EventLoop* loop_;
  std::vector<std::unique_ptr<Socket>> sockets_;
  OnAccept on_accept_;
};

}  // namespace larder::net
