// Eviction: which keys go when used memory passes maxmemory.
//
// Every policy sits behind one interface, the per-shard Evictor, which the
// server calls with a number of bytes to free; the server decides how much
// each shard frees from a global memory budget (keyspace/memory_budget.h).
//
//   Redis's policies (allkeys/volatile × lru/lfu/random, volatile-ttl):
//     sampling as Redis does it: maxmemory-samples random keys per database
//     feed a pool of the 16 best candidates; the best one goes. Access data
//     lives in the entry header: `access` (seconds, or for LFU the minute of
//     the last decay) and `lfu` (Redis's logarithmic counter).
//   S3-FIFO (SOSP'23; allkeys-s3fifo, volatile-s3fifo):
//     a small FIFO (10% of keys) for newcomers, a main FIFO for keys read
//     again while in the small one, and a ghost filter of keys recently
//     dropped from the small FIFO (a key that returns goes straight to main).
//     The FIFOs hold 64-bit key hashes (tagged with the database), not
//     pointers, so entries may move in memory; a popped hash is looked up,
//     and items of deleted keys are skipped. The entry keeps a 2-bit read
//     count and its queue in `lfu`.
//
// Runs on the owning shard only.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <random>
#include <string>
#include <vector>

#include "keyspace/entry.h"

namespace larder {

class Db;

enum class Policy : uint8_t {
  kNoEviction,
  kAllKeysLru,
  kAllKeysLfu,
  kAllKeysRandom,
  kVolatileLru,
  kVolatileLfu,
  kVolatileRandom,
  kVolatileTtl,
  kAllKeysS3Fifo,
  kVolatileS3Fifo,
};
// Names as maxmemory-policy takes them, in Policy order.
extern const char* const kPolicyNames[10];

inline bool IsLfu(Policy p) { return p == Policy::kAllKeysLfu || p == Policy::kVolatileLfu; }
inline bool IsS3Fifo(Policy p) { return p == Policy::kAllKeysS3Fifo || p == Policy::kVolatileS3Fifo; }
inline bool IsVolatile(Policy p) {
  return p == Policy::kVolatileLru || p == Policy::kVolatileLfu || p == Policy::kVolatileRandom ||
         p == Policy::kVolatileTtl || p == Policy::kVolatileS3Fifo;
}

// What the entry header's access fields mean under the current policy.
enum class AccessMode : uint8_t { kLru, kLfu, kFifo };
// Process-wide, set when maxmemory-policy changes (read by every shard).
inline std::atomic<uint8_t> g_access_mode{0};
inline AccessMode CurrentAccessMode() { return static_cast<AccessMode>(g_access_mode.load(std::memory_order_relaxed)); }
Policy CurrentPolicy();
void SetPolicy(Policy p);
// LFU knobs (lfu-log-factor, lfu-decay-time), set by CONFIG.
void SetLfuKnobs(int log_factor, int decay_minutes);

// The access fields of a new entry, and their update on each access.
void InitAccess(Entry* e);
void TouchAccess(Entry* e);
// Redis's LFU counter: logarithmic increment and decay by elapsed minutes.
uint8_t LfuDecayed(const Entry* e);
uint8_t LfuLogIncr(uint8_t counter);
uint32_t LfuMinutes();
constexpr uint8_t kLfuInitVal = 5;

// Key hash tagged with its database, as the S3-FIFO queues hold it.
uint64_t TaggedHash(uint64_t key_hash, int db);

class Evictor {
 public:
  // Frees at least `bytes` (by MEMORY USAGE's estimate of each key) from
  // `dbs`, or fewer if nothing evictable remains. Returns the bytes freed and
  // adds the number of keys to *evicted.
  size_t Evict(std::vector<Db>& dbs, size_t bytes, Policy policy, int samples, std::mt19937_64& rng,
               uint64_t* evicted);

  // S3-FIFO bookkeeping, called by Db for new keys and by the shard when the
  // policy changes to S3-FIFO (every existing key enters the main queue).
  void OnAdd(int db, Entry* e);
  void Rebuild(std::vector<Db>& dbs);
  void Clear();
  // Bytes this shard still owes to an excess over maxmemory (negative: freed
  // ahead). Kept by the server's memory budget.
  int64_t& debt() { return debt_; }
  // The maxmemory the debt was run up under (a new limit starts clean).
  int64_t& debt_limit() { return debt_limit_; }
  // Called with each key just before it is evicted (WATCH: an evicted key
  // counts as changed).
  using EvictHook = void (*)(void* arg, Db& db, std::string_view key);
  void set_evict_hook(EvictHook fn, void* arg) {
    hook_ = fn;
    hook_arg_ = arg;
  }

 private:
  size_t Drop(Db& db, Entry* e);
  struct Candidate {
    double score;  // larger = better to evict
    int db;
    std::string key;
  };
  bool EvictSampled(std::vector<Db>& dbs, Policy policy, int samples, std::mt19937_64& rng, size_t* freed);
  bool EvictRandom(std::vector<Db>& dbs, bool volatile_only, std::mt19937_64& rng, size_t* freed);
  bool EvictS3Fifo(std::vector<Db>& dbs, bool volatile_only, size_t* freed);
  Entry* Resolve(std::vector<Db>& dbs, uint64_t item);
  void GhostAdd(uint64_t item);
  bool GhostHas(uint64_t item) const;
  void MaybeCompact(std::vector<Db>& dbs);

  int64_t debt_ = 0;
  int64_t debt_limit_ = 0;
  EvictHook hook_ = nullptr;
  void* hook_arg_ = nullptr;
  std::vector<Candidate> pool_;
  size_t next_db_ = 0;

  std::deque<uint64_t> small_, main_;
  // Ghost: two rotating Bloom filters holding the last ~`ghost_cap_` keys
  // dropped from the small queue (a FIFO of fingerprints, within a factor 2).
  std::vector<uint64_t> ghost_[2];
  size_t ghost_count_ = 0;
  size_t ghost_cap_ = 0;
  int ghost_cur_ = 0;
};

}  // namespace larder
