// MEMORY USAGE, STATS, PURGE, DOCTOR, MALLOC-STATS, HELP.
#include <cstring>
#include <string>

#include "commands/families.h"
#include "engine/command.h"
#include "common/numbers.h"
#include "common/strings.h"
#include "keyspace/eviction.h"
#include "keyspace/memory.h"
#include "engine/engine.h"

#ifdef LARDER_JEMALLOC
#include <jemalloc/jemalloc.h>
#endif

namespace larder {

namespace {

// MEMORY USAGE key [SAMPLES count]: the key's bytes (its entry block, bucket
// slot and value object). A large hash, set or sorted set is estimated from
// `count` of its members (5 by default, 0: all), as Redis's is.
void MemoryUsage(CommandContext& ctx) {
  size_t samples = 5;
  for (size_t i = 3; i < ctx.argc(); ++i) {
    if (EqualsIgnoreCase(ctx.arg(i), "samples") && i + 1 < ctx.argc()) {
      int64_t n;
      if (!ParseInt64(ctx.arg(i + 1), &n)) return ctx.Error(OpStatus::kNotAnInteger);
      if (n < 0) return ctx.SyntaxError();
      samples = static_cast<size_t>(n);
      ++i;
    } else {
      return ctx.SyntaxError();
    }
  }
  Entry* e = ctx.DbFor(ctx.arg(2)).Find(ctx.arg(2));
  if (!e) return ctx.rb->Null();
  ctx.rb->Integer(static_cast<int64_t>(EntryMemoryUsage(e, samples)));
}

void MemoryStats(CommandContext& ctx) {
  Engine* server = ctx.engine;
  MemoryReport mem = ReadMemory();
  mem.used = server->memory().UsedMemory();
  size_t startup = std::min(mem.used, server->memory_startup());
  size_t peak = std::max<size_t>(mem.used, static_cast<size_t>(server->memory().peak()));
  uint64_t keys = server->memory().keys();
  size_t dataset = mem.used - startup;
  auto ratio = [](size_t a, size_t b) { return b ? static_cast<double>(a) / static_cast<double>(b) : 0.0; };
  ctx.rb->MapHeader(19);
  auto field = [&](const char* name, int64_t v) {
    ctx.rb->Bulk(name);
    ctx.rb->Integer(v);
  };
  auto dfield = [&](const char* name, double v) {
    ctx.rb->Bulk(name);
    ctx.rb->Double(v);
  };
  field("peak.allocated", static_cast<int64_t>(peak));
  field("total.allocated", static_cast<int64_t>(mem.used));
  field("startup.allocated", static_cast<int64_t>(startup));
  field("replication.backlog", 0);
  field("clients.slaves", 0);
  field("clients.normal", 0);
  field("cluster.links", 0);
  field("aof.buffer", 0);
  field("lua.caches", 0);
  field("functions.caches", 0);
  field("overhead.total", static_cast<int64_t>(startup));
  field("keys.count", static_cast<int64_t>(keys));
  field("keys.bytes-per-key", keys ? static_cast<int64_t>(dataset / keys) : 0);
  field("dataset.bytes", static_cast<int64_t>(dataset));
  dfield("dataset.percentage", 100.0 * ratio(dataset, mem.used));
  dfield("peak.percentage", 100.0 * ratio(mem.used, peak));
  field("allocator.allocated", static_cast<int64_t>(mem.allocator_allocated));
  field("allocator.active", static_cast<int64_t>(mem.allocator_active));
  dfield("fragmentation", ratio(mem.rss, mem.used));
}

void MemoryPurge(CommandContext& ctx) {
  PurgeAllocator();
  ctx.rb->Ok();
}

void MemoryDoctor(CommandContext& ctx) {
  MemoryReport mem = ReadMemory();
  mem.used = ctx.engine->memory().UsedMemory();
  std::string report;
  int64_t max = ctx.engine->config().maxmemory.load();
  if (mem.used < 5 * 1024 * 1024) {
    report = "Hello: this instance uses less than 5 MB of memory, so there is nothing to diagnose yet.";
  } else {
    double frag = mem.used ? static_cast<double>(mem.rss) / static_cast<double>(mem.used) : 0;
    if (frag > 1.4) {
      report += "High fragmentation: the process holds " + std::to_string(mem.rss) + " bytes of RAM for " +
                std::to_string(mem.used) + " bytes in use (ratio " + std::to_string(frag) +
                "); MEMORY PURGE returns unused allocator pages.\n";
    }
    if (max > 0 && static_cast<int64_t>(mem.used) > max)
      report += "Used memory is above maxmemory; keys are being evicted (policy " +
                std::string(kPolicyNames[static_cast<int>(CurrentPolicy())]) + ").\n";
    if (report.empty()) report = "No memory problems found in this instance.";
  }
  ctx.rb->Verbatim(report);
}

void MemoryMallocStats(CommandContext& ctx) {
#ifdef LARDER_JEMALLOC
  std::string out;
  malloc_stats_print(
      [](void* arg, const char* text) { static_cast<std::string*>(arg)->append(text); }, &out, nullptr);
  ctx.rb->Verbatim(out);
#else
  ctx.rb->Verbatim("Stats not supported for the current allocator");
#endif
}

void MemoryHelp(CommandContext& ctx) {
  static const char* const kLines[] = {
      "MEMORY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
      "DOCTOR",
      "    Return memory problems reports.",
      "MALLOC-STATS",
      "    Return internal statistics report from the memory allocator.",
      "PURGE",
      "    Attempt to purge dirty pages for reclamation by the allocator.",
      "STATS",
      "    Return information about the memory usage of the server.",
      "USAGE <key> [SAMPLES <count>]",
      "    Return memory in bytes used by <key> and its value. Nested values are",
      "    sampled up to <count> times (default: 5, 0 means sample all).",
      "HELP",
      "    Prints this help.",
  };
  ctx.HelpLines(kLines);
}

}  // namespace

void RegisterMemoryFamily(CommandRegistry* r) {
  auto sub = [](const char* name, int arity, uint32_t flags, int first, Handler h, const char* acl,
                const char* summary) {
    CommandSpec s = MakeCommand(name, arity, flags, first, first, first ? 1 : 0, h, acl, summary, "server");
    if (!first) s.route = Route::kConnection;
    s.since = "4.0.0";
    return s;
  };
  CommandSpec memory = MakeCommand("memory", -2, 0, 0, 0, 0, nullptr, "@slow", "A container for memory diagnostics commands.", "server");
  memory.route = Route::kConnection;
  memory.since = "4.0.0";
  memory.subcommands.push_back(sub("memory|usage", -3, kCmdReadOnly, 2, MemoryUsage, "@read @slow", "Estimates the memory usage of a key."));
  memory.subcommands.push_back(sub("memory|stats", 2, kCmdLocalOnly, 0, MemoryStats, "@slow", "Returns details about memory usage."));
  memory.subcommands.push_back(sub("memory|purge", 2, kCmdLocalOnly, 0, MemoryPurge, "@slow", "Asks the allocator to release memory."));
  memory.subcommands.push_back(sub("memory|doctor", 2, kCmdLocalOnly, 0, MemoryDoctor, "@slow", "Outputs a memory problems report."));
  memory.subcommands.push_back(sub("memory|malloc-stats", 2, kCmdLocalOnly, 0, MemoryMallocStats, "@slow", "Returns the allocator statistics."));
  memory.subcommands.push_back(sub("memory|help", 2, kCmdLocalOnly | kCmdLoading | kCmdStale, 0, MemoryHelp, "@slow", "Returns helpful text about the different subcommands."));
  r->Add(std::move(memory));
}

}  // namespace larder
