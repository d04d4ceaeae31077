// SAVE, BGSAVE [SCHEDULE], LASTSAVE, and DEBUG RELOAD: snapshots in Redis's
// RDB format taken without fork (engine/persistence.h).
//
// SAVE answers when the file is complete, as in Redis, but the server keeps
// serving other clients meanwhile (Redis blocks them all while it saves).
#include "commands/persistence_family.h"

#include <fcntl.h>
#include <unistd.h>

#include <thread>

#include "commands/families.h"
#include "common/log.h"
#include "common/strings.h"
#include "engine/engine.h"
#include "engine/persistence.h"
#include "rdb/rdb.h"
#include "script/store.h"
#include "shard/shard.h"

namespace larder {

namespace {

std::string DumpPath(Engine& engine) { return engine.persistence().DumpPath(); }

void Save(CommandContext& ctx) {
  ReplyTarget target = ctx.Defer();
  Engine* engine = ctx.engine;
  int resp = ctx.rb->protocol();
  SnapshotRequest req;
  req.path = DumpPath(*engine);
  req.done = [engine, target, resp](bool ok, const std::string&) {
    if (ok) engine->Deliver(target, "+OK\r\n");
    else engine->DeliverError(target, FormatError(OpStatus::kPlainErr), resp);
  };
  std::string error;
  if (!engine->persistence().StartSnapshot(std::move(req), &error))
    engine->DeliverError(target, FormatError(OpStatus::kBgsaveInProgress), resp);
}

void BgSave(CommandContext& ctx) {
  bool schedule = false;
  if (ctx.argc() > 2) return ctx.SyntaxError();
  if (ctx.argc() == 2) {
    if (!EqualsIgnoreCase(ctx.arg(1), "schedule")) return ctx.SyntaxError();
    schedule = true;
  }
  Persistence& p = ctx.engine->persistence();
  if (p.snapshot_running()) {
    if (!schedule) return ctx.Error(OpStatus::kBgsaveInProgress);
    p.ScheduleSave();
    return ctx.rb->SimpleString("Background saving scheduled");
  }
  SnapshotRequest req;
  req.path = DumpPath(*ctx.engine);
  req.background = true;
  std::string error;
  if (!p.StartSnapshot(std::move(req), &error)) {
    if (!schedule) return ctx.Error(OpStatus::kBgsaveInProgress);
    p.ScheduleSave();
    return ctx.rb->SimpleString("Background saving scheduled");
  }
  ctx.rb->SimpleString("Background saving started");
}

void LastSave(CommandContext& ctx) { ctx.rb->Integer(ctx.engine->persistence().last_save_s()); }

}  // namespace

void DebugReload(CommandContext& ctx) {
  bool save = true, flush = true, merge = false;
  for (size_t i = 2; i < ctx.argc(); ++i) {
    if (EqualsIgnoreCase(ctx.arg(i), "nosave")) save = false;
    else if (EqualsIgnoreCase(ctx.arg(i), "noflush")) flush = false;
    else if (EqualsIgnoreCase(ctx.arg(i), "merge")) merge = true;
    else return ctx.Error(OpStatus::kDebugReloadOption);
  }
  // Keys already present are replaced by the file's either way (Redis
  // panics on one without MERGE); a function library that exists fails
  // the reload without MERGE, as in Redis.
  ReplyTarget target = ctx.Defer();
  Engine* engine = ctx.engine;
  int resp = ctx.rb->protocol();
  std::string path = DumpPath(*engine);
  // Empties the keyspace (and the functions) and loads the file, on a thread
  // of its own: loading hands keys to the shards and waits for them.
  auto reload = [engine, target, resp, path, flush, merge] {
    Persistence& p = engine->persistence();
    int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      engine->DeliverError(target, FormatError(OpStatus::kDebugReloadFailed), resp);
      return;
    }
    p.BeginLoading(0);
    if (flush) {
      engine->shards().RunParkedAndWait([engine] {
        ShardSet& s = engine->shards();
        for (int i = 0; i < s.size(); ++i)
          for (Db& db : s.shard(i).dbs()) db.Clear();
        script::Functions().Update([](script::Libraries::Set& libs) {
          libs.clear();
          return true;
        });
      });
    }
    rdb::Reader r(fd);
    std::string error;
    bool ok = p.LoadRdb(r, &error, flush || merge);
    close(fd);
    p.EndLoading();
    if (ok) {
      engine->Deliver(target, "+OK\r\n");
    } else {
      LOG_WARNING("DEBUG RELOAD: {}", error);
      engine->DeliverError(target, FormatError(OpStatus::kDebugReloadFailed), resp);
    }
  };
  if (!save) {
    std::thread(reload).detach();
    return;
  }
  SnapshotRequest req;
  req.path = path;
  req.done = [engine, target, resp, reload](bool ok, const std::string&) {
    if (!ok) return engine->DeliverError(target, FormatError(OpStatus::kPlainErr), resp);
    std::thread(reload).detach();
  };
  std::string error;
  if (!engine->persistence().StartSnapshot(std::move(req), &error))
    engine->DeliverError(target, FormatError(OpStatus::kBgsaveInProgress), resp);
}

void RegisterPersistenceFamily(CommandRegistry* r) {
  auto make = [](const char* name, int arity, uint32_t flags, Handler h, const char* acl, const char* summary) {
    CommandSpec s = MakeCommand(name, arity, flags, 0, 0, 0, h, acl, summary, "server");
    s.route = Route::kConnection;
    return s;
  };
  constexpr uint32_t L = kCmdLoading, S = kCmdStale, A = kCmdAdmin, NS = kCmdNoScript;
  r->Add(make("save", 1, A | NS | kCmdNoAsyncLoading | kCmdNoMulti, Save, "@admin @slow @dangerous",
              "Synchronously saves the database(s) to disk."));
  r->Add(make("bgsave", -1, A | NS | kCmdNoAsyncLoading, BgSave, "@admin @slow @dangerous",
              "Asynchronously saves the database(s) to disk."));
  r->Add(make("lastsave", 1, L | S | kCmdFast, LastSave, "@admin @fast @dangerous",
              "Returns the Unix timestamp of the last successful save to disk."));
}

}  // namespace larder
