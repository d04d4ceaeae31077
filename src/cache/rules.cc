#include "cache/rules.h"

#include <algorithm>
#include <cctype>

#include "common/numbers.h"
#include "common/strings.h"

namespace larder::cache {

bool ParseDuration(std::string_view s, int64_t* ms) {
  int64_t mult = 1000;
  std::string_view num = s;
  if (s.size() > 2 && EqualsIgnoreCase(s.substr(s.size() - 2), "ms")) {
    mult = 1;
    num = s.substr(0, s.size() - 2);
  } else if (!s.empty() && std::isalpha(static_cast<unsigned char>(s.back()))) {
    switch (std::tolower(static_cast<unsigned char>(s.back()))) {
      case 's': mult = 1000; break;
      case 'm': mult = 60'000; break;
      case 'h': mult = 3'600'000; break;
      default: return false;
    }
    num = s.substr(0, s.size() - 1);
  }
  int64_t v;
  if (!ParseInt64(num, &v) || v < 0 || v > INT64_MAX / mult / 2) return false;
  *ms = v * mult;
  return true;
}

std::string FormatDuration(int64_t ms) {
  if (ms % 3'600'000 == 0 && ms) return std::to_string(ms / 3'600'000) + "h";
  if (ms % 60'000 == 0 && ms) return std::to_string(ms / 60'000) + "m";
  if (ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
  return std::to_string(ms) + "ms";
}

bool Pattern::Parse(std::string_view text, Pattern* out, std::string* err) {
  Pattern p;
  p.text_ = std::string(text);
  std::string lit;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '>') {
      *err = "'>' without '<' in pattern";
      return false;
    }
    if (c != '<') {
      lit.push_back(c);
      continue;
    }
    size_t close = text.find('>', i);
    if (close == std::string_view::npos) {
      *err = "'<' without '>' in pattern";
      return false;
    }
    std::string name(text.substr(i + 1, close - i - 1));
    if (name.empty() || !std::all_of(name.begin(), name.end(), [](char ch) {
          return std::isalnum(static_cast<unsigned char>(ch)) || ch == '_';
        })) {
      *err = "placeholder names are letters, digits and '_'";
      return false;
    }
    if (!lit.empty()) {
      p.parts_.push_back({false, lit});
      lit.clear();
    } else if (!p.parts_.empty() && p.parts_.back().placeholder) {
      *err = "two placeholders need literal text between them";
      return false;
    }
    for (const auto& part : p.parts_)
      if (part.placeholder && part.text == name) {
        *err = "placeholder <" + name + "> appears twice";
        return false;
      }
    p.parts_.push_back({true, name});
    i = close;
  }
  if (!lit.empty()) p.parts_.push_back({false, lit});
  if (p.parts_.empty()) {
    *err = "empty pattern";
    return false;
  }
  *out = std::move(p);
  return true;
}

bool Pattern::Format(const std::vector<std::pair<std::string, std::string>>& values, std::string* key) const {
  key->clear();
  for (const auto& p : parts_) {
    if (!p.placeholder) {
      *key += p.text;
      continue;
    }
    auto it = std::find_if(values.begin(), values.end(), [&](const auto& v) { return v.first == p.text; });
    if (it == values.end() || it->second.empty() || it->second.find(':') != std::string::npos) return false;
    *key += it->second;
  }
  return true;
}

std::vector<std::string> Pattern::names() const {
  std::vector<std::string> out;
  for (const auto& p : parts_)
    if (p.placeholder) out.push_back(p.text);
  return out;
}

bool Pattern::Match(std::string_view key, std::vector<std::pair<std::string, std::string>>* params) const {
  params->clear();
  return MatchFrom(0, key, params);
}

bool Pattern::MatchFrom(size_t i, std::string_view rest, std::vector<std::pair<std::string, std::string>>* params) const {
  if (i == parts_.size()) return rest.empty();
  const Part& part = parts_[i];
  if (!part.placeholder) {
    if (rest.substr(0, part.text.size()) != part.text) return false;
    return MatchFrom(i + 1, rest.substr(part.text.size()), params);
  }
  // One or more characters other than ':'; try the longest first.
  size_t max = 0;
  while (max < rest.size() && rest[max] != ':') ++max;
  for (size_t n = max; n >= 1; --n) {
    params->emplace_back(part.text, std::string(rest.substr(0, n)));
    if (MatchFrom(i + 1, rest.substr(n), params)) return true;
    params->pop_back();
  }
  return false;
}

