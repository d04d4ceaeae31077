// Server configuration: redis.conf syntax, command-line overrides, CONFIG
// GET/SET/REWRITE. Each option is declared once in config.cc's table (name,
// type, range, default, whether CONFIG SET may change it); the file loader,
// the command line and CONFIG all read that table.
//
// Values that shard threads read on the hot path are atomics in Config itself;
// string values are read under a lock. CONFIG SET runs on a client's thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cache/rules.h"

namespace larder {

// The CPUs this process may run on (its affinity mask), and the default
// number of shard threads for them.
int UsableCores();
int DefaultThreads();

// A protected action's setting (enable-debug-command and the like: 0 no,
// 1 yes, 2 local) allows it for a client, loopback or not.
inline bool AllowProtectedAction(int64_t mode, bool loopback_client) {
  return mode == 1 || (mode == 2 && loopback_client);
}

class Config {
 public:
  // kMemoryPercent: a memory value or "<n>%" (maxmemory-clients), kept as
  // the bytes or as -n.
  enum class Type { kBool, kInt, kMemory, kMemoryPercent, kEnum, kString };
  struct Option {
    std::string name;
    Type type;
    int64_t min = 0, max = 0;
    std::vector<std::string> enum_values;
    std::string default_value;
    bool immutable = false;            // set at start-up only
    // CONFIG SET only where enable-protected-configs allows it (paths the
    // server writes to: dir, dbfilename, ...), as Redis's PROTECTED_CONFIG.
    bool protected_config = false;
    std::atomic<int64_t>* int_target = nullptr;  // kBool/kInt/kMemory/kEnum (enum index)
    std::string text;                  // current value as CONFIG GET prints it
    std::vector<std::string> aliases;
    // Refuses a parsed value with Redis's reason (activedefrag yes), at
    // start-up and in CONFIG SET alike.
    bool (*check)(int64_t value, std::string* err) = nullptr;
    // The same for a string value (dbfilename must be a file name).
    bool (*check_text)(std::string_view value, std::string* err) = nullptr;
    // A list of words (bind, save, client-output-buffer-limit): CONFIG
    // REWRITE writes the words, each quoted if it needs it, not one string.
    bool words = false;
    // Any bytes (requirepass, as Redis's binary-safe settings): CONFIG
    // REWRITE escapes line breaks and NULs. Every other setting refuses them.
    bool binary_safe = false;
    // Makes a new value take effect (port, bind: listen again); installed
    // by the server once it runs. An option with one is settable at runtime
    // even if it is immutable otherwise.
    std::function<bool(std::string* err)> apply;
  };

  Config();
  Config(const Config&) = delete;

  // Loads a redis.conf-style file. On failure `err` holds Redis's fatal
  // message naming the line.
  bool LoadFile(const std::string& path, std::string* err);
  // Applies "--name value ..." arguments (after the optional config file).
  bool ApplyArgs(const std::vector<std::string>& args, std::string* err);
  // Sets one option. `startup` allows immutable options. On failure `err` is
  // the reason as Redis words it ("argument couldn't be parsed into an integer").
  bool Set(std::string_view name, std::string_view value, bool startup, std::string* err);
  // Whether `name` (or an alias) is a known option.
  bool Known(std::string_view name) const;
  // Whether CONFIG SET may change it (known, and mutable or with an apply hook).
  bool Settable(std::string_view name) const;
  // Whether it is a protected config (see Option::protected_config).
  bool Protected(std::string_view name) const;
  // The option's canonical name (for an alias, the name it stands for).
  std::string CanonicalName(std::string_view name) const;
  // Installs the apply hook of an option (see Option::apply).
  void SetApplyHook(std::string_view name, std::function<bool(std::string* err)> hook);
  // Runs the option's apply hook, if any: false and the reason if it fails.
  bool Apply(std::string_view name, std::string* err);
  bool HasApplyHook(std::string_view name) const;
  std::optional<std::string> Get(std::string_view name) const;
  // (name, value) pairs whose name or alias matches the glob pattern.
  std::vector<std::pair<std::string, std::string>> Match(std::string_view pattern) const;
  // CONFIG REWRITE: rewrites the loaded file in place, keeping comments and
  // unknown lines, updating changed options, appending new ones.
  bool Rewrite(std::string* err);
  std::string StartupValue(std::string_view name, const std::string& value);
  bool ApplyLine(const std::string& trimmed, int line_no, std::string* err);
  // client-output-buffer-limit's parser (see config.cc).
  bool SetOutputLimits(std::string_view value, std::string* text, std::string* err);
  const std::string& file() const { return file_; }

