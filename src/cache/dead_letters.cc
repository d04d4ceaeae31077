// DeadLetters: changes the database refused, kept in one file in `dir`.
#include "cache/write_behind.h"

#include <algorithm>
#include <cerrno>

#include "cache/record.h"
#include "common/log.h"

namespace larder::cache {

using namespace record;  // NOLINT: this module's own helpers

// ---- DeadLetters ----

namespace {
std::string EncodeDeadLetter(const DeadLetter& d) {
  std::string payload;
  PutU64(&payload, d.id);
  PutBytes(&payload, d.rule);
  PutBytes(&payload, d.error);
  PutU64(&payload, static_cast<uint64_t>(d.at_ms));
  PutBytes(&payload, EncodeChange(d.change));
  std::string record;
  AppendRecord(&record, payload);
  return record;
}
}  // namespace

bool DeadLetters::Open(const std::string& dir, std::string* err) {
  std::lock_guard lock(mu_);
  path_ = dir + "/" + kDeadLetterFile;
  std::string data;
  if (!ReadWholeFile(path_, &data)) {
    if (errno == ENOENT) return true;
    *err = "cannot read " + path_ + ": " + strerror(errno);
    return false;
  }
  size_t records = 0;
  ReadRecords(data, [&](std::string_view payload) {
    Reader r{payload};
    DeadLetter d;
    std::string change;
    uint64_t at;
    if (!r.U64(&d.id) || !r.Bytes(&d.rule) || !r.Bytes(&d.error) || !r.U64(&at) || !r.Bytes(&change)) return;
    d.at_ms = static_cast<int64_t>(at);
    if (!DecodeChange(change, &d.change)) return;
    ++records;
    next_id_ = std::max(next_id_, d.id + 1);
    Keep(std::move(d));
  });
  if (records != items_.size()) Save();  // superseded ones (appended over time) dropped from the file
  if (!items_.empty()) LOG_WARNING("Write-behind: {} dead letter(s) kept from before (CACHE DEADLETTER LIST)", items_.size());
  return true;
}

bool DeadLetters::Keep(DeadLetter d) {
  std::string key = KeyId(d.change.db, d.change.key);
  auto it = by_key_.find(key);
  if (it != by_key_.end()) {
    // The same journaled change again (read back from a segment that a crash
    // kept after it was set aside here): kept once.
    if (items_.at(it->second).change.seq == d.change.seq && d.id != it->second) return false;
    // A newer refused change of the key supersedes the older one.
    items_.erase(it->second);
  }
  by_key_[key] = d.id;
  uint64_t id = d.id;
  items_.emplace(id, std::move(d));
  return true;
}

void DeadLetters::Save() {
  std::string data;
  for (const auto& [id, d] : items_) data += EncodeDeadLetter(d);
  std::string tmp = path_ + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0 || !WriteAll(fd, data) || ::fsync(fd) != 0) {
    LOG_WARNING("Write-behind: cannot save dead letters to {}: {}", tmp, strerror(errno));
    if (fd >= 0) ::close(fd);
    return;
  }
  ::close(fd);
  ::rename(tmp.c_str(), path_.c_str());
  SyncDir(path_.substr(0, path_.rfind('/')));
}

void DeadLetters::Add(DeadLetter d) {
  std::lock_guard lock(mu_);
  d.id = next_id_++;
  std::string record = EncodeDeadLetter(d);
  if (!Keep(std::move(d))) return;
  // Appended (the file is rewritten only when letters are taken out): a
  // stream of refused changes costs one small write each.
  int fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0 || !WriteAll(fd, record) || ::fdatasync(fd) != 0)
    LOG_WARNING("Write-behind: cannot save a dead letter to {}: {}", path_, strerror(errno));
  if (fd >= 0) ::close(fd);
}

std::vector<DeadLetter> DeadLetters::List() const {
  std::lock_guard lock(mu_);
  std::vector<DeadLetter> out;
  for (const auto& [id, d] : items_) out.push_back(d);
  return out;
}

std::vector<DeadLetter> DeadLetters::Take(uint64_t id) {
  std::lock_guard lock(mu_);
  std::vector<DeadLetter> out;
  for (auto it = items_.begin(); it != items_.end();) {
    if (id != 0 && it->first != id) {
      ++it;
      continue;
    }
    by_key_.erase(KeyId(it->second.change.db, it->second.change.key));
    out.push_back(std::move(it->second));
    it = items_.erase(it);
  }
  if (!out.empty()) Save();
  return out;
}

bool DeadLetters::Holds(const Change& c) const {
  std::lock_guard lock(mu_);
  auto it = by_key_.find(KeyId(c.db, c.key));
  return it != by_key_.end() && items_.at(it->second).change.seq == c.seq;
}

size_t DeadLetters::size() const {
  std::lock_guard lock(mu_);
  return items_.size();
}

}  // namespace larder::cache
