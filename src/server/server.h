// The server process: configuration, the shard threads, listeners, and the
// state that spans shards (client registry counters, slow log ids, latency
// monitor, MONITOR subscribers, CLIENT PAUSE).
//
//   main ──► Server::Run ──► ShardSet (N threads, one per shard)
//                              each: listener (SO_REUSEPORT) → Connections
//                                    Db[databases], task queue, timers
//
// Per-shard server state (its connections, command statistics, slow log)
// lives in ShardLocal and is touched only by that shard's thread.
#pragma once

#include <absl/container/flat_hash_map.h>

#include <atomic>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "engine/blocking.h"
#include "config/config.h"
#include "keyspace/memory_budget.h"
#include "cache/read_through.h"
#include "shard/shard_set.h"

namespace larder {

class Connection;
class Listener;

struct CommandStat {
  uint64_t calls = 0;
  uint64_t usec = 0;
  uint64_t rejected = 0;
  uint64_t failed = 0;
};

struct SlowlogEntry {
  uint64_t id;
  int64_t time_s;
  int64_t duration_us;
  std::vector<std::string> args;
  std::string addr, name;
};

// State of one shard that belongs to the server layer. Shard thread only.
struct ShardLocal {
  absl::flat_hash_map<uint64_t, std::unique_ptr<Connection>> conns;
  std::vector<uint64_t> to_close;      // closed this iteration, destroyed after it
  std::vector<uint64_t> paused;        // clients held by CLIENT PAUSE
  std::vector<CommandStat> cmd_stats;  // indexed by CommandSpec::id
  std::map<std::string, uint64_t> error_stats;  // errorstats: prefix -> count
  std::deque<SlowlogEntry> slowlog;
  BlockingRegistry blocking;                        // clients blocked on this shard's keys
  std::vector<std::shared_ptr<Waiter>> blocked;     // this shard's clients that are blocked
  // Written by the owning shard only; read by others (INFO, ops sampling).
  std::atomic<uint64_t> commands_processed{0};
  std::atomic<uint64_t> net_input_bytes{0};
  std::atomic<uint64_t> net_output_bytes{0};
  std::unique_ptr<Listener> listener;
  std::unique_ptr<cache::ShardCache> cache;  // read-through state of this shard
};

struct LatencySample {
  int64_t time_s;
  int64_t ms;
};
struct LatencyEvent {
  int64_t max_ms = 0;
  std::deque<LatencySample> history;  // newest last, at most 160
};

class Server {
 public:
  explicit Server(Config* config);
  ~Server();

  // Binds, starts the shards and blocks until shutdown. Returns the exit code.
  int Run();
  void RequestShutdown() { shutdown_.store(true); }

  Config& config() { return *config_; }
  ShardSet& shards() { return *shards_; }
  ShardLocal& local(int shard) { return *locals_[static_cast<size_t>(shard)]; }
  ShardLocal& local() { return local(CurrentShard()->id()); }

  // Called by a shard after a command ran there.
  void RecordCommand(Shard* shard, const struct CommandSpec* spec, int64_t duration_us,
                     bool failed, std::string_view error_line);
  void MaybeSlowlog(Shard* shard, std::span<const std::string_view> args, int64_t duration_us,
                    const std::string& addr, const std::string& name);
  void RecordLatency(const std::string& event, int64_t ms);

  // Latency monitor (LATENCY LATEST/HISTORY/RESET); any thread.
  std::map<std::string, LatencyEvent> LatencySnapshot();
  size_t LatencyReset(const std::vector<std::string>& events);

  // MONITOR: clients that receive every command.
  void AddMonitor(int shard, uint64_t client_id);
  void RemoveMonitor(int shard, uint64_t client_id);
  void FeedMonitors(int db, const std::string& addr, std::span<const std::string_view> args);
  bool has_monitors() const { return monitor_count_.load(std::memory_order_relaxed) > 0; }

  // CLIENT PAUSE.
  void Pause(int64_t until_ms, bool all) {
    pause_all_.store(all);
    pause_until_ms_.store(until_ms);
  }
  void Unpause() { pause_until_ms_.store(0); }
  // True if a command with these flags must wait now.
  bool PausedFor(uint32_t flags) const;

  // maxmemory. Before a command that may grow memory: false when it must be
  // refused with the OOM error (over the limit, nothing evictable).
  bool AdmitUnderMaxmemory(Shard& shard);
  // After each command on the shard that ran it: publishes its memory and
  // evicts its share of any excess.
  void AfterCommand(Shard& shard);
  // Applies maxmemory-policy and the LFU knobs after CONFIG SET / start-up
  // (and appendfsync to the write-behind journal).
  void ApplyEvictionConfig();
  cache::FsyncPolicy FsyncPolicyNow() const;
  MemoryBudget& memory() { return *memory_; }
  cache::CacheManager& cache() { return *cache_; }
  // used_memory once the server was ready (used_memory_startup).
  size_t memory_startup() const { return memory_startup_; }

  uint64_t NextClientId() { return next_client_id_.fetch_add(1); }
  uint64_t NextSlowlogId() { return next_slowlog_id_.fetch_add(1); }
  void ResetStats();

  int64_t start_time_ms() const { return start_time_ms_; }
  const std::string& run_id() const { return run_id_; }
  int listening_port() const { return port_; }

  std::atomic<int64_t> connected_clients{0};
  std::atomic<uint64_t> total_connections_received{0};
  std::atomic<uint64_t> rejected_connections{0};
  std::atomic<uint64_t> total_error_replies{0};
  // instantaneous_ops_per_sec: samples taken by shard 0's cron.
  std::atomic<uint64_t> ops_per_sec{0};
  std::atomic<uint64_t> ops_total_snapshot{0};  // sum of commands_processed, refreshed by cron

 private:
  void SetupShard(Shard& shard);
  void Cron(Shard& shard);
  void BlockedTimeoutCron(Shard& shard);
  void OpsSampleCron();
  void EvictionCron(Shard& shard);
  size_t EvictShare(Shard& shard, int64_t over);
  std::unique_ptr<MemoryBudget> memory_;
  std::unique_ptr<cache::CacheManager> cache_;
  size_t memory_startup_ = 0;

  Config* config_;
  std::unique_ptr<ShardSet> shards_;
  std::vector<std::unique_ptr<ShardLocal>> locals_;
  std::atomic<bool> shutdown_{false};
  std::atomic<uint64_t> next_client_id_{1};
  std::atomic<uint64_t> next_slowlog_id_{0};
  std::atomic<int64_t> pause_until_ms_{0};
  std::atomic<bool> pause_all_{false};
  int64_t start_time_ms_;
  std::string run_id_;
  int port_ = 0;
  std::vector<int> listen_fds_;

  std::mutex latency_mu_;
  std::map<std::string, LatencyEvent> latency_;

  std::mutex monitor_mu_;
  std::vector<std::pair<int, uint64_t>> monitors_;
  std::atomic<int> monitor_count_{0};

  // Throughput sampling (shard 0's thread only).
  std::deque<std::pair<int64_t, uint64_t>> ops_samples_;
};

}  // namespace larder
