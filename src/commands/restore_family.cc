// RESTORE (and its cluster twin RESTORE-ASKING): creates a key from a DUMP
// payload (rdb/rdb.h decodes and checks it), as Redis 7.0's restoreCommand.
#include <climits>
#include <cstdint>
#include <string>

#include "commands/families.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/numbers.h"
#include "common/strings.h"
#include "config/config.h"
#include "engine/blocking.h"
#include "engine/command.h"
#include "engine/engine.h"
#include "engine/notify.h"
#include "keyspace/db.h"
#include "keyspace/eviction.h"
#include "keyspace/hash_value.h"
#include "rdb/rdb.h"

namespace larder {

namespace {

// Sets the access data as Redis's objectSetLRUOrLFU: FREQ only counts
// under an LFU policy, IDLETIME only under the others.
void SetAccess(Entry* e, int64_t idle_s, int64_t freq) {
  if (CurrentAccessMode() == AccessMode::kLfu) {
    if (freq >= 0) {
      e->lfu = static_cast<uint8_t>(freq);
      e->access = LfuMinutes();
    }
  } else if (idle_s >= 0) {
    // The clock wraps; an idle time past half of it reads as 0 (db.h).
    uint64_t ticks = std::min<uint64_t>(static_cast<uint64_t>(idle_s), 0x7fffffffu / kLruTicksPerSecond) *
                     kLruTicksPerSecond;
    e->access = LruClock() - static_cast<uint32_t>(ticks);
  }
}

// RESTORE key ttl serialized-value [REPLACE] [ABSTTL] [IDLETIME seconds] [FREQ frequency]
void Restore(CommandContext& ctx) {
  bool replace = false, absttl = false;
  int64_t idle = -1, freq = -1;
  for (size_t j = 4; j < ctx.argc(); ++j) {
    std::string_view o = ctx.arg(j);
    bool more = j + 1 < ctx.argc();
    if (EqualsIgnoreCase(o, "replace")) {
      replace = true;
    } else if (EqualsIgnoreCase(o, "absttl")) {
      absttl = true;
    } else if (EqualsIgnoreCase(o, "idletime") && more && freq == -1) {
      if (!ParseInt64(ctx.arg(++j), &idle)) return ctx.Error(OpStatus::kNotAnInteger);
      if (idle < 0) return ctx.Error(OpStatus::kRestoreInvalidIdleTime);
    } else if (EqualsIgnoreCase(o, "freq") && more && idle == -1) {
      if (!ParseInt64(ctx.arg(++j), &freq)) return ctx.Error(OpStatus::kNotAnInteger);
      if (freq < 0 || freq > 255) return ctx.Error(OpStatus::kRestoreInvalidFreq);
    } else {
      return ctx.SyntaxError();
    }
  }
  std::string_view key = ctx.arg(1);
  Db& db = ctx.DbFor(key);
  if (!replace && db.Find(key)) return ctx.Error(OpStatus::kBusyKey);
  int64_t ttl;
  if (!ParseInt64(ctx.arg(2), &ttl)) return ctx.Error(OpStatus::kNotAnInteger);
  if (ttl < 0) return ctx.Error(OpStatus::kRestoreInvalidTtl);

  bool bad_version = false;
  std::string why;
  Entry* e = rdb::ReadPayload(ctx.arg(3), key, RdbLimits(ctx.engine->config()), &bad_version, &why);
  if (!e) {
    if (bad_version) return ctx.Error(OpStatus::kFunctionRestorePayload);
    // Redis logs each corrupt payload it refuses (rdbReportCorruptRDB).
    LOG_WARNING("RESTORE refused a corrupt payload: {}", why);
    return ctx.Error(OpStatus::kBadDataFormat);
  }

  bool deleted = replace && db.Delete(key);
  int64_t now = CommandTimeMs();
  bool expired = false;
  if (ttl && !absttl) {
    // Redis's sum would wrap to the past; a time that far out is as good as gone.
    if (ttl > INT64_MAX - now) expired = true;
    else ttl += now;
  }
  if (ttl && (expired || ttl <= now)) {
    FreeEntry(e);
    if (deleted) NotifyKeyspaceEvent(ctx, kNotifyGeneric, "del", key);
    return ctx.rb->Ok();
  }
  if (ttl) {
    e = WithExpireField(e, true);
    e->set_expire_ms(ttl);
  }
  SetAccess(e, idle, freq);
  if (e->type == ObjType::kHash && ObjectOf<HashValue>(e)->has_field_ttls()) db.NoteFieldTtl();
  ObjType type = e->type;
  db.Add(e);
  // Clients blocked on the key (BLPOP, BZPOPMIN, XREAD) get their chance, as
  // Redis's dbAdd gives them.
  if (type == ObjType::kList || type == ObjType::kZSet || type == ObjType::kStream) SignalKeyReady(ctx, key);
  NotifyKeyspaceEvent(ctx, kNotifyGeneric, "restore", key);
  ctx.rb->Ok();
}

}  // namespace

void RegisterRestoreFamily(CommandRegistry* r) {
  constexpr uint32_t W = kCmdWrite | kCmdDenyOom;
  CommandSpec s = MakeCommand("restore", -4, W, 1, 1, 1, Restore, "@keyspace @write @slow @dangerous",
                              "Creates a key from the serialized representation of a value.", "generic");
  s.since = "2.6.0";
  r->Add(s);
  // The same command under the name MIGRATE sends in a cluster (after ASKING).
  s.name = "restore-asking";
  s.flags = W | kCmdAsking;
  s.summary = "An internal command for migrating keys in a cluster.";
  s.since = "3.0.0";
  s.group = "server";
  r->Add(s);
}

}  // namespace larder
