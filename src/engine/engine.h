// The command engine's state: everything commands run against besides the
// keyspace itself, as Redis keeps it in `server`.
//
//   Engine ──► ShardSet (the shard threads and their keyspaces)
//          ──► EngineShard per shard: its clients, command statistics, slow
//              log, blocked clients and the keys they wait on
//          ──► Config, MemoryBudget (maxmemory), CacheManager (caching rules)
//          ──► server-wide counters, the latency monitor, MONITOR clients,
//              CLIENT PAUSE
//
// The path of a command through the engine:
//
//   Client (client.h) ──► Dispatch (dispatcher.h): lookup, arity, auth,
//   pause, OOM; route by the keys' shard ──► inline, or a CommandGroup to
//   the owning shard (pipeline.h) ──► Execute (executor.h) ──► handler
//   (commands/*_family.cc) ──► reply in order to the client's output.
//
// Per-shard state is touched only on its shard's thread; the rest is
// atomic or guarded as noted.
#pragma once

#include <absl/container/flat_hash_map.h>

#include <atomic>
#include <bit>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "cache/manager.h"
#include "config/config.h"
#include "engine/acl.h"
#include "engine/blocking.h"
#include "engine/defrag.h"
#include "engine/persistence.h"
#include "engine/pubsub.h"
#include "engine/tracking.h"
#include "engine/watch.h"
#include "engine/command.h"
#include "engine/propagate.h"
#include "keyspace/lazy_free.h"
#include "keyspace/memory_budget.h"
#include "net/tls.h"
#include "shard/shard_set.h"

namespace larder {

class Aof;
class Client;
class EngineCacheHost;

// LATENCY HISTOGRAM. Redis records each command's duration in an HDR
// histogram (nanoseconds, 2 significant digits, 1 ns to 1 s) and reports it
// at the power-of-two steps 1024 ns, 2048 ns...; Larder counts the calls
// per step directly. Step k takes the durations d (in us) with
// 1000 * d < 129 * 2^(k+3), the values the HDR histogram counts at or
// below its step's value 2^(10+k); Redis names it by that value's upper
// equivalent in us, (129 * 2^(k+3) - 1) / 1000: 1, 2, 4, 8, 16, 33, 66...
constexpr int kLatencyBuckets = 21;  // up to 1 s (Redis's highest trackable value)
inline int LatencyBucket(int64_t duration_us) {
  if (duration_us <= 1) return 0;  // most commands: step 0 takes 0 and 1 us
  uint64_t ns = static_cast<uint64_t>(duration_us) * 1000;
  if (ns > 1000000000) ns = 1000000000;
  int k = std::bit_width(ns / 129) - 3;
  return k < 0 ? 0 : k;
}
inline int64_t LatencyBucketUsec(int k) { return ((int64_t{129} << (k + 3)) - 1) / 1000; }

// 40 random hex digits: run ids, replication ids.
std::string RandomHexId();

struct CommandStat {
  uint64_t calls = 0;
  uint64_t usec = 0;
  uint64_t rejected = 0;
  uint64_t failed = 0;
  uint64_t latency[kLatencyBuckets] = {};  // calls per LATENCY HISTOGRAM step
};

struct SlowlogEntry {
  uint64_t id;
  int64_t time_s;
  int64_t duration_us;
  std::vector<std::string> args;
  std::string addr, name;
};

// State of one shard that belongs to the engine. Shard thread only.
struct EngineShard {
  absl::flat_hash_map<uint64_t, std::unique_ptr<Client>> clients;
  // Receivers of late replies that are not socket clients (in-process
  // callers: the command test fixture; later scripts, EXEC, replication),
  // by the client id their ReplyTargets carry.
  absl::flat_hash_map<uint64_t, std::function<void(const ReplyTarget&, std::string)>> receivers;
  // Closed clients, destroyed at the end of the loop iteration once none of
  // their commands is out on another shard.
  std::vector<uint64_t> to_close;
  std::vector<uint64_t> paused;        // clients held by CLIENT PAUSE
  std::vector<CommandStat> cmd_stats;  // indexed by CommandSpec::id
  std::map<std::string, uint64_t> error_stats;  // errorstats: prefix -> count
  std::deque<SlowlogEntry> slowlog;
  BlockingRegistry blocking;                     // clients blocked on this shard's keys
  WatchRegistry watches;                         // WATCHed keys of this shard
  TrackingTable tracking;                        // keys of this shard read by tracking clients
  std::vector<std::shared_ptr<Waiter>> blocked;  // this shard's clients that are blocked
  // appendfsync always: clients whose replies wait for this iteration's
  // AOF fsync (Client::FinishOutput; sent in AfterEvents).
  std::vector<uint64_t> aof_waiting;
  // Written by the owning shard only; read by others (INFO, ops sampling).
  std::atomic<uint64_t> commands_processed{0};
  std::atomic<uint64_t> net_input_bytes{0};
  std::atomic<uint64_t> net_output_bytes{0};
  // Keys written (the dirty counter: rdb_changes_since_last_save, save points).
  std::atomic<uint64_t> dirty{0};
};

struct LatencySample {
  int64_t time_s;
  int64_t ms;
};
struct LatencyEvent {
  int64_t max_ms = 0;
  std::deque<LatencySample> history;  // newest last, at most 160
};

class Engine {
 public:
  explicit Engine(Config* config);
  ~Engine();

