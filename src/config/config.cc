#include "config/config.h"

#include <fmt/format.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <climits>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "common/defrag_alloc.h"
#include "common/glob.h"
#include "common/log.h"
#include "common/notify_classes.h"
#include "common/numbers.h"
#include "common/status.h"
#include "common/strings.h"
#include "resp/parser.h"

namespace larder {

int UsableCores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    int n = CPU_COUNT(&set);
    if (n > 0) return n;
  }
  int n = static_cast<int>(std::thread::hardware_concurrency());
  return n > 0 ? n : 1;
}

int DefaultThreads() {
  // Measured (docs/benchmarks.md): on two cores or fewer the clients share
  // the cores with the server, and a second shard costs more in cross-thread
  // hops and wake-ups than it gains; one shard is cheaper per request than
  // Redis there. With more cores every core gets a shard.
  int cores = UsableCores();
  return cores <= 2 ? 1 : cores;
}

namespace {
std::string CurrentDir() {
  char buf[4096];
  if (getcwd(buf, sizeof(buf))) return buf;
  return ".";
}
}  // namespace

void Config::Declare(Option opt) {
  size_t idx = options_.size();
  by_name_[opt.name] = idx;
  for (const auto& a : opt.aliases) by_name_[a] = idx;
  options_.push_back(std::move(opt));
}

