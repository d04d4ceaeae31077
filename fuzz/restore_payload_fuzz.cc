// libFuzzer target for DUMP payloads (what RESTORE decodes): each input is
// tried as it is, and with its CRC-64 trailer recomputed so that mutations
// reach the value decoder rather than stopping at the checksum. A decoded
// value is walked and freed. Seeds (fuzz/seeds-restore) are redis-server
// 7.0's DUMP payloads of every type and encoding.
//
//   CXX=clang++ cmake -S . -B build-fuzz -DLARDER_FUZZ=ON -DLARDER_SANITIZE=ON -DLARDER_TESTS=OFF
//   cmake --build build-fuzz --target fuzz_restore_payload
//   mkdir -p /tmp/restore-corpus && build-fuzz/fuzz_restore_payload -max_total_time=120 /tmp/restore-corpus fuzz/seeds-restore
#include <cstdint>
#include <string>
#include <string_view>

#include "keyspace/entry.h"
#include "keyspace/hash_value.h"
#include "keyspace/stream_value.h"
#include "keyspace/zset_value.h"
#include "rdb/rdb.h"

namespace {

void Walk(larder::Entry* e) {
  using namespace larder;
  (void)EntryMemoryUsage(e);
  switch (e->type) {
    case ObjType::kHash:
      ObjectOf<HashValue>(e)->ForEach([](std::string_view, std::string_view) {});
      break;
    case ObjType::kZSet:
      ObjectOf<ZSetValue>(e)->ForEach([](const ZSetValue::Ref&) {});
      break;
    case ObjType::kStream:
      ObjectOf<StreamValue>(e)->Range(StreamID::Min(), StreamID::Max(), false,
                                      [](StreamID, const StreamFields&) { return true; });
      break;
    default:
      break;
  }
  FreeEntry(e);
}

void Try(std::string_view payload, const larder::rdb::Limits& limits) {
  bool bad_version;
  if (larder::Entry* e = larder::rdb::ReadPayload(payload, "key", limits, &bad_version)) Walk(e);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  larder::rdb::Limits limits;
  if (size && (data[0] & 0x80)) {  // the type byte's high bit is free: small limits
    limits.hash = {2, 8};
    limits.zset = {2, 8};
    limits.set_max_intset_entries = 2;
    limits.stream_node_max_entries = 2;
    limits.stream_node_max_bytes = 64;
  }
  Try(in, limits);
  if (size < 10) return 0;
  std::string fixed(in.substr(0, size - 8));
  fixed[0] = static_cast<char>(fixed[0] & 0x7f);
  uint64_t crc = larder::rdb::Crc64(0, fixed);
  for (int i = 0; i < 8; ++i) fixed.push_back(static_cast<char>((crc >> (8 * i)) & 0xff));
  Try(fixed, limits);
  return 0;
}
