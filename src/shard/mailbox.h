// The message queue from one shard thread to another: single producer,
// single consumer, unbounded, allocation-free once warm.
//
// A message is a function pointer and its argument (16 bytes): the hot path
// (a pipeline's commands going to the shard that owns their keys, and their
// replies coming back) sends an object it owns and reuses, so nothing is
// allocated per message. Messages are kept in linked chunks of 128; the
// consumer hands each drained chunk back to the producer (one spare), so a
// steady flow allocates nothing.
//
// A message pushed is visible to the consumer at once; whether the consumer
// must be woken (it sleeps in epoll_wait) is the sender's business
// (ShardSet::FlushOutbox). Messages arrive in the order they were pushed.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace larder {

struct Message {
  void (*fn)(void* arg);
  void* arg;
};

class Mailbox {
 public:
  Mailbox() {
    head_chunk_ = tail_chunk_ = new Chunk();
  }
  ~Mailbox() {
    for (Chunk* c = head_chunk_; c;) {
      Chunk* next = c->next.load(std::memory_order_relaxed);
      delete c;
      c = next;
    }
    delete spare_.load(std::memory_order_relaxed);
  }
  Mailbox(const Mailbox&) = delete;
  Mailbox& operator=(const Mailbox&) = delete;

  // Producer thread only.
  void Push(Message m) {
    if (tail_idx_ == kChunk) {
      Chunk* c = spare_.exchange(nullptr, std::memory_order_acquire);
      if (!c) c = new Chunk();
      c->next.store(nullptr, std::memory_order_relaxed);
      tail_chunk_->next.store(c, std::memory_order_release);
      tail_chunk_ = c;
      tail_idx_ = 0;
    }
    tail_chunk_->slots[tail_idx_++] = m;
    pushed_.store(pushed_.load(std::memory_order_relaxed) + 1, std::memory_order_release);
  }
  // How many messages were ever pushed (producer thread, or with a
  // happens-before from it).
  uint64_t pushed() const { return pushed_.load(std::memory_order_acquire); }

  // Consumer thread only. Runs messages in order until `upto` have been
  // consumed in all (default: all that are visible); returns how many ran.
  size_t Drain(uint64_t upto = UINT64_MAX) {
    uint64_t end = pushed_.load(std::memory_order_acquire);
    if (upto < end) end = upto;
    size_t ran = 0;
    while (popped_ < end) {
      if (head_idx_ == kChunk) {
        Chunk* next = head_chunk_->next.load(std::memory_order_acquire);
        Chunk* old = head_chunk_;
        head_chunk_ = next;
        head_idx_ = 0;
        delete spare_.exchange(old, std::memory_order_release);
      }
      Message m = head_chunk_->slots[head_idx_++];
      ++popped_;
      m.fn(m.arg);
      ++ran;
    }
    return ran;
  }
  bool Empty() const { return popped_ == pushed_.load(std::memory_order_acquire); }
  // After both threads stopped: hands every message left to `drop` instead
  // of running it (frees what the messages own).
  void Discard(void (*drop)(Message)) {
    uint64_t end = pushed_.load(std::memory_order_acquire);
    while (popped_ < end) {
      if (head_idx_ == kChunk) {
        Chunk* old = head_chunk_;
        head_chunk_ = head_chunk_->next.load(std::memory_order_acquire);
        head_idx_ = 0;
        delete old;
      }
      drop(head_chunk_->slots[head_idx_++]);
      ++popped_;
    }
  }

 private:
  static constexpr uint32_t kChunk = 128;
  struct Chunk {
    Message slots[kChunk];
    std::atomic<Chunk*> next{nullptr};
  };
  // Producer side.
  alignas(64) Chunk* tail_chunk_;
  uint32_t tail_idx_ = 0;
  std::atomic<uint64_t> pushed_{0};
  // Consumer side.
  alignas(64) Chunk* head_chunk_;
  uint32_t head_idx_ = 0;
  uint64_t popped_ = 0;
  // A drained chunk handed back to the producer.
  alignas(64) std::atomic<Chunk*> spare_{nullptr};
};

}  // namespace larder
