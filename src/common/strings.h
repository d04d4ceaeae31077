// Small string helpers shared by the command families.
#pragma once

#include <algorithm>
#include <cctype>
#include <string>
#include <string_view>

namespace larder {

inline bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  return true;
}

inline std::string AsciiLower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// One word for a config line (the inverse of the inline-command splitter,
// resp::SplitInlineArgs): as is when it needs no quotes, else in double
// quotes with quotes, backslashes and every byte that is not printable
// escaped (\n, \r, \t, \xHH), so that any value survives the file.
inline std::string QuoteConfigWord(std::string_view w) {
  bool plain = !w.empty() && std::all_of(w.begin(), w.end(), [](char c) {
    return std::isgraph(static_cast<unsigned char>(c)) && c != '"' && c != '\'' && c != '\\';
  });
  if (plain) return std::string(w);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "\"";
  for (char c : w) {
    auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(c);
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == ' ' || std::isgraph(u)) {
      out.push_back(c);
    } else {
      out += "\\x";
      out.push_back(kHex[u >> 4]);
      out.push_back(kHex[u & 15]);
    }
  }
  out.push_back('"');
  return out;
}

// Text from outside the server (a database's message, a file system
// error) made fit for one error line: every run of control characters
// (newlines, tabs, ...) becomes one space, blanks at both ends go, and
// past `max` bytes it is cut (at a UTF-8 boundary) and ends in "...".
inline std::string OneLine(std::string_view s, size_t max = 512) {
  std::string out;
  out.reserve(std::min(s.size(), max + 3));
  bool space = false;
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f || c == ' ') {
      space = !out.empty();
      continue;
    }
    if (space) out.push_back(' ');
    space = false;
    out.push_back(c);
    if (out.size() > max) break;
  }
  if (out.size() > max) {
    size_t cut = max;
    while (cut > 0 && (static_cast<unsigned char>(out[cut]) & 0xc0) == 0x80) --cut;
    out.resize(cut);
    out += "...";
  }
  return out;
}

}  // namespace larder
