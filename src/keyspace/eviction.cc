#include "keyspace/eviction.h"

#include <algorithm>
#include <limits>

#include "common/clock.h"
#include "keyspace/db.h"
#include "keyspace/table.h"

namespace larder {

const char* const kPolicyNames[10] = {"noeviction",     "allkeys-lru",    "allkeys-lfu",    "allkeys-random",
                                      "volatile-lru",   "volatile-lfu",   "volatile-random", "volatile-ttl",
                                      "allkeys-s3fifo", "volatile-s3fifo"};

namespace {
std::atomic<uint8_t> g_policy{0};
std::atomic<int> g_lfu_log_factor{10};
std::atomic<int> g_lfu_decay_minutes{1};

constexpr size_t kPoolSize = 16;
constexpr uint8_t kFreqMask = 3;
constexpr uint8_t kInMain = 4;
constexpr int kDbTagShift = 56;
constexpr uint64_t kHashMask = (uint64_t{1} << kDbTagShift) - 1;
constexpr int kBloomHashes = 4;
constexpr size_t kBloomBitsPerKey = 12;

thread_local std::mt19937_64 t_lfu_rng{0x1fu};

uint32_t IdleTicks(uint32_t now, uint32_t access) {
  uint32_t t = now - access;
  return t > 0x80000000u ? 0 : t;
}

uint64_t Mix(uint64_t x, uint64_t k) {
  x ^= k * 0x9e3779b97f4a7c15ULL;
  x ^= x >> 31;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 29;
  return x;
}
}  // namespace

Policy CurrentPolicy() { return static_cast<Policy>(g_policy.load(std::memory_order_relaxed)); }

void SetPolicy(Policy p) {
  g_policy.store(static_cast<uint8_t>(p), std::memory_order_relaxed);
  AccessMode m = IsLfu(p) ? AccessMode::kLfu : IsS3Fifo(p) ? AccessMode::kFifo : AccessMode::kLru;
  g_access_mode.store(static_cast<uint8_t>(m), std::memory_order_relaxed);
}

void SetLfuKnobs(int log_factor, int decay_minutes) {
  g_lfu_log_factor.store(log_factor, std::memory_order_relaxed);
  g_lfu_decay_minutes.store(decay_minutes, std::memory_order_relaxed);
}

uint32_t LfuMinutes() { return static_cast<uint32_t>((CommandTimeMs() / 1000 / 60) & 65535); }

uint8_t LfuDecayed(const Entry* e) {
  uint32_t now = LfuMinutes(), ldt = e->access & 65535;
  uint32_t elapsed = now >= ldt ? now - ldt : 65535 - ldt + now;
  int decay = g_lfu_decay_minutes.load(std::memory_order_relaxed);
  uint32_t periods = decay ? elapsed / static_cast<uint32_t>(decay) : 0;
  return periods >= e->lfu ? 0 : static_cast<uint8_t>(e->lfu - periods);
}

uint8_t LfuLogIncr(uint8_t counter) {
  if (counter == 255) return 255;
  double r = std::uniform_real_distribution<double>(0.0, 1.0)(t_lfu_rng);
  double base = counter > kLfuInitVal ? counter - kLfuInitVal : 0;
  double p = 1.0 / (base * g_lfu_log_factor.load(std::memory_order_relaxed) + 1);
  return r < p ? static_cast<uint8_t>(counter + 1) : counter;
}

void InitAccess(Entry* e) {
  switch (CurrentAccessMode()) {
    case AccessMode::kLru: e->lfu = kLfuInitVal; e->access = LruClock(); break;
    case AccessMode::kLfu: e->lfu = kLfuInitVal; e->access = LfuMinutes(); break;
    case AccessMode::kFifo: e->lfu = 0; e->access = LruClock(); break;
  }
}

void TouchAccess(Entry* e) {
  switch (CurrentAccessMode()) {
    case AccessMode::kLru: e->access = LruClock(); break;
    case AccessMode::kLfu:
      e->lfu = LfuLogIncr(LfuDecayed(e));
      e->access = LfuMinutes();
      break;
    case AccessMode::kFifo:
      e->access = LruClock();
      if ((e->lfu & kFreqMask) < kFreqMask) ++e->lfu;
      break;
  }
}

uint64_t TaggedHash(uint64_t key_hash, int db) {
  return (key_hash & kHashMask) | (static_cast<uint64_t>(db & 0xff) << kDbTagShift);
}

// ---- Redis's sampled policies ----

size_t Evictor::Evict(std::vector<Db>& dbs, size_t bytes, Policy policy, int samples, std::mt19937_64& rng,
                      uint64_t* evicted) {
  size_t freed = 0;
  while (freed < bytes) {
    bool ok = false;
    switch (policy) {
      case Policy::kNoEviction: return freed;
      case Policy::kAllKeysRandom:
      case Policy::kVolatileRandom:
        ok = EvictRandom(dbs, policy == Policy::kVolatileRandom, rng, &freed);
        break;
      case Policy::kAllKeysS3Fifo:
      case Policy::kVolatileS3Fifo:
        ok = EvictS3Fifo(dbs, policy == Policy::kVolatileS3Fifo, &freed);
        break;
      default: ok = EvictSampled(dbs, policy, samples, rng, &freed); break;
    }
    if (!ok) break;
    ++*evicted;
  }
  return freed;
}

namespace {
// Samples up to `n` keys of `db` (only keys with a TTL when `volatile_only`).
template <typename Fn>
void Sample(Db& db, int n, bool volatile_only, std::mt19937_64& rng, Fn&& fn) {
  if (db.size() == 0 || (volatile_only && db.expires() == 0)) return;
  int tries = volatile_only ? n * 20 : n * 2;
  for (int got = 0; got < n && tries-- > 0;) {
    Entry* e = db.table().Sample(rng);
    if (!e) return;
    if (volatile_only && !e->has_expire()) continue;
    fn(e);
    ++got;
  }
}

}  // namespace

size_t Evictor::Drop(Db& db, Entry* e) {
  size_t bytes = EntryMemoryUsage(e, 16);  // (estimated: a huge key is not walked)
  std::string key(e->key());
  if (hook_) hook_(hook_arg_, db, key);
  db.Delete(key, DeleteCause::kEvict);
  return bytes;
}

bool Evictor::EvictSampled(std::vector<Db>& dbs, Policy policy, int samples, std::mt19937_64& rng,
                           size_t* freed) {
  bool volatile_only = IsVolatile(policy);
  uint32_t now = LruClock();
  for (int round = 0; round < 16; ++round) {
    for (size_t d = 0; d < dbs.size(); ++d) {
      Sample(dbs[d], samples, volatile_only, rng, [&](Entry* e) {
        double score;
        if (IsLfu(policy)) score = 255.0 - LfuDecayed(e);
        else if (policy == Policy::kVolatileTtl) score = -static_cast<double>(e->expire_ms());
        else score = static_cast<double>(IdleTicks(now, e->access));
        std::string_view key = e->key();
        for (auto& c : pool_)
          if (c.db == static_cast<int>(d) && c.key == key) return;
        if (pool_.size() == kPoolSize) {
          if (score <= pool_.front().score) return;
          pool_.erase(pool_.begin());
        }
        auto it = std::lower_bound(pool_.begin(), pool_.end(), score,
                                   [](const Candidate& c, double s) { return c.score < s; });
        pool_.insert(it, Candidate{score, static_cast<int>(d), std::string(key)});
      });
    }
    // The best candidate that still exists (and still qualifies) goes.
    while (!pool_.empty()) {
      Candidate c = std::move(pool_.back());
      pool_.pop_back();
      Db& db = dbs[static_cast<size_t>(c.db)];
      Entry* e = db.table().Find(c.key);
      if (!e || (volatile_only && !e->has_expire())) continue;
      *freed += Drop(db, e);
      return true;
    }
  }
  return false;
}

bool Evictor::EvictRandom(std::vector<Db>& dbs, bool volatile_only, std::mt19937_64& rng, size_t* freed) {
  for (size_t tried = 0; tried < dbs.size(); ++tried) {
    Db& db = dbs[next_db_++ % dbs.size()];
    Entry* victim = nullptr;
    Sample(db, 1, volatile_only, rng, [&](Entry* e) { victim = e; });
    if (victim) {
      *freed += Drop(db, victim);
      return true;
    }
  }
  return false;
}

// ---- S3-FIFO ----

void Evictor::OnAdd(int db, Entry* e) {
  uint64_t item = TaggedHash(HashKey(e->key()), db);
  if (GhostHas(item)) {
    e->lfu = kInMain;
    main_.push_back(item);
  } else {
    e->lfu = 0;
    small_.push_back(item);
  }
}

void Evictor::Rebuild(std::vector<Db>& dbs) {
  Clear();
  for (size_t d = 0; d < dbs.size(); ++d) {
    dbs[d].table().ForEach([&](Entry* e) {
      e->lfu = kInMain;
      main_.push_back(TaggedHash(HashKey(e->key()), static_cast<int>(d)));
    });
  }
}

void Evictor::Clear() {
  small_.clear();
  main_.clear();
  small_.shrink_to_fit();
  main_.shrink_to_fit();
  ghost_[0].clear();
  ghost_[1].clear();
  ghost_count_ = 0;
  ghost_cap_ = 0;
  pool_.clear();
}

Entry* Evictor::Resolve(std::vector<Db>& dbs, uint64_t item) {
  size_t db = item >> kDbTagShift;
  if (db >= dbs.size()) return nullptr;
  return dbs[db].table().FindHashed(item & kHashMask, kHashMask);
}

void Evictor::GhostAdd(uint64_t item) {
  // Size the filters to the main queue: a key dropped from the small queue
  // is remembered while about as many keys again enter the ghost as main
  // holds (between 0.6x and 1.2x, as the two filters take turns).
  size_t want = std::max<size_t>(8, main_.size() * 6 / 10);
  if (ghost_cap_ < want / 2 || ghost_cap_ > want * 2 || ghost_[0].empty()) {
    ghost_cap_ = want;
    size_t words = (want * kBloomBitsPerKey + 63) / 64;
    ghost_[0].assign(words, 0);
    ghost_[1].assign(words, 0);
    ghost_count_ = 0;
  }
  if (ghost_count_ >= ghost_cap_) {
    ghost_cur_ ^= 1;
    std::fill(ghost_[ghost_cur_].begin(), ghost_[ghost_cur_].end(), 0);
    ghost_count_ = 0;
  }
  auto& bits = ghost_[ghost_cur_];
  size_t nbits = bits.size() * 64;
  for (int k = 0; k < kBloomHashes; ++k) {
    uint64_t b = Mix(item, static_cast<uint64_t>(k) + 1) % nbits;
    bits[b >> 6] |= uint64_t{1} << (b & 63);
  }
  ++ghost_count_;
}

bool Evictor::GhostHas(uint64_t item) const {
  for (const auto& bits : ghost_) {
    if (bits.empty()) continue;
    size_t nbits = bits.size() * 64;
    bool all = true;
    for (int k = 0; k < kBloomHashes && all; ++k) {
      uint64_t b = Mix(item, static_cast<uint64_t>(k) + 1) % nbits;
      all = bits[b >> 6] & (uint64_t{1} << (b & 63));
    }
    if (all) return true;
  }
  return false;
}

bool Evictor::EvictS3Fifo(std::vector<Db>& dbs, bool volatile_only, size_t* freed) {
  MaybeCompact(dbs);
  // Bounded: each step pops one item; a key read often cycles through main a
  // few times (its count drops by one per pass) before it can go.
  size_t budget = 4 * (small_.size() + main_.size()) + 16;
  while (budget-- > 0 && (!small_.empty() || !main_.empty())) {
    size_t total = small_.size() + main_.size();
    bool from_small = !small_.empty() && (small_.size() * 10 >= total || main_.empty());
    if (from_small) {
      uint64_t item = small_.front();
      small_.pop_front();
      Entry* e = Resolve(dbs, item);
      if (!e || (e->lfu & kInMain)) continue;  // deleted, or a stale duplicate
      if ((e->lfu & kFreqMask) >= 1) {
        e->lfu = kInMain;  // read again while new: keep it, count afresh
        main_.push_back(item);
        continue;
      }
      if (volatile_only && !e->has_expire()) {
        main_.push_back(item);
        e->lfu = kInMain;
        continue;
      }
      GhostAdd(item);
      *freed += Drop(dbs[item >> kDbTagShift], e);
      return true;
    }
    uint64_t item = main_.front();
    main_.pop_front();
    Entry* e = Resolve(dbs, item);
    if (!e || !(e->lfu & kInMain)) continue;
    if ((e->lfu & kFreqMask) > 0 || (volatile_only && !e->has_expire())) {
      if (!volatile_only || e->has_expire()) --e->lfu;
      main_.push_back(item);
      continue;
    }
    *freed += Drop(dbs[item >> kDbTagShift], e);
    return true;
  }
  return false;
}

// Items of deleted keys stay in the queues until popped; when they outnumber
// the live keys, drop them in one pass.
void Evictor::MaybeCompact(std::vector<Db>& dbs) {
  size_t live = 0;
  for (auto& db : dbs) live += db.size();
  if (small_.size() + main_.size() <= 2 * live + 1024) return;
  auto keep = [&](std::deque<uint64_t>& q, bool main) {
    std::deque<uint64_t> out;
    for (uint64_t item : q) {
      Entry* e = Resolve(dbs, item);
      if (e && ((e->lfu & kInMain) != 0) == main) out.push_back(item);
    }
    q.swap(out);
  };
  keep(small_, false);
  keep(main_, true);
}

}  // namespace larder
