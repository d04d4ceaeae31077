// What the cache module needs from the rest of the server, declared here and
// implemented by the engine (engine/cache_host.cc), so that the cache
// includes nothing above the shard layer and knows no command:
//
//   * post a task to a shard's thread (a load's result goes back to the
//     key's shard; a warming batch is stored by each shard);
//   * the settings a stored value follows (hash listpack limits);
//   * wake the clients blocked on a key (CACHE FETCH: a lease ended without
//     a value, so its waiters ask again).
//
// Commands and their replies reach the cache only as continuations: a read
// that must wait for a load hands the cache a `Resume`, a write-through a
// `WriteDone`, a write-behind write a `Release`; the cache calls them on the
// key's shard when the database answered (or the journal has the change),
// and the engine runs or answers the command. The cache writes no RESP: a
// failure is a message (from common/status.h's table) the engine turns into
// an error reply.
#pragma once

#include <absl/functional/any_invocable.h>

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "keyspace/hash_value.h"

namespace larder::cache {

class Host {
 public:
  virtual ~Host() = default;
  virtual int shard_count() const = 0;
  virtual int ShardOf(std::string_view key) const = 0;
  // Runs `task` on shard `shard`'s thread; from any thread.
  virtual void Post(int shard, absl::AnyInvocable<void()> task) = 0;
  virtual HashLimits hash_limits() const = 0;
  // On shard `shard`'s thread: the clients blocked on `key` get a nil reply.
  virtual void WakeWaiters(int shard, int db, std::string_view key) = 0;
  // On shard `shard`'s thread (or with it parked): the cache changed `key`
  // by itself (a load stored it, an invalidation or a vanished row deleted
  // it, a write-through result replaced it). WATCH counts it as changed.
  virtual void KeyChanged(int shard, int db, std::string_view key) = 0;

  // A caching rule's own event about `key` ("cache-loaded", ...; the names
  // are in docs/caching.md), on shard `shard`'s thread: a keyspace
  // notification of Larder's class `c` (notify-keyspace-events).
  virtual void NotifyRuleEvent(int shard, int db, std::string_view event, std::string_view key) = 0;
  // From a shard's thread: `message` to the pub/sub subscribers of
  // `channel` (a rule's publish-channel).
  virtual void Publish(std::string_view channel, std::string_view message) = 0;
  // From a shard's thread: an entry with `fields` appended to stream
  // `stream` of database `db` (a rule's publish-stream), as the command
  // XADD stream * field value ... would; false when the server has no XADD.
  virtual bool AppendToStream(int db, std::string_view stream,
                              std::vector<std::pair<std::string, std::string>> fields) = 0;
};

// A command waiting for its keys to load runs again: `error` is null when
// every key is loaded (or known missing), else why a load failed.
using Resume = absl::AnyInvocable<void(const std::string* error)>;
// A write-through write reached the database (error null) or was refused;
// on success the cache already holds the new value.
using WriteDone = absl::AnyInvocable<void(const std::string* error, int64_t micros)>;
// A write-behind change is in the journal (error null), or could not be
// written there; the reply may go out now.
using Release = absl::AnyInvocable<void(const std::string* error)>;

}  // namespace larder::cache
