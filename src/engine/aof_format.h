// The AOF's file formats, apart from the files themselves (engine/aof.h):
// the manifest's lines and the RESP commands of a command file. Pure
// functions over bytes, so the AOF loader fuzzer (fuzz/aof_load_fuzz.cc)
// reaches them without a server.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace larder::aof {

struct FileInfo {
  std::string name;
  int64_t seq;
  char type;  // 'b', 'h', 'i'
};
struct Manifest {
  std::vector<FileInfo> base;  // at most one
  std::vector<FileInfo> history;
  std::vector<FileInfo> incr;
  int64_t cur_base_seq = 0, cur_incr_seq = 0;
};

// A manifest's text, by Redis's rules (aofLoadManifestFromFile); false with
// Redis's error text.
bool ParseManifest(std::string_view data, Manifest* m, std::string* error);
// A file name as the manifest writes it: quoted (Redis's sdscatrepr) when it
// holds a space or a byte that is not printable.
std::string ManifestName(const std::string& name);
// Splits a manifest line into words (a quoted word may hold spaces).
bool SplitWords(std::string_view line, std::vector<std::string>* out);

// One command of a command file, parsed from `d` at `pos` (annotations such
// as #TS: skipped); kTruncated when the file ends inside it.
enum class ParseResult { kOk, kEof, kTruncated, kBadFormat };
ParseResult ParseCommand(std::string_view d, size_t* pos, std::vector<std::string_view>* argv);

}  // namespace larder::aof
