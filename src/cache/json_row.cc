#include "cache/json_row.h"

#include <cstdio>

namespace larder::cache {

void AppendJsonString(std::string* out, std::string_view s) {
  out->push_back('"');
  for (unsigned char c : s) {
    switch (c) {
      case '"': *out += "\\\""; break;
      case '\\': *out += "\\\\"; break;
      case '\n': *out += "\\n"; break;
      case '\r': *out += "\\r"; break;
      case '\t': *out += "\\t"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          snprintf(buf, sizeof(buf), "\\u%04x", c);
          *out += buf;
        } else {
          out->push_back(static_cast<char>(c));
        }
    }
  }
  out->push_back('"');
}

bool IsJsonNumber(std::string_view s) {
  size_t i = 0;
  auto digits = [&] {
    size_t start = i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
    return i > start;
  };
  if (i < s.size() && s[i] == '-') ++i;
  if (i < s.size() && s[i] == '0') ++i;
  else if (!digits()) return false;
  if (i < s.size() && s[i] == '.') {
    ++i;
    if (!digits()) return false;
  }
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
    if (!digits()) return false;
  }
  return i == s.size();
}

std::string RowAsJson(const QueryResult& r) {
  std::string out = "{";
  for (size_t i = 0; i < r.columns.size(); ++i) {
    if (i) out.push_back(',');
    AppendJsonString(&out, r.columns[i]);
    out.push_back(':');
    if (!r.values[i]) {
      out += "null";
      continue;
    }
    const std::string& v = *r.values[i];
    ColType type = i < r.types.size() ? r.types[i] : ColType::kText;
    switch (type) {
      case ColType::kInteger:
      case ColType::kReal:
        if (IsJsonNumber(v)) out += v;
        else AppendJsonString(&out, v);
        break;
      case ColType::kBool:
        if (v == "t" || v == "f") out += v == "t" ? "true" : "false";
        else AppendJsonString(&out, v);
        break;
      case ColType::kJson:
        out += v;  // the database checked it is JSON
        break;
      case ColType::kText:
        AppendJsonString(&out, v);
        break;
    }
  }
  out.push_back('}');
  return out;
}

namespace {

// A cursor over JSON text; each method consumes one element or fails.
struct JsonReader {
  std::string_view in;
  size_t pos = 0;

  void Blanks() {
    while (pos < in.size() && (in[pos] == ' ' || in[pos] == '\t' || in[pos] == '\n' || in[pos] == '\r')) ++pos;
  }
  bool Eat(char c) {
    Blanks();
    if (pos < in.size() && in[pos] == c) {
      ++pos;
      return true;
    }
    return false;
  }
  static int Hex(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  }
  bool Hex4(uint32_t* v) {
    if (pos + 4 > in.size()) return false;
    *v = 0;
    for (int i = 0; i < 4; ++i) {
      int h = Hex(in[pos++]);
      if (h < 0) return false;
      *v = *v * 16 + static_cast<uint32_t>(h);
    }
    return true;
  }
  static void Utf8(std::string* out, uint32_t cp) {
    if (cp < 0x80) {
      out->push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      out->push_back(static_cast<char>(0xc0 | (cp >> 6)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3f)));
    } else if (cp < 0x10000) {
      out->push_back(static_cast<char>(0xe0 | (cp >> 12)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3f)));
    } else {
      out->push_back(static_cast<char>(0xf0 | (cp >> 18)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3f)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3f)));
    }
  }
  // A string (the opening quote next); `out` (if given) gets it unescaped.
  bool String(std::string* out) {
    if (!Eat('"')) return false;
    while (pos < in.size()) {
      char c = in[pos++];
      if (c == '"') return true;
      if (static_cast<unsigned char>(c) < 0x20) return false;
      if (c != '\\') {
        if (out) out->push_back(c);
        continue;
      }
      if (pos >= in.size()) return false;
      char e = in[pos++];
      char plain = 0;
      switch (e) {
        case '"': plain = '"'; break;
        case '\\': plain = '\\'; break;
        case '/': plain = '/'; break;
        case 'b': plain = '\b'; break;
        case 'f': plain = '\f'; break;
        case 'n': plain = '\n'; break;
        case 'r': plain = '\r'; break;
        case 't': plain = '\t'; break;
        case 'u': {
          uint32_t cp;
          if (!Hex4(&cp)) return false;
          if (cp >= 0xd800 && cp < 0xdc00) {  // a surrogate pair
            uint32_t lo;
            if (pos + 2 > in.size() || in[pos] != '\\' || in[pos + 1] != 'u') return false;
            pos += 2;
            if (!Hex4(&lo) || lo < 0xdc00 || lo >= 0xe000) return false;
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
          } else if (cp >= 0xdc00 && cp < 0xe000) {
            return false;
          }
          if (out) Utf8(out, cp);
          continue;
        }
        default: return false;
      }
      if (out) out->push_back(plain);
    }
    return false;
  }
  bool Literal(std::string_view word) {
    if (in.substr(pos, word.size()) != word) return false;
    pos += word.size();
    return true;
  }
  bool Number() {
    size_t start = pos;
    while (pos < in.size() && (std::string_view("+-.eE0123456789").find(in[pos]) != std::string_view::npos)) ++pos;
    return IsJsonNumber(in.substr(start, pos - start));
  }
  // Any value; nesting is bounded so that no input exhausts the stack.
  bool Value(int depth) {
    Blanks();
    if (pos >= in.size() || depth > 64) return false;
    char c = in[pos];
    if (c == '"') return String(nullptr);
    if (c == '{') {
      ++pos;
      if (Eat('}')) return true;
      do {
        Blanks();
        if (!String(nullptr) || !Eat(':') || !Value(depth + 1)) return false;
      } while (Eat(','));
      return Eat('}');
    }
    if (c == '[') {
      ++pos;
      if (Eat(']')) return true;
      do {
        if (!Value(depth + 1)) return false;
      } while (Eat(','));
      return Eat(']');
    }
    if (c == 't') return Literal("true");
    if (c == 'f') return Literal("false");
    if (c == 'n') return Literal("null");
    return Number();
  }
};

}  // namespace

bool JsonObjectMembers(std::string_view json, std::vector<std::pair<std::string, std::optional<std::string>>>* out) {
  out->clear();
  JsonReader r{json};
  auto fail = [&] {
    out->clear();
    return false;
  };
  if (!r.Eat('{')) return fail();
  if (!r.Eat('}')) {
    do {
      std::string name;
      r.Blanks();
      if (!r.String(&name) || !r.Eat(':')) return fail();
      r.Blanks();
      size_t start = r.pos;
      std::optional<std::string> value;
      if (start < json.size() && json[start] == '"') {
        std::string s;
        if (!r.String(&s)) return fail();
        value = std::move(s);
      } else {
        if (!r.Value(1)) return fail();
        std::string_view raw = json.substr(start, r.pos - start);
        if (raw != "null") value = std::string(raw);
      }
      out->emplace_back(std::move(name), std::move(value));
    } while (r.Eat(','));
    if (!r.Eat('}')) return fail();
  }
  r.Blanks();
  if (r.pos != json.size()) return fail();
  return true;
}

}  // namespace larder::cache