std::vector<std::string> SqlParameters(std::string_view sql) {
  std::vector<std::string> out;
  for (size_t i = 0; i < sql.size(); ++i) {
    char c = sql[i];
    if (c == '\'' || c == '"') {  // skip quoted text ('' escapes stay inside)
      size_t j = i + 1;
      while (j < sql.size() && sql[j] != c) ++j;
      i = j;
      continue;
    }
    if (c != ':') continue;
    if (i + 1 < sql.size() && sql[i + 1] == ':') {  // a '::type' cast
      ++i;
      continue;
    }
    size_t j = i + 1;
    while (j < sql.size() && (std::isalnum(static_cast<unsigned char>(sql[j])) || sql[j] == '_')) ++j;
    if (j == i + 1) continue;
    std::string name(sql.substr(i + 1, j - i - 1));
    if (std::find(out.begin(), out.end(), name) == out.end()) out.push_back(name);
    i = j - 1;
  }
  return out;
}

std::string SqlToNumbered(std::string_view sql, const std::vector<std::string>& names) {
  std::string out;
  for (size_t i = 0; i < sql.size(); ++i) {
    char c = sql[i];
    if (c == '\'' || c == '"') {
      size_t j = i + 1;
      while (j < sql.size() && sql[j] != c) ++j;
      out.append(sql.substr(i, j - i + 1));
      i = j;
      continue;
    }
    if (c == ':' && i + 1 < sql.size() && sql[i + 1] == ':') {
      out += "::";
      ++i;
      continue;
    }
    if (c == ':') {
      size_t j = i + 1;
      while (j < sql.size() && (std::isalnum(static_cast<unsigned char>(sql[j])) || sql[j] == '_')) ++j;
      std::string name(sql.substr(i + 1, j - i - 1));
      auto it = std::find(names.begin(), names.end(), name);
      if (j > i + 1 && it != names.end()) {
        out += "$" + std::to_string(it - names.begin() + 1);
        i = j - 1;
        continue;
      }
    }
    out.push_back(c);
  }
  return out;
}

std::string ExpandListParameter(std::string_view sql, std::string_view name, size_t n) {
  std::string list;
  for (size_t i = 1; i <= n; ++i) {
    if (i > 1) list += ", ";
    list += "?" + std::to_string(i);
  }
  // Numbered as $1 first (quoted text and casts left alone), then spelled out.
  std::string numbered = SqlToNumbered(sql, {std::string(name)});
  std::string out;
  for (size_t i = 0; i < numbered.size(); ++i) {
    char c = numbered[i];
    if (c == '\'' || c == '"') {
      size_t j = i + 1;
      while (j < numbered.size() && numbered[j] != c) ++j;
      out.append(numbered, i, j - i + 1);
      i = j;
      continue;
    }
    if (c == '$' && i + 1 < numbered.size() && numbered[i + 1] == '1' &&
        (i + 2 == numbered.size() || !std::isdigit(static_cast<unsigned char>(numbered[i + 2])))) {
      out += list;
      ++i;
      continue;
    }
    out.push_back(c);
  }
  return out;
}

namespace {
bool ParseBool(std::string_view v, bool* out) {
  if (EqualsIgnoreCase(v, "yes")) *out = true;
  else if (EqualsIgnoreCase(v, "no")) *out = false;
  else return false;
  return true;
}
}  // namespace

