// One client connection as the engine sees it: the socket stream (net/),
// the request parser, the client's state (CLIENT LIST fields, selected
// database, protocol, authentication) and its pipeline. Lives on the shard
// thread that accepted it; touched only there.
//
//   Stream::OnEvent (net/stream.cc) ──► Client::OnInput ──► parse a command
//   ──► Dispatch (dispatcher.cc) ──► Execute inline, or a group to the key's
//   shard (pipeline.cc) ──► replies in order into the stream's output ──►
//   Stream::Flush
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "engine/client_state.h"
#include "engine/pipeline.h"
#include "net/stream.h"
#include "resp/parser.h"

namespace larder {

class Engine;
class Shard;
struct Waiter;

// A peer address ("ip:port") on the loopback interface, as Redis counts it.
bool IsLoopbackPeer(std::string_view addr);

class Client : public net::StreamHandler {
 public:
  Client(Engine* engine, Shard* shard, int fd, std::string peer, std::string local);
  ~Client() override;

  void Start();

  ClientState& state() { return state_; }
  const ClientState& state() const { return state_; }
  Engine* engine() const { return engine_; }
  Shard* shard() const { return shard_; }
  Pipeline& pipeline() { return pipeline_; }
  net::Stream& stream() { return stream_; }
  bool closed() const { return closed_; }
  // Still needed after closing: a group of its batch is out on a shard.
  bool busy() const { return pipeline_.inflight() > 0; }

  // QUIT, protocol errors: close once the replies so far are sent.
  void CloseAfterReply() { closing_ = true; }
  void Close();
  // MONITOR lines (straight to the output, outside any batch).
  void AppendOutput(std::string_view s);
  // A pub/sub message or other push frame: into the output between
  // replies (after the batch being dispatched, when it is this client's own
  // command that published), sent at the end of the loop iteration.
  void Push(std::string_view frame);
  // The end of the iteration: sends what Push() wrote (engine/pubsub.cc).
  void FlushPushes();
  // CLIENT PAUSE: the client tries its next command again.
  void Resume() {
    paused_ = false;
    ProcessInput();
  }
  void Pause() { paused_ = true; }
  // A blocking command's waiter (set while the client is blocked).
  void set_blocked(std::shared_ptr<Waiter> w) { blocked_ = std::move(w); }
  const std::shared_ptr<Waiter>& blocked() const { return blocked_; }

  // Messages from the pipeline's groups and late replies (this thread).
  void OnGroupDone(CommandGroup* g);
  void OnLateReply(const ReplyTarget& target, std::string reply);
  // An error reply in the current position (dispatcher's refusals).
  void ReplyError(std::string_view message);
  // A reply already encoded (+QUEUED), in the current position.
  void ReplyRaw(std::string_view bytes);

  std::string ClientListLine() const;
  // The memory of its buffers: input, unsent output, and the total with
  // the buffers' spare room and the batch's groups.
  struct Memory {
    size_t input = 0, output = 0, total = 0;
  };
  Memory MemoryUsage() const;

  // client-output-buffer-limit: true (and the connection closed, its
  // replies dropped) when the unsent output is over the client's hard
  // limit, or over the soft one for longer than allowed. Also run by the
  // cron, for a soft limit outlasted while nothing happens.
  bool CloseIfOverOutputLimit(int64_t now_ms);
  // Must this client still authenticate (the default user has a password)?
  bool AuthRequired() const;

  // net::StreamHandler
  // appendfsync always: the replies held for the AOF's sync go out now.
  void FlushAfterAof();

  void OnInput() override { ProcessInput(); }
  void OnOutputDrained() override;
  void OnInputLimit(size_t size) override;
  void OnClosed() override;

 private:
  void ProcessInput();
  // Sends what the replies so far put in the output (or closes after them).
  void FinishOutput();
  void AfterBatch();
  bool OverOutputLimit(int64_t now_ms);
  // How much unsent output stops parsing more commands.
  size_t OutputStop() const;
  static constexpr size_t kUnauthenticatedOutput = 1024;
  static constexpr size_t kHoldOutput = 1024 * 1024;
  // Sizes the next batch from the reply bytes of the last one.
  void AdaptBatchLimit();

  Engine* engine_;
  Shard* shard_;
  ClientState state_;
  net::Stream stream_;
  resp::RequestParser parser_;
  std::vector<std::string_view> args_;
  size_t batch_bytes_ = 0;  // input consumed by the batch now running
  Pipeline pipeline_;
  std::shared_ptr<Waiter> blocked_;
  bool closed_ = false;
  bool closing_ = false;
  bool aof_waiting_ = false;   // in the shard's aof_waiting list
  bool aof_flushing_ = false;  // FlushAfterAof: the sync is done
  bool paused_ = false;
  bool in_process_ = false;
  int64_t soft_limit_since_ms_ = 0;  // over the soft output limit since then
  size_t batch_limit_ = 32;          // commands per batch (see AdaptBatchLimit)
  size_t batch_commands_ = 0;        // commands of the batch being measured
  uint64_t batch_start_appended_ = 0;
  std::string deferred_pushes_;  // pushed while its own batch was dispatched
  bool flush_queued_ = false;    // Push() asked for FlushPushes()
};

}  // namespace larder
