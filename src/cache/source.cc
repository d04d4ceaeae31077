#include "cache/source.h"

#include <libpq-fe.h>
#include <sqlite3.h>

#include <cctype>
#include <map>

#include "common/clock.h"
#include "common/log.h"
#include "common/strings.h"
#include "keyspace/memory_budget.h"

namespace larder::cache {

Source::Source(SourceSpec spec, int connections) : spec_(std::move(spec)), connections_(connections) {}

Source::~Source() { Stop(); }

void Source::Start() {
  for (int i = 0; i < connections_; ++i) threads_.emplace_back([this] { Worker(); });
  prober_ = std::thread([this] { Probe(); });
}

void Source::Stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  probe_cv_.notify_all();
  for (auto& t : threads_) t.join();
  threads_.clear();
  if (prober_.joinable()) prober_.join();
}

size_t Source::queued() const {
  std::lock_guard lock(mu_);
  return jobs_.size();
}

void Source::Push(Job job) {
  {
    std::lock_guard lock(mu_);
    jobs_.push_back(std::move(job));
  }
  cv_.notify_one();
}

void Source::Query(std::string sql, Params params, int64_t timeout_ms, std::function<void(QueryResult)> done) {
  Job job;
  job.sql = std::move(sql);
  job.params = std::move(params);
  job.timeout_ms = timeout_ms;
  job.done = std::move(done);
  Push(std::move(job));
}

void Source::Exec(std::vector<Statement> stmts, int64_t timeout_ms, std::function<void(ExecResult)> done) {
  Job job;
  job.timeout_ms = timeout_ms;
  job.stmts = std::move(stmts);
  job.exec_done = std::move(done);
  Push(std::move(job));
}

void Source::Stream(std::string sql, size_t batch, BatchFn on_batch, std::function<void(std::string)> done) {
  Job job;
  job.sql = std::move(sql);
  job.batch = batch;
  job.on_batch = std::move(on_batch);
  job.stream_done = std::move(done);
  Push(std::move(job));
}

void Source::QueryMany(std::string sql, std::string list, std::vector<std::string> values, int64_t timeout_ms,
                       std::function<void(ManyResult)> done) {
  Job job;
  job.sql = std::move(sql);
  job.list = std::move(list);
  job.list_values = std::move(values);
  job.timeout_ms = timeout_ms;
  job.many_done = std::move(done);
  Push(std::move(job));
}

void Source::NoteReached(bool reached, const std::string& error) {
  // Up and staying up (every answered query): nothing to reset. The
  // breaker's state only changes under the lock when the circuit opens.
  if (reached && up_.load(std::memory_order_acquire)) return;
  std::lock_guard lock(health_mu_);
  int64_t now = MonotonicUs();
  if (reached) {
    backoff_us_ = 0;
    next_try_us_ = 0;
  } else {
    last_error_ = OneLine(error);
    // The first failure opens the circuit: the next attempt in 100 ms.
    if (backoff_us_ == 0) backoff_us_ = 100'000;
    next_try_us_ = std::max(next_try_us_, now + backoff_us_);
  }
  if (reached != up_.exchange(reached)) {
    if (reached) LOG_NOTICE("Cache source '{}' is reachable again", spec_.name);
    else LOG_WARNING("Cache source '{}' is down: {}", spec_.name, last_error_);
  }
}