  // cache-source / cache-rule directives, in file order (checked when read;
  // a rule's source must be declared before it). The server owns them at
  // runtime and hands back the current list for CONFIG REWRITE.
  const std::vector<cache::SourceSpec>& cache_sources() const { return cache_sources_; }
  const std::vector<cache::Rule>& cache_rules() const { return cache_rules_; }
  // cache-warm <pattern> <query>: warming runs started with the server.
  const std::vector<std::pair<std::string, std::string>>& cache_warms() const { return cache_warms_; }
  // rename-command <command> <new name or "">, in file order (applied to
  // the command table at start-up).
  const std::vector<std::pair<std::string, std::string>>& renamed_commands() const { return renamed_commands_; }
  void SetCacheDirectives(std::vector<cache::SourceSpec> sources, std::vector<cache::Rule> rules);

  // `user <name> <rules...>` lines (file and --user), in order, each
  // without the word "user"; the engine builds the users from them. A
  // name given twice is refused when read.
  const std::vector<std::vector<std::string>>& user_lines() const { return user_lines_; }

  // CONFIG REWRITE asks it for the `user` lines to write (the engine's
  // users as they are now; none when an aclfile holds them).
  void SetUserLinesProvider(std::function<std::vector<std::string>()> provider);

  std::string requirepass() const;
  std::string aclfile() const;
  std::string dir() const;
  std::string bind() const;
  std::string logfile() const;
  std::string pidfile() const;

