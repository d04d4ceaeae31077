// A client's pipeline: the commands parsed from one read run as a batch, and
// their replies go out in request order however they were answered.
//
//   command for this shard    → runs inline at once (Execute), its reply in
//                               an inline slot (or straight to the output
//                               when no batch is open)
//   command for shard S       → appended to the batch's CommandGroup for S;
//                               at the end of the batch each group travels
//                               to its shard as one message and comes back
//                               with its replies (one hop per shard, not per
//                               command; nothing allocated once warm)
//   reply that comes later    → a late slot (a load, the journal, a blocking
//                               pop, a gather over shards): Engine::Deliver
//                               fills it through its ReplyTarget
//
// The batch completes when every group is back and every late slot filled;
// the replies are then appended to the output in slot order and the client
// goes on with its next command. This is the only way a reply that is not
// written at once reaches a client.
//
// Order: commands of one client never overtake each other on one shard
// (inline ones run in order, a group runs in order on its shard, and a
// client has at most one batch out). Within one batch, commands on
// different shards may run in parallel (docs/compatibility.md).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "engine/command.h"

namespace larder {

class Client;
class Engine;
struct ClientState;

// One batch's commands for one shard, with their arguments copied into one
// arena. Owned by its client and reused batch after batch; while it is out
// on its shard only that shard touches it.
struct CommandGroup {
  struct Cmd {
    const CommandSpec* spec;
    uint32_t first_span;
    uint32_t argc;
    uint8_t db;
    uint8_t resp;
    bool track = false;  // CLIENT TRACKING: its reads are remembered for the client
  };
  Engine* engine = nullptr;
  Client* client = nullptr;        // kept alive while the group is out
  const ClientState* origin = nullptr;  // slow log fields (not written while out)
  int shard = 0;                   // where it runs
  int client_shard = 0;
  uint64_t client_id = 0;
  uint32_t batch = 0;
  std::string arena;
  std::vector<std::pair<uint32_t, uint32_t>> spans;
  std::vector<Cmd> cmds;
  std::string out;             // replies, back to back
  std::vector<uint32_t> ends;  // end offset of each command's reply in `out`
  std::vector<std::string_view> argv;  // ExecuteGroup's arguments of one command (kept: no zeroing per command)
  // Commands whose reply comes later (their slice of `out` is empty), and
  // those replies once delivered (on the client's thread).
  uint32_t late_count = 0;
  std::vector<std::pair<uint32_t, std::string>> late_replies;

  bool empty() const { return cmds.empty(); }
  void Clear();
};

// Gives an emptied buffer's memory back once it grew past `keep` elements:
// one command of 100,000 arguments must not pin megabytes for as long as
// its connection stays open.
template <typename C>
void TrimCapacity(C& c, size_t keep) {
  if (c.empty() && c.capacity() > keep) C().swap(c);
}

// Runs a group's commands on the calling shard (the group's shard).
void ExecuteGroup(CommandGroup* group);

class Pipeline {
 public:
  Pipeline(Engine* engine, Client* client, int shards);
  ~Pipeline();

  // A batch has slots (some reply is waiting for the ones before it).
  bool open() const { return !slots_.empty(); }
  // The batch was submitted and waits for groups or late replies.
  bool waiting() const { return waiting_; }
  // Groups out on other shards (the client must outlive them).
  int inflight() const { return inflight_; }

  // Where an inline command writes its reply: the output itself when no
  // batch is open, else this batch's inline buffer. After it replied,
  // EndInline() closes its slot.
  std::string* InlineTarget(std::string* output);
  void EndInline();
  // A slot whose reply comes later.
  ReplyTarget AddLate();
  // Appends a command to the group for `shard`; false if that group is full
  // (the batch must be submitted first).
  bool AddRemote(int shard, const CommandSpec* spec, std::span<const std::string_view> args, int db, int resp);
  // The command just added for `shard` is a tracked read (CLIENT TRACKING).
  void TrackLast(int shard) { groups_[static_cast<size_t>(shard)]->cmds.back().track = true; }

  // Sends the groups; if nothing is outstanding the batch completes at once.
  // True when the batch completed (its replies are in `output`).
  bool Submit(std::string* output);
  // A group came back / a late reply arrived. True when the batch
  // completed with it (its replies are in `output`).
  bool OnGroupDone(CommandGroup* g, std::string* output);
  bool OnLate(const ReplyTarget& target, std::string reply, std::string* output);

  uint32_t batch() const { return batch_; }
  // CLIENT REPLY OFF/SKIP: the replies of the slots from `first_slot` on
  // are dropped, and the output is cut back to `output_size` (a reply
  // written straight to it).
  size_t slot_count() const { return slots_.size(); }
  // The memory its buffers hold (the groups' only while none is out on
  // another shard: that shard may be writing them).
  size_t BufferBytes() const;
  void Mute(size_t first_slot, std::string* output, size_t output_size);

 private:
  struct Slot {
    int32_t group;  // >= 0: shard of the group; kInline; kLate
    uint32_t a;     // inline: start in inline_; group: command index; late: index in late_
    uint32_t b;     // inline: end in inline_
    bool muted = false;  // CLIENT REPLY OFF/SKIP: its reply is dropped
  };
  static constexpr int32_t kInline = -1, kLate = -2;
  bool Complete() const { return inflight_ == 0 && late_pending_ <= 0; }
  void Assemble(std::string* output);

  Engine* engine_;
  Client* client_;
  std::vector<std::unique_ptr<CommandGroup>> groups_;  // by shard id
  std::vector<int> used_;                              // shards whose group has commands
  std::vector<Slot> slots_;
  std::string inline_;
  size_t inline_start_ = 0;
  std::vector<std::string> late_;
  int inflight_ = 0;
  int late_pending_ = 0;
  bool waiting_ = false;
  uint32_t batch_ = 1;
};

}  // namespace larder
