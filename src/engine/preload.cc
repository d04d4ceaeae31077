#include "engine/preload.h"

#include <algorithm>
#include <memory>
#include <optional>
#include <tuple>
#include <utility>

#include "cache/shard_cache.h"
#include "engine/engine.h"
#include "shard/shard.h"

namespace larder {

namespace {

// Counts down the parts still out and keeps the first error; `done` runs
// once, when the last part arrives.
struct Join {
  int left = 1;  // the starter's own part, arrived once everything is started
  std::optional<std::string> error;
  absl::AnyInvocable<void(const std::string*)> done;

  void Arrive(const std::string* e) {
    if (e && !error) error = *e;
    if (--left == 0) {
      auto d = std::move(done);
      d(error ? &*error : nullptr);
    }
  }
};

// On the keys' shard: checks each key (keys sorted by db), waits for what
// loads, then `done` (here; at once when nothing loads).
void CheckOnShard(cache::ShardCache& sc, std::span<const PreloadKey> keys,
                  absl::AnyInvocable<void(const std::string*)> done) {
  auto join = std::make_shared<Join>();
  join->done = std::move(done);
  std::vector<std::string_view> loading;
  for (size_t i = 0; i < keys.size();) {
    int db = keys[i].db;
    loading.clear();
    for (; i < keys.size() && keys[i].db == db; ++i)
      if (sc.CheckRead(db, keys[i].key) == cache::ShardCache::ReadState::kLoading) loading.push_back(keys[i].key);
    if (loading.empty()) continue;
    ++join->left;
    sc.WaitFor(db, loading, [join](const std::string* e) { join->Arrive(e); });
  }
  join->Arrive(nullptr);
}

}  // namespace

bool PreloadKeys(Engine* engine, std::vector<PreloadKey> keys, PreloadDone then) {
  cache::ShardCache* here = engine->cache().active() ? cache::CurrentShardCache() : nullptr;
  if (here) {
    // Every shard has the same rules: the calling shard's copy filters.
    std::erase_if(keys, [here](const PreloadKey& k) { return !here->Covers(k.key); });
  }
  if (!here || keys.empty()) {
    then(nullptr);
    return true;
  }
  std::sort(keys.begin(), keys.end(), [](const PreloadKey& a, const PreloadKey& b) {
    return std::tie(a.shard, a.db, a.key) < std::tie(b.shard, b.db, b.key);
  });
  keys.erase(std::unique(keys.begin(), keys.end(),
                         [](const PreloadKey& a, const PreloadKey& b) {
                           return a.shard == b.shard && a.db == b.db && a.key == b.key;
                         }),
             keys.end());

  ShardSet& set = engine->shards();
  int me = CurrentShard()->id();
  // `sync` stays true while this call runs: a `then` reached before it
  // returns ran at once.
  auto sync = std::make_shared<bool>(true);
  bool ran_now = false;
  auto join = std::make_shared<Join>();
  join->done = [then = std::move(then), sync, &ran_now](const std::string* e) {
    if (*sync) ran_now = true;  // (only read while the call runs)
    then(e);
  };
  auto all = std::make_shared<std::vector<PreloadKey>>(std::move(keys));
  size_t n = all->size();
  for (size_t i = 0; i < n;) {
    int shard = (*all)[i].shard;
    size_t j = i;
    while (j < n && (*all)[j].shard == shard) ++j;
    ++join->left;
    if (shard == me) {
      CheckOnShard(*here, std::span<const PreloadKey>(all->data() + i, j - i),
                   [join](const std::string* e) { join->Arrive(e); });
    } else {
      set.Send(shard, [engine, all, i, j, shard, me, join] {
        CheckOnShard(engine->cache().shard(shard), std::span<const PreloadKey>(all->data() + i, j - i),
                     [engine, me, join](const std::string* e) {
                       std::optional<std::string> error;
                       if (e) error = *e;
                       engine->shards().Send(me, [join, error = std::move(error)] {
                         join->Arrive(error ? &*error : nullptr);
                       });
                     });
      });
    }
    i = j;
  }
  join->Arrive(nullptr);
  *sync = false;
  return ran_now;
}

bool PreloadKeys(Engine* engine, int db, std::span<const std::string_view> keys, PreloadDone then) {
  std::vector<PreloadKey> list;
  if (engine->cache().active()) {
    ShardSet& set = engine->shards();
    list.reserve(keys.size());
    for (std::string_view k : keys) list.push_back(PreloadKey{db, std::string(k), set.ShardOf(k)});
  }
  return PreloadKeys(engine, std::move(list), std::move(then));
}

}  // namespace larder
