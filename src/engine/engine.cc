#include "engine/engine.h"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <random>

#include "cache/shard_cache.h"
#include "common/clock.h"
#include "common/log.h"
#include "engine/aof.h"
#include "engine/atomic.h"
#include "engine/cache_host.h"
#include "engine/client.h"
#include "engine/notify.h"
#include "engine/persistence.h"
#include "rdb/rdb.h"

namespace larder {

Engine::Engine(Config* config) : config_(config) {
  aof_ = std::make_unique<Aof>(this);
  start_time_ms_ = UnixTimeMs();
  run_id_ = RandomHexId();
}

std::string RandomHexId() {
  static const char kHex[] = "0123456789abcdef";
  std::random_device rd;
  std::mt19937_64 rng(rd());
  std::string id;
  for (int i = 0; i < 40; ++i) id.push_back(kHex[rng() % 16]);
  return id;
}

std::string Engine::master_replid() const {
  std::lock_guard lock(replid_mu_);
  return replid_.empty() ? run_id_ : replid_;
}

void Engine::ChangeReplId() {
  std::string id = RandomHexId();
  std::lock_guard lock(replid_mu_);
  replid_ = std::move(id);
}

Engine::~Engine() {
  config_->SetApplyHook("requirepass", nullptr);
  for (const char* name : {"appendonly", "appendfsync", "aof-timestamp-enabled"}) config_->SetApplyHook(name, nullptr);
  aof_.reset();
  config_->SetUserLinesProvider(nullptr);
  cache_.reset();  // its threads publish to the memory budget
  LazyFreer::SetCurrent(nullptr);
  lazy_freer_.reset();  // (frees what is still queued)
  MemoryBudget::SetCurrent(nullptr);
}

namespace {
// requirepass is the default user's password (Redis's
// ACLUpdateDefaultUserPassword): set, it replaces every password; empty,
// the user is nopass.
void ApplyRequirepass(acl::Users& users, const std::string& pass) {
  std::shared_ptr<const acl::User> current = users.Default();
  acl::User u = *current;
  acl::ApplyUserRule(u, "resetpass", users.table(), false);
  acl::ApplyUserRule(u, pass.empty() ? "nopass" : ">" + pass, users.table(), false);
  users.Put(std::move(u));
}
}  // namespace

// As Redis's ACLLoadUsersAtStartup: requirepass first, then either the
// `user` lines or the aclfile (not both), each refusing to start on error.
bool Engine::InitUsers(std::string* err) {
  acl_table_ = std::make_unique<acl::CommandTable>(Commands());
  users_ = std::make_unique<acl::Users>(acl_table_.get());
  std::string pass = config_->requirepass();
  if (!pass.empty()) ApplyRequirepass(*users_, pass);
  std::string aclfile = config_->aclfile();
  const auto& lines = config_->user_lines();
  if (!aclfile.empty() && !lines.empty()) {
    *err = "Configuring Redis with users defined in redis.conf and at the same setting an ACL file path is invalid. "
           "This setup is very likely to lead to configuration errors and security holes, please define either an "
           "ACL file or declare users directly in your redis.conf, but not both.";
    return false;
  }
  for (const auto& words : lines) {
    if (std::any_of(words[0].begin(), words[0].end(), [](char c) { return std::isspace(static_cast<unsigned char>(c)) || !c; })) {
      *err = "Spaces not allowed in ACL usernames";
      return false;
    }
    std::shared_ptr<const acl::User> base = words[0] == "default" ? users_->Default() : nullptr;
    acl::User u;
    std::string bad;
    OpStatus st = acl::BuildUser(words, base.get(), *acl_table_, acl_pubsub_all(), &u, &bad);
    if (st != OpStatus::kOk) {
      *err = fmt::format("Error loading ACL rule '{}' for the user named '{}': {}", bad, words[0], ErrorText(st));
      return false;
    }
    if (!u.enabled)
      LOG_NOTICE("The user '{}' is disabled (there is no 'on' modifier in the user description). Make sure this is "
                 "not a configuration error.", words[0]);
    users_->Put(std::move(u));
  }
  if (!aclfile.empty()) {
    std::string errors = acl::LoadFile(aclfile, users_.get(), acl_pubsub_all());
    if (!errors.empty()) {
      *err = "Aborting Redis startup because of ACL errors: " + errors;
      return false;
    }
  }
  acl::Users* users = users_.get();
  Config* config = config_;
  config_->SetApplyHook("requirepass", [users, config](std::string*) {
    ApplyRequirepass(*users, config->requirepass());
    return true;
  });
  config_->SetUserLinesProvider([users, config] {
    std::vector<std::string> lines;
    if (!config->aclfile().empty()) return lines;
    for (const auto& u : users->All()) lines.push_back("user " + u->name + " " + acl::DescribeUser(*u, users->table()));
    return lines;
  });
  return true;
}

bool Engine::Init(std::string* err) {
  int nthreads = static_cast<int>(config_->threads.load());
  int num_dbs = static_cast<int>(config_->databases.load());
  shards_ = std::make_unique<ShardSet>(nthreads, num_dbs);
  for (int i = 0; i < nthreads; ++i) locals_.push_back(std::make_unique<EngineShard>());
  memory_ = std::make_unique<MemoryBudget>(nthreads);
  MemoryBudget::SetCurrent(memory_.get());
  lazy_freer_ = std::make_unique<LazyFreer>();
  LazyFreer::SetCurrent(lazy_freer_.get());
  ApplyEvictionConfig();
  if (!InitUsers(err)) return false;
  pubsub_ = std::make_unique<PubSub>(this);
  persistence_ = std::make_unique<Persistence>(this);
  defrag_ = std::make_unique<ActiveDefrag>(config_, nthreads);
  // The AOF's base is a snapshot, its RDB base loads through the same loader.
  aof_->SetSnapshotter([this](SnapshotRequest r, std::string* e) { return persistence_->StartSnapshot(std::move(r), e); });
  aof_->SetRdbLoader([this](rdb::Reader& r, std::string* e) { return persistence_->LoadRdb(r, e); });
  cache_host_ = std::make_unique<EngineCacheHost>(this);
  cache_ = std::make_unique<cache::CacheManager>();
  std::vector<Shard*> shard_ptrs;
  for (int i = 0; i < nthreads; ++i) shard_ptrs.push_back(&shards_->shard(i));
  cache_->AttachShards(cache_host_.get(), shard_ptrs);
  for (const auto& s : config_->cache_sources()) {
    std::string e;
    cache_->AddSource(s, &e);
  }
  for (const auto& r : config_->cache_rules()) {
    std::string e;
    if (!cache_->AddRule(r, &e)) LOG_WARNING("cache-rule {}: {}", r.pattern.text(), e);
  }
  cache_->SetInvalidation(config_->Get("cache-invalidation-channel").value_or("larder_invalidate"));
  if (!config_->cache_sources().empty() || cache::CacheManager::HasJournal(config_->dir())) {
    std::string e;
    if (!cache_->OpenWriteBehind(config_->dir(), FsyncPolicyNow(), &e)) {
      *err = "Write-behind: " + e;
      return false;
    }
  }
  cache_->StartSources();
  if (cache_->active())
    LOG_NOTICE("Read-through: {} cache rule(s) over {} source(s)", config_->cache_rules().size(),
               config_->cache_sources().size());
  return true;
}

void Engine::SetupShard(Shard& shard) {
  EngineShard& l = local(shard.id());
  cache::SetCurrentShardCache(&cache_->shard(shard.id()));
  l.cmd_stats.resize(Commands().all().size());
  tl_notify_classes = &config_->notify_keyspace_events;  // (handlers' inline test)
  // The keyspace's own notifications (new, keymiss, expired) go out here.
  shard.events() = KeyspaceEvents{
      &config_->notify_keyspace_events,
      [](void* arg, int db, uint32_t cls, std::string_view event, std::string_view key) {
        NotifyKeyspaceEvent(*static_cast<Engine*>(arg), db, cls, event, key);
      },
      this};
  shard.lazy_free() = LazyFreePolicy{&config_->lazyfree_lazy_server_del, &config_->lazyfree_lazy_user_del,
                                     &config_->lazyfree_lazy_expire, &config_->lazyfree_lazy_eviction,
                                     &config_->lazyfree_lazy_user_flush};
  // An evicted key counts as changed for WATCH, and is announced.
  shard.evictor().set_evict_hook(
      [](void* arg, Db& db, std::string_view key) {
        auto* e = static_cast<Engine*>(arg);
        WatchRegistry& w = e->local(e->shards().ShardOf(key)).watches;
        if (!w.empty()) w.Touch(db.index(), key, db);
        if (e->tracking().active()) InvalidateKey(*e, e->shards().ShardOf(key), true, key, 0);
        if (e->propagation().on()) [[unlikely]] e->propagation().EmitDel(db.index(), key);
        db.Notify(kNotifyEvicted, "evicted", key);
      },
      this);
  // Expired and evicted keys invalidate client-side caches.
  shard.stats().on_expired = [](void* arg, int db, std::string_view key) {
    auto* e = static_cast<Engine*>(arg);
    if (e->tracking().active()) InvalidateKey(*e, e->shards().ShardOf(key), true, key, 0);
    // Redis 7.0 propagates an expired key's deletion as DEL.
    if (e->propagation().on()) [[unlikely]] e->propagation().EmitDel(db, key);
  };
  shard.stats().on_expired_arg = this;
  shard.stats().may_grow = [](void* arg, size_t bytes) {
    auto* e = static_cast<Engine*>(arg);
    int64_t max = e->config_->maxmemory.load(std::memory_order_relaxed);
    return max <= 0 || e->memory_->Used() + static_cast<int64_t>(bytes) <= max;
  };
  shard.stats().may_grow_arg = this;
  shard.SetAfterEventsHook([this, &shard] {
    AfterEvents(shard);
    // This thread's allocations as of the end of each iteration (a few
    // loads): what it did for other shards (their keys' writes, the
    // messages and pushes they sent its clients) counts at once, not at its
    // next command or cron. Else used_memory read just after a pipeline
    // misses the other shard's part, and a shard that evicted would see its
    // own invalidations as an excess and evict again (Redis's "eviction
    // feedback loop" test).
    memory_->PublishThread(shard.id());
  });
  shard.loop().RunEvery(100, [this, &shard] { Cron(shard); });
  shard.loop().RunEvery(10, [this, &shard] {
    BlockedTimeoutCron(shard);
    EvictionCron(shard);
    if (persistence_->snapshot_running()) [[unlikely]] persistence_->Resume(shard);
    if (defrag_->running()) [[unlikely]] DefragSlice(shard);
  });
}

void Engine::Started() {
  memory_startup_ = static_cast<size_t>(memory_->Calibrate());
  for (const auto& [pattern, query] : config_->cache_warms()) {
    std::string err;
    if (!cache_->Warm(pattern, query, &err)) LOG_WARNING("cache-warm {}: {}", pattern, err);
  }
}

void Engine::Shutdown() {
  // Close every client on its own thread, then stop the cache's threads
  // (loads and warming stop while the shards still run).
  for (int i = 0; i < shards_->size(); ++i) {
    shards_->shard(i).Post([this, i] {
      EngineShard& l = local(i);
      for (auto& [id, client] : l.clients) client->Close();
    });
  }
  cache_->StopSources();
}

void Engine::AfterEvents(Shard& shard) {
  EngineShard& l = local(shard.id());
  cache_->shard(shard.id()).FlushChanges();  // write-behind: this iteration's changes to the journal
  pubsub_->FlushShard(shard.id());            // the messages written to subscribers
  if (!l.tracking.bcast_pending.empty()) [[unlikely]] FlushBroadcast(*this, shard);
  if (aof_->active() || !l.aof_waiting.empty()) [[unlikely]] {
    // This iteration's writes to the AOF (synced with appendfsync always),
    // then the replies that waited for them.
    if (aof_->active()) aof_->FlushFromLoop();
    if (!l.aof_waiting.empty()) {
      std::vector<uint64_t> ids;
      ids.swap(l.aof_waiting);
      for (uint64_t id : ids) {
        auto it = l.clients.find(id);
        if (it != l.clients.end()) it->second->FlushAfterAof();
      }
    }
  }
  if (l.to_close.empty()) return;
  // A closed client goes once no group of its batch is out on a shard.
  std::erase_if(l.to_close, [&](uint64_t id) {
    auto it = l.clients.find(id);
    if (it == l.clients.end()) return true;
    if (it->second->busy()) return false;
    l.clients.erase(it);
    return true;
  });
}

bool Engine::DefaultUserHasNoPassword() const {
  auto user = users_->Default();
  return !user || user->nopass;
}

void Engine::AddClient(Shard& shard, int fd, std::string peer, std::string local_addr,
                       std::unique_ptr<net::TlsSession> tls) {
  total_connections_received.fetch_add(1, std::memory_order_relaxed);
  // A refused connection gets Redis's error line and is closed (over TLS
  // nothing can be said before a handshake: it just closes).
  auto refuse = [&](OpStatus why) {
    if (!tls) {
      std::string line = "-" + FormatError(why) + "\r\n";
      ssize_t n = write(fd, line.data(), line.size());
      (void)n;
    }
    close(fd);
    rejected_connections.fetch_add(1, std::memory_order_relaxed);
  };
  if (connected_clients.load() >= config_->maxclients.load()) return refuse(OpStatus::kMaxClients);
  // Protected mode: with no password for the default user, only loopback
  // clients are served; others get Redis's explanation.
  if (config_->protected_mode.load() && DefaultUserHasNoPassword() && !IsLoopbackPeer(peer)) {
    LOG_VERBOSE("Refused {} (protected mode)", peer);
    return refuse(OpStatus::kProtectedMode);
  }
  connected_clients.fetch_add(1);
  auto client = std::make_unique<Client>(this, &shard, fd, std::move(peer), std::move(local_addr));
  Client* raw = client.get();
  if (tls) raw->stream().AttachTls(std::move(tls));
  LOG_VERBOSE("Accepted {}", raw->state().addr);
  local(shard.id()).clients.emplace(raw->state().id, std::move(client));
  raw->Start();
}

void Engine::Deliver(const ReplyTarget& target, std::string reply) {
  if (target.capture) [[unlikely]] {
    if (target.capture == ActiveCapture()) target.capture->append(reply);
    return;
  }
  if (!target.valid()) return;
  // Always as a message, even to this thread: the client takes it between
  // commands, never in the middle of one.
  int shard = target.client_shard;
  shards_->Send(shard, [this, target, reply = std::move(reply)]() mutable {
    EngineShard& l = local(target.client_shard);
    auto it = l.clients.find(target.client_id);
    if (it != l.clients.end()) {
      it->second->OnLateReply(target, std::move(reply));
      return;
    }
    if (!l.receivers.empty()) {
      auto r = l.receivers.find(target.client_id);
      if (r != l.receivers.end()) r->second(target, std::move(reply));
    }
  });
}

void Engine::DeliverError(const ReplyTarget& target, std::string_view message, int resp) {
  std::string out;
  resp::ReplyBuilder rb(&out, resp);
  rb.Error(message);
  Deliver(target, std::move(out));
}

void Engine::OpsSampleCron() {
  uint64_t total = 0;
  for (auto& l : locals_) total += l->commands_processed.load(std::memory_order_relaxed);
  int64_t now = MonotonicUs();
  ops_samples_.emplace_back(now, total);
  while (ops_samples_.size() > 16) ops_samples_.pop_front();
  if (ops_samples_.size() >= 2) {
    auto& first = ops_samples_.front();
    auto& last = ops_samples_.back();
    int64_t dt = last.first - first.first;
    if (dt > 0 && last.second >= first.second)
      ops_per_sec.store((last.second - first.second) * 1000000 / static_cast<uint64_t>(dt));
  }
}

void Engine::Cron(Shard& shard) {
  EngineShard& l = local(shard.id());
  if (shard.id() == 0) persistence_->Cron();
  if (tracking_->active()) EnforceTrackingLimit(*this, shard);  // after CONFIG SET tracking-table-max-keys
  int64_t now = UnixTimeMs();
  int64_t timeout = config_->timeout.load(std::memory_order_relaxed);
  // A soft output limit outlasted while the client sends nothing.
  if (config_->output_limits[Config::kNormalClient].soft.load(std::memory_order_relaxed) > 0)
    for (auto& [id, client] : l.clients) client->CloseIfOverOutputLimit(now);
  if (timeout > 0) {
    for (auto& [id, client] : l.clients) {
      // As Redis: MONITOR clients and blocked clients never time out.
      if (client->closed() || client->state().monitor || client->blocked()) continue;
      if (now - client->state().last_interaction_ms > timeout * 1000) {
        LOG_VERBOSE("Closing idle client id={}", id);
        client->Close();
      }
    }
  }
  if (!l.paused.empty()) {
    // Paused clients try again: those whose next command may run now go on,
    // the others are held again.
    auto ids = std::move(l.paused);
    l.paused.clear();
    for (uint64_t id : ids) {
      auto it = l.clients.find(id);
      if (it != l.clients.end()) it->second->Resume();
    }
  }
  if (shard.id() == 0) {
    OpsSampleCron();
    memory_->Tick();
    defrag_->Decide();
  }
}

void Engine::WhileBlockedCron() {
  int64_t start = MonotonicUs();
  if (start - last_blocked_cron_us_ < 10000) return;
  last_blocked_cron_us_ = start;
  defrag_->Decide();
  if (defrag_->running())
    for (int i = 0; i < shards_->size(); ++i) defrag_->RunSlice(shards_->shard(i), shards_->size());
  int64_t ms = (MonotonicUs() - start) / 1000;
  int64_t threshold = config_->latency_monitor_threshold.load(std::memory_order_relaxed);
  if (threshold > 0 && ms >= threshold) RecordLatency("while-blocked-cron", ms);
}

void Engine::DefragSlice(Shard& shard) {
  int64_t us = defrag_->RunSlice(shard);
  int64_t threshold = config_->latency_monitor_threshold.load(std::memory_order_relaxed);
  if (threshold > 0 && us / 1000 >= threshold) RecordLatency("active-defrag-cycle", us / 1000);
}

void Engine::BlockedTimeoutCron(Shard& shard) {
  EngineShard& l = local(shard.id());
  if (l.blocked.empty()) return;
  int64_t now = UnixTimeMs();
  // Blocked clients whose timeout passed get a nil reply.
  std::erase_if(l.blocked, [&](const std::shared_ptr<Waiter>& w) {
    if (w->done.load()) return true;
    if (w->deadline_ms == 0 || now < w->deadline_ms) return false;
    if (w->done.exchange(true)) return true;
    AbandonWaiter(this, w);
    Deliver(w->target, w->resp >= 3 ? "_\r\n" : "*-1\r\n");
    return true;
  });
}

}  // namespace larder
