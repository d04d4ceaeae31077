// Status values returned by keyspace operations, and the one place that maps
// each of them to the exact error text Redis 7 sends.
//
// Operations never format RESP: they return an OpStatus (or OpResult<T>) and the
// command handler turns a failure into a reply with ErrorText().
#pragma once

#include <optional>
#include <string_view>
#include <utility>

namespace larder {

enum class OpStatus : unsigned char {
  kOk,
  kKeyNotFound,      // a normal outcome for most commands (nil reply), an error for some
  kWrongType,
  kNotAnInteger,     // "value is not an integer or out of range"
  kNotAFloat,
  kSyntaxError,
  kOverflow,         // "increment or decrement would overflow"
  kNanOrInfinity,    // INCRBYFLOAT
  kNoSuchKey,        // RENAME and friends
  kOutOfRange,       // "index out of range"
  kStringTooLong,    // exceeds proto-max-bulk-len
  kOffsetOutOfRange,
  kInvalidExpire,    // placeholder; the text needs the command name, see ExpireError()
  kDbIndexOutOfRange,
  kSkipped,          // a conditional write (NX/XX/...) did not happen
  kOutOfMemory,
};

// Returns the full error line for `s` without the leading '-' and trailing CRLF,
// e.g. "WRONGTYPE Operation against a key holding the wrong kind of value".
std::string_view ErrorText(OpStatus s);

// A value or a status. Small and cheap: used on the hot path instead of exceptions.
template <typename T>
class OpResult {
 public:
  OpResult(T v) : value_(std::move(v)), status_(OpStatus::kOk) {}  // NOLINT: implicit by design
  OpResult(OpStatus s) : status_(s) {}                             // NOLINT
  bool ok() const { return status_ == OpStatus::kOk; }
  OpStatus status() const { return status_; }
  T& value() { return *value_; }
  const T& value() const { return *value_; }
  T& operator*() { return *value_; }
  T* operator->() { return &*value_; }

 private:
  std::optional<T> value_;
  OpStatus status_;
};

}  // namespace larder
