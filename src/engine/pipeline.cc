#include "engine/pipeline.h"

#include "common/clock.h"
#include "engine/client.h"
#include "engine/engine.h"
#include "engine/executor.h"
#include "shard/shard.h"

namespace larder {

namespace {
// Buffers larger than this are released once a batch is done: used memory
// counts against maxmemory, and an idle client should not hold a big
// pipeline's worth of buffers.
constexpr size_t kKeepBuffer = 64 * 1024;
constexpr size_t kMaxGroupArena = 256 * 1024 * 1024;

// Message handlers: a group runs on its shard, then goes home.
void GroupHome(void* p) {
  auto* g = static_cast<CommandGroup*>(p);
  g->client->OnGroupDone(g);
}
void RunGroup(void* p) {
  auto* g = static_cast<CommandGroup*>(p);
  ExecuteGroup(g);
  g->engine->shards().SendMessage(g->client_shard, &GroupHome, g);
}
}  // namespace

void CommandGroup::Clear() {
  arena.clear();
  spans.clear();
  cmds.clear();
  out.clear();
  ends.clear();
  constexpr size_t kKeep = 64 << 10;
  TrimCapacity(arena, kKeep);
  TrimCapacity(spans, kKeep / 8);
  TrimCapacity(out, kKeep);
  TrimCapacity(ends, kKeep / 4);
  if (argv.size() > kKeep / 16) argv.clear();
  TrimCapacity(argv, kKeep / 16);
  if (late_count) {
    late_count = 0;
    late_replies.clear();
  }
}

void ExecuteGroup(CommandGroup* g) {
  Shard& shard = *CurrentShard();
  Engine& engine = *g->engine;
  g->ends.reserve(g->cmds.size());
  for (uint32_t i = 0; i < g->cmds.size(); ++i) {
    const CommandGroup::Cmd& cmd = g->cmds[i];
    if (g->argv.size() < cmd.argc) g->argv.resize(cmd.argc);
    std::string_view* args = g->argv.data();
    for (uint32_t j = 0; j < cmd.argc; ++j) {
      auto [off, len] = g->spans[cmd.first_span + j];
      args[j] = std::string_view(g->arena.data() + off, len);
    }
    Call call(cmd.spec, std::span<const std::string_view>(args, cmd.argc), cmd.db, cmd.resp);
    call.origin = g->origin;
    call.group = g;
    call.group_index = i;
    call.track = cmd.track;
    Execute(engine, shard, call, &g->out);
    g->ends.push_back(static_cast<uint32_t>(g->out.size()));
  }
}

Pipeline::Pipeline(Engine* engine, Client* client, int shards) : engine_(engine), client_(client) {
  groups_.resize(static_cast<size_t>(shards));
}

Pipeline::~Pipeline() = default;

std::string* Pipeline::InlineTarget(std::string* output) {
  if (slots_.empty()) return output;
  inline_start_ = inline_.size();
  return &inline_;
}

void Pipeline::EndInline() {
  if (slots_.empty()) return;  // written straight to the output
  slots_.push_back(Slot{kInline, static_cast<uint32_t>(inline_start_), static_cast<uint32_t>(inline_.size())});
}

ReplyTarget Pipeline::AddLate() {
  ReplyTarget t;
  t.client_shard = client_->shard()->id();
  t.client_id = client_->state().id;
  t.batch = batch_;
  t.group = -1;
  t.index = static_cast<uint32_t>(late_.size());
  late_.emplace_back();
  slots_.push_back(Slot{kLate, t.index, 0});
  ++late_pending_;
  return t;
}

bool Pipeline::AddRemote(int shard, const CommandSpec* spec, std::span<const std::string_view> args, int db,
                         int resp) {
  auto& slot = groups_[static_cast<size_t>(shard)];
  if (!slot) {
    slot = std::make_unique<CommandGroup>();
    slot->engine = engine_;
    slot->client = client_;
    slot->shard = shard;
  }
  CommandGroup& g = *slot;
  if (g.arena.size() + 1024 > kMaxGroupArena && !g.empty()) return false;
  if (g.cmds.empty()) used_.push_back(shard);
  CommandGroup::Cmd cmd{spec, static_cast<uint32_t>(g.spans.size()), static_cast<uint32_t>(args.size()),
                        static_cast<uint8_t>(db), static_cast<uint8_t>(resp)};
  for (auto a : args) {
    g.spans.emplace_back(static_cast<uint32_t>(g.arena.size()), static_cast<uint32_t>(a.size()));
    g.arena.append(a);
  }
  slots_.push_back(Slot{shard, static_cast<uint32_t>(g.cmds.size()), 0});
  g.cmds.push_back(cmd);
  return true;
}

size_t Pipeline::BufferBytes() const {
  size_t n = inline_.capacity();
  for (const auto& l : late_) n += l.capacity();
  if (inflight_ == 0)
    for (const auto& g : groups_)
      if (g) n += g->arena.capacity() + g->out.capacity();
  return n;
}

bool Pipeline::Submit(std::string* output) {
  if (slots_.empty() || waiting_) return false;
  ShardSet& set = engine_->shards();
  int self = client_->shard()->id();
  for (int shard : used_) {
    CommandGroup* g = groups_[static_cast<size_t>(shard)].get();
    g->client_shard = self;
    g->client_id = client_->state().id;
    g->batch = batch_;
    g->origin = &client_->state();
    ++inflight_;
    set.SendMessage(g->shard, &RunGroup, g);
  }
  if (Complete()) {
    Assemble(output);
    return true;
  }
  waiting_ = true;
  return false;
}

bool Pipeline::OnGroupDone(CommandGroup* g, std::string* output) {
  --inflight_;
  late_pending_ += static_cast<int>(g->late_count);
  if (!waiting_ || !Complete()) return false;
  Assemble(output);
  return true;
}

bool Pipeline::OnLate(const ReplyTarget& target, std::string reply, std::string* output) {
  if (target.batch != batch_) return false;  // an answer for a batch long done
  // A group's late reply may arrive before the group itself comes home (it
  // was answered while the group ran): late_pending_ then goes below zero
  // until OnGroupDone adds the group's late_count.
  if (target.group >= 0) {
    auto& g = groups_[static_cast<size_t>(target.group)];
    if (!g) return false;
    g->late_replies.emplace_back(target.index, std::move(reply));
  } else {
    if (target.index >= late_.size()) return false;
    late_[target.index] = std::move(reply);
  }
  --late_pending_;
  if (!waiting_ || !Complete()) return false;
  Assemble(output);
  return true;
}

void Pipeline::Mute(size_t first_slot, std::string* output, size_t output_size) {
  for (size_t i = first_slot; i < slots_.size(); ++i) slots_[i].muted = true;
  if (output->size() > output_size) output->resize(output_size);
}

void Pipeline::Assemble(std::string* output) {
  for (const Slot& slot : slots_) {
    if (slot.muted) [[unlikely]] continue;
    if (slot.group == kInline) {
      output->append(inline_, slot.a, slot.b - slot.a);
      continue;
    }
    if (slot.group == kLate) {
      output->append(late_[slot.a]);
      continue;
    }
    CommandGroup& g = *groups_[static_cast<size_t>(slot.group)];
    if (g.late_count) {
      bool found = false;
      for (auto& [index, reply] : g.late_replies)
        if (index == slot.a) {
          output->append(reply);
          found = true;
          break;
        }
      if (found) continue;
    }
    uint32_t begin = slot.a == 0 ? 0 : g.ends[slot.a - 1];
    output->append(g.out, begin, g.ends[slot.a] - begin);
  }
  slots_.clear();
  if (!inline_.empty()) {
    inline_.clear();
    if (inline_.capacity() > kKeepBuffer) inline_.shrink_to_fit();
  }
  if (!late_.empty()) late_.clear();
  for (int shard : used_) {
    auto& g = groups_[static_cast<size_t>(shard)];
    g->Clear();
    if (g->arena.capacity() > kKeepBuffer || g->out.capacity() > kKeepBuffer) g.reset();
  }
  used_.clear();
  waiting_ = false;
  ++batch_;
}

}  // namespace larder
