// All shards of the server, the routing function (key → shard) and the ways
// work crosses threads:
//
//  * SendMessage(): a {function, argument} message to one shard through the
//    sender's mailbox to it. Allocates nothing: the hot path (a pipeline's
//    commands for another shard and their replies) sends objects it reuses.
//  * Send(): a task (any callable) the same way; the callable is boxed.
//    From a thread that is not a shard it is posted to the shard's queue.
//    Messages and tasks from one shard to another arrive in sending order;
//    a sleeping receiver is woken once per sender loop iteration.
//  * FanOut() / RunExclusive(): multi-shard work (MGET parts, MSET across
//    shards, FLUSHALL...). They are enqueued under one global lock, so all
//    shards see all multi-shard work in the same order and can never wait
//    for each other in a cycle; each runs after whatever its sender sent to
//    the same shards before (a message sent after it may run before it:
//    senders that need that order wait for its reply, as a pipeline does). RunExclusive parks every involved shard at the
//    same point; the last to arrive runs the operation with all of them
//    stopped, then releases them.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "common/slot.h"
#include "shard/mailbox.h"
#include "shard/shard.h"

namespace larder {

class ShardSet {
 public:
  ShardSet(int num_shards, int num_dbs);
  ~ShardSet();

  int size() const { return static_cast<int>(shards_.size()); }
  Shard& shard(int i) { return *shards_[static_cast<size_t>(i)]; }
  int num_dbs() const { return num_dbs_; }
  // Shard i owns the slots [i * 16384 / N, (i + 1) * 16384 / N): contiguous
  // ranges, as cluster nodes own them, and a multiply instead of a division.
  int ShardOf(std::string_view key) const {
    return shards_.size() == 1 ? 0 : static_cast<int>((KeySlot(key) * shards_.size()) / kNumSlots);
  }

  // From a shard thread: `fn(arg)` runs on shard `target`, after everything
  // this thread sent there before. Not from other threads.
  void SendMessage(int target, void (*fn)(void*), void* arg) {
    Shard* self = CurrentShard();
    size_t from = static_cast<size_t>(self->id());
    Mailbox(from, static_cast<size_t>(target)).Push(Message{fn, arg});
    Sender& me = senders_[from];
    me.dirty[static_cast<size_t>(target)] = 1;
    me.any = true;
  }
  // Queues `task` for shard `target`; from any thread.
  void Send(int target, Task task);
  // Wakes the shards this thread sent to since its last call, if they
  // sleep. Runs on a shard thread at the end of each loop iteration.
  void FlushOutbox();
  // Runs the messages other shards sent to `self` (on its thread).
  size_t DrainMailboxes(int self);
  bool MailboxesEmpty(int self);
  // Runs messages from `from` to `self` until `seq` of them ran in all.
  void DrainMailboxUpTo(int from, int self, uint64_t seq) {
    Mailbox(static_cast<size_t>(from), static_cast<size_t>(self)).Drain(seq);
  }

  // Runs `fn(shard)` on each shard in `ids`, then `done` on the calling shard.
  void FanOut(const std::vector<int>& ids, std::function<void(Shard&)> fn, Task done);
  void FanOutAll(std::function<void(Shard&)> fn, Task done);

  // Runs `fn` while every shard in `ids` is parked, then `done` on the calling
  // shard. `ids` need not be sorted or unique.
  void RunExclusive(std::vector<int> ids, Task fn, Task done);
  // From a thread that is not a shard's (loading, DEBUG RELOAD's helper):
  // runs `fn` with every shard parked and returns once it has run.
  void RunParkedAndWait(const std::function<void()>& fn);

  // An atomic unit (engine/atomic.h) that holds shards on this thread sets
  // them here (`held[i]` for shard i; null when none): fan-outs and exclusive
  // operations over held shards then run inline, at once.
  static void SetHeld(const std::vector<char>* held);
  static const std::vector<char>* Held();
  // Whether this thread holds every shard in `ids` (they are parked for it).
  static bool HeldCovers(const std::vector<int>& ids);

  // Starts all shard threads; `init(shard)` runs first on each one's thread.
  void Start(const std::function<void(Shard&)>& init);
  // Stops every loop and joins the threads.
  void Stop();

 private:
  larder::Mailbox& Mailbox(size_t from, size_t to) { return *mailboxes_[from * shards_.size() + to]; }
  // Posts `task` to `target` ordered after what the calling shard sent there.
  void PostOrdered(int target, Task task);

  std::vector<std::unique_ptr<Shard>> shards_;
  int num_dbs_;
  // mailboxes_[from * N + to]: written by thread `from`, read by thread `to`.
  std::vector<std::unique_ptr<larder::Mailbox>> mailboxes_;
  // What a shard sent since its last FlushOutbox; touched only by its thread.
  struct alignas(64) Sender {
    std::vector<char> dirty;  // by target
    bool any = false;
  };
  std::vector<Sender> senders_;
  std::mutex exclusive_mu_;
};

}  // namespace larder
