#include "net/listener.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/log.h"

namespace larder::net {

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
  } else if (ss.ss_family == AF_UNIX) {
    return std::string(reinterpret_cast<const sockaddr_un*>(&ss)->sun_path) + ":0";
  }
  return std::string(host) + ":" + std::to_string(port);
}
}  // namespace

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

int OpenUnixListener(const std::string& path, int perm, int backlog, std::string* err) {
  sockaddr_un sa{};
  if (path.empty() || path.size() >= sizeof(sa.sun_path)) {
    *err = "Invalid unix socket path";
    return -1;
  }
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    *err = strerror(errno);
    return -1;
  }
  sa.sun_family = AF_UNIX;
  memcpy(sa.sun_path, path.data(), path.size());
  unlink(path.c_str());
  if (bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0 || (perm && chmod(path.c_str(), perm) != 0) ||
      listen(fd, backlog) != 0) {
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

std::string SocketAddress(int fd, bool local) {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  if (local) getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
  else getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len);
  return FormatAddr(ss);
}

Listener::Listener(EventLoop* loop, std::vector<int> fds, OnAccept on_accept)
    : loop_(loop), on_accept_(std::move(on_accept)) {
  for (int fd : fds) {
    sockets_.push_back(std::make_unique<Socket>(this, fd));
    loop_->Add(fd, EPOLLIN, sockets_.back().get());
  }
}

Listener::~Listener() {
  for (auto& s : sockets_) {
    loop_->Remove(s->fd);
    close(s->fd);
  }
}

void Listener::Accept(int lfd) {
  for (int i = 0; i < 64; ++i) {
    sockaddr_storage ss{};
    socklen_t len = sizeof(ss);
    int fd = accept4(lfd, reinterpret_cast<sockaddr*>(&ss), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) LOG_WARNING("Accepting client connection: {}", strerror(errno));
      return;
    }
    if (ss.ss_family == AF_UNIX) {
      // The peer of a Unix socket has no name: both ends show the path.
      std::string path = SocketAddress(fd, true);
      on_accept_(fd, path, path);
      continue;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    on_accept_(fd, FormatAddr(ss), SocketAddress(fd, true));
  }
}

void SetTcpKeepAlive(int fd, int idle_s) {
  int on = idle_s > 0 ? 1 : 0;
  setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on));
  if (!on) return;
  idle_s = idle_s > 32767 ? 32767 : idle_s;  // Linux's largest TCP_KEEPIDLE
  int interval = idle_s / 3 > 0 ? idle_s / 3 : 1, probes = 3;
  setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle_s, sizeof(idle_s));
  setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof(interval));
  setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &probes, sizeof(probes));
}

}  // namespace larder::net