  // Creates the shards (not started), the memory budget and the cache
  // manager with the configured sources and rules.
  bool Init(std::string* err);
  // On each shard's thread before its loop runs: timers, per-shard state.
  void SetupShard(Shard& shard);
  // After the shards run: the start-up memory figure, cache warming.
  void Started();
  // Closes every client (on its thread) and stops the cache's threads.
  void Shutdown();

  Config& config() { return *config_; }
  ShardSet& shards() { return *shards_; }
  EngineShard& local(int shard) { return *locals_[static_cast<size_t>(shard)]; }
  EngineShard& local() { return local(CurrentShard()->id()); }
  MemoryBudget& memory() { return *memory_; }
  // ACL users (built in Init from requirepass, user lines or the aclfile).
  acl::Users& users() { return *users_; }
  bool acl_pubsub_all() const { return config_->acl_pubsub_default.load(std::memory_order_relaxed) == 0; }
  cache::CacheManager& cache() { return *cache_; }
  PubSub& pubsub() { return *pubsub_; }
  Tracking& tracking() { return *tracking_; }  // CLIENT TRACKING (tracking.h)
  Persistence& persistence() { return *persistence_; }
  ActiveDefrag& defrag() { return *defrag_; }  // activedefrag (defrag.h)  // snapshots and loading (persistence.h)
  // What write commands changed, in order (propagate.h), and the AOF that
  // writes it to disk (aof.h).
  Propagation& propagation() { return *propagation_; }
  Aof& aof() { return *aof_; }

  // A new connection accepted on `shard` (its thread): the client starts.
  // `tls`: the connection's TLS session (a TLS port), else null.
  void AddClient(Shard& shard, int fd, std::string peer, std::string local,
                 std::unique_ptr<net::TlsSession> tls = nullptr);
  // Protected mode applies while the default user needs no password.
  bool DefaultUserHasNoPassword() const;

  // Delivers a reply that comes later (a command that waited for other
  // shards, a load, the journal, a blocking pop) to its place in the
  // client's pipeline. Any thread.
  void Deliver(const ReplyTarget& target, std::string reply);
  // The same for an error (counted in errorstats by the caller's Execute).
  void DeliverError(const ReplyTarget& target, std::string_view message, int resp);

  // Statistics, on the shard that ran the command.
  // `histogram`: false for a command whose time is only known when it
  // finishes on other shards (RecordDeferredWork puts it in its step then).
  void RecordCommand(Shard* shard, const CommandSpec* spec, int64_t duration_us, bool failed, bool histogram = true) {
    EngineShard& l = *locals_[static_cast<size_t>(shard->id())];
    CommandStat& st = l.cmd_stats[static_cast<size_t>(spec->id)];
    ++st.calls;
    st.usec += static_cast<uint64_t>(duration_us);
    l.commands_processed.store(l.commands_processed.load(std::memory_order_relaxed) + 1,
                               std::memory_order_relaxed);
    if (failed) [[unlikely]] ++st.failed;
    if (histogram && config_->latency_tracking.load(std::memory_order_relaxed)) ++st.latency[LatencyBucket(duration_us)];
    int64_t threshold = config_->latency_monitor_threshold.load(std::memory_order_relaxed);
    if (threshold > 0 && duration_us >= threshold * 1000) [[unlikely]] RecordCommandLatency(spec, duration_us);
  }
  void RecordRejected(Shard* shard, const CommandSpec* spec);
  // Time a deferred command spent on other shards (its call was counted
  // when it started): commandstats, LATENCY HISTOGRAM and the latency monitor.
  void RecordDeferredWork(Shard* shard, const CommandSpec* spec, int64_t duration_us) {
    CommandStat& st = local(shard->id()).cmd_stats[static_cast<size_t>(spec->id)];
    st.usec += static_cast<uint64_t>(duration_us);
    if (config_->latency_tracking.load(std::memory_order_relaxed)) ++st.latency[LatencyBucket(duration_us)];
    int64_t threshold = config_->latency_monitor_threshold.load(std::memory_order_relaxed);
    if (threshold > 0 && duration_us / 1000 >= threshold) RecordCommandLatency(spec, duration_us);
  }
  // One error reply (errorstats counts each by its first word).
  void RecordError(Shard* shard, std::string_view error_line);
  void MaybeSlowlog(Shard* shard, std::span<const std::string_view> args, int64_t duration_us,
                    const ClientState* client) {
    int64_t threshold = config_->slowlog_log_slower_than.load(std::memory_order_relaxed);
    if (threshold < 0 || duration_us < threshold) [[likely]] return;
    AddSlowlog(shard, args, duration_us, client);
  }
  void RecordLatency(const std::string& event, int64_t ms);

