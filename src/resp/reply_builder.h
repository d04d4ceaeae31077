// Builds RESP2 or RESP3 replies into a caller-owned string. Knows nothing of
// commands or connections: handlers describe a reply (an integer, a bulk, a map
// of n pairs, ...) and the builder encodes it for the client's protocol version,
// e.g. a map is "%n" in RESP3 and a flat "*2n" array in RESP2.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace larder::resp {

// Told of every error reply a builder writes (the engine counts errors and
// their kinds from here, never from the reply bytes).
class ErrorSink {
 public:
  virtual ~ErrorSink() = default;
  virtual void OnError(std::string_view line) = 0;
  // An error reply passing on one already counted where it was first
  // replied (a script returning a command's error): the command failed,
  // errorstats do not count it again.
  virtual void OnCountedError(std::string_view line) {}
};

class ReplyBuilder {
 public:
  ReplyBuilder(std::string* out, int protocol, ErrorSink* sink = nullptr)
      : out_(out), protocol_(protocol), sink_(sink) {}

  int protocol() const { return protocol_; }
  std::string* buffer() { return out_; }
  // The value of the last Integer() written (fan-out parts are summed).
  int64_t last_integer() const { return last_integer_; }

  void SimpleString(std::string_view s);
  void Ok() { out_->append(std::string_view("+OK\r\n")); }
  // `msg` is the full error line without '-', e.g. "ERR syntax error".
  void Error(std::string_view msg);
  // The same for an error already counted in errorstats (ErrorSink::OnCountedError).
  void ErrorCounted(std::string_view msg);
  void Integer(int64_t v);
  void Bulk(std::string_view s);
  void Null();       // "$-1" / "_"
  void NullArray();  // "*-1" / "_"
  void Double(double v);
  void Bool(bool v);  // RESP3 "#t"/"#f"; RESP2 integer 1/0
  void ArrayHeader(size_t n);
  void MapHeader(size_t pairs);  // RESP2: array of 2n
  void SetHeader(size_t n);      // RESP2: array
  void PushHeader(size_t n);     // RESP2: array
  void Verbatim(std::string_view s, std::string_view format = "txt");  // RESP2: bulk
  void EmptyArray() { out_->append(std::string_view("*0\r\n")); }
  // Appends already-encoded RESP.
  void Raw(std::string_view s) { out_->append(s); }

 private:
  void Header(char type, size_t n);
  void WriteError(std::string_view msg);
  std::string* out_;
  int protocol_;
  ErrorSink* sink_;
  int64_t last_integer_ = 0;
};

}  // namespace larder::resp
