// INFO: each shard reports a snapshot of its own counters on its own thread;
// the client's thread sums them and formats Redis's sections and field names.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "keyspace/db.h"
#include "engine/engine.h"

namespace larder {

struct ShardSnapshot {
  std::vector<std::pair<size_t, size_t>> dbs;  // (keys, keys with a TTL) per database
  KeyspaceStats stats;
  // Per command only for INFO commandstats (a few hundred entries, copied on
  // each shard, and counted in the used_memory the same INFO reports).
  std::vector<CommandStat> cmd_stats;
  uint64_t total_calls = 0;
  std::map<std::string, uint64_t> error_stats;
  size_t clients = 0;
  size_t blocked = 0;         // clients waiting in a blocking command or held by CLIENT PAUSE
  size_t blocked_timeout = 0; // of those, blocking with a timeout
  size_t cache_pending = 0;  // read-through loads running
  // Clients' buffers (input, output, batch groups): mem_clients_normal and
  // the largest input and output buffer of one client.
  size_t client_memory = 0;
  size_t max_client_input = 0, max_client_output = 0;
  // The shard thread's Lua interpreters (scripts, functions).
  size_t lua_eval_memory = 0, lua_functions_memory = 0;
};

ShardSnapshot TakeShardSnapshot(Engine* server, Shard& shard, bool per_command);
// Whether INFO with these sections needs the per-command statistics.
bool WantsCommandStats(const std::vector<std::string>& sections);


// `sections`: lower-case names as given to INFO (empty = default set).
std::string BuildInfo(Engine* server, const std::vector<ShardSnapshot>& shards,
                      const std::vector<std::string>& sections);

}  // namespace larder
