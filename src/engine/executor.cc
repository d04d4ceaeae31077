#include "engine/executor.h"

#include <optional>

#include "cache/shard_cache.h"
#include "common/clock.h"
#include "common/strings.h"
#include "engine/blocking.h"
#include "engine/client.h"
#include "engine/engine.h"
#include "engine/pipeline.h"
#include "engine/preload.h"
#include "engine/propagate.h"
#include "engine/tracking.h"
#include "shard/shard.h"

namespace larder {

namespace {

// Counts the error replies of one command and puts each in errorstats.
class Recorder : public resp::ErrorSink {
 public:
  Recorder(Engine& engine, Shard& shard, bool record) : engine_(engine), shard_(shard), record_(record) {}
  void OnError(std::string_view line) override {
    ++errors;
    if (record_) engine_.RecordError(&shard_, line);
  }
  void OnCountedError(std::string_view) override { ++errors; }
  uint32_t errors = 0;

 private:
  Engine& engine_;
  Shard& shard_;
  bool record_;
};

// Whether a write command replaces its key without reading it (so a
// writing rule's key that is not cached needs no load first).
bool Overwrites(const CommandSpec* spec, std::span<const std::string_view> args) {
  const std::string& n = spec->name;
  if (n == "del" || n == "unlink" || n == "setex" || n == "psetex") return true;
  if (n != "set") return false;
  for (size_t i = 3; i < args.size(); ++i)
    if (EqualsIgnoreCase(args[i], "nx") || EqualsIgnoreCase(args[i], "xx") || EqualsIgnoreCase(args[i], "get") ||
        EqualsIgnoreCase(args[i], "keepttl"))
      return false;
  return true;
}

// A command kept to run again later on its shard: its arguments copied.
struct Kept {
  Engine* engine;
  int shard;
  const CommandSpec* spec;
  std::vector<std::string> args;
  int db, resp;
  ReplyTarget target;
  bool track;  // CLIENT TRACKING: the run remembers its keys for the client
  bool fan_out = false;  // a multi-shard read: its coordinator runs again