bool ParseRule(const std::vector<std::string>& args, Rule* rule, std::string* err) {
  if (args.empty()) {
    *err = "cache-rule needs a pattern";
    return false;
  }
  Rule r;
  if (!Pattern::Parse(args[0], &r.pattern, err)) return false;
  bool have_source = false, have_load = false;
  for (size_t i = 1; i < args.size(); i += 2) {
    std::string opt = AsciiLower(args[i]);
    if (i + 1 >= args.size()) {
      *err = "option '" + args[i] + "' needs a value";
      return false;
    }
    const std::string& v = args[i + 1];
    auto bad = [&](const char* what) {
      *err = "invalid value '" + v + "' for '" + opt + "': " + what;
      return false;
    };
    int64_t n;
    if (opt == "source") {
      r.source = v;
      have_source = true;
    } else if (opt == "as") {
      if (EqualsIgnoreCase(v, "hash")) r.kind = ValueKind::kHash;
      else if (EqualsIgnoreCase(v, "string")) r.kind = ValueKind::kString;
      else if (EqualsIgnoreCase(v, "json")) r.kind = ValueKind::kJson;
      else return bad("expected hash, string or json");
    } else if (opt == "ttl") {
      if (!ParseDuration(v, &r.ttl_ms) || r.ttl_ms == 0) return bad("expected a duration above 0 (10s, 5m, 1h)");
    } else if (opt == "jitter") {
      if (!ParseInt64(v, &n) || n < 0 || n > 100) return bad("expected a percentage from 0 to 100");
      r.jitter_pct = static_cast<int>(n);
    } else if (opt == "negative-ttl") {
      if (!ParseDuration(v, &r.negative_ttl_ms)) return bad("expected a duration");
    } else if (opt == "grace") {
      if (!ParseDuration(v, &r.grace_ms)) return bad("expected a duration");
    } else if (opt == "refresh-ahead") {
      if (!ParseBool(v, &r.refresh_ahead)) return bad("expected yes or no");
    } else if (opt == "stale-on-error") {
      if (!ParseBool(v, &r.stale_on_error)) return bad("expected yes or no");
    } else if (opt == "load-timeout") {
      if (!ParseDuration(v, &r.load_timeout_ms) || r.load_timeout_ms == 0) return bad("expected a duration above 0");
    } else if (opt == "max-loads") {
      if (!ParseInt64(v, &n) || n < 1 || n > 100000) return bad("expected a number from 1 to 100000");
      r.max_loads = static_cast<int>(n);
    } else if (opt == "write") {
      r.write_through = EqualsIgnoreCase(v, "through");
      r.write_behind = EqualsIgnoreCase(v, "behind");
      if (!r.writes() && !EqualsIgnoreCase(v, "none")) return bad("expected through, behind or none");
    } else if (opt == "write-delay") {
      if (!ParseDuration(v, &r.write_delay_ms) || r.write_delay_ms > 3'600'000)
        return bad("expected a duration up to 1h");
    } else if (opt == "write-batch") {
      if (!ParseInt64(v, &n) || n < 1 || n > 100000) return bad("expected a number from 1 to 100000");
      r.write_batch = static_cast<int>(n);
    } else if (opt == "store") {
      r.store_sql = v;
    } else if (opt == "delete") {
      r.delete_sql = v;
    } else if (opt == "publish-channel") {
      r.publish_channel = v;
    } else if (opt == "publish-stream") {
      r.publish_stream = v;
    } else if (opt == "load") {
      r.load_sql = v;
      have_load = true;
    } else if (opt == "load-many") {
      r.load_many_sql = v;
    } else if (opt == "load-many-max") {
      if (!ParseInt64(v, &n) || n < 1 || n > 10000) return bad("expected a number from 1 to 10000");
      r.load_many_max = static_cast<int>(n);
    } else if (opt == "load-many-window") {
      // Microseconds ("300us"), or a duration.
      int64_t ms;
      if (v.size() > 2 && EqualsIgnoreCase(std::string_view(v).substr(v.size() - 2), "us") &&
          ParseInt64(std::string_view(v).substr(0, v.size() - 2), &n) && n >= 0 && n <= 1'000'000) {
        r.load_many_window_us = n;
      } else if (ParseDuration(v, &ms) && ms <= 1000) {
        r.load_many_window_us = ms * 1000;
      } else {
        return bad("expected a duration up to 1s (300us, 2ms)");
      }
    } else if (opt == "listen-gap") {
      if (EqualsIgnoreCase(v, "drop")) r.listen_gap_revalidate = false;
      else if (EqualsIgnoreCase(v, "revalidate")) r.listen_gap_revalidate = true;
      else return bad("expected drop or revalidate");
    } else {
      *err = "unknown option '" + args[i] + "'";
      return false;
    }
  }
  if (!have_source) {
    *err = "missing 'source'";
    return false;
  }
  if (!have_load || r.load_sql.empty()) {
    *err = "missing 'load' statement";
    return false;
  }
  if (r.writes() && r.store_sql.empty()) {
    *err = std::string("'write ") + (r.write_through ? "through" : "behind") + "' needs a 'store' statement";
    return false;
  }
  if ((!r.store_sql.empty() || !r.delete_sql.empty()) && !r.writes()) {
    *err = "'store' and 'delete' need 'write through' or 'write behind'";
    return false;
  }
  auto placeholders = r.pattern.names();
  for (const std::string* sql : {&r.store_sql, &r.delete_sql})
    for (const auto& p : SqlParameters(*sql)) {
      bool known = std::find(placeholders.begin(), placeholders.end(), p) != placeholders.end();
      if (sql == &r.delete_sql && !known) {
        *err = "the delete statement uses :" + p + " but the pattern has no <" + p + ">";
        return false;
      }
      if (sql == &r.store_sql && !known && r.kind == ValueKind::kString && p != "value") {
        *err = "the store statement of a string rule can use :value and the pattern's placeholders, not :" + p;
        return false;
      }
      if (sql == &r.store_sql && !known) r.store_values.push_back(p);
    }
  // A json rule's changes keep the whole value (:value) beside the members
  // its store statement names: a queued change is read back from it.
  if (r.kind == ValueKind::kJson && r.writes() &&
      std::find(r.store_values.begin(), r.store_values.end(), "value") == r.store_values.end())
    r.store_values.insert(r.store_values.begin(), "value");
  if (!r.load_many_sql.empty()) {
    auto params = SqlParameters(r.load_many_sql);
    if (placeholders.size() != 1) {
      *err = "load-many needs a pattern with exactly one placeholder";
      return false;
    }
    if (params.size() != 1) {
      *err = "the load-many statement takes exactly one parameter, the list of <" + placeholders[0] + "> values";
      return false;
    }
    r.load_many_param = params[0];
  }
  r.sql_params = SqlParameters(r.load_sql);
  auto names = r.pattern.names();
  for (const auto& p : r.sql_params)
    if (std::find(names.begin(), names.end(), p) == names.end()) {
      *err = "the load statement uses :" + p + " but the pattern has no <" + p + ">";
      return false;
    }
  *rule = std::move(r);
  return true;
}

