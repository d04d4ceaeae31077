// The write-behind files' building blocks: little-endian fields, framed
// records (length, xxh32 checksum, payload: a torn or corrupt tail is where
// reading stops), whole-file reads and writes, and the file names in `dir`.
// Shared by the journal and the dead-letter file; nothing here knows a rule.
#pragma once

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <string_view>

#include "common/file_io.h"

namespace larder::cache::record {

constexpr char kSegmentPrefix[] = "larder-wb-";
constexpr char kSegmentSuffix[] = ".journal";
constexpr char kDeadLetterFile[] = "larder-wb-deadletters";
constexpr size_t kMaxRecord = 512ull << 20;

inline void PutU32(std::string* out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out->push_back(static_cast<char>(v >> (8 * i)));
}
inline void PutU64(std::string* out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out->push_back(static_cast<char>(v >> (8 * i)));
}
inline void PutBytes(std::string* out, std::string_view s) {
  PutU32(out, static_cast<uint32_t>(s.size()));
  out->append(s);
}

// Reads little-endian fields off the front of a view; false once it runs out.
struct Reader {
  std::string_view in;
  bool U32(uint32_t* v) {
    if (in.size() < 4) return false;
    *v = 0;
    for (int i = 0; i < 4; ++i) *v |= static_cast<uint32_t>(static_cast<unsigned char>(in[i])) << (8 * i);
    in.remove_prefix(4);
    return true;
  }
  bool U64(uint64_t* v) {
    uint32_t lo, hi;
    if (!U32(&lo) || !U32(&hi)) return false;
    *v = lo | (static_cast<uint64_t>(hi) << 32);
    return true;
  }
  bool Bytes(std::string* s) {
    uint32_t n;
    if (!U32(&n) || in.size() < n) return false;
    s->assign(in.substr(0, n));
    in.remove_prefix(n);
    return true;
  }
};

// A framed record: length, checksum, payload.
inline void AppendRecord(std::string* out, std::string_view payload) {
  PutU32(out, static_cast<uint32_t>(payload.size()));
  PutU32(out, XXH32(payload.data(), payload.size(), 0));
  out->append(payload);
}

// Splits `data` into intact records; returns how many bytes they cover.
inline size_t ReadRecords(std::string_view data, const std::function<void(std::string_view)>& fn) {
  size_t pos = 0;
  while (data.size() - pos >= 8) {
    Reader r{data.substr(pos)};
    uint32_t len, sum;
    r.U32(&len);
    r.U32(&sum);
    if (len > kMaxRecord || r.in.size() < len) break;
    std::string_view payload = r.in.substr(0, len);
    if (XXH32(payload.data(), payload.size(), 0) != sum) break;
    fn(payload);
    pos += 8 + len;
  }
  return pos;
}

inline bool ReadWholeFile(const std::string& path, std::string* out) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  out->clear();
  char buf[1 << 16];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof(buf))) > 0) out->append(buf, static_cast<size_t>(n));
  ::close(fd);
  return n == 0;
}

using larder::SyncDir;
using larder::WriteAll;

}  // namespace larder::cache::record
