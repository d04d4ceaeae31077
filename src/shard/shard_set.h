// All shards of the server, the routing function (key → shard) and the two
// ways work crosses threads:
//
//  * Send(): a message to one shard, batched per destination until the
//    sender's loop iteration ends (one queue lock and one wake-up per batch).
//    Messages from one shard to another arrive in the order they were sent.
//  * RunExclusive(): an atomic operation over several shards (MSET across
//    shards, RENAME, FLUSHALL, SWAPDB). Every involved shard parks at the same
//    point of its queue; the last to arrive runs the operation with all of
//    them stopped, then releases them. Exclusive operations are enqueued under
//    one global lock, so all shards see them in the same order and can never
//    wait for each other in a cycle.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "common/slot.h"
#include "shard/shard.h"

namespace larder {

class ShardSet {
 public:
  ShardSet(int num_shards, int num_dbs);
  ~ShardSet();

  int size() const { return static_cast<int>(shards_.size()); }
  Shard& shard(int i) { return *shards_[static_cast<size_t>(i)]; }
  int num_dbs() const { return num_dbs_; }
  int ShardOf(std::string_view key) const {
    return shards_.size() == 1 ? 0 : static_cast<int>(KeySlot(key) % shards_.size());
  }

  // Queues `task` for shard `target`. From a shard thread the message leaves
  // when that thread's loop iteration ends (FlushOutbox); from any other
  // thread it is posted at once.
  void Send(int target, Task task);
  // Sends the calling shard's queued messages. Runs on a shard thread.
  void FlushOutbox();

  // Runs `fn(shard)` on each shard in `ids`, then `done` on the calling shard.
  // Ordered with RunExclusive() and other fan-outs in one global order.
  void FanOut(const std::vector<int>& ids, std::function<void(Shard&)> fn, Task done);
  // As FanOut over every shard.
  void FanOutAll(std::function<void(Shard&)> fn, Task done);

  // Runs `fn` while every shard in `ids` is parked, then `done` on the calling
  // shard. `ids` need not be sorted or unique.
  void RunExclusive(std::vector<int> ids, Task fn, Task done);

  // Starts all shard threads; `init(shard)` runs first on each one's thread.
  void Start(const std::function<void(Shard&)>& init);
  // Stops every loop and joins the threads.
  void Stop();

 private:
  std::vector<std::unique_ptr<Shard>> shards_;
  int num_dbs_;
  // outbox_[from][to]: touched only by thread `from`.
  std::vector<std::vector<std::vector<Task>>> outbox_;
  std::vector<char> outbox_dirty_;
  std::mutex exclusive_mu_;
};

}  // namespace larder
