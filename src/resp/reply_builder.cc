#include "resp/reply_builder.h"

#include <charconv>
#include <cstring>

#include "common/numbers.h"

namespace larder::resp {

void ReplyBuilder::Header(char type, size_t n) {
  char buf[32];
  buf[0] = type;
  auto r = std::to_chars(buf + 1, buf + sizeof(buf) - 2, n);
  r.ptr[0] = '\r';
  r.ptr[1] = '\n';
  out_->append(buf, static_cast<size_t>(r.ptr + 2 - buf));
}

void ReplyBuilder::SimpleString(std::string_view s) {
  out_->push_back('+');
  out_->append(s);
  out_->append("\r\n");
}

void ReplyBuilder::Error(std::string_view msg) {
  if (sink_) sink_->OnError(msg);
  WriteError(msg);
}

void ReplyBuilder::ErrorCounted(std::string_view msg) {
  if (sink_) sink_->OnCountedError(msg);
  WriteError(msg);
}

void ReplyBuilder::WriteError(std::string_view msg) {
  out_->push_back('-');
  // Error lines cannot carry newlines (Redis replaces them with spaces).
  size_t start = out_->size();
  out_->append(msg);
  for (size_t i = start; i < out_->size(); ++i) {
    if ((*out_)[i] == '\r' || (*out_)[i] == '\n') (*out_)[i] = ' ';
  }
  out_->append("\r\n");
}

void ReplyBuilder::Integer(int64_t v) {
  last_integer_ = v;
  char buf[32];
  buf[0] = ':';
  auto r = std::to_chars(buf + 1, buf + sizeof(buf) - 2, v);
  r.ptr[0] = '\r';
  r.ptr[1] = '\n';
  out_->append(buf, static_cast<size_t>(r.ptr + 2 - buf));
}

void ReplyBuilder::Bulk(std::string_view s) {
  // One append: header, value and CRLF (the hot path of every GET).
  char head[24];
  head[0] = '$';
  auto r = std::to_chars(head + 1, head + sizeof(head), s.size());
  size_t hlen = static_cast<size_t>(r.ptr - head);
  size_t at = out_->size();
  out_->resize(at + hlen + 2 + s.size() + 2);
  char* p = out_->data() + at;
  memcpy(p, head, hlen);
  p += hlen;
  p[0] = '\r';
  p[1] = '\n';
  if (!s.empty()) memcpy(p + 2, s.data(), s.size());
  p += 2 + s.size();
  p[0] = '\r';
  p[1] = '\n';
}

void ReplyBuilder::Null() {
  if (protocol_ >= 3) out_->append("_\r\n", 3);
  else out_->append("$-1\r\n", 5);
}
void ReplyBuilder::NullArray() {
  if (protocol_ >= 3) out_->append("_\r\n", 3);
  else out_->append("*-1\r\n", 5);
}

void ReplyBuilder::Double(double v) {
  std::string s = FormatDouble(v);
  if (protocol_ >= 3) {
    out_->push_back(',');
    out_->append(s);
    out_->append("\r\n");
  } else {
    Bulk(s);
  }
}

void ReplyBuilder::Bool(bool v) {
  if (protocol_ >= 3) out_->append(v ? "#t\r\n" : "#f\r\n");
  else out_->append(v ? ":1\r\n" : ":0\r\n");
}

void ReplyBuilder::ArrayHeader(size_t n) { Header('*', n); }
void ReplyBuilder::MapHeader(size_t pairs) {
  if (protocol_ >= 3) Header('%', pairs);
  else Header('*', pairs * 2);
}
void ReplyBuilder::SetHeader(size_t n) { Header(protocol_ >= 3 ? '~' : '*', n); }
void ReplyBuilder::PushHeader(size_t n) { Header(protocol_ >= 3 ? '>' : '*', n); }

void ReplyBuilder::Verbatim(std::string_view s, std::string_view format) {
  if (protocol_ < 3) {
    Bulk(s);
    return;
  }
  Header('=', s.size() + 4);
  out_->append(format);
  out_->push_back(':');
  out_->append(s);
  out_->append("\r\n");
}

}  // namespace larder::resp
