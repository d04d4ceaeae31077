#include "resp/parser.h"

#include <algorithm>
#include <cctype>
#include <cstring>

#include "common/numbers.h"
#include "common/status.h"

namespace larder::resp {

namespace {
constexpr size_t kMaxHeaderLine = 64 * 1024;  // as Redis: longer "*N"/"$N" lines are an error
constexpr int64_t kMaxArgs = 2147483647;  // INT_MAX, as Redis
constexpr int64_t kMaxUnauthenticatedArgs = 10;
constexpr int64_t kMaxUnauthenticatedBulk = 16384;

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}
}  // namespace

void RequestParser::Reset() {
  expected_args_ = -1;
  pos_ = 0;
  if (!spans_.empty()) {
    spans_.clear();
    // One command of a million arguments must not pin their offsets for as
    // long as the connection lasts.
    if (spans_.capacity() > 4096) std::vector<std::pair<size_t, size_t>>().swap(spans_);
  }
  partial_ = false;
  pending_bulk_ = 0;
}

RequestParser::Result RequestParser::Fail(std::string msg) {
  error_ = std::move(msg);
  Reset();
  return Result::kError;
}

RequestParser::Result RequestParser::Parse(std::string_view buf,
                                           std::vector<std::string_view>* args,
                                           size_t* consumed) {
  args->clear();
  *consumed = 0;
  if (buf.empty()) return Result::kNeedMore;
  if (buf[0] == '*') return ParseMultiBulk(buf, args, consumed);
  return ParseInline(buf, args, consumed);
}

RequestParser::Result RequestParser::ParseInline(std::string_view buf,
                                                 std::vector<std::string_view>* args,
                                                 size_t* consumed) {
  size_t nl = buf.find('\n');
  if (nl == std::string_view::npos) {
    if (buf.size() > limits_.max_inline_len) return Fail(FormatError(OpStatus::kProtoTooBigInline));
    return Result::kNeedMore;
  }
  std::string_view line = buf.substr(0, nl);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  *consumed = nl + 1;
  inline_args_.clear();
  if (!SplitInlineArgs(line, &inline_args_)) return Fail(FormatError(OpStatus::kProtoUnbalancedQuotes));
  if (inline_args_.empty()) return Result::kEmpty;
  for (const auto& a : inline_args_) args->emplace_back(a);
  return Result::kCommand;
}

namespace {
enum class Num { kOk, kNeedMore, kBad };

// Reads the integer of a "*<n>\r\n" / "$<n>\r\n" line that starts at `p`
// (after the prefix), with the rules of Redis's string2ll: an optional '-',
// no leading zeros, no '+', at most 19 digits, then CR (the byte after it is
// not checked, as in Redis). `*next` is set past the CRLF. One pass, no
// search for the CR first: this runs for every argument of every command.
inline Num ReadLineNumber(const char* p, const char* end, int64_t* out, const char** next) {
  // One or two digits (argument counts, most lengths): straight through.
  if (end - p >= 4) {
    unsigned d0 = static_cast<unsigned char>(p[0] - '1');  // 1..9 only: no leading zero
    unsigned d1 = static_cast<unsigned char>(p[1] - '0');
    if (d0 < 9 && p[1] == '\r') {
      *out = d0 + 1;
      *next = p + 3;
      return Num::kOk;
    }
    if (d0 < 9 && d1 < 10 && p[2] == '\r') {
      *out = (d0 + 1) * 10 + d1;
      *next = p + 4;
      return Num::kOk;
    }
  }
  const char* q = p;
  bool neg = q < end && *q == '-';
  if (neg) ++q;
  const char* digits = q;
  uint64_t v = 0;
  while (q < end && static_cast<unsigned char>(*q - '0') < 10 && q - digits < 20) {
    v = v * 10 + static_cast<uint64_t>(*q - '0');
    ++q;
  }
  if (q >= end) return Num::kNeedMore;
  if (*q != '\r' || q - digits > 19) {
    // Garbage before the line's end: an error once the line is complete.
    const void* cr = memchr(q, '\r', static_cast<size_t>(end - q));
    if (!cr || static_cast<const char*>(cr) + 1 >= end) return Num::kNeedMore;
    return Num::kBad;
  }
  if (q + 1 >= end) return Num::kNeedMore;  // the LF is not here yet
  size_t n = static_cast<size_t>(q - digits);
  if (n == 0 || (digits[0] == '0' && (n > 1 || neg))) return Num::kBad;
  if (neg) {
    if (v > static_cast<uint64_t>(INT64_MAX) + 1) return Num::kBad;
    *out = static_cast<int64_t>(0 - v);
  } else {
    if (v > static_cast<uint64_t>(INT64_MAX)) return Num::kBad;
    *out = static_cast<int64_t>(v);
  }
  *next = q + 2;
  return Num::kOk;
}
}  // namespace

