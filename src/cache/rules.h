// Cache rules: which keys come from which database, and how.
//
//   cache-source main postgresql://larder@127.0.0.1:5432/shop
//   cache-source demo sqlite:examples/shop/shop.db
//   cache-rule user:<id> source main as hash ttl 10m jitter 10 negative-ttl 60
//       grace 5m refresh-ahead yes stale-on-error yes load-timeout 2s
//       max-loads 64 load "SELECT name, email, plan FROM users WHERE id = :id"
//
// A pattern is literal text with <name> placeholders; a placeholder matches
// one or more characters other than ':'. A key belongs to the first rule
// whose pattern matches it. The statement names placeholders as :name; they
// are bound as parameters, never pasted into the SQL.
//
// Parsing only: no database access here (see cache/source.h).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace larder::cache {

// "250ms", "10s", "5m", "2h", or a bare number of seconds. False on junk.
bool ParseDuration(std::string_view s, int64_t* ms);
std::string FormatDuration(int64_t ms);

class Pattern {
 public:
  // False (with `err`) for an empty placeholder name, a stray '<' or '>', or
  // two placeholders with no literal text between them.
  static bool Parse(std::string_view text, Pattern* out, std::string* err);
  // The placeholders' values when `key` matches.
  bool Match(std::string_view key, std::vector<std::pair<std::string, std::string>>* params) const;
  const std::string& text() const { return text_; }
  // The key for these placeholder values (false if one is missing, empty or
  // holds a ':', which the pattern could not match).
  bool Format(const std::vector<std::pair<std::string, std::string>>& values, std::string* key) const;
  std::vector<std::string> names() const;

 private:
  struct Part {
    bool placeholder;
    std::string text;  // literal text, or the placeholder's name
  };
  bool MatchFrom(size_t part, std::string_view rest, std::vector<std::pair<std::string, std::string>>* params) const;
  std::string text_;
  std::vector<Part> parts_;
};

enum class ValueKind { kString, kHash, kJson };

struct Rule {
  Pattern pattern;
  std::string source;
  ValueKind kind = ValueKind::kString;
  int64_t ttl_ms = 300'000;
  int jitter_pct = 0;
  int64_t negative_ttl_ms = 60'000;
  int64_t grace_ms = 0;
  bool refresh_ahead = false;
  bool stale_on_error = true;
  int64_t load_timeout_ms = 5'000;
  int max_loads = 16;
  std::string load_sql;
  // The :names the statement uses, in order of first use.
  std::vector<std::string> sql_params;
  // Batched loads: misses of different keys arriving within
  // `load_many_window_us` of each other (at most `load_many_max`) are
  // loaded by one statement. It has one parameter, the list of the
  // pattern's (single) placeholder values, and returns that placeholder as
  // a column beside the value columns; a key without a row has none.
  std::string load_many_sql;
  std::string load_many_param;  // the statement's one :name
  int load_many_max = 100;
  int64_t load_many_window_us = 200;
  // After a gap in the source's LISTEN connection: drop the rule's keys
  // (the default), or with `listen-gap revalidate` and a grace period,
  // keep them as stale (served inside grace while each reloads).
  bool listen_gap_revalidate = false;
  // Write path: with `write through`, writes to a key run `store` (or
  // `delete`) in the database first, then change the cache. With `write
  // behind`, the cache changes at once, the change is journaled before the
  // reply, and a flusher writes the last value of each key in batches of
  // `write-batch`, at the latest `write-delay` after the change.
  bool write_through = false;
  bool write_behind = false;
  int64_t write_delay_ms = 1'000;
  int write_batch = 500;
  std::string store_sql, delete_sql;
  // The store statement's :names that are not placeholders (:value, fields).
  std::vector<std::string> store_values;
  bool writes() const { return write_through || write_behind; }
  // Where every change of the rule's keys is announced (loaded, refreshed,
  // written, invalidated; docs/caching.md): a pub/sub channel and/or a
  // stream, each a JSON message {"event":..., "key":..., "db":...}. Empty:
  // none.
  std::string publish_channel, publish_stream;

  // The rule as a config line (without "cache-rule"), for CONFIG REWRITE and
  // CACHE RULES.
  std::string ToLine() const;
};

// Parses the words after "cache-rule". `err` says what is wrong.
bool ParseRule(const std::vector<std::string>& args, Rule* rule, std::string* err);
// The :name parameters of a statement, skipping quoted text and '::' casts.
std::vector<std::string> SqlParameters(std::string_view sql);
// The statement with :name replaced by $1, $2... in the order of `names`
// (PostgreSQL's placeholders).
std::string SqlToNumbered(std::string_view sql, const std::vector<std::string>& names);
// The statement with :name replaced by the list ?1, ?2, ..., ?n (SQLite's
// `IN (:name)` for a batched load).
std::string ExpandListParameter(std::string_view sql, std::string_view name, size_t n);

struct SourceSpec {
  std::string name;
  std::string uri;  // "postgresql://..." / "postgres://..." or "sqlite:path"
  // Declared `read-only`: no rule on it may write (SQLite opens the file
  // read-only; PostgreSQL sessions default to read-only transactions).
  bool read_only = false;
  bool is_sqlite() const { return uri.rfind("sqlite:", 0) == 0; }
  std::string sqlite_path() const { return uri.substr(7); }
  // The URI as it may be shown (CACHE SOURCES, logs): the password of a
  // postgresql:// URI (user:password@ or password=...) replaced by "***".
  std::string RedactedUri() const;
  // The words of its config line after the name.
  std::string ConfigWords() const;
};

// A rule may use the source: a rule that writes needs a source that is
// not read-only.
bool RuleFitsSource(const Rule& rule, const SourceSpec& source, std::string* err);

bool ParseSource(const std::vector<std::string>& args, SourceSpec* out, std::string* err);

}  // namespace larder::cache
