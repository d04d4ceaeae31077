#include "engine/aof_format.h"

#include <fmt/format.h>

#include <cstdlib>

#include "common/numbers.h"
#include "common/strings.h"

namespace larder::aof {

namespace {

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string_view TrimCrlf(std::string_view s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

}  // namespace

std::string ManifestName(const std::string& name) {
  bool plain = !name.empty();
  for (unsigned char c : name) plain = plain && c > ' ' && c < 127 && c != '"' && c != '\\';
  if (plain) return name;
  std::string out = "\"";
  for (unsigned char c : name) {
    if (c == '"' || c == '\\') out += fmt::format("\\{}", static_cast<char>(c));
    else if (c == '\n') out += "\\n";
    else if (c == '\r') out += "\\r";
    else if (c == '\t') out += "\\t";
    else if (c < ' ' || c >= 127) out += fmt::format("\\x{:02x}", c);
    else out.push_back(static_cast<char>(c));
  }
  out += "\"";
  return out;
}

bool SplitWords(std::string_view line, std::vector<std::string>* out) {
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && line[i] == ' ') ++i;
    if (i >= line.size()) break;
    std::string w;
    if (line[i] == '"') {
      ++i;
      bool closed = false;
      while (i < line.size()) {
        char c = line[i++];
        if (c == '"') {
          closed = true;
          break;
        }
        if (c == '\\' && i < line.size()) {
          char e = line[i++];
          if (e == 'n') w.push_back('\n');
          else if (e == 'r') w.push_back('\r');
          else if (e == 't') w.push_back('\t');
          else if (e == 'x' && i + 1 < line.size() && HexDigit(line[i]) >= 0 && HexDigit(line[i + 1]) >= 0) {
            // Two hex digits make a byte; otherwise the 'x' stands for
            // itself, as in Redis's sdssplitargs (found by fuzz_aof_load:
            // a manifest with "\xZZ" used to abort the server).
            w.push_back(static_cast<char>(HexDigit(line[i]) * 16 + HexDigit(line[i + 1])));
            i += 2;
          } else w.push_back(e);
        } else {
          w.push_back(c);
        }
      }
      if (!closed) return false;
    } else {
      while (i < line.size() && line[i] != ' ') w.push_back(line[i++]);
    }
    out->push_back(std::move(w));
  }
  return true;
}

bool ParseManifest(std::string_view data, Manifest* m, std::string* error) {
  *m = Manifest{};
  if (data.empty()) {
    *error = "Found an empty AOF manifest";
    return false;
  }
  // Redis's rules (aofLoadManifestFromFile): comments skipped; a line must
  // end in a newline within 1024 bytes, hold at least "file, seq, type"
  // pairs (keys in any case), a plain file name, a seq and a known type.
  size_t start = 0;
  int line_no = 0;
  while (start < data.size()) {
    size_t nl = data.find('\n', start);
    std::string_view raw = data.substr(start, nl == std::string::npos ? std::string::npos : nl - start);
    size_t len = (nl == std::string::npos ? data.size() : nl + 1) - start;
    start = nl == std::string::npos ? data.size() : nl + 1;
    ++line_no;
    std::string_view line = raw;
    auto bad = [&](const char* why) {
      *error = fmt::format("\n*** FATAL AOF MANIFEST FILE ERROR ***\nReading the manifest file, at line {}\n>>> '{}'\n{}",
                           line_no, line, why);
      return false;
    };
    if (!line.empty() && line[0] == '#') continue;
    if (nl == std::string::npos || len > 1024) return bad("The AOF manifest file contains too long line");
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) line.remove_suffix(1);
    while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) line.remove_prefix(1);
    if (line.empty()) return bad("Invalid AOF manifest file format");
    std::vector<std::string> w;
    if (!SplitWords(line, &w) || w.size() < 6 || w.size() % 2 != 0) return bad("Invalid AOF manifest file format");
    FileInfo fi{"", 0, 0};
    for (size_t i = 0; i + 1 < w.size(); i += 2) {
      if (EqualsIgnoreCase(w[i], "file")) {
        fi.name = w[i + 1];
        if (fi.name.find('/') != std::string::npos) return bad("File can't be a path, just a filename");
      } else if (EqualsIgnoreCase(w[i], "seq")) {
        fi.seq = std::atoll(w[i + 1].c_str());
      } else if (EqualsIgnoreCase(w[i], "type")) {
        fi.type = w[i + 1].empty() ? 0 : w[i + 1][0];
      }
    }
    if (fi.name.empty() || fi.seq == 0 || fi.type == 0) return bad("Invalid AOF manifest file format");
    if (fi.type == 'b') {
      if (!m->base.empty()) return bad("Found duplicate base file information");
      m->base.push_back(fi);
      m->cur_base_seq = fi.seq;
    } else if (fi.type == 'h') {
      m->history.push_back(fi);
    } else if (fi.type == 'i') {
      if (fi.seq <= m->cur_incr_seq) return bad("Found a non-monotonic sequence number");
      m->incr.push_back(fi);
      m->cur_incr_seq = fi.seq;
    } else {
      return bad("Unknown AOF file type");
    }
  }
  return true;
}

ParseResult ParseCommand(std::string_view d, size_t* pos, std::vector<std::string_view>* argv) {
  argv->clear();
  auto line = [&](std::string_view* l) {
    size_t nl = d.find('\n', *pos);
    if (nl == std::string_view::npos) return false;
    *l = d.substr(*pos, nl + 1 - *pos);
    *pos = nl + 1;
    return true;
  };
  std::string_view l;
  for (;;) {
    if (*pos >= d.size()) return ParseResult::kEof;
    if (!line(&l)) return d[*pos] == '*' || d[*pos] == '#' ? ParseResult::kTruncated : ParseResult::kBadFormat;
    if (l[0] == '#') continue;  // annotations (#TS:...)
    break;
  }
  if (l[0] != '*') return ParseResult::kBadFormat;
  int64_t argc = 0;
  if (!ParseInt64(TrimCrlf(l.substr(1)), &argc) || argc < 1 || argc > (1 << 20)) return ParseResult::kBadFormat;
  for (int64_t j = 0; j < argc; ++j) {
    if (*pos >= d.size()) return ParseResult::kTruncated;
    if (!line(&l)) return ParseResult::kTruncated;
    if (l[0] != '$') return ParseResult::kBadFormat;
    int64_t len = 0;
    if (!ParseInt64(TrimCrlf(l.substr(1)), &len) || len < 0) return ParseResult::kBadFormat;
    if (*pos + static_cast<size_t>(len) + 2 > d.size()) return ParseResult::kTruncated;
    argv->push_back(d.substr(*pos, static_cast<size_t>(len)));
    *pos += static_cast<size_t>(len) + 2;
  }
  return ParseResult::kOk;
}

}  // namespace larder::aof
