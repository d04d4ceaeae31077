#include "resp/reply_builder.h"

#include <charconv>

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
  char buf[32];
  buf[0] = ':';
  auto r = std::to_chars(buf + 1, buf + sizeof(buf) - 2, v);
  r.ptr[0] = '\r';
  r.ptr[1] = '\n';
  out_->append(buf, static_cast<size_t>(r.ptr + 2 - buf));
}

void ReplyBuilder::Bulk(std::string_view s) {
  Header('$', s.size());
  out_->append(s);
  out_->append("\r\n");
}

void ReplyBuilder::Null() { out_->append(protocol_ >= 3 ? "_\r\n" : "$-1\r\n"); }
void ReplyBuilder::NullArray() { out_->append(protocol_ >= 3 ? "_\r\n" : "*-1\r\n"); }

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
