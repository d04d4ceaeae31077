#include "common/glob.h"

#include <cctype>

namespace larder {

namespace {

inline unsigned char Fold(unsigned char c, bool nocase) {
  return nocase ? static_cast<unsigned char>(std::tolower(c)) : c;
}

// Matches one byte `c` against the class that starts right after '['; `p` is
// advanced past the closing ']' (or to the end for an unterminated class).
bool MatchClass(std::string_view pat, size_t* p, unsigned char c, bool nocase) {
  size_t i = *p;
  bool negate = i < pat.size() && pat[i] == '^';
  if (negate) ++i;
  bool hit = false;
  c = Fold(c, nocase);
  while (i < pat.size() && pat[i] != ']') {
    unsigned char pc = pat[i];
    if (pc == '\\' && i + 1 < pat.size()) {
      ++i;
      if (static_cast<unsigned char>(pat[i]) == c) hit = true;
      ++i;
    } else if (i + 2 < pat.size() && pat[i + 1] == '-') {
      unsigned char lo = Fold(pc, nocase), hi = Fold(pat[i + 2], nocase);
      if (lo > hi) std::swap(lo, hi);
      if (c >= lo && c <= hi) hit = true;
      i += 3;
    } else {
      if (Fold(pc, nocase) == c) hit = true;
      ++i;
    }
  }
  if (i < pat.size()) ++i;  // skip ']'
  *p = i;
  return negate ? !hit : hit;
}

// Returns 1 on match, 0 on mismatch, -1 when no longer suffix of `str` can
// match either (lets callers stop retrying '*' positions: keeps patterns like
// "a*a*a*a*b" linear-ish instead of exponential).
int Match(std::string_view pat, std::string_view str, bool nocase, int depth) {
  if (depth > 1000) return -1;  // bound recursion on hostile patterns
  size_t p = 0, s = 0;
  while (p < pat.size()) {
    char pc = pat[p];
    if (pc == '*') {
      while (p < pat.size() && pat[p] == '*') ++p;
      if (p == pat.size()) return 1;
      for (; s < str.size(); ++s) {
        int r = Match(pat.substr(p), str.substr(s), nocase, depth + 1);
        if (r != 0) return r;
      }
      return -1;
    }
    if (s == str.size()) return 0;
    if (pc == '?') {
      ++p;
      ++s;
    } else if (pc == '[') {
      ++p;
      if (!MatchClass(pat, &p, str[s], nocase)) return 0;
      ++s;
    } else {
      if (pc == '\\' && p + 1 < pat.size()) ++p;
      if (Fold(pat[p], nocase) != Fold(str[s], nocase)) return 0;
      ++p;
      ++s;
    }
  }
  return s == str.size() ? 1 : 0;
}

}  // namespace

bool GlobMatch(std::string_view pattern, std::string_view str, bool nocase) {
  return Match(pattern, str, nocase, 0) == 1;
}

}  // namespace larder
