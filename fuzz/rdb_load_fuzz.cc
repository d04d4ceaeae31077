// libFuzzer target for RDB files: rdb::LoadFile over the input in memory,
// with a handler that frees every key it is handed. Nothing may crash, leak,
// read out of bounds or allocate beyond what the input can justify. Seeds
// (fuzz/seeds-rdb) are files redis-server 7.0 wrote; a mutated file fails
// its checksum only at the end, so every record is still decoded first.
//
//   CXX=clang++ cmake -S . -B build-fuzz -DLARDER_FUZZ=ON -DLARDER_SANITIZE=ON -DLARDER_TESTS=OFF
//   cmake --build build-fuzz --target fuzz_rdb_load
//   mkdir -p /tmp/rdb-corpus && build-fuzz/fuzz_rdb_load -max_total_time=120 /tmp/rdb-corpus fuzz/seeds-rdb
#include <cstdint>
#include <string>
#include <string_view>

#include "keyspace/entry.h"
#include "rdb/rdb.h"

namespace {

struct FreeKeys : larder::rdb::LoadHandler {
  bool Function(std::string_view, std::string*) override { return true; }
  bool Key(int, larder::Entry* e, int64_t, int, std::string*) override {
    (void)larder::EntryMemoryUsage(e);  // walks the value
    larder::FreeEntry(e);
    return true;
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  larder::rdb::Limits limits;
  // Small limits too, so that conversions to the large encodings run.
  if (size && (data[size - 1] & 1)) {
    limits.hash = {2, 8};
    limits.zset = {2, 8};
    limits.set_max_intset_entries = 2;
    limits.stream_node_max_entries = 2;
    limits.stream_node_max_bytes = 64;
  }
  larder::rdb::Reader r(in);
  FreeKeys h;
  std::string err;
  larder::rdb::LoadFile(r, limits, h, &err);
  return 0;
}
