// One client connection: socket I/O, request parsing, command dispatch and
// ordered replies. Lives on the shard thread that accepted it.
//
// Pipelines. Commands parsed from one read are dispatched as a batch. A command
// whose keys are on this shard runs at once; one whose keys are on another
// shard joins that shard's group, and each group travels as one message to its
// shard and back. Replies are reassembled in request order. A command that
// needs several shards or server-wide state (MGET across shards, MSET, KEYS,
// INFO, ...) runs alone, after the batch before it has completed. So commands
// of one client never overtake each other on one shard; within one batch,
// commands on different shards may run in parallel (see docs/compatibility.md).
#pragma once

#include "cache/read_through.h"

#include <map>

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "net/buffer.h"
#include "net/event_loop.h"
#include "resp/parser.h"
#include "engine/client_state.h"

namespace larder {

class Server;
class Shard;
struct CommandSpec;

// Commands of one batch that run on one shard, with their arguments copied
// into one arena. Travels to the shard and back by move.
struct CommandGroup {
  struct Cmd {
    const CommandSpec* spec;
    uint32_t first_span;
    uint32_t argc;
    uint8_t db;
    uint8_t resp;
  };
  int shard = 0;
  std::string arena;
  std::vector<std::pair<uint32_t, uint32_t>> spans;
  std::vector<Cmd> cmds;
  std::string out;              // replies, back to back
  std::vector<uint32_t> ends;   // end offset of each command's reply in `out`
  std::string addr, name;       // for the slow log
  int client_shard = 0;         // who sent it (replies that come late go there)
  uint64_t client_id = 0;
  // Commands whose reply waits for a read-through load (their slot in `out`
  // is empty), and those replies once they arrive.
  uint32_t late_count = 0;
  std::map<uint32_t, std::string> late_replies;

  bool empty() const { return cmds.empty(); }
  void Clear() {
    arena.clear();
    spans.clear();
    cmds.clear();
    out.clear();
    ends.clear();
    late_count = 0;
    late_replies.clear();
  }
};

// Runs a command for its reply text alone (a read-through waiter's command,
// re-run once its keys are loaded).
std::string RunForReply(Server* server, Shard* shard, const CommandSpec* spec, std::span<const std::string_view> args,
                        int db, int resp);
// The same for a write command that waited for its key to load: it runs
// through the write path (write-through, write-behind) once more, which may
// hold its reply again (true; it then goes to `target` later). It does not
// wait for a load a second time.
bool RunLoadedWrite(Server* server, Shard* shard, const CommandSpec* spec, std::span<const std::string_view> args,
                    int db, int resp, const cache::LateTarget& target, std::string* out);

// Runs the commands of a group on the calling shard.
void ExecuteGroup(Server* server, Shard* shard, CommandGroup* group);

class Connection : public net::EventHandler {
 public:
  Connection(Server* server, Shard* shard, int fd, std::string peer, std::string local);
  ~Connection() override;

  void OnEvent(uint32_t events) override;
  void Start();

  ClientState& state() { return state_; }
  Server* server() const { return server_; }
  Shard* shard() const { return shard_; }
  bool closed() const { return closed_; }

  // For Route::kConnection handlers that answer later: call BeginAsync()
  // before returning; FinishAsync() on this thread delivers the reply and
  // resumes the client. A client waits for at most one async reply.
  void BeginAsync() { async_pending_ = true; waiting_ = true; }
  void FinishAsync(std::string_view reply);
  // Delivers an async reply to a client by id, if it still exists (this shard).
  static void FinishAsyncFor(Server* server, int shard, uint64_t client_id, std::string reply);
  // Delivers the reply of a blocking command that was served or timed out.
  static void FinishBlockedFor(Server* server, int shard, uint64_t client_id, std::string reply);
  // Delivers the reply of a command that waited for a read-through load, in
  // its place in the client's pipeline. Any thread.
  static void DeliverLate(Server* server, const cache::LateTarget& target, std::string reply);
  // Many such replies for clients of one thread, in one message.
  static void DeliverLateBatch(Server* server, int client_shard,
                               std::vector<std::pair<cache::LateTarget, std::string>> replies);

  void CloseAfterReply() { close_after_reply_ = true; }
  void Close();                      // now (deferred destruction)
  void AppendOutput(std::string_view s);  // MONITOR feed, pushes
  void ProcessInput();
  // Lets a client held by CLIENT PAUSE try its next command again.
  void Resume() {
    paused_ = false;
    ProcessInput();
  }
  std::string ClientListLine() const;

 private:
  enum class DispatchResult { kDone, kRetryLater };

  void OnReadable();
  void Flush();
  void UpdateInterest();
  DispatchResult Dispatch(std::vector<std::string_view>& args);
  void ReplyError(std::string_view msg);
  void RunInline(const CommandSpec* spec, std::span<const std::string_view> args, std::string* out);
  void RunConnectionCommand(const CommandSpec* spec, std::span<const std::string_view> args);
  void AddToGroup(int shard, const CommandSpec* spec, std::span<const std::string_view> args);
  void StartMultiShard(const CommandSpec* spec, std::span<const std::string_view> args,
                       const std::vector<int>& shards);
  void StartBlocking(const CommandSpec* spec, std::span<const std::string_view> args,
                     std::vector<int> shards);
  void SubmitBatch();
  void OnGroupDone(std::unique_ptr<CommandGroup> g);
  void AssembleBatch();
  void OnLateReply(const cache::LateTarget& target, std::string reply);
  // Appends a reply at the current position of the batch (or to output).
  std::string* ReplyTarget();
  void EndReplySlot();

  Server* server_;
  Shard* shard_;
  ClientState state_;
  resp::RequestParser parser_;
  net::IoBuffer rbuf_;
  std::string wbuf_;
  size_t wpos_ = 0;
  std::vector<std::string_view> args_;
  uint32_t interest_ = 0;

  // Batch state.
  struct Slot {
    int group;       // shard id, or -1 for text in inline_out_
    uint32_t index;  // command index in the group, or start offset in inline_out_
    uint32_t end;    // end offset in inline_out_
  };
  bool batch_active_ = false;
  std::vector<std::unique_ptr<CommandGroup>> groups_;  // by shard id
  std::vector<Slot> order_;
  std::string inline_out_;
  size_t inline_start_ = 0;
  int inflight_ = 0;
  int late_pending_ = 0;  // replies of this batch still waiting for loads

  bool waiting_ = false;        // a batch or async reply is outstanding
  bool async_pending_ = false;
  bool closed_ = false;
  bool close_after_reply_ = false;
  bool paused_ = false;         // held by CLIENT PAUSE
  std::shared_ptr<struct Waiter> blocked_;  // set while a blocking command waits
};

}  // namespace larder
