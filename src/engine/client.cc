#include "engine/client.h"

#include <algorithm>

#include "cache/shard_cache.h"
#include "common/clock.h"
#include "common/log.h"
#include "engine/acl.h"
#include "engine/blocking.h"
#include "engine/dispatcher.h"
#include "engine/aof.h"
#include "engine/engine.h"
#include "engine/pubsub.h"
#include "engine/tracking.h"
#include "engine/transaction.h"
#include "engine/watch.h"
#include "shard/shard.h"

namespace larder {

bool IsLoopbackPeer(std::string_view addr) {
  // As Redis: a Unix socket ("/path:0"), or exactly 127.0.0.1 or ::1 ("ip:port").
  if (!addr.empty() && addr[0] == '/') return true;
  size_t colon = addr.rfind(':');
  std::string_view host = colon == std::string_view::npos ? addr : addr.substr(0, colon);
  return host == "127.0.0.1" || host == "::1";
}

namespace {
// At most this many commands in one batch: a huge pipeline is served in
// parts, and other clients get their turn in between.
constexpr size_t kMaxBatchCommands = 4096;
// A batch's replies on other shards are only seen once it comes back: the
// batch is cut so that they come to about this much (from the size of the
// replies so far; a new client starts with short batches).
constexpr uint64_t kBatchReplyBudget = 4 * 1024 * 1024;
}  // namespace

void Client::AdaptBatchLimit() {
  uint64_t appended = stream_.bytes_written() + stream_.pending_output();
  // (One command at a time, no pipeline: nothing to size; a pipeline that
  // follows starts from the limit as it stands.)
  if (batch_commands_ > 1) {
    uint64_t per_command = (appended - batch_start_appended_) / batch_commands_;
    batch_limit_ = per_command == 0 ? kMaxBatchCommands
                                    : std::clamp<size_t>(kBatchReplyBudget / per_command, 1, kMaxBatchCommands);
  }
  batch_start_appended_ = appended;
  batch_commands_ = 0;
}

Client::Client(Engine* engine, Shard* shard, int fd, std::string peer, std::string local)
    : engine_(engine),
      shard_(shard),
      stream_(&shard->loop(), fd, this),
      pipeline_(engine, this, engine->shards().size()) {
  state_.id = engine->NextClientId();
  state_.fd = fd;
  state_.addr = std::move(peer);
  state_.laddr = std::move(local);
  state_.loopback = IsLoopbackPeer(state_.addr);
  state_.created_ms = UnixTimeMs();
  state_.last_interaction_ms = state_.created_ms;
  state_.authenticated = engine->users().default_open();
  state_.user = engine->users().Default();
  engine->tracking().AddClient(state_.id, shard->id());
}

Client::~Client() {
  if (!closed_) stream_.Close();
}

void Client::Start() { stream_.Start(); }

void Client::Close() { stream_.Close(); }

void Client::OnClosed() {
  if (closed_) return;
  closed_ = true;
  // A blocked client that goes away must not be served an element.
  if (blocked_ && !blocked_->done.exchange(true)) AbandonWaiter(engine_, blocked_);
  blocked_.reset();
  if (engine_->cache().leases_granted()) {
    // Leases this client holds (CACHE FETCH) end now: another waiter takes over.
    Engine* engine = engine_;
    int self = shard_->id();
    uint64_t id = state_.id;
    for (int i = 0; i < engine_->shards().size(); ++i)
      engine_->shards().Send(i, [engine, i, self, id] { engine->cache().shard(i).leases().ReleaseClient(self, id); });
  }
  if (state_.monitor) engine_->RemoveMonitor(shard_->id(), state_.id);
  if (state_.tracking) DisableTracking(*engine_, *this);
  engine_->tracking().RemoveClient(state_.id);
  if (state_.subs) engine_->pubsub().UnsubscribeAll(*this);
  if (state_.multi || state_.watch) DiscardTransaction(engine_, state_);
  engine_->connected_clients.fetch_sub(1);
  engine_->local(shard_->id()).to_close.push_back(state_.id);
}

void Client::OnInputLimit(size_t size) {
  LOG_WARNING("Closing client that reached max query buffer length: id={} addr={} qbuf={}", state_.id, state_.addr,
              size);
}

void Client::OnOutputDrained() {
  if (!closed_ && !pipeline_.waiting() && !stream_.input().empty()) ProcessInput();
}

void Client::ReplyError(std::string_view message) {
  engine_->RecordError(shard_, message);
  std::string* out = pipeline_.InlineTarget(&stream_.output());
  resp::ReplyBuilder rb(out, state_.resp);
  rb.Error(message);
  pipeline_.EndInline();
}

void Client::ReplyRaw(std::string_view bytes) {
  std::string* out = pipeline_.InlineTarget(&stream_.output());
  out->append(bytes);
  pipeline_.EndInline();
}

void Client::ProcessInput() {
  if (closed_ || in_process_) return;
  if (stream_.input().empty()) {  // a batch came home and nothing more was sent
    FinishOutput();
    return;
  }
  in_process_ = true;
  // The command time is the loop iteration's (Shard: refreshed as it wakes).
  // Each pass dispatches one batch; a command that must wait for the batch
  // before it (kRetryLater) starts the next pass once the batch completed.
  uint64_t before = stream_.bytes_read();
  if (before != state_.input_bytes) {
    auto& nib = engine_->local(shard_->id()).net_input_bytes;
    nib.store(nib.load(std::memory_order_relaxed) + (before - state_.input_bytes), std::memory_order_relaxed);
    state_.input_bytes = before;
    state_.last_interaction_ms = CommandTimeMs();
  }
  resp::RequestParser::Limits limits;
  limits.max_bulk_len = engine_->config().proto_max_bulk_len.load(std::memory_order_relaxed);
  parser_.set_limits(limits);  // CONFIG SET applies to connected clients too
  stream_.set_max_input(
      static_cast<size_t>(engine_->config().client_query_buffer_limit.load(std::memory_order_relaxed)));
  // Reading goes past the input pause only for a bulk the parser is waiting
  // for now (set below); not while a batch is out and input waits unparsed.
  stream_.set_read_hint(0);
  for (;;) {
    bool retry = false;
    size_t count = 0;
    batch_bytes_ = 0;
    size_t output_stop = OutputStop();
    if (!pipeline_.waiting()) AdaptBatchLimit();  // (more input while a batch is out: not yet)
    while (!pipeline_.waiting() && !closing_ && !paused_ && !closed_) {
      if (stream_.pending_output() > output_stop) break;
      std::string_view data = stream_.input().Readable();
      if (data.empty()) break;
      parser_.set_unauthenticated(AuthRequired());  // AUTH may be the command before
      size_t consumed = 0;
      auto r = parser_.Parse(data, &args_, &consumed);
      if (r == resp::RequestParser::Result::kNeedMore) {
        stream_.set_read_hint(parser_.pending_bulk_bytes());
        break;
      }
      if (r == resp::RequestParser::Result::kError) {
        LOG_VERBOSE("Protocol error ({}) from client: id={} addr={}", parser_.error(), state_.id, state_.addr);
        ReplyError(parser_.error());
        closing_ = true;
        stream_.input().Consume(data.size());
        break;
      }
      if (r == resp::RequestParser::Result::kEmpty) {
        stream_.input().Consume(consumed);
        continue;
      }
      DispatchResult d = Dispatch(*this, args_);
      if (d == DispatchResult::kRetryLater) {
        retry = !paused_;
        break;
      }
      stream_.input().Consume(consumed);
      batch_bytes_ += consumed;
      ++batch_commands_;
      if (d == DispatchResult::kStop && pipeline_.open()) break;  // runs alone: wait for it
      if (++count >= batch_limit_ && pipeline_.open()) {
        retry = true;
        break;
      }
    }
    bool done = pipeline_.Submit(&stream_.output());
    if (pipeline_.waiting() || closed_) break;
    if (!retry && !done) break;
    if (!retry && stream_.input().empty()) break;
  }
  in_process_ = false;
  if (closed_) return;
  if (stream_.input().empty()) {
    stream_.ShrinkIdleBuffers();
    args_.clear();
    TrimCapacity(args_, 4096);
  }
  stream_.Rearm();
  FinishOutput();
}

size_t Client::OutputStop() const {
  // Parsing stops at back-pressure, or sooner where the client's limit is
  // lower: the replies so far are then checked against it (FinishOutput).
  if (AuthRequired()) return kUnauthenticatedOutput;
  int64_t hard = engine_->config().output_limits[Config::kNormalClient].hard.load(std::memory_order_relaxed);
  size_t stop = net::Stream::kOutputPause;
  if (hard > 0 && static_cast<size_t>(hard) < stop) stop = static_cast<size_t>(hard);
  return stop;
}

bool Client::AuthRequired() const {
  return !state_.authenticated && !engine_->users().default_open();
}

bool Client::OverOutputLimit(int64_t now_ms) {
  size_t used = stream_.pending_output();
  if (used == 0) {
    soft_limit_since_ms_ = 0;
    return false;
  }
  // A client that has not authenticated gets 1 KB of replies, as in Redis.
  if (used > kUnauthenticatedOutput && AuthRequired()) return true;
  // MONITOR clients are normal clients here, as in Redis; a client with a
  // subscription (RESP2 or 3) is of the pubsub class.
  const auto& limit =
      engine_->config().output_limits[state_.subscribed() ? Config::kPubsubClient : Config::kNormalClient];
  int64_t hard = limit.hard.load(std::memory_order_relaxed);
  int64_t soft = limit.soft.load(std::memory_order_relaxed);
  if (hard > 0 && used >= static_cast<size_t>(hard)) return true;
  if (soft > 0 && used >= static_cast<size_t>(soft)) {
    if (soft_limit_since_ms_ == 0) {
      soft_limit_since_ms_ = now_ms;
      return false;
    }
    return now_ms - soft_limit_since_ms_ > limit.soft_seconds.load(std::memory_order_relaxed) * 1000;
  }
  soft_limit_since_ms_ = 0;
  return false;
}

bool Client::CloseIfOverOutputLimit(int64_t now_ms) {
  if (closed_ || !OverOutputLimit(now_ms)) return false;
  LOG_WARNING("Client {} closed for overcoming of output buffer limits.", ClientListLine());
  engine_->output_limit_disconnections.fetch_add(1, std::memory_order_relaxed);
  // The replies are dropped, not sent: the connection goes now.
  stream_.Close();
  return true;
}

void Client::FinishOutput() {
  if (!deferred_pushes_.empty() && !pipeline_.open()) [[unlikely]] {
    stream_.output().append(deferred_pushes_);
    deferred_pushes_.clear();
  }
  if (CloseIfOverOutputLimit(CommandTimeMs())) return;
  // While a batch's groups are out on other shards (microseconds), the
  // replies before them wait too (up to a point), as Redis writes only once
  // it has run what one read brought: an output limit sees the whole
  // pipeline's replies. (A blocked command or a load does not hold them.)
  if (pipeline_.inflight() > 0 && stream_.pending_output() < kHoldOutput) return;
  // appendfsync always: no reply leaves before the writes fed to the AOF
  // before it are synced; the shard sends it after its fsync (AfterEvents).
  if (engine_->aof().HoldsReplies() && !aof_flushing_) [[unlikely]] {
    if (!aof_waiting_) {
      aof_waiting_ = true;
      engine_->local(shard_->id()).aof_waiting.push_back(state_.id);
    }
    return;
  }
  if (closing_ && !pipeline_.waiting()) {
    stream_.CloseAfterFlush();
    return;
  }
  stream_.Flush();
  uint64_t written = stream_.bytes_written();
  if (written != state_.output_bytes) {
    auto& nob = engine_->local(shard_->id()).net_output_bytes;
    nob.store(nob.load(std::memory_order_relaxed) + (written - state_.output_bytes), std::memory_order_relaxed);
    state_.output_bytes = written;
  }
}

void Client::FlushAfterAof() {
  aof_waiting_ = false;
  if (closed_) return;
  aof_flushing_ = true;
  FinishOutput();
  aof_flushing_ = false;
}

void Client::AfterBatch() {
  if (closed_) return;
  ProcessInput();
}

void Client::OnGroupDone(CommandGroup* g) {
  if (closed_) {
    pipeline_.OnGroupDone(g, &stream_.output());
    return;
  }
  if (pipeline_.OnGroupDone(g, &stream_.output())) AfterBatch();
}

void Client::OnLateReply(const ReplyTarget& target, std::string reply) {
  if (closed_) return;
  if (target.group < 0 && blocked_) blocked_.reset();  // a blocking command was answered
  if (pipeline_.OnLate(target, std::move(reply), &stream_.output())) AfterBatch();
}

void Client::Push(std::string_view frame) {
  if (closed_) return;
  // While its batch is dispatched a reply of its own may be half written
  // into the output (a command that notified, or published to itself);
  // while the batch waits for other shards its replies are not out yet
  // (a tracking invalidation of its own write comes after its reply).
  if (in_process_ || pipeline_.open()) {
    deferred_pushes_.append(frame);
  } else {
    stream_.output().append(frame);
    if (CloseIfOverOutputLimit(CommandTimeMs())) return;
  }
  if (!flush_queued_) {
    flush_queued_ = true;
    // Written at the end of the loop's iteration, or of the next one when
    // a timer pushed (an expiry's or eviction's invalidation): the loop
    // must not sleep with it in the buffer.
    if (engine_->pubsub().NeedsFlush(shard_->id(), state_.id)) shard_->PostAfterIo([] {});
  }
}

void Client::FlushPushes() {
  flush_queued_ = false;
  if (closed_ || in_process_) return;
  FinishOutput();
  // Pushes to a client between its commands (invalidations, messages): the
  // buffer they grew is not kept. Kept, every tracking client an eviction's
  // invalidations reached would hold more memory than the eviction freed,
  // and the next check would evict again (Redis holds a fixed 16 KB per
  // client from its start instead).
  if (!pipeline_.open()) {
    stream_.ReleaseSentOutput();
    if (deferred_pushes_.capacity() > 64 && deferred_pushes_.empty()) std::string().swap(deferred_pushes_);
  }
}

void Client::AppendOutput(std::string_view s) {
  if (closed_) return;
  stream_.output().append(s);
  if (CloseIfOverOutputLimit(UnixTimeMs())) return;
  stream_.Flush();
}

Client::Memory Client::MemoryUsage() const {
  Memory m;
  auto& stream = const_cast<net::Stream&>(stream_);
  m.input = stream.input().capacity();
  m.output = stream.pending_output();
  m.total = m.input + stream.output_capacity() + pipeline_.BufferBytes();
  return m;
}

std::string Client::ClientListLine() const {
  int64_t now = UnixTimeMs();
  std::string flags;
  // In Redis's order.
  const TrackingState* t = state_.tracking.get();
  if (state_.monitor) flags += "O";
  if (state_.subscribed()) flags += "P";
  if (state_.multi) flags += "x";
  if (blocked_) flags += "b";
  if (t) flags += "t";
  if (t && t->broken_redirect) flags += "R";
  if (t && t->bcast) flags += "B";
  if (state_.watch && state_.watch->dirty.load(std::memory_order_relaxed)) flags += "d";
  if (state_.no_evict) flags += "e";
  if (flags.empty()) flags = "N";
  const net::Stream& s = stream_;
  auto& in = const_cast<net::Stream&>(s).input();
  // Redis counts the commands being executed as still in the query buffer.
  size_t qbuf = in.size() + (in_process_ || pipeline_.waiting() ? batch_bytes_ : 0);
  return fmt::format(
      "id={} addr={} laddr={} fd={} name={} age={} idle={} flags={} db={} sub={} psub={} ssub={} "
      "multi={} qbuf={} qbuf-free={} argv-mem=0 multi-mem={} rbs={} rbp=0 obl=0 oll=0 omem={} "
      "tot-mem={} events={} cmd={} user={} redir={} resp={}",
      state_.id, state_.addr, state_.laddr, state_.fd, state_.name, (now - state_.created_ms) / 1000,
      (now - state_.last_interaction_ms) / 1000, flags, state_.db,
      state_.subscriptions, state_.psubscriptions, state_.ssubscriptions, state_.multi ? static_cast<int64_t>(state_.multi->cmds.size()) : -1, qbuf, in.capacity() - in.size(),
      state_.multi ? state_.multi->bytes : 0, in.capacity(), s.pending_output(), in.capacity() + s.output_capacity(), s.wants_write() ? "rw" : "r",
      state_.last_cmd ? std::string_view(state_.last_cmd->name) : std::string_view("NULL"),
      state_.user ? std::string_view(state_.user->name) : std::string_view("default"),
      t ? static_cast<int64_t>(t->redirect) : int64_t{-1}, state_.resp);
}

}  // namespace larder