  // Latency monitor (LATENCY LATEST/HISTORY/RESET); any thread.
  std::map<std::string, LatencyEvent> LatencySnapshot();
  size_t LatencyReset(const std::vector<std::string>& events);

  // MONITOR: clients that receive every command.
  void AddMonitor(int shard, uint64_t client_id);
  void RemoveMonitor(int shard, uint64_t client_id);
  void FeedMonitors(int db, const std::string& addr, std::span<const std::string_view> args);
  bool has_monitors() const { return monitor_count_.load(std::memory_order_relaxed) > 0; }

  // A script (1) or a function (2) has run past busy-reply-threshold:
  // Dispatch answers BUSY to every command not flagged kCmdAllowBusy
  // (commands/script_family.cc sets and clears it).
  std::atomic<int> busy_script{0};

  // Blocking commands in the order the server read them (engine/blocking.h).
  uint64_t NextBlockTicket() { return block_tickets_.fetch_add(1, std::memory_order_relaxed) + 1; }

  // CLIENT PAUSE.
  void Pause(int64_t until_ms, bool all) {
    pause_all_.store(all);
    pause_until_ms_.store(until_ms);
  }
  void Unpause() { pause_until_ms_.store(0); }
  // True if a command with these flags must wait now.
  bool PausedFor(uint32_t flags) const {
    return pause_until_ms_.load(std::memory_order_relaxed) != 0 && PausedNow(flags);
  }

  // maxmemory. Before a command that may grow memory: false when it must be
  // refused with the OOM error (over the limit, nothing evictable).
  bool AdmitUnderMaxmemory(Shard& shard) {
    return config_->maxmemory.load(std::memory_order_relaxed) <= 0 || AdmitOverLimit(shard);
  }
  // Before a command that may grow memory, on the shard that runs it: frees
  // the whole of any excess over maxmemory from this shard's keys (not only
  // its share), so that each write starts under the limit whatever the other
  // shards have paid yet (what it frees beyond its share is its credit).
  void BeforeGrowth(Shard& shard) {
    if (config_->maxmemory.load(std::memory_order_relaxed) > 0) [[unlikely]] EvictBeforeGrowth(shard);
  }
  // After each command on the shard that ran it: publishes its memory and
  // evicts its share of any excess.
  void AfterCommand(Shard& shard) {
    if (config_->maxmemory.load(std::memory_order_relaxed) > 0) [[unlikely]] AccountAndEvict(shard);
  }
  // Applies maxmemory-policy and the LFU knobs after CONFIG SET / start-up
  // (and appendfsync to the write-behind journal).
  void ApplyEvictionConfig();
  // A job that holds every shard parked (an AOF's commands replaying) calls
  // this between commands: what must not wait for it, as Redis's
  // whileBlockedCron (active defragmentation, at most every 10 ms).
  void WhileBlockedCron();
  cache::FsyncPolicy FsyncPolicyNow() const;
  // used_memory once the server was ready (used_memory_startup).
  size_t memory_startup() const { return memory_startup_; }

  uint64_t NextClientId() { return next_client_id_.fetch_add(1); }
  uint64_t NextSlowlogId() { return next_slowlog_id_.fetch_add(1); }
  // The id the next slow log entry will get: SLOWLOG GET/LEN/RESET leave out
  // the entries other shards log after they started (Redis logs a command
  // only after it ran).
  uint64_t PeekSlowlogId() const { return next_slowlog_id_.load(); }
  void ResetStats();