  // Hot values, read lock-free by any thread.
  std::atomic<int64_t> port{6379};
  std::atomic<int64_t> tls_port{0};
  std::atomic<int64_t> tls_auth_clients{1};  // 0 no, 1 yes, 2 optional
  std::atomic<int64_t> threads{0};
  std::atomic<int64_t> databases{16};
  std::atomic<int64_t> maxclients{10000};
  std::atomic<int64_t> timeout{0};
  std::atomic<int64_t> tcp_keepalive{300};  // seconds; 0: no keepalive
  std::atomic<int64_t> proto_max_bulk_len{512LL * 1024 * 1024};
  std::atomic<int64_t> client_query_buffer_limit{1024LL * 1024 * 1024};
  std::atomic<int64_t> slowlog_log_slower_than{10000};
  std::atomic<int64_t> busy_reply_threshold{5000};  // ms; alias lua-time-limit
  std::atomic<int64_t> lua_enable_deprecated_api{0};
  std::atomic<int64_t> slowlog_max_len{128};
  std::atomic<int64_t> latency_monitor_threshold{0};
  std::atomic<int64_t> latency_tracking{1};
  std::atomic<int64_t> tracking_table_max_keys{1000000};  // CLIENT TRACKING's table (0: no limit)
  std::atomic<int64_t> hz{10};
  std::atomic<int64_t> maxmemory{0};
  std::atomic<int64_t> maxmemory_policy{0};
  std::atomic<int64_t> maxmemory_samples{5};
  std::atomic<int64_t> maxmemory_eviction_tenacity{10};
  std::atomic<int64_t> lfu_log_factor{10};
  std::atomic<int64_t> lfu_decay_time{1};
  std::atomic<int64_t> loglevel{2};
  // The protected actions (no|yes|local): DEBUG, MODULE, CONFIG SET of a
  // protected config, CACHE RULE ADD/DEL.
  std::atomic<int64_t> enable_debug_command{0};  // 0 no, 1 yes, 2 local
  std::atomic<int64_t> enable_module_command{0};
  std::atomic<int64_t> enable_protected_configs{0};
  std::atomic<int64_t> enable_cache_rule_command{2};
  std::atomic<int64_t> protected_mode{1};
  std::atomic<int64_t> jemalloc_bg_thread{1};
  std::atomic<int64_t> always_show_logo{0};
  // client-output-buffer-limit, by class: hard and soft bytes (0: none)
  // and how long the soft limit may be exceeded.
  enum ClientClass { kNormalClient = 0, kReplicaClient = 1, kPubsubClient = 2, kClientClasses = 3 };
  struct OutputLimit {
    std::atomic<int64_t> hard{0}, soft{0}, soft_seconds{0};
  };
  OutputLimit output_limits[kClientClasses];
  std::atomic<int64_t> daemonize{0};
  std::atomic<int64_t> tcp_backlog{511};
  std::atomic<int64_t> hash_max_listpack_entries{128};
  std::atomic<int64_t> hash_max_listpack_value{64};
  std::atomic<int64_t> set_max_intset_entries{512};
  std::atomic<int64_t> zset_max_listpack_entries{128};
  std::atomic<int64_t> list_max_listpack_size{-2};
  std::atomic<int64_t> list_compress_depth{0};
  // Active defragmentation (engine/defrag.h).
  std::atomic<int64_t> activedefrag{0};
  std::atomic<int64_t> active_defrag_ignore_bytes{100 << 20};
  std::atomic<int64_t> active_defrag_threshold_lower{10};
  std::atomic<int64_t> active_defrag_threshold_upper{100};
  std::atomic<int64_t> active_defrag_cycle_min{1};
  std::atomic<int64_t> active_defrag_cycle_max{25};
  std::atomic<int64_t> active_defrag_max_scan_fields{1000};
  std::atomic<int64_t> lazyfree_lazy_eviction{0};
  std::atomic<int64_t> lazyfree_lazy_expire{0};
  std::atomic<int64_t> lazyfree_lazy_server_del{0};
  std::atomic<int64_t> lazyfree_lazy_user_del{0};
  std::atomic<int64_t> lazyfree_lazy_user_flush{0};
  std::atomic<int64_t> zset_max_listpack_value{64};
  std::atomic<int64_t> hll_sparse_max_bytes{3000};
  std::atomic<int64_t> stream_node_max_bytes{4096};
  std::atomic<int64_t> auto_aof_rewrite_percentage{100};
  std::atomic<int64_t> auto_aof_rewrite_min_size{64 << 20};
  std::atomic<int64_t> stream_node_max_entries{100};
  std::atomic<int64_t> acllog_max_len{128};
  // Test knobs of persistence (Redis's): microseconds per key saved / loaded.
  std::atomic<int64_t> rdb_key_save_delay{0};
  std::atomic<int64_t> key_load_delay{0};
  std::atomic<int64_t> loading_process_events_interval_bytes{2 << 20};
  std::atomic<int64_t> acl_pubsub_default{1};
  // notify-keyspace-events as NotifyClass bits (common/notify_classes.h);
  // every notification first loads it, relaxed, and stops when it is 0.
  std::atomic<uint32_t> notify_keyspace_events{0};  // 0 allchannels, 1 resetchannels

  // Redis's memtoull: digits and an optional unit. An empty value is 0; one
  // too large for 64 bits sets *overflow (Redis then reports the range).
  static bool ParseMemory(std::string_view s, int64_t* out, bool* overflow);

 private:
  Option* FindOption(std::string_view name);
  const Option* FindOption(std::string_view name) const;
  void Declare(Option opt);

  mutable std::mutex mu_;  // guards options' text and the string values
  std::vector<Option> options_;
  std::map<std::string, size_t, std::less<>> by_name_;
  std::string file_;
  std::vector<std::string> set_at_runtime_;
  std::vector<cache::SourceSpec> cache_sources_;
  std::vector<cache::Rule> cache_rules_;
  std::vector<std::pair<std::string, std::string>> cache_warms_;
  std::vector<std::pair<std::string, std::string>> renamed_commands_;
  bool save_seen_ = false;  // a `save` was read at start-up (StartupValue)
  bool cache_changed_ = false;
  std::vector<std::vector<std::string>> user_lines_;
  std::function<std::vector<std::string>()> user_lines_provider_;
  bool AddUserLine(std::vector<std::string> words, std::string* why);
};

}  // namespace larder
