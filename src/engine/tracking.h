// Client-side caching (CLIENT TRACKING, Redis's tracking.c).
//
// A tracking client's reads are remembered where the key lives: each shard
// has a TrackingTable (key -> the clients that read it, by id and client
// shard), touched only on that shard's thread (or while it is parked for an
// exclusive operation or held by an atomic unit). A write of the key, its
// expiry or eviction, or the cache changing it by itself takes the key's
// entry out of the table and sends an invalidation to each reader's thread,
// where the client writes it as a RESP3 push (or, redirected, to another
// client: a push, or a pub/sub `message` on `__redis__:invalidate` to a RESP2
// subscriber). BCAST clients register prefixes in the engine-wide `Tracking`
// registry (guarded by a mutex); the keys written on a shard are gathered
// per command and per loop iteration and sent as one message per prefix.
//
//   key's shard                                  tracking client's shard
//   Execute: write of k ─► TrackingTable::Take(k)
//            ─► Send(client shard) ───────────► DeliverInvalidation: the
//                                               client (flags, NOLOOP) ─► push
//                                               or, redirected ─► Send(target's
//                                               shard) ─► push / message
//
// Cost when no client tracks: one relaxed load (`Tracking::active`).
#pragma once

#include <absl/container/flat_hash_map.h>

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace larder {

class Engine;
class Client;
class Shard;
struct CommandSpec;
struct ClientState;
struct TrackingState;

// Engine-wide tracking state: counters for INFO, the live clients' shards
// (a REDIRECT target is looked up by id) and the BCAST prefixes. Any thread.
class Tracking {
 public:
  // Some client has tracking on, or the tables still hold keys read while
  // one had (a write still takes them out, as in Redis): the check on the
  // hot path.
  bool active() const {
    return clients_.load(std::memory_order_relaxed) > 0 || keys.load(std::memory_order_relaxed) > 0;
  }
  bool bcast_active() const { return bcast_clients_.load(std::memory_order_relaxed) > 0; }

  // Every connection, while it is open (Client's constructor and close).
  void AddClient(uint64_t id, int shard);
  void RemoveClient(uint64_t id);
  // The shard of open client `id`, or -1.
  int ShardOfClient(uint64_t id) const;

  // A client turned tracking on / off (bcast: in BCAST mode).
  void ClientOn(bool bcast);
  void ClientOff(bool bcast);
  // BCAST prefixes of a client (its own list is in its TrackingState).
  void AddPrefix(const std::string& prefix, int shard, uint64_t id, bool noloop);
  void RemovePrefix(const std::string& prefix, uint64_t id);

  // One BCAST message: the keys of one prefix for one client.
  struct Delivery {
    int shard;
    uint64_t id;
    std::vector<std::string> keys;
  };
  // The messages for the keys written (with their writer's id), sorted
  // and without repeats per message, as Redis sends them.
  std::vector<Delivery> Broadcast(std::vector<std::pair<std::string, uint64_t>>& written);

  int64_t clients() const { return clients_.load(std::memory_order_relaxed); }
  size_t prefixes() const;
  // tracking_total_keys / tracking_total_items (sums of the shards' tables).
  std::atomic<int64_t> keys{0};
  std::atomic<int64_t> items{0};

 private:
  std::atomic<int64_t> clients_{0};
  std::atomic<int64_t> bcast_clients_{0};
  mutable std::mutex mu_;
  absl::flat_hash_map<uint64_t, int> live_;  // client id -> shard
  struct Subscriber {
    int shard;
    uint64_t id;
    bool noloop;
  };
  std::map<std::string, std::vector<Subscriber>> prefixes_;
};

// The keys read by tracking clients on one shard. Its shard's thread only.
class TrackingTable {
 public:
  void Remember(Tracking& t, std::string_view key, int client_shard, uint64_t client_id);
  // Takes `key`'s readers out of the table; false if it had none.
  // `count_key`: false when the caller already took it off Tracking::keys.
  bool Take(Tracking& t, std::string_view key, std::vector<std::pair<int, uint64_t>>* readers,
            bool count_key = true);
  // Some key of the table (to evict over tracking-table-max-keys), or null.
  const std::string* AnyKey() const { return keys_.empty() ? nullptr : &keys_.begin()->first; }
  void Clear(Tracking& t);
  size_t size() const { return keys_.size(); }

  // Keys written on this thread for BCAST clients, sent at the end of the
  // command or of the loop iteration (FlushBroadcast).
  std::vector<std::pair<std::string, uint64_t>> bcast_pending;

 private:
  absl::flat_hash_map<std::string, absl::flat_hash_map<uint64_t, int>> keys_;
};

// Whether a command's keys are remembered for this client (tracking on,
// not BCAST, OPTIN/OPTOUT with CLIENT CACHING, read-only command).
bool WantsTracking(const TrackingState& t, const CommandSpec* spec);

// On the client's thread, before each command of a tracking client: CLIENT
// CACHING's one-command scope (a whole MULTI ... EXEC; CLIENT commands keep
// it), and whether this command's reads are remembered.
bool NoteTrackedCommand(ClientState& state, const CommandSpec* spec);

// Remembers `key` (on shard `owner`) as read by client (client_shard, id):
// directly when this thread may touch `owner`'s table, else sent there.
void TrackRead(Engine& e, int owner, bool direct, std::string_view key, int client_shard, uint64_t id);
// `key` (on shard `owner`, `direct` as above) changed: its readers are
// told, except `writer` when it asked for NOLOOP. BCAST clients are told
// at the end of the command (queued on this thread).
void InvalidateKey(Engine& e, int owner, bool direct, std::string_view key, uint64_t writer);
// FLUSHDB / FLUSHALL, with every shard parked: every table is emptied and
// every tracking client gets a null invalidation (after `writer`'s reply).
void InvalidateAll(Engine& e);
// Sends this thread's pending BCAST invalidations.
void FlushBroadcast(Engine& e, Shard& shard);
// tracking-table-max-keys: evicts keys of this shard's table (each an
// invalidation) while the total is over the limit.
void EnforceTrackingLimit(Engine& e, Shard& shard);

// CLIENT TRACKING ON/OFF on the client's thread.
void EnableTracking(Engine& e, Client& c, uint64_t redirect, bool bcast, bool optin, bool optout, bool noloop,
                    const std::vector<std::string>& prefixes);
void DisableTracking(Engine& e, Client& c);

}  // namespace larder
