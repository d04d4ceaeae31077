// A single-threaded epoll event loop: file descriptor readiness, periodic
// timers, and a thread-safe Wake() (eventfd) that other threads use after
// posting work to this loop's owner. It knows nothing about commands.
//
// Every method except Wake() must be called on the loop's own thread.
// The loop sleeps in epoll_wait when idle: no busy polling.
#pragma once

#include <absl/functional/any_invocable.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <vector>

namespace larder::net {

class EventHandler {
 public:
  virtual ~EventHandler() = default;
  // `events` is the epoll mask (EPOLLIN, EPOLLOUT, EPOLLERR, EPOLLHUP, ...).
  virtual void OnEvent(uint32_t events) = 0;
};

class EventLoop {
 public:
  EventLoop();
  ~EventLoop();
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  bool Add(int fd, uint32_t events, EventHandler* handler);
  bool Modify(int fd, uint32_t events, EventHandler* handler);
  void Remove(int fd);

  // Calls `fn` every `interval_ms` (first call after one interval).
  void RunEvery(int64_t interval_ms, absl::AnyInvocable<void()> fn);
  // The next wait ends by `deadline_us` (MonotonicUs) at the latest, to the
  // microsecond; one-shot: it bounds only the wait that follows the call.
  void WakeBy(int64_t deadline_us) { wake_by_ = std::min(wake_by_, deadline_us); }
  // Called once per iteration after I/O events, and after a Wake().
  void SetAfterEvents(absl::AnyInvocable<void()> fn) { after_events_ = std::move(fn); }
  // Called once per iteration as the loop wakes, before any event is
  // handled (the shard refreshes its command time here: one clock read per
  // iteration, not one per client or message).
  void SetOnWake(absl::AnyInvocable<void()> fn) { on_wake_ = std::move(fn); }

  // Thread-safe: makes a sleeping loop run its after-events hook. Costs a
  // system call only if the loop is (about to be) asleep in epoll_wait.
  void Wake();
  // Called on the loop thread just before it would sleep: returning true
  // (work is pending) makes it poll instead. Pairs with Wake()'s check of the
  // sleeping flag so that no wake-up is lost.
  void SetHasPendingWork(absl::AnyInvocable<bool()> fn) { has_pending_ = std::move(fn); }
  // Runs until Stop() is called (from the loop thread or via a posted task).
  void Run();
  void Stop() { running_ = false; }
  // How many events the loop has handled (a cheap sign of traffic: one add
  // per wait, not per event).
  uint64_t events() const { return events_; }
  // One wait of at most `timeout_ms` and the handlers of what is ready; no
  // wake hook, no after-events hook, no timers. For a loop thread that is
  // busy inside a handler (a long script) and must still answer its other
  // connections (a handler that is running is not re-entered by its owner).
  void PollOnce(int timeout_ms);

 private:
  struct Timer {
    int64_t interval_us;
    int64_t next_us;
    absl::AnyInvocable<void()> fn;
  };
  class WakeHandler : public EventHandler {
   public:
    explicit WakeHandler(int fd) : fd_(fd) {}
    void OnEvent(uint32_t) override;
   private:
    int fd_;
    uint32_t events_ = 0;
  };

  int epfd_;
  int wake_fd_;
  WakeHandler wake_handler_;
  bool running_ = false;
  std::vector<Timer> timers_;
  int64_t next_due_ = INT64_MAX;  // the earliest timer's next_us
  int64_t wake_by_ = INT64_MAX;   // WakeBy's bound on the next wait
  uint64_t events_ = 0;
  absl::AnyInvocable<void()> after_events_;
  absl::AnyInvocable<void()> on_wake_;
  absl::AnyInvocable<bool()> has_pending_;
  std::atomic<bool> sleeping_{false};
};

}  // namespace larder::net
