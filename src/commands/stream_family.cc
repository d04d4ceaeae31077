// Stream commands (XADD, XRANGE, XREAD, consumer groups...). Values are
// StreamValue objects (keyspace/stream_value.h). Replies, errors and the
// keyspace events follow Redis 7.0's t_stream.c.
//
// XREAD and XREADGROUP block through the blocking registry (engine/blocking.h)
// like the list commands: a handler that finds nothing asks to block with
// its command line rewritten so that a re-run means the same thing ("$"
// becomes the stream's last ID at the time of the call). XADD marks its key
// ready; XGROUP DESTROY and DEL do too, so that a blocked XREADGROUP learns
// that its group or key is gone.
#include <algorithm>
#include <climits>
#include <string>
#include <vector>

#include "commands/families.h"
#include "commands/lookup.h"
#include "common/clock.h"
#include "common/numbers.h"
#include "common/strings.h"
#include "config/config.h"
#include "engine/blocking.h"
#include "engine/command.h"
#include "engine/engine.h"
#include "engine/notify.h"
#include "keyspace/stream_value.h"

namespace larder {

namespace {

bool Lookup(CommandContext& ctx, std::string_view key, StreamValue** out, bool write = false) {
  return LookupObject<StreamValue, ObjType::kStream>(ctx, key, out, write);
}

StreamLimits Limits(CommandContext& ctx) {
  Config& c = ctx.engine->config();
  return StreamLimits{static_cast<size_t>(c.stream_node_max_bytes.load(std::memory_order_relaxed)),
                      static_cast<size_t>(c.stream_node_max_entries.load(std::memory_order_relaxed))};
}

// ---- IDs ----

bool ParseU64(std::string_view s, uint64_t* v) { return !s.empty() && s[0] != '-' && s[0] != '+' && ParseUint64(s, v); }

// Redis's streamGenericParseIDOrReply: "-", "+", "<ms>", "<ms>-<seq>" and,
// when `seq_given` is asked for, "<ms>-*". `strict` refuses "-" and "+".
// ParseIdQuiet writes no error.
bool ParseIdQuiet(std::string_view s, StreamID* id, uint64_t missing_seq = 0, bool strict = false,
                  bool* seq_given = nullptr) {
  auto invalid = [] { return false; };
  if (s.size() > 127) return invalid();
  if (seq_given) *seq_given = true;
  if (s == "-" || s == "+") {
    if (strict) return invalid();
    *id = s == "-" ? StreamID::Min() : StreamID::Max();
    return true;
  }
  size_t dash = s.find('-');
  uint64_t ms, seq = missing_seq;
  if (!ParseU64(s.substr(0, dash), &ms)) return invalid();
  if (dash != std::string_view::npos) {
    std::string_view tail = s.substr(dash + 1);
    if (seq_given && tail == "*") {
      seq = 0;
      *seq_given = false;
    } else if (!ParseU64(tail, &seq)) {
      return invalid();
    }
  }
  *id = {ms, seq};
  return true;
}
bool ParseId(CommandContext& ctx, std::string_view s, StreamID* id, uint64_t missing_seq = 0, bool strict = false,
             bool* seq_given = nullptr) {
  if (ParseIdQuiet(s, id, missing_seq, strict, seq_given)) return true;
  ctx.Error(OpStatus::kStreamInvalidId);
  return false;
}

// A range bound: "(" makes it exclusive (then "-" and "+" are refused).
bool ParseBound(CommandContext& ctx, std::string_view s, StreamID* id, bool is_start) {
  uint64_t missing = is_start ? 0 : UINT64_MAX;
  if (s.size() > 1 && s[0] == '(') {
    if (!ParseId(ctx, s.substr(1), id, missing, true)) return false;
    if (is_start ? !id->Incr() : !id->Decr()) {
      ctx.Error(is_start ? OpStatus::kStreamInvalidStartId : OpStatus::kStreamInvalidEndId);
      return false;
    }
    return true;
  }
  return ParseId(ctx, s, id, missing);
}

void ReplyId(CommandContext& ctx, StreamID id) { ctx.rb->Bulk(id.ToString()); }

void ReplyEntry(resp::ReplyBuilder* rb, StreamID id, const StreamFields& f) {
  rb->ArrayHeader(2);
  rb->Bulk(id.ToString());
  rb->ArrayHeader(f.size() * 2);
  for (const auto& [field, value] : f) {
    rb->Bulk(field);
    rb->Bulk(value);
  }
}

// Writes the entries of [start, end] (at most `count`, 0: all) as an array.
size_t ReplyRange(resp::ReplyBuilder* rb, const StreamValue& s, StreamID start, StreamID end, size_t count, bool rev) {
  std::string body;
  resp::ReplyBuilder b(&body, rb->protocol());
  size_t n = 0;
  s.Range(start, end, rev, [&](StreamID id, const StreamFields& f) {
    ReplyEntry(&b, id, f);
    ++n;
    return !(count && n == count);
  });
  rb->ArrayHeader(n);
  rb->Raw(body);
  return n;
}

// One entry, if it exists (XCLAIM, XAUTOCLAIM, XINFO first/last entry).
bool ReplyOneEntry(resp::ReplyBuilder* rb, const StreamValue& s, StreamID id) {
  bool found = false;
  s.Range(id, id, false, [&](StreamID eid, const StreamFields& f) {
    ReplyEntry(rb, eid, f);
    found = true;
    return false;
  });
  return found;
}

// ---- Trimming arguments (XADD and XTRIM) ----

struct AddTrimArgs {
  StreamValue::TrimArgs trim;
  bool nomkstream = false;
  bool id_given = false;
  bool seq_given = true;
  StreamID id;
  size_t id_pos = 0;  // XADD: the ID's argument index
};

bool ParseAddOrTrim(CommandContext& ctx, AddTrimArgs* a, bool xadd) {
  using T = StreamValue::TrimArgs;
  bool limit_given = false;
  size_t i = 2;
  for (; i < ctx.argc(); ++i) {
    size_t more = ctx.argc() - 1 - i;
    std::string_view opt = ctx.arg(i);
    if (xadd && opt == "*") {
      break;
    } else if ((EqualsIgnoreCase(opt, "maxlen") || EqualsIgnoreCase(opt, "minid")) && more) {
      bool maxlen = EqualsIgnoreCase(opt, "maxlen");
      if (a->trim.strategy != T::kNone) {
        ctx.Error(OpStatus::kStreamMaxlenAndMinid);
        return false;
      }
      a->trim.approx = false;
      std::string_view next = ctx.arg(i + 1);
      if (more >= 2 && next == "~") {
        a->trim.approx = true;
        ++i;
      } else if (more >= 2 && next == "=") {
        ++i;
      }
      if (i + 1 >= ctx.argc()) {
        ctx.SyntaxError();
        return false;
      }
      if (maxlen) {
        int64_t n;
        if (!ParseInt64(ctx.arg(i + 1), &n)) {
          ctx.Error(OpStatus::kNotAnInteger);
          return false;
        }
        if (n < 0) {
          ctx.Error(OpStatus::kStreamMaxlenNegative);
          return false;
        }
        a->trim.maxlen = static_cast<uint64_t>(n);
        a->trim.strategy = T::kMaxLen;
      } else {
        if (!ParseId(ctx, ctx.arg(i + 1), &a->trim.minid, 0, true)) return false;
        a->trim.strategy = T::kMinId;
      }
      ++i;
    } else if (EqualsIgnoreCase(opt, "limit") && more) {
      if (!ParseInt64(ctx.arg(i + 1), &a->trim.limit)) {
        ctx.Error(OpStatus::kNotAnInteger);
        return false;
      }
      if (a->trim.limit < 0) {
        ctx.Error(OpStatus::kStreamLimitNegative);
        return false;
      }
      limit_given = true;
      ++i;
    } else if (xadd && EqualsIgnoreCase(opt, "nomkstream")) {
      a->nomkstream = true;
    } else if (xadd) {
      if (!ParseId(ctx, opt, &a->id, 0, true, &a->seq_given)) return false;
      a->id_given = true;
      break;
    } else {
      ctx.SyntaxError();
      return false;
    }
  }
  a->id_pos = i;
  if (a->trim.limit && a->trim.strategy == T::kNone) {
    ctx.Error(OpStatus::kStreamLimitWithoutStrategy);
    return false;
  }
  if (!xadd && a->trim.strategy == T::kNone) {
    ctx.Error(OpStatus::kStreamXtrimNeedsStrategy);
    return false;
  }
  if (limit_given) {
    if (!a->trim.approx) {
      ctx.Error(OpStatus::kStreamLimitWithoutApprox);
      return false;
    }
  } else if (a->trim.approx) {
    // As Redis: at most 100 nodes' worth of entries per call.
    int64_t per_node = ctx.engine->config().stream_node_max_entries.load(std::memory_order_relaxed);
    a->trim.limit = per_node > 0 && per_node <= INT64_MAX / 100 ? 100 * per_node : 10000;
    a->trim.limit = std::clamp<int64_t>(a->trim.limit, 1, 1000000);
  } else {
    a->trim.limit = 0;
  }
  return true;
}

// ---- XADD, XRANGE, XLEN, XDEL, XTRIM, XSETID ----

void XAdd(CommandContext& ctx) {
  AddTrimArgs a;
  if (!ParseAddOrTrim(ctx, &a, true)) return;
  size_t field_pos = a.id_pos + 1;
  if (field_pos > ctx.argc() || ctx.argc() - field_pos < 2 || (ctx.argc() - field_pos) % 2 == 1)
    return ctx.ArityError();
  if (a.id_given && a.seq_given && a.id.IsZero()) return ctx.Error(OpStatus::kStreamIdZero);
  std::string_view key = ctx.arg(1);
  StreamValue* s;
  if (!Lookup(ctx, key, &s, true)) return;
  bool created = false;
  if (!s) {
    if (a.nomkstream) return ctx.rb->Null();
    s = new StreamValue();
    created = true;
  }
  auto discard = [&] {
    if (created) delete s;
  };
  StreamID last = s->last_id();
  if (last == StreamID::Max()) {
    discard();
    return ctx.Error(OpStatus::kStreamExhausted);
  }
  StreamID id;
  bool ok = true;
  if (a.id_given) {
    if (a.seq_given) {
      id = a.id;
    } else if (last.ms == a.id.ms) {
      if (last.seq == UINT64_MAX) ok = false;
      id = {last.ms, last.seq + 1};
    } else {
      id = a.id;
    }
  } else {
    auto now = static_cast<uint64_t>(UnixTimeMs());
    if (now > last.ms) {
      id = {now, 0};
    } else {
      id = last;
      id.Incr();
    }
  }
  if (!ok || id <= last) {
    discard();
    return ctx.Error(OpStatus::kStreamIdNotGreater);
  }
  if (created) ctx.DbFor(key).Add(NewObjectEntry(key, ObjType::kStream, s, -1));
  s->Append(id, ctx.args.subspan(field_pos), Limits(ctx));
  ReplyId(ctx, id);
  if (ctx.propagation) {  // logged with the ID it made (XADD * or ms-*), as Redis
    std::string made = id.ToString();
    std::vector<std::string_view> argv(ctx.args.begin(), ctx.args.end());
    argv[a.id_pos] = made;
    ctx.Propagate(argv);
  }
  NotifyKeyspaceEvent(ctx, kNotifyStream, "xadd", key);
  if (a.trim.strategy != StreamValue::TrimArgs::kNone && s->Trim(a.trim))
    NotifyKeyspaceEvent(ctx, kNotifyStream, "xtrim", key);
  SignalKeyReady(ctx, key);
}

void RangeGeneric(CommandContext& ctx, bool rev) {
  StreamID start, end;
  if (!ParseBound(ctx, ctx.arg(rev ? 3 : 2), &start, true)) return;
  if (!ParseBound(ctx, ctx.arg(rev ? 2 : 3), &end, false)) return;
  int64_t count = -1;
  for (size_t j = 4; j < ctx.argc(); ++j) {
    if (EqualsIgnoreCase(ctx.arg(j), "count") && j + 1 < ctx.argc()) {
      if (!ParseInt64(ctx.arg(++j), &count)) return ctx.Error(OpStatus::kNotAnInteger);
      if (count < 0) count = 0;
    } else {
      return ctx.SyntaxError();
    }
  }
  StreamValue* s;
  if (!Lookup(ctx, ctx.arg(1), &s)) return;
  if (!s) return ctx.rb->EmptyArray();
  if (count == 0) return ctx.rb->NullArray();
  ReplyRange(ctx.rb, *s, start, end, count < 0 ? 0 : static_cast<size_t>(count), rev);
}
void XRange(CommandContext& ctx) { RangeGeneric(ctx, false); }
void XRevRange(CommandContext& ctx) { RangeGeneric(ctx, true); }

void XLen(CommandContext& ctx) {
  StreamValue* s;
  if (!Lookup(ctx, ctx.arg(1), &s)) return;
  ctx.rb->Integer(s ? static_cast<int64_t>(s->size()) : 0);
}

void XDel(CommandContext& ctx) {
  StreamValue* s;
  if (!Lookup(ctx, ctx.arg(1), &s, true)) return;
  if (!s) return ctx.rb->Integer(0);
  std::vector<StreamID> ids(ctx.argc() - 2);
  for (size_t j = 2; j < ctx.argc(); ++j)
    if (!ParseId(ctx, ctx.arg(j), &ids[j - 2], 0, true)) return;
  int64_t deleted = 0;
  for (StreamID id : ids) {
    if (!s->Delete(id)) continue;
    if (id > s->max_deleted_id()) s->set_max_deleted_id(id);
    ++deleted;
  }
  if (deleted) NotifyKeyspaceEvent(ctx, kNotifyStream, "xdel", ctx.arg(1));
  ctx.rb->Integer(deleted);
}

void XTrim(CommandContext& ctx) {
  AddTrimArgs a;
  if (!ParseAddOrTrim(ctx, &a, false)) return;
  StreamValue* s;
  if (!Lookup(ctx, ctx.arg(1), &s, true)) return;
  if (!s) return ctx.rb->Integer(0);
  int64_t deleted = s->Trim(a.trim);
  if (deleted) NotifyKeyspaceEvent(ctx, kNotifyStream, "xtrim", ctx.arg(1));
  ctx.rb->Integer(deleted);
}

void XSetId(CommandContext& ctx) {
  StreamID id, max_deleted;
  if (!ParseId(ctx, ctx.arg(2), &id, 0, true)) return;
  int64_t entries_added = -1;
  for (size_t i = 3; i < ctx.argc(); i += 2) {
    bool more = i + 1 < ctx.argc();
    if (EqualsIgnoreCase(ctx.arg(i), "entriesadded") && more) {
      if (!ParseInt64(ctx.arg(i + 1), &entries_added)) return ctx.Error(OpStatus::kNotAnInteger);
      if (entries_added < 0) return ctx.Error(OpStatus::kStreamEntriesAddedNegative);
    } else if (EqualsIgnoreCase(ctx.arg(i), "maxdeletedid") && more) {
      if (!ParseId(ctx, ctx.arg(i + 1), &max_deleted, 0, true)) return;
      if (id < max_deleted) return ctx.Error(OpStatus::kStreamSetIdBelowMaxDeleted);
    } else {
      return ctx.SyntaxError();
    }
  }
  StreamValue* s;
  if (!Lookup(ctx, ctx.arg(1), &s, true)) return;
  if (!s) return ctx.Error(OpStatus::kNoSuchKey);
  if (s->size() > 0) {
    if (id < s->LastLiveId()) return ctx.Error(OpStatus::kStreamSetIdBelowTop);
    if (entries_added != -1 && s->size() > static_cast<uint64_t>(entries_added))
      return ctx.Error(OpStatus::kStreamEntriesAddedBelowLength);
  }
  s->set_last_id(id);
  if (entries_added != -1) s->set_entries_added(static_cast<uint64_t>(entries_added));
  if (!max_deleted.IsZero()) s->set_max_deleted_id(max_deleted);
  ctx.rb->Ok();
  NotifyKeyspaceEvent(ctx, kNotifyStream, "xsetid", ctx.arg(1));
}

// ---- Consumer groups: reading ----

StreamConsumer* LookupOrCreateConsumer(CommandContext& ctx, StreamGroup* g, std::string_view name,
                                       std::string_view key, int64_t now) {
  if (StreamConsumer* c = g->FindConsumer(name)) {
    c->seen_time = now;
    return c;
  }
  StreamConsumer* c = g->CreateConsumer(name, now);
  NotifyKeyspaceEvent(ctx, kNotifyStream, "xgroup-createconsumer", key);
  return c;
}

// New entries after the group's last ID for `consumer` (Redis's
// streamReplyWithRange with a group): they move the group's last ID and
// read counter, and enter the PEL unless NOACK.
size_t ReplyGroupNew(resp::ReplyBuilder* rb, StreamValue& s, StreamGroup& g, StreamConsumer* c, size_t count,
                     bool noack) {
  StreamID start = g.last_id;
  if (!start.Incr()) {
    rb->ArrayHeader(0);
    return 0;
  }
  std::string body;
  resp::ReplyBuilder b(&body, rb->protocol());
  std::vector<StreamID> delivered;
  s.Range(start, StreamID::Max(), false, [&](StreamID id, const StreamFields& f) {
    if (id > g.last_id) {
      if (g.entries_read != StreamGroup::kInvalidEntriesRead && !s.RangeHasTombstones(id, StreamID::Max()))
        ++g.entries_read;
      else if (s.entries_added())
        g.entries_read = s.EstimateEntriesRead(id);
      g.last_id = id;
    }
    ReplyEntry(&b, id, f);
    delivered.push_back(id);
    return !(count && delivered.size() == count);
  });
  if (!noack) {
    int64_t now = UnixTimeMs();
    for (StreamID id : delivered) {
      auto [it, inserted] = g.pel.try_emplace(id);
      StreamNack& n = it->second;
      if (!inserted) n.consumer->pending.erase(id);
      n.consumer = c;
      n.delivery_time = now;
      n.delivery_count = 1;
      c->pending.insert(id);
    }
  }
  rb->ArrayHeader(delivered.size());
  rb->Raw(body);
  return delivered.size();
}

// The consumer's own pending entries from `start` (XREADGROUP with an ID):
// deleted entries come back as [id, nil].
void ReplyConsumerHistory(resp::ReplyBuilder* rb, StreamValue& s, StreamGroup& g, StreamConsumer* c, StreamID start,
                          size_t count) {
  std::string body;
  resp::ReplyBuilder b(&body, rb->protocol());
  size_t n = 0;
  int64_t now = UnixTimeMs();
  for (auto it = c->pending.lower_bound(start); it != c->pending.end() && (!count || n < count); ++it, ++n) {
    if (!ReplyOneEntry(&b, s, *it)) {
      b.ArrayHeader(2);
      b.Bulk(it->ToString());
      b.NullArray();
      continue;
    }
    auto nit = g.pel.find(*it);
    if (nit != g.pel.end()) {
      nit->second.delivery_time = now;
      ++nit->second.delivery_count;
    }
  }
  rb->ArrayHeader(n);
  rb->Raw(body);
}

// XREAD [COUNT n] [BLOCK ms] STREAMS key... id...
// XREADGROUP GROUP g c [COUNT n] [BLOCK ms] [NOACK] STREAMS key... id...
void ReadGeneric(CommandContext& ctx, bool group_mode) {
  int64_t timeout = -1, count = 0;
  size_t streams_arg = 0, nstreams = 0;
  bool noack = false;
  std::string_view group_name, consumer_name;
  bool has_group = false;
  for (size_t i = 1; i < ctx.argc(); ++i) {
    size_t more = ctx.argc() - i - 1;
    std::string_view o = ctx.arg(i);
    if (EqualsIgnoreCase(o, "block") && more) {
      if (ctx.from_script) return ctx.Error(OpStatus::kStreamBlockInScript, ctx.arg(0));
      ++i;
      if (!ParseInt64(ctx.arg(i), &timeout)) return ctx.Error(OpStatus::kTimeoutNotInteger);
      if (timeout < 0) return ctx.Error(OpStatus::kTimeoutNegative);
    } else if (EqualsIgnoreCase(o, "count") && more) {
      ++i;
      if (!ParseInt64(ctx.arg(i), &count)) return ctx.Error(OpStatus::kNotAnInteger);
      if (count < 0) count = 0;
    } else if (EqualsIgnoreCase(o, "streams") && more) {
      streams_arg = i + 1;
      nstreams = ctx.argc() - streams_arg;
      if (nstreams % 2 != 0) return ctx.Error(OpStatus::kStreamUnbalancedXread);
      nstreams /= 2;
      break;
    } else if (EqualsIgnoreCase(o, "group") && more >= 2) {
      if (!group_mode) return ctx.Error(OpStatus::kStreamGroupOnlyXreadgroup);
      group_name = ctx.arg(i + 1);
      consumer_name = ctx.arg(i + 2);
      has_group = true;
      i += 2;
    } else if (EqualsIgnoreCase(o, "noack")) {
      if (!group_mode) return ctx.Error(OpStatus::kStreamNoackOnlyXreadgroup);
      noack = true;
    } else {
      return ctx.SyntaxError();
    }
  }
  if (streams_arg == 0) return ctx.SyntaxError();
  if (group_mode && !has_group) return ctx.Error(OpStatus::kStreamMissingGroup);

  bool serving = Serving(ctx);
  struct Item {
    std::string_view key;
    StreamValue* s = nullptr;
    StreamGroup* g = nullptr;
    StreamID after;
    bool newest = false;  // ">"
  };
  std::vector<Item> items(nstreams);
  bool resolved_dollar = false;
  for (size_t k = 0; k < nstreams; ++k) {
    Item& it = items[k];
    it.key = ctx.arg(streams_arg + k);
    std::string_view idarg = ctx.arg(streams_arg + nstreams + k);
    bool local = LocalForServing(ctx, it.key);
    if (local) {
      Entry* e = ctx.DbFor(it.key).FindRead(it.key);
      if (e && e->type != ObjType::kStream) {
        if (serving) {
          // The key became another type: a group reader learns its stream
          // is gone; a plain reader keeps waiting.
          if (has_group) return ctx.Error(OpStatus::kStreamKeyGone);
          continue;
        }
        return ctx.Error(OpStatus::kWrongType);
      }
      if (e) it.s = ObjectOf<StreamValue>(e);
    }
    if (has_group && local) {
      if (serving && !it.s) return ctx.Error(OpStatus::kStreamKeyGone);
      if (!it.s || !(it.g = it.s->FindGroup(group_name))) {
        if (serving) return ctx.Error(OpStatus::kStreamGroupGone);
        return ctx.Error(OpStatus::kStreamNoGroupRead, it.key, group_name);
      }
    }
    if (idarg == "$") {
      if (group_mode) return ctx.Error(OpStatus::kStreamDollarInXreadgroup);
      it.after = it.s ? it.s->last_id() : StreamID{};
      resolved_dollar = true;
      continue;
    }
    if (idarg == ">") {
      if (!group_mode) return ctx.Error(OpStatus::kStreamGreaterOnlyXreadgroup);
      it.newest = true;
      continue;
    }
    if (!ParseId(ctx, idarg, &it.after, 0, true)) return;
    // Redis keeps ">" as the largest ID, so in XREADGROUP that ID written
    // out reads new entries too.
    if (group_mode && it.after == StreamID::Max()) it.newest = true;
  }

  // Serve what is there now.
  if (serving && count == 0) count = 1000;  // Redis's XREAD_BLOCKED_DEFAULT_COUNT
  std::string body;
  resp::ReplyBuilder b(&body, ctx.rb->protocol());
  size_t served = 0;
  int64_t now = UnixTimeMs();
  for (Item& it : items) {
    if (!it.s) continue;
    bool history = it.g && !it.newest;
    bool serve = history;
    if (it.g && it.newest) {
      serve = it.s->size() && it.s->LastLiveId() > it.g->last_id;
    } else if (!it.g) {
      serve = it.s->size() && it.s->LastLiveId() > it.after;
    }
    if (!serve) continue;
    ++served;
    if (b.protocol() == 2) b.ArrayHeader(2);
    b.Bulk(it.key);
    if (it.g) {
      StreamConsumer* c = LookupOrCreateConsumer(ctx, it.g, consumer_name, it.key, now);
      StreamID from = it.after;
      from.Incr();  // entries after the ID given
      if (history) ReplyConsumerHistory(&b, *it.s, *it.g, c, from, static_cast<size_t>(count));
      else ReplyGroupNew(&b, *it.s, *it.g, c, static_cast<size_t>(count), noack);
    } else {
      StreamID start = it.after;
      start.Incr();
      ReplyRange(&b, *it.s, start, StreamID::Max(), static_cast<size_t>(count), false);
    }
  }
  if (served) {
    if (ctx.rb->protocol() == 2) ctx.rb->ArrayHeader(served);
    else ctx.rb->MapHeader(served);
    ctx.rb->Raw(body);
    return;
  }
  if (serving) return;  // nothing yet: keep waiting
  if (timeout < 0) return ctx.rb->NullArray();
  std::vector<std::string> keys;
  for (const Item& it : items) keys.emplace_back(it.key);
  if (resolved_dollar && ctx.block) {
    // The re-run must wait for entries after the IDs "$" meant now.
    std::vector<std::string> args(ctx.args.begin(), ctx.args.end());
    for (size_t k = 0; k < nstreams; ++k)
      if (args[streams_arg + nstreams + k] == "$") args[streams_arg + nstreams + k] = items[k].after.ToString();
    ctx.block->args = std::move(args);
  }
  if (has_group && ctx.block) ctx.block->wake_on_delete = true;
  RequestBlock(ctx, timeout, std::move(keys));
}
void XRead(CommandContext& ctx) { ReadGeneric(ctx, false); }
void XReadGroup(CommandContext& ctx) { ReadGeneric(ctx, true); }

// Key positions of XREAD / XREADGROUP: the first half of what follows
// STREAMS (searched from `from`).
std::vector<size_t> ReadKeys(std::span<const std::string_view> args, size_t from) {
  std::vector<size_t> out;
  for (size_t i = from; i < args.size(); ++i) {
    if (!EqualsIgnoreCase(args[i], "streams")) continue;
    size_t rest = args.size() - i - 1;
    if (rest == 0 || rest % 2) return {};
    for (size_t k = 0; k < rest / 2; ++k) out.push_back(i + 1 + k);
    return out;
  }
  return out;
}
std::vector<size_t> XReadKeys(std::span<const std::string_view> args) { return ReadKeys(args, 1); }
std::vector<size_t> XReadGroupKeys(std::span<const std::string_view> args) { return ReadKeys(args, 4); }

// ---- XACK, XPENDING, XCLAIM, XAUTOCLAIM ----

bool LookupGroup(CommandContext& ctx, std::string_view key, std::string_view group, StreamValue** s,
                 StreamGroup** g) {
  *g = nullptr;
  if (!Lookup(ctx, key, s)) return false;
  if (*s) *g = (*s)->FindGroup(group);
  return true;
}

void XAck(CommandContext& ctx) {
  StreamValue* s;
  StreamGroup* g;
  if (!LookupGroup(ctx, ctx.arg(1), ctx.arg(2), &s, &g)) return;
  if (!g) return ctx.rb->Integer(0);
  std::vector<StreamID> ids(ctx.argc() - 3);
  for (size_t j = 3; j < ctx.argc(); ++j)
    if (!ParseId(ctx, ctx.arg(j), &ids[j - 3], 0, true)) return;
  int64_t acked = 0;
  for (StreamID id : ids) {
    auto it = g->pel.find(id);
    if (it == g->pel.end()) continue;
    it->second.consumer->pending.erase(id);
    g->pel.erase(it);
    ++acked;
  }
  ctx.rb->Integer(acked);
}

void XPending(CommandContext& ctx) {
  size_t argc = ctx.argc();
  if (argc != 3 && (argc < 6 || argc > 9)) return ctx.SyntaxError();
  StreamID start, end;
  int64_t count = 0, min_idle = 0;
  std::string_view consumer_name;
  bool has_consumer = false;
  if (argc >= 6) {
    size_t at = 3;
    if (EqualsIgnoreCase(ctx.arg(3), "idle")) {
      if (!ParseInt64(ctx.arg(4), &min_idle)) return ctx.Error(OpStatus::kNotAnInteger);
      if (argc < 8) return ctx.SyntaxError();
      at += 2;
    }
    if (!ParseInt64(ctx.arg(at + 2), &count)) return ctx.Error(OpStatus::kNotAnInteger);
    if (count < 0) count = 0;
    if (!ParseBound(ctx, ctx.arg(at), &start, true)) return;
    if (!ParseBound(ctx, ctx.arg(at + 1), &end, false)) return;
    if (at + 3 < argc) {
      consumer_name = ctx.arg(at + 3);
      has_consumer = true;
    }
  }
  StreamValue* s;
  StreamGroup* g;
  if (!LookupGroup(ctx, ctx.arg(1), ctx.arg(2), &s, &g)) return;
  if (!g) return ctx.Error(OpStatus::kStreamNoKeyOrGroup, ctx.arg(1), ctx.arg(2));
  if (argc == 3) {
    ctx.rb->ArrayHeader(4);
    ctx.rb->Integer(static_cast<int64_t>(g->pel.size()));
    if (g->pel.empty()) {
      ctx.rb->Null();
      ctx.rb->Null();
      ctx.rb->NullArray();
      return;
    }
    ReplyId(ctx, g->pel.begin()->first);
    ReplyId(ctx, std::prev(g->pel.end())->first);
    size_t n = 0;
    for (const auto& [name, c] : g->consumers) n += !c->pending.empty();
    ctx.rb->ArrayHeader(n);
    for (const auto& [name, c] : g->consumers) {
      if (c->pending.empty()) continue;
      ctx.rb->ArrayHeader(2);
      ctx.rb->Bulk(name);
      ctx.rb->Bulk(std::to_string(c->pending.size()));
    }
    return;
  }
  StreamConsumer* only = nullptr;
  if (has_consumer && !(only = g->FindConsumer(consumer_name))) return ctx.rb->EmptyArray();
  int64_t now = UnixTimeMs();
  std::string body;
  resp::ReplyBuilder b(&body, ctx.rb->protocol());
  size_t n = 0;
  auto emit = [&](StreamID id, const StreamNack& nack) {
    if (min_idle && now - nack.delivery_time < min_idle) return;
    ++n;
    --count;
    b.ArrayHeader(4);
    b.Bulk(id.ToString());
    b.Bulk(nack.consumer->name);
    b.Integer(std::max<int64_t>(0, now - nack.delivery_time));
    b.Integer(static_cast<int64_t>(nack.delivery_count));
  };
  if (only) {
    for (auto it = only->pending.lower_bound(start); count && it != only->pending.end() && *it <= end; ++it)
      emit(*it, g->pel.at(*it));
  } else {
    for (auto it = g->pel.lower_bound(start); count && it != g->pel.end() && it->first <= end; ++it)
      emit(it->first, it->second);
  }
  ctx.rb->ArrayHeader(n);
  ctx.rb->Raw(body);
}

// Moves a pending entry to `c` (XCLAIM, XAUTOCLAIM).
void GiveTo(StreamNack& n, StreamID id, StreamConsumer* c) {
  if (n.consumer == c) return;
  if (n.consumer) n.consumer->pending.erase(id);
  c->pending.insert(id);
  n.consumer = c;
}

void XClaim(CommandContext& ctx) {
  StreamValue* s;
  StreamGroup* g;
  if (!LookupGroup(ctx, ctx.arg(1), ctx.arg(2), &s, &g)) return;
  if (!g) return ctx.Error(OpStatus::kStreamNoKeyOrGroup, ctx.arg(1), ctx.arg(2));
  int64_t min_idle;
  if (!ParseInt64(ctx.arg(4), &min_idle)) return ctx.Error(OpStatus::kStreamInvalidMinIdleXclaim);
  if (min_idle < 0) min_idle = 0;
  std::vector<StreamID> ids;
  size_t j = 5;
  for (; j < ctx.argc(); ++j) {
    StreamID id;
    // The first argument that is no ID starts the options.
    if (!ParseIdQuiet(ctx.arg(j), &id, 0, true)) break;
    ids.push_back(id);
  }
  int64_t now = UnixTimeMs();
  int64_t delivery_time = -1, retry_count = -1;
  bool force = false, justid = false;
  StreamID last_id;
  for (; j < ctx.argc(); ++j) {
    bool more = j + 1 < ctx.argc();
    std::string_view o = ctx.arg(j);
    if (EqualsIgnoreCase(o, "force")) {
      force = true;
    } else if (EqualsIgnoreCase(o, "justid")) {
      justid = true;
    } else if (EqualsIgnoreCase(o, "idle") && more) {
      if (!ParseInt64(ctx.arg(++j), &delivery_time)) return ctx.Error(OpStatus::kStreamInvalidIdleXclaim);
      delivery_time = now - delivery_time;
    } else if (EqualsIgnoreCase(o, "time") && more) {
      if (!ParseInt64(ctx.arg(++j), &delivery_time)) return ctx.Error(OpStatus::kStreamInvalidTimeXclaim);
    } else if (EqualsIgnoreCase(o, "retrycount") && more) {
      if (!ParseInt64(ctx.arg(++j), &retry_count)) return ctx.Error(OpStatus::kStreamInvalidRetryCountXclaim);
    } else if (EqualsIgnoreCase(o, "lastid") && more) {
      if (!ParseId(ctx, ctx.arg(++j), &last_id, 0, true)) return;
    } else {
      return ctx.Error(OpStatus::kStreamUnknownXclaimOption, o);
    }
  }
  if (last_id > g->last_id) g->last_id = last_id;
  if (delivery_time == -1 || delivery_time < 0 || delivery_time > now) delivery_time = now;
  StreamConsumer* c = nullptr;
  std::string body;
  resp::ReplyBuilder b(&body, ctx.rb->protocol());
  size_t n = 0;
  for (StreamID id : ids) {
    auto it = g->pel.find(id);
    if (!s->Contains(id)) {
      if (it != g->pel.end()) {
        if (it->second.consumer) it->second.consumer->pending.erase(id);
        g->pel.erase(it);
      }
      continue;
    }
    if (force && it == g->pel.end()) {
      it = g->pel.try_emplace(id).first;
      it->second.delivery_time = now;
    }
    if (it == g->pel.end()) continue;
    StreamNack& nack = it->second;
    if (nack.consumer && min_idle && now - nack.delivery_time < min_idle) continue;
    if (!c) c = LookupOrCreateConsumer(ctx, g, ctx.arg(3), ctx.arg(1), now);
    GiveTo(nack, id, c);
    nack.delivery_time = delivery_time;
    if (retry_count >= 0) nack.delivery_count = static_cast<uint64_t>(retry_count);
    else if (!justid) ++nack.delivery_count;
    if (justid) b.Bulk(id.ToString());
    else ReplyOneEntry(&b, *s, id);
    ++n;
  }
  ctx.rb->ArrayHeader(n);
  ctx.rb->Raw(body);
}

void XAutoClaim(CommandContext& ctx) {
  int64_t min_idle;
  if (!ParseInt64(ctx.arg(4), &min_idle)) return ctx.Error(OpStatus::kStreamInvalidMinIdleXautoclaim);
  if (min_idle < 0) min_idle = 0;
  StreamID start;
  if (!ParseBound(ctx, ctx.arg(5), &start, true)) return;
  int64_t count = 100;
  bool justid = false;
  for (size_t j = 6; j < ctx.argc(); ++j) {
    bool more = j + 1 < ctx.argc();
    if (EqualsIgnoreCase(ctx.arg(j), "count") && more) {
      constexpr int64_t kMax = LONG_MAX / 16;
      if (!ParseInt64(ctx.arg(j + 1), &count) || count < 1 || count > kMax)
        return ctx.Error(OpStatus::kStreamAutoclaimCount);
      ++j;
    } else if (EqualsIgnoreCase(ctx.arg(j), "justid")) {
      justid = true;
    } else {
      return ctx.SyntaxError();
    }
  }
  StreamValue* s;
  StreamGroup* g;
  if (!LookupGroup(ctx, ctx.arg(1), ctx.arg(2), &s, &g)) return;
  if (!g) return ctx.Error(OpStatus::kStreamNoKeyOrGroup, ctx.arg(1), ctx.arg(2));
  int64_t attempts = count * 10;
  int64_t now = UnixTimeMs();
  StreamConsumer* c = nullptr;
  std::string body;
  resp::ReplyBuilder b(&body, ctx.rb->protocol());
  size_t n = 0;
  std::vector<StreamID> deleted;
  auto it = g->pel.lower_bound(start);
  while (attempts-- && count && it != g->pel.end()) {
    StreamID id = it->first;
    StreamNack& nack = it->second;
    if (!s->Contains(id)) {
      if (nack.consumer) nack.consumer->pending.erase(id);
      it = g->pel.erase(it);
      deleted.push_back(id);
      --count;
      continue;
    }
    if (min_idle && now - nack.delivery_time < min_idle) {
      ++it;
      continue;
    }
    if (!c) c = LookupOrCreateConsumer(ctx, g, ctx.arg(3), ctx.arg(1), now);
    GiveTo(nack, id, c);
    nack.delivery_time = now;
    if (!justid) ++nack.delivery_count;
    if (justid) b.Bulk(id.ToString());
    else ReplyOneEntry(&b, *s, id);
    ++n;
    --count;
    ++it;
  }
  ctx.rb->ArrayHeader(3);
  ReplyId(ctx, it == g->pel.end() ? StreamID{} : it->first);
  ctx.rb->ArrayHeader(n);
  ctx.rb->Raw(body);
  ctx.rb->ArrayHeader(deleted.size());
  for (StreamID id : deleted) ReplyId(ctx, id);
}

// ---- XGROUP ----

void SubcommandSyntaxError(CommandContext& ctx) {
  std::string cmd(ctx.arg(0));
  for (char& ch : cmd) ch = static_cast<char>(toupper(static_cast<unsigned char>(ch)));
  ctx.Error(OpStatus::kSubcommandSyntax, ctx.arg(1).substr(0, 128), cmd);
}

// The key and group every XGROUP subcommand but HELP names; false with the
// error written. CREATE and SETID options are parsed first, as in Redis.
struct XGroupArgs {
  StreamValue* s = nullptr;
  StreamGroup* g = nullptr;
  bool mkstream = false;
  int64_t entries_read = StreamGroup::kInvalidEntriesRead;
};
bool XGroupPrepare(CommandContext& ctx, XGroupArgs* a) {
  std::string_view sub = ctx.arg(1);
  bool create = EqualsIgnoreCase(sub, "create"), setid = EqualsIgnoreCase(sub, "setid");
  for (size_t i = 5; i < ctx.argc();) {
    if (create && EqualsIgnoreCase(ctx.arg(i), "mkstream")) {
      a->mkstream = true;
      ++i;
    } else if ((create || setid) && EqualsIgnoreCase(ctx.arg(i), "entriesread") && i + 1 < ctx.argc()) {
      if (!ParseInt64(ctx.arg(i + 1), &a->entries_read)) {
        ctx.Error(OpStatus::kNotAnInteger);
        return false;
      }
      if (a->entries_read < 0 && a->entries_read != StreamGroup::kInvalidEntriesRead) {
        ctx.Error(OpStatus::kStreamEntriesReadNegative);
        return false;
      }
      i += 2;
    } else {
      SubcommandSyntaxError(ctx);
      return false;
    }
  }
  if (!Lookup(ctx, ctx.arg(2), &a->s, true)) return false;
  if (a->mkstream) return true;
  if (!a->s) {
    ctx.Error(OpStatus::kStreamXgroupNeedsKey);
    return false;
  }
  a->g = a->s->FindGroup(ctx.arg(3));
  if (!a->g && !create && !EqualsIgnoreCase(sub, "destroy")) {
    ctx.Error(OpStatus::kStreamNoGroupForKey, ctx.arg(3), ctx.arg(2));
    return false;
  }
  return true;
}

void XGroupCreate(CommandContext& ctx) {
  if (ctx.argc() > 8) return SubcommandSyntaxError(ctx);
  XGroupArgs a;
  if (!XGroupPrepare(ctx, &a)) return;
  StreamID id;
  if (ctx.arg(4) == "$") {
    id = a.s ? a.s->last_id() : StreamID{};
  } else if (!ParseId(ctx, ctx.arg(4), &id, 0, true)) {
    return;
  }
  std::string_view key = ctx.arg(2);
  if (!a.s) {
    a.s = new StreamValue();
    ctx.DbFor(key).Add(NewObjectEntry(key, ObjType::kStream, a.s, -1));
  }
  if (!a.s->CreateGroup(ctx.arg(3), id, a.entries_read)) return ctx.Error(OpStatus::kStreamBusyGroup);
  ctx.rb->Ok();
  NotifyKeyspaceEvent(ctx, kNotifyStream, "xgroup-create", key);
}

void XGroupSetId(CommandContext& ctx) {
  if (ctx.argc() != 5 && ctx.argc() != 7) return SubcommandSyntaxError(ctx);
  XGroupArgs a;
  if (!XGroupPrepare(ctx, &a)) return;
  StreamID id;
  if (ctx.arg(4) == "$") {
    id = a.s->last_id();
  } else if (!ParseId(ctx, ctx.arg(4), &id)) {
    return;
  }
  a.g->last_id = id;
  a.g->entries_read = a.entries_read;
  ctx.rb->Ok();
  NotifyKeyspaceEvent(ctx, kNotifyStream, "xgroup-setid", ctx.arg(2));
}

void XGroupDestroy(CommandContext& ctx) {
  XGroupArgs a;
  if (!XGroupPrepare(ctx, &a)) return;
  if (!a.g) return ctx.rb->Integer(0);
  a.s->DestroyGroup(ctx.arg(3));
  ctx.rb->Integer(1);
  NotifyKeyspaceEvent(ctx, kNotifyStream, "xgroup-destroy", ctx.arg(2));
  SignalKeyReady(ctx, ctx.arg(2));  // blocked readers of the group get NOGROUP
}

void XGroupCreateConsumer(CommandContext& ctx) {
  XGroupArgs a;
  if (!XGroupPrepare(ctx, &a)) return;
  bool created = a.g->CreateConsumer(ctx.arg(4), UnixTimeMs()) != nullptr;
  ctx.rb->Integer(created ? 1 : 0);
  if (created) NotifyKeyspaceEvent(ctx, kNotifyStream, "xgroup-createconsumer", ctx.arg(2));
}

void XGroupDelConsumer(CommandContext& ctx) {
  XGroupArgs a;
  if (!XGroupPrepare(ctx, &a)) return;
  if (!a.g->FindConsumer(ctx.arg(4))) return ctx.rb->Integer(0);
  ctx.rb->Integer(static_cast<int64_t>(a.g->DeleteConsumer(ctx.arg(4))));
  NotifyKeyspaceEvent(ctx, kNotifyStream, "xgroup-delconsumer", ctx.arg(2));
}

constexpr const char* kXGroupHelp[] = {
    "XGROUP <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CREATE <key> <groupname> <id|$> [option]",
    "    Create a new consumer group. Options are:",
    "    * MKSTREAM",
    "      Create the empty stream if it does not exist.",
    "    * ENTRIESREAD entries_read",
    "      Set the group's entries_read counter (internal use).",
    "CREATECONSUMER <key> <groupname> <consumer>",
    "    Create a new consumer in the specified group.",
    "DELCONSUMER <key> <groupname> <consumer>",
    "    Remove the specified consumer.",
    "DESTROY <key> <groupname>",
    "    Remove the specified group.",
    "SETID <key> <groupname> <id|$> [ENTRIESREAD entries_read]",
    "    Set the current group ID and entries_read counter.",
    "HELP",
    "    Prints this help.",
};
void XGroupHelp(CommandContext& ctx) { ctx.HelpLines(kXGroupHelp); }

// ---- XINFO ----

constexpr const char* kXInfoHelp[] = {
    "XINFO <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CONSUMERS <key> <groupname>",
    "    Show consumers of <groupname>.",
    "GROUPS <key>",
    "    Show the stream consumer groups.",
    "STREAM <key> [FULL [COUNT <count>]",
    "    Show information about the stream.",
    "HELP",
    "    Prints this help.",
};
void XInfoHelp(CommandContext& ctx) { ctx.HelpLines(kXInfoHelp); }

bool LookupForInfo(CommandContext& ctx, StreamValue** s) {
  if (!Lookup(ctx, ctx.arg(2), s)) return false;
  if (!*s) {
    ctx.Error(OpStatus::kNoSuchKey);
    return false;
  }
  return true;
}

void ReplyLag(resp::ReplyBuilder* rb, const StreamValue& s, const StreamGroup& g) {
  auto lag = s.GroupLag(g);
  if (lag) rb->Integer(*lag);
  else rb->Null();
}
void ReplyEntriesRead(resp::ReplyBuilder* rb, const StreamGroup& g) {
  if (g.entries_read != StreamGroup::kInvalidEntriesRead) rb->Integer(g.entries_read);
  else rb->Null();
}

void XInfoConsumers(CommandContext& ctx) {
  StreamValue* s;
  if (!LookupForInfo(ctx, &s)) return;
  StreamGroup* g = s->FindGroup(ctx.arg(3));
  if (!g) return ctx.Error(OpStatus::kStreamNoGroupForKey, ctx.arg(3), ctx.arg(2));
  int64_t now = UnixTimeMs();
  ctx.rb->ArrayHeader(g->consumers.size());
  for (const auto& [name, c] : g->consumers) {
    ctx.rb->MapHeader(3);
    ctx.rb->Bulk("name");
    ctx.rb->Bulk(name);
    ctx.rb->Bulk("pending");
    ctx.rb->Integer(static_cast<int64_t>(c->pending.size()));
    ctx.rb->Bulk("idle");
    ctx.rb->Integer(std::max<int64_t>(0, now - c->seen_time));
  }
}

void XInfoGroups(CommandContext& ctx) {
  StreamValue* s;
  if (!LookupForInfo(ctx, &s)) return;
  ctx.rb->ArrayHeader(s->groups().size());
  for (const auto& [name, g] : s->groups()) {
    ctx.rb->MapHeader(6);
    ctx.rb->Bulk("name");
    ctx.rb->Bulk(name);
    ctx.rb->Bulk("consumers");
    ctx.rb->Integer(static_cast<int64_t>(g->consumers.size()));
    ctx.rb->Bulk("pending");
    ctx.rb->Integer(static_cast<int64_t>(g->pel.size()));
    ctx.rb->Bulk("last-delivered-id");
    ReplyId(ctx, g->last_id);
    ctx.rb->Bulk("entries-read");
    ReplyEntriesRead(ctx.rb, *g);
    ctx.rb->Bulk("lag");
    ReplyLag(ctx.rb, *s, *g);
  }
}

void XInfoStream(CommandContext& ctx) {
  StreamValue* s;
  if (!LookupForInfo(ctx, &s)) return;
  bool full = false;
  int64_t count = 10;
  size_t optc = ctx.argc() - 3;
  if (optc) {
    if ((optc != 1 && optc != 3) || !EqualsIgnoreCase(ctx.arg(3), "full")) return SubcommandSyntaxError(ctx);
    if (optc == 3) {
      if (!EqualsIgnoreCase(ctx.arg(4), "count")) return SubcommandSyntaxError(ctx);
      if (!ParseInt64(ctx.arg(5), &count)) return ctx.Error(OpStatus::kNotAnInteger);
      if (count < 0) count = 10;
    }
    full = true;
  }
  resp::ReplyBuilder* rb = ctx.rb;
  rb->MapHeader(full ? 9 : 10);
  rb->Bulk("length");
  rb->Integer(static_cast<int64_t>(s->size()));
  // Redis reports its radix tree: keys are the nodes (our blocks); its inner
  // node count has no equivalent here, the block count stands in for it.
  rb->Bulk("radix-tree-keys");
  rb->Integer(static_cast<int64_t>(s->blocks()));
  rb->Bulk("radix-tree-nodes");
  rb->Integer(static_cast<int64_t>(s->blocks() + 1));
  rb->Bulk("last-generated-id");
  ReplyId(ctx, s->last_id());
  rb->Bulk("max-deleted-entry-id");
  ReplyId(ctx, s->max_deleted_id());
  rb->Bulk("entries-added");
  rb->Integer(static_cast<int64_t>(s->entries_added()));
  rb->Bulk("recorded-first-entry-id");
  ReplyId(ctx, s->first_id());
  if (!full) {
    rb->Bulk("groups");
    rb->Integer(static_cast<int64_t>(s->groups().size()));
    rb->Bulk("first-entry");
    if (!s->size() || !ReplyOneEntry(rb, *s, s->FirstId())) rb->Null();
    rb->Bulk("last-entry");
    if (!s->size() || !ReplyOneEntry(rb, *s, s->LastLiveId())) rb->Null();
    return;
  }
  auto limit = static_cast<size_t>(count);
  rb->Bulk("entries");
  ReplyRange(rb, *s, StreamID::Min(), StreamID::Max(), limit, false);
  rb->Bulk("groups");
  rb->ArrayHeader(s->groups().size());
  for (const auto& [name, g] : s->groups()) {
    rb->MapHeader(7);
    rb->Bulk("name");
    rb->Bulk(name);
    rb->Bulk("last-delivered-id");
    ReplyId(ctx, g->last_id);
    rb->Bulk("entries-read");
    ReplyEntriesRead(rb, *g);
    rb->Bulk("lag");
    ReplyLag(rb, *s, *g);
    rb->Bulk("pel-count");
    rb->Integer(static_cast<int64_t>(g->pel.size()));
    rb->Bulk("pending");
    size_t n = limit ? std::min(limit, g->pel.size()) : g->pel.size();
    rb->ArrayHeader(n);
    auto it = g->pel.begin();
    for (size_t i = 0; i < n; ++i, ++it) {
      rb->ArrayHeader(4);
      ReplyId(ctx, it->first);
      rb->Bulk(it->second.consumer->name);
      rb->Integer(it->second.delivery_time);
      rb->Integer(static_cast<int64_t>(it->second.delivery_count));
    }
    rb->Bulk("consumers");
    rb->ArrayHeader(g->consumers.size());
    for (const auto& [cname, c] : g->consumers) {
      rb->MapHeader(4);
      rb->Bulk("name");
      rb->Bulk(cname);
      rb->Bulk("seen-time");
      rb->Integer(c->seen_time);
      rb->Bulk("pel-count");
      rb->Integer(static_cast<int64_t>(c->pending.size()));
      rb->Bulk("pending");
      size_t m = limit ? std::min(limit, c->pending.size()) : c->pending.size();
      rb->ArrayHeader(m);
      auto pit = c->pending.begin();
      for (size_t i = 0; i < m; ++i, ++pit) {
        const StreamNack& nack = g->pel.at(*pit);
        rb->ArrayHeader(3);
        ReplyId(ctx, *pit);
        rb->Integer(nack.delivery_time);
        rb->Integer(static_cast<int64_t>(nack.delivery_count));
      }
    }
  }
}

}  // namespace

void RegisterStreamFamily(CommandRegistry* r) {
  constexpr uint32_t W = kCmdWrite, R = kCmdReadOnly, M = kCmdDenyOom, F = kCmdFast, B = kCmdBlocking;
  auto make = [](const char* name, int arity, uint32_t flags, int first, int last, int step, Handler h,
                 const char* acl, const char* summary, const char* since) {
    CommandSpec c = MakeCommand(name, arity, flags, first, last, step, h, acl, summary, "stream");
    c.since = since;
    return c;
  };
  auto add = [&](const char* name, int arity, uint32_t flags, Handler h, const char* acl, const char* summary,
                 const char* since) { r->Add(make(name, arity, flags, 1, 1, 1, h, acl, summary, since)); };
  add("xadd", -5, W | M | F, XAdd, "@write @stream @fast", "Appends a new message to a stream. Creates the key if it doesn't exist.", "5.0.0");
  add("xrange", -4, R, XRange, "@read @stream @slow", "Returns the messages from a stream within a range of IDs.", "5.0.0");
  add("xrevrange", -4, R, XRevRange, "@read @stream @slow", "Returns the messages from a stream within a range of IDs in reverse order.", "5.0.0");
  add("xlen", 2, R | F, XLen, "@read @stream @fast", "Return the number of messages in a stream.", "5.0.0");
  add("xdel", -3, W | F, XDel, "@write @stream @fast", "Returns the number of messages after removing them from a stream.", "5.0.0");
  add("xtrim", -4, W, XTrim, "@write @stream @slow", "Deletes messages from the beginning of a stream.", "5.0.0");
  add("xsetid", -3, W | M | F, XSetId, "@write @stream @fast", "An internal command for replicating stream values.", "5.0.0");
  add("xack", -4, W | F, XAck, "@write @stream @fast", "Returns the number of messages that were successfully acknowledged by the consumer group member of a stream.", "5.0.0");
  add("xpending", -3, R, XPending, "@read @stream @slow", "Returns the information and entries from a stream consumer group's pending entries list.", "5.0.0");
  add("xclaim", -6, W | F, XClaim, "@write @stream @fast", "Changes, or acquires, ownership of a message in a consumer group, as if the message was delivered a consumer group member.", "5.0.0");
  add("xautoclaim", -6, W | F, XAutoClaim, "@write @stream @fast", "Changes, or acquires, ownership of messages in a consumer group, as if the messages were delivered to as consumer group member.", "6.2.0");
  {
    CommandSpec c = make("xread", -4, R | B, 0, 0, 0, XRead, "@read @stream @slow @blocking",
                         "Returns messages from multiple streams with IDs greater than the ones requested. Blocks until a message is available otherwise.", "5.0.0");
    c.get_keys = XReadKeys;
    r->Add(std::move(c));
  }
  {
    CommandSpec c = make("xreadgroup", -7, W | B, 0, 0, 0, XReadGroup, "@write @stream @slow @blocking",
                         "Returns new or historical messages from a stream for a consumer in a group. Blocks until a message is available otherwise.", "5.0.0");
    c.get_keys = XReadGroupKeys;
    r->Add(std::move(c));
  }
  {
    CommandSpec g = make("xgroup", -2, 0, 0, 0, 0, nullptr, "@slow", "A container for consumer groups commands.", "5.0.0");
    g.route = Route::kConnection;
    g.subcommands.push_back(make("xgroup|create", -5, W | M, 2, 2, 1, XGroupCreate, "@write @stream @slow", "Creates a consumer group.", "5.0.0"));
    g.subcommands.push_back(make("xgroup|createconsumer", 5, W | M, 2, 2, 1, XGroupCreateConsumer, "@write @stream @slow", "Creates a consumer in a consumer group.", "6.2.0"));
    g.subcommands.push_back(make("xgroup|delconsumer", 5, W, 2, 2, 1, XGroupDelConsumer, "@write @stream @slow", "Deletes a consumer from a consumer group.", "5.0.0"));
    g.subcommands.push_back(make("xgroup|destroy", 4, W, 2, 2, 1, XGroupDestroy, "@write @stream @slow", "Destroys a consumer group.", "5.0.0"));
    g.subcommands.push_back(make("xgroup|setid", -5, W, 2, 2, 1, XGroupSetId, "@write @stream @slow", "Sets the last-delivered ID of a consumer group.", "5.0.0"));
    CommandSpec help = make("xgroup|help", 2, kCmdLoading | kCmdStale, 0, 0, 0, XGroupHelp, "@stream @slow", "Returns helpful text about the different subcommands.", "5.0.0");
    help.route = Route::kConnection;
    g.subcommands.push_back(std::move(help));
    r->Add(std::move(g));
  }
  {
    CommandSpec x = make("xinfo", -2, 0, 0, 0, 0, nullptr, "@slow", "A container for stream introspection commands.", "5.0.0");
    x.route = Route::kConnection;
    x.subcommands.push_back(make("xinfo|consumers", 4, R, 2, 2, 1, XInfoConsumers, "@read @stream @slow", "Returns a list of the consumers in a consumer group.", "5.0.0"));
    x.subcommands.push_back(make("xinfo|groups", 3, R, 2, 2, 1, XInfoGroups, "@read @stream @slow", "Returns a list of the consumer groups of a stream.", "5.0.0"));
    x.subcommands.push_back(make("xinfo|stream", -3, R, 2, 2, 1, XInfoStream, "@read @stream @slow", "Returns information about a stream.", "5.0.0"));
    CommandSpec help = make("xinfo|help", 2, kCmdLoading | kCmdStale, 0, 0, 0, XInfoHelp, "@stream @slow", "Returns helpful text about the different subcommands.", "5.0.0");
    help.route = Route::kConnection;
    x.subcommands.push_back(std::move(help));
    r->Add(std::move(x));
  }
}

}  // namespace larder