bool Source::MayConnect(std::string* why) {
  if (up_.load()) return true;
  std::lock_guard lock(health_mu_);
  int64_t now = MonotonicUs();
  if (now < next_try_us_) {
    *why = "source is down (" + last_error_ + ")";
    return false;
  }
  // This attempt is the one of this backoff step; the next waits longer.
  backoff_us_ = std::min<int64_t>(std::max<int64_t>(backoff_us_, 100'000) * 2, 1'000'000);
  next_try_us_ = now + backoff_us_;
  return true;
}

std::unique_ptr<Source::Conn> Source::TryConnect(std::string* err) {
  connects_.fetch_add(1, std::memory_order_relaxed);
  auto c = Connect(err);
  if (!c) *err = "connection failed: " + OneLine(*err);
  NoteReached(c != nullptr, *err);
  return c;
}

void Source::Worker() {
  std::unique_ptr<Conn> conn;
  for (;;) {
    // Rows built here are freed on the shards: this thread's allocations
    // count in used_memory too.
    MemoryBudget::PublishHelperThread();
    Job job;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
      if (stopping_) return;
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    RunJob(job, conn);
  }
}

void Source::RunJob(Job& job, std::unique_ptr<Conn>& conn) {
  int64_t t0 = MonotonicUs();
  // A connection the server closed since its last use (a restart) fails
  // before anything ran: the job goes once more, on a new connection.
  for (int attempt = 0;; ++attempt) {
    bool fresh = !conn;
    std::string why;
    if (!conn && MayConnect(&why)) conn = TryConnect(&why);
    bool retry = !fresh && attempt == 0;
    bool lost = false;
    std::string error;
    // A result (QueryResult, ExecResult, ManyResult) goes to its callback,
    // unless the connection was lost and the job goes again.
    auto deliver = [&](auto result, bool failed, auto& done) {
      lost = result.lost;
      if (lost && retry) return;
      result.micros = MonotonicUs() - t0;
      error = result.error;
      if (conn && !lost) NoteReached(true, "");
      if (failed) ++errors_;
      done(std::move(result));
    };
    if (job.exec_done) {
      ExecResult e;
      e.transient = true;
      e.error = why;
      if (conn) {
        e = conn->RunTransaction(job.stmts, job.timeout_ms);
        e.error = OneLine(e.error);
        queries_ += job.stmts.size();
      }
      bool failed = !e.ok;
      deliver(std::move(e), failed, job.exec_done);
    } else if (job.batch) {
      std::string err = why;
      if (conn) err = OneLine(conn->RunStream(job.sql, job.batch, job.on_batch, &lost));
      if (conn && !lost) NoteReached(true, "");
      job.stream_done(err);  // rows may have gone out: not sent again
      error = err;
      retry = false;
    } else if (job.many_done) {
      ManyResult m;
      m.error = why;
      if (conn) {
        m = conn->RunMany(job.sql, job.list, job.list_values, job.timeout_ms);
        m.error = OneLine(m.error);
        ++queries_;
      }
      bool failed = !m.ok;
      deliver(std::move(m), failed, job.many_done);
    } else {
      QueryResult r;
      r.status = QueryResult::kError;
      r.error = why;
      if (conn) {
        r = conn->Run(job.sql, job.params, job.timeout_ms);
        r.error = OneLine(r.error);
        ++queries_;
      }
      bool failed = r.status == QueryResult::kError;
      deliver(std::move(r), failed, job.done);
    }
    if (lost) {
      conn.reset();
      if (retry) {
        retries_.fetch_add(1, std::memory_order_relaxed);
        continue;
      }
      NoteReached(false, error);
    }
    return;
  }
}

void Source::Probe() {
  std::unique_ptr<Conn> conn;
  int64_t next_us = MonotonicUs() + kProbeIntervalMs * 1000;
  for (;;) {
    {
      std::unique_lock lock(mu_);
      // Wakes often enough to follow the breaker's backoff while down.
      probe_cv_.wait_for(lock, std::chrono::milliseconds(50), [this] { return stopping_; });
      if (stopping_) return;
    }
    MemoryBudget::PublishHelperThread();
    int64_t now = MonotonicUs();
    std::string why;
    if (up_.load()) {
      if (now < next_us) continue;
    } else if (!MayConnect(&why)) {
      continue;
    }
    next_us = now + kProbeIntervalMs * 1000;
    if (!conn) conn = TryConnect(&why);
    if (!conn) continue;  // TryConnect noted it down
    std::string err = conn->Ping();
    if (err.empty()) {
      NoteReached(true, "");
      if (!ProbeKeepsConnection()) conn.reset();
    } else {
      conn.reset();
      NoteReached(false, err);
    }
  }
}

PGconn* ConnectPostgres(const std::string& uri, std::string* err) {
  PGconn* c = PQconnectdb(uri.c_str());
  if (PQstatus(c) != CONNECTION_OK) {
    *err = PQerrorMessage(c);
    while (!err->empty() && (err->back() == '\n' || err->back() == ' ')) err->pop_back();
    PQfinish(c);
    return nullptr;
  }
  // Invalidation triggers skip changes made by Larder itself (see
  // examples/postgres/invalidate.sql), so its own writes do not come back.
  PQclear(PQexec(c, "SET application_name = 'larder'"));
  return c;
}

namespace {

// ---- SQLite ----

ColType SqliteType(sqlite3_stmt* st, int i) {
  switch (sqlite3_column_type(st, i)) {
    case SQLITE_INTEGER: return ColType::kInteger;
    case SQLITE_FLOAT: return ColType::kReal;
    default: return ColType::kText;
  }
}

// Column i of the current row: its text (nullopt for NULL) and type.
std::optional<std::string> SqliteValue(sqlite3_stmt* st, int i) {
  if (sqlite3_column_type(st, i) == SQLITE_NULL) return std::nullopt;
  const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(st, i));
  return std::string(text ? text : "", static_cast<size_t>(sqlite3_column_bytes(st, i)));
}

std::shared_ptr<std::vector<std::string>> SqliteColumns(sqlite3_stmt* st) {
  auto cols = std::make_shared<std::vector<std::string>>();
  for (int i = 0; i < sqlite3_column_count(st); ++i) cols->emplace_back(sqlite3_column_name(st, i));
  return cols;
}

// The current row, appended to `b` (values and types).
void AppendSqliteRow(sqlite3_stmt* st, RowBatch* b) {
  int n = static_cast<int>(b->columns->size());
  b->rows.emplace_back();
  b->types.emplace_back();
  for (int i = 0; i < n; ++i) {
    b->types.back().push_back(SqliteType(st, i));
    b->rows.back().push_back(SqliteValue(st, i));
  }
}

class SqliteConn : public Source::Conn {
 public:
  explicit SqliteConn(sqlite3* db) : db_(db) {}
  ~SqliteConn() override {
    for (auto& [sql, st] : stmts_) sqlite3_finalize(st);
    sqlite3_close(db_);
  }

  QueryResult Run(const std::string& sql, const Params& params, int64_t timeout_ms) override {
    QueryResult r;
    sqlite3_stmt* st = Prepare(sql, Mode::kRead, &r);
    if (!st) return r;
    for (const auto& [name, value] : params) {
      int idx = sqlite3_bind_parameter_index(st, (":" + name).c_str());
      if (idx > 0) sqlite3_bind_text(st, idx, value.data(), static_cast<int>(value.size()), SQLITE_TRANSIENT);
    }
    deadline_us_ = MonotonicUs() + timeout_ms * 1000;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
      r.status = QueryResult::kRow;
      int n = sqlite3_column_count(st);
      for (int i = 0; i < n; ++i) {
        r.columns.emplace_back(sqlite3_column_name(st, i));
        r.types.push_back(SqliteType(st, i));
        r.values.push_back(SqliteValue(st, i));
      }
    } else if (rc == SQLITE_DONE) {
      r.status = QueryResult::kNoRow;
    } else {
      r.status = QueryResult::kError;
      r.error = rc == SQLITE_INTERRUPT ? "query timed out" : sqlite3_errmsg(db_);
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return r;
  }

  std::string RunStream(const std::string& sql, size_t batch, const BatchFn& on_batch, bool*) override {
    QueryResult r;
    sqlite3_stmt* st = Prepare(sql, Mode::kRead, &r);
    if (!st) return r.error;
    deadline_us_ = INT64_MAX;
    RowBatch b;
    auto cols = SqliteColumns(st);
    b.columns = cols;
    std::string err;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
      AppendSqliteRow(st, &b);
      if (b.rows.size() >= batch) {
        if (!on_batch(std::move(b))) break;
        b = RowBatch{cols, {}, {}};
      }
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) err = sqlite3_errmsg(db_);
    else if (!b.rows.empty()) on_batch(std::move(b));
    sqlite3_reset(st);
    return err;
  }

  ExecResult RunTransaction(const std::vector<Statement>& stmts, int64_t timeout_ms) override {
    ExecResult e;
    deadline_us_ = MonotonicUs() + timeout_ms * 1000;
    auto fail = [&](int rc) {
      e.error = rc == SQLITE_INTERRUPT ? "query timed out" : sqlite3_errmsg(db_);
      int primary = rc & 0xff;
      e.transient = primary == SQLITE_BUSY || primary == SQLITE_LOCKED || primary == SQLITE_IOERR ||
                    primary == SQLITE_CANTOPEN || primary == SQLITE_FULL || primary == SQLITE_INTERRUPT ||
                    primary == SQLITE_PROTOCOL;
      sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
      return e;
    };
    mode_ = Mode::kWrite;  // the authorizer lets BEGIN and the declared statements through
    int rc = sqlite3_exec(db_, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr);
    if (rc != SQLITE_OK) return fail(rc);
    for (const auto& stmt : stmts) {
      QueryResult r;
      sqlite3_stmt* st = Prepare(stmt.sql, Mode::kWrite, &r);
      if (!st) {
        e.error = r.error;
        sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
        return e;
      }
      for (const auto& [name, value] : stmt.params) {
        int idx = sqlite3_bind_parameter_index(st, (":" + name).c_str());
        if (idx <= 0) continue;
        if (value) sqlite3_bind_text(st, idx, value->data(), static_cast<int>(value->size()), SQLITE_TRANSIENT);
        else sqlite3_bind_null(st, idx);
      }
      rc = sqlite3_step(st);
      sqlite3_reset(st);
      sqlite3_clear_bindings(st);
      if (rc != SQLITE_DONE && rc != SQLITE_ROW) return fail(rc);
    }
    rc = sqlite3_exec(db_, "COMMIT", nullptr, nullptr, nullptr);
    if (rc != SQLITE_OK) return fail(rc);
    e.ok = true;
    return e;
  }

  ManyResult RunMany(const std::string& sql, const std::string& list, const std::vector<std::string>& values,
                     int64_t timeout_ms) override {
    ManyResult m;
    // `IN (:list)` becomes `IN (?1, ..., ?N)`, N rounded up to a power of
    // two (the last value repeated) so that few shapes are ever prepared.
    size_t n = 1;
    while (n < values.size()) n *= 2;
    QueryResult pr;
    sqlite3_stmt* st = Prepare(ExpandListParameter(sql, list, n), Mode::kRead, &pr);
    if (!st) {
      m.error = pr.error;
      return m;
    }
    for (size_t i = 0; i < n; ++i) {
      const std::string& v = values.empty() ? std::string() : values[std::min(i, values.size() - 1)];
      sqlite3_bind_text(st, static_cast<int>(i + 1), v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    }
    deadline_us_ = MonotonicUs() + timeout_ms * 1000;
    m.rows.columns = SqliteColumns(st);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) AppendSqliteRow(st, &m.rows);
    if (rc == SQLITE_DONE) m.ok = true;
    else m.error = rc == SQLITE_INTERRUPT ? "query timed out" : sqlite3_errmsg(db_);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return m;
  }

  std::string Ping() override {
    mode_ = Mode::kRead;
    deadline_us_ = MonotonicUs() + 5'000'000;
    char* msg = nullptr;
    if (sqlite3_exec(db_, "SELECT count(*) FROM sqlite_master", nullptr, nullptr, &msg) == SQLITE_OK) return "";
    std::string err = msg ? msg : sqlite3_errmsg(db_);
    sqlite3_free(msg);
    return err;
  }

  // Cancels a statement that runs past its deadline.
  static int Progress(void* self) { return MonotonicUs() > static_cast<SqliteConn*>(self)->deadline_us_ ? 1 : 0; }
  void InstallTimeout() { sqlite3_progress_handler(db_, 1000, &SqliteConn::Progress, this); }
  void InstallAuthorizer() { sqlite3_set_authorizer(db_, &SqliteConn::Authorize, this); }

 private:
  // What a statement may do. A load or a warming query (kRead) may only
  // read: no write, no ATTACH, no PRAGMA, no VACUUM, no transaction
  // control. A rule's declared store/delete statements (kWrite) may write
  // the source's database, but never attach another file.
  enum class Mode { kRead, kWrite };
  static int Authorize(void* self, int action, const char*, const char*, const char*, const char*) {
    switch (action) {
      case SQLITE_SELECT:
      case SQLITE_READ:
      case SQLITE_FUNCTION:
      case SQLITE_RECURSIVE:
        return SQLITE_OK;
      case SQLITE_ATTACH:
      case SQLITE_DETACH:
      case SQLITE_PRAGMA:
        return SQLITE_DENY;
      default:
        return static_cast<SqliteConn*>(self)->mode_ == Mode::kWrite ? SQLITE_OK : SQLITE_DENY;
    }
  }

  sqlite3_stmt* Prepare(const std::string& sql, Mode mode, QueryResult* r) {
    mode_ = mode;
    // A statement prepared for one mode is never reused for the other.
    std::string key = (mode == Mode::kRead ? "r" : "w") + sql;
    auto it = stmts_.find(key);
    if (it != stmts_.end()) return it->second;
    sqlite3_stmt* st = nullptr;
    const char* tail = nullptr;
    auto refuse = [&](std::string why) -> sqlite3_stmt* {
      if (st) sqlite3_finalize(st);
      r->status = QueryResult::kError;
      r->error = std::move(why);
      return nullptr;
    };
    if (sqlite3_prepare_v2(db_, sql.c_str(), static_cast<int>(sql.size()), &st, &tail) != SQLITE_OK)
      return refuse(sqlite3_errmsg(db_));
    // One statement: nothing may follow it but blanks and semicolons.
    for (const char* p = tail; p && *p; ++p)
      if (!std::isspace(static_cast<unsigned char>(*p)) && *p != ';')
        return refuse("a cache rule's SQL must be a single statement");
    if (!st) return refuse("a cache rule's SQL must be a statement");
    if (mode == Mode::kRead && !sqlite3_stmt_readonly(st)) return refuse("a load must be a read-only statement");
    stmts_.emplace(std::move(key), st);
    return st;
  }

  sqlite3* db_;
  std::map<std::string, sqlite3_stmt*> stmts_;
  int64_t deadline_us_ = 0;
  Mode mode_ = Mode::kRead;
};

class SqliteSource : public Source {
 public:
  using Source::Source;

 protected:
  bool ProbeKeepsConnection() const override { return false; }
  std::unique_ptr<Conn> Connect(std::string* err) override {
    sqlite3* db = nullptr;
    int mode = spec_.read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE;
    int rc = sqlite3_open_v2(spec_.sqlite_path().c_str(), &db, mode | SQLITE_OPEN_NOMUTEX, nullptr);
    if (rc != SQLITE_OK) {
      *err = "cannot open " + spec_.sqlite_path() + ": " + (db ? sqlite3_errmsg(db) : "out of memory");
      sqlite3_close(db);
      return nullptr;
    }
    sqlite3_busy_timeout(db, 5000);
    sqlite3_extended_result_codes(db, 1);
    auto c = std::make_unique<SqliteConn>(db);
    c->InstallTimeout();
    c->InstallAuthorizer();
    return c;
  }
};

// ---- PostgreSQL ----

// PostgreSQL's type of column i (pg_type OIDs: int2/int4/int8/oid,
// float4/float8, bool, json/jsonb); numeric stays text, so nothing is lost.
ColType PgType(const PGresult* res, int i) {
  switch (PQftype(res, i)) {
    case 20: case 21: case 23: case 26: return ColType::kInteger;
    case 700: case 701: return ColType::kReal;
    case 16: return ColType::kBool;
    case 114: case 3802: return ColType::kJson;
    default: return ColType::kText;
  }
}

// Row `row` of `res`: values (nullopt for NULL) and their types.
void PgRow(const PGresult* res, int row, std::vector<std::optional<std::string>>* values,
           std::vector<ColType>* types) {
  int n = PQnfields(res);
  for (int i = 0; i < n; ++i) {
    types->push_back(PgType(res, i));
    if (PQgetisnull(res, row, i)) values->emplace_back(std::nullopt);
    else values->emplace_back(std::string(PQgetvalue(res, row, i), static_cast<size_t>(PQgetlength(res, row, i))));
  }
}

// A text array literal ({"a","b"}) holding `values`.
std::string PgArrayLiteral(const std::vector<std::string>& values) {
  std::string out = "{";
  for (size_t i = 0; i < values.size(); ++i) {
    if (i) out.push_back(',');
    out.push_back('"');
    for (char c : values[i]) {
      if (c == '"' || c == '\\') out.push_back('\\');
      out.push_back(c);
    }
    out.push_back('"');
  }
  out.push_back('}');
  return out;
}

class PgConn : public Source::Conn {
 public:
  explicit PgConn(PGconn* c) : c_(c) {}
  ~PgConn() override { PQfinish(c_); }

  QueryResult Run(const std::string& sql, const Params& params, int64_t timeout_ms) override {
    QueryResult r;
    std::vector<std::string> names;
    std::vector<const char*> values;
    for (const auto& p : params) {
      names.push_back(p.first);
      values.push_back(p.second.c_str());
    }
    PGresult* res = nullptr;
    if (!Begin(timeout_ms, &r.error, &r.lost) ||
        !Execute(SqlToNumbered(sql, names), values, &res, &r.error, &r.lost)) {
      r.status = QueryResult::kError;
      return r;
    }
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) > 0) {
      r.status = QueryResult::kRow;
      for (int i = 0; i < PQnfields(res); ++i) r.columns.emplace_back(PQfname(res, i));
      PgRow(res, 0, &r.values, &r.types);
    } else {
      r.status = QueryResult::kNoRow;
    }
    PQclear(res);
    return r;
  }

  ManyResult RunMany(const std::string& sql, const std::string& list, const std::vector<std::string>& values,
                     int64_t timeout_ms) override {
    ManyResult m;
    std::string array = PgArrayLiteral(values);
    std::vector<const char*> bound{array.c_str()};
    PGresult* res = nullptr;
    if (!Begin(timeout_ms, &m.error, &m.lost) || !Execute(SqlToNumbered(sql, {list}), bound, &res, &m.error, &m.lost))
      return m;
    auto cols = std::make_shared<std::vector<std::string>>();
    for (int i = 0; i < PQnfields(res); ++i) cols->emplace_back(PQfname(res, i));
    m.rows.columns = cols;
    for (int row = 0; row < PQntuples(res); ++row) {
      m.rows.rows.emplace_back();
      m.rows.types.emplace_back();
      PgRow(res, row, &m.rows.rows.back(), &m.rows.types.back());
    }
    PQclear(res);
    m.ok = true;
    return m;
  }

  std::string Ping() override {
    PGresult* res = PQexec(c_, "SELECT 1");
    bool ok = PQresultStatus(res) == PGRES_TUPLES_OK;
    PQclear(res);
    if (ok && PQstatus(c_) == CONNECTION_OK) return "";
    return std::string("connection lost: ") + PQerrorMessage(c_);
  }

  std::string RunStream(const std::string& sql, size_t batch, const BatchFn& on_batch, bool* lost) override {
    std::string err;
    if (!SetTimeout(0, &err, lost)) return err;
    // As a load: one statement (PQsendQueryParams), in a read-only transaction.
    if (!Command("BEGIN READ ONLY", &err, lost)) return err;
    if (!PQsendQueryParams(c_, sql.c_str(), 0, nullptr, nullptr, nullptr, nullptr, 0) || !PQsetSingleRowMode(c_)) {
      std::string e = PQerrorMessage(c_);
      PQclear(PQexec(c_, "ROLLBACK"));
      return e;
    }
    RowBatch b;
    std::shared_ptr<std::vector<std::string>> cols;
    bool stop = false;
    while (PGresult* res = PQgetResult(c_)) {
      ExecStatusType st = PQresultStatus(res);
      if (st == PGRES_SINGLE_TUPLE && !stop) {
        if (!cols) {
          cols = std::make_shared<std::vector<std::string>>();
          for (int i = 0; i < PQnfields(res); ++i) cols->emplace_back(PQfname(res, i));
          b.columns = cols;
        }
        b.rows.emplace_back();
        b.types.emplace_back();
        PgRow(res, 0, &b.rows.back(), &b.types.back());
        if (b.rows.size() >= batch) {
          stop = !on_batch(std::move(b));
          b = RowBatch{cols, {}, {}};
        }
      } else if (st != PGRES_TUPLES_OK && st != PGRES_SINGLE_TUPLE && err.empty()) {
        err = PQresultErrorMessage(res);
      }
      PQclear(res);
    }
    if (err.empty() && !stop && !b.rows.empty()) on_batch(std::move(b));
    if (PQstatus(c_) != CONNECTION_OK) return std::string("connection lost: ") + PQerrorMessage(c_);
    PQclear(PQexec(c_, "COMMIT"));
    return err;
  }

  ExecResult RunTransaction(const std::vector<Statement>& stmts, int64_t timeout_ms) override {
    ExecResult e;
    bool committing = false;
    auto lost = [&] {
      e.transient = true;
      // Before COMMIT went out the server rolled back what it had: the
      // transaction may run again. A COMMIT that lost its answer may have
      // committed: not sent again here (write-behind retries such batches).
      e.lost = !committing;
      e.error = std::string("connection lost: ") + PQerrorMessage(c_);
      return e;
    };
    if (PQstatus(c_) != CONNECTION_OK) return lost();
    if (!SetTimeout(timeout_ms, &e.error, &e.lost)) {
      e.transient = true;
      return e;
    }
    // Returns false (with `e` filled) when the command failed.
    auto check = [&](PGresult* res) {
      ExecStatusType st = PQresultStatus(res);
      bool good = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
      if (!good) {
        if (PQstatus(c_) != CONNECTION_OK) {
          lost();
        } else {
          const char* state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
          std::string code = state ? state : "";
          // 08 connection, 40 serialization/deadlock, 53 resources, 57
          // operator intervention (incl. statement timeout), 58 system.
          std::string cls = code.substr(0, 2);
          e.transient = cls == "08" || cls == "40" || cls == "53" || cls == "57" || cls == "58";
          e.error = PQresultErrorMessage(res);
        }
      }
      PQclear(res);
      return good;
    };
    if (!check(PQexec(c_, "BEGIN"))) return e;
    for (const auto& stmt : stmts) {
      std::vector<std::string> names = SqlParameters(stmt.sql);
      std::vector<const char*> values(names.size(), nullptr);
      for (size_t i = 0; i < names.size(); ++i)
        for (const auto& [name, value] : stmt.params)
          if (name == names[i] && value) values[i] = value->c_str();
      std::string numbered = SqlToNumbered(stmt.sql, names);
      if (!check(PQexecParams(c_, numbered.c_str(), static_cast<int>(values.size()), nullptr, values.data(), nullptr,
                              nullptr, 0))) {
        if (PQstatus(c_) == CONNECTION_OK) PQclear(PQexec(c_, "ROLLBACK"));
        return e;
      }
    }
    committing = true;
    if (!check(PQexec(c_, "COMMIT"))) return e;
    e.ok = true;
    return e;
  }

 private:
  // Runs a command without parameters; false with the error (and `lost`
  // when the connection turned out closed).
  bool Command(const char* sql, std::string* err, bool* lost) {
    PGresult* res = PQexec(c_, sql);
    ExecStatusType st = PQresultStatus(res);
    bool ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
    if (!ok) {
      *lost = PQstatus(c_) != CONNECTION_OK;
      *err = *lost ? std::string("connection lost: ") + PQerrorMessage(c_) : std::string(PQresultErrorMessage(res));
    }
    PQclear(res);
    return ok;
  }

  bool SetTimeout(int64_t timeout_ms, std::string* err, bool* lost) {
    if (PQstatus(c_) != CONNECTION_OK) {
      *lost = true;
      *err = std::string("connection lost: ") + PQerrorMessage(c_);
      return false;
    }
    if (timeout_ms == timeout_ms_) return true;
    std::string set = "SET statement_timeout = " + std::to_string(timeout_ms);
    if (!Command(set.c_str(), err, lost)) return false;
    timeout_ms_ = timeout_ms;
    return true;
  }

  // A load runs in a transaction of its own that cannot write, whatever
  // the statement says (one statement: the extended protocol takes no more).
  bool Begin(int64_t timeout_ms, std::string* err, bool* lost) {
    return SetTimeout(timeout_ms, err, lost) && Command("BEGIN READ ONLY", err, lost);
  }

  // The statement with its parameters, then COMMIT; `*res` holds its rows.
  bool Execute(const std::string& numbered, const std::vector<const char*>& values, PGresult** res, std::string* err,
               bool* lost) {
    *res = PQexecParams(c_, numbered.c_str(), static_cast<int>(values.size()), nullptr, values.data(), nullptr,
                        nullptr, 0);
    ExecStatusType st = PQresultStatus(*res);
    if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
      std::string ignored;
      bool ignored_lost = false;
      Command("COMMIT", &ignored, &ignored_lost);  // the rows are in hand either way
      return true;
    }
    *lost = PQstatus(c_) != CONNECTION_OK;
    *err = *lost ? std::string("connection lost: ") + PQerrorMessage(c_) : std::string(PQresultErrorMessage(*res));
    PQclear(*res);
    *res = nullptr;
    if (!*lost) PQclear(PQexec(c_, "ROLLBACK"));
    return false;
  }

  PGconn* c_;
  int64_t timeout_ms_ = -1;
};

class PgSource : public Source {
 public:
  using Source::Source;

 protected:
  std::unique_ptr<Conn> Connect(std::string* err) override {
    PGconn* c = ConnectPostgres(spec_.uri, err);
    if (!c) return nullptr;
    if (spec_.read_only) PQclear(PQexec(c, "SET default_transaction_read_only = on"));
    return std::make_unique<PgConn>(c);
  }
};

}  // namespace

std::unique_ptr<Source> MakeSource(const SourceSpec& spec, int connections) {
  if (spec.is_sqlite()) return std::make_unique<SqliteSource>(spec, connections);
  return std::make_unique<PgSource>(spec, connections);
}

}  // namespace larder::cache
