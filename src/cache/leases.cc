#include "cache/leases.h"

#include <vector>

#include "cache/write_behind.h"
#include "common/clock.h"

namespace larder::cache {

const Leases::Lease* Leases::Find(int db, std::string_view key) {
  auto it = leases_.find(KeyId(db, key));
  if (it == leases_.end()) return nullptr;
  if (it->second.until_ms <= CommandTimeMs()) {
    leases_.erase(it);
    return nullptr;
  }
  return &it->second;
}

void Leases::Grant(int db, std::string_view key, Lease lease) { leases_[KeyId(db, key)] = lease; }

void Leases::End(int db, std::string_view key) {
  if (!leases_.empty()) leases_.erase(KeyId(db, key));
}

void Leases::ReleaseClient(int client_shard, uint64_t client_id) {
  std::vector<std::string> gone;
  for (const auto& [id, l] : leases_)
    if (l.client_shard == client_shard && l.client_id == client_id) gone.push_back(id);
  for (const auto& id : gone) {
    leases_.erase(id);
    size_t sep = id.find('\0');
    int db = std::stoi(id.substr(0, sep));
    // Each waiter gets nil ("ask again"); the first to ask takes over.
    host_->WakeWaiters(shard_, db, id.substr(sep + 1));
  }
}

}  // namespace larder::cache
