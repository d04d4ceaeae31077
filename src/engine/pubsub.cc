#include "engine/pubsub.h"

#include <absl/container/inlined_vector.h>

#include <mutex>

#include "common/glob.h"
#include "engine/client.h"
#include "engine/engine.h"
#include "shard/shard.h"

namespace larder {

namespace {

// "*3\r\n$7\r\nmessage\r\n$<n>\r\n<channel>\r\n$<m>\r\n<message>\r\n" (RESP3:
// '>' for '*'), with the pattern before the channel for a pmessage.
void AppendBulk(std::string* out, std::string_view s) {
  out->push_back('$');
  out->append(std::to_string(s.size()));
  out->append("\r\n");
  out->append(s);
  out->append("\r\n");
}

std::string MessageFrame(std::string_view kind, std::string_view pattern, std::string_view channel,
                         std::string_view message) {
  std::string f;
  f.reserve(32 + kind.size() + pattern.size() + channel.size() + message.size());
  f.append(pattern.empty() ? "*3\r\n" : "*4\r\n");
  AppendBulk(&f, kind);
  if (!pattern.empty()) AppendBulk(&f, pattern);
  AppendBulk(&f, channel);
  AppendBulk(&f, message);
  return f;
}

// The same frame for a RESP3 client: a push.
void PushTo(Client& c, std::string& frame) {
  if (c.state().resp == 3) {
    frame[0] = '>';
    c.Push(frame);
    frame[0] = '*';
  } else {
    c.Push(frame);
  }
}

// (absl's containers look up by absl::string_view.)
absl::string_view Key(std::string_view s) { return absl::string_view(s.data(), s.size()); }

}  // namespace

PubSub::PubSub(Engine* engine) : engine_(engine), shards_(engine->shards().size()) {
  for (int i = 0; i < shards_; ++i) locals_.push_back(std::make_unique<Local>());
}

PubSub::~PubSub() = default;

void PubSub::Adjust(PubSubKind kind, const std::string& name, int shard, int delta) {
  std::unique_lock lock(mu_);
  auto& reg = registry_[static_cast<int>(kind)];
  auto it = reg.find(name);
  if (it == reg.end()) {
    it = reg.emplace(name, Counts{}).first;
    it->second.per_shard.assign(static_cast<size_t>(shards_), 0);
  }
  it->second.per_shard[static_cast<size_t>(shard)] += delta;
  it->second.total += delta;
  if (it->second.total == 0) reg.erase(it);
  subscriptions_.fetch_add(static_cast<uint64_t>(static_cast<int64_t>(delta)), std::memory_order_relaxed);
}

bool PubSub::Subscribe(Client& c, PubSubKind kind, std::string_view name) {
  ClientState& st = c.state();
  if (!st.subs) st.subs = std::make_shared<Subscriptions>();
  int k = static_cast<int>(kind);
  if (!st.subs->names[k].emplace(std::string(name)).second) return false;
  int shard = c.shard()->id();
  locals_[static_cast<size_t>(shard)]->by_name[k][std::string(name)].push_back(st.id);
  Adjust(kind, std::string(name), shard, 1);
  (kind == PubSubKind::kChannel ? st.subscriptions : kind == PubSubKind::kPattern ? st.psubscriptions
                                                                                  : st.ssubscriptions)++;
  ++st.all_subscriptions;
  return true;
}

bool PubSub::Unsubscribe(Client& c, PubSubKind kind, std::string_view name) {
  ClientState& st = c.state();
  int k = static_cast<int>(kind);
  if (!st.subs) return false;
  auto own = st.subs->names[k].find(Key(name));
  if (own == st.subs->names[k].end()) return false;
  std::string key(name);
  st.subs->names[k].erase(own);
  int shard = c.shard()->id();
  auto& local = locals_[static_cast<size_t>(shard)]->by_name[k];
  if (auto it = local.find(key); it != local.end()) {
    std::erase(it->second, st.id);
    if (it->second.empty()) local.erase(it);
  }
  Adjust(kind, key, shard, -1);
  (kind == PubSubKind::kChannel ? st.subscriptions : kind == PubSubKind::kPattern ? st.psubscriptions
                                                                                  : st.ssubscriptions)--;
  --st.all_subscriptions;
  return true;
}

void PubSub::UnsubscribeAll(Client& c) {
  ClientState& st = c.state();
  if (!st.subs) return;
  for (int k = 0; k < 3; ++k) {
    std::vector<std::string> names(st.subs->names[k].begin(), st.subs->names[k].end());
    for (const auto& n : names) Unsubscribe(c, static_cast<PubSubKind>(k), n);
  }
}

size_t PubSub::Send(bool shard, std::string_view channel, std::string_view message) {
  absl::InlinedVector<char, 16> hit(static_cast<size_t>(shards_), 0);
  size_t receivers = 0;
  {
    std::shared_lock lock(mu_);
    auto add = [&](const Counts& c) {
      receivers += c.total;
      for (int i = 0; i < shards_; ++i)
        if (c.per_shard[static_cast<size_t>(i)]) hit[static_cast<size_t>(i)] = 1;
    };
    const auto& channels = registry_[static_cast<int>(shard ? PubSubKind::kShard : PubSubKind::kChannel)];
    if (auto it = channels.find(Key(channel)); it != channels.end()) add(it->second);
    if (!shard)
      for (const auto& [pattern, counts] : registry_[static_cast<int>(PubSubKind::kPattern)])
        if (GlobMatch(pattern, channel)) add(counts);
  }
  if (receivers == 0) return 0;
  Shard* self = CurrentShard();
  int here = self ? self->id() : -1;
  std::shared_ptr<const std::pair<std::string, std::string>> copy;
  for (int i = 0; i < shards_; ++i) {
    if (!hit[static_cast<size_t>(i)]) continue;
    if (i == here) {
      DeliverHere(i, shard, channel, message);
      continue;
    }
    if (!copy) copy = std::make_shared<const std::pair<std::string, std::string>>(channel, message);
    engine_->shards().Send(i, [this, i, shard, copy] { DeliverHere(i, shard, copy->first, copy->second); });
  }
  return receivers;
}

void PubSub::DeliverHere(int s, bool shard, std::string_view channel, std::string_view message) {
  Local& local = *locals_[static_cast<size_t>(s)];
  auto& clients = engine_->local(s).clients;
  auto each = [&](const std::vector<uint64_t>& ids, std::string& frame) {
    for (uint64_t id : ids)
      if (auto c = clients.find(id); c != clients.end()) PushTo(*c->second, frame);
  };
  const auto& channels = local.by_name[static_cast<int>(shard ? PubSubKind::kShard : PubSubKind::kChannel)];
  if (auto it = channels.find(Key(channel)); it != channels.end()) {
    std::string frame = MessageFrame(shard ? "smessage" : "message", {}, channel, message);
    each(it->second, frame);
  }
  if (shard) return;
  for (const auto& [pattern, ids] : local.by_name[static_cast<int>(PubSubKind::kPattern)]) {
    if (!GlobMatch(pattern, channel)) continue;
    std::string frame = MessageFrame("pmessage", pattern, channel, message);
    each(ids, frame);
  }
}

void PubSub::FlushClients(Local& local, int shard) {
  auto ids = std::move(local.to_flush);
  local.to_flush.clear();
  auto& clients = engine_->local(shard).clients;
  for (uint64_t id : ids)
    if (auto c = clients.find(id); c != clients.end()) c->second->FlushPushes();
}

std::vector<std::string> PubSub::Channels(bool shard, std::string_view pattern) const {
  std::vector<std::string> out;
  std::shared_lock lock(mu_);
  for (const auto& [name, counts] : registry_[static_cast<int>(shard ? PubSubKind::kShard : PubSubKind::kChannel)])
    if (pattern.empty() || GlobMatch(pattern, name)) out.push_back(name);
  return out;
}

size_t PubSub::NumSub(bool shard, std::string_view channel) const {
  std::shared_lock lock(mu_);
  const auto& reg = registry_[static_cast<int>(shard ? PubSubKind::kShard : PubSubKind::kChannel)];
  auto it = reg.find(Key(channel));
  return it == reg.end() ? 0 : it->second.total;
}

size_t PubSub::NumPat() const { return Count(PubSubKind::kPattern); }

size_t PubSub::Count(PubSubKind kind) const {
  std::shared_lock lock(mu_);
  return registry_[static_cast<int>(kind)].size();
}

}  // namespace larder
