#include "engine/atomic.h"

#include <algorithm>

#include "common/clock.h"
#include "engine/blocking.h"
#include "engine/client.h"
#include "engine/engine.h"
#include "engine/transaction.h"
#include "keyspace/entry.h"
#include "shard/shard.h"

namespace larder {

namespace {
// The unit running on this thread (a script inside EXEC shares it).
thread_local AtomicScope* tl_scope = nullptr;
thread_local std::string* tl_capture = nullptr;
}  // namespace

std::string* ActiveCapture() { return tl_capture; }
AtomicScope* CurrentAtomicScope() { return tl_scope; }

void AtomicScope::AddPropagated(int db, std::string_view bytes) {
  propagated_.push_back(PropagatedOp{db, std::string(bytes)});
}

struct AtomicScope::Undo {
  int shard;
  int db;
  std::string key;
  Entry* before;  // a copy of the key as it was, or null: it did not exist
};

AtomicScope::AtomicScope(Engine* engine, std::vector<int> held, bool all, Client* client)
    : engine_(engine), held_(std::move(held)), all_(all), client_(client) {
  std::sort(held_.begin(), held_.end());
  held_.erase(std::unique(held_.begin(), held_.end()), held_.end());
  mask_.assign(static_cast<size_t>(engine_->shards().size()), 0);
  for (int id : held_) mask_[static_cast<size_t>(id)] = 1;
  all_ = all_ || held_.size() == mask_.size();
  outer_ = tl_scope;
  prev_held_ = ShardSet::Held();
  prev_capture_ = tl_capture;
  tl_scope = this;
  ShardSet::SetHeld(&mask_);
  tl_capture = &capture_;
}

AtomicScope::~AtomicScope() {
  Finish();
  for (Undo& u : undo_)
    if (u.before) FreeEntry(u.before);
  tl_scope = outer_;
  ShardSet::SetHeld(prev_held_);
  tl_capture = prev_capture_;
}

std::unique_ptr<AtomicScope> AtomicScope::Here(CommandContext& ctx) {
  if (tl_scope) {  // inside EXEC: the same shards
    AtomicScope* o = tl_scope;
    std::unique_ptr<AtomicScope> s(new AtomicScope(ctx.engine, o->held_, o->all_, nullptr));
    s->user_ = ctx.user;
    return s;
  }
  std::vector<int> held;
  ShardSet& set = ctx.engine->shards();
  if (ctx.exclusive) {
    for (size_t i : ctx.spec->KeyIndexes(ctx.args)) held.push_back(set.ShardOf(ctx.args[i]));
  }
  if (held.empty() || !ctx.exclusive) held = {ctx.shard->id()};
  std::unique_ptr<AtomicScope> s(new AtomicScope(ctx.engine, std::move(held), false, nullptr));
  s->user_ = ctx.user;
  return s;
}

bool AtomicScope::Holds(int shard) const { return mask_[static_cast<size_t>(shard)] != 0; }

int AtomicScope::OwnerOf(const CommandSpec* spec, std::span<const std::string_view> argv,
                         KeyPositions* keys) const {
  if (spec->route != Route::kKeys) {
    // A connection command that gathers from the shards (DBSIZE, KEYS,
    // INFO...) needs them all.
    if (!(spec->flags & kCmdLocalOnly) && !all_) return -2;
    return -1;
  }
  // SORT BY/GET patterns may name keys on any shard.
  if (spec->needs_all_shards && !all_ && spec->needs_all_shards(argv)) return -2;
  *keys = spec->KeyIndexes(argv);
  if (keys->empty()) return -1;
  ShardSet& set = engine_->shards();
  int owner = -1;
  for (size_t i : *keys) {
    int s = set.ShardOf(argv[i]);
    if (!Holds(s)) return -2;
    if (owner < 0) owner = s;
  }
  return owner;
}

AtomicScope::CallResult AtomicScope::Call(const CommandSpec* spec, std::span<const std::string_view> argv,
                                          int db, int resp, std::string* out, Effects* fx_out) {
  KeyPositions keys;
  int owner = OwnerOf(spec, argv, &keys);
  if (owner == -2) return CallResult::kNotHeld;
  ShardSet& set = engine_->shards();
  Shard* shard;
  if (owner >= 0) shard = &set.shard(owner);
  else if (client_) shard = client_->shard();
  else shard = CurrentShard();
  bool write = (spec->flags & kCmdWrite) != 0;
  if (write && engine_->cache().active()) [[unlikely]] {
    if (const std::string_view* key = WriteRuleKey(*engine_, spec, argv)) {
      resp::ReplyBuilder rb(out, resp);
      rb.Error(FormatError(OpStatus::kAtomicWriteRuleKey, *key));
      return CallResult::kRefused;
    }
  }
  if (write) {
    wrote_ = true;
    if (undo_enabled_) {
      for (size_t i : keys) {
        std::string_view k = argv[i];
        int s = set.ShardOf(k);
        bool seen = false;
        for (const Undo& u : undo_) seen = seen || (u.shard == s && u.db == db && u.key == k);
        if (seen) continue;
        Entry* cur = set.shard(s).db(db).table().Find(k);
        undo_.push_back(Undo{s, db, std::string(k), cur ? CloneEntry(cur, k) : nullptr});
      }
    }
  }
  larder::Call c(spec, argv, db, resp);
  c.mode = larder::Call::Mode::kAtomic;
  c.exclusive = held_.size() > 1;
  if (spec->route == Route::kConnection) c.client = client_;
  c.origin = origin_ ? origin_ : client_ ? &client_->state() : nullptr;
  c.user = user_;
  c.from_script = script_;
  if (engine_->has_monitors() && !(spec->flags & (kCmdSkipMonitor | kCmdAdmin)))
    engine_->FeedMonitors(db, monitor_name_, argv);
  c.target.capture = &capture_;
  Effects local;
  Effects& fx = fx_out ? *fx_out : local;
  capture_.clear();
  Execute(*engine_, *shard, c, out, &fx);
  if (fx.deferred) {
    // Work that would finish on other shards ran inline (they are held):
    // its reply is in the capture. Anything still pending could only answer
    // after the unit, where there is no place for it.
    if (!capture_.empty()) out->append(capture_);
    else {
      resp::ReplyBuilder rb(out, resp);
      rb.Error(FormatError(OpStatus::kNotInAtomicUnit, spec->name));
    }
    capture_.clear();
  }
  if (write) {
    int s = owner >= 0 ? owner : shard->id();
    if (std::find(touched_.begin(), touched_.end(), s) == touched_.end()) touched_.push_back(s);
    if (keys.size() > 1)
      for (size_t i : keys) {
        int o = set.ShardOf(argv[i]);
        if (std::find(touched_.begin(), touched_.end(), o) == touched_.end()) touched_.push_back(o);
      }
  }
  return CallResult::kOk;
}

void AtomicScope::Rollback() {
  ShardSet& set = engine_->shards();
  // Newest first is not needed: each key has one entry, its state before.
  for (Undo& u : undo_) {
    Db& d = set.shard(u.shard).db(u.db);
    if (d.table().Find(u.key)) d.Delete(u.key);
    if (u.before) {
      d.AddQuiet(u.before);
      u.before = nullptr;
    }
    WatchRegistry& w = engine_->local(u.shard).watches;
    if (!w.empty()) w.Touch(u.db, u.key, d);
  }
  undo_.clear();
  propagated_.clear();
}

void AtomicScope::Finish() {
  if (!propagated_.empty()) [[unlikely]] {
    if (outer_) {  // a script inside EXEC: part of the EXEC's block
      for (PropagatedOp& op : propagated_) outer_->propagated_.push_back(std::move(op));
    } else {
      engine_->propagation().EmitUnit(propagated_);
    }
    propagated_.clear();
  }
  if (touched_.empty()) return;
  std::vector<int> touched;
  touched.swap(touched_);
  if (outer_) {  // the outer unit ends later and does this once
    for (int s : touched)
      if (std::find(outer_->touched_.begin(), outer_->touched_.end(), s) == outer_->touched_.end())
        outer_->touched_.push_back(s);
    return;
  }
  ShardSet& set = engine_->shards();
  for (int s : touched) {
    Shard& sh = set.shard(s);
    engine_->AfterCommand(sh);
    ServeBlockedClients(engine_, &sh);
  }
}

void RunAtomicHere(Engine* engine, Client* client, const std::function<bool(AtomicScope&, std::string*)>& body,
                   std::string* out) {
  AtomicScope scope(engine, {CurrentShard()->id()}, false, client);
  body(scope, out);
}

void RunAtomic(Engine* engine, std::vector<int> shards, Client* client,
               std::function<bool(AtomicScope&, std::string*)> body, ReplyTarget target) {
  ShardSet& set = engine->shards();
  bool all = shards.empty();
  if (all)
    for (int i = 0; i < set.size(); ++i) shards.push_back(i);
  auto job = [engine, shards, all, client, body = std::move(body), target]() mutable {
    RefreshCommandTime();
    std::string out;
    bool done;
    {
      AtomicScope scope(engine, shards, all, client);
      done = body(scope, &out);
      if (!done) scope.Rollback();
    }
    if (!done && !all) {
      RunAtomic(engine, {}, client, std::move(body), target);
      return;
    }
    engine->Deliver(target, std::move(out));
  };
  set.RunExclusive(std::move(shards), std::move(job), [] {});
}

}  // namespace larder
