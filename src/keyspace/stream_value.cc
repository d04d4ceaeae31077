#include "keyspace/stream_value.h"

#include <fmt/format.h>
#include <malloc.h>

#include "common/numbers.h"
#include "ds/varint.h"

namespace larder {

bool StreamID::Incr() {
  if (seq != UINT64_MAX) {
    ++seq;
    return true;
  }
  if (ms == UINT64_MAX) {
    ms = seq = 0;
    return false;
  }
  ++ms;
  seq = 0;
  return true;
}

bool StreamID::Decr() {
  if (seq != 0) {
    --seq;
    return true;
  }
  if (ms == 0) return false;
  --ms;
  seq = UINT64_MAX;
  return true;
}

std::string StreamID::ToString() const { return fmt::format("{}-{}", ms, seq); }

// ---- Consumer groups ----

StreamConsumer* StreamGroup::FindConsumer(std::string_view name) const {
  auto it = consumers.find(name);
  return it == consumers.end() ? nullptr : it->second.get();
}

StreamConsumer* StreamGroup::CreateConsumer(std::string_view name, int64_t now_ms) {
  auto [it, inserted] = consumers.try_emplace(std::string(name));
  if (!inserted) return nullptr;
  it->second = std::make_unique<StreamConsumer>();
  it->second->name = std::string(name);
  it->second->seen_time = now_ms;
  return it->second.get();
}

size_t StreamGroup::DeleteConsumer(std::string_view name) {
  auto it = consumers.find(name);
  if (it == consumers.end()) return 0;
  size_t n = it->second->pending.size();
  for (StreamID id : it->second->pending) pel.erase(id);
  consumers.erase(it);
  return n;
}

StreamGroup* StreamValue::FindGroup(std::string_view name) const {
  auto it = groups_.find(name);
  return it == groups_.end() ? nullptr : it->second.get();
}

StreamGroup* StreamValue::CreateGroup(std::string_view name, StreamID last_id, int64_t entries_read) {
  auto [it, inserted] = groups_.try_emplace(std::string(name));
  if (!inserted) return nullptr;
  it->second = std::make_unique<StreamGroup>();
  it->second->last_id = last_id;
  it->second->entries_read = entries_read;
  return it->second.get();
}

bool StreamValue::DestroyGroup(std::string_view name) {
  auto it = groups_.find(name);
  if (it == groups_.end()) return false;
  groups_.erase(it);
  return true;
}

StreamValue::StreamValue(const StreamValue& o)
    : blocks_(o.blocks_),
      length_(o.length_),
      last_id_(o.last_id_),
      first_id_(o.first_id_),
      max_deleted_(o.max_deleted_),
      entries_added_(o.entries_added_) {
  for (const auto& [name, g] : o.groups_) {
    auto ng = std::make_unique<StreamGroup>();
    ng->last_id = g->last_id;
    ng->entries_read = g->entries_read;
    for (const auto& [cname, c] : g->consumers) {
      auto nc = std::make_unique<StreamConsumer>(*c);
      ng->consumers.emplace(cname, std::move(nc));
    }
    for (const auto& [id, nack] : g->pel) {
      StreamNack n = nack;
      n.consumer = ng->FindConsumer(nack.consumer->name);
      ng->pel.emplace(id, n);
    }
    groups_.emplace(name, std::move(ng));
  }
}

// ---- Block encoding ----

namespace {

void PutString(std::string* out, std::string_view s) {
  char buf[10];
  out->append(buf, PutVarint(buf, s.size()));
  out->append(s);
}
void PutNumber(std::string* out, uint64_t v) {
  char buf[10];
  out->append(buf, PutVarint(buf, v));
}
uint64_t Zigzag(int64_t v) { return (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63); }
int64_t Unzigzag(uint64_t v) { return static_cast<int64_t>(v >> 1) ^ -static_cast<int64_t>(v & 1); }

struct Reader {
  const char* p;
  uint64_t Number() {
    uint64_t v;
    p += GetVarint(p, &v);
    return v;
  }
  std::string_view String() {
    uint64_t n = Number();
    std::string_view s(p, n);
    p += n;
    return s;
  }
};

// Listpack element sizes (Redis 7.0's listpack.c): an encoding header with
// the data, then a back-length of 1-5 bytes. Strings that read as integers
// are stored as integers there.
size_t LpBacklen(size_t l) { return l <= 127 ? 1 : l < 16383 ? 2 : l < 2097151 ? 3 : l < 268435455 ? 4 : 5; }
size_t LpInt(int64_t v) {
  size_t enc = v >= 0 && v <= 127                   ? 1
               : v >= -4096 && v <= 4095            ? 2
               : v >= -32768 && v <= 32767          ? 3
               : v >= -8388608 && v <= 8388607      ? 4
               : v >= INT32_MIN && v <= INT32_MAX   ? 5
                                                    : 9;
  return enc + LpBacklen(enc);
}
size_t LpStr(std::string_view s) {
  int64_t v;
  if (s.size() <= 20 && ParseInt64(s, &v)) return LpInt(v);
  size_t enc = s.size() + (s.size() < 64 ? 1 : s.size() < 4096 ? 2 : 5);
  return enc + LpBacklen(enc);
}

}  // namespace

size_t StreamValue::ListpackBytes(const Block& b) {
  Reader r{b.data.data()};
  auto nmaster = static_cast<int64_t>(r.Number());
  // Header (total bytes, element count) and end byte; the master entry's
  // live count, deleted count and field count.
  return 7 + LpInt(b.live) + LpInt(b.deleted) + LpInt(nmaster) + b.lp_body;
}

template <typename Fn>
void StreamValue::ScanBlock(StreamID master, const Block& b, Fn&& fn) {
  const char* base = b.data.data();
  const char* end = base + b.data.size();
  Reader r{base};
  uint64_t nmaster = r.Number();
  std::vector<std::string_view> master_fields(nmaster);
  for (auto& f : master_fields) f = r.String();
  StreamFields fields;
  while (r.p < end) {
    size_t off = static_cast<size_t>(r.p - base);
    auto flags = static_cast<uint8_t>(*r.p++);
    StreamID id{master.ms + r.Number(), master.seq + static_cast<uint64_t>(Unzigzag(r.Number()))};
    fields.clear();
    if (flags & kSameFields) {
      for (uint64_t i = 0; i < nmaster; ++i) fields.emplace_back(master_fields[i], r.String());
    } else {
      uint64_t n = r.Number();
      for (uint64_t i = 0; i < n; ++i) {
        std::string_view f = r.String();
        fields.emplace_back(f, r.String());
      }
    }
    if (!fn(off, id, flags, fields)) return;
  }
}

void StreamValue::ForEachNode(const std::function<void(const NodeView&)>& fn) const {
  NodeView v;
  for (const auto& [master, b] : blocks_) {
    v.master = master;
    v.live = b.live;
    v.deleted = b.deleted;
    v.master_fields.clear();
    v.entries.clear();
    Reader r{b.data.data()};
    uint64_t nmaster = r.Number();
    for (uint64_t i = 0; i < nmaster; ++i) v.master_fields.push_back(r.String());
    ScanBlock(master, b, [&](size_t, StreamID id, uint8_t flags, const StreamFields& f) {
      v.entries.push_back(NodeEntry{id, flags, f});
      return true;
    });
    fn(v);
  }
}

void StreamValue::Append(StreamID id, std::span<const std::string_view> fv, const StreamLimits& limits) {
  size_t payload = 0;
  for (auto s : fv) payload += s.size();
  Block* tail = nullptr;
  StreamID master;
  if (!blocks_.empty()) {
    auto it = std::prev(blocks_.end());
    Block& b = it->second;
    size_t max_bytes = limits.node_max_bytes;
    if (max_bytes == 0 || max_bytes > (size_t{1} << 30)) max_bytes = size_t{1} << 30;
    bool full = ListpackBytes(b) + payload >= max_bytes ||
                (limits.node_max_entries && b.live + b.deleted >= limits.node_max_entries);
    if (!full) {
      tail = &b;
      master = it->first;
    }
  }
  size_t nfields = fv.size() / 2;
  if (!tail) {
    Block nb;
    PutNumber(&nb.data, nfields);
    for (size_t i = 0; i < nfields; ++i) {
      PutString(&nb.data, fv[2 * i]);
      nb.lp_body += LpStr(fv[2 * i]);
    }
    nb.lp_body += LpInt(0);  // the master entry's terminator
    tail = &blocks_.emplace(id, std::move(nb)).first->second;
    master = id;
  }
  // Same field names as the master?
  Reader r{tail->data.data()};
  bool same = r.Number() == nfields;
  for (size_t i = 0; same && i < nfields; ++i) same = r.String() == fv[2 * i];
  std::string& d = tail->data;
  d.push_back(static_cast<char>(same ? kSameFields : 0));
  PutNumber(&d, id.ms - master.ms);
  PutNumber(&d, Zigzag(static_cast<int64_t>(id.seq - master.seq)));
  size_t lp = LpInt(same ? kSameFields : 0) + LpInt(static_cast<int64_t>(id.ms - master.ms)) +
              LpInt(static_cast<int64_t>(id.seq - master.seq));
  if (same) {
    for (size_t i = 0; i < nfields; ++i) {
      PutString(&d, fv[2 * i + 1]);
      lp += LpStr(fv[2 * i + 1]);
    }
    lp += LpInt(static_cast<int64_t>(nfields + 3));  // Redis's lp-count
  } else {
    PutNumber(&d, nfields);
    lp += LpInt(static_cast<int64_t>(nfields));
    for (auto s : fv) {
      PutString(&d, s);
      lp += LpStr(s);
    }
    lp += LpInt(static_cast<int64_t>(2 * nfields + 4));
  }
  tail->lp_body += lp;
  ++tail->live;
  ++length_;
  ++entries_added_;
  last_id_ = id;
  if (length_ == 1) first_id_ = id;
}

bool StreamValue::Contains(StreamID id) const {
  auto it = blocks_.upper_bound(id);
  if (it == blocks_.begin()) return false;
  --it;
  bool found = false;
  ScanBlock(it->first, it->second, [&](size_t, StreamID eid, uint8_t flags, const StreamFields&) {
    if (eid < id) return true;
    found = eid == id && !(flags & kDeleted);
    return false;
  });
  return found;
}

bool StreamValue::Delete(StreamID id) {
  auto it = blocks_.upper_bound(id);
  if (it == blocks_.begin()) return false;
  --it;
  Block& b = it->second;
  size_t at = SIZE_MAX;
  ScanBlock(it->first, b, [&](size_t off, StreamID eid, uint8_t flags, const StreamFields&) {
    if (eid < id) return true;
    if (eid == id && !(flags & kDeleted)) at = off;
    return false;
  });
  if (at == SIZE_MAX) return false;
  b.data[at] = static_cast<char>(b.data[at] | kDeleted);
  --b.live;
  ++b.deleted;
  --length_;
  if (b.live == 0) blocks_.erase(it);
  if (id == first_id_) UpdateFirstId();
  return true;
}

void StreamValue::UpdateFirstId() { first_id_ = length_ ? FirstId() : StreamID{}; }

int64_t StreamValue::Trim(const TrimArgs& a) {
  if (a.strategy == TrimArgs::kNone) return 0;
  int64_t removed = 0;
  while (!blocks_.empty()) {
    if (a.strategy == TrimArgs::kMaxLen && length_ <= a.maxlen) break;
    auto it = blocks_.begin();
    Block& b = it->second;
    int64_t live = b.live;
    if (a.limit && removed + live > a.limit) break;
    bool whole;
    if (a.strategy == TrimArgs::kMaxLen) {
      whole = length_ - static_cast<uint64_t>(live) >= a.maxlen;
    } else {
      StreamID last;
      ScanBlock(it->first, b, [&](size_t, StreamID id, uint8_t, const StreamFields&) {
        last = id;
        return true;
      });
      whole = last < a.minid;
    }
    if (whole) {
      length_ -= static_cast<uint64_t>(live);
      removed += live;
      blocks_.erase(it);
      continue;
    }
    if (a.approx) break;
    std::vector<size_t> marks;
    uint64_t len = length_;
    ScanBlock(it->first, b, [&](size_t off, StreamID id, uint8_t flags, const StreamFields&) {
      bool stop = a.strategy == TrimArgs::kMaxLen ? len <= a.maxlen : id >= a.minid;
      if (stop) return false;
      if (!(flags & kDeleted)) {
        marks.push_back(off);
        --len;
      }
      return true;
    });
    for (size_t off : marks) b.data[off] = static_cast<char>(b.data[off] | kDeleted);
    b.live -= static_cast<uint32_t>(marks.size());
    b.deleted += static_cast<uint32_t>(marks.size());
    length_ -= marks.size();
    removed += static_cast<int64_t>(marks.size());
    break;
  }
  UpdateFirstId();
  return removed;
}

void StreamValue::Range(StreamID start, StreamID end, bool rev,
                        const std::function<bool(StreamID, const StreamFields&)>& fn) const {
  if (start > end || blocks_.empty()) return;
  // The block that may hold `start`: the last one whose first ID <= start.
  auto first = blocks_.upper_bound(start);
  if (first != blocks_.begin()) --first;
  auto last = blocks_.upper_bound(end);  // one past the last block to visit
  if (!rev) {
    for (auto it = first; it != last; ++it) {
      bool go = true;
      ScanBlock(it->first, it->second, [&](size_t, StreamID id, uint8_t flags, const StreamFields& f) {
        if (id > end) return go = false;
        if (id < start || (flags & kDeleted)) return true;
        return go = fn(id, f);
      });
      if (!go) return;
    }
    return;
  }
  // Descending: collect a block's entries, then replay them backwards.
  struct Item {
    StreamID id;
    StreamFields fields;
  };
  std::vector<Item> items;
  for (auto it = last; it != first;) {
    --it;
    items.clear();
    ScanBlock(it->first, it->second, [&](size_t, StreamID id, uint8_t flags, const StreamFields& f) {
      if (id > end) return false;
      if (id >= start && !(flags & kDeleted)) items.push_back({id, f});
      return true;
    });
    for (size_t i = items.size(); i > 0; --i)
      if (!fn(items[i - 1].id, items[i - 1].fields)) return;
  }
}

StreamID StreamValue::FirstId() const {
  StreamID out;
  Range(StreamID::Min(), StreamID::Max(), false, [&](StreamID id, const StreamFields&) {
    out = id;
    return false;
  });
  return out;
}

StreamID StreamValue::LastLiveId() const {
  StreamID out;
  if (blocks_.empty()) return out;
  auto it = std::prev(blocks_.end());
  ScanBlock(it->first, it->second, [&](size_t, StreamID id, uint8_t flags, const StreamFields&) {
    if (!(flags & kDeleted)) out = id;
    return true;
  });
  return out;
}

size_t StreamValue::MemoryUsage() const {
  // The btree holds blocks in nodes of a few hundred bytes; count each
  // block's slot and its bytes.
  size_t n = sizeof(StreamValue);
  for (const auto& [id, b] : blocks_) n += sizeof(id) + sizeof(b) + b.data.capacity() + 1;
  for (const auto& [name, g] : groups_) {
    n += sizeof(StreamGroup) + name.size() + 32 + g->pel.size() * (sizeof(StreamID) + sizeof(StreamNack) + 8);
    for (const auto& [cname, c] : g->consumers)
      n += sizeof(StreamConsumer) + 2 * cname.size() + 32 + c->pending.size() * (sizeof(StreamID) + 4);
  }
  return n;
}

bool StreamValue::RangeHasTombstones(StreamID start, StreamID end) const {
  if (!length_ || max_deleted_.IsZero()) return false;
  if (first_id_ > max_deleted_) return false;
  return start <= max_deleted_ && max_deleted_ <= end;
}

int64_t StreamValue::EstimateEntriesRead(StreamID id) const {
  if (!entries_added_) return 0;
  if (!length_ && id <= last_id_) return static_cast<int64_t>(entries_added_);
  if (id == last_id_) return static_cast<int64_t>(entries_added_);
  if (id > last_id_) return StreamGroup::kInvalidEntriesRead;
  if (max_deleted_.IsZero() || max_deleted_ < first_id_) {
    if (id < first_id_) return static_cast<int64_t>(entries_added_ - length_);
    if (id == first_id_) return static_cast<int64_t>(entries_added_ - length_ + 1);
  }
  return StreamGroup::kInvalidEntriesRead;
}

std::optional<int64_t> StreamValue::GroupLag(const StreamGroup& g) const {
  if (!entries_added_) return 0;
  if (g.entries_read != StreamGroup::kInvalidEntriesRead && !RangeHasTombstones(g.last_id, StreamID::Max()))
    return static_cast<int64_t>(entries_added_) - g.entries_read;
  int64_t read = EstimateEntriesRead(g.last_id);
  if (read == StreamGroup::kInvalidEntriesRead) return std::nullopt;
  return static_cast<int64_t>(entries_added_) - read;
}

}  // namespace larder