Config::Config() {
  using T = Type;
  auto num = [&](std::string name, T type, int64_t min, int64_t max, std::string def,
                 std::atomic<int64_t>* target, bool immutable = false,
                 std::vector<std::string> aliases = {}) {
    Option o;
    o.name = std::move(name);
    o.type = type;
    o.min = min;
    o.max = max;
    o.default_value = std::move(def);
    o.int_target = target;
    o.immutable = immutable;
    o.aliases = std::move(aliases);
    Declare(std::move(o));
  };
  auto en = [&](std::string name, std::vector<std::string> values, std::string def,
                std::atomic<int64_t>* target = nullptr, bool immutable = false) {
    Option o;
    o.name = std::move(name);
    o.type = T::kEnum;
    o.enum_values = std::move(values);
    o.default_value = std::move(def);
    o.int_target = target;
    o.immutable = immutable;
    Declare(std::move(o));
  };
  auto boolean = [&](std::string name, std::string def, std::atomic<int64_t>* target = nullptr,
                     bool immutable = false) {
    Option o;
    o.name = std::move(name);
    o.type = T::kBool;
    o.default_value = std::move(def);
    o.int_target = target;
    o.immutable = immutable;
    Declare(std::move(o));
  };
  auto checked = [&](std::string name, bool (*check)(int64_t, std::string*)) {
    options_[by_name_.at(name)].check = check;
  };
  auto protect = [&](std::string name) { options_[by_name_.at(name)].protected_config = true; };
  auto words = [&](std::string name) { options_[by_name_.at(name)].words = true; };
  auto str = [&](std::string name, std::string def, bool immutable = false) {
    Option o;
    o.name = std::move(name);
    o.type = T::kString;
    o.default_value = std::move(def);
    o.immutable = immutable;
    Declare(std::move(o));
  };
  const int64_t kIntMax = INT_MAX, kLongMax = LLONG_MAX;
  int cores = DefaultThreads();

  // Networking and process.
  // port and bind are immutable until the server installs their apply hooks
  // (listening again), which makes them settable at runtime.
  num("port", T::kInt, 0, 65535, "6379", &port, true);
  str("bind", "* -::*", true);
  words("bind");
  num("tcp-backlog", T::kInt, 0, kIntMax, "511", &tcp_backlog, true);
  // A Unix-domain socket beside the TCP ones (its clients count as local).
  str("unixsocket", "", true);
  str("unixsocketperm", "0", true);
  options_[by_name_.at("unixsocketperm")].check_text = [](std::string_view v, std::string* err) {
    char* end = nullptr;
    std::string text(v);
    long perm = strtol(text.c_str(), &end, 8);
    if (!text.empty() && *end == '\0' && perm >= 0 && perm <= 0777) return true;
    *err = "argument must be an octal number between 0 and 777";
    return false;
  };
  // Keepalive probes on accepted TCP connections after this many idle
  // seconds (0: none), for connections accepted from then on, as in Redis.
  num("tcp-keepalive", T::kInt, 0, kIntMax, "300", &tcp_keepalive);
  // Without a password for the default user only loopback clients are
  // served (Engine::AddClient).
  boolean("protected-mode", "yes", &protected_mode);
  num("timeout", T::kInt, 0, kIntMax, "0", &timeout);
  num("maxclients", T::kInt, 1, kIntMax, "10000", &maxclients);
  boolean("daemonize", "no", &daemonize, true);
  str("pidfile", "", true);
  str("dir", CurrentDir());
  protect("dir");  // the journal, the dead letters and every file written go there
  str("logfile", "", true);
  en("loglevel", {"debug", "verbose", "notice", "warning"}, "notice", &loglevel);
  num("databases", T::kInt, 1, kIntMax, "16", &databases, true);
  num("threads", T::kInt, 1, 256, std::to_string(cores), &threads, true);
  // Redis's I/O threads read and write sockets for its one main thread;
  // Larder's shard threads (`threads`) each do their own I/O, so there is
  // nothing for io-threads to add. A file asking for more threads than one
  // is told to say `threads` rather than get fewer threads than it asked for.
  num("io-threads", T::kInt, 1, 128, "1", nullptr, true);
  checked("io-threads", [](int64_t n, std::string* err) {
    if (n == 1) return true;
    *err = ErrorText(OpStatus::kConfigNoIoThreads);
    return false;
  });
  str("requirepass", "");
  options_[by_name_.at("requirepass")].binary_safe = true;
  // ACL. aclfile is a path the server reads and writes (ACL LOAD/SAVE): a
  // protected setting, fixed at start-up like Redis's PROTECTED_CONFIG ones.
  str("aclfile", "", true);
  en("acl-pubsub-default", {"allchannels", "resetchannels"}, "resetchannels", &acl_pubsub_default);
  num("acllog-max-len", T::kInt, 0, kLongMax, "128", &acllog_max_len);
  // Protected actions: only in the config file or on the command line may
  // they be allowed, to everyone or to loopback clients ("local").
  en("enable-debug-command", {"no", "yes", "local"}, "no", &enable_debug_command, true);
  en("enable-module-command", {"no", "yes", "local"}, "no", &enable_module_command, true);
  en("enable-protected-configs", {"no", "yes", "local"}, "no", &enable_protected_configs, true);
  // CACHE RULE ADD/DEL run SQL on a source's connection: loopback clients
  // only, unless the file says otherwise.
  en("enable-cache-rule-command", {"no", "yes", "local"}, "local", &enable_cache_rule_command, true);
  boolean("always-show-logo", "no", &always_show_logo, true);
  num("hz", T::kInt, 1, 500, "10", &hz);
  boolean("dynamic-hz", "yes");
  boolean("activerehashing", "yes");
  num("active-expire-effort", T::kInt, 1, 10, "1", nullptr);

  // TLS (net/tls.h), as Redis's tls-* options. tls-port, like port, is
  // immutable until the server installs its apply hook; the server also
  // hooks every option the TLS context is built from (a CONFIG SET of one
  // builds a new context, or is refused and the old one kept).
  // tls-auth-clients is read at each accept, as in Redis.
  num("tls-port", T::kInt, 0, 65535, "0", &tls_port, true);
  for (const char* name : {"tls-cert-file", "tls-key-file", "tls-key-file-pass", "tls-ca-cert-file", "tls-ca-cert-dir",
                           "tls-dh-params-file", "tls-protocols", "tls-ciphers", "tls-ciphersuites"})
    str(name, "");
  boolean("tls-prefer-server-ciphers", "no");
  boolean("tls-session-caching", "yes");
  num("tls-session-cache-size", T::kInt, 0, kIntMax, "20480", nullptr);
  num("tls-session-cache-timeout", T::kInt, 0, kIntMax, "300", nullptr);
  en("tls-auth-clients", {"no", "yes", "optional"}, "yes", &tls_auth_clients);
  // Larder has neither replication nor a cluster bus: TLS for them cannot
  // be honoured, so only "no" is accepted.
  boolean("tls-replication", "no");
  checked("tls-replication", [](int64_t on, std::string* err) {
    if (!on) return true;
    *err = ErrorText(OpStatus::kConfigNoTlsReplication);
    return false;
  });
  boolean("tls-cluster", "no");
  checked("tls-cluster", [](int64_t on, std::string* err) {
    if (!on) return true;
    *err = ErrorText(OpStatus::kConfigNoTlsCluster);
    return false;
  });

  // Protocol limits.
  num("proto-max-bulk-len", T::kMemory, 1024 * 1024, kLongMax, "536870912", &proto_max_bulk_len);
  num("client-query-buffer-limit", T::kMemory, 1024 * 1024, kLongMax, "1073741824",
      &client_query_buffer_limit);
  str("client-output-buffer-limit",
      "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60");
  words("client-output-buffer-limit");

  // Observability.
  num("slowlog-log-slower-than", T::kInt, -1, kLongMax, "10000", &slowlog_log_slower_than);
  // Scripts: after busy-reply-threshold ms a running script makes the
  // server answer BUSY (commands/script_family.cc).
  num("busy-reply-threshold", T::kInt, 0, kLongMax, "5000", &busy_reply_threshold, false, {"lua-time-limit"});
  boolean("lua-enable-deprecated-api", "no", &lua_enable_deprecated_api);
  num("slowlog-max-len", T::kInt, 0, kLongMax, "128", &slowlog_max_len);
  num("latency-monitor-threshold", T::kInt, 0, kLongMax, "0", &latency_monitor_threshold);
  boolean("latency-tracking", "yes", &latency_tracking);
  num("tracking-table-max-keys", T::kInt, 0, kLongMax, "1000000", &tracking_table_max_keys);
  str("notify-keyspace-events", "");

  // Memory (enforced by the eviction module).
  num("maxmemory", T::kMemory, 0, kLongMax, "0", &maxmemory);
  en("maxmemory-policy",
     {"noeviction", "allkeys-lru", "allkeys-lfu", "allkeys-random", "volatile-lru", "volatile-lfu",
      "volatile-random", "volatile-ttl", "allkeys-s3fifo", "volatile-s3fifo"},
     "noeviction", &maxmemory_policy);
  num("maxmemory-samples", T::kInt, 1, kIntMax, "5", &maxmemory_samples);
  // jemalloc returns freed memory to the system from a thread of its own
  // (a closed client's buffers leave RSS even when nothing else happens).
  boolean("jemalloc-bg-thread", "yes", &jemalloc_bg_thread);
  // Client eviction: Larder does not account clients' memory, so it cannot
  // evict them; the option takes Redis's values (and errors) but only 0,
  // "off", is accepted.
  num("maxmemory-clients", T::kMemoryPercent, 0, kLongMax, "0", nullptr);
  checked("maxmemory-clients", [](int64_t v, std::string* err) {
    if (v == 0) return true;
    *err = ErrorText(OpStatus::kConfigNoClientEviction);
    return false;
  });
  num("maxmemory-eviction-tenacity", T::kInt, 0, 100, "10", &maxmemory_eviction_tenacity);
  num("lfu-log-factor", T::kInt, 0, kIntMax, "10", &lfu_log_factor);
  num("lfu-decay-time", T::kInt, 0, kIntMax, "1", &lfu_decay_time);
  // Active defragmentation (engine/defrag.h). A build without jemalloc's
  // utilization query (sanitizers) refuses it as a Redis built without its
  // own jemalloc does, with the same message.
  boolean("activedefrag", "no", &activedefrag);
  checked("activedefrag", [](int64_t on, std::string* err) {
    if (!on || DefragSupported()) return true;
    *err = ErrorText(OpStatus::kConfigNoActiveDefrag);
    return false;
  });
  num("active-defrag-ignore-bytes", T::kMemory, 1, kLongMax, "104857600", &active_defrag_ignore_bytes);
  num("active-defrag-threshold-lower", T::kInt, 0, 1000, "10", &active_defrag_threshold_lower);
  num("active-defrag-threshold-upper", T::kInt, 0, 1000, "100", &active_defrag_threshold_upper);
  num("active-defrag-cycle-min", T::kInt, 1, 99, "1", &active_defrag_cycle_min);
  num("active-defrag-cycle-max", T::kInt, 1, 99, "25", &active_defrag_cycle_max);
  num("active-defrag-max-scan-fields", T::kInt, 1, kLongMax, "1000", &active_defrag_max_scan_fields);
  // Which deletions free big values on the lazy-free thread
  // (keyspace/lazy_free.h).
  boolean("lazyfree-lazy-eviction", "no", &lazyfree_lazy_eviction);
  boolean("lazyfree-lazy-expire", "no", &lazyfree_lazy_expire);
  boolean("lazyfree-lazy-server-del", "no", &lazyfree_lazy_server_del);
  boolean("lazyfree-lazy-user-del", "no", &lazyfree_lazy_user_del);
  boolean("lazyfree-lazy-user-flush", "no", &lazyfree_lazy_user_flush);
  // RESTORE always validates a payload deeply (rdb/reader.cc), whatever this
  // says; kept for Redis's values and CONFIG GET/SET/REWRITE.
  en("sanitize-dump-payload", {"no", "yes", "clients"}, "no");
  // Crash reporting knobs of Redis (its tests set them): Larder has no
  // crash report or memory check to turn off, so they are accepted as they are.
  boolean("crash-log-enabled", "yes");
  boolean("crash-memcheck-enabled", "yes");
  // Redis exits instead of aborting after a panic when this is yes (for
  // valgrind); Larder has no panic handler to choose either way. Immutable
  // as in Redis. Redis's corrupt-dump tests start every server with it.
  boolean("use-exit-on-panic", "no", nullptr, true);

  // Encodings of small collections.
  num("hash-max-listpack-entries", T::kInt, 0, kLongMax, "128", &hash_max_listpack_entries, false,
      {"hash-max-ziplist-entries"});
  num("hash-max-listpack-value", T::kInt, 0, kLongMax, "64", &hash_max_listpack_value, false,
      {"hash-max-ziplist-value"});

  num("set-max-intset-entries", T::kInt, 0, kLongMax, "512", &set_max_intset_entries);
  num("zset-max-listpack-entries", T::kInt, 0, kLongMax, "128", &zset_max_listpack_entries, false,
      {"zset-max-ziplist-entries"});
  num("zset-max-listpack-value", T::kInt, 0, kLongMax, "64", &zset_max_listpack_value, false,
      {"zset-max-ziplist-value"});
  // How full a list's packed nodes get (keyspace/list_value.h); a list keeps
  // the value it was made with, as in Redis.
  num("list-max-listpack-size", T::kInt, INT_MIN, kIntMax, "-2", &list_max_listpack_size, false,
      {"list-max-ziplist-size"});
  // And how many nodes at each end stay uncompressed (ds/quick_list.h; 0:
  // none is compressed), also fixed when the list is made.
  num("list-compress-depth", T::kInt, 0, kIntMax, "0", &list_compress_depth);
  num("stream-node-max-bytes", T::kMemory, 0, kLongMax, "4096", &stream_node_max_bytes);
  num("stream-node-max-entries", T::kInt, 0, kLongMax, "100", &stream_node_max_entries);
  num("hll-sparse-max-bytes", T::kMemory, 0, kLongMax, "3000", &hll_sparse_max_bytes);

  // Read-through: the channel PostgreSQL sources LISTEN on for keys to drop.
  str("cache-invalidation-channel", "larder_invalidate", true);

  // Persistence (accepted now, used by the persistence module).
  str("save", "3600 1 300 100 60 10000");
  words("save");
  str("dbfilename", "dump.rdb");
  protect("dbfilename");
  options_[by_name_.at("dbfilename")].check_text = [](std::string_view v, std::string* err) {
    if (v.find('/') == std::string_view::npos) return true;
    *err = "dbfilename can't be a path, just a filename";
    return false;
  };
  str("appenddirname", "appendonlydir", true);
  boolean("appendonly", "no");
  en("appendfsync", {"always", "everysec", "no"}, "everysec");
  str("appendfilename", "appendonly.aof", true);
  // The AOF (engine/aof.h) reads these.
  boolean("aof-load-truncated", "yes");
  boolean("aof-use-rdb-preamble", "yes");
  boolean("aof-timestamp-enabled", "no");
  boolean("aof-rewrite-incremental-fsync", "yes");
  boolean("rdb-save-incremental-fsync", "yes");
  num("auto-aof-rewrite-percentage", T::kInt, 0, kIntMax, "100", &auto_aof_rewrite_percentage);
  num("auto-aof-rewrite-min-size", T::kMemory, 0, kLongMax, "64mb", &auto_aof_rewrite_min_size);
  boolean("stop-writes-on-bgsave-error", "yes");
  boolean("rdbcompression", "yes");
  boolean("rdbchecksum", "yes");
  // Slow a snapshot's scan (one key per this many µs, at the 10 ms cron's
  // pace) or a load, as Redis's tests do to catch a save or load running.
  // A negative key-load-delay -n sleeps 1 µs every n keys (Redis: on
  // average).
  num("rdb-key-save-delay", T::kInt, 0, kIntMax, "0", &rdb_key_save_delay);
  num("key-load-delay", T::kInt, INT_MIN, kIntMax, "0", &key_load_delay);
  // How many bytes of a file a load reads between its progress reports
  // (INFO loading_loaded_bytes / loading_loaded_perc); Redis also serves
  // events at that pace, which Larder's shards do all along.
  num("loading-process-events-interval-bytes", T::kInt, 1024, kIntMax, "2097152",
      &loading_process_events_interval_bytes);

  for (auto& o : options_) {
    std::string err;
    Set(o.name, o.default_value, true, &err);
  }
  set_at_runtime_.clear();
}

