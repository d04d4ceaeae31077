#include "shard/shard_set.h"

#include <algorithm>
#include <atomic>

namespace larder {

ShardSet::ShardSet(int num_shards, int num_dbs) : num_dbs_(num_dbs) {
  for (int i = 0; i < num_shards; ++i) shards_.push_back(std::make_unique<Shard>(i, this, num_dbs));
  outbox_.resize(static_cast<size_t>(num_shards));
  for (auto& row : outbox_) row.resize(static_cast<size_t>(num_shards));
  outbox_dirty_.assign(static_cast<size_t>(num_shards), 0);
}

ShardSet::~ShardSet() { Stop(); }

void ShardSet::Send(int target, Task task) {
  Shard* self = CurrentShard();
  if (!self || self->set() != this) {
    shard(target).Post(std::move(task));
    return;
  }
  outbox_[static_cast<size_t>(self->id())][static_cast<size_t>(target)].push_back(std::move(task));
  outbox_dirty_[static_cast<size_t>(self->id())] = 1;
}

void ShardSet::FlushOutbox() {
  Shard* self = CurrentShard();
  if (!self) return;
  auto from = static_cast<size_t>(self->id());
  // Sending may run nothing inline, but flushing our own row can add to it
  // only through later tasks; loop until clean.
  while (outbox_dirty_[from]) {
    outbox_dirty_[from] = 0;
    for (size_t to = 0; to < outbox_[from].size(); ++to) {
      if (!outbox_[from][to].empty()) shards_[to]->PostBatch(&outbox_[from][to]);
    }
  }
}

void ShardSet::FanOut(const std::vector<int>& ids, std::function<void(Shard&)> fn, Task done) {
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
  FlushOutbox();
  std::lock_guard lock(exclusive_mu_);
  for (int id : ids) {
    shard(id).Post([this, state, origin_id] {
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
  // Messages this thread queued earlier must not be overtaken.
  FlushOutbox();
  std::lock_guard lock(exclusive_mu_);
  for (int id : ids) {
    shard(id).Post([this, state, origin_id] {
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
}

}  // namespace larder
