#include "server/connection.h"

#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "commands/blocking.h"
#include "commands/command.h"
#include "common/clock.h"
#include "common/log.h"
#include "server/server.h"
#include "shard/shard.h"

namespace larder {

namespace {
constexpr size_t kReadChunk = 16 * 1024;
constexpr size_t kMaxReadPerEvent = 1024 * 1024;    // fairness between clients
constexpr size_t kOutputPause = 64 * 1024 * 1024;   // stop parsing while this much is unsent
constexpr size_t kMaxGroupArena = 256 * 1024 * 1024;
// Buffers larger than this are released once a batch is done: used memory
// counts against maxmemory, and an idle client should not hold a big
// pipeline's worth of buffers.
constexpr size_t kKeepBuffer = 64 * 1024;
constexpr size_t kMaxBatchCommands = 4096;
}  // namespace

Connection::Connection(Server* server, Shard* shard, int fd, std::string peer, std::string local)
    : server_(server), shard_(shard) {
  state_.id = server->NextClientId();
  state_.fd = fd;
  state_.addr = std::move(peer);
  state_.laddr = std::move(local);
  state_.created_ms = UnixTimeMs();
  state_.last_interaction_ms = state_.created_ms;
  state_.authenticated = server->config().requirepass().empty();
  resp::RequestParser::Limits limits;
  limits.max_bulk_len = server->config().proto_max_bulk_len.load();
  parser_.set_limits(limits);
  groups_.resize(static_cast<size_t>(server->shards().size()));
}

Connection::~Connection() {
  if (!closed_) Close();
}

void Connection::Start() { UpdateInterest(); }

void Connection::UpdateInterest() {
  if (closed_) return;
  uint32_t want = 0;
  bool output_pending = wpos_ < wbuf_.size();
  // Back-pressure: while much output is unsent, stop reading requests.
  if (!(output_pending && wbuf_.size() - wpos_ > kOutputPause) && !close_after_reply_) want |= EPOLLIN;
  if (output_pending) want |= EPOLLOUT;
  if (want == interest_) return;
  if (interest_ == 0 && want != 0) {
    shard_->loop().Add(state_.fd, want, this);
  } else if (want == 0) {
    shard_->loop().Remove(state_.fd);
  } else {
    shard_->loop().Modify(state_.fd, want, this);
  }
  interest_ = want;
}

void Connection::Close() {
  if (closed_) return;
  closed_ = true;
  // A blocked client that goes away must not be served an element.
  if (blocked_ && !blocked_->done.exchange(true)) AbandonWaiter(server_, blocked_);
  blocked_.reset();
  if (server_->cache().leases_granted()) {
    // Leases this client holds (CACHE FETCH) end now: another waiter takes over.
    Server* server = server_;
    int self = shard_->id();
    uint64_t id = state_.id;
    for (int i = 0; i < server_->shards().size(); ++i)
      server_->shards().Send(i, [server, i, self, id] { server->local(i).cache->ReleaseClient(self, id); });
  }
  if (interest_) shard_->loop().Remove(state_.fd);
  interest_ = 0;
  close(state_.fd);
  if (state_.monitor) server_->RemoveMonitor(shard_->id(), state_.id);
  server_->connected_clients.fetch_sub(1);
  server_->local(shard_->id()).to_close.push_back(state_.id);
}

void Connection::OnEvent(uint32_t events) {
  if (closed_) return;
  if (events & EPOLLIN) OnReadable();
  if (closed_) return;
  if (events & EPOLLOUT) Flush();
  if (closed_) return;
  if ((events & (EPOLLERR | EPOLLHUP)) && !(events & EPOLLIN)) Close();
}

void Connection::OnReadable() {
  size_t total = 0;
  int64_t limit = server_->config().client_query_buffer_limit.load(std::memory_order_relaxed);
  resp::RequestParser::Limits limits;
  limits.max_bulk_len = server_->config().proto_max_bulk_len.load(std::memory_order_relaxed);
  parser_.set_limits(limits);  // CONFIG SET applies to connected clients too
  while (total < kMaxReadPerEvent) {
    size_t want = kReadChunk;
    // A big bulk is announced: read it in large chunks.
    if (parser_.pending_bulk_bytes() > want) want = std::min<size_t>(parser_.pending_bulk_bytes(), 1 << 20);
    char* dst = rbuf_.Reserve(want);
    ssize_t n = read(state_.fd, dst, rbuf_.Writable());
    if (n > 0) {
      rbuf_.Commit(static_cast<size_t>(n));
      total += static_cast<size_t>(n);
      if (static_cast<int64_t>(rbuf_.size()) > limit) {
        LOG_WARNING("Closing client that reached max query buffer length: id={} addr={} qbuf={}",
                    state_.id, state_.addr, rbuf_.size());
        Close();
        return;
      }
      if (rbuf_.Writable() > 0) break;  // short read: the socket is drained
      continue;
    }
    if (n == 0) {
      Close();
      return;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) break;
    Close();
    return;
  }
  if (total == 0) return;
  state_.input_bytes += total;
  auto& nib = server_->local(shard_->id()).net_input_bytes;
  nib.store(nib.load(std::memory_order_relaxed) + total, std::memory_order_relaxed);
  state_.last_interaction_ms = CommandTimeMs();
  ProcessInput();
}

void Connection::ProcessInput() {
  if (closed_) return;
  RefreshCommandTime();
  // Each pass dispatches one batch; a command that must wait for the batch
  // before it (kRetryLater) starts the next pass once the batch completed.
  bool retry = true;
  while (retry) {
    retry = false;
    size_t batch_count = 0;
    while (!waiting_ && !close_after_reply_ && !paused_) {
      if (wbuf_.size() - wpos_ > kOutputPause) break;
      std::string_view data = rbuf_.Readable();
      if (data.empty()) break;
      size_t consumed = 0;
      auto r = parser_.Parse(data, &args_, &consumed);
      if (r == resp::RequestParser::Result::kNeedMore) break;
      if (r == resp::RequestParser::Result::kError) {
        LOG_VERBOSE("Protocol error ({}) from client: id={} addr={}", parser_.error(), state_.id,
                    state_.addr);
        ReplyError(parser_.error());
        close_after_reply_ = true;
        rbuf_.Consume(data.size());
        break;
      }
      if (r == resp::RequestParser::Result::kEmpty) {
        rbuf_.Consume(consumed);
        continue;
      }
      if (Dispatch(args_) == DispatchResult::kRetryLater) {
        retry = !paused_;
        break;
      }
      rbuf_.Consume(consumed);
      if (++batch_count >= kMaxBatchCommands && batch_active_) {
        retry = true;
        break;
      }
    }
    SubmitBatch();
    if (waiting_) break;
  }
  if (rbuf_.empty()) rbuf_.ShrinkIfIdle(64 * 1024);
  Flush();
}

std::string* Connection::ReplyTarget() {
  if (!batch_active_) return &wbuf_;
  inline_start_ = inline_out_.size();
  return &inline_out_;
}

void Connection::EndReplySlot() {
  if (!batch_active_) return;
  order_.push_back(Slot{-1, static_cast<uint32_t>(inline_start_), static_cast<uint32_t>(inline_out_.size())});
}

void Connection::ReplyError(std::string_view msg) {
  std::string* out = ReplyTarget();
  resp::ReplyBuilder rb(out, state_.resp);
  rb.Error(msg);
  EndReplySlot();
}

static std::string UnknownCommandError(std::span<const std::string_view> args) {
  // As Redis: quote arguments while the list is under 128 bytes, each cut to
  // what is left of those 128.
  std::string list;
  for (size_t i = 1; i < args.size() && list.size() < 128; ++i) {
    size_t room = 128 - list.size();
    list.push_back('\'');
    list.append(args[i].substr(0, room));
    list.append("' ");
  }
  return FormatError(OpStatus::kUnknownCommand, args[0].substr(0, 128), list);
}

Connection::DispatchResult Connection::Dispatch(std::vector<std::string_view>& args) {
  std::span<const std::string_view> argv(args.data(), args.size());
  const CommandSpec* spec = Commands().Find(argv[0]);
  if (!spec) {
    ReplyError(UnknownCommandError(argv));
    server_->total_error_replies.fetch_add(1, std::memory_order_relaxed);
    return DispatchResult::kDone;
  }
  if (!spec->subcommands.empty()) {
    if (argv.size() < 2) {
      ReplyError(FormatError(OpStatus::kWrongArity, spec->name));
      return DispatchResult::kDone;
    }
    const CommandSpec* sub = nullptr;
    std::string want(spec->name + "|");
    for (char c : argv[1]) want.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    for (const auto& s : spec->subcommands) {
      if (s.name == want) sub = &s;
    }
    if (!sub) {
      std::string upper = spec->name;
      for (auto& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      ReplyError(FormatError(OpStatus::kUnknownSubcommand, argv[1].substr(0, 128), upper));
      return DispatchResult::kDone;
    }
    spec = sub;
  }
  if (!spec->ArityOk(argv.size())) {
    ReplyError(FormatError(OpStatus::kWrongArity, spec->name));
    auto& st = server_->local(shard_->id()).cmd_stats;
    if (st.size() > static_cast<size_t>(spec->id)) ++st[static_cast<size_t>(spec->id)].rejected;
    return DispatchResult::kDone;
  }
  if (!state_.authenticated && !(spec->flags & kCmdNoAuth)) {
    if (server_->config().requirepass().empty()) {
      state_.authenticated = true;
    } else {
      ReplyError(FormatError(OpStatus::kNoAuth));
      return DispatchResult::kDone;
    }
  }
  if (server_->PausedFor(spec->flags)) {
    paused_ = true;
    server_->local(shard_->id()).paused.push_back(state_.id);
    return DispatchResult::kRetryLater;
  }
  // maxmemory: refuse commands that may grow memory when over the limit and
  // nothing can be evicted.
  if ((spec->flags & kCmdDenyOom) && !server_->AdmitUnderMaxmemory(*shard_)) {
    ReplyError(FormatError(OpStatus::kOutOfMemory));
    auto& st = server_->local(shard_->id()).cmd_stats;
    if (st.size() > static_cast<size_t>(spec->id)) ++st[static_cast<size_t>(spec->id)].rejected;
    return DispatchResult::kDone;
  }
  if (server_->has_monitors() && !(spec->flags & kCmdSkipMonitor))
    server_->FeedMonitors(state_.db, state_.addr, argv);
  state_.last_cmd = spec;
  ++state_.commands;

  if (spec->route == Route::kConnection) {
    if (batch_active_ && (spec->flags & kCmdGathers)) return DispatchResult::kRetryLater;
    RunConnectionCommand(spec, argv);
    return DispatchResult::kDone;
  }

  auto key_idx = spec->KeyIndexes(argv);
  ShardSet& set = server_->shards();
  if (key_idx.size() > 1 && (spec->flags & kCmdWrite) && server_->cache().active()) {
    cache::ShardCache* sc = cache::CurrentShardCache();
    for (size_t i : key_idx)
      if (sc && sc->IsWriteKey(argv[i])) {
        ReplyError(FormatError(OpStatus::kWriteKeyNotAlone));
        return DispatchResult::kDone;
      }
  }
  if (spec->flags & kCmdBlocking) {
    if (batch_active_) return DispatchResult::kRetryLater;
    std::vector<int> shards;
    for (size_t i : key_idx) shards.push_back(set.ShardOf(argv[i]));
    if (shards.empty()) shards.push_back(shard_->id());
    StartBlocking(spec, argv, std::move(shards));
    return DispatchResult::kDone;
  }
  int target = key_idx.empty() ? shard_->id() : set.ShardOf(argv[key_idx[0]]);
  bool single = true;
  for (size_t i = 1; i < key_idx.size(); ++i) {
    if (set.ShardOf(argv[key_idx[i]]) != target) {
      single = false;
      break;
    }
  }
  if (single) {
    if (!batch_active_ && target == shard_->id()) {
      RunInline(spec, argv, &wbuf_);
      return DispatchResult::kDone;
    }
    if (groups_[static_cast<size_t>(target)] &&
        groups_[static_cast<size_t>(target)]->arena.size() + 1024 > kMaxGroupArena)
      return DispatchResult::kRetryLater;
    AddToGroup(target, spec, argv);
    return DispatchResult::kDone;
  }
  if (batch_active_) return DispatchResult::kRetryLater;
  std::vector<int> shards;
  for (size_t i : key_idx) shards.push_back(set.ShardOf(argv[i]));
  StartMultiShard(spec, argv, shards);
  return DispatchResult::kDone;
}

namespace {
// Runs one command's handler into `out` and does the bookkeeping every path
// shares: command statistics, error statistics, the slow log.
// With `late` (the command's place in a client's pipeline), a read command
// may find its keys loading (read-through): its reply is then dropped and
// comes later through Connection::DeliverLate; returns true in that case.
bool RunHandler(Server* server, Shard* shard, const CommandSpec* spec, std::span<const std::string_view> args,
                int db, int resp, Connection* conn, const std::string& addr, const std::string& name,
                std::string* out, const cache::LateTarget* late = nullptr, bool loaded = false) {
  size_t start = out->size();
  resp::ReplyBuilder rb(out, resp);
  CommandContext ctx(args, &rb, shard, server, spec, db);
  ctx.conn = conn;
  int64_t t0 = Ticks();
  cache::ShardCache* rt = nullptr;
  if (late && (spec->flags & kCmdWrite) && server->cache().active() && cache::CurrentShardCache()) {
    // A write that needs the key's old value on a rule's key not in the
    // cache: the key loads first, then the command runs (RunLoadedWrite).
    if (!loaded && cache::CurrentShardCache()->LoadBeforeWrite(spec, args, db, resp, *late)) return true;
    auto r = cache::CurrentShardCache()->WriteThrough(spec, args, db, resp, *late, out);
    if (r == cache::ShardCache::WriteResult::kDeferred) return true;
    if (r == cache::ShardCache::WriteResult::kAnswered) {
      bool failed = out->size() > start && (*out)[start] == '-';
      server->RecordCommand(shard, spec, 0, failed, failed ? std::string_view(*out).substr(start + 1) : "");
      return false;
    }
  }
  if (late && (spec->flags & kCmdReadOnly) && server->cache().active()) {
    rt = cache::CurrentShardCache();
    if (rt) rt->Begin(spec, args, db, resp);
  }
  spec->handler(ctx);
  if (rt && rt->End(*late)) {
    out->resize(start);  // the reply comes once the keys are loaded
    return true;
  }
  if ((spec->flags & kCmdWrite) && shard) {
    // A write to a key that CACHE FETCH callers wait for: the value is there
    // now, so its lease ends and the waiters are served.
    BlockingRegistry& reg = server->local(shard->id()).blocking;
    cache::ShardCache* sc = cache::CurrentShardCache();
    if (!reg.empty() || (sc && sc->has_leases())) {
      for (size_t i : spec->KeyIndexes(args)) {
        if (sc) sc->EndLease(db, args[i]);
        if (reg.HasWaiters(db, args[i])) reg.MarkReady(db, args[i]);
      }
    }
  }
  int64_t dt = TicksToUs(Ticks() - t0);
  bool failed = out->size() > start && (*out)[start] == '-';
  std::string_view err = failed ? std::string_view(*out).substr(start + 1) : std::string_view();
  server->RecordCommand(shard, spec, dt, failed, err);
  // Write-behind: the change goes to the journal; the reply waits for it.
  bool held = late && !failed && (spec->flags & kCmdWrite) && server->cache().active() &&
              cache::CurrentShardCache() && cache::CurrentShardCache()->AfterWrite(spec, args, db, *late, out, start);
  // What the command allocated counts against maxmemory at once, and the
  // shard whose keys grew frees its share of any excess.
  if (shard) server->AfterCommand(*shard);
  if (!(spec->flags & kCmdSkipSlowlog)) server->MaybeSlowlog(shard, args, dt, addr, name);
  return held;
}
}  // namespace

std::string RunForReply(Server* server, Shard* shard, const CommandSpec* spec, std::span<const std::string_view> args,
                        int db, int resp) {
  std::string out;
  static const std::string kNone;
  RunHandler(server, shard, spec, args, db, resp, nullptr, kNone, kNone, &out);
  return out;
}

bool RunLoadedWrite(Server* server, Shard* shard, const CommandSpec* spec, std::span<const std::string_view> args,
                    int db, int resp, const cache::LateTarget& target, std::string* out) {
  static const std::string kNone;
  return RunHandler(server, shard, spec, args, db, resp, nullptr, kNone, kNone, out, &target, true);
}

void Connection::RunInline(const CommandSpec* spec, std::span<const std::string_view> args,
                           std::string* out) {
  cache::LateTarget late{shard_->id(), state_.id, -1, 0};
  if (RunHandler(server_, shard_, spec, args, state_.db, state_.resp, nullptr, state_.addr, state_.name, out, &late))
    BeginAsync();
  ServeBlockedClients(server_, shard_);
}

void Connection::RunConnectionCommand(const CommandSpec* spec, std::span<const std::string_view> args) {
  RunHandler(server_, shard_, spec, args, state_.db, state_.resp, this, state_.addr, state_.name, ReplyTarget());
  EndReplySlot();
}

void Connection::AddToGroup(int shard, const CommandSpec* spec, std::span<const std::string_view> args) {
  batch_active_ = true;
  auto& slot = groups_[static_cast<size_t>(shard)];
  if (!slot) slot = std::make_unique<CommandGroup>();
  CommandGroup& g = *slot;
  g.shard = shard;
  CommandGroup::Cmd cmd{spec, static_cast<uint32_t>(g.spans.size()), static_cast<uint32_t>(args.size()),
                        static_cast<uint8_t>(state_.db), static_cast<uint8_t>(state_.resp)};
  for (auto a : args) {
    g.spans.emplace_back(static_cast<uint32_t>(g.arena.size()), static_cast<uint32_t>(a.size()));
    g.arena.append(a);
  }
  order_.push_back(Slot{shard, static_cast<uint32_t>(g.cmds.size()), 0});
  g.cmds.push_back(cmd);
}

void ExecuteGroup(Server* server, Shard* shard, CommandGroup* g) {
  RefreshCommandTime();
  std::vector<std::string_view> argv;
  g->ends.reserve(g->cmds.size());
  for (const auto& cmd : g->cmds) {
    argv.clear();
    for (uint32_t i = 0; i < cmd.argc; ++i) {
      auto [off, len] = g->spans[cmd.first_span + i];
      argv.emplace_back(g->arena.data() + off, len);
    }
    cache::LateTarget late{g->client_shard, g->client_id, g->shard, static_cast<uint32_t>(g->ends.size())};
    if (RunHandler(server, shard, cmd.spec, argv, cmd.db, cmd.resp, nullptr, g->addr, g->name, &g->out, &late))
      ++g->late_count;
    g->ends.push_back(static_cast<uint32_t>(g->out.size()));
    ServeBlockedClients(server, shard);
  }
}

void Connection::SubmitBatch() {
  if (!batch_active_ || inflight_ > 0) return;
  ShardSet& set = server_->shards();
  int self = shard_->id();
  uint64_t id = state_.id;
  Server* server = server_;
  for (size_t s = 0; s < groups_.size(); ++s) {
    auto& g = groups_[s];
    if (!g || g->empty()) continue;
    if (static_cast<int>(s) == self) continue;
    g->addr = state_.addr;
    g->name = state_.name;
    g->client_shard = self;
    g->client_id = id;
    ++inflight_;
    set.Send(static_cast<int>(s), [server, self, id, g = std::move(g)]() mutable {
      ExecuteGroup(server, CurrentShard(), g.get());
      server->shards().Send(self, [server, self, id, g = std::move(g)]() mutable {
        auto& conns = server->local(self).conns;
        auto it = conns.find(id);
        if (it != conns.end()) it->second->OnGroupDone(std::move(g));
      });
    });
  }
  auto& local = groups_[static_cast<size_t>(self)];
  if (local && !local->empty()) {
    local->addr = state_.addr;
    local->name = state_.name;
    local->client_shard = self;
    local->client_id = id;
    ExecuteGroup(server_, shard_, local.get());
    late_pending_ += static_cast<int>(local->late_count);
  }
  waiting_ = inflight_ > 0 || late_pending_ > 0;
  if (!waiting_) AssembleBatch();
}

void Connection::OnGroupDone(std::unique_ptr<CommandGroup> g) {
  size_t s = static_cast<size_t>(g->shard);
  late_pending_ += static_cast<int>(g->late_count);
  groups_[s] = std::move(g);
  if (--inflight_ > 0 || late_pending_ > 0) return;
  AssembleBatch();
  waiting_ = false;
  ProcessInput();
}

void Connection::DeliverLate(Server* server, const cache::LateTarget& target, std::string reply) {
  server->shards().Send(target.client_shard, [server, target, reply = std::move(reply)]() mutable {
    auto& conns = server->local(target.client_shard).conns;
    auto it = conns.find(target.client_id);
    if (it != conns.end()) it->second->OnLateReply(target, std::move(reply));
  });
}

void Connection::DeliverLateBatch(Server* server, int client_shard,
                                  std::vector<std::pair<cache::LateTarget, std::string>> replies) {
  server->shards().Send(client_shard, [server, client_shard, replies = std::move(replies)]() mutable {
    auto& conns = server->local(client_shard).conns;
    for (auto& [target, reply] : replies) {
      auto it = conns.find(target.client_id);
      if (it != conns.end()) it->second->OnLateReply(target, std::move(reply));
    }
  });
}

void Connection::OnLateReply(const cache::LateTarget& target, std::string reply) {
  if (target.group_shard < 0) {
    FinishAsync(reply);
    return;
  }
  auto& g = groups_[static_cast<size_t>(target.group_shard)];
  if (!g || late_pending_ <= 0) return;
  g->late_replies[target.index] = std::move(reply);
  if (--late_pending_ > 0 || inflight_ > 0) return;
  AssembleBatch();
  waiting_ = false;
  ProcessInput();
}

void Connection::AssembleBatch() {
  for (const Slot& slot : order_) {
    if (slot.group < 0) {
      wbuf_.append(inline_out_, slot.index, slot.end - slot.index);
      continue;
    }
    CommandGroup& g = *groups_[static_cast<size_t>(slot.group)];
    if (g.late_count) {
      auto late = g.late_replies.find(slot.index);
      if (late != g.late_replies.end()) {
        wbuf_.append(late->second);
        continue;
      }
    }
    uint32_t begin = slot.index == 0 ? 0 : g.ends[slot.index - 1];
    wbuf_.append(g.out, begin, g.ends[slot.index] - begin);
  }
  order_.clear();
  inline_out_.clear();
  if (inline_out_.capacity() > kKeepBuffer) inline_out_.shrink_to_fit();
  for (auto& g : groups_) {
    if (!g) continue;
    g->Clear();
    if (g->arena.capacity() > kKeepBuffer || g->out.capacity() > kKeepBuffer) g.reset();
  }
  batch_active_ = false;
}

void Connection::StartMultiShard(const CommandSpec* spec, std::span<const std::string_view> args,
                                 const std::vector<int>& shards) {
  if (spec->fan_out) {
    resp::ReplyBuilder rb(&wbuf_, state_.resp);
    CommandContext ctx(args, &rb, shard_, server_, spec, state_.db);
    ctx.conn = this;
    spec->fan_out(ctx);
    return;
  }
  // Exclusive: copy the arguments; the handler runs on whichever involved
  // shard arrives last, with all of them parked.
  auto owned = std::make_shared<std::vector<std::string>>(args.begin(), args.end());
  auto reply = std::make_shared<std::string>();
  int db = state_.db, resp_ver = state_.resp, self = shard_->id();
  uint64_t id = state_.id;
  Server* server = server_;
  BeginAsync();
  server_->shards().RunExclusive(
      shards,
      [server, spec, owned, reply, db, resp_ver, shards] {
        RefreshCommandTime();
        std::vector<std::string_view> argv(owned->begin(), owned->end());
        resp::ReplyBuilder rb(reply.get(), resp_ver);
        CommandContext ctx(argv, &rb, CurrentShard(), server, spec, db);
        ctx.exclusive = true;
        int64_t t0 = Ticks();
        spec->handler(ctx);
        int64_t dt = TicksToUs(Ticks() - t0);
        bool failed = !reply->empty() && (*reply)[0] == '-';
        server->RecordCommand(CurrentShard(), spec, dt, failed,
                              failed ? std::string_view(*reply).substr(1) : std::string_view());
        for (int id : shards) ServeBlockedClients(server, &server->shards().shard(id));
      },
      [server, self, id, reply] { Connection::FinishAsyncFor(server, self, id, std::move(*reply)); });
}

void Connection::StartBlocking(const CommandSpec* spec, std::span<const std::string_view> args,
                               std::vector<int> shards) {
  std::sort(shards.begin(), shards.end());
  shards.erase(std::unique(shards.begin(), shards.end()), shards.end());
  auto w = std::make_shared<Waiter>();
  w->client_shard = shard_->id();
  w->client_id = state_.id;
  w->db = state_.db;
  w->resp = state_.resp;
  w->spec = spec;
  w->args.assign(args.begin(), args.end());
  blocked_ = w;
  BeginAsync();
  Server* server = server_;
  bool exclusive = shards.size() > 1;
  // The first attempt runs where the keys live; if it finds no data it
  // registers the waiter there in the same step, so no push can slip between.
  auto attempt = [server, w, exclusive, shards] {
    RefreshCommandTime();
    std::vector<std::string_view> argv(w->args.begin(), w->args.end());
    std::string out;
    resp::ReplyBuilder rb(&out, w->resp);
    BlockRequest req;
    req.client_shard = w->client_shard;
    req.client_id = w->client_id;
    CommandContext ctx(argv, &rb, CurrentShard(), server, w->spec, w->db);
    ctx.exclusive = exclusive;
    ctx.block = &req;
    w->spec->handler(ctx);
    ShardSet& set = server->shards();
    for (int id : shards) ServeBlockedClients(server, &set.shard(id));
    if (req.wants_block) {
      w->keys = std::move(req.keys);
      w->deadline_ms = req.timeout_ms > 0 ? CommandTimeMs() + req.timeout_ms : 0;
      for (const auto& k : w->keys) server->local(set.ShardOf(k)).blocking.Add(w->db, k, w);
      set.Send(w->client_shard, [server, w] { server->local(w->client_shard).blocked.push_back(w); });
      return;
    }
    w->done.store(true);
    set.Send(w->client_shard, [server, w, out = std::move(out)]() mutable {
      Connection::FinishBlockedFor(server, w->client_shard, w->client_id, std::move(out));
    });
  };
  if (exclusive) {
    server_->shards().RunExclusive(shards, std::move(attempt), [] {});
  } else {
    server_->shards().FanOut({shards[0]}, [attempt = std::move(attempt)](Shard&) mutable { attempt(); }, [] {});
  }
}

void Connection::FinishBlockedFor(Server* server, int shard, uint64_t client_id, std::string reply) {
  auto& conns = server->local(shard).conns;
  auto it = conns.find(client_id);
  if (it == conns.end()) return;
  it->second->blocked_.reset();
  it->second->FinishAsync(reply);
}

void Connection::FinishAsyncFor(Server* server, int shard, uint64_t client_id, std::string reply) {
  auto& conns = server->local(shard).conns;
  auto it = conns.find(client_id);
  if (it == conns.end()) return;
  it->second->FinishAsync(reply);
}

void Connection::FinishAsync(std::string_view reply) {
  if (!async_pending_) return;
  async_pending_ = false;
  waiting_ = false;
  wbuf_.append(reply);
  ProcessInput();
}

void Connection::AppendOutput(std::string_view s) {
  if (closed_) return;
  wbuf_.append(s);
  Flush();
}

void Connection::Flush() {
  if (closed_) return;
  while (wpos_ < wbuf_.size()) {
    ssize_t n = write(state_.fd, wbuf_.data() + wpos_, wbuf_.size() - wpos_);
    if (n > 0) {
      wpos_ += static_cast<size_t>(n);
      state_.output_bytes += static_cast<size_t>(n);
      auto& nob = server_->local(shard_->id()).net_output_bytes;
      nob.store(nob.load(std::memory_order_relaxed) + static_cast<uint64_t>(n), std::memory_order_relaxed);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    Close();
    return;
  }
  if (wpos_ == wbuf_.size()) {
    wbuf_.clear();
    wpos_ = 0;
    if (wbuf_.capacity() > kKeepBuffer) wbuf_.shrink_to_fit();
    if (close_after_reply_ && !waiting_) {
      Close();
      return;
    }
  } else if (wpos_ > (1 << 20) && wpos_ > wbuf_.size() / 2) {
    wbuf_.erase(0, wpos_);
    wpos_ = 0;
  }
  bool was_blocked = wbuf_.size() - wpos_ <= kOutputPause && !(interest_ & EPOLLIN);
  UpdateInterest();
  // Output drained below the limit: continue with buffered requests.
  if (was_blocked && !waiting_ && !rbuf_.empty() && !close_after_reply_) ProcessInput();
}

std::string Connection::ClientListLine() const {
  int64_t now = UnixTimeMs();
  std::string flags = state_.monitor ? "O" : "N";
  if (state_.no_evict) flags += "e";
  return fmt::format(
      "id={} addr={} laddr={} fd={} name={} age={} idle={} flags={} db={} sub=0 psub=0 ssub=0 "
      "multi=-1 qbuf={} qbuf-free={} argv-mem=0 multi-mem=0 rbs={} rbp=0 obl=0 oll=0 omem={} "
      "tot-mem={} events={} cmd={} user=default redir=-1 resp={}",
      state_.id, state_.addr, state_.laddr, state_.fd, state_.name,
      (now - state_.created_ms) / 1000, (now - state_.last_interaction_ms) / 1000, flags, state_.db,
      rbuf_.size(), rbuf_.capacity() - rbuf_.size(), rbuf_.capacity(), wbuf_.size() - wpos_,
      rbuf_.capacity() + wbuf_.capacity(), (interest_ & EPOLLOUT) ? "rw" : "r",
      state_.last_cmd ? std::string_view(state_.last_cmd->name) : std::string_view("NULL"),
      state_.resp);
}

}  // namespace larder
