// Lazy freeing (Redis's lazyfree): big values are freed on a background
// thread, so that deleting a key of millions of elements (UNLINK, FLUSHALL
// ASYNC, and, as the lazyfree-lazy-* settings say, DEL, FLUSHALL, eviction,
// expiry and the deletes a command does itself) does not stall its shard.
//
// A value goes to the thread when the deletion may be lazy and freeing it is
// more work than kThreshold (Redis's LAZYFREE_THRESHOLD: elements, list
// nodes, stream nodes and consumer-group entries); anything smaller is freed
// at once, where the thread's queue would cost more than the free. INFO
// reports lazyfree_pending_objects and lazyfreed_objects from here.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>

#include "keyspace/entry.h"
#include "keyspace/table.h"

namespace larder {

// Why a key is deleted: which lazyfree-lazy-* setting applies.
enum class DeleteCause : uint8_t {
  kServer,  // lazyfree-lazy-server-del: an overwrite, a command's own delete
  kUser,    // lazyfree-lazy-user-del: DEL
  kUnlink,  // always lazy: UNLINK
  kExpire,  // lazyfree-lazy-expire
  kEvict,   // lazyfree-lazy-eviction
};

// The settings, as the configuration holds them (0 or 1); null: never lazy.
struct LazyFreePolicy {
  const std::atomic<int64_t>* server_del = nullptr;
  const std::atomic<int64_t>* user_del = nullptr;
  const std::atomic<int64_t>* expire = nullptr;
  const std::atomic<int64_t>* eviction = nullptr;
  const std::atomic<int64_t>* user_flush = nullptr;

  bool Lazy(DeleteCause cause) const {
    const std::atomic<int64_t>* f = cause == DeleteCause::kServer ? server_del
                                    : cause == DeleteCause::kUser ? user_del
                                    : cause == DeleteCause::kExpire ? expire
                                    : cause == DeleteCause::kEvict ? eviction
                                                                   : nullptr;
    return cause == DeleteCause::kUnlink || (f && f->load(std::memory_order_relaxed) != 0);
  }
  bool LazyFlush() const { return user_flush && user_flush->load(std::memory_order_relaxed) != 0; }
};

// What freeing the entry's value costs, in Redis's units.
size_t FreeEffort(const Entry* e);

class LazyFreer {
 public:
  static constexpr size_t kThreshold = 64;

  LazyFreer();
  ~LazyFreer();  // frees what is queued, then stops the thread
  LazyFreer(const LazyFreer&) = delete;
  LazyFreer& operator=(const LazyFreer&) = delete;

  // Frees `e` (already out of its table): on the thread when `lazy` and it
  // is worth it, else here.
  void Free(Entry* e, bool lazy);
  // Frees every entry of `t` (moved out of its database) on the thread.
  void FreeTable(Table&& t);
  uint64_t pending() const { return pending_.load(std::memory_order_relaxed); }
  uint64_t freed() const { return freed_.load(std::memory_order_relaxed); }
  void ResetStats() { freed_.store(0, std::memory_order_relaxed); }

  // The server's freer (null before one exists: everything is freed at once).
  static LazyFreer* Current();
  static void SetCurrent(LazyFreer* f);

 private:
  struct Job {
    Entry* entry = nullptr;
    std::unique_ptr<Table> table;
    size_t objects = 0;
  };
  void Push(Job job);
  void Main();

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> queue_;
  bool stop_ = false;
  std::atomic<uint64_t> pending_{0};
  std::atomic<uint64_t> freed_{0};
  std::thread thread_;
};

// Frees a detached entry as `policy` says for `cause` (at once when there is
// no policy or no freer).
void FreeDeleted(Entry* e, const LazyFreePolicy* policy, DeleteCause cause);

}  // namespace larder
