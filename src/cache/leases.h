// CACHE FETCH leases on one shard: who computes a missing key for the
// others. A lease names its holder (client shard and id) and runs out at
// `until_ms`; a write to the key ends it (the value is there now), and so
// does its holder going away, when the clients waiting on the key are told
// to ask again (one of them takes the next lease). Shard thread only.
#pragma once

#include <absl/container/flat_hash_map.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "cache/host.h"

namespace larder::cache {

class Leases {
 public:
  struct Lease {
    int client_shard;
    uint64_t client_id;
    int64_t until_ms;
  };
  Leases(Host* host, int shard) : host_(host), shard_(shard) {}

  // The live lease on a key, or null (an expired one is dropped).
  const Lease* Find(int db, std::string_view key);
  void Grant(int db, std::string_view key, Lease lease);
  bool empty() const { return leases_.empty(); }
  // A write to the key ends its lease.
  void End(int db, std::string_view key);
  // A client went away: its leases end and their waiters ask again.
  void ReleaseClient(int client_shard, uint64_t client_id);

 private:
  Host* host_;
  int shard_;
  absl::flat_hash_map<std::string, Lease> leases_;  // by KeyId
};

}  // namespace larder::cache