  int64_t start_time_ms() const { return start_time_ms_; }
  const std::string& run_id() const { return run_id_; }
  // INFO's master_replid: the run id until DEBUG CHANGE-REPL-ID draws a new one.
  std::string master_replid() const;
  void ChangeReplId();
  int listening_port() const { return port_.load(std::memory_order_relaxed); }
  void set_listening_port(int port) { port_.store(port, std::memory_order_relaxed); }  // CONFIG SET port: any thread
  // SHUTDOWN: the main thread (server/server.cc) watches this.
  void RequestShutdown() { shutdown_.store(true); }
  // SHUTDOWN saved the dump already: the main thread need not save again.
  void SetShutdownSaved() { shutdown_saved_.store(true); }
  bool shutdown_saved() const { return shutdown_saved_.load(); }
  bool shutdown_requested() const { return shutdown_.load(); }

  std::atomic<int64_t> connected_clients{0};
  std::atomic<uint64_t> total_connections_received{0};
  std::atomic<uint64_t> rejected_connections{0};
  std::atomic<uint64_t> output_limit_disconnections{0};  // client-output-buffer-limit
  std::atomic<uint64_t> total_error_replies{0};
  // instantaneous_ops_per_sec: samples taken by shard 0's cron.
  std::atomic<uint64_t> ops_per_sec{0};

 private:
  void RecordCommandLatency(const CommandSpec* spec, int64_t duration_us);
  void AddSlowlog(Shard* shard, std::span<const std::string_view> args, int64_t duration_us,
                  const ClientState* client);
  bool PausedNow(uint32_t flags) const;
  bool AdmitOverLimit(Shard& shard);
  void AccountAndEvict(Shard& shard);
  void EvictBeforeGrowth(Shard& shard);
  void Cron(Shard& shard);
  void BlockedTimeoutCron(Shard& shard);
  void OpsSampleCron();
  void EvictionCron(Shard& shard);
  void DefragSlice(Shard& shard);
  // Frees this shard's share of `over` (whole: all of it, see BeforeGrowth).
  size_t EvictShare(Shard& shard, int64_t over, bool whole = false);
  void AfterEvents(Shard& shard);
  bool InitUsers(std::string* err);

  Config* config_;
  // Before the shards and their clients: a client closed as they go still
  // unregisters from it.
  std::unique_ptr<Tracking> tracking_ = std::make_unique<Tracking>();
  std::unique_ptr<ShardSet> shards_;
  std::vector<std::unique_ptr<EngineShard>> locals_;
  std::unique_ptr<MemoryBudget> memory_;
  std::unique_ptr<LazyFreer> lazy_freer_;
  std::unique_ptr<acl::CommandTable> acl_table_;
  std::unique_ptr<acl::Users> users_;
  std::unique_ptr<EngineCacheHost> cache_host_;
  std::unique_ptr<cache::CacheManager> cache_;
  std::unique_ptr<PubSub> pubsub_;
  std::unique_ptr<Persistence> persistence_;
  std::unique_ptr<ActiveDefrag> defrag_;
  std::unique_ptr<Propagation> propagation_ = std::make_unique<Propagation>();
  std::unique_ptr<Aof> aof_;
  size_t memory_startup_ = 0;
  int64_t last_blocked_cron_us_ = 0;  // WhileBlockedCron (a parked job's thread)

  std::atomic<bool> shutdown_{false};
  std::atomic<bool> shutdown_saved_{false};
  std::atomic<uint64_t> next_client_id_{1};
  std::atomic<uint64_t> next_slowlog_id_{0};
  std::atomic<int64_t> pause_until_ms_{0};
  std::atomic<bool> pause_all_{false};
  int64_t start_time_ms_;
  std::string run_id_;
  mutable std::mutex replid_mu_;
  std::string replid_;  // empty: the run id
  std::atomic<int> port_{0};

  std::mutex latency_mu_;
  std::map<std::string, LatencyEvent> latency_;

  std::mutex monitor_mu_;
  std::vector<std::pair<int, uint64_t>> monitors_;
  std::atomic<uint64_t> block_tickets_{0};
  std::atomic<int> monitor_count_{0};

  // Throughput sampling (shard 0's thread only).
  std::deque<std::pair<int64_t, uint64_t>> ops_samples_;
};

}  // namespace larder
