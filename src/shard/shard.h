// A shard: one thread, one event loop, one partition of the keyspace.
//
//   thread N ──► EventLoop (epoll) ──► its listener socket (SO_REUSEPORT)
//                  │                   its client connections
//                  ├─ mailboxes ◄──── one per other shard (ShardSet::Send, SendMessage)
//                  ├─ task queue ◄─── any other thread (Post)
//                  └─ timers: active expiry, client timeouts, rehash
//
// Everything a shard owns (its Db objects, its connections) is touched only
// by its own thread. Other threads reach it only through its mailboxes
// (from other shards, in send order) and Post() (from any thread), both of
// which wake the loop if it sleeps.
#pragma once

#include <absl/functional/any_invocable.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "keyspace/db.h"
#include "net/event_loop.h"
#include "shard/mailbox.h"

namespace larder {

using Task = absl::AnyInvocable<void()>;

class ShardSet;

class Shard {
 public:
  Shard(int id, ShardSet* set, int num_dbs);
  ~Shard();

  int id() const { return id_; }
  ShardSet* set() const { return set_; }
  net::EventLoop& loop() { return loop_; }
  Db& db(int index) { return dbs_[static_cast<size_t>(index)]; }
  std::vector<Db>& dbs() { return dbs_; }
  KeyspaceStats& stats() { return stats_; }
  // The publisher of its databases' own notifications (installed by the
  // engine before the shard serves).
  KeyspaceEvents& events() { return events_; }
  LazyFreePolicy& lazy_free() { return lazy_free_; }
  Evictor& evictor() { return evictor_; }
  std::mt19937_64& rng() { return rng_; }

  // Thread-safe. Runs `task` on this shard's thread, in posting order.
  void Post(Task task) { PostAfter(std::move(task), -1, 0); }
  // As Post, but the task runs only after the first `seq` messages of
  // shard `from`'s mailbox to this shard (what `from` had sent before).
  void PostAfter(Task task, int from, uint64_t seq);
  // From this shard's own thread only: runs `task` on it after the loop has
  // next polled its connections. A long job (a snapshot's scan) continues
  // through this between slices so that each slice is followed by I/O; a
  // task that Post()s itself instead runs again within the same drain (up
  // to DrainQueue's 64 rounds) before any client is served.
  void PostAfterIo(Task task) { after_io_.push_back(std::move(task)); }
  // From this shard's own thread only: runs `task` on it once MonotonicUs()
  // reaches `at_us`, after a poll; until then the loop serves I/O or sleeps
  // (it does not spin). A paced background job leaves the CPU idle between
  // its slices through this.
  void PostAt(int64_t at_us, Task task) { timed_.push_back(Timed{at_us, std::move(task)}); }

  // Starts the thread; `init` runs on it before the loop starts.
  void Start(absl::AnyInvocable<void()> init);
  void Join();

  // Runs on this shard only: executes queued messages and tasks.
  void DrainQueue();
  bool HasPendingWork();

  // Runs on this shard after each loop iteration's events and queued tasks.
  void SetAfterEventsHook(Task hook) { after_events_hook_ = std::move(hook); }

  // Active expiry settings (DEBUG SET-ACTIVE-EXPIRE; hz).
  static std::atomic<bool> active_expire_enabled;

 private:
  void ExpireCron();
  struct Queued {
    Task task;
    int from;      // -1: no ordering with a mailbox
    uint64_t seq;  // run after this many messages of mailbox `from`
  };

  int id_;
  ShardSet* set_;
  net::EventLoop loop_;
  std::vector<Db> dbs_;
  KeyspaceStats stats_;
  KeyspaceEvents events_;
  LazyFreePolicy lazy_free_;
  Evictor evictor_;
  std::mt19937_64 rng_;
  std::thread thread_;

  std::mutex queue_mu_;
  std::vector<Queued> queue_;     // guarded by queue_mu_
  std::atomic<bool> queued_{false};
  std::vector<Queued> draining_;  // owned by the shard thread
  std::vector<Task> after_io_;    // owned by the shard thread (PostAfterIo)
  std::vector<Task> running_after_io_;
  struct Timed {
    int64_t at_us;
    Task task;
  };
  std::vector<Timed> timed_;      // owned by the shard thread (PostAt)
  void RunTimed();
  size_t expire_db_ = 0;          // db the expiry cron continues with
  Task after_events_hook_;
};

// The shard that runs the calling thread's loop, or nullptr on other threads.
Shard* CurrentShard();
void SetCurrentShard(Shard* s);

}  // namespace larder
