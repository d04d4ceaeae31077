// libFuzzer target for the request parser: the input is fed whole and in
// chunks whose sizes come from the input itself; both ways must agree on
// every command and error, and nothing may crash, leak or read out of bounds.
//
//   CXX=clang++ cmake -B build-fuzz -DLARDER_FUZZ=ON -DLARDER_SANITIZE=ON -DLARDER_TESTS=OFF
//   cmake --build build-fuzz --target fuzz_resp_parser
//   mkdir -p /tmp/corpus && build-fuzz/fuzz_resp_parser -max_total_time=300 /tmp/corpus fuzz/seeds
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "resp/parser.h"

namespace {

using larder::resp::RequestParser;

// Parses `data` delivered in pieces of `chunk` bytes, as a connection would.
std::vector<std::string> ParseAll(std::string_view data, size_t chunk) {
  RequestParser p;
  RequestParser::Limits limits;
  limits.max_bulk_len = 1 << 20;
  p.set_limits(limits);
  std::vector<std::string> out;
  std::string buf;
  size_t fed = 0;
  std::vector<std::string_view> args;
  while (true) {
    size_t consumed = 0;
    auto r = buf.empty() ? RequestParser::Result::kNeedMore : p.Parse(buf, &args, &consumed);
    if (r == RequestParser::Result::kError) {
      out.push_back("ERROR " + p.error());
      return out;
    }
    if (r == RequestParser::Result::kCommand || r == RequestParser::Result::kEmpty) {
      std::string flat = r == RequestParser::Result::kEmpty ? "EMPTY" : "CMD";
      for (auto a : args) flat += "|" + std::string(a);
      out.push_back(flat);
      buf.erase(0, consumed);
      continue;
    }
    if (fed >= data.size()) return out;
    size_t n = std::min(chunk, data.size() - fed);
    buf.append(data.substr(fed, n));
    fed += n;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  size_t chunk = 1 + data[0] % 17;
  std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
  auto whole = ParseAll(input, input.size() + 1);
  auto pieces = ParseAll(input, chunk);
  if (whole != pieces) abort();
  return 0;
}
