// libFuzzer target for what the AOF loader reads (engine/aof_format.h,
// engine/aof.cc): a manifest's text by Redis's rules, and a command file —
// an optional RDB preamble (rdb::LoadFile, every key freed), then RESP
// commands with annotations, MULTI/EXEC blocks and a possibly truncated
// tail, split as the loader splits them before it runs each. Nothing may
// crash, leak, read out of bounds or allocate beyond what the input can
// justify. Seeds (fuzz/seeds-aof) are a manifest, an incremental file and a
// base with a preamble that Larder wrote.
//
//   CXX=clang++ cmake -S . -B build-fuzz -DLARDER_FUZZ=ON -DLARDER_SANITIZE=ON -DLARDER_TESTS=OFF
//   cmake --build build-fuzz --target fuzz_aof_load
//   mkdir -p /tmp/aof-corpus && build-fuzz/fuzz_aof_load -max_total_time=120 /tmp/aof-corpus fuzz/seeds-aof
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "engine/aof_format.h"
#include "keyspace/entry.h"
#include "rdb/rdb.h"

namespace {

struct FreeKeys : larder::rdb::LoadHandler {
  bool Function(std::string_view, std::string*) override { return true; }
  bool Key(int, larder::Entry* e, int64_t, int, std::string*) override {
    larder::FreeEntry(e);
    return true;
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  std::string err;
  larder::aof::Manifest m;
  if (larder::aof::ParseManifest(in, &m, &err)) {
    // What the loader does with a manifest it accepts: names it writes back.
    for (const auto* list : {&m.base, &m.history, &m.incr})
      for (const auto& f : *list) (void)larder::aof::ManifestName(f.name);
  }
  size_t pos = 0;
  if (in.substr(0, 5) == "REDIS") {
    larder::rdb::Reader r(in);
    FreeKeys h;
    if (!larder::rdb::LoadFile(r, larder::rdb::Limits{}, h, &err)) return 0;
    pos = static_cast<size_t>(r.offset());
  }
  std::vector<std::string_view> argv;
  size_t depth = 0, commands = 0;
  for (;;) {
    size_t before = pos;
    larder::aof::ParseResult res = larder::aof::ParseCommand(in, &pos, &argv);
    if (res != larder::aof::ParseResult::kOk) break;
    if (pos <= before || pos > in.size()) __builtin_trap();  // must advance within the input
    for (std::string_view a : argv)
      if (a.data() < in.data() || a.data() + a.size() > in.data() + in.size()) __builtin_trap();
    if (argv[0] == "MULTI" || argv[0] == "multi") ++depth;
    else if ((argv[0] == "EXEC" || argv[0] == "exec") && depth) --depth;
    ++commands;
  }
  return 0;
}
