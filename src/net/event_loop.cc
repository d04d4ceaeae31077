#include "net/event_loop.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <ctime>

#include "common/clock.h"

namespace larder::net {

EventLoop::EventLoop()
    : epfd_(epoll_create1(EPOLL_CLOEXEC)),
      wake_fd_(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)),
      wake_handler_(wake_fd_) {
  // Edge-triggered: every write to the eventfd raises a new event whatever
  // its counter holds, so the loop never needs to read it (one system call
  // less per wake-up).
  Add(wake_fd_, EPOLLIN | EPOLLET, &wake_handler_);
}

EventLoop::~EventLoop() {
  close(wake_fd_);
  close(epfd_);
}

void EventLoop::WakeHandler::OnEvent(uint32_t) {
  // Nothing to read (edge-triggered); only drain the counter if it ever
  // gets large, so that a write can never block.
  if (++events_ % (1u << 20) == 0) {
    uint64_t v;
    while (read(fd_, &v, sizeof(v)) > 0) {
    }
  }
}

bool EventLoop::Add(int fd, uint32_t events, EventHandler* handler) {
  epoll_event ev{};
  ev.events = events;
  ev.data.ptr = handler;
  return epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) == 0;
}

bool EventLoop::Modify(int fd, uint32_t events, EventHandler* handler) {
  epoll_event ev{};
  ev.events = events;
  ev.data.ptr = handler;
  return epoll_ctl(epfd_, EPOLL_CTL_MOD, fd, &ev) == 0;
}

void EventLoop::Remove(int fd) { epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, nullptr); }

void EventLoop::RunEvery(int64_t interval_ms, absl::AnyInvocable<void()> fn) {
  int64_t interval_us = interval_ms * 1000;
  timers_.push_back(Timer{interval_us, MonotonicUs() + interval_us, std::move(fn)});
  next_due_ = std::min(next_due_, timers_.back().next_us);
}

void EventLoop::Wake() {
  // Pairs with the fence in Run() after `sleeping_` is set: either the loop
  // sees the work queued before this call, or this call sees it sleeping.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (!sleeping_.load(std::memory_order_seq_cst)) return;
  uint64_t one = 1;
  ssize_t n = write(wake_fd_, &one, sizeof(one));
  (void)n;
}

void EventLoop::PollOnce(int timeout_ms) {
  constexpr int kMaxEvents = 64;
  epoll_event events[kMaxEvents];
  int n = epoll_wait(epfd_, events, kMaxEvents, timeout_ms);
  for (int i = 0; i < n; ++i) static_cast<EventHandler*>(events[i].data.ptr)->OnEvent(events[i].events);
}

void EventLoop::Run() {
  running_ = true;
  constexpr int kMaxEvents = 256;
  epoll_event events[kMaxEvents];
  // One clock read per iteration: `now` is taken after the events, and the
  // next sleep is computed from it and the earliest timer.
  int64_t now = MonotonicUs();
  int64_t& next_due = next_due_;
  while (running_) {
    int timeout_ms = -1;
    if (next_due != INT64_MAX) timeout_ms = static_cast<int>(std::max<int64_t>(0, (next_due - now + 999) / 1000));
    sleeping_.store(true, std::memory_order_seq_cst);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (has_pending_ && has_pending_()) timeout_ms = 0;
    int n;
    if (wake_by_ != INT64_MAX && timeout_ms != 0) {
      // A microsecond bound (a paced background job's next slice): the
      // millisecond timeout of epoll_wait would round it up.
      int64_t until = std::min(wake_by_, next_due);
      wake_by_ = INT64_MAX;
      int64_t us = std::max<int64_t>(0, until - now);
      timespec ts{static_cast<time_t>(us / 1000000), static_cast<long>(us % 1000000) * 1000};
      n = epoll_pwait2(epfd_, events, kMaxEvents, &ts, nullptr);
    } else {
      wake_by_ = INT64_MAX;
      n = epoll_wait(epfd_, events, kMaxEvents, timeout_ms);
    }
    sleeping_.store(false, std::memory_order_relaxed);
    if (n < 0 && errno != EINTR) break;
    if (on_wake_) on_wake_();
    if (n > 0) events_ += static_cast<uint64_t>(n);
    for (int i = 0; i < n; ++i) static_cast<EventHandler*>(events[i].data.ptr)->OnEvent(events[i].events);
    if (after_events_) after_events_();
    now = MonotonicUs();
    if (now >= next_due) {
      next_due = INT64_MAX;
      for (Timer& t : timers_) {
        if (t.next_us <= now) {
          t.next_us = now + t.interval_us;
          t.fn();
        }
        next_due = std::min(next_due, t.next_us);
      }
    }
  }
}

}  // namespace larder::net
