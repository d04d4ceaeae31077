// Incremental parser for client requests: RESP multi-bulk ("*2\r\n$3\r\nGET\r\n...")
// and inline commands ("GET key\r\n", as typed in telnet).
//
// The parser owns no buffer. The caller appends socket data to its read buffer
// and calls Parse() with the unconsumed part; Parse() either yields one complete
// command (argument views into the buffer, valid until the buffer changes), asks
// for more data, or reports a protocol error with Redis's exact text, after which
// the connection must be closed. Progress inside a partial multi-bulk command is
// kept as offsets, so a command that arrives in many reads is parsed in linear time.
//
// No input makes it allocate more than the bytes it was given plus one offset
// pair per argument actually received.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace larder::resp {

class RequestParser {
 public:
  enum class Result { kCommand, kNeedMore, kError, kEmpty };

  struct Limits {
    int64_t max_bulk_len = 512LL * 1024 * 1024;  // proto-max-bulk-len
    size_t max_inline_len = 64 * 1024;           // PROTO_INLINE_MAX_SIZE
  };

  // A client that must still authenticate may send at most 10 arguments of
  // at most 16 KB each (as Redis): a stranger cannot make the server buffer
  // a huge command. Set before each command is parsed.
  void set_unauthenticated(bool on) { unauthenticated_ = on; }

  void set_limits(const Limits& limits) { limits_ = limits; }

  // Parses from the start of `buf` (which must begin where the previous command
  // ended). kCommand: `args` holds the command, `*consumed` how many bytes of
  // `buf` it used. kEmpty: `*consumed` bytes held no command (blank inline line,
  // "*0"). kNeedMore: keep all of `buf` and call again with more appended.
  Result Parse(std::string_view buf, std::vector<std::string_view>* args, size_t* consumed);

  const std::string& error() const { return error_; }

  // Bytes the parser knows it still needs for the current command (a lower
  // bound): lets the caller reserve room for one huge bulk at once.
  size_t pending_bulk_bytes() const { return pending_bulk_; }

 private:
  Result ParseInline(std::string_view buf, std::vector<std::string_view>* args, size_t* consumed);
  Result ParseMultiBulk(std::string_view buf, std::vector<std::string_view>* args, size_t* consumed);
  void Reset();
  Result Fail(std::string msg);
  // Keeps the arguments parsed so far as offsets and asks for more data.
  Result Partial(std::string_view buf, std::vector<std::string_view>* args);  // msg: the whole error line, from the error table

  Limits limits_;
  bool unauthenticated_ = false;
  std::string error_;
  // State of a partially received multi-bulk command, as offsets into buf.
  int64_t expected_args_ = -1;   // -1: header not parsed yet
  size_t pos_ = 0;               // next byte to parse
  std::vector<std::pair<size_t, size_t>> spans_;  // (offset, length) of args so far
  size_t pending_bulk_ = 0;
  bool partial_ = false;  // the current command arrived in parts (offsets in spans_)
  std::vector<std::string> inline_args_;  // unescaped inline arguments live here
};

// Splits an inline request line as Redis's sdssplitargs does (quotes, \x escapes).
// Returns false on unbalanced quotes.
bool SplitInlineArgs(std::string_view line, std::vector<std::string>* out);

}  // namespace larder::resp