std::string Rule::ToLine() const {
  static const char* kKinds[] = {"string", "hash", "json"};
  std::string out = QuoteConfigWord(pattern.text()) + " source " + QuoteConfigWord(source) + " as " +
                    kKinds[static_cast<int>(kind)] + " ttl " + FormatDuration(ttl_ms);
  out += " jitter " + std::to_string(jitter_pct);
  out += " negative-ttl " + FormatDuration(negative_ttl_ms);
  out += " grace " + FormatDuration(grace_ms);
  out += std::string(" refresh-ahead ") + (refresh_ahead ? "yes" : "no");
  out += std::string(" stale-on-error ") + (stale_on_error ? "yes" : "no");
  out += " load-timeout " + FormatDuration(load_timeout_ms);
  out += " max-loads " + std::to_string(max_loads);
  if (write_through) out += " write through";
  if (write_behind)
    out += " write behind write-delay " + FormatDuration(write_delay_ms) + " write-batch " + std::to_string(write_batch);
  if (writes()) out += " store " + QuoteConfigWord(store_sql);
  if (writes() && !delete_sql.empty()) out += " delete " + QuoteConfigWord(delete_sql);
  if (listen_gap_revalidate) out += " listen-gap revalidate";
  if (!load_many_sql.empty())
    out += " load-many " + QuoteConfigWord(load_many_sql) + " load-many-max " + std::to_string(load_many_max) +
           " load-many-window " + std::to_string(load_many_window_us) + "us";
  if (!publish_channel.empty()) out += " publish-channel " + QuoteConfigWord(publish_channel);
  if (!publish_stream.empty()) out += " publish-stream " + QuoteConfigWord(publish_stream);
  out += " load " + QuoteConfigWord(load_sql);
  return out;
}

bool ParseSource(const std::vector<std::string>& args, SourceSpec* out, std::string* err) {
  if (args.size() != 2 && !(args.size() == 3 && EqualsIgnoreCase(args[2], "read-only"))) {
    *err = "cache-source takes a name, a URI and optionally read-only";
    return false;
  }
  SourceSpec s{args[0], args[1]};
  s.read_only = args.size() == 3;
  bool pg = s.uri.rfind("postgresql://", 0) == 0 || s.uri.rfind("postgres://", 0) == 0;
  if (!pg && !s.is_sqlite()) {
    *err = "the URI must start with postgresql:// or sqlite:";
    return false;
  }
  if (s.is_sqlite() && s.sqlite_path().empty()) {
    *err = "sqlite: needs a file path";
    return false;
  }
  *out = std::move(s);
  return true;
}

std::string SourceSpec::RedactedUri() const {
  if (is_sqlite()) return uri;
  std::string out = uri;
  // postgresql://user:password@host/...
  size_t scheme = out.find("://");
  size_t at = out.find('@', scheme == std::string::npos ? 0 : scheme + 3);
  if (scheme != std::string::npos && at != std::string::npos) {
    size_t colon = out.find(':', scheme + 3);
    if (colon != std::string::npos && colon < at) out.replace(colon + 1, at - colon - 1, "***");
  }
  // ...?password=secret&...
  for (size_t p = out.find("password="); p != std::string::npos; p = out.find("password=", p + 1)) {
    size_t start = p + 9;
    size_t end = out.find('&', start);
    out.replace(start, (end == std::string::npos ? out.size() : end) - start, "***");
  }
  return out;
}

std::string SourceSpec::ConfigWords() const {
  return QuoteConfigWord(uri) + (read_only ? " read-only" : "");
}

bool RuleFitsSource(const Rule& rule, const SourceSpec& source, std::string* err) {
  if (rule.writes() && source.read_only) {
    *err = "cache source '" + source.name + "' is read-only: a rule on it cannot write through or behind";
    return false;
  }
  return true;
}

}  // namespace larder::cache
