#include "resp/parser.h"

#include <cctype>
#include <cstring>

#include "common/numbers.h"
#include "common/status.h"

namespace larder::resp {

namespace {
constexpr size_t kMaxHeaderLine = 64 * 1024;  // as Redis: longer "*N"/"$N" lines are an error
constexpr int64_t kMaxArgs = 2147483647;  // INT_MAX, as Redis
constexpr size_t kPreallocArgs = 1024;              // never trust the announced count

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
  spans_.clear();
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

RequestParser::Result RequestParser::ParseMultiBulk(std::string_view buf,
                                                    std::vector<std::string_view>* args,
                                                    size_t* consumed) {
  // Reads a "<prefix><int>\r\n" header line at pos_; returns false if incomplete.
  auto read_line = [&](size_t* line_end) -> bool {
    size_t cr = buf.find('\r', pos_);
    if (cr == std::string_view::npos || cr + 1 >= buf.size()) return false;
    *line_end = cr;
    return true;
  };

  if (expected_args_ < 0) {
    pos_ = 0;
    size_t cr;
    if (!read_line(&cr)) {
      if (buf.size() > kMaxHeaderLine) return Fail(FormatError(OpStatus::kProtoTooBigMultibulkCount));
      return Result::kNeedMore;
    }
    int64_t n;
    if (!ParseInt64(buf.substr(1, cr - 1), &n) || n > kMaxArgs) return Fail(FormatError(OpStatus::kProtoInvalidMultibulkLength));
    pos_ = cr + 2;
    if (n <= 0) {
      *consumed = pos_;
      Reset();
      return Result::kEmpty;
    }
    expected_args_ = n;
    spans_.reserve(static_cast<size_t>(n) < kPreallocArgs ? static_cast<size_t>(n) : kPreallocArgs);
  }

  while (static_cast<int64_t>(spans_.size()) < expected_args_) {
    if (pos_ >= buf.size()) return Result::kNeedMore;
    size_t cr;
    if (!read_line(&cr)) {
      if (buf.size() - pos_ > kMaxHeaderLine) return Fail(FormatError(OpStatus::kProtoTooBigBulkCount));
      return Result::kNeedMore;
    }
    if (buf[pos_] != '$') {
      return Fail(FormatError(OpStatus::kProtoExpectedBulk, buf[pos_]));
    }
    int64_t len;
    if (!ParseInt64(buf.substr(pos_ + 1, cr - pos_ - 1), &len) || len < 0 ||
        len > limits_.max_bulk_len) {
      return Fail(FormatError(OpStatus::kProtoInvalidBulkLength));
    }
    size_t start = cr + 2;
    size_t need = start + static_cast<size_t>(len) + 2;
    if (need > buf.size()) {
      pending_bulk_ = need - buf.size();
      return Result::kNeedMore;
    }
    pending_bulk_ = 0;
    spans_.emplace_back(start, static_cast<size_t>(len));
    pos_ = need;
  }

  for (const auto& [off, len] : spans_) args->emplace_back(buf.data() + off, len);
  *consumed = pos_;
  Reset();
  return Result::kCommand;
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