Config::Option* Config::FindOption(std::string_view name) {
  auto it = by_name_.find(AsciiLower(name));
  return it == by_name_.end() ? nullptr : &options_[it->second];
}
const Config::Option* Config::FindOption(std::string_view name) const {
  auto it = by_name_.find(AsciiLower(name));
  return it == by_name_.end() ? nullptr : &options_[it->second];
}

bool Config::Known(std::string_view name) const { return FindOption(name) != nullptr; }

bool Config::Settable(std::string_view name) const {
  std::lock_guard lock(mu_);
  const Option* o = FindOption(name);
  return o && (!o->immutable || o->apply);
}

bool Config::Protected(std::string_view name) const {
  std::lock_guard lock(mu_);
  const Option* o = FindOption(name);
  return o && o->protected_config;
}

std::string Config::CanonicalName(std::string_view name) const {
  const Option* o = FindOption(name);
  return o ? o->name : AsciiLower(name);
}

void Config::SetApplyHook(std::string_view name, std::function<bool(std::string* err)> hook) {
  std::lock_guard lock(mu_);
  if (Option* o = FindOption(name)) o->apply = std::move(hook);
}

void Config::SetUserLinesProvider(std::function<std::vector<std::string>()> provider) {
  std::lock_guard lock(mu_);
  user_lines_provider_ = std::move(provider);
}

