#include "net/tls.h"

#include <openssl/decoder.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/epoll.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <sstream>
#include <vector>

#include "common/clock.h"
#include "common/log.h"
#include "common/strings.h"
#include "net/stream.h"

namespace larder::net {

namespace {

std::string OpenSslError() {
  char buf[256];
  unsigned long e = ERR_get_error();
  if (e == 0) return "unknown error";
  ERR_error_string_n(e, buf, sizeof(buf));
  ERR_clear_error();
  return buf;
}

// The bits of tls-protocols, as SSL_OP_NO_* options to set (every version
// not named), or false if a word is not a protocol.
bool ProtocolOptions(const std::string& text, uint64_t* no_options) {
  struct Version {
    const char* name;
    uint64_t no_option;
  };
  static const Version kVersions[] = {{"tlsv1", SSL_OP_NO_TLSv1},
                                      {"tlsv1.1", SSL_OP_NO_TLSv1_1},
                                      {"tlsv1.2", SSL_OP_NO_TLSv1_2},
                                      {"tlsv1.3", SSL_OP_NO_TLSv1_3}};
  uint64_t allowed = 0;
  if (text.empty()) {
    allowed = SSL_OP_NO_TLSv1_2 | SSL_OP_NO_TLSv1_3;  // Redis's default
  } else {
    std::istringstream in(text);
    std::string word;
    while (in >> word) {
      word = AsciiLower(word);
      bool known = false;
      for (const auto& v : kVersions) {
        if (word == v.name) {
          allowed |= v.no_option;
          known = true;
        }
      }
      if (!known) return false;
    }
    if (allowed == 0) return false;
  }
  *no_options = 0;
  for (const auto& v : kVersions)
    if (!(allowed & v.no_option)) *no_options |= v.no_option;
  return true;
}

// Hands tls-key-file-pass to OpenSSL while the key file is read.
int PasswordCallback(char* buf, int size, int /*rwflag*/, void* userdata) {
  auto* pass = static_cast<const std::string*>(userdata);
  if (!pass || pass->empty() || pass->size() > static_cast<size_t>(size)) return -1;
  memcpy(buf, pass->data(), pass->size());
  return static_cast<int>(pass->size());
}

bool LoadDhParams(SSL_CTX* ctx, const std::string& file, std::string* err) {
  FILE* f = fopen(file.c_str(), "r");
  if (!f) {
    *err = "Failed to load " + file + ": " + strerror(errno);
    return false;
  }
  EVP_PKEY* pkey = nullptr;
  OSSL_DECODER_CTX* dctx = OSSL_DECODER_CTX_new_for_pkey(&pkey, "PEM", nullptr, nullptr,
                                                         OSSL_KEYMGMT_SELECT_DOMAIN_PARAMETERS, nullptr, nullptr);
  bool ok = dctx && OSSL_DECODER_from_fp(dctx, f);
  OSSL_DECODER_CTX_free(dctx);
  fclose(f);
  if (!ok) {
    *err = file + ": failed to read DH params.";
    return false;
  }
  if (SSL_CTX_set0_tmp_dh_pkey(ctx, pkey) <= 0) {  // owns pkey on success only
    *err = "Failed to load DH params file: " + file + ": " + OpenSslError();
    EVP_PKEY_free(pkey);
    return false;
  }
  return true;
}

// Sessions of this thread whose handshake is still running, oldest first.
thread_local TlsSession* handshaking_head = nullptr;
thread_local TlsSession* handshaking_tail = nullptr;

}  // namespace

std::shared_ptr<TlsContext> TlsContext::Build(const TlsSettings& s, std::string* err) {
  static std::once_flag init;
  std::call_once(init, [] { OPENSSL_init_ssl(OPENSSL_INIT_LOAD_CONFIG, nullptr); });
  ERR_clear_error();
  if (s.cert_file.empty()) {
    *err = "No tls-cert-file configured!";
    return nullptr;
  }
  if (s.key_file.empty()) {
    *err = "No tls-key-file configured!";
    return nullptr;
  }
  if (s.verifies_clients && s.ca_cert_file.empty() && s.ca_cert_dir.empty()) {
    *err = "Either tls-ca-cert-file or tls-ca-cert-dir must be specified when tls-cluster, tls-replication or "
           "tls-auth-clients are enabled!";
    return nullptr;
  }
  uint64_t no_versions = 0;
  if (!ProtocolOptions(s.protocols, &no_versions)) {
    *err = "Invalid tls-protocols specified. Use a combination of 'TLSv1', 'TLSv1.1', 'TLSv1.2' and 'TLSv1.3'.";
    return nullptr;
  }
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  if (!ctx) {
    *err = "Failed to create a TLS context: " + OpenSslError();
    return nullptr;
  }
  std::shared_ptr<TlsContext> out(new TlsContext(ctx));
  // Renegotiation is refused outright: it is a denial-of-service lever and
  // would make a write wait for a read mid-stream.
  SSL_CTX_set_options(ctx, SSL_OP_NO_SSLv2 | SSL_OP_NO_SSLv3 | SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                               SSL_OP_SINGLE_DH_USE | no_versions);
  if (s.prefer_server_ciphers) SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE);
  // Partial writes: SSL_write returns after each record sent, so a write
  // that blocks leaves only whole records behind, and the output buffer may
  // move (grow, be compacted) between the attempt and its retry.
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);

  SSL_CTX_set_default_passwd_cb(ctx, PasswordCallback);
  SSL_CTX_set_default_passwd_cb_userdata(ctx, const_cast<std::string*>(&s.key_file_pass));
  bool loaded = false;
  if (SSL_CTX_use_certificate_chain_file(ctx, s.cert_file.c_str()) <= 0) {
    *err = "Failed to load certificate: " + s.cert_file + ": " + OpenSslError();
  } else if (SSL_CTX_use_PrivateKey_file(ctx, s.key_file.c_str(), SSL_FILETYPE_PEM) <= 0) {
    *err = "Failed to load private key: " + s.key_file + ": " + OpenSslError();
  } else {
    loaded = true;
  }
  SSL_CTX_set_default_passwd_cb_userdata(ctx, nullptr);  // `s` is not kept
  if (!loaded) return nullptr;
  if ((!s.ca_cert_file.empty() || !s.ca_cert_dir.empty()) &&
      SSL_CTX_load_verify_locations(ctx, s.ca_cert_file.empty() ? nullptr : s.ca_cert_file.c_str(),
                                    s.ca_cert_dir.empty() ? nullptr : s.ca_cert_dir.c_str()) <= 0) {
    *err = "Failed to configure CA certificate(s) file/directory: " + OpenSslError();
    return nullptr;
  }
  if (!s.ciphers.empty() && !SSL_CTX_set_cipher_list(ctx, s.ciphers.c_str())) {
    *err = "Failed to configure ciphers: " + s.ciphers;
    return nullptr;
  }
  if (!s.ciphersuites.empty() && !SSL_CTX_set_ciphersuites(ctx, s.ciphersuites.c_str())) {
    *err = "Failed to configure ciphersuites: " + s.ciphersuites;
    return nullptr;
  }
  if (s.session_caching) {
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
    SSL_CTX_sess_set_cache_size(ctx, static_cast<long>(s.session_cache_size));
    SSL_CTX_set_timeout(ctx, static_cast<long>(s.session_cache_timeout));
    static const unsigned char kSessionContext[] = "larder";
    SSL_CTX_set_session_id_context(ctx, kSessionContext, sizeof(kSessionContext) - 1);
  } else {
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  }
  if (!s.dh_params_file.empty()) {
    if (!LoadDhParams(ctx, s.dh_params_file, err)) return nullptr;
  } else {
    SSL_CTX_set_dh_auto(ctx, 1);
  }
  ERR_clear_error();
  return out;
}

