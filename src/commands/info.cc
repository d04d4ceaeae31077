#include "commands/info.h"
#include "common/version.h"

#include <fmt/format.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <mutex>
#include <random>
#include <set>

#include "engine/aof.h"
#include "engine/command.h"
#include "cache/shard_cache.h"
#include "common/clock.h"
#include "keyspace/memory.h"
#include "engine/client.h"
#include "commands/dump_family.h"
#include "commands/script_run.h"
#include "script/store.h"

namespace larder {

namespace {

// Redis 7.0's scripting lines of INFO memory: the interpreters of every
// shard thread, the script cache, the libraries.
std::string ScriptMemoryLines(const std::vector<ShardSnapshot>& shards) {
  size_t vm_eval = 0, vm_functions = 0;
  for (const auto& s : shards) {
    vm_eval += s.lua_eval_memory;
    vm_functions += s.lua_functions_memory;
  }
  auto libs = script::Functions().Snapshot();
  size_t functions = 0, functions_bytes = 0;
  for (const auto& [name, lib] : *libs) {
    functions += lib.functions.size();
    functions_bytes += lib.code.size() + name.size();
  }
  size_t scripts_eval = script::Scripts().bytes();
  size_t vm_total = vm_eval + vm_functions;
  size_t scripts = scripts_eval + functions_bytes;
  return fmt::format(
      "used_memory_lua:{}\r\nused_memory_vm_eval:{}\r\nused_memory_lua_human:{}\r\nused_memory_scripts_eval:{}\r\n"
      "number_of_cached_scripts:{}\r\nnumber_of_functions:{}\r\nnumber_of_libraries:{}\r\n"
      "used_memory_vm_functions:{}\r\nused_memory_vm_total:{}\r\nused_memory_vm_total_human:{}\r\n"
      "used_memory_functions:{}\r\nused_memory_scripts:{}\r\nused_memory_scripts_human:{}\r\n",
      vm_eval, vm_eval, HumanBytes(vm_eval), scripts_eval, script::Scripts().count(), functions, libs->size(),
      vm_functions, vm_total, HumanBytes(vm_total), functions_bytes, scripts, HumanBytes(scripts));
}

}  // namespace

bool WantsCommandStats(const std::vector<std::string>& sections) {
  for (const auto& s : sections)
    if (s == "commandstats" || s == "all" || s == "everything") return true;
  return false;
}

ShardSnapshot TakeShardSnapshot(Engine* server, Shard& shard, bool per_command) {
  // used_memory as of now on this thread (a client just closed), not as of
  // its last cron; published before the snapshot is built, so that INFO's
  // own copies of the statistics do not count in the used_memory it reports.
  server->memory().PublishThread(shard.id());
  ShardSnapshot s;
  for (auto& db : shard.dbs()) s.dbs.emplace_back(db.size(), db.expires());
  s.stats = shard.stats();
  EngineShard& l = server->local(shard.id());
  if (per_command) s.cmd_stats = l.cmd_stats;
  for (const auto& c : l.cmd_stats) s.total_calls += c.calls;
  s.error_stats = l.error_stats;
  s.clients = l.clients.size();
  s.lua_eval_memory = ScriptMemoryHere(false);
  s.lua_functions_memory = ScriptMemoryHere(true);
  for (const auto& [id, client] : l.clients) {
    Client::Memory m = client->MemoryUsage();
    s.client_memory += m.total;
    s.max_client_input = std::max(s.max_client_input, m.input);
    s.max_client_output = std::max(s.max_client_output, m.output);
  }
  for (const auto& w : l.blocked) {
    if (w->done.load()) continue;
    ++s.blocked;
    if (w->deadline_ms) ++s.blocked_timeout;
  }
  s.blocked += l.paused.size();
  s.cache_pending = server->cache().shard(shard.id()).pending();
  return s;
}

namespace {

void Section(std::string& out, const char* title) {
  if (!out.empty()) out += "\r\n";
  out += fmt::format("# {}\r\n", title);
}

}  // namespace

std::string BuildInfo(Engine* server, const std::vector<ShardSnapshot>& shards,
                      const std::vector<std::string>& sections) {
  std::set<std::string> want(sections.begin(), sections.end());
  bool all = want.count("all") || want.count("everything");
  bool deflt = want.empty() || want.count("default");
  auto on = [&](const char* name, bool in_default = true) {
    return all || (deflt && in_default) || want.count(name) > 0;
  };

  KeyspaceStats ks;
  uint64_t total_commands = 0;
  std::vector<CommandStat> cmds(Commands().all().size());
  std::map<std::string, uint64_t> errors;
  size_t num_dbs = shards.empty() ? 0 : shards[0].dbs.size();
  std::vector<std::pair<size_t, size_t>> dbs(num_dbs);
  for (const auto& s : shards) {
    ks.keyspace_hits += s.stats.keyspace_hits;
    ks.keyspace_misses += s.stats.keyspace_misses;
    ks.expired_keys += s.stats.expired_keys;
    ks.evicted_keys += s.stats.evicted_keys;
    ks.expire_cycle_cpu_us += s.stats.expire_cycle_cpu_us;
    for (size_t i = 0; i < s.cmd_stats.size() && i < cmds.size(); ++i) {
      cmds[i].calls += s.cmd_stats[i].calls;
      cmds[i].usec += s.cmd_stats[i].usec;
      cmds[i].rejected += s.cmd_stats[i].rejected;
      cmds[i].failed += s.cmd_stats[i].failed;
    }
    total_commands += s.total_calls;
    for (auto& [k, v] : s.error_stats) errors[k] += v;
    for (size_t i = 0; i < num_dbs; ++i) {
      dbs[i].first += s.dbs[i].first;
      dbs[i].second += s.dbs[i].second;
    }
  }

  Config& cfg = server->config();
  int64_t now_ms = UnixTimeMs();
  int64_t uptime = (now_ms - server->start_time_ms()) / 1000;
  std::string out;

  if (on("server")) {
    utsname u;
    uname(&u);
    Section(out, "Server");
    out += fmt::format("redis_version:{}\r\n", kRedisVersion);  // common/version.h
    out += fmt::format(
        "larder_version:0.1.0\r\nredis_git_sha1:00000000\r\nredis_git_dirty:0\r\n"
        "redis_build_id:0\r\nredis_mode:standalone\r\nos:{} {} {}\r\narch_bits:64\r\nmonotonic_clock:POSIX clock_gettime\r\n"
        "multiplexing_api:epoll\r\natomicvar_api:c11-builtin\r\ngcc_version:{}.{}.{}\r\nprocess_id:{}\r\n"
        "process_supervised:no\r\nrun_id:{}\r\ntcp_port:{}\r\nserver_time_usec:{}\r\nuptime_in_seconds:{}\r\n"
        "uptime_in_days:{}\r\nhz:{}\r\nconfigured_hz:{}\r\nlru_clock:{}\r\nexecutable:larder-server\r\n"
        "config_file:{}\r\nio_threads_active:0\r\nthreads:{}\r\n",
        u.sysname, u.release, u.machine, __GNUC__, __GNUC_MINOR__, __GNUC_PATCHLEVEL__, getpid(),
        server->run_id(), server->listening_port(), UnixTimeUs(), uptime, uptime / 86400, cfg.hz.load(),
        cfg.hz.load(), (now_ms / 1000) & ((1 << 24) - 1), cfg.file(), server->shards().size());
  }
  MemoryReport mem = ReadMemory();
  mem.used = server->memory().UsedMemory();
  if (on("clients")) {
    size_t blocked = 0, in_timeout = 0, max_in = 0, max_out = 0;
    for (const auto& s : shards) {
      blocked += s.blocked;
      in_timeout += s.blocked_timeout;
      max_in = std::max(max_in, s.max_client_input);
      max_out = std::max(max_out, s.max_client_output);
    }
    Section(out, "Clients");
    out += fmt::format(
        "connected_clients:{}\r\ncluster_connections:0\r\nmaxclients:{}\r\nclient_recent_max_input_buffer:{}\r\n"
        "client_recent_max_output_buffer:{}\r\nblocked_clients:{}\r\ntracking_clients:{}\r\n"
        "clients_in_timeout_table:{}\r\n",
        server->connected_clients.load(), cfg.maxclients.load(), max_in, max_out, blocked,
        server->tracking().clients(), in_timeout);
  }
  if (on("memory")) {
    Section(out, "Memory");
    // (counted in used_memory too: every allocation is)
    size_t client_memory = 0;
    for (const auto& s : shards) client_memory += s.client_memory;
    size_t peak = std::max<size_t>(mem.used, static_cast<size_t>(server->memory().peak()));
    size_t startup = std::min(mem.used, server->memory_startup());
    size_t dataset = mem.used - startup;
    int64_t maxmem = cfg.maxmemory.load();
    double frag = mem.used ? static_cast<double>(mem.rss) / static_cast<double>(mem.used) : 0;
    double alloc_frag = mem.allocator_allocated
                            ? static_cast<double>(mem.allocator_active) / static_cast<double>(mem.allocator_allocated)
                            : 0;
    out += fmt::format(
        "used_memory:{}\r\nused_memory_human:{}\r\nused_memory_rss:{}\r\nused_memory_rss_human:{}\r\n"
        "used_memory_peak:{}\r\nused_memory_peak_human:{}\r\nused_memory_peak_perc:{:.2f}%\r\n"
        "used_memory_overhead:{}\r\nused_memory_startup:{}\r\nused_memory_dataset:{}\r\n"
        "used_memory_dataset_perc:{:.2f}%\r\n"
        "allocator_allocated:{}\r\nallocator_active:{}\r\nallocator_resident:{}\r\n"
        "total_system_memory:{}\r\ntotal_system_memory_human:{}\r\n"
        "{}"
        "maxmemory:{}\r\nmaxmemory_human:{}\r\nmaxmemory_policy:{}\r\n"
        "allocator_frag_ratio:{:.2f}\r\nallocator_frag_bytes:{}\r\n"
        "mem_fragmentation_ratio:{:.2f}\r\nmem_fragmentation_bytes:{}\r\n"
        "mem_not_counted_for_evict:0\r\nmem_allocator:{}\r\n"  // (no AOF buffer, no replicas)
        "mem_clients_slaves:0\r\nmem_clients_normal:{}\r\nactive_defrag_running:{}\r\n"
        "lazyfree_pending_objects:{}\r\nlazyfreed_objects:{}\r\n",
        mem.used, HumanBytes(mem.used), mem.rss, HumanBytes(mem.rss), peak, HumanBytes(peak),
        peak ? 100.0 * static_cast<double>(mem.used) / static_cast<double>(peak) : 0.0, startup, startup, dataset,
        mem.used ? 100.0 * static_cast<double>(dataset) / static_cast<double>(mem.used) : 0.0,
        mem.allocator_allocated, mem.allocator_active, mem.allocator_resident, TotalSystemMemory(),
        HumanBytes(TotalSystemMemory()), ScriptMemoryLines(shards), maxmem, HumanBytes(static_cast<size_t>(maxmem)),
        kPolicyNames[std::clamp<int64_t>(cfg.maxmemory_policy.load(), 0, 9)], alloc_frag,
        static_cast<int64_t>(mem.allocator_active) - static_cast<int64_t>(mem.allocator_allocated), frag,
        static_cast<int64_t>(mem.rss) - static_cast<int64_t>(mem.used), AllocatorName(), client_memory,
        server->defrag().running(),
        LazyFreer::Current() ? LazyFreer::Current()->pending() : 0, LazyFreer::Current() ? LazyFreer::Current()->freed() : 0);
  }
  if (on("persistence")) {
    Section(out, "Persistence");
    server->persistence().AppendInfo(out);
    server->aof().AppendInfo(out);  // the aof_* fields (engine/aof.h)
  }
  if (on("stats")) {
    Section(out, "Stats");
    DefragCounters defrag = server->defrag().Totals();
    uint64_t in = 0, outb = 0;
    for (int i = 0; i < server->shards().size(); ++i) {
      in += server->local(i).net_input_bytes.load(std::memory_order_relaxed);
      outb += server->local(i).net_output_bytes.load(std::memory_order_relaxed);
    }
    out += fmt::format(
        "total_connections_received:{}\r\ntotal_commands_processed:{}\r\ninstantaneous_ops_per_sec:{}\r\n"
        "total_net_input_bytes:{}\r\ntotal_net_output_bytes:{}\r\nrejected_connections:{}\r\n"
        "expired_keys:{}\r\nexpired_stale_perc:0.00\r\nexpired_time_cap_reached_count:0\r\n"
        "expire_cycle_cpu_milliseconds:{}\r\nevicted_keys:{}\r\nevicted_clients:0\r\n"
        "keyspace_hits:{}\r\nkeyspace_misses:{}\r\npubsub_channels:{}\r\npubsub_patterns:{}\r\n"
        "pubsubshard_channels:{}\r\n"
        "latest_fork_usec:0\r\ntotal_forks:0\r\nmigrate_cached_sockets:{}\r\n"
        "active_defrag_hits:{}\r\nactive_defrag_misses:{}\r\nactive_defrag_key_hits:{}\r\n"
        "active_defrag_key_misses:{}\r\n"
        "tracking_total_keys:{}\r\ntracking_total_items:{}\r\n"
        "tracking_total_prefixes:{}\r\ntotal_error_replies:{}\r\n"
        "client_output_buffer_limit_disconnections:{}\r\n",
        server->total_connections_received.load(), total_commands, server->ops_per_sec.load(), in, outb,
        server->rejected_connections.load(), ks.expired_keys, ks.expire_cycle_cpu_us / 1000,
        ks.evicted_keys, ks.keyspace_hits, ks.keyspace_misses, server->pubsub().Count(PubSubKind::kChannel),
        server->pubsub().Count(PubSubKind::kPattern), server->pubsub().Count(PubSubKind::kShard),
        MigrateCachedSockets(), defrag.hits, defrag.misses, defrag.key_hits, defrag.key_misses,
        server->tracking().keys.load(), server->tracking().items.load(), server->tracking().prefixes(),
        server->total_error_replies.load(),
        server->output_limit_disconnections.load());
  }
  if (on("replication")) {
    Section(out, "Replication");
    out += fmt::format(
        "role:master\r\nconnected_slaves:0\r\nmaster_failover_state:no-failover\r\nmaster_replid:{}\r\n"
        "master_replid2:0000000000000000000000000000000000000000\r\nmaster_repl_offset:0\r\n"
        "second_repl_offset:-1\r\nrepl_backlog_active:0\r\nrepl_backlog_size:1048576\r\n"
        "repl_backlog_first_byte_offset:0\r\nrepl_backlog_histlen:0\r\n",
        server->master_replid());
  }
  if (on("cpu")) {
    rusage self, children;
    getrusage(RUSAGE_SELF, &self);
    getrusage(RUSAGE_CHILDREN, &children);
    auto secs = [](const timeval& tv) { return static_cast<double>(tv.tv_sec) + tv.tv_usec / 1e6; };
    Section(out, "CPU");
    out += fmt::format(
        "used_cpu_sys:{:.6f}\r\nused_cpu_user:{:.6f}\r\nused_cpu_sys_children:{:.6f}\r\n"
        "used_cpu_user_children:{:.6f}\r\n",
        secs(self.ru_stime), secs(self.ru_utime), secs(children.ru_stime), secs(children.ru_utime));
  }
  if (on("modules")) Section(out, "Modules");
  if (on("commandstats", false)) {
    Section(out, "Commandstats");
    for (const CommandSpec* spec : Commands().all()) {
      const CommandStat& c = cmds[static_cast<size_t>(spec->id)];
      if (c.calls == 0 && c.rejected == 0 && c.failed == 0) continue;
      out += fmt::format("cmdstat_{}:calls={},usec={},usec_per_call={:.2f},rejected_calls={},failed_calls={}\r\n",
                         spec->name, c.calls, c.usec,
                         c.calls ? static_cast<double>(c.usec) / static_cast<double>(c.calls) : 0.0,
                         c.rejected, c.failed);
    }
  }
  if (on("errorstats")) {
    Section(out, "Errorstats");
    for (auto& [k, v] : errors) out += fmt::format("errorstat_{}:count={}\r\n", k, v);
  }
  if (on("cluster")) {
    Section(out, "Cluster");
    out += "cluster_enabled:0\r\n";
  }
  if (on("cache")) {
    // Read-through: one line per rule and per source.
    Section(out, "Cache");
    auto rules = server->cache().rules();
    auto sources = server->cache().source_specs();
    size_t pending = 0;
    for (const auto& s : shards) pending += s.cache_pending;
    out += fmt::format("cache_rules:{}\r\ncache_sources:{}\r\ncache_loads_running:{}\r\n", rules->size(),
                       sources.size(), pending);
    for (size_t i = 0; i < rules->size(); ++i) {
      const auto& r = *(*rules)[i];
      const auto& st = r.stats;
      auto ld = [](const std::atomic<uint64_t>& a) { return a.load(std::memory_order_relaxed); };
      out += fmt::format(
          "rule{}:pattern={},source={},hits={},misses={},loads={},load_errors={},coalesced={},negative_hits={},"
          "early_refreshes={},stale_served={},loads_running={},load_p50_us={},load_p99_us={},writes_through={},"
          "write_errors={},outdated_loads={},batches={},batched_keys={}\r\n",
          i, r.rule.pattern.text(), r.rule.source, ld(st.hits), ld(st.misses), ld(st.loads), ld(st.load_errors),
          ld(st.coalesced), ld(st.negative_hits), ld(st.early_refreshes), ld(st.stale_served),
          r.inflight.load(std::memory_order_relaxed), st.LatencyPercentileUs(0.5), st.LatencyPercentileUs(0.99),
          ld(st.writes_through), ld(st.write_errors), ld(st.outdated_loads), ld(st.batches), ld(st.batched_keys));
      if (r.writes) {
        // Write-behind: changes accepted, their journal, what waits, what
        // reached the database, and how many changes each row stood for.
        uint64_t queued = ld(st.writes_queued), rows = ld(st.rows_written);
        cache::Journal* j = server->cache().journal();
        out += fmt::format(
            "rule{}_write_behind:writes_queued={},journal_bytes={},queue_depth={},flush_batches={},rows_written={},"
            "coalescing_ratio={:.2f},lag_ms={},write_errors={},retries={},dead_letters={}\r\n",
            i, queued, j ? j->bytes() : 0, r.writes->depth(), ld(st.flush_batches), rows,
            rows ? static_cast<double>(queued) / static_cast<double>(rows) : 0.0, r.writes->lag_ms(),
            ld(st.write_errors), ld(st.retries), ld(st.dead_letters));
      }
    }
    if (cache::Journal* j = server->cache().journal())
      out += fmt::format("write_behind_journal:bytes={},dead_letters={}\r\n", j->bytes(),
                         server->cache().dead_letters().size());
    size_t warm_index = 0;
    for (const auto& job : server->cache().warm_jobs()) {
      static const char* kStates[] = {"running", "done", "failed"};
      int state = job->state.load();
      int64_t end = state == 0 ? UnixTimeMs() : job->finished_ms.load();
      double secs = std::max(0.001, static_cast<double>(end - job->started_ms) / 1000.0);
      uint64_t done = job->rows_done.load(), total = job->rows_total.load();
      double rate = static_cast<double>(done) / secs;
      double eta = state == 0 && rate > 0 && total > done ? static_cast<double>(total - done) / rate : 0;
      out += fmt::format(
          "warm{}:pattern={},state={},rows={},total={},skipped={},rows_per_sec={:.0f},eta_sec={:.0f}\r\n",
          warm_index++, job->pattern, kStates[state], done, total, job->rows_skipped.load(), rate, eta);
    }
    for (const auto& spec : sources) {
      cache::Source* src = server->cache().source(spec.name);
      if (!src) continue;
      out += fmt::format("source_{}:kind={},up={},queries={},errors={},queued={},connects={},retries={}", spec.name,
                         spec.is_sqlite() ? "sqlite" : "postgresql", src->up() ? 1 : 0, src->queries(),
                         src->errors(), src->queued(), src->connects(), src->retries());
      // PostgreSQL: the invalidation listener, and the gaps it closed.
      if (const auto* ls = server->cache().listen_state(spec.name))
        out += fmt::format(",listening={},listen_gaps={},listen_gap_keys={}", ls->connected.load() ? 1 : 0,
                           ls->gaps.load(), ls->gap_keys.load());
      out += "\r\n";
    }
  }
  if (on("keyspace")) {
    Section(out, "Keyspace");
    for (size_t i = 0; i < dbs.size(); ++i) {
      if (dbs[i].first == 0) continue;
      out += fmt::format("db{}:keys={},expires={},avg_ttl=0\r\n", i, dbs[i].first, dbs[i].second);
    }
  }
  return out;
}

}  // namespace larder
