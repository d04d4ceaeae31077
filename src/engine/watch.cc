#include "engine/watch.h"

#include <algorithm>

#include "common/clock.h"
#include "common/strings.h"
#include "keyspace/db.h"
#include "keyspace/digest.h"

namespace larder {

namespace {
// Present in the table, expired or not (Redis's dictFind).
const Entry* Present(Db& db, std::string_view key) { return db.table().Find(key); }
bool IsStale(const Entry* e) { return e && e->has_expire() && e->expire_ms() <= CommandTimeMs(); }
}  // namespace

bool WatchSet::Watches(int db, std::string_view key) const {
  for (const auto& k : keys)
    if (k.db == db && k.key == key) return true;
  return false;
}

bool WatchSet::Failed(int64_t now_ms) const {
  if (dirty.load(std::memory_order_acquire)) return true;
  for (const auto& k : keys)
    if (!k.stale.load(std::memory_order_relaxed) && k.deadline_ms > 0 && k.deadline_ms <= now_ms) return true;
  return false;
}

std::string WatchRegistry::Name(int db, std::string_view key) {
  std::string n;
  n.reserve(key.size() + sizeof(db));
  n.append(reinterpret_cast<const char*>(&db), sizeof(db));
  n.append(key);
  return n;
}

void WatchRegistry::Add(const std::shared_ptr<WatchSet>& set, WatchedKey* wk, Db& db) {
  const Entry* e = Present(db, wk->key);
  bool stale = IsStale(e);
  wk->stale.store(stale, std::memory_order_relaxed);
  wk->deadline_ms = e && e->has_expire() && !stale ? e->expire_ms() : 0;
  map_[Name(wk->db, wk->key)].push_back(Ref{set, wk});
}

void WatchRegistry::Remove(const WatchSet* set) {
  for (const auto& k : set->keys) {
    auto it = map_.find(Name(k.db, k.key));
    if (it == map_.end()) continue;
    auto& refs = it->second;
    refs.erase(std::remove_if(refs.begin(), refs.end(), [set](const Ref& r) { return r.set.get() == set; }),
               refs.end());
    if (refs.empty()) map_.erase(it);
  }
}

void WatchRegistry::Touch(int db_index, std::string_view key, Db& db) {
  auto it = map_.find(Name(db_index, key));
  if (it == map_.end()) return;
  for (const Ref& r : it->second) {
    if (r.wk->stale.load(std::memory_order_relaxed)) {
      // Watched while stale: its deletion is no change (the flag clears);
      // as in Redis 7.0, a stale key that is still there is not marked.
      if (!Present(db, key)) r.wk->stale.store(false, std::memory_order_relaxed);
      continue;
    }
    r.set->dirty.store(true, std::memory_order_release);
  }
}

void WatchRegistry::TouchDb(int db_index, Db& emptied, Db* replaced_with) {
  for (auto& [name, refs] : map_) {
    if (name.compare(0, sizeof(db_index), reinterpret_cast<const char*>(&db_index), sizeof(db_index)) != 0)
      continue;
    std::string_view key = std::string_view(name).substr(sizeof(db_index));
    bool in_emptied = Present(emptied, key) != nullptr;
    const Entry* incoming = replaced_with ? Present(*replaced_with, key) : nullptr;
    if (!in_emptied && !incoming) continue;
    for (const Ref& r : refs) {
      if (r.wk->stale.load(std::memory_order_relaxed)) {
        if (!incoming) {  // a stale key now gone: no change
          r.wk->stale.store(false, std::memory_order_relaxed);
          continue;
        }
        if (IsStale(incoming)) continue;  // stale stays stale
      } else if (!in_emptied && IsStale(incoming)) {
        r.wk->stale.store(true, std::memory_order_relaxed);  // nothing replaced by a stale key
        continue;
      }
      r.set->dirty.store(true, std::memory_order_release);
    }
  }
}

WatchProbe::State WatchProbe::StateOf(Db& db, std::string_view key) {
  State s;
  const Entry* e = db.table().Find(key);
  if (!e || (e->has_expire() && e->expire_ms() <= CommandTimeMs())) return s;
  s.exists = true;
  s.expire = e->has_expire() ? e->expire_ms() : -1;
  // A large value is not digested on every write: it counts as changed.
  if (EntryMemoryUsage(e, 16) > 64 * 1024) {
    s.big = true;
    return s;
  }
  Digest d{};
  MixValueDigest(e, &d);
  std::copy(d.begin(), d.end(), s.digest.begin());
  return s;
}

bool AlwaysSignals(std::string_view name, std::span<const std::string_view> args, std::string_view reply) {
  bool nil = reply == "$-1\r\n" || reply == "_\r\n" || reply == "*-1\r\n";
  bool zero = reply == ":0\r\n";
  if (name == "set") {
    for (size_t i = 3; i < args.size(); ++i)
      if (EqualsIgnoreCase(args[i], "get")) return true;  // its reply is the old value
    return !nil;
  }
  if (name == "setnx" || name == "msetnx" || name == "expire" || name == "pexpire" ||
      name == "expireat" || name == "pexpireat")
    return !zero;
  static constexpr std::string_view kAlways[] = {
      "setex",  "psetex", "getset",      "mset",    "setrange", "append",       "incr",    "decr",
      "incrby", "decrby", "incrbyfloat", "hset",    "hmset",    "hincrby",      "hincrbyfloat",
      "lset",   "setbit", "restore"};
  for (std::string_view n : kAlways)
    if (n == name) return true;
  return false;
}

}  // namespace larder