bool Config::HasApplyHook(std::string_view name) const {
  std::lock_guard lock(mu_);
  const Option* o = FindOption(name);
  return o && o->apply;
}

bool Config::Apply(std::string_view name, std::string* err) {
  std::function<bool(std::string*)> hook;
  {
    std::lock_guard lock(mu_);
    const Option* o = FindOption(name);
    if (!o || !o->apply) return true;
    hook = o->apply;
  }
  // Outside the lock: the hook reads the configuration itself.
  return hook(err);
}

bool Config::ParseMemory(std::string_view s, int64_t* out, bool* overflow) {
  // Redis memtoull: digits then an optional unit (k, kb, m, mb, g, gb; any case).
  *overflow = false;
  if (s.empty()) {
    *out = 0;  // strtoull of "" is 0, without an error
    return true;
  }
  size_t i = 0;
  if (i < s.size() && s[i] == '-') return false;
  while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i;
  std::string unit = AsciiLower(s.substr(i));
  int64_t mul;
  if (unit.empty() || unit == "b") mul = 1;
  else if (unit == "k") mul = 1000;
  else if (unit == "kb") mul = 1024;
  else if (unit == "m") mul = 1000 * 1000;
  else if (unit == "mb") mul = 1024 * 1024;
  else if (unit == "g") mul = 1000LL * 1000 * 1000;
  else if (unit == "gb") mul = 1024LL * 1024 * 1024;
  else return false;
  int64_t v;
  if (i == 0 || !ParseInt64(s.substr(0, i), &v)) {
    // Allow leading zeros ("0100") as strtoull does.
    if (i == 0) return false;
    v = 0;
    for (size_t k = 0; k < i; ++k) {
      if (v > (LLONG_MAX - (s[k] - '0')) / 10) {
        *overflow = true;
        return false;
      }
      v = v * 10 + (s[k] - '0');
    }
  }
  if (v > LLONG_MAX / mul) {
    *overflow = true;
    return false;
  }
  *out = v * mul;
  return true;
}

