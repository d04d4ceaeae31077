// Change: a key's state after a write, and its record encoding.
#include "cache/write_behind.h"

#include "cache/record.h"

namespace larder::cache {

using namespace record;  // NOLINT: this module's own helpers

std::string KeyId(int db, std::string_view key) {
  std::string id = std::to_string(db);
  id.push_back('\0');
  id.append(key);
  return id;
}

std::string EncodeChange(const Change& c) {
  std::string out;
  PutU64(&out, c.seq);
  PutU32(&out, static_cast<uint32_t>(c.db));
  out.push_back(c.del ? 1 : 0);
  PutU64(&out, static_cast<uint64_t>(c.at_ms));
  PutBytes(&out, c.key);
  PutU32(&out, static_cast<uint32_t>(c.values.size()));
  for (const auto& [name, value] : c.values) {
    PutBytes(&out, name);
    out.push_back(value ? 1 : 0);
    if (value) PutBytes(&out, *value);
  }
  return out;
}

bool DecodeChange(std::string_view in, Change* c) {
  Reader r{in};
  uint32_t db, n;
  uint64_t at;
  if (!r.U64(&c->seq) || !r.U32(&db) || r.in.empty()) return false;
  c->db = static_cast<int>(db);
  c->del = r.in[0] != 0;
  r.in.remove_prefix(1);
  if (!r.U64(&at) || !r.Bytes(&c->key) || !r.U32(&n)) return false;
  c->at_ms = static_cast<int64_t>(at);
  c->values.clear();
  for (uint32_t i = 0; i < n; ++i) {
    std::string name, value;
    if (!r.Bytes(&name) || r.in.empty()) return false;
    bool has = r.in[0] != 0;
    r.in.remove_prefix(1);
    if (has && !r.Bytes(&value)) return false;
    c->values.emplace_back(std::move(name), has ? std::optional<std::string>(std::move(value)) : std::nullopt);
  }
  return r.in.empty();
}

}  // namespace larder::cache
