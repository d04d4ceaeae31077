// TLS over a Stream's socket (OpenSSL): the server context built from the
// tls-* settings, and one connection's session that the stream reads and
// writes through. Knows nothing of configuration files or commands: the
// server fills TlsSettings and swaps in a new TlsContext when they change.
//
//   accept ──► TlsSession::Create(context, fd, auth) ──► Stream::AttachTls
//   epoll ──► TlsSession::OnEvent (translates what OpenSSL waits for)
//         ──► Stream::OnEvent ──► TlsSession::Read (SSL_read) ... as plain
//   Stream::Flush ──► TlsSession::Write (SSL_write)
//
// The handshake is not a separate step: the session is in accept state, so
// the first SSL_read drives it; until it completes the reads return "try
// again" and the client simply has no input yet. A handshake that has not
// finished within kHandshakeTimeoutMs is closed by a per-loop timer
// (StartHandshakeReaper), so a peer that connects and stalls holds its
// connection (bounded by maxclients) for at most that long.
//
// Read and Write keep read(2)/write(2)'s contract: n > 0 bytes, 0 at the
// end of the stream (close_notify or EOF), -1 with errno EAGAIN when OpenSSL
// needs the socket readable or writable first, -1 with another errno on an
// error. When a read has to wait for writability (or a write for
// readability) the session asks the loop for that event and hands it to the
// stream as the one the stream wanted (AdjustInterest, OnEvent).
//
// Threads: a TlsContext is immutable once built and shared by every shard
// (OpenSSL's SSL_CTX is thread-safe for creating sessions); a TlsSession
// lives on its stream's loop thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <sys/types.h>

#include "net/event_loop.h"

typedef struct ssl_ctx_st SSL_CTX;
typedef struct ssl_st SSL;

namespace larder::net {

class Stream;

// What Redis's tls-* options say about the server's side of TLS. Empty
// strings mean "not set".
struct TlsSettings {
  std::string cert_file, key_file, key_file_pass;
  std::string ca_cert_file, ca_cert_dir;
  std::string dh_params_file;
  std::string protocols;     // "TLSv1.2 TLSv1.3"; empty: TLSv1.2 and TLSv1.3
  std::string ciphers;       // TLSv1.2 and below (OpenSSL cipher list)
  std::string ciphersuites;  // TLSv1.3
  bool prefer_server_ciphers = false;
  bool session_caching = true;
  int64_t session_cache_size = 20 * 1024;
  int64_t session_cache_timeout = 300;  // seconds
  // Whether a client certificate is (or may be) asked for: a CA must be set.
  bool verifies_clients = true;
};

// tls-auth-clients: whether a client must, may or need not present a
// certificate signed by the configured CA.
enum class TlsClientAuth { kNo, kYes, kOptional };

// One server SSL_CTX. Sessions keep a reference to the context they were
// made from, so replacing the server's context (CONFIG SET tls-cert-file)
// affects new connections only.
class TlsContext {
 public:
  // Builds a context, or returns null with the reason in *err (the line
  // the server logs: "Failed to load certificate: <file>: <openssl error>").
  static std::shared_ptr<TlsContext> Build(const TlsSettings& settings, std::string* err);
  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

  SSL_CTX* native() const { return ctx_; }

 private:
  explicit TlsContext(SSL_CTX* ctx) : ctx_(ctx) {}
  SSL_CTX* ctx_;
};

class TlsSession : public EventHandler {
 public:
  // A handshake not finished after this long closes the connection.
  static constexpr int64_t kHandshakeTimeoutMs = 10 * 1000;

  // A server-side session on an accepted socket, or null (and *err) if
  // OpenSSL could not make one.
  static std::unique_ptr<TlsSession> Create(const TlsContext& context, int fd, TlsClientAuth auth,
                                            std::string* err);
  ~TlsSession() override;
  TlsSession(const TlsSession&) = delete;
  TlsSession& operator=(const TlsSession&) = delete;

  // read(2)/write(2) contract, see the top of the file. Read fills `buf` as
  // far as it can: a return shorter than `n` means nothing more is readable
  // now (as a short read(2) on a drained socket).
  ssize_t Read(char* buf, size_t n);
  ssize_t Write(const char* buf, size_t n);
  // Sends close_notify if the handshake finished (once, without waiting
  // for the peer's). The caller closes the socket.
  void Shutdown();

  // The epoll interest the stream wants (EPOLLIN/EPOLLOUT bits), adjusted
  // for what OpenSSL waits for; called by Stream::UpdateInterest.
  uint32_t AdjustInterest(uint32_t want);
  // The loop's events for this socket: handed to the stream as the events
  // it waits for, then the interest refreshed.
  void OnEvent(uint32_t events) override;

  bool handshake_done() const { return handshake_done_; }
  // The reason of the last failure ("" if none), for the log.
  const std::string& error() const { return error_; }

 private:
  friend class Stream;
  friend void ReapHandshakes(int64_t now_ms);
  TlsSession(SSL* ssl, int fd);
  // Maps an SSL_read/SSL_write result <= 0 to the read(2) contract.
  ssize_t Failed(int ret, bool reading);
  void NoteHandshake();

  SSL* ssl_;
  int fd_;
  Stream* stream_ = nullptr;  // set by Stream::AttachTls
  bool handshake_done_ = false;
  bool read_wants_write_ = false;  // SSL_read waits for the socket to be writable
  bool write_wants_read_ = false;  // SSL_write waits for it to be readable
  bool eof_ = false;               // a read met the end after returning data
  bool reading_ = false;           // the stream's interest includes reading
  bool shut_ = false;
  int64_t started_ms_;
  std::string error_;
  // Handshaking sessions of this thread (for the reaper).
  TlsSession* prev_ = nullptr;
  TlsSession* next_ = nullptr;
  bool listed_ = false;
};

// Starts a timer on `loop` (once per loop, on its thread) that closes the
// streams of sessions of that thread whose handshake did not finish within
// TlsSession::kHandshakeTimeoutMs.
void StartHandshakeReaper(EventLoop* loop);

}  // namespace larder::net