bool Config::Set(std::string_view name, std::string_view value, bool startup, std::string* err) {
  std::lock_guard lock(mu_);
  Option* o = FindOption(name);
  if (!o) {
    *err = "Bad directive or wrong number of arguments";
    return false;
  }
  if (o->immutable && !startup && !o->apply) {
    *err = "can't set immutable config";
    return false;
  }
  // A value must survive CONFIG REWRITE and the next start's reading of the
  // file: no line breaks, no NUL, except where any bytes are a value (the
  // rewrite escapes them there).
  if (!o->binary_safe && value.find_first_of(std::string_view("\r\n\0", 3)) != std::string_view::npos) {
    *err = "argument must not contain line breaks or NUL bytes";
    return false;
  }
  int64_t iv = 0;
  std::string text(value);
  switch (o->type) {
    case Type::kBool: {
      std::string v = AsciiLower(value);
      if (v != "yes" && v != "no") {
        *err = "argument must be 'yes' or 'no'";
        return false;
      }
      iv = v == "yes";
      text = v;
      break;
    }
    case Type::kInt: {
      if (!ParseInt64(value, &iv)) {
        *err = "argument couldn't be parsed into an integer";
        return false;
      }
      if (iv < o->min || iv > o->max) {
        *err = fmt::format("argument must be between {} and {} inclusive", o->min, o->max);
        return false;
      }
      text = std::to_string(iv);
      break;
    }
    case Type::kMemory: {
      bool overflow;
      if (!ParseMemory(value, &iv, &overflow)) {
        *err = overflow ? fmt::format("argument must be between {} and {} inclusive", o->min, o->max)
                        : "argument must be a memory value";
        return false;
      }
      if (iv < o->min || iv > o->max) {
        *err = fmt::format("argument must be between {} and {} inclusive", o->min, o->max);
        return false;
      }
      text = std::to_string(iv);
      break;
    }
    case Type::kMemoryPercent: {
      // Redis's memory-or-percent values: "<n>%" (n at most 100), else a
      // memory value.
      const char* kBad = "argument must be a memory or percent value";
      if (!value.empty() && value.back() == '%') {
        std::string_view digits = value.substr(0, value.size() - 1);
        if (!ParseInt64(digits, &iv) || iv < 0) {
          *err = kBad;
          return false;
        }
        if (iv > 100) {
          *err = "percentage argument must be less or equal to 100";
          return false;
        }
        text = iv == 0 ? "0" : std::to_string(iv) + "%";
        iv = -iv;
        break;
      }
      bool overflow;
      if (!ParseMemory(value, &iv, &overflow) || iv < o->min || iv > o->max) {
        *err = kBad;
        return false;
      }
      text = std::to_string(iv);
      break;
    }
    case Type::kEnum: {
      std::string v = AsciiLower(value);
      auto it = std::find(o->enum_values.begin(), o->enum_values.end(), v);
      if (it == o->enum_values.end()) {
        std::string all;
        for (size_t i = 0; i < o->enum_values.size(); ++i) {
          if (i) all += ", ";
          all += o->enum_values[i];
        }
        *err = "argument(s) must be one of the following: " + all;
        return false;
      }
      iv = it - o->enum_values.begin();
      text = v;
      break;
    }
    case Type::kString:
      if (o->name == "client-output-buffer-limit" && !SetOutputLimits(value, &text, err)) return false;
      if (o->name == "notify-keyspace-events") {
        std::optional<uint32_t> classes = ParseNotifyClasses(value);
        if (!classes) {
          *err = "Invalid event class character. Use 'Ag$lshzxeKEtmdn'.";
          return false;
        }
        notify_keyspace_events.store(*classes, std::memory_order_relaxed);
        text = FormatNotifyClasses(*classes);
      }
      if (o->name == "dir" && !startup) {
        if (chdir(text.c_str()) != 0) {
          *err = std::string(strerror(errno));
          return false;
        }
        text = CurrentDir();
      }
      if (o->name == "dir" && startup) {
        if (chdir(text.c_str()) != 0) {
          *err = "No such file or directory";
          return false;
        }
        text = CurrentDir();
      }
      break;
  }
  if (o->check && !o->check(iv, err)) return false;
  if (o->check_text && !o->check_text(text, err)) return false;
  if (o->name == "loglevel") SetLogLevel(static_cast<LogLevel>(iv));
  if (o->int_target) o->int_target->store(iv);
  o->text = std::move(text);
  if (std::find(set_at_runtime_.begin(), set_at_runtime_.end(), o->name) == set_at_runtime_.end())
    set_at_runtime_.push_back(o->name);
  return true;
}

