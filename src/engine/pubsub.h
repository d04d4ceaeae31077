// Pub/sub: classic channels and patterns (SUBSCRIBE, PSUBSCRIBE, PUBLISH)
// and shard channels (SSUBSCRIBE, SPUBLISH).
//
// Subscribers live on every shard thread. Two levels hold the subscriptions:
//
//   Registry (engine-wide, a reader-writer lock): channel or pattern → how
//   many subscriptions each shard has. A publisher reads it once: the
//   receiver count PUBLISH answers, and the shards to send the message to.
//
//   Local (one per shard, its thread only): channel or pattern → the ids of
//   that shard's subscribed clients. The message posted to the shard (one
//   task per shard and message, in each publisher's order: shard mailboxes
//   keep a sender's order) is written there to each client's output.
//
// A subscriber's thread changes both (its local table first), so a message
// is never sent to a shard for a subscription it does not know. Writes to
// a client's output are flushed once per loop iteration, not per message;
// client-output-buffer-limit's pubsub class bounds a subscriber that does
// not read (client.cc).
#pragma once

#include <absl/container/flat_hash_map.h>
#include <absl/container/flat_hash_set.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

namespace larder {

class Engine;
class Client;

// The three namespaces: channels, patterns (matched against classic
// channels), shard channels.
enum class PubSubKind : uint8_t { kChannel = 0, kPattern = 1, kShard = 2 };

// One client's subscriptions (ClientState::subs), on the client's thread.
struct Subscriptions {
  absl::flat_hash_set<std::string> names[3];  // by PubSubKind
};

class PubSub {
 public:
  explicit PubSub(Engine* engine);
  ~PubSub();

  // From any thread: `message` to every subscriber of `channel` and of the
  // patterns that match it; returns how many receive it.
  size_t Publish(std::string_view channel, std::string_view message) {
    if (subscriptions_.load(std::memory_order_relaxed) == 0) return 0;  // nobody listens
    return Send(false, channel, message);
  }
  // SPUBLISH: to the subscribers of shard channel `channel`.
  size_t PublishShard(std::string_view channel, std::string_view message) {
    if (subscriptions_.load(std::memory_order_relaxed) == 0) return 0;
    return Send(true, channel, message);
  }

  // On the client's thread. Subscribe returns false when it already had
  // it; Unsubscribe when it did not.
  bool Subscribe(Client& c, PubSubKind kind, std::string_view name);
  bool Unsubscribe(Client& c, PubSubKind kind, std::string_view name);
  // Every subscription of the client (it closes or RESETs).
  void UnsubscribeAll(Client& c);

  // PUBSUB CHANNELS / SHARDCHANNELS: the active channels matching `pattern`
  // (every one when empty); NUMSUB / SHARDNUMSUB: the subscribers of one;
  // NUMPAT: the number of distinct patterns.
  std::vector<std::string> Channels(bool shard, std::string_view pattern) const;
  size_t NumSub(bool shard, std::string_view channel) const;
  size_t NumPat() const;
  // INFO: pubsub_channels, pubsub_patterns, pubsubshard_channels.
  size_t Count(PubSubKind kind) const;

  // End of a loop iteration on `shard`: sends what messages put in its
  // subscribers' output (inline: every iteration of every shard asks).
  void FlushShard(int shard) {
    Local& local = *locals_[static_cast<size_t>(shard)];
    if (!local.to_flush.empty()) [[unlikely]] FlushClients(local, shard);
  }
  // A client of `shard` wrote a message to its output (flushed at the end
  // of the iteration). True for the first of the iteration.
  bool NeedsFlush(int shard, uint64_t client_id) {
    auto& list = locals_[static_cast<size_t>(shard)]->to_flush;
    list.push_back(client_id);
    return list.size() == 1;
  }

 private:
  struct Counts {
    std::vector<uint32_t> per_shard;
    uint32_t total = 0;
  };
  struct Local {
    absl::flat_hash_map<std::string, std::vector<uint64_t>> by_name[3];
    std::vector<uint64_t> to_flush;
  };
  size_t Send(bool shard, std::string_view channel, std::string_view message);
  void FlushClients(Local& local, int shard);
  // On shard `s`: writes the message to its subscribers.
  void DeliverHere(int s, bool shard, std::string_view channel, std::string_view message);
  void Adjust(PubSubKind kind, const std::string& name, int shard, int delta);

  Engine* engine_;
  int shards_ = 0;
  std::atomic<uint64_t> subscriptions_{0};  // of every kind, on every shard
  mutable std::shared_mutex mu_;
  absl::flat_hash_map<std::string, Counts> registry_[3];  // by PubSubKind
  std::vector<std::unique_ptr<Local>> locals_;
};

}  // namespace larder
