#include "keyspace/lazy_free.h"

#include <pthread.h>

#include "keyspace/memory_budget.h"
#include "keyspace/objects.h"

namespace larder {

namespace {
std::atomic<LazyFreer*> g_current{nullptr};
}

size_t FreeEffort(const Entry* e) {
  switch (e->type) {
    case ObjType::kString: return 1;
    case ObjType::kList: return ObjectOf<ListValue>(e)->node_count();
    case ObjType::kSet: {
      const auto* s = ObjectOf<SetValue>(e);
      return s->is_table() ? s->size() : 1;
    }
    case ObjType::kHash: {
      const auto* h = ObjectOf<HashValue>(e);
      return h->is_table() ? h->size() : 1;
    }
    case ObjType::kZSet: {
      const auto* z = ObjectOf<ZSetValue>(e);
      return z->is_table() ? z->size() : 1;
    }
    case ObjType::kStream: {
      // Its nodes, and for each group the group and its pending entries.
      const auto* s = ObjectOf<StreamValue>(e);
      size_t n = s->blocks();
      for (const auto& [name, g] : s->groups()) n += 1 + g->pel.size();
      return n;
    }
  }
  return 1;
}

LazyFreer::LazyFreer() : thread_([this] { Main(); }) {}

LazyFreer::~LazyFreer() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_one();
  thread_.join();
}

LazyFreer* LazyFreer::Current() { return g_current.load(std::memory_order_acquire); }
void LazyFreer::SetCurrent(LazyFreer* f) { g_current.store(f, std::memory_order_release); }

void LazyFreer::Free(Entry* e, bool lazy) {
  size_t effort = lazy ? FreeEffort(e) : 0;
  if (effort <= kThreshold) {
    FreeEntry(e);
    return;
  }
  Push(Job{e, nullptr, 1});
}

void LazyFreer::FreeTable(Table&& t) {
  if (t.size() == 0) return;
  size_t n = t.size();
  Push(Job{nullptr, std::make_unique<Table>(std::move(t)), n});
}

void LazyFreer::Push(Job job) {
  pending_.fetch_add(job.objects, std::memory_order_relaxed);
  {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.push_back(std::move(job));
  }
  cv_.notify_one();
}

void LazyFreer::Main() {
  pthread_setname_np(pthread_self(), "lazyfree");
  MemoryBudget::PublishHelperThread();  // the base: what it frees from now on counts
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stopping, and nothing left
    Job job = std::move(queue_.front());
    queue_.pop_front();
    lock.unlock();
    if (job.entry) FreeEntry(job.entry);
    job.table.reset();  // frees its entries
    MemoryBudget::PublishHelperThread();
    freed_.fetch_add(job.objects, std::memory_order_relaxed);
    pending_.fetch_sub(job.objects, std::memory_order_relaxed);
    lock.lock();
  }
}

void FreeDeleted(Entry* e, const LazyFreePolicy* policy, DeleteCause cause) {
  LazyFreer* f = LazyFreer::Current();
  if (!f || !policy || !policy->Lazy(cause)) {
    FreeEntry(e);
    return;
  }
  f->Free(e, true);
}

}  // namespace larder