  // Runs it (in `mode`) and delivers its reply unless it waits again.
  void Run(Call::Mode mode) const {
    std::vector<std::string_view> argv(args.begin(), args.end());
    Call c(spec, argv, db, resp);
    c.mode = mode;
    c.target = target;
    c.track = track;
    c.fan_out = fan_out;
    std::string out;
    Shard& sh = engine->shards().shard(shard);
    if (Execute(*engine, sh, c, &out) == Outcome::kReplied) engine->Deliver(target, std::move(out));
  }
  void Fail(const std::string& error) const {
    Shard& sh = engine->shards().shard(shard);
    engine->RecordError(&sh, error);
    engine->RecordCommand(&sh, spec, 0, true);
    engine->DeliverError(target, error, resp);
  }
};

// Set by a script's read-only call: the script's keys are then remembered
// for its client, as Redis tracks the caller's command's keys.
thread_local bool script_read = false;
// The client of the script running on this thread (its calls carry no
// origin): whose writes NOLOOP skips, whose reads are remembered.
thread_local const ClientState* script_caller = nullptr;
// Its id (also known when the script runs exclusively, with no origin).
thread_local uint64_t script_writer = 0;

// CLIENT TRACKING: are this call's keys remembered for its client?
bool TracksReads(const Call& call) {
  if (call.track) return true;  // decided on the client's thread (a group's command, a replay)
  const ClientState* o = call.origin ? call.origin : call.from_script ? script_caller : nullptr;
  if (!o || !o->tracking || call.group) return false;
  // A script's calls: the script's declared keys are remembered (below).
  if (call.mode == Call::Mode::kAtomic) return !call.from_script && WantsTracking(*o->tracking, call.spec);
  return o->tracking->track_current && (call.spec->flags & kCmdReadOnly);
}

Kept Keep(Engine& engine, Shard& shard, const Call& call, ReplyTarget target) {
  return Kept{&engine,   shard.id(), call.spec, std::vector<std::string>(call.args.begin(), call.args.end()),
              call.db,   call.resp,  target,    engine.tracking().active() && TracksReads(call),
              call.fan_out};
}

// A read whose keys live on several shards (MGET's coordinator): the keys
// that read-through rules cover are loaded first, each on its shard (one
// load per key however many wait, batched by load-many), then the
// coordinator runs. False when none needs loading: it runs now.
bool PreloadFanOut(Engine& engine, Shard& shard, cache::ShardCache& here, const Call& call, const Effects& fx) {
  std::vector<std::string_view> covered;
  for (size_t i : fx.keys())
    if (here.Covers(call.args[i])) covered.push_back(call.args[i]);
  if (covered.empty()) return false;
  ReplyTarget target = TargetFor(call);
  if (!target.valid()) return false;
  Kept kept = Keep(engine, shard, call, target);
  PreloadKeys(&engine, call.db, covered, [kept = std::move(kept)](const std::string* error) {
    if (error) kept.Fail(*error);
    else kept.Run(Call::Mode::kReplay);
  });
  return true;
}


// Client-side caching (tracking.h): the keys a tracking client read are
// remembered, the keys a write changed invalidated. The owners of the keys
// are this shard, or parked (exclusive) or held (atomic) by this thread.
void TrackEffects(Engine& engine, Shard& shard, const Call& call, const Effects& fx, bool script_ran) {
  const CommandSpec* spec = call.spec;
  bool atomic = call.mode == Call::Mode::kAtomic;
  bool anywhere = call.exclusive || atomic;
  ShardSet& set = engine.shards();
  const ClientState* origin = call.origin ? call.origin : call.from_script ? script_caller : nullptr;
  if (atomic && call.from_script && (spec->flags & kCmdReadOnly)) script_read = true;
  bool track = false;
  if ((spec->flags & kCmdReadOnly) && !(spec->flags & kCmdScriptRun)) {
    track = TracksReads(call);
  } else if (script_ran && origin && origin->tracking) {  // EVAL, EVAL_RO, FCALL...
    const TrackingState& t = *origin->tracking;
    track = !t.bcast && !((t.optin && !t.caching) || (t.optout && t.caching));
  }
  if (track) {
    int client_shard = origin && origin->tracking ? origin->tracking->shard : call.target.client_shard;
    uint64_t id = origin ? origin->id : call.target.client_id;
    if (client_shard >= 0 && id != 0)
      for (size_t i = 0; i < fx.key_count(); ++i) {
        std::string_view k = fx.key(i).key;
        int owner = set.ShardOf(k);
        TrackRead(engine, owner, anywhere || owner == shard.id(), k, client_shard, id);
      }
  }
  if ((spec->flags & kCmdWrite) && !fx.failed && !call.scratch && !call.fan_out) {
    uint64_t writer = origin                           ? origin->id
                      : call.from_script                 ? script_writer
                      : call.target.client_shard >= 0 ? call.target.client_id
                      : call.block ? call.block->client_id
                                   : 0;
    for (size_t i = 0; i < fx.key_count(); ++i) {
      KeyRef k = fx.key(i);
      if (!k.written) continue;
      int owner = set.ShardOf(k.key);
      InvalidateKey(engine, owner, anywhere || owner == shard.id(), k.key, writer);
    }
  }
  // BCAST: the command's keys go out now, one message per prefix (an
  // atomic unit's as a whole, when it ends).
  if (!atomic && call.mode != Call::Mode::kInternal) FlushBroadcast(engine, *CurrentShard());
}

enum class CacheStep { kRun, kAnswered, kDeferred };

// Write-through: the command runs against a copy of its key; the result
// goes to the database and replaces the key once the database has it.
// `target` is the reply's place, already opened: every answer goes there.
CacheStep RunWriteThrough(Engine& engine, Shard& shard, cache::ShardCache& sc, const Call& call,
                          std::string_view key, const ReplyTarget& target) {
  Db& real = shard.db(call.db);
  KeyspaceStats scratch_stats;
  Db scratch(&scratch_stats);
  if (Entry* cur = real.Find(key)) scratch.Add(CloneEntry(cur, key));
  std::string reply;
  Call c = call;
  c.mode = Call::Mode::kInternal;
  c.scratch = &scratch;
  Effects fx;
  Execute(engine, shard, c, &reply, &fx);
  if (fx.failed) {  // refused by the command itself: nothing to write
    engine.RecordCommand(&shard, call.spec, fx.duration_us, true);
    engine.Deliver(target, std::move(reply));
    return CacheStep::kDeferred;
  }
  Entry* result = scratch.Detach(key);
  Engine* e = &engine;
  int shard_id = shard.id();
  const CommandSpec* spec = call.spec;
  int resp = call.resp;
  int db = call.db;
  std::string k(key);
  bool sent = sc.StartWriteThrough(
      call.db, key, result,
      [e, shard_id, spec, target, resp, db, k, reply](const std::string* error, int64_t us) mutable {
        Shard& sh = e->shards().shard(shard_id);
        if (error) {
          e->RecordError(&sh, *error);
          e->RecordCommand(&sh, spec, us, true);
          e->DeliverError(target, *error, resp);
          return;
        }
        e->RecordCommand(&sh, spec, us, false);
        BlockingRegistry& reg = e->local(shard_id).blocking;
        if (reg.HasWaiters(db, k)) reg.MarkReady(db, k);
        e->Deliver(target, std::move(reply));
        ServeBlockedClients(e, &sh);
      });
  if (sent) return CacheStep::kDeferred;
  // Nothing to write to the database: the key is deleted in the cache (and
  // the late slot opened above gets the reply now).
  engine.RecordCommand(&shard, call.spec, fx.duration_us, false);
  engine.Deliver(target, std::move(reply));
  return CacheStep::kDeferred;
}

// The caching rules before a command runs (read-through, loading a write's
// key, write-through).
CacheStep BeforeRun(Engine& engine, Shard& shard, cache::ShardCache& sc, const Call& call, const KeyPositions& keys) {
  const CommandSpec* spec = call.spec;
  if (spec->flags & kCmdReadOnly) {
    std::string_view loading[8];
    size_t n = 0;
    bool more = false;
    for (size_t i : keys) {
      if (sc.CheckRead(call.db, call.args[i]) != cache::ShardCache::ReadState::kLoading) continue;
      if (n < 8) loading[n++] = call.args[i];
      else more = true;
    }
    if (n == 0) return CacheStep::kRun;
    ReplyTarget target = TargetFor(call);
    if (!target.valid()) return CacheStep::kRun;
    std::vector<std::string_view> all(loading, loading + n);
    if (more)
      for (size_t i : keys) all.push_back(call.args[i]);  // WaitFor ignores keys not loading
    // The lookups this command would have made count now, as misses of
    // the keys it waits for; the run after the load counts none.
    shard.stats().keyspace_misses += n;
    Kept kept = Keep(engine, shard, call, target);
    sc.WaitFor(call.db, all, [kept = std::move(kept)](const std::string* error) {
      if (error) kept.Fail(*error);
      else kept.Run(Call::Mode::kReplay);
    });
    return CacheStep::kDeferred;
  }
  // A write command's only key that it does not write (SORT without STORE)
  // needs no write rule either.
  if (!(spec->flags & kCmdWrite) || keys.size() != 1 || !spec->WritesKey(0)) return CacheStep::kRun;
  std::string_view key = call.args[keys[0]];
  auto mode = sc.WriteModeOf(key);
  if (mode == cache::ShardCache::WriteMode::kNone) return CacheStep::kRun;
  if (call.mode != Call::Mode::kLoadedWrite && !Overwrites(spec, call.args) &&
      sc.CheckWriteLoad(call.db, key) == cache::ShardCache::ReadState::kLoading) {
    ReplyTarget target = TargetFor(call);
    if (target.valid()) {
      Kept kept = Keep(engine, shard, call, target);
      std::string_view k[1] = {key};
      sc.WaitFor(call.db, k, [kept = std::move(kept)](const std::string* error) {
        if (error) kept.Fail(*error);
        else kept.Run(Call::Mode::kLoadedWrite);
      });
      return CacheStep::kDeferred;
    }
  }
  if (mode != cache::ShardCache::WriteMode::kThrough) return CacheStep::kRun;
  // One write of a key at a time: later ones wait their turn.
  ReplyTarget target = TargetFor(call);
  if (!target.valid()) return CacheStep::kRun;  // no one to answer later: the cache alone
  Kept kept = Keep(engine, shard, call, target);
  if (sc.QueueBehindWrite(call.db, key, [kept]() { kept.Run(Call::Mode::kLoadedWrite); }))
    return CacheStep::kDeferred;
  return RunWriteThrough(engine, shard, sc, call, key, target);
}

}  // namespace

// The keys a write names, on their owners (an exclusive operation's keys may
// be other shards'), handed to the running snapshot before they change.
static void SnapshotKeys(Engine& engine, Shard& shard, const Call& call, const KeyPositions& keys) {
  for (size_t n = 0; n < keys.size(); ++n) {
    if (!call.spec->WritesKey(n)) continue;
    std::string_view key = call.args[keys[n]];
    Shard& owner = call.exclusive ? engine.shards().shard(engine.shards().ShardOf(key)) : shard;
    Db& db = owner.db(call.db);
    if (Entry* e = db.table().Find(key)) db.BeforeChange(e);
  }
}

ReplyTarget TargetFor(const Call& call) {
  if (call.target.valid()) return call.target;
  if (call.group) {
    CommandGroup* g = call.group;
    ++g->late_count;
    ReplyTarget t;
    t.client_shard = g->client_shard;
    t.client_id = g->client_id;
    t.batch = g->batch;
    t.group = g->shard;
    t.index = call.group_index;
    return t;
  }
  if (call.client) return call.client->pipeline().AddLate();
  return ReplyTarget{};
}

Outcome Execute(Engine& engine, Shard& shard, const Call& call, std::string* out, Effects* fx_out) {
  Effects local_fx;
  Effects& fx = fx_out ? *fx_out : local_fx;
  const CommandSpec* spec = call.spec;
  fx.spec = spec;
  fx.args = call.args;
  fx.db = call.db;
  bool internal = call.mode == Call::Mode::kInternal;
  bool atomic = call.mode == Call::Mode::kAtomic;

  cache::ShardCache* sc = nullptr;
  if (engine.cache().active() && !internal && !atomic && !call.exclusive && !call.fan_out) [[unlikely]] {
    if (!fx.keys().empty()) sc = cache::CurrentShardCache();
  }
  if (call.fan_out && (spec->flags & kCmdReadOnly) && call.mode == Call::Mode::kNormal && engine.cache().active() &&
      !call.exclusive) [[unlikely]] {
    cache::ShardCache* here = cache::CurrentShardCache();
    if (here && !fx.keys().empty() && PreloadFanOut(engine, shard, *here, call, fx)) {
      fx.deferred = true;
      return Outcome::kDeferred;
    }
  }
  if (sc && call.mode != Call::Mode::kReplay) {
    switch (BeforeRun(engine, shard, *sc, call, fx.keys())) {
      case CacheStep::kRun: break;
      case CacheStep::kAnswered: return Outcome::kReplied;
      case CacheStep::kDeferred: fx.deferred = true; return Outcome::kDeferred;
    }
  }

  // maxmemory: a write starts under the limit (an atomic unit's commands
  // were admitted with the unit; a replayed or internal part with its whole).
  if ((spec->flags & kCmdDenyOom) && call.mode != Call::Mode::kAtomic && !internal) engine.BeforeGrowth(shard);
  Recorder recorder(engine, shard, !internal);
  size_t start = out->size();
  resp::ReplyBuilder rb(out, call.resp, &recorder);
  CommandContext ctx(call.args, &rb, &shard, &engine, spec, call.db);
  ctx.client = call.client;
  ctx.exclusive = call.exclusive;
  ctx.block = call.block;
  ctx.user = call.user ? call.user : (call.origin ? call.origin->user.get() : nullptr);
  ctx.scratch = call.scratch;
  ctx.target = call.target;
  ctx.from_script = call.from_script;
  ctx.call = &call;
  // Propagation (AOF): the handler may say what its command is logged as.
  std::optional<std::string> logged_as;
  // (Only writes are logged: a fan-out's coordinator leaves it to its parts.)
  if ((spec->flags & kCmdWrite) && engine.propagation().on()) [[unlikely]] ctx.propagation = &logged_as.emplace();
  // WATCH: the state of the watched keys this write may change, to touch
  // only those it changed (one test of an empty registry when none is).
  WatchProbe probe;
  bool probing = false;
  if ((spec->flags & kCmdWrite) && !call.scratch && !call.fan_out) {
    // (Exclusive: the owners of its keys are parked; Take looks at theirs.)
    probing = call.exclusive || !engine.local(shard.id()).watches.empty();
    if (probing) [[unlikely]] {
      probe.set_db(call.db);
      const KeyPositions& keys = fx.keys();
      for (size_t n = 0; n < keys.size(); ++n) {
        if (!spec->WritesKey(n)) continue;
        std::string_view key = call.args[keys[n]];
        int owner = call.exclusive ? engine.shards().ShardOf(key) : shard.id();
        probe.Take(engine.local(owner).watches, engine.shards().shard(owner).db(call.db), key, owner);
      }
      probing = !probe.empty();
    }
  }
  // A running snapshot writes out the keys this command writes before
  // their values change (engine/persistence.h).
  if ((spec->flags & kCmdWrite) && engine.persistence().snapshot_running() && !call.scratch && !call.fan_out)
      [[unlikely]]
    SnapshotKeys(engine, shard, call, fx.keys());
  bool replay = call.mode == Call::Mode::kReplay;
  if (replay) shard.stats().lookups_paused = true;
  bool script = (spec->flags & kCmdScriptRun) && !call.fan_out;
  bool outer_script_read = script_read;
  const ClientState* outer_caller = script_caller;
  uint64_t outer_writer = script_writer;
  if (script) [[unlikely]] {
    script_read = false;
    script_caller = call.origin;
    script_writer = call.origin ? call.origin->id : call.target.client_shard >= 0 ? call.target.client_id : 0;
  }
  // A multi-shard read remembers its keys before its parts are sent: each
  // owner then takes the reader in before it reads, so a write that comes
  // after the reply always finds it (sent after, the owner could answer its
  // part and see the write before the reader's entry arrived).
  bool track_first = call.fan_out && engine.tracking().active();
  if (track_first) [[unlikely]] TrackEffects(engine, shard, call, fx, false);
  int64_t t0 = Ticks();
  if (call.fan_out) spec->fan_out(ctx);
  else spec->handler(ctx);
  int64_t dt = TicksToUs(Ticks() - t0);
  bool script_ran = script && script_read;
  if (script) [[unlikely]] {
    script_read = outer_script_read;
    script_caller = outer_caller;
    script_writer = outer_writer;
  }
  if (replay) shard.stats().lookups_paused = false;
  fx.failed = recorder.errors > 0;
  fx.errors = recorder.errors;
  fx.duration_us = dt;
  fx.integer = rb.last_integer();
  fx.deferred = ctx.deferred;
  if (probing) [[unlikely]] {
    auto db_of = [&](int s) -> Db& { return engine.shards().shard(s).db(call.db); };
    auto reg_of = [&](int s) -> WatchRegistry& { return engine.local(s).watches; };
    if (probe.overflow()) {  // more watched keys than the probe holds: all of them changed
      for (size_t i = 0; i < fx.key_count(); ++i) {
        KeyRef k = fx.key(i);
        int owner = call.exclusive ? engine.shards().ShardOf(k.key) : shard.id();
        if (k.written) reg_of(owner).Touch(k.db, k.key, db_of(owner));
      }
    } else {
      probe.Finish(!fx.failed && AlwaysSignals(spec->name, call.args, std::string_view(*out).substr(start)),
                   db_of, reg_of);
    }
  }
  if (!track_first && engine.tracking().active()) [[unlikely]] TrackEffects(engine, shard, call, fx, script_ran);
  if (ctx.propagation) [[unlikely]] PropagateCommand(engine, call, ctx, fx, out->size() != start);
  if ((spec->flags & kCmdWrite) && !fx.failed && !call.fan_out && !call.scratch && !ctx.unchanged) {
    // The dirty counter (save points, rdb_changes_since_last_save): one per
    // successful write command that changed something (Redis counts the
    // keys it changed; this costs no key list on the hot path:
    // docs/compatibility.md).
    std::atomic<uint64_t>& dirty = engine.local(shard.id()).dirty;
    dirty.store(dirty.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }
  if (internal) return Outcome::kReplied;

  bool held = false;
  if ((spec->flags & kCmdWrite) && !fx.failed && !call.fan_out) {
    // Effects of the keys it wrote: blocked clients, leases, write-behind.
    // An exclusive operation (its shards all parked) writes keys of other
    // shards too: their owners' waiters and leases are the ones to look at.
    cache::ShardCache* here = engine.cache().active() ? cache::CurrentShardCache() : nullptr;
    bool caching = here != nullptr;
    EngineShard& local = engine.local(shard.id());
    bool look = call.exclusive || !local.blocking.empty() ||
                (caching && (!here->leases().empty() || here->watching_writes()));
    if (look) {
      for (size_t i = 0; i < fx.key_count(); ++i) {
        KeyRef k = fx.key(i);
        if (!k.written) continue;
        int owner = call.exclusive ? engine.shards().ShardOf(k.key) : shard.id();
        if (caching) {
          cache::ShardCache& c = call.exclusive ? engine.cache().shard(owner) : *here;
          if (!c.leases().empty()) c.leases().End(k.db, k.key);
          // A load of the key running now read the database before this write.
          if (c.watching_writes()) c.NoteWrite(k.db, k.key);
        }
        EngineShard& ol = engine.local(owner);
        if (ol.blocking.HasWaiters(k.db, k.key)) ol.blocking.MarkReady(k.db, k.key);
      }
    }
    if (sc && fx.key_count() == 1) {
      // Write-behind: the change goes to the journal; the reply waits for it.
      ReplyTarget target;
      std::string_view key = call.args[fx.keys()[0]];
      if (sc->WriteModeOf(key) == cache::ShardCache::WriteMode::kBehind && (target = TargetFor(call)).valid()) {
        std::string reply = out->substr(start);
        Engine* e = &engine;
        int resp = call.resp;
        bool journaled = sc->HoldForJournal(call.db, key, [e, target, resp, reply](const std::string* error) mutable {
          if (error) e->DeliverError(target, *error, resp);
          else e->Deliver(target, std::move(reply));
        });
        // Held for the journal, or (no journal) the slot just opened takes
        // the reply now.
        if (!journaled) e->Deliver(target, std::move(reply));
        out->resize(start);
        held = true;
      }
    }
  }
  engine.RecordCommand(&shard, spec, dt, fx.failed, !ctx.timed_later);
  // A command that finishes on other shards is logged when it finishes
  // (DeferredReply), with the time it took there.
  if (!(spec->flags & kCmdSkipSlowlog) && !ctx.deferred) engine.MaybeSlowlog(&shard, call.args, dt, call.origin);
  if (atomic) return Outcome::kReplied;  // the unit serves and evicts when it ends
  // What the command allocated counts against maxmemory at once, and the
  // shard whose keys grew frees its share of any excess.
  engine.AfterCommand(shard);
  ServeBlockedClients(engine.local(shard.id()).blocking, &engine, &shard);
  if (held) {
    fx.deferred = true;
    return Outcome::kDeferred;
  }
  return ctx.deferred ? Outcome::kDeferred : Outcome::kReplied;
}

}  // namespace larder
