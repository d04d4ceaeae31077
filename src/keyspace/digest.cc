#include "keyspace/digest.h"

#include <cstdio>

#include "common/clock.h"
#include "keyspace/objects.h"

namespace larder {

void XorDigest(Digest* d, std::string_view data) { XorInto(d, Sha1::Of(data)); }

void MixDigest(Digest* d, std::string_view data) {
  XorDigest(d, data);
  *d = Sha1::Of(d->data(), d->size());
}

namespace {

// An element made of parts mixed in order, digested alone, xored into `d`.
void XorElement(Digest* d, std::string_view a, std::string_view b) {
  Digest e{};
  MixDigest(&e, a);
  MixDigest(&e, b);
  XorDigest(d, AsBytes(e));
}

std::string_view ScoreText(double score, char (&buf)[64]) {
  int n = snprintf(buf, sizeof(buf), "%.17g", score);
  return {buf, static_cast<size_t>(n)};
}

}  // namespace

void MixValueDigest(const Entry* e, Digest* d) {
  uint8_t type[4] = {0, 0, 0, static_cast<uint8_t>(e->type)};
  MixDigest(d, std::string_view(reinterpret_cast<const char*>(type), sizeof(type)));
  switch (e->type) {
    case ObjType::kString:
      MixDigest(d, e->value());
      break;
    case ObjType::kList:
      ObjectOf<ListValue>(e)->ForEach([&](std::string_view item) { MixDigest(d, item); });
      break;
    case ObjType::kSet:
      ObjectOf<SetValue>(e)->ForEach([d](std::string_view m) { XorDigest(d, m); });
      break;
    case ObjType::kZSet: {
      char buf[64];
      ObjectOf<ZSetValue>(e)->ForEach(
          [&](const ZSetValue::Ref& it) { XorElement(d, it.member, ScoreText(it.score, buf)); });
      break;
    }
    case ObjType::kHash: {
      const HashValue* h = ObjectOf<HashValue>(e);
      bool ttls = h->has_field_ttls();
      int64_t now = ttls ? UnixTimeMs() : 0;
      h->ForEach([&](std::string_view f, std::string_view v) {
        if (ttls) {
          auto at = h->FieldExpire(f);
          if (at && *at <= now) return;  // expired, not yet reclaimed: not there
        }
        XorElement(d, f, v);
      });
      break;
    }
    case ObjType::kStream: {
      // Entries in order (ID, then each field and value), then the groups
      // with their last IDs and pending entries.
      const StreamValue* s = ObjectOf<StreamValue>(e);
      s->Range(StreamID::Min(), StreamID::Max(), false, [d](StreamID id, const StreamFields& f) {
        MixDigest(d, id.ToString());
        for (const auto& [field, value] : f) {
          MixDigest(d, field);
          MixDigest(d, value);
        }
        return true;
      });
      MixDigest(d, s->last_id().ToString());
      for (const auto& [name, g] : s->groups()) {
        MixDigest(d, name);
        MixDigest(d, g->last_id.ToString());
        for (const auto& [id, nack] : g->pel) {
          MixDigest(d, id.ToString());
          MixDigest(d, nack.consumer->name);
        }
      }
      break;
    }
  }
  if (e->has_expire()) XorDigest(d, std::string_view("!!expire!!"));
}

Digest KeyContribution(const Entry* e) {
  Digest d{};
  MixDigest(&d, e->key());
  MixValueDigest(e, &d);
  return Sha1::Of(d.data(), d.size());
}

Digest DatasetDigest(const Digest* per_db, const bool* non_empty, int databases) {
  Digest out{};
  for (int i = 0; i < databases; ++i) {
    if (!non_empty[i]) continue;
    uint8_t id[4] = {static_cast<uint8_t>(i >> 24), static_cast<uint8_t>(i >> 16), static_cast<uint8_t>(i >> 8),
                     static_cast<uint8_t>(i)};
    MixDigest(&out, std::string_view(reinterpret_cast<const char*>(id), sizeof(id)));
    XorInto(&out, per_db[i]);
  }
  return out;
}

}  // namespace larder
