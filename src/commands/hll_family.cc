// HyperLogLog commands: PFADD, PFCOUNT, PFMERGE, PFDEBUG, PFSELFTEST. The
// values are ordinary strings in Redis's HLL format (ds/hyperloglog.h); a
// dense value is edited in place in its entry, a sparse one is edited as a
// copy and written back, since it changes length.
#include <cmath>
#include <cstring>
#include <memory>
#include <random>
#include <vector>
#include <string>

#include "commands/families.h"
#include "engine/command.h"
#include "engine/notify.h"
#include "common/strings.h"
#include "ds/hyperloglog.h"
#include "engine/engine.h"

namespace larder {

namespace {


size_t SparseMax(CommandContext& ctx) { return static_cast<size_t>(ctx.engine->config().hll_sparse_max_bytes.load()); }

// The HLL at `key` (null when missing); false with the error written when the
// key holds something else.
bool LookupHll(CommandContext& ctx, Entry* e) {
  if (!e) return true;
  if (e->type != ObjType::kString) {
    ctx.Error(OpStatus::kWrongType);
    return false;
  }
  if (!hll::LooksValid(e->value())) {
    ctx.Error(OpStatus::kNotHll);
    return false;
  }
  return true;
}

// Stores `v` as the value of `key`, keeping its TTL.
void WriteBack(Db& db, std::string_view key, Entry* e, const std::string& v) {
  if (e && e->val_len == v.size()) {
    memcpy(e->mutable_value(), v.data(), v.size());
    return;
  }
  db.SetString(key, v, e ? Db::kKeepTtl : Db::kNoExpire, StrEncoding::kRaw);
}

void PfAdd(CommandContext& ctx) {
  std::string_view key = ctx.arg(1);
  Db& db = ctx.DbFor(key);
  Entry* e = db.FindWrite(key);
  if (!LookupHll(ctx, e)) return;
  bool updated = e == nullptr;
  if (e && hll::Encoding(e->value()) == hll::kDense) {
    auto* regs = reinterpret_cast<uint8_t*>(e->mutable_value()) + hll::kHeaderSize;
    for (size_t i = 2; i < ctx.argc(); ++i) {
      uint32_t index;
      uint8_t count;
      hll::HashElement(ctx.arg(i), &index, &count);
      updated |= hll::DenseSetRegister(regs, index, count);
    }
    if (updated) {
      hll::InvalidateCache(e->mutable_value());
      NotifyKeyspaceEvent(ctx, kNotifyString, "pfadd", key);
    }
    return ctx.rb->Integer(updated ? 1 : 0);
  }
  std::string v = e ? std::string(e->value()) : hll::NewEmpty();
  bool changed = false;
  for (size_t i = 2; i < ctx.argc(); ++i) {
    uint32_t index;
    uint8_t count;
    hll::HashElement(ctx.arg(i), &index, &count);
    hll::Edit r = hll::SetRegister(&v, index, count, SparseMax(ctx));
    if (r == hll::Edit::kCorrupt) return ctx.Error(OpStatus::kHllCorrupt);
    changed |= r == hll::Edit::kChanged;
  }
  if (changed || !e) {
    hll::InvalidateCache(v.data());  // also on creation, as Redis does
    WriteBack(db, key, e, v);
  }
  if (updated || changed) NotifyKeyspaceEvent(ctx, kNotifyString, "pfadd", key);
  ctx.rb->Integer(updated || changed ? 1 : 0);
}

void PfCount(CommandContext& ctx) {
  if (ctx.argc() > 2) {
    auto max = std::make_unique<hll::RawRegisters>();
    for (size_t i = 1; i < ctx.argc(); ++i) {
      Entry* e = ctx.DbFor(ctx.arg(i)).FindRead(ctx.arg(i));
      if (!LookupHll(ctx, e)) return;
      if (e && !hll::MergeInto(e->value(), max.get())) return ctx.Error(OpStatus::kHllCorrupt);
    }
    return ctx.rb->Integer(static_cast<int64_t>(hll::CountRaw(*max)));
  }
  Entry* e = ctx.DbFor(ctx.arg(1)).FindRead(ctx.arg(1));
  if (!LookupHll(ctx, e)) return;
  if (!e) return ctx.rb->Integer(0);
  uint64_t card;
  if (!hll::CachedCardinality(e->value(), &card)) {
    if (!hll::Count(e->value(), &card)) return ctx.Error(OpStatus::kHllCorrupt);
    hll::StoreCardinality(e->mutable_value(), card);  // the cache is part of the value, as in Redis
  }
  ctx.rb->Integer(static_cast<int64_t>(card));
}

void PfMerge(CommandContext& ctx) {
  auto max = std::make_unique<hll::RawRegisters>();
  bool dense = false;
  for (size_t i = 1; i < ctx.argc(); ++i) {
    Entry* e = ctx.DbFor(ctx.arg(i)).FindRead(ctx.arg(i));
    if (!LookupHll(ctx, e)) return;
    if (!e) continue;
    dense |= hll::Encoding(e->value()) == hll::kDense;
    if (!hll::MergeInto(e->value(), max.get())) return ctx.Error(OpStatus::kHllCorrupt);
  }
  std::string_view key = ctx.arg(1);
  Db& db = ctx.DbFor(key);
  Entry* e = db.FindWrite(key);
  std::string v = e ? std::string(e->value()) : hll::NewEmpty();
  // Like Redis, the result stays sparse unless an input was dense (or it
  // outgrows the sparse limit while registers are written).
  if (dense && !hll::ToDense(&v)) return ctx.Error(OpStatus::kHllCorrupt);
  for (uint32_t i = 0; i < hll::kRegisters; ++i)
    if (max->r[i]) hll::SetRegister(&v, i, max->r[i], SparseMax(ctx));
  hll::InvalidateCache(v.data());
  WriteBack(db, key, e, v);
  NotifyKeyspaceEvent(ctx, kNotifyString, "pfadd", key);
  ctx.rb->Ok();
}

void PfDebug(CommandContext& ctx) {
  std::string_view sub = ctx.arg(1);
  std::string_view key = ctx.arg(2);
  Db& db = ctx.DbFor(key);
  Entry* e = db.FindWrite(key);
  if (!e) return ctx.Error(OpStatus::kPfDebugNoKey);
  if (!LookupHll(ctx, e)) return;
  std::string v(e->value());
  if (EqualsIgnoreCase(sub, "getreg")) {
    if (hll::Encoding(v) == hll::kSparse) {
      if (!hll::ToDense(&v)) return ctx.Error(OpStatus::kHllCorrupt);
      WriteBack(db, key, e, v);
    }
    const auto* regs = reinterpret_cast<const uint8_t*>(v.data()) + hll::kHeaderSize;
    ctx.rb->ArrayHeader(hll::kRegisters);
    for (uint32_t i = 0; i < hll::kRegisters; ++i) ctx.rb->Integer(hll::DenseGetRegister(regs, i));
  } else if (EqualsIgnoreCase(sub, "decode")) {
    std::string out;
    if (!hll::DecodeSparse(v, &out)) return ctx.Error(OpStatus::kHllNotSparse);
    ctx.rb->Bulk(out);
  } else if (EqualsIgnoreCase(sub, "encoding")) {
    ctx.rb->SimpleString(hll::Encoding(v) == hll::kDense ? "dense" : "sparse");
  } else if (EqualsIgnoreCase(sub, "todense")) {
    bool conv = hll::Encoding(v) == hll::kSparse;
    if (conv) {
      if (!hll::ToDense(&v)) return ctx.Error(OpStatus::kHllCorrupt);
      WriteBack(db, key, e, v);
    }
    ctx.rb->Integer(conv ? 1 : 0);
  } else {
    ctx.Error(OpStatus::kUnknownPfDebugSubcommand, sub);
  }
}

// Checks that registers read back what was written, and that the sparse and
// dense forms agree on counts while elements are added to both.
void PfSelfTest(CommandContext& ctx) {
  std::mt19937_64 rng(std::random_device{}());
  std::string dense = hll::NewEmpty();
  hll::ToDense(&dense);
  auto* regs = reinterpret_cast<uint8_t*>(dense.data()) + hll::kHeaderSize;
  std::vector<uint8_t> expect(hll::kRegisters);
  for (int cycle = 0; cycle < 100; ++cycle) {
    std::fill(regs, regs + hll::kRegisters * 6 / 8, 0);
    for (uint32_t i = 0; i < hll::kRegisters; ++i) {
      expect[i] = static_cast<uint8_t>(rng() & 63);
      hll::DenseSetRegister(regs, i, expect[i]);
    }
    for (uint32_t i = 0; i < hll::kRegisters; ++i) {
      uint8_t got = hll::DenseGetRegister(regs, i);
      if (got != expect[i])
        return ctx.Error(OpStatus::kHllTestRegister, i, expect[i], got);
    }
  }
  std::fill(regs, regs + hll::kRegisters * 6 / 8, 0);
  std::string sparse = hll::NewEmpty();
  uint64_t seed = rng();
  for (uint64_t j = 1, checkpoint = 1; j <= 1000000; ++j) {
    uint64_t ele = j ^ seed;
    std::string_view s(reinterpret_cast<const char*>(&ele), sizeof(ele));
    uint32_t index;
    uint8_t count;
    hll::HashElement(s, &index, &count);
    hll::DenseSetRegister(regs, index, count);
    hll::SetRegister(&sparse, index, count, SparseMax(ctx));
    if (j == checkpoint) {
      uint64_t a, b;
      hll::Count(dense, &a);
      if (!hll::Count(sparse, &b)) return ctx.Error(OpStatus::kHllTestSparseCorrupt);
      if (a != b) return ctx.Error(OpStatus::kHllTestDisagree);
      double relerr = 1.04 / std::sqrt(static_cast<double>(hll::kRegisters));
      double maxerr = j == 10 ? 1 : std::ceil(relerr * 6 * static_cast<double>(j));
      if (std::abs(static_cast<double>(j) - static_cast<double>(a)) > maxerr)
        return ctx.Error(OpStatus::kHllTestTooBigError, j);
      checkpoint *= 10;
    }
  }
  ctx.rb->Ok();
}

}  // namespace

void RegisterHllFamily(CommandRegistry* r) {
  constexpr uint32_t W = kCmdWrite, R = kCmdReadOnly, M = kCmdDenyOom, F = kCmdFast;
  auto add = [r](const char* name, int arity, uint32_t flags, int first, int last, Handler h, const char* acl,
                 const char* summary) {
    CommandSpec s = MakeCommand(name, arity, flags, first, last, 1, h, acl, summary, "hyperloglog");
    s.since = "2.8.9";
    if (first == 0) s.route = Route::kConnection;
    r->Add(std::move(s));
  };
  add("pfadd", -2, W | M | F, 1, 1, PfAdd, "@write @hyperloglog @fast", "Adds elements to a HyperLogLog key. Creates the key if it doesn't exist.");
  add("pfcount", -2, R | kCmdMayReplicate, 1, -1, PfCount, "@read @hyperloglog @slow", "Returns the approximated cardinality of the set(s) observed by the HyperLogLog key(s).");
  add("pfmerge", -2, W | M, 1, -1, PfMerge, "@write @hyperloglog @slow", "Merges one or more HyperLogLog values into a single key.");
  add("pfdebug", 3, W | M | kCmdAdmin, 2, 2, PfDebug, "@write @hyperloglog @admin @slow @dangerous", "Internal commands for debugging HyperLogLog values.");
  add("pfselftest", 1, kCmdAdmin | kCmdLocalOnly, 0, 0, PfSelfTest, "@hyperloglog @admin @slow @dangerous", "An internal command for testing HyperLogLog values.");
}

}  // namespace larder