// As Redis: "<class> <hard> <soft> <soft seconds>" groups, all checked
// before any is taken; classes not named keep their limits. `text` becomes
// all three classes, as CONFIG GET prints them.
bool Config::SetOutputLimits(std::string_view value, std::string* text, std::string* err) {
  std::vector<std::string> words;
  resp::SplitInlineArgs(value, &words);
  if (words.size() % 4 != 0) {
    *err = "Wrong number of arguments in buffer limit configuration.";
    return false;
  }
  struct Parsed {
    int cls;
    int64_t hard, soft, seconds;
  };
  std::vector<Parsed> parsed;
  for (size_t i = 0; i < words.size(); i += 4) {
    std::string cls = AsciiLower(words[i]);
    int c = cls == "normal" ? kNormalClient
            : cls == "slave" || cls == "replica" ? kReplicaClient
            : cls == "pubsub" ? kPubsubClient
                              : -1;
    if (c < 0) {
      *err = "Invalid client class specified in buffer limit configuration.";
      return false;
    }
    Parsed p{c, 0, 0, 0};
    bool overflow;
    if (!ParseMemory(words[i + 1], &p.hard, &overflow) || !ParseMemory(words[i + 2], &p.soft, &overflow) ||
        !ParseInt64(words[i + 3], &p.seconds) || p.seconds < 0) {
      *err = "Error in hard, soft or soft_seconds setting in buffer limit configuration.";
      return false;
    }
    parsed.push_back(p);
  }
  for (const auto& p : parsed) {
    output_limits[p.cls].hard.store(p.hard);
    output_limits[p.cls].soft.store(p.soft);
    output_limits[p.cls].soft_seconds.store(p.seconds);
  }
  static const char* const kNames[] = {"normal", "slave", "pubsub"};
  text->clear();
  for (int c = 0; c < kClientClasses; ++c) {
    if (c) text->push_back(' ');
    *text += fmt::format("{} {} {} {}", kNames[c], output_limits[c].hard.load(), output_limits[c].soft.load(),
                         output_limits[c].soft_seconds.load());
  }
  return true;
}

std::optional<std::string> Config::Get(std::string_view name) const {
  std::lock_guard lock(mu_);
  const Option* o = FindOption(name);
  if (!o) return std::nullopt;
  return o->text;
}

std::vector<std::pair<std::string, std::string>> Config::Match(std::string_view pattern) const {
  std::lock_guard lock(mu_);
  // As Redis, an alias is reported under its own name too.
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& [name, idx] : by_name_) {
    if (GlobMatch(pattern, name, true)) out.emplace_back(name, options_[idx].text);
  }
  return out;
}

std::string Config::requirepass() const { return *Get("requirepass"); }
std::string Config::aclfile() const { return *Get("aclfile"); }

bool Config::AddUserLine(std::vector<std::string> words, std::string* why) {
  for (const auto& l : user_lines_)
    if (l[0] == words[0]) {
      *why = fmt::format("Error in user declaration '{}': {}", words[0], ErrorText(OpStatus::kAclDuplicateUser));
      return false;
    }
  user_lines_.push_back(std::move(words));
  return true;
}
std::string Config::dir() const { return *Get("dir"); }
std::string Config::bind() const { return *Get("bind"); }
std::string Config::logfile() const { return *Get("logfile"); }
std::string Config::pidfile() const { return *Get("pidfile"); }

static std::string FatalConfigError(int line_no, const std::string& line, const std::string& why) {
  return fmt::format(
      "\n*** FATAL CONFIG FILE ERROR (Larder {}) ***\nReading the configuration file, at line {}\n"
      ">>> '{}'\n{}",
      "0.1.0", line_no, line, why);
}

void Config::SetCacheDirectives(std::vector<cache::SourceSpec> sources, std::vector<cache::Rule> rules) {
  std::lock_guard lock(mu_);
  cache_sources_ = std::move(sources);
  cache_rules_ = std::move(rules);
}

