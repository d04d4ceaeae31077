// Preloading: the read-through step of an atomic unit, done before the unit.
//
// An atomic unit (EXEC, a script) runs its commands in Mode::kAtomic, which
// skips the cache step: a read cannot wait for a load while the unit holds
// its shards. So before the unit starts, its caller loads what the unit
// will read:
//
//   PreloadKeys(keys, then)  (calling shard)
//     caching off, or no key a rule covers  → then(nullptr) at once, no message
//     per owning shard (inline for the calling shard, else ShardSet::Send):
//       ShardCache::CheckRead each key → a load starts or is joined
//       (single flight), a hit may start a refresh (not waited for)
//       any loading → ShardCache::WaitFor → done when they landed
//     every shard done ──► then(first load error or null) on the calling shard
//
// A key loaded here is an ordinary cached key: when the unit runs it reads
// it as any read would. A load of a watched key is a change of it (cache::
// Host::KeyChanged), so a transaction that WATCHes a key it has to load
// fails (EXEC answers nil), as it would if another client had read it.
// Between the loads and the unit the keys may still change (another
// client's write, which then simply came first; eviction or expiry, which
// leaves the unit a miss as before).
//
// Call from a shard thread that holds nothing (not inside an atomic unit or
// an exclusive operation: the owning shards must be free to run the checks).
#pragma once

#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace larder {

class Engine;

struct PreloadKey {
  int db = 0;
  std::string key;
  int shard = 0;  // its owner (ShardSet::ShardOf)
};

// `error` is null when every key is loaded (or known missing), else the
// first load's error message (an error reply's text: "ERR cache source ...").
using PreloadDone = std::function<void(const std::string* error)>;

// Loads the keys a read-through rule covers and are not cached, then runs
// `then` on the calling shard. Returns true when `then` already ran (before
// returning: nothing had to be waited for), false when it runs later, from
// the calling shard's loop (never before PreloadKeys returns).
bool PreloadKeys(Engine* engine, std::vector<PreloadKey> keys, PreloadDone then);

// The same for keys of one database (a script's declared KEYS): each key's
// owner is found here.
bool PreloadKeys(Engine* engine, int db, std::span<const std::string_view> keys, PreloadDone then);

}  // namespace larder
