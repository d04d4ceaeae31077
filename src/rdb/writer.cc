// writer: see rdb/rdb.h.
//
// Every value is written as Redis 7.0.15's rdbSaveObject writes it, so that
// a payload of a value Redis would encode the same way is byte for byte
// Redis's (tests/integration/test_rdb_write.py compares DUMP outputs):
//  - strings: integer encodings for canonical integers of up to 11 bytes
//    that fit 32 bits, LZF over 20 bytes when it saves (rdbcompression),
//    plain otherwise. Redis writes every blob (listpack, intset, stream
//    node) through the same rdbSaveRawString, so blobs get LZF too.
//  - lists: quicklist 2, listpack nodes cut where list-max-listpack-size
//    cuts a list built by RPUSH.
//  - sets: intset / plain members; sorted sets: listpack / members with
//    binary scores from the greatest down; hashes: listpack / plain pairs,
//    and Redis 7.4's layouts when fields have TTLs.
//  - streams: one listpack per block in Redis's node layout, the stream's
//    metadata, its consumer groups with their PELs and consumers.
#include <lzf.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "common/numbers.h"
#include "keyspace/db.h"
#include "keyspace/eviction.h"
#include "keyspace/objects.h"
#include "rdb/format.h"
#include "rdb/lp_write.h"
#include "rdb/rdb.h"

