#include "keyspace/db.h"

#include <string>
#include <vector>

#include "common/clock.h"
#include "keyspace/hash_value.h"

namespace larder {

uint32_t LruClock() { return static_cast<uint32_t>(CommandTimeMs() / (1000 / kLruTicksPerSecond)); }

uint32_t IdleSeconds(const Entry* e) {
  uint32_t now = LruClock();
  uint32_t ticks = now - e->access;  // wraps like the clock
  if (ticks > 0x80000000u) return 0;  // touched by a thread whose clock ran a little ahead
  return ticks / kLruTicksPerSecond;
}

Entry* Db::Find(std::string_view key) {
  Entry* e = table_.Find(key);
  if (e && Expired(e, CommandTimeMs())) {
    Delete(key, DeleteCause::kExpire);
    ++stats_->expired_keys;
    Notify(kNotifyExpired, "expired", key);
    if (stats_->on_expired) [[unlikely]] stats_->on_expired(stats_->on_expired_arg, index_, key);
    e = nullptr;
  }
  return e;
}

Entry* Db::FindRead(std::string_view key) {
  Entry* e = FindReadNoTouch(key);
  if (e) Touch(e);
  return e;
}

Entry* Db::FindReadNoTouch(std::string_view key) {
  Entry* e = Find(key);
  if (!stats_->lookups_paused) [[likely]] {
    if (e) {
      ++stats_->keyspace_hits;
    } else {
      ++stats_->keyspace_misses;
      Notify(kNotifyKeyMiss, "keymiss", key);
    }
  }
  return e;
}

Entry* Db::FindWrite(std::string_view key) {
  Entry* e = Find(key);
  if (e) Touch(e);
  return e;
}

void Db::Add(Entry* e) {
  AddQuiet(e);
  Notify(kNotifyNew, "new", e->key());
}

void Db::AddQuiet(Entry* e) {
  e->flags = static_cast<uint8_t>((e->flags & ~Entry::kSnapMark) | stats_->snap_mark);
  if (e->has_expire()) ++expires_;
  table_.Insert(e);
  if (evictor_ && CurrentAccessMode() == AccessMode::kFifo) evictor_->OnAdd(index_, e);
}

Entry* Db::SetString(std::string_view key, std::string_view value, int64_t expire_ms,
                     StrEncoding enc) {
  Entry* old = Find(key);
  if (old) BeforeChange(old);
  int64_t ttl = expire_ms;
  if (expire_ms == kKeepTtl) ttl = (old && old->has_expire()) ? old->expire_ms() : kNoExpire;
  if (old && old->type == ObjType::kString && old->has_expire() == (ttl >= 0) &&
      value.size() <= ValueCapacity(old) && value.size() * 2 >= ValueCapacity(old)) {
    // Overwrite in place: same layout and the block is not much too big.
    memmove(old->mutable_value(), value.data(), value.size());
    old->val_len = static_cast<uint32_t>(value.size());
    old->encoding = static_cast<uint8_t>(enc);
    old->flags &= static_cast<uint8_t>(~(Entry::kUnshared | Entry::kCached));
    if (ttl >= 0) old->set_expire_ms(ttl);
    Touch(old);
    return old;
  }
  Entry* e = NewStringEntry(key, value, ttl);
  e->encoding = static_cast<uint8_t>(enc);
  if (old) {
    Delete(key);
    AddQuiet(e);  // an overwrite: the key is not new
  } else {
    Add(e);
  }
  return e;
}

bool Db::Delete(std::string_view key, DeleteCause cause) {
  Entry* e = Detach(key);
  if (!e) return false;
  FreeDeleted(e, lazy_, cause);
  return true;
}

Entry* Db::Detach(std::string_view key) {
  if (stats_->snapshot) [[unlikely]] {
    if (Entry* e = table_.Find(key)) BeforeChange(e);
  }
  Entry* e = table_.Unlink(key);
  if (e && e->has_expire()) --expires_;
  return e;
}

Entry* Db::SetExpire(Entry* e, int64_t ms) {
  BeforeChange(e);
  bool want = ms >= 0;
  if (e->has_expire() != want) {
    Entry* fresh = WithExpireField(e, want);
    table_.Relink(e, fresh);
    e = fresh;
    if (want) ++expires_;
    else --expires_;
  }
  if (want) e->set_expire_ms(ms);
  return e;
}

Entry* Db::ResizeValue(Entry* e, size_t new_len, bool geometric) {
  BeforeChange(e);
  Entry* fresh = larder::ResizeValue(e, new_len, geometric);
  table_.Relink(e, fresh);
  return fresh;
}

void Db::SwapContents(Db& other) {
  if (stats_->snapshot) [[unlikely]] {
    stats_->snapshot->SaveAll(*this);
    stats_->snapshot->SaveAll(other);
  }
  std::swap(table_, other.table_);
  std::swap(expires_, other.expires_);
  std::swap(field_ttls_, other.field_ttls_);
  std::swap(expire_cursor_, other.expire_cursor_);
}

void Db::Clear(bool lazy) {
  if (stats_->snapshot) [[unlikely]] stats_->snapshot->SaveAll(*this);
  LazyFreer* freer = lazy ? LazyFreer::Current() : nullptr;
  if (freer) freer->FreeTable(std::move(table_));
  table_.Clear();
  expires_ = 0;
  field_ttls_ = false;
  expire_cursor_ = 0;
}

size_t Db::ActiveExpireCycle(int64_t now_ms, int64_t budget_us) {
  if (expires_ == 0 && !field_ttls_) return 0;
  int64_t start = MonotonicUs();
  size_t removed = 0;
  std::vector<Entry*> doomed;
  std::vector<Entry*> emptied;  // hashes whose last fields expired
  // Walk a few buckets at a time, checking the clock between batches.
  do {
    for (int i = 0; i < 64; ++i) {
      expire_cursor_ = table_.Scan(expire_cursor_, [&](Entry* e) {
        if (Expired(e, now_ms)) {
          doomed.push_back(e);
        } else if (field_ttls_ && e->type == ObjType::kHash) {
          auto* h = ObjectOf<HashValue>(e);
          if (h->has_field_ttls()) BeforeChange(e);
          if (h->has_field_ttls() && h->PurgeExpired(now_ms)) {
            if (h->size() == 0) emptied.push_back(e);
            else Notify(kNotifyHash, "hexpired", e->key());
          }
        }
      });
      if (expire_cursor_ == 0) break;
    }
    for (Entry* e : doomed) {
      Entry* d = Detach(e->key());
      if (d) {
        if (stats_->on_expired) [[unlikely]] stats_->on_expired(stats_->on_expired_arg, index_, d->key());
        if (events_ && events_->Wants(kNotifyExpired)) {
          std::string key(d->key());
          FreeDeleted(d, lazy_, DeleteCause::kExpire);
          Notify(kNotifyExpired, "expired", key);
        } else {
          FreeDeleted(d, lazy_, DeleteCause::kExpire);
        }
        ++removed;
      }
    }
    doomed.clear();
    for (Entry* e : emptied) {
      Entry* d = Detach(e->key());
      if (d) {
        // Redis 7.4: the fields' expiry, then the emptied hash's deletion.
        std::string key(d->key());
        FreeEntry(d);
        Notify(kNotifyHash, "hexpired", key);
        Notify(kNotifyGeneric, "del", key);
      }
    }
    emptied.clear();
    if (expire_cursor_ == 0 || (expires_ == 0 && !field_ttls_)) break;
  } while (MonotonicUs() - start < budget_us);
  stats_->expired_keys += removed;
  stats_->expire_cycle_cpu_us += static_cast<uint64_t>(MonotonicUs() - start);
  return removed;
}

}  // namespace larder