TlsContext::~TlsContext() { SSL_CTX_free(ctx_); }

std::unique_ptr<TlsSession> TlsSession::Create(const TlsContext& context, int fd, TlsClientAuth auth,
                                               std::string* err) {
  SSL* ssl = SSL_new(context.native());
  if (!ssl) {
    *err = OpenSslError();
    return nullptr;
  }
  switch (auth) {
    case TlsClientAuth::kNo: SSL_set_verify(ssl, SSL_VERIFY_NONE, nullptr); break;
    case TlsClientAuth::kOptional: SSL_set_verify(ssl, SSL_VERIFY_PEER, nullptr); break;
    case TlsClientAuth::kYes:
      SSL_set_verify(ssl, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
      break;
  }
  if (SSL_set_fd(ssl, fd) != 1) {
    *err = OpenSslError();
    SSL_free(ssl);
    return nullptr;
  }
  SSL_set_accept_state(ssl);
  return std::unique_ptr<TlsSession>(new TlsSession(ssl, fd));
}

TlsSession::TlsSession(SSL* ssl, int fd) : ssl_(ssl), fd_(fd), started_ms_(MonotonicUs() / 1000) {
  // Listed until the handshake finishes (or the session goes).
  prev_ = handshaking_tail;
  if (handshaking_tail) handshaking_tail->next_ = this;
  else handshaking_head = this;
  handshaking_tail = this;
  listed_ = true;
}

TlsSession::~TlsSession() {
  NoteHandshake();
  SSL_free(ssl_);
}

void TlsSession::NoteHandshake() {
  if (!listed_) return;
  if (prev_) prev_->next_ = next_;
  else handshaking_head = next_;
  if (next_) next_->prev_ = prev_;
  else handshaking_tail = prev_;
  prev_ = next_ = nullptr;
  listed_ = false;
}

ssize_t TlsSession::Failed(int ret, bool reading) {
  int e = SSL_get_error(ssl_, ret);
  if (!handshake_done_ && SSL_is_init_finished(ssl_)) {
    handshake_done_ = true;
    NoteHandshake();
  }
  switch (e) {
    case SSL_ERROR_WANT_READ:
      if (!reading) write_wants_read_ = true;
      errno = EAGAIN;
      return -1;
    case SSL_ERROR_WANT_WRITE:
      if (reading) read_wants_write_ = true;
      errno = EAGAIN;
      return -1;
    case SSL_ERROR_ZERO_RETURN:  // the peer's close_notify
      if (reading) return 0;
      errno = EPIPE;
      return -1;
    case SSL_ERROR_SYSCALL:
      if (reading && errno == 0) return 0;  // EOF without close_notify
      if (errno == 0) errno = EPIPE;
      error_ = strerror(errno);
      break;
    default:
      error_ = OpenSslError();
      errno = EPROTO;
      break;
  }
  ERR_clear_error();
  shut_ = true;  // after a fatal error OpenSSL must not be asked to send close_notify
  int saved = errno;
  if (!handshake_done_) LOG_VERBOSE("Error accepting a client connection: {}", error_);
  errno = saved;
  return -1;
}

ssize_t TlsSession::Read(char* buf, size_t n) {
  read_wants_write_ = false;
  if (eof_) return 0;
  size_t got = 0;
  // SSL_read returns one record at a time: keep going until the buffer is
  // full or OpenSSL has nothing more, so that a short return means what it
  // means for read(2) (drained), and no decrypted byte stays buffered inside
  // OpenSSL where no epoll event would announce it.
  while (got < n) {
    int r = SSL_read(ssl_, buf + got, static_cast<int>(std::min<size_t>(n - got, INT_MAX)));
    if (r > 0) {
      got += static_cast<size_t>(r);
      continue;
    }
    if (got == 0) return Failed(r, true);
    int saved = errno;
    if (Failed(r, true) == 0) eof_ = true;  // the end shows at the next call
    errno = saved;
    break;
  }
  if (!handshake_done_) {  // data arrived: the handshake is over
    handshake_done_ = true;
    NoteHandshake();
  }
  return static_cast<ssize_t>(got);
}

ssize_t TlsSession::Write(const char* buf, size_t n) {
  write_wants_read_ = false;
  int r = SSL_write(ssl_, buf, static_cast<int>(std::min<size_t>(n, INT_MAX)));
  if (r > 0) return r;
  return Failed(r, false);
}

void TlsSession::Shutdown() {
  NoteHandshake();  // on the loop's thread, whose list it is on
  if (shut_) return;
  shut_ = true;
  if (handshake_done_ && SSL_is_init_finished(ssl_)) SSL_shutdown(ssl_);  // close_notify, not awaited
  ERR_clear_error();
}

uint32_t TlsSession::AdjustInterest(uint32_t want) {
  reading_ = (want & EPOLLIN) != 0;
  if (write_wants_read_) {
    want |= EPOLLIN;
    want &= ~static_cast<uint32_t>(EPOLLOUT);  // writable now would only spin
  }
  // A read waiting for writability, or decrypted bytes already buffered in
  // OpenSSL (no socket event would come for them): a writable socket
  // reports at once, and OnEvent hands that to the stream as readable.
  if (read_wants_write_ || (reading_ && SSL_pending(ssl_) > 0)) want |= EPOLLOUT;
  return want;
}

void TlsSession::OnEvent(uint32_t events) {
  uint32_t ev = events;
  if ((ev & EPOLLOUT) && (read_wants_write_ || (reading_ && SSL_pending(ssl_) > 0))) ev |= EPOLLIN;
  if ((ev & EPOLLIN) && write_wants_read_) ev |= EPOLLOUT;
  if (!reading_ && !read_wants_write_) ev &= ~static_cast<uint32_t>(EPOLLIN);  // the stream paused reading
  Stream* s = stream_;
  s->OnEvent(ev);
  if (!s->closed()) s->UpdateInterest();
}

void ReapHandshakes(int64_t now_ms) {
  std::vector<TlsSession*> late;
  for (TlsSession* t = handshaking_head; t; t = t->next_) {
    if (now_ms - t->started_ms_ < TlsSession::kHandshakeTimeoutMs) break;  // the rest are younger
    late.push_back(t);
  }
  for (TlsSession* t : late) {
    LOG_VERBOSE("Closing a TLS connection whose handshake did not finish in {} ms",
                TlsSession::kHandshakeTimeoutMs);
    t->NoteHandshake();
    if (t->stream_) t->stream_->Close();  // the owner frees the stream later, never here
  }
}

void StartHandshakeReaper(EventLoop* loop) {
  loop->RunEvery(1000, [] { ReapHandshakes(MonotonicUs() / 1000); });
}

}  // namespace larder::net
