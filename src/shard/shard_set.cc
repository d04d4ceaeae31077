#include "shard/shard_set.h"

#include <algorithm>
#include <atomic>
#include <future>

namespace larder {

namespace {
thread_local const std::vector<char>* tl_held = nullptr;

void RunBoxedTask(void* p) {
  auto* task = static_cast<Task*>(p);
  (*task)();
  delete task;
}
}  // namespace

ShardSet::ShardSet(int num_shards, int num_dbs) : num_dbs_(num_dbs) {
  auto n = static_cast<size_t>(num_shards);
  for (int i = 0; i < num_shards; ++i) shards_.push_back(std::make_unique<Shard>(i, this, num_dbs));
  for (size_t i = 0; i < n * n; ++i) mailboxes_.push_back(std::make_unique<larder::Mailbox>());
  senders_.resize(n);
  for (auto& s : senders_) s.dirty.assign(n, 0);
}

ShardSet::~ShardSet() { Stop(); }

void ShardSet::Send(int target, Task task) {
  Shard* self = CurrentShard();
  if (!self || self->set() != this) {
    shard(target).Post(std::move(task));
    return;
  }
  SendMessage(target, &RunBoxedTask, new Task(std::move(task)));
}

void ShardSet::FlushOutbox() {
  Shard* self = CurrentShard();
  if (!self) return;
  Sender& me = senders_[static_cast<size_t>(self->id())];
  if (!me.any) return;
  me.any = false;
  // Pairs with the fence in the receiver's loop before it sleeps: either it
  // sees our messages, or we see that it sleeps and wake it.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  for (size_t to = 0; to < me.dirty.size(); ++to) {
    if (!me.dirty[to]) continue;
    me.dirty[to] = 0;
    if (static_cast<int>(to) != self->id()) shards_[to]->loop().Wake();
  }
}

size_t ShardSet::DrainMailboxes(int self) {
  size_t n = shards_.size(), ran = 0;
  for (size_t from = 0; from < n; ++from) ran += Mailbox(from, static_cast<size_t>(self)).Drain();
  return ran;
}

bool ShardSet::MailboxesEmpty(int self) {
  size_t n = shards_.size();
  for (size_t from = 0; from < n; ++from)
    if (!Mailbox(from, static_cast<size_t>(self)).Empty()) return false;
  return true;
}

void ShardSet::PostOrdered(int target, Task task) {
  Shard* self = CurrentShard();
  if (!self || self->set() != this) {
    shard(target).Post(std::move(task));
    return;
  }
  uint64_t seq = Mailbox(static_cast<size_t>(self->id()), static_cast<size_t>(target)).pushed();
  shard(target).PostAfter(std::move(task), self->id(), seq);
}

void ShardSet::SetHeld(const std::vector<char>* held) { tl_held = held; }
const std::vector<char>* ShardSet::Held() { return tl_held; }

bool ShardSet::HeldCovers(const std::vector<int>& ids) {
  if (!tl_held) return false;
  for (int id : ids)
    if (!(*tl_held)[static_cast<size_t>(id)]) return false;
  return true;
}

void ShardSet::FanOut(const std::vector<int>& ids, std::function<void(Shard&)> fn, Task done) {
  if (HeldCovers(ids)) [[unlikely]] {
    for (int id : ids) fn(shard(id));
    done();
    return;
  }
  Shard* origin = CurrentShard();
  struct State {
    std::function<void(Shard&)> fn;
    Task done;
    size_t remaining;
  };
  auto state = std::make_shared<State>(State{std::move(fn), std::move(done), ids.size()});
  if (ids.empty()) {
    state->done();
    return;
  }
  int origin_id = origin ? origin->id() : 0;
  // Enqueued under the same lock as exclusive operations, so every shard sees
  // all multi-shard work in one global order: a multi-key read never sees
  // half of a multi-key write.
  std::lock_guard lock(exclusive_mu_);
  for (int id : ids) {
    PostOrdered(id, [this, state, origin_id] {
      state->fn(*CurrentShard());
      Send(origin_id, [state] {
        if (--state->remaining == 0) state->done();
      });
    });
  }
}

void ShardSet::FanOutAll(std::function<void(Shard&)> fn, Task done) {
  std::vector<int> ids(shards_.size());
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int>(i);
  FanOut(ids, std::move(fn), std::move(done));
}

void ShardSet::RunExclusive(std::vector<int> ids, Task fn, Task done) {
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  if (HeldCovers(ids)) [[unlikely]] {
    fn();
    done();
    return;
  }
  Shard* origin = CurrentShard();
  int origin_id = origin ? origin->id() : 0;
  struct State {
    Task fn;
    Task done;
    std::atomic<size_t> arrived{0};
    std::atomic<bool> finished{false};
    size_t parties;
  };
  auto state = std::make_shared<State>();
  state->fn = std::move(fn);
  state->done = std::move(done);
  state->parties = ids.size();
  std::lock_guard lock(exclusive_mu_);
  for (int id : ids) {
    PostOrdered(id, [this, state, origin_id] {
      if (state->arrived.fetch_add(1) + 1 == state->parties) {
        state->fn();
        state->finished.store(true);
        state->finished.notify_all();
        Send(origin_id, [state] { state->done(); });
      } else {
        state->finished.wait(false);
      }
    });
  }
}

void ShardSet::RunParkedAndWait(const std::function<void()>& fn) {
  std::vector<int> all(static_cast<size_t>(size()));
  for (int i = 0; i < size(); ++i) all[static_cast<size_t>(i)] = i;
  std::promise<void> ran;
  RunExclusive(
      all,
      [&] {
        fn();
        ran.set_value();
      },
      [] {});
  ran.get_future().wait();
}

void ShardSet::Start(const std::function<void(Shard&)>& init) {
  for (auto& s : shards_) {
    Shard* sp = s.get();
    sp->Start([sp, init] { init(*sp); });
  }
}

void ShardSet::Stop() {
  for (auto& s : shards_) {
    Shard* sp = s.get();
    sp->Post([sp] { sp->loop().Stop(); });
  }
  for (auto& s : shards_) s->Join();
  // What shards sent to one that had already stopped is never run: free
  // the tasks it owns (other messages point at objects their senders own).
  for (auto& m : mailboxes_)
    m->Discard([](Message msg) {
      if (msg.fn == &RunBoxedTask) delete static_cast<Task*>(msg.arg);
    });
}

}  // namespace larder