namespace larder::rdb {

namespace {

// Quicklist node containers (quicklist.h).
constexpr uint64_t kContainerPlain = 1;
constexpr uint64_t kContainerPacked = 2;
// Node sizes for list-max-listpack-size -1..-5, and the most a node given
// by an element count may take (quicklist's SIZE_SAFETY_LIMIT).
constexpr size_t kListNodeBytes[] = {4096, 8192, 16384, 32768, 65536};
constexpr size_t kListNodeSafetyLimit = 8192;
// Elements this large get a node of their own (quicklist's packed_threshold).
constexpr size_t kListPlainThreshold = size_t{1} << 30;

// Redis 7.0's d2string: integers in +-2^52 as integers, else %.17g.
std::string D2String(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  if (v == 0) return std::signbit(v) ? "-0" : "0";
  char buf[64];
  int n;
  if (v > -4503599627370495.0 && v < 4503599627370496.0 && v == static_cast<double>(static_cast<long long>(v)))
    n = snprintf(buf, sizeof(buf), "%lld", static_cast<long long>(v));
  else
    n = snprintf(buf, sizeof(buf), "%.17g", v);
  return std::string(buf, static_cast<size_t>(n));
}

void PutBigEndian64(std::string* out, uint64_t v) {
  for (int i = 7; i >= 0; --i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

// A stream ID as the 16 bytes of Redis's rax keys (big endian ms, seq).
std::string StreamKey(StreamID id) {
  std::string k;
  k.reserve(16);
  PutBigEndian64(&k, id.ms);
  PutBigEndian64(&k, id.seq);
  return k;
}

void WriteString(Writer& w, const Entry* e) { w.String(e->value()); }

// Whether quicklist 7.0.15 (_quicklistNodeAllowInsert) appends an element
// of `sz` bytes to a node of `node_bytes` bytes and `count` elements: the
// raw length plus a fixed 8-byte overestimate of its header and backlen,
// within the size list-max-listpack-size gives, or within 8 KB and the count.
bool NodeTakes(size_t node_bytes, size_t count, size_t sz, int fill) {
  fill = std::clamp(fill, -5, (1 << 15) - 1);  // quicklistSetFill's bounds
  size_t new_sz = node_bytes + sz + 8;
  if (fill < 0) return new_sz <= kListNodeBytes[-fill - 1];
  return new_sz <= kListNodeSafetyLimit && count < static_cast<size_t>(fill);
}

void WriteList(Writer& w, const ListValue& l) {
  struct Node {
    uint64_t container;
    std::string blob;
  };
  std::vector<Node> nodes;
  ListpackBuilder cur;
  auto flush = [&] {
    if (cur.count()) nodes.push_back({kContainerPacked, cur.Finish()});
  };
  l.ForEach([&](std::string_view item) {
    size_t sz = item.size();
    if (sz >= kListPlainThreshold) {
      flush();
      nodes.push_back({kContainerPlain, std::string(item)});
      return;
    }
    if (cur.count() && !NodeTakes(cur.bytes(), cur.count(), sz, w.options().list_fill)) flush();
    cur.Add(item);
  });
  flush();
  w.Length(nodes.size());
  for (const Node& n : nodes) {
    w.Length(n.container);
    w.String(n.blob);
  }
}

void WriteSet(Writer& w, const SetValue& s) {
  if (std::string_view(s.encoding()) == "intset") {
    std::vector<int64_t> ints;
    ints.reserve(s.size());
    s.ForEach([&](std::string_view m) {
      int64_t v = 0;
      ParseInt64(m, &v);
      ints.push_back(v);
    });
    std::sort(ints.begin(), ints.end());
    w.String(IntsetBytes(ints));
    return;
  }
  w.Length(s.size());
  s.ForEach([&](std::string_view m) { w.String(m); });
}

void WriteZSet(Writer& w, const ZSetValue& z) {
  if (std::string_view(z.encoding()) == "listpack") {
    ListpackBuilder lp;
    z.ForEach([&](const ZSetValue::Ref& i) {
      lp.Add(i.member);
      lp.Add(D2String(i.score));
    });
    w.String(lp.Finish());
    return;
  }
  // Descending, as Redis writes it: a loader's inserts land at the head.
  w.Length(z.size());
  z.Walk(0, true, [&](const ZSetValue::Ref& i) {
    w.String(i.member);
    w.BinaryDouble(i.score);
    return true;
  });
}

void WriteHash(Writer& w, const HashValue& h) {
  if (!h.has_field_ttls()) {
    if (h.packed()) {
      ListpackBuilder lp;
      h.ForEach([&](std::string_view f, std::string_view v) {
        lp.Add(f);
        lp.Add(v);
      });
      w.String(lp.Finish());
    } else {
      w.Length(h.size());
      h.ForEach([&](std::string_view f, std::string_view v) {
        w.String(f);
        w.String(v);
      });
    }
    return;
  }
  // Redis 7.4: the hash's earliest field expiry first, then the fields.
  struct Field {
    std::string_view f, v;
    int64_t ttl;  // 0: none
  };
  std::vector<Field> fields;
  fields.reserve(h.size());
  int64_t min_expire = -1;
  h.ForEach([&](std::string_view f, std::string_view v) {
    int64_t t = h.FieldExpire(f).value_or(0);
    if (t > 0 && (min_expire < 0 || t < min_expire)) min_expire = t;
    fields.push_back({f, v, t});
  });
  if (h.packed()) {
    // HASH_LISTPACK_EX: field, value, expiry triplets ordered by expiry,
    // fields without one at the end (as listpackEx keeps them).
    std::stable_sort(fields.begin(), fields.end(), [](const Field& a, const Field& b) {
      if ((a.ttl == 0) != (b.ttl == 0)) return b.ttl == 0;
      return a.ttl < b.ttl;
    });
    w.Millis(min_expire < 0 ? 0 : min_expire);
    ListpackBuilder lp;
    for (const Field& x : fields) {
      lp.Add(x.f);
      lp.Add(x.v);
      lp.AddInt(x.ttl);
    }
    w.String(lp.Finish());
    return;
  }
  // HASH_METADATA: each field's expiry relative to the earliest, plus one
  // (0 saying "none").
  w.Millis(min_expire);
  w.Length(fields.size());
  for (const Field& x : fields) {
    w.Length(x.ttl == 0 ? 0 : static_cast<uint64_t>(x.ttl - min_expire) + 1);
    w.String(x.f);
    w.String(x.v);
  }
}

// One stream node: the master entry (live count, deleted count, master
// fields, a 0 terminator), then per entry its flags, ID deltas from the
// master, fields (values only when they are the master's), and lp-count
// (how many elements the entry took, to walk the node backwards).
std::string StreamNodeListpack(const StreamValue::NodeView& n) {
  ListpackBuilder lp;
  lp.AddInt(n.live);
  lp.AddInt(n.deleted);
  lp.AddInt(static_cast<int64_t>(n.master_fields.size()));
  for (std::string_view f : n.master_fields) lp.Add(f);
  lp.AddInt(0);
  for (const auto& e : n.entries) {
    lp.AddInt(e.flags);
    lp.AddInt(static_cast<int64_t>(e.id.ms - n.master.ms));
    lp.AddInt(static_cast<int64_t>(e.id.seq - n.master.seq));
    auto nfields = static_cast<int64_t>(e.fields.size());
    if (e.flags & kStreamItemFlagSameFields) {
      for (const auto& [f, v] : e.fields) lp.Add(v);
      lp.AddInt(nfields + 3);
    } else {
      lp.AddInt(nfields);
      for (const auto& [f, v] : e.fields) {
        lp.Add(f);
        lp.Add(v);
      }
      lp.AddInt(2 * nfields + 4);
    }
  }
  return lp.Finish();
}

void WriteStreamId(Writer& w, StreamID id) {
  w.Length(id.ms);
  w.Length(id.seq);
}

void WriteStream(Writer& w, const StreamValue& s) {
  w.Length(s.blocks());
  s.ForEachNode([&](const StreamValue::NodeView& n) {
    w.String(StreamKey(n.master));
    w.String(StreamNodeListpack(n));
  });
  w.Length(s.size());
  WriteStreamId(w, s.last_id());
  WriteStreamId(w, s.first_id());
  WriteStreamId(w, s.max_deleted_id());
  w.Length(s.entries_added());
  w.Length(s.groups().size());
  for (const auto& [name, g] : s.groups()) {
    w.String(name);
    WriteStreamId(w, g->last_id);
    w.Length(static_cast<uint64_t>(g->entries_read));
    // The group's PEL: raw 16-byte IDs (no length), delivery time and count.
    w.Length(g->pel.size());
    for (const auto& [id, nack] : g->pel) {
      w.Raw(StreamKey(id));
      w.Millis(nack.delivery_time);
      w.Length(nack.delivery_count);
    }
    // Consumers (Redis 7.0: name, seen-time, their IDs of the PEL).
    w.Length(g->consumers.size());
    for (const auto& [cname, c] : g->consumers) {
      w.String(cname);
      w.Millis(c->seen_time);
      w.Length(c->pending.size());
      for (const StreamID& id : c->pending) w.Raw(StreamKey(id));
    }
  }
}

}  // namespace

// ---------------------------------------------------------------- Writer

std::string Writer::Take(std::string next) {
  if (opts_.checksum) crc();
  next.clear();
  std::string out = std::move(next);
  out.swap(buf_);
  taken_ += out.size();
  crc_done_ = 0;
  return out;
}

uint64_t Writer::crc() {
  if (opts_.checksum && crc_done_ < buf_.size()) {
    crc_ = Crc64(crc_, std::string_view(buf_).substr(crc_done_));
    crc_done_ = buf_.size();
  }
  return crc_;
}

void Writer::Length(uint64_t n) {
  if (n < (1u << 6)) {
    Byte(static_cast<uint8_t>((kLen6Bit << 6) | n));
  } else if (n < (1u << 14)) {
    Byte(static_cast<uint8_t>((kLen14Bit << 6) | (n >> 8)));
    Byte(static_cast<uint8_t>(n & 0xff));
  } else if (n <= UINT32_MAX) {
    Byte(kLen32);
    for (int i = 3; i >= 0; --i) Byte(static_cast<uint8_t>((n >> (8 * i)) & 0xff));
  } else {
    Byte(kLen64);
    for (int i = 7; i >= 0; --i) Byte(static_cast<uint8_t>((n >> (8 * i)) & 0xff));
  }
}

void Writer::String(std::string_view s) {
  // rdbTryIntegerEncoding: a canonical integer (it prints back the same)
  // of up to 11 bytes, stored in 1, 2 or 4 bytes when it fits.
  int64_t v;
  if (s.size() <= 11 && ParseInt64(s, &v)) {
    auto u = static_cast<uint64_t>(v);
    if (v >= INT8_MIN && v <= INT8_MAX) {
      Byte((kLenEncoded << 6) | kEncInt8);
      Byte(static_cast<uint8_t>(u & 0xff));
      return;
    }
    if (v >= INT16_MIN && v <= INT16_MAX) {
      Byte((kLenEncoded << 6) | kEncInt16);
      Byte(static_cast<uint8_t>(u & 0xff));
      Byte(static_cast<uint8_t>((u >> 8) & 0xff));
      return;
    }
    if (v >= INT32_MIN && v <= INT32_MAX) {
      Byte((kLenEncoded << 6) | kEncInt32);
      for (int i = 0; i < 4; ++i) Byte(static_cast<uint8_t>((u >> (8 * i)) & 0xff));
      return;
    }
  }
  // rdbSaveLzfStringObject: only when the result is at least 4 bytes
  // shorter (lzf_compress fails when it would not fit len - 4).
  if (opts_.compress && s.size() > 20 && s.size() <= UINT32_MAX) {
    std::string out(s.size() - 4, '\0');
    unsigned int n = lzf_compress(s.data(), static_cast<unsigned int>(s.size()), out.data(),
                                  static_cast<unsigned int>(out.size()));
    if (n > 0) {
      Byte((kLenEncoded << 6) | kEncLzf);
      Length(n);
      Length(s.size());
      Raw(std::string_view(out.data(), n));
      return;
    }
  }
  RawString(s);
}

void Writer::RawString(std::string_view s) {
  Length(s.size());
  Raw(s);
}

void Writer::Millis(int64_t ms) {
  auto u = static_cast<uint64_t>(ms);
  for (int i = 0; i < 8; ++i) Byte(static_cast<uint8_t>((u >> (8 * i)) & 0xff));
}

void Writer::BinaryDouble(double d) {
  uint64_t u;
  static_assert(sizeof(u) == sizeof(d));
  memcpy(&u, &d, sizeof(u));
  for (int i = 0; i < 8; ++i) Byte(static_cast<uint8_t>((u >> (8 * i)) & 0xff));
}

// ---------------------------------------------------------------- values

uint8_t TypeOf(const Entry* e) {
  switch (e->type) {
    case ObjType::kString: return kTypeString;
    case ObjType::kList: return kTypeListQuicklist2;
    case ObjType::kSet:
      return std::string_view(ObjectOf<SetValue>(e)->encoding()) == "intset" ? kTypeSetIntset : kTypeSet;
    case ObjType::kZSet:
      return std::string_view(ObjectOf<ZSetValue>(e)->encoding()) == "listpack" ? kTypeZSetListpack : kTypeZSet2;
    case ObjType::kHash: {
      const HashValue* h = ObjectOf<HashValue>(e);
      if (h->has_field_ttls()) return h->packed() ? kTypeHashListpackEx : kTypeHashMetadata;
      return h->packed() ? kTypeHashListpack : kTypeHash;
    }
    case ObjType::kStream: return kTypeStreamListpacks2;
  }
  return kTypeString;
}

void WriteValue(Writer& w, const Entry* e) {
  switch (e->type) {
    case ObjType::kString: return WriteString(w, e);
    case ObjType::kList: return WriteList(w, *ObjectOf<ListValue>(e));
    case ObjType::kSet: return WriteSet(w, *ObjectOf<SetValue>(e));
    case ObjType::kZSet: return WriteZSet(w, *ObjectOf<ZSetValue>(e));
    case ObjType::kHash: return WriteHash(w, *ObjectOf<HashValue>(e));
    case ObjType::kStream: return WriteStream(w, *ObjectOf<StreamValue>(e));
  }
}

void WriteKey(Writer& w, const Entry* e, AccessInfo access) {
  if (e->has_expire()) {
    w.Byte(kOpExpireTimeMs);
    w.Millis(e->expire_ms());
  }
  if (access == AccessInfo::kIdle) {
    w.Byte(kOpIdle);
    w.Length(IdleSeconds(e));
  } else if (access == AccessInfo::kFreq) {
    w.Byte(kOpFreq);
    w.Byte(LfuDecayed(e));
  }
  w.Byte(TypeOf(e));
  w.String(e->key());
  WriteValue(w, e);
}

std::string DumpPayload(const Entry* e, Writer::Options opts) {
  opts.checksum = true;  // a payload's CRC is not optional
  Writer w(opts);
  w.Byte(TypeOf(e));
  WriteValue(w, e);
  w.Byte(static_cast<uint8_t>(kVersion & 0xff));
  w.Byte(static_cast<uint8_t>((kVersion >> 8) & 0xff));
  w.Millis(static_cast<int64_t>(w.crc()));
  return w.Take();
}

// ---------------------------------------------------------------- framing

void WriteHeader(Writer& w) {
  char buf[16];
  int n = snprintf(buf, sizeof(buf), "REDIS%04d", kVersion);
  w.Raw(std::string_view(buf, static_cast<size_t>(n)));
}

void WriteAux(Writer& w, std::string_view name, std::string_view value) {
  w.Byte(kOpAux);
  w.String(name);
  w.String(value);
}

void WriteAuxInt(Writer& w, std::string_view name, int64_t value) {
  WriteAux(w, name, std::to_string(value));
}

void WriteSelectDb(Writer& w, int db) {
  w.Byte(kOpSelectDb);
  w.Length(static_cast<uint64_t>(db));
}

void WriteResizeDb(Writer& w, uint64_t keys, uint64_t expires) {
  w.Byte(kOpResizeDb);
  w.Length(keys);
  w.Length(expires);
}

void WriteFunction(Writer& w, std::string_view library_code) {
  w.Byte(kOpFunction2);
  w.String(library_code);
}

void WriteEof(Writer& w) {
  w.Byte(kOpEof);
  w.Millis(w.options().checksum ? static_cast<int64_t>(w.crc()) : 0);
}

}  // namespace larder::rdb