// One directive (a config file's line, or one the command line makes).
bool Config::ApplyLine(const std::string& trimmed, int line_no, std::string* err) {
  std::vector<std::string> args;
  if (!resp::SplitInlineArgs(trimmed.substr(trimmed.find_first_not_of(" \t")), &args)) {
    *err = FatalConfigError(line_no, trimmed, "Unbalanced quotes in configuration line");
    return false;
  }
  if (args.empty()) return true;
  std::string name = AsciiLower(args[0]);
  if (name == "include") {
    std::string sub_err, keep = file_;  // (CONFIG REWRITE writes the main file)
    bool ok = args.size() == 2 && LoadFile(args[1], &sub_err);
    file_ = keep;
    if (!ok) {
      *err = sub_err.empty() ? FatalConfigError(line_no, trimmed, "Bad directive or wrong number of arguments") : sub_err;
      return false;
    }
    return true;
  }
  if (name == "rename-command") {
    if (args.size() != 3) {
      *err = FatalConfigError(line_no, trimmed, "Bad directive or wrong number of arguments");
      return false;
    }
    renamed_commands_.emplace_back(args[1], args[2]);
    return true;
  }
  if (name == "user") {
    std::string why = "Bad directive or wrong number of arguments";
    std::vector<std::string> words(args.begin() + 1, args.end());
    // --user "alice on >pw ~a:*" (one argument) reads as the file's line would.
    if (words.size() == 1 && words[0].find(' ') != std::string::npos) {
      std::string all = words[0];
      words.clear();
      resp::SplitInlineArgs(all, &words);
    }
    if (words.empty() || !AddUserLine(std::move(words), &why)) {
      *err = FatalConfigError(line_no, trimmed, why);
      return false;
    }
    return true;
  }
  if (name == "cache-warm") {
    bool known = false;
    if (args.size() == 3)
      for (const auto& r : cache_rules_) known |= r.pattern.text() == args[1];
    if (!known) {
      *err = FatalConfigError(line_no, trimmed,
                              args.size() != 3 ? "cache-warm takes a rule's pattern and a query"
                                               : "cache-warm names no cache rule declared before it");
      return false;
    }
    cache_warms_.emplace_back(args[1], args[2]);
    return true;
  }
  if (name == "cache-source" || name == "cache-rule") {
    std::vector<std::string> rest(args.begin() + 1, args.end());
    std::string why;
    if (name == "cache-source") {
      cache::SourceSpec spec;
      bool dup = false;
      if (cache::ParseSource(rest, &spec, &why)) {
        for (const auto& s : cache_sources_) dup |= s.name == spec.name;
        if (dup) why = "cache source '" + spec.name + "' is declared twice";
        else cache_sources_.push_back(std::move(spec));
      }
    } else {
      cache::Rule rule;
      if (cache::ParseRule(rest, &rule, &why)) {
        const cache::SourceSpec* src = nullptr;
        for (const auto& s : cache_sources_)
          if (s.name == rule.source) src = &s;
        if (!src) why = "unknown cache source '" + rule.source + "' (declare it with cache-source first)";
        else if (cache::RuleFitsSource(rule, *src, &why)) cache_rules_.push_back(std::move(rule));
      }
    }
    if (!why.empty()) {
      *err = FatalConfigError(line_no, trimmed, why);
      return false;
    }
    return true;
  }
  const Option* o = FindOption(name);
  // `save` with no points (the line Redis's test suite writes for `save ""`)
  // is accepted as Redis's setConfigSaveOption does: as the first save line it
  // clears the default points (no snapshots), after other save lines it adds
  // none.
  if (o && name == "save" && args.size() == 1) {
    bool first = !save_seen_;
    save_seen_ = true;
    if (!first) return true;
    args.emplace_back();
  }
  if (!o || args.size() < 2 || (o->type != Type::kString && args.size() != 2)) {
    *err = FatalConfigError(line_no, trimmed, "Bad directive or wrong number of arguments");
    return false;
  }
  std::string value = args[1];
  for (size_t i = 2; i < args.size(); ++i) value += " " + args[i];
  value = StartupValue(name, value);
  std::string why;
  if (!Set(name, value, true, &why)) {
    *err = FatalConfigError(line_no, trimmed, why);
    return false;
  }
  return true;
}

bool Config::LoadFile(const std::string& path, std::string* err) {
  std::ifstream in(path);
  if (!in) {
    *err = fmt::format("Fatal error, can't open config file '{}': No such file or directory", path);
    return false;
  }
  // The absolute path, resolved now: a `dir` line (or CONFIG SET dir) moves
  // the working directory, and CONFIG REWRITE must still write this file.
  file_ = path.empty() || path[0] == '/' ? path : CurrentDir() + "/" + path;
  std::string line;
  int line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    std::string trimmed = line;
    while (!trimmed.empty() && std::isspace(static_cast<unsigned char>(trimmed.back()))) trimmed.pop_back();
    size_t start = trimmed.find_first_not_of(" \t");
    if (start == std::string::npos || trimmed[start] == '#') continue;
    if (!ApplyLine(trimmed, line_no, err)) return false;
  }
  set_at_runtime_.clear();
  return true;
}

// As Redis reads `save` at start-up: the first occurrence (file or command
// line) replaces the default, later ones add their points, "" clears them.
std::string Config::StartupValue(std::string_view name, const std::string& value) {
  if (AsciiLower(name) != "save") return value;
  bool first = !save_seen_;
  save_seen_ = true;
  if (first || value.empty()) return value;
  std::string current = *Get("save");
  return current.empty() ? value : current + " " + value;
}

// Word for word as Redis turns its command line into config lines: "--name"
// starts a line; the arguments after it, each quoted, are its values, even
// one starting with "--" when the name has had none yet ("--logfile
// --my--log"); an argument holding spaces ("--maxmemory 700mb") is a whole
// line; "--save" with nothing after it is `save ""`. The lines are then read
// as the file's are.
bool Config::ApplyArgs(const std::vector<std::string>& args, std::string* err) {
  auto quoted = [](std::string_view w) {
    std::string q = QuoteConfigWord(w);
    return q.front() == '"' ? q : "\"" + q + "\"";
  };
  std::vector<std::string> lines;
  bool has_value = true;  // the line's name has had its value (or came with it)
  for (size_t j = 0; j < args.size(); ++j) {
    const std::string& a = args[j];
    bool next_is_option = j + 1 < args.size() && args[j + 1].rfind("--", 0) == 0;
    if (has_value && a.rfind("--", 0) == 0) {
      lines.push_back(a.substr(2) + " ");
      std::vector<std::string> words;
      resp::SplitInlineArgs(a, &words);
      has_value = words.size() != 1;
      if (!has_value && EqualsIgnoreCase(a, "--save") && (next_is_option || j + 1 == args.size())) {
        lines.back() += "\"\"";
        has_value = true;
      }
      continue;
    }
    if (lines.empty()) lines.emplace_back();
    lines.back() += quoted(a) + " ";
    has_value = true;
  }
  for (auto& line : lines) {
    while (!line.empty() && line.back() == ' ') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    if (!ApplyLine(line, 0, err)) return false;
  }
  set_at_runtime_.clear();
  return true;
}

