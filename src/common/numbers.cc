#include "common/numbers.h"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cctype>
#include <cstring>
#include <limits>

namespace larder {

bool ParseUint64(std::string_view s, uint64_t* out) {
  if (s.empty() || s.size() > 20) return false;
  if (s.size() == 1 && s[0] == '0') {
    *out = 0;
    return true;
  }
  if (s[0] < '1' || s[0] > '9') return false;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    uint64_t d = static_cast<uint64_t>(c - '0');
    if (v > (std::numeric_limits<uint64_t>::max() - d) / 10) return false;
    v = v * 10 + d;
  }
  *out = v;
  return true;
}

bool ParseInt64(std::string_view s, int64_t* out) {
  // Short non-negative numbers (counts, indexes, most values): one pass.
  if (s.size() - 1 < 9 && static_cast<unsigned char>(s[0] - '1') < 9) {
    int64_t v = 0;
    for (char c : s) {
      unsigned d = static_cast<unsigned char>(c - '0');
      if (d > 9) return false;
      v = v * 10 + d;
    }
    *out = v;
    return true;
  }
  if (s.empty()) return false;
  bool neg = s[0] == '-';
  std::string_view digits = neg ? s.substr(1) : s;
  if (neg && (digits.empty() || digits[0] == '0')) return false;
  uint64_t v;
  if (!ParseUint64(digits, &v)) return false;
  if (neg) {
    if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) + 1) return false;
    *out = static_cast<int64_t>(0 - v);
  } else {
    if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return false;
    *out = static_cast<int64_t>(v);
  }
  return true;
}

bool ParseLongDouble(std::string_view s, long double* out) {
  // Redis caps the length (MAX_LONG_DOUBLE_CHARS) and needs a NUL-terminated copy.
  if (s.empty() || s.size() >= 5 * 1024) return false;
  char buf[5 * 1024];
  memcpy(buf, s.data(), s.size());
  buf[s.size()] = '\0';
  if (isspace(static_cast<unsigned char>(buf[0]))) return false;
  errno = 0;
  char* end;
  long double v = strtold(buf, &end);
  if (*end != '\0' || static_cast<size_t>(end - buf) != s.size()) return false;  // embedded NUL
  if (errno == ERANGE && (v == HUGE_VALL || v == -HUGE_VALL || v == 0)) return false;
  if (std::isnan(v)) return false;
  *out = v;
  return true;
}

bool ParseDouble(std::string_view s, double* out) {
  if (s.empty() || s.size() >= 5 * 1024) return false;
  char buf[5 * 1024];
  memcpy(buf, s.data(), s.size());
  buf[s.size()] = '\0';
  if (isspace(static_cast<unsigned char>(buf[0]))) return false;
  errno = 0;
  char* end;
  double v = strtod(buf, &end);
  if (*end != '\0' || static_cast<size_t>(end - buf) != s.size()) return false;  // embedded NUL
  if (errno == ERANGE && (v == HUGE_VAL || v == -HUGE_VAL || v == 0)) return false;
  if (std::isnan(v)) return false;
  *out = v;
  return true;
}

std::string FormatLongDoubleHuman(long double v) {
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char buf[5 * 1024 + 64];
  int n = snprintf(buf, sizeof(buf), "%.17Lf", v);
  if (n < 0) return "0";
  std::string out(buf, static_cast<size_t>(n));
  if (out.find('.') != std::string::npos) {
    while (!out.empty() && out.back() == '0') out.pop_back();
    if (!out.empty() && out.back() == '.') out.pop_back();
  }
  if (out == "-0") out = "0";
  return out;
}

std::string FormatDouble(double v) {
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char buf[64];
  int n = snprintf(buf, sizeof(buf), "%.17g", v);
  return std::string(buf, static_cast<size_t>(n));
}

int DecimalLength(int64_t v) {
  int len = v < 0 ? 2 : 1;
  uint64_t u = v < 0 ? static_cast<uint64_t>(0) - static_cast<uint64_t>(v) : static_cast<uint64_t>(v);
  while (u >= 10) {
    u /= 10;
    ++len;
  }
  return len;
}

}  // namespace larder
