#include "net/stream.h"

#include <sys/epoll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "net/tls.h"

namespace larder::net {

namespace {
constexpr size_t kReadChunk = 16 * 1024;
constexpr size_t kMaxReadPerEvent = 1024 * 1024;  // fairness between clients
// Buffers larger than this are released when idle: used memory counts
// against maxmemory, and an idle client should not hold a burst's buffers.
constexpr size_t kKeepBuffer = 64 * 1024;
// The output buffer kept once everything is sent: Redis's 16 KB reply
// buffer. More, kept by every client a burst of pushes reached (tracking
// invalidations, pub/sub), counts against maxmemory while nothing uses it.
constexpr size_t kKeepOutput = 16 * 1024;
}  // namespace

static_assert(EPOLLIN == 1 && EPOLLOUT == 4);

Stream::Stream(EventLoop* loop, int fd, StreamHandler* handler) : loop_(loop), fd_(fd), handler_(handler) {}

Stream::~Stream() {
  if (!closed_) {
    if (interest_) loop_->Remove(fd_);
    ::close(fd_);
  }
}

void Stream::UpdateInterest() {
  if (closed_) return;
  uint32_t want = 0;
  if (!no_read_ && !OutputBlocked() && !InputFull()) want |= kRead;
  if (pending_output()) want |= kWrite;
  if (tls_) [[unlikely]] want = tls_->AdjustInterest(want);
  if (want == interest_) return;
  SetInterest(want);
}

void Stream::SetInterest(uint32_t want) {
  // A TLS session takes the events and hands them on (net/tls.h).
  EventHandler* to = tls_ ? static_cast<EventHandler*>(tls_.get()) : this;
  if (interest_ == 0) loop_->Add(fd_, want, to);
  else if (want == 0) loop_->Remove(fd_);
  else loop_->Modify(fd_, want, to);
  interest_ = want;
}

void Stream::Close() {
  if (closed_) return;
  closed_ = true;
  if (interest_) loop_->Remove(fd_);
  interest_ = 0;
  if (tls_) tls_->Shutdown();
  ::close(fd_);
  handler_->OnClosed();
}

void Stream::OnEvent(uint32_t events) {
  if (closed_) return;
  if (events & EPOLLIN) OnReadable();
  if (closed_) return;
  if (events & EPOLLOUT) Flush();
  if (closed_) return;
  if ((events & (EPOLLERR | EPOLLHUP)) && !(events & EPOLLIN)) Close();
}

void Stream::OnReadable() {
  size_t total = 0;
  while (total < kMaxReadPerEvent) {
    // A big bulk is announced: read it in large chunks.
    size_t want = std::max(kReadChunk, std::min<size_t>(HintLeft(), 1 << 20));
    char* dst = in_.Reserve(want);
    ssize_t n;
    if (tls_) [[unlikely]] n = tls_->Read(dst, in_.Writable());
    else n = ::read(fd_, dst, in_.Writable());
    if (n > 0) {
      in_.Commit(static_cast<size_t>(n));
      total += static_cast<size_t>(n);
      if (in_.size() > max_input_) {
        handler_->OnInputLimit(in_.size());
        Close();
        return;
      }
      if (in_.Writable() > 0) break;  // short read: the socket is drained
      if (InputFull()) break;
      continue;
    }
    if (n == 0) {
      Close();
      return;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) break;
    Close();
    return;
  }
  if (total == 0) return;
  bytes_read_ += total;
  if (InputFull()) {  // the handler's Rearm() resumes reading
    input_paused_ = true;
    UpdateInterest();
  }
  handler_->OnInput();
}

void Stream::Flush() {
  if (closed_) return;
  if (out_pos_ == out_.size() && !close_after_flush_) return;  // nothing to send
  bool was_blocked = OutputBlocked();
  while (out_pos_ < out_.size()) {
    ssize_t n;
    if (tls_) [[unlikely]] n = tls_->Write(out_.data() + out_pos_, out_.size() - out_pos_);
    else n = ::write(fd_, out_.data() + out_pos_, out_.size() - out_pos_);
    if (n > 0) {
      out_pos_ += static_cast<size_t>(n);
      bytes_written_ += static_cast<uint64_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    Close();
    return;
  }
  if (out_pos_ == out_.size()) {
    out_.clear();
    out_pos_ = 0;
    if (out_.capacity() > kKeepOutput) out_.shrink_to_fit();
    if (close_after_flush_) {
      Close();
      return;
    }
  } else if (out_pos_ > (1 << 20) && out_pos_ > out_.size() / 2) {
    out_.erase(0, out_pos_);
    out_pos_ = 0;
  }
  UpdateInterest();
  if (was_blocked && !OutputBlocked()) handler_->OnOutputDrained();
}

void Stream::AttachTls(std::unique_ptr<TlsSession> session) {
  tls_ = std::move(session);
  tls_->stream_ = this;
}

void Stream::ShrinkIdleBuffers() { in_.ShrinkIfIdle(kKeepBuffer); }

}  // namespace larder::net
