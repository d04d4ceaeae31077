// The engine's statistics: commandstats and errorstats (per shard), the
// slow log (per shard, merged by SLOWLOG GET), the latency monitor, MONITOR
// clients, CLIENT PAUSE.
#include <fmt/format.h>

#include <algorithm>
#include <cctype>

#include "common/clock.h"
#include "engine/client.h"
#include "engine/engine.h"

namespace larder {

namespace {

// The command line with the arguments its command redacts replaced, or
// empty when it redacts none (the common case: no copy).
std::vector<std::string_view> Redacted(std::span<const std::string_view> args) {
  if (args.empty()) return {};
  const CommandSpec* s = Commands().Find(args[0]);
  if (!s || !s->redacted_args) return {};
  std::vector<size_t> hide = s->redacted_args(args);
  if (hide.empty()) return {};
  std::vector<std::string_view> out(args.begin(), args.end());
  for (size_t i : hide)
    if (i < out.size()) out[i] = "(redacted)";
  return out;
}

}  // namespace

bool Engine::PausedNow(uint32_t flags) const {
  int64_t until = pause_until_ms_.load(std::memory_order_relaxed);
  if (until == 0) return false;
  if (UnixTimeMs() >= until) return false;
  if (pause_all_.load()) return true;
  // CLIENT PAUSE WRITE holds what may change data or be propagated, as
  // Redis 7.0 does (PFCOUNT may write its cache, PUBLISH is replicated).
  return (flags & (kCmdWrite | kCmdMayReplicate)) != 0;
}

void Engine::RecordCommandLatency(const CommandSpec* spec, int64_t duration_us) {
  RecordLatency((spec->flags & kCmdFast) ? "fast-command" : "command", duration_us / 1000);
}

void Engine::RecordRejected(Shard* shard, const CommandSpec* spec) {
  auto& st = local(shard->id()).cmd_stats;
  if (st.size() > static_cast<size_t>(spec->id)) ++st[static_cast<size_t>(spec->id)].rejected;
}

void Engine::RecordError(Shard* shard, std::string_view error_line) {
  size_t sp = error_line.find(' ');
  std::string prefix(error_line.substr(0, std::min<size_t>(sp, 64)));
  while (!prefix.empty() && (prefix.back() == '\r' || prefix.back() == '\n')) prefix.pop_back();
  ++local(shard->id()).error_stats[prefix];
  total_error_replies.fetch_add(1, std::memory_order_relaxed);
}

void Engine::AddSlowlog(Shard* shard, std::span<const std::string_view> args, int64_t duration_us,
                        const ClientState* client) {
  std::vector<std::string_view> redacted = Redacted(args);
  if (!redacted.empty()) args = redacted;
  SlowlogEntry e;
  e.id = NextSlowlogId();
  e.time_s = UnixTimeMs() / 1000;
  e.duration_us = duration_us;
  // As Redis: at most 32 arguments (the last says how many more), each at
  // most 128 bytes (with a note of how many more bytes there were).
  size_t n = std::min<size_t>(args.size(), 32);
  for (size_t i = 0; i < n; ++i) {
    if (i == 31 && args.size() > 32) {
      e.args.push_back(fmt::format("... ({} more arguments)", args.size() - 31));
      break;
    }
    if (args[i].size() > 128)
      e.args.push_back(fmt::format("{}... ({} more bytes)", args[i].substr(0, 128), args[i].size() - 128));
    else
      e.args.emplace_back(args[i]);
  }
  if (client) {
    e.addr = client->addr;
    e.name = client->name;
  }
  auto& log = local(shard->id()).slowlog;
  log.push_front(std::move(e));
  size_t max = static_cast<size_t>(config_->slowlog_max_len.load());
  while (log.size() > max) log.pop_back();
}

void Engine::RecordLatency(const std::string& event, int64_t ms) {
  std::lock_guard lock(latency_mu_);
  auto& ev = latency_[event];
  int64_t now = UnixTimeMs() / 1000;
  if (!ev.history.empty() && ev.history.back().time_s == now) {
    ev.history.back().ms = std::max(ev.history.back().ms, ms);
  } else {
    ev.history.push_back({now, ms});
    if (ev.history.size() > 160) ev.history.pop_front();
  }
  ev.max_ms = std::max(ev.max_ms, ms);
}

std::map<std::string, LatencyEvent> Engine::LatencySnapshot() {
  std::lock_guard lock(latency_mu_);
  return latency_;
}

size_t Engine::LatencyReset(const std::vector<std::string>& events) {
  std::lock_guard lock(latency_mu_);
  if (events.empty()) {
    size_t n = latency_.size();
    latency_.clear();
    return n;
  }
  size_t n = 0;
  for (const auto& e : events) n += latency_.erase(e);
  return n;
}

void Engine::AddMonitor(int shard, uint64_t client_id) {
  std::lock_guard lock(monitor_mu_);
  monitors_.emplace_back(shard, client_id);
  monitor_count_.store(static_cast<int>(monitors_.size()));
}

void Engine::RemoveMonitor(int shard, uint64_t client_id) {
  std::lock_guard lock(monitor_mu_);
  std::erase(monitors_, std::make_pair(shard, client_id));
  monitor_count_.store(static_cast<int>(monitors_.size()));
}

void Engine::FeedMonitors(int db, const std::string& addr, std::span<const std::string_view> args) {
  std::vector<std::string_view> redacted = Redacted(args);
  if (!redacted.empty()) args = redacted;
  int64_t us = UnixTimeUs();
  std::string line = fmt::format("+{}.{:06d} [{} {}]", us / 1000000, us % 1000000, db, addr);
  for (auto a : args) {
    line += " \"";
    for (unsigned char c : a) {
      switch (c) {
        case '\\': line += "\\\\"; break;
        case '"': line += "\\\""; break;
        case '\n': line += "\\n"; break;
        case '\r': line += "\\r"; break;
        case '\t': line += "\\t"; break;
        case '\a': line += "\\a"; break;
        case '\b': line += "\\b"; break;
        default:
          if (isprint(c)) line.push_back(static_cast<char>(c));
          else line += fmt::format("\\x{:02x}", c);
      }
    }
    line += "\"";
  }
  line += "\r\n";
  std::vector<std::pair<int, uint64_t>> targets;
  {
    std::lock_guard lock(monitor_mu_);
    targets = monitors_;
  }
  for (auto [shard, id] : targets) {
    shards_->Send(shard, [this, shard = shard, id = id, line] {
      auto& clients = local(shard).clients;
      auto it = clients.find(id);
      if (it != clients.end()) it->second->AppendOutput(line);
    });
  }
}

void Engine::ResetStats() {
  memory_->ResetPeak();
  if (lazy_freer_) lazy_freer_->ResetStats();
  if (defrag_) defrag_->ResetStats();
  total_connections_received.store(0);
  rejected_connections.store(0);
  output_limit_disconnections.store(0);
  total_error_replies.store(0);
  auto reset = [this](Shard& s) {
    auto& l = local(s.id());
    for (auto& st : l.cmd_stats) st = CommandStat{};
    l.error_stats.clear();
    l.commands_processed.store(0);
    l.net_input_bytes.store(0);
    l.net_output_bytes.store(0);
    s.stats().ResetCounters();  // (not its hooks: a running snapshot, expiry's listener)
  };
  // The calling shard resets at once, so that the command that asked
  // (CONFIG RESETSTAT) is counted afterwards, as in Redis; the others after
  // what this shard sent them before.
  Shard* self = CurrentShard();
  if (self) reset(*self);
  shards_->FanOutAll(
      [self, reset](Shard& s) {
        if (&s != self) reset(s);
      },
      [] {});
}

}  // namespace larder
