// Pub/sub: classic channels and patterns (SUBSCRIBE, PSUBSCRIBE, PUBLISH)
// and shard channels (SSUBSCRIBE, SPUBLISH). Subscribers live on every
// shard thread; the engine-wide registry knows which shards have
// subscribers of a channel, a publisher posts the message to those shards
// (one message per shard, in the publisher's order) and each shard writes
// it to its own subscribers' output.
#pragma once

#include <cstddef>
#include <string_view>

namespace larder {

class Engine;

class PubSub {
 public:
  explicit PubSub(Engine* engine) : engine_(engine) {}
  // From any shard thread: `message` to every subscriber of `channel` and
  // of the patterns that match it; returns how many receive it.
  size_t Publish(std::string_view channel, std::string_view message);
  // SPUBLISH: to the subscribers of shard channel `channel`.
  size_t PublishShard(std::string_view channel, std::string_view message);

 private:
  Engine* engine_;
};

}  // namespace larder