// One option as CONFIG REWRITE writes it: every word quoted and escaped
// where it needs it, so that reading the file back gives the same value.
static std::string ConfigLine(const Config::Option& o) {
  std::string line = o.name;
  if (!o.words) return line + " " + (o.text.empty() ? "\"\"" : QuoteConfigWord(o.text));
  std::vector<std::string> words;
  if (!resp::SplitInlineArgs(o.text, &words) || words.empty()) return line + " \"\"";
  for (const auto& w : words) line += " " + QuoteConfigWord(w);
  return line;
}

bool Config::Rewrite(std::string* err) {
  if (file_.empty()) {
    *err = FormatError(OpStatus::kNoConfigFile);
    return false;
  }
  std::vector<std::string> lines;
  {
    std::ifstream in(file_);
    std::string line;
    while (std::getline(in, line)) lines.push_back(line);
  }
  // `user` lines: the users as they are now replace the file's (none when
  // an aclfile holds them), as Redis's CONFIG REWRITE does.
  std::vector<std::string> user_lines;
  bool rewrite_users = false;
  {
    std::function<std::vector<std::string>()> provider;
    {
      std::lock_guard lock(mu_);
      provider = user_lines_provider_;
    }
    if (provider) {
      user_lines = provider();
      rewrite_users = true;
    }
  }
  bool users_placed = false;
  std::lock_guard lock(mu_);
  std::set<std::string> written;
  // Cache directives: the current ones replace the file's, where the first
  // of them stood (or at the end).
  std::vector<std::string> cache_lines;
  for (const auto& s : cache_sources_)
    cache_lines.push_back("cache-source " + QuoteConfigWord(s.name) + " " + s.ConfigWords());
  for (const auto& r : cache_rules_) cache_lines.push_back("cache-rule " + r.ToLine());
  bool cache_placed = false;
  std::vector<std::string> kept;
  for (auto& line : lines) {
    size_t start = line.find_first_not_of(" \t");
    std::vector<std::string> args;
    if (start != std::string::npos && line[start] != '#' && resp::SplitInlineArgs(line.substr(start), &args) &&
        !args.empty() && (AsciiLower(args[0]) == "cache-source" || AsciiLower(args[0]) == "cache-rule")) {
      if (!cache_placed) kept.insert(kept.end(), cache_lines.begin(), cache_lines.end());
      cache_placed = true;
      continue;
    }
    if (rewrite_users && !args.empty() && AsciiLower(args[0]) == "user") {
      if (!users_placed) kept.insert(kept.end(), user_lines.begin(), user_lines.end());
      users_placed = true;
      continue;
    }
    kept.push_back(line);
  }
  lines = std::move(kept);
  for (auto& line : lines) {
    size_t start = line.find_first_not_of(" \t");
    if (start == std::string::npos || line[start] == '#') continue;
    std::vector<std::string> args;
    if (!resp::SplitInlineArgs(line.substr(start), &args) || args.empty()) continue;
    const Option* o = FindOption(args[0]);
    if (!o) continue;
    if (written.count(o->name)) {
      line = "# " + line;  // a duplicate; the first occurrence holds the value
      continue;
    }
    line = ConfigLine(*o);
    written.insert(o->name);
  }
  bool header = false;
  if (!cache_placed && !cache_lines.empty()) {
    lines.push_back("# Generated by CONFIG REWRITE");
    header = true;
    lines.insert(lines.end(), cache_lines.begin(), cache_lines.end());
  }
  if (!users_placed && !user_lines.empty()) {
    if (!header) lines.push_back("# Generated by CONFIG REWRITE");
    header = true;
    lines.insert(lines.end(), user_lines.begin(), user_lines.end());
  }
  for (const auto& name : set_at_runtime_) {
    if (written.count(name)) continue;
    const Option* o = FindOption(name);
    if (!o) continue;
    if (!header) {
      lines.push_back("# Generated by CONFIG REWRITE");
      header = true;
    }
    lines.push_back(ConfigLine(*o));
    written.insert(name);
  }
  std::string tmp = file_ + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    if (!out) {
      *err = FormatError(OpStatus::kConfigRewriteFailed, strerror(errno));
      return false;
    }
    for (const auto& l : lines) out << l << "\n";
    out.flush();
    if (!out) {
      *err = FormatError(OpStatus::kConfigRewriteWriteFailed);
      return false;
    }
  }
  if (rename(tmp.c_str(), file_.c_str()) != 0) {
    *err = FormatError(OpStatus::kConfigRewriteFailed, strerror(errno));
    return false;
  }
  return true;
}

}  // namespace larder
