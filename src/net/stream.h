// One TCP connection's bytes: the socket, its input and output buffers, and
// back-pressure. Knows nothing of RESP or commands: its owner (a
// StreamHandler) parses what arrives in input() and appends its answers to
// output(); the stream writes them out and tells the owner when more input
// arrived, when output drained, and when the peer went away.
//
//   epoll ──► Stream::OnEvent ──► read(2) into input() ──► handler->OnInput()
//   handler appends to output() ──► Stream::Flush ──► write(2), EPOLLOUT if partial
//
// Back-pressure: while more than `kOutputPause` bytes wait to be sent, the
// stream stops reading (the kernel's buffers then push back on the client),
// and OutputBlocked() tells the owner to stop parsing what it has buffered.
// Once the output drains below the limit, reading resumes and the owner gets
// OnOutputDrained() to continue with buffered input.
//
// TLS (net/tls.h): AttachTls before Start puts a TlsSession between the
// stream and the socket; reads and writes then go through OpenSSL and the
// session registers with the loop in the stream's place. Everything else
// (buffers, back-pressure, the handler's calls) is the same.
//
// Lives on one event loop's thread; every method must be called there.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "net/buffer.h"
#include "net/event_loop.h"

namespace larder::net {

class TlsSession;

class StreamHandler {
 public:
  virtual ~StreamHandler() = default;
  // New bytes are in input() (also called to resume after OnOutputDrained).
  virtual void OnInput() = 0;
  // Output fell below the pause limit after being above it.
  virtual void OnOutputDrained() = 0;
  // The input buffer grew past the limit set with set_max_input(): the
  // stream is about to close (the owner logs why).
  virtual void OnInputLimit(size_t size) = 0;
  // The peer closed, an I/O error happened, or Close() was called.
  virtual void OnClosed() = 0;
};

class Stream : public EventHandler {
 public:
  // Bytes of unsent output above which reading and parsing pause.
  static constexpr size_t kOutputPause = 64 * 1024 * 1024;
  // Bytes of unparsed input above which reading pauses (unless a large
  // argument is still arriving): a client whose commands wait cannot make
  // the server buffer everything it sends. The owner calls Rearm() once it
  // has consumed input.
  static constexpr size_t kInputPause = 256 * 1024;

  Stream(EventLoop* loop, int fd, StreamHandler* handler);
  ~Stream() override;
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  // Serves this connection over TLS (before Start()).
  void AttachTls(std::unique_ptr<TlsSession> session);
  bool tls() const { return tls_ != nullptr; }
  void Start() { UpdateInterest(); }
  void OnEvent(uint32_t events) override;

  int fd() const { return fd_; }
  bool closed() const { return closed_; }
  IoBuffer& input() { return in_; }
  // Append replies here, then Flush().
  std::string& output() { return out_; }
  size_t pending_output() const { return out_.size() - out_pos_; }
  bool OutputBlocked() const { return pending_output() > kOutputPause; }
  // Writes what it can now; the rest goes when the socket is writable.
  void Flush();
  // Stops reading (a reply that closes the connection is on its way).
  void StopReading() {
    no_read_ = true;
    UpdateInterest();
  }
  // Closes once everything appended so far is sent.
  void CloseAfterFlush() {
    close_after_flush_ = true;
    StopReading();
    if (pending_output() == 0) Close();
  }
  void Close();

  void set_max_input(size_t bytes) { max_input_ = bytes; }
  // Reading resumes if it had paused for input or output (see kInputPause).
  // (Only a stream that paused for input does anything here: no epoll call
  // on the request path otherwise.)
  void Rearm() {
    if (input_paused_ && !InputFull()) {
      input_paused_ = false;
      UpdateInterest();
    }
  }
  // A lower bound of the bytes the owner still needs for the current request
  // (one large bulk): the next read asks for that much at once.
  void set_read_hint(size_t bytes) { hint_end_ = in_.size() + bytes; }

  // Lifetime totals, and what the loop's interest is now (CLIENT LIST).
  uint64_t bytes_read() const { return bytes_read_; }
  uint64_t bytes_written() const { return bytes_written_; }
  bool wants_write() const { return (interest_ & kWrite) != 0; }
  size_t output_capacity() const { return out_.capacity(); }
  // Drops buffers a burst left behind (an idle client keeps little).
  void ShrinkIdleBuffers();
  // Frees the output buffer once everything in it is sent.
  void ReleaseSentOutput() {
    if (out_.empty() && out_.capacity() > 64) std::string().swap(out_);
  }

 private:
  friend class TlsSession;  // calls OnEvent with the events it translated, and UpdateInterest
  static constexpr uint32_t kRead = 1, kWrite = 4;  // EPOLLIN, EPOLLOUT
  void OnReadable();
  void UpdateInterest();
  void SetInterest(uint32_t want);  // registers a changed interest with the loop
  // Past the pause limit, reading goes on only while the announced bulk is
  // still incomplete (not for whatever follows it while commands wait).
  bool InputFull() const { return in_.size() >= kInputPause && in_.size() >= hint_end_; }
  size_t HintLeft() const { return hint_end_ > in_.size() ? hint_end_ - in_.size() : 0; }

  EventLoop* loop_;
  int fd_;
  StreamHandler* handler_;
  IoBuffer in_;
  std::string out_;
  size_t out_pos_ = 0;
  uint32_t interest_ = 0;
  bool closed_ = false;
  bool no_read_ = false;
  bool close_after_flush_ = false;
  bool input_paused_ = false;  // reading stopped for InputFull (Rearm resumes it)
  size_t max_input_ = SIZE_MAX;
  size_t hint_end_ = 0;  // input size at which the announced bulk is complete
  uint64_t bytes_read_ = 0;
  uint64_t bytes_written_ = 0;
  std::unique_ptr<TlsSession> tls_;  // null for a plain connection
};

}  // namespace larder::net
