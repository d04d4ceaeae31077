#include "engine/tracking.h"

#include <algorithm>

#include "engine/client.h"
#include "engine/command.h"
#include "engine/engine.h"
#include "shard/shard.h"

namespace larder {

// ---- Tracking (engine-wide) ----

void Tracking::AddClient(uint64_t id, int shard) {
  std::lock_guard lock(mu_);
  live_[id] = shard;
}

void Tracking::RemoveClient(uint64_t id) {
  std::lock_guard lock(mu_);
  live_.erase(id);
}

int Tracking::ShardOfClient(uint64_t id) const {
  std::lock_guard lock(mu_);
  auto it = live_.find(id);
  return it == live_.end() ? -1 : it->second;
}

void Tracking::ClientOn(bool bcast) {
  clients_.fetch_add(1, std::memory_order_relaxed);
  if (bcast) bcast_clients_.fetch_add(1, std::memory_order_relaxed);
}

void Tracking::ClientOff(bool bcast) {
  clients_.fetch_sub(1, std::memory_order_relaxed);
  if (bcast) bcast_clients_.fetch_sub(1, std::memory_order_relaxed);
}

void Tracking::AddPrefix(const std::string& prefix, int shard, uint64_t id, bool noloop) {
  std::lock_guard lock(mu_);
  auto& subs = prefixes_[prefix];
  for (auto& s : subs)
    if (s.id == id) {
      s.noloop = noloop;
      return;
    }
  subs.push_back(Subscriber{shard, id, noloop});
}

void Tracking::RemovePrefix(const std::string& prefix, uint64_t id) {
  std::lock_guard lock(mu_);
  auto it = prefixes_.find(prefix);
  if (it == prefixes_.end()) return;
  std::erase_if(it->second, [id](const Subscriber& s) { return s.id == id; });
  if (it->second.empty()) prefixes_.erase(it);  // as Redis: a prefix no client has is gone
}

size_t Tracking::prefixes() const {
  std::lock_guard lock(mu_);
  return prefixes_.size();
}

std::vector<Tracking::Delivery> Tracking::Broadcast(std::vector<std::pair<std::string, uint64_t>>& written) {
  std::vector<Delivery> out;
  std::lock_guard lock(mu_);
  for (const auto& [prefix, subs] : prefixes_) {
    // The prefix's keys, each with its last writer (NOLOOP filters by it).
    std::map<std::string_view, uint64_t> keys;
    for (const auto& [key, writer] : written)
      if (std::string_view(key).starts_with(prefix)) keys[key] = writer;
    if (keys.empty()) continue;
    for (const Subscriber& s : subs) {
      Delivery d{s.shard, s.id, {}};
      for (const auto& [key, writer] : keys)
        if (!s.noloop || writer != s.id) d.keys.emplace_back(key);
      if (!d.keys.empty()) out.push_back(std::move(d));
    }
  }
  written.clear();
  return out;
}

// ---- TrackingTable (one shard) ----

void TrackingTable::Remember(Tracking& t, std::string_view key, int client_shard, uint64_t client_id) {
  auto it = keys_.find(absl::string_view(key.data(), key.size()));
  bool added = it == keys_.end();
  if (added) it = keys_.try_emplace(std::string(key)).first;
  if (added) t.keys.fetch_add(1, std::memory_order_relaxed);
  if (it->second.emplace(client_id, client_shard).second) t.items.fetch_add(1, std::memory_order_relaxed);
}

bool TrackingTable::Take(Tracking& t, std::string_view key, std::vector<std::pair<int, uint64_t>>* readers,
                         bool count_key) {
  auto it = keys_.find(absl::string_view(key.data(), key.size()));
  if (it == keys_.end()) return false;
  for (const auto& [id, shard] : it->second) readers->emplace_back(shard, id);
  t.items.fetch_sub(static_cast<int64_t>(it->second.size()), std::memory_order_relaxed);
  if (count_key) t.keys.fetch_sub(1, std::memory_order_relaxed);
  keys_.erase(it);
  return true;
}

void TrackingTable::Clear(Tracking& t) {
  int64_t items = 0;
  for (const auto& [key, readers] : keys_) items += static_cast<int64_t>(readers.size());
  t.items.fetch_sub(items, std::memory_order_relaxed);
  t.keys.fetch_sub(static_cast<int64_t>(keys_.size()), std::memory_order_relaxed);
  keys_.clear();
}

// ---- Deciding what is tracked ----

bool WantsTracking(const TrackingState& t, const CommandSpec* spec) {
  if (t.bcast || !(spec->flags & kCmdReadOnly)) return false;
  // A read-only script is not tracked itself: the commands it calls are.
  if (spec->flags & kCmdScriptRun) return false;
  if ((t.optin && !t.caching) || (t.optout && t.caching)) return false;
  return true;
}

bool NoteTrackedCommand(ClientState& state, const CommandSpec* spec) {
  TrackingState& t = *state.tracking;
  // CLIENT CACHING applies to the next command (a transaction as a whole:
  // the commands queued and EXEC); any CLIENT command keeps it.
  bool client_cmd = spec->name.starts_with("client");
  bool queued = (state.multi && spec->name != "exec") || spec->name == "multi";
  if (!client_cmd && !queued) {
    if (t.caching_used) t.caching = t.caching_used = false;
    if (t.caching) t.caching_used = true;
  }
  t.track_current = WantsTracking(t, spec);
  return t.track_current;
}

// ---- Invalidations ----

namespace {

struct Invalidation {
  std::vector<std::string> keys;
  bool flush = false;  // FLUSHDB/FLUSHALL: a null instead of the keys
  bool bcast = false;  // for BCAST clients only
};
using InvalidationPtr = std::shared_ptr<const Invalidation>;

bool OnShard(Engine& e, int shard) {
  Shard* cur = CurrentShard();
  return cur && cur->set() == &e.shards() && cur->id() == shard;
}

Client* FindClient(Engine& e, int shard, uint64_t id) {
  auto& clients = e.local(shard).clients;
  auto it = clients.find(id);
  if (it == clients.end() || it->second->closed()) return nullptr;
  return it->second.get();
}

// The keys (or the null of the tracking client's protocol) after the frame's head.
void AppendPayload(std::string* f, const Invalidation& inv, int tracking_resp) {
  if (inv.flush) {
    f->append(tracking_resp >= 3 ? "_\r\n" : "$-1\r\n");
    return;
  }
  f->append(fmt::format("*{}\r\n", inv.keys.size()));
  for (const auto& k : inv.keys) f->append(fmt::format("${}\r\n{}\r\n", k.size(), k));
}

// On the tracking client's thread: its redirect target is gone (Redis
// flags it and tells a RESP3 client with a push).
void RedirectBroken(Engine& e, int shard, uint64_t id, uint64_t to) {
  Client* c = FindClient(e, shard, id);
  if (!c || !c->state().tracking || c->state().tracking->redirect != to) return;
  c->state().tracking->broken_redirect = true;
  if (c->state().resp >= 3) c->Push(fmt::format(">2\r\n$21\r\ntracking-redir-broken\r\n:{}\r\n", to));
}

// On the redirect target's thread; (from_shard, from) is the tracking client.
void DeliverRedirected(Engine& e, int shard, uint64_t id, const Invalidation& inv, int tracking_resp, int from_shard,
                       uint64_t from) {
  Client* c = FindClient(e, shard, id);
  if (!c) {  // closed since the tracking client looked it up
    if (OnShard(e, from_shard)) RedirectBroken(e, from_shard, from, id);
    else e.shards().Send(from_shard, [&e, from_shard, from, id] { RedirectBroken(e, from_shard, from, id); });
    return;
  }
  std::string f;
  if (c->state().resp >= 3) {
    f = ">2\r\n$10\r\ninvalidate\r\n";
  } else if (c->state().subscribed()) {
    f = "*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n";
  } else {
    return;  // RESP2 and not subscribed: nothing can be sent to it
  }
  AppendPayload(&f, inv, tracking_resp);
  c->Push(f);
}

// On the tracking client's thread.
void DeliverAt(Engine& e, int shard, uint64_t id, const InvalidationPtr& inv, uint64_t writer) {
  Client* c = FindClient(e, shard, id);
  if (!c || !c->state().tracking) return;
  TrackingState& t = *c->state().tracking;
  // Keys remembered before the client switched to BCAST are not sent.
  if (!inv->flush && inv->bcast != t.bcast) return;
  if (!inv->flush && !inv->bcast && t.noloop && id == writer) return;
  int resp = c->state().resp;
  if (t.redirect == 0) {
    if (resp < 3) return;  // RESP2 has no pushes on the same connection
    std::string f = ">2\r\n$10\r\ninvalidate\r\n";
    AppendPayload(&f, *inv, resp);
    c->Push(f);
    return;
  }
  uint64_t to = t.redirect;
  int to_shard = e.tracking().ShardOfClient(to);
  if (to_shard < 0) {
    RedirectBroken(e, shard, id, to);
    return;
  }
  if (OnShard(e, to_shard) && to != writer) {
    DeliverRedirected(e, to_shard, to, *inv, resp, shard, id);
    return;
  }
  e.shards().Send(to_shard, [&e, to_shard, to, inv, resp, shard, id] {
    DeliverRedirected(e, to_shard, to, *inv, resp, shard, id);
  });
  if (!OnShard(e, to_shard)) e.shards().FlushOutbox();
}

// To client (shard, id): at once when it lives on this thread and is not
// the writer (whose reply is not out yet: it gets it after, as Redis sends
// the current client's invalidations after its reply).
void ToClient(Engine& e, int shard, uint64_t id, InvalidationPtr inv, uint64_t writer) {
  if (OnShard(e, shard) && id != writer) {
    DeliverAt(e, shard, id, inv, writer);
    return;
  }
  e.shards().Send(shard, [&e, shard, id, inv = std::move(inv), writer] { DeliverAt(e, shard, id, inv, writer); });
  // Wake it now, not at the end of this loop iteration: the invalidation
  // then reaches the reader before the writer's reply reaches the writer
  // (as in Redis, where both are written in the same iteration).
  if (!OnShard(e, shard)) e.shards().FlushOutbox();
}

void InvalidateHere(Engine& e, int owner, std::string_view key, uint64_t writer, bool count_key = true) {
  std::vector<std::pair<int, uint64_t>> readers;
  if (!e.local(owner).tracking.Take(e.tracking(), key, &readers, count_key)) return;
  auto inv = std::make_shared<Invalidation>();
  inv->keys.emplace_back(key);
  for (const auto& [shard, id] : readers) ToClient(e, shard, id, inv, writer);
}

}  // namespace

void TrackRead(Engine& e, int owner, bool direct, std::string_view key, int client_shard, uint64_t id) {
  if (direct || OnShard(e, owner)) {
    e.local(owner).tracking.Remember(e.tracking(), key, client_shard, id);
    EnforceTrackingLimit(e, e.shards().shard(owner));
    return;
  }
  e.shards().Send(owner, [&e, owner, k = std::string(key), client_shard, id] {
    e.local(owner).tracking.Remember(e.tracking(), k, client_shard, id);
    EnforceTrackingLimit(e, e.shards().shard(owner));
  });
}

void InvalidateKey(Engine& e, int owner, bool direct, std::string_view key, uint64_t writer) {
  Tracking& t = e.tracking();
  if (t.bcast_active()) {
    Shard* cur = CurrentShard();
    if (cur && cur->set() == &e.shards()) e.local(cur->id()).tracking.bcast_pending.emplace_back(key, writer);
  }
  if (t.keys.load(std::memory_order_relaxed) == 0) return;
  if (direct || OnShard(e, owner)) {
    InvalidateHere(e, owner, key, writer);
    return;
  }
  e.shards().Send(owner, [&e, owner, k = std::string(key), writer] { InvalidateHere(e, owner, k, writer); });
}

void InvalidateAll(Engine& e) {
  ShardSet& set = e.shards();
  for (int i = 0; i < set.size(); ++i) e.local(i).tracking.Clear(e.tracking());
  if (e.tracking().clients() == 0) return;
  auto inv = std::make_shared<Invalidation>();
  inv->flush = true;
  // Sent as messages (to this thread too): after the reply of the flush.
  for (int i = 0; i < set.size(); ++i) {
    set.Send(i, [&e, i, inv] {
      std::vector<uint64_t> ids;
      for (auto& [id, c] : e.local(i).clients)
        if (c->state().tracking) ids.push_back(id);
      for (uint64_t id : ids) DeliverAt(e, i, id, inv, 0);
    });
  }
}

void FlushBroadcast(Engine& e, Shard& shard) {
  auto& pending = e.local(shard.id()).tracking.bcast_pending;
  if (pending.empty()) return;
  for (auto& d : e.tracking().Broadcast(pending)) {
    auto inv = std::make_shared<Invalidation>();
    inv->keys = std::move(d.keys);
    inv->bcast = true;
    ToClient(e, d.shard, d.id, std::move(inv), 0);
  }
}

void EnforceTrackingLimit(Engine& e, Shard& shard) {
  int64_t max = e.config().tracking_table_max_keys.load(std::memory_order_relaxed);
  if (max <= 0) return;
  Tracking& t = e.tracking();
  TrackingTable& table = e.local(shard.id()).tracking;
  for (;;) {
    int64_t cur = t.keys.load(std::memory_order_relaxed);
    if (cur <= max) return;
    const std::string* k = table.AnyKey();
    if (!k) return;  // the excess is in other shards' tables: they evict theirs
    // Claim one key of the excess first, so that shards evicting at the
    // same time never take the total under the limit.
    if (!t.keys.compare_exchange_weak(cur, cur - 1, std::memory_order_relaxed)) continue;
    std::string key = *k;
    InvalidateHere(e, shard.id(), key, 0, false);
  }
}

// ---- CLIENT TRACKING ON / OFF ----

void EnableTracking(Engine& e, Client& c, uint64_t redirect, bool bcast, bool optin, bool optout, bool noloop,
                    const std::vector<std::string>& prefixes) {
  ClientState& st = c.state();
  if (!st.tracking) {
    st.tracking = std::make_unique<TrackingState>();
    st.tracking->shard = c.shard()->id();
    e.tracking().ClientOn(bcast);
  }
  TrackingState& t = *st.tracking;
  t.redirect = redirect;
  t.broken_redirect = false;
  t.bcast = bcast;
  t.optin = optin;
  t.optout = optout;
  t.noloop = noloop;
  if (bcast) {
    auto add = [&t](const std::string& p) {
      auto it = std::lower_bound(t.prefixes.begin(), t.prefixes.end(), p);
      if (it == t.prefixes.end() || *it != p) t.prefixes.insert(it, p);
    };
    if (prefixes.empty()) add("");
    for (const auto& p : prefixes) add(p);
    for (const auto& p : t.prefixes) e.tracking().AddPrefix(p, t.shard, st.id, noloop);
  }
}

void DisableTracking(Engine& e, Client& c) {
  ClientState& st = c.state();
  if (!st.tracking) return;
  for (const auto& p : st.tracking->prefixes) e.tracking().RemovePrefix(p, st.id);
  e.tracking().ClientOff(st.tracking->bcast);
  st.tracking.reset();
}

}  // namespace larder
