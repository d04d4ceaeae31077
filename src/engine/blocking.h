// Blocking list commands (BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP).
//
// A blocking command first runs like any other, on its keys' shard (or as an
// exclusive operation across shards). If it finds data it replies. If not,
// its handler sets ctx.wants_block and a Waiter is registered, under each of
// its keys, in the registry of the shard that owns the key. The client waits.
//
// A push to a key with waiters marks it ready; after the command that pushed,
// the owning shard serves the waiters of its ready keys in the order the
// server read their commands (a ticket taken on the client's thread: two
// clients on two threads may register out of that order), as many as there
// are elements: it re-runs each waiter's command there (serving mode: it
// never blocks again) and sends the reply to the client's thread. A waiter
// whose command spans shards (BLMOVE to a key elsewhere, BLPOP over keys of
// two shards) is served by an exclusive operation over them, so it sees its
// destination as the push left it (WRONGTYPE leaves the element for the
// next waiter, as Redis); its key waits meanwhile. A waiter is claimed
// exactly once (an atomic flag) by a serve, its timeout (checked by the
// client's shard cron) or the client's disconnection, so an element is never
// popped for a client that is gone.
#pragma once

#include <absl/container/flat_hash_map.h>
#include <absl/container/flat_hash_set.h>

#include <atomic>
#include <deque>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "engine/command.h"

namespace larder {

class Engine;
class Shard;

struct Waiter {
  std::atomic<bool> done{false};
  uint64_t ticket = 0;      // arrival order (StartBlocking)
  std::vector<int> shards;  // of its command's keys, sorted; > 1: served exclusively
  int client_shard = 0;
  uint64_t client_id = 0;
  int db = 0;
  int resp = 2;
  int64_t deadline_ms = 0;  // 0: forever
  const CommandSpec* spec = nullptr;
  std::vector<std::string> args;
  std::vector<std::string> keys;  // keys it waits on
  bool wake_on_delete = false;    // BlockRequest::wake_on_delete
  ReplyTarget target;             // the command's place in its client's pipeline
};

// Per shard; touched only by its shard thread (or while that shard is parked).
class BlockingRegistry {
 public:
  void Add(int db, std::string_view key, std::shared_ptr<Waiter> w);
  bool HasWaiters(int db, std::string_view key) const;
  // An exclusive operation is on its way to serve the first waiter of `key`
  // (ServeAcross): what the key holds is that waiter's.
  bool ServePending(int db, std::string_view key) const {
    return !across_.empty() && across_.contains(Key(db, std::string(key)));
  }
  void MarkReady(int db, std::string_view key);
  // SWAPDB, FLUSHDB: every key of database `db` that clients wait on and
  // that now exists in `d` is ready, and so is every missing one that a
  // waiter wants to hear about (XREADGROUP: its stream is gone).
  void MarkReadyIn(int db, Db& d);
  // Drops claimed waiters of one key (after a timeout or a disconnect).
  void Prune(int db, const std::string& key);
  bool has_ready() const { return !ready_.empty(); }
  bool empty() const { return waiting_.empty(); }
  // Answers every waiter of a key with `reply` (CACHE FETCH: the lease
  // holder went away, so each waiter asks again and one takes over).
  void WakeAll(Engine* engine, int db, const std::string& key, const std::string& reply_resp2,
               const std::string& reply_resp3);

  // Serves waiters of the keys marked ready on `shard`.
  void ServeReady(Engine* engine, Shard* shard);

 private:
  using Key = std::pair<int, std::string>;
  // Starts the exclusive operation that serves `w` (first in `key`'s queue)
  // with every shard of its command parked; `key` waits until it ran.
  void ServeAcross(Engine* engine, Shard* shard, const Key& key, const std::shared_ptr<Waiter>& w);

  absl::flat_hash_map<Key, std::deque<std::shared_ptr<Waiter>>> waiting_;  // by ticket
  std::vector<Key> ready_;
  absl::flat_hash_set<Key> across_;  // keys whose first waiter an exclusive operation serves
};

// Called by commands that add elements to a list.
void SignalKeyReady(CommandContext& ctx, std::string_view key);
// After a command ran on `shard` (every shard of an exclusive operation).
void ServeBlockedClients(Engine* engine, Shard* shard);
// The same, for the engine's hot path: only a registry with ready keys costs a call.
inline void ServeBlockedClients(BlockingRegistry& reg, Engine* engine, Shard* shard) {
  if (reg.has_ready()) [[unlikely]] reg.ServeReady(engine, shard);
}
// Called by a blocking handler that found no data: the caller registers it.
void RequestBlock(CommandContext& ctx, int64_t timeout_ms, std::vector<std::string> keys);
// Parses a blocking timeout in seconds (float) into ms (0 = forever); writes
// the error on bad input.
bool ParseBlockTimeout(CommandContext& ctx, std::string_view arg, int64_t* ms);

// Releases a waiter that was not served: timeout (reply nil) or disconnect.
void AbandonWaiter(Engine* engine, const std::shared_ptr<Waiter>& w);

// True while a blocking handler runs for a waiter (it must not block again).
bool Serving(const CommandContext& ctx);
// A blocking command's first run must leave `key` alone: its data is kept
// for a waiter that came first and is being served across shards. The
// command blocks behind it instead, as in Redis, where that waiter would
// have had the data at once.
bool YieldsToWaiters(const CommandContext& ctx, std::string_view key);
// While serving a waiter only this shard's keys can have become ready; other
// keys of the command are skipped.
bool LocalForServing(const CommandContext& ctx, std::string_view key);

// The key a blocking pop may take from: its entry if it holds `type` (and,
// while serving a waiter, lives on this shard), else null. A key of another
// type is skipped while serving; otherwise WRONGTYPE is written and *failed set.
struct Entry;
enum class ObjType : uint8_t;
Entry* PopCandidate(CommandContext& ctx, std::string_view key, ObjType type, bool* failed);

}  // namespace larder