RequestParser::Result RequestParser::ParseMultiBulk(std::string_view buf,
                                                    std::vector<std::string_view>* args,
                                                    size_t* consumed) {
  const char* base = buf.data();
  const char* end = base + buf.size();
  if (expected_args_ < 0) {
    int64_t n;
    const char* next;
    switch (ReadLineNumber(base + 1, end, &n, &next)) {
      case Num::kNeedMore:
        if (buf.size() > kMaxHeaderLine) return Fail(FormatError(OpStatus::kProtoTooBigMultibulkCount));
        return Result::kNeedMore;
      case Num::kBad: return Fail(FormatError(OpStatus::kProtoInvalidMultibulkLength));
      case Num::kOk: break;
    }
    if (n > kMaxArgs) return Fail(FormatError(OpStatus::kProtoInvalidMultibulkLength));
    if (n > kMaxUnauthenticatedArgs && unauthenticated_) [[unlikely]]
      return Fail(FormatError(OpStatus::kProtoUnauthenticatedMultibulk));
    pos_ = static_cast<size_t>(next - base);
    if (n <= 0) {
      *consumed = pos_;
      Reset();
      return Result::kEmpty;
    }
    expected_args_ = n;
  }
  // A command that arrives in parts collects offsets in spans_ (the buffer
  // may move between calls); one that is all here goes straight to `args`.
  bool parts = !spans_.empty() || partial_;
  auto have = [&] { return static_cast<int64_t>(parts ? spans_.size() : args->size()); };
  while (have() < expected_args_) {
    if (pos_ >= buf.size()) return Partial(buf, args);
    const char* line = base + pos_;
    if (*line != '$') {
      // As Redis: reported once the line is complete.
      const void* cr = memchr(line, '\r', buf.size() - pos_);
      if (!cr || static_cast<const char*>(cr) + 1 >= end) {
        if (buf.size() - pos_ > kMaxHeaderLine) return Fail(FormatError(OpStatus::kProtoTooBigBulkCount));
        return Partial(buf, args);
      }
      return Fail(FormatError(OpStatus::kProtoExpectedBulk, *line));
    }
    int64_t len;
    const char* data;
    switch (ReadLineNumber(line + 1, end, &len, &data)) {
      case Num::kNeedMore:
        if (buf.size() - pos_ > kMaxHeaderLine) return Fail(FormatError(OpStatus::kProtoTooBigBulkCount));
        return Partial(buf, args);
      case Num::kBad: return Fail(FormatError(OpStatus::kProtoInvalidBulkLength));
      case Num::kOk: break;
    }
    if (len < 0 || len > limits_.max_bulk_len) return Fail(FormatError(OpStatus::kProtoInvalidBulkLength));
    if (len > kMaxUnauthenticatedBulk && unauthenticated_) [[unlikely]]
      return Fail(FormatError(OpStatus::kProtoUnauthenticatedBulk));
    size_t start = static_cast<size_t>(data - base);
    size_t need = start + static_cast<size_t>(len) + 2;
    if (need > buf.size()) {
      pending_bulk_ = need - buf.size();
      return Partial(buf, args);
    }
    pending_bulk_ = 0;
    if (parts) spans_.emplace_back(start, static_cast<size_t>(len));
    else args->emplace_back(data, static_cast<size_t>(len));
    pos_ = need;
  }
  if (parts) {
    args->clear();
    for (const auto& [off, len] : spans_) args->emplace_back(base + off, len);
  }
  *consumed = pos_;
  Reset();
  return Result::kCommand;
}

RequestParser::Result RequestParser::Partial(std::string_view buf, std::vector<std::string_view>* args) {
  // The buffer may move before the next call: from now on offsets, not views.
  if (!partial_) {
    for (auto a : *args) spans_.emplace_back(static_cast<size_t>(a.data() - buf.data()), a.size());
    partial_ = true;
  }
  args->clear();
  return Result::kNeedMore;
}

bool SplitInlineArgs(std::string_view line, std::vector<std::string>* out) {
  size_t i = 0;
  const size_t n = line.size();
  while (true) {
    while (i < n && isspace(static_cast<unsigned char>(line[i]))) ++i;
    if (i >= n) return true;
    std::string cur;
    bool in_dq = false, in_sq = false, done = false;
    while (!done) {
      if (in_dq) {
        if (i >= n) return false;  // unterminated quotes
        if (line[i] == '\\' && i + 3 < n && line[i + 1] == 'x' && HexValue(line[i + 2]) >= 0 &&
            HexValue(line[i + 3]) >= 0) {
          cur.push_back(static_cast<char>(HexValue(line[i + 2]) * 16 + HexValue(line[i + 3])));
          i += 3;
        } else if (line[i] == '\\' && i + 1 < n) {
          ++i;
          char c = line[i];
          switch (c) {
            case 'n': c = '\n'; break;
            case 'r': c = '\r'; break;
            case 't': c = '\t'; break;
            case 'b': c = '\b'; break;
            case 'a': c = '\a'; break;
            default: break;
          }
          cur.push_back(c);
        } else if (line[i] == '"') {
          // A closing quote must be followed by a space or the end.
          if (i + 1 < n && !isspace(static_cast<unsigned char>(line[i + 1]))) return false;
          done = true;
        } else {
          cur.push_back(line[i]);
        }
      } else if (in_sq) {
        if (i >= n) return false;
        if (line[i] == '\\' && i + 1 < n && line[i + 1] == '\'') {
          ++i;
          cur.push_back('\'');
        } else if (line[i] == '\'') {
          if (i + 1 < n && !isspace(static_cast<unsigned char>(line[i + 1]))) return false;
          done = true;
        } else {
          cur.push_back(line[i]);
        }
      } else {
        if (i >= n) {
          done = true;
          break;
        }
        char c = line[i];
        if (c == ' ' || c == '\n' || c == '\r' || c == '\t' || c == '\0') {
          done = true;
        } else if (c == '"') {
          in_dq = true;
        } else if (c == '\'') {
          in_sq = true;
        } else {
          cur.push_back(c);
        }
      }
      if (i < n) ++i;
    }
    out->push_back(std::move(cur));
  }
}

}  // namespace larder::resp
