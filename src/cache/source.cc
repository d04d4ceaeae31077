#include "cache/source.h"

#include <libpq-fe.h>
#include <sqlite3.h>

#include <cctype>
#include <map>

#include "common/clock.h"
#include "common/log.h"
#include "keyspace/memory_budget.h"

namespace larder::cache {

Source::Source(SourceSpec spec, int connections) : spec_(std::move(spec)), connections_(connections) {}

Source::~Source() { Stop(); }

void Source::Start() {
  for (int i = 0; i < connections_; ++i) threads_.emplace_back([this] { Worker(); });
}

void Source::Stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) t.join();
  threads_.clear();
}

size_t Source::queued() const {
  std::lock_guard lock(mu_);
  return jobs_.size();
}

void Source::Query(std::string sql, Params params, int64_t timeout_ms, std::function<void(QueryResult)> done) {
  {
    std::lock_guard lock(mu_);
    Job job;
    job.sql = std::move(sql);
    job.params = std::move(params);
    job.timeout_ms = timeout_ms;
    job.done = std::move(done);
    jobs_.push_back(std::move(job));
  }
  cv_.notify_one();
}

void Source::Exec(std::vector<Statement> stmts, int64_t timeout_ms, std::function<void(ExecResult)> done) {
  {
    std::lock_guard lock(mu_);
    Job job;
    job.timeout_ms = timeout_ms;
    job.stmts = std::move(stmts);
    job.exec_done = std::move(done);
    jobs_.push_back(std::move(job));
  }
  cv_.notify_one();
}

void Source::NoteReached(bool reached, const std::string& error) {
  if (reached != up_.exchange(reached)) {
    if (reached) LOG_NOTICE("Cache source '{}' is reachable again", spec_.name);
    else LOG_WARNING("Cache source '{}' is down: {}", spec_.name, error);
  }
}

void Source::Stream(std::string sql, size_t batch, BatchFn on_batch, std::function<void(std::string)> done) {
  {
    std::lock_guard lock(mu_);
    Job job;
    job.sql = std::move(sql);
    job.batch = batch;
    job.on_batch = std::move(on_batch);
    job.stream_done = std::move(done);
    jobs_.push_back(std::move(job));
  }
  cv_.notify_one();
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
    int64_t t0 = MonotonicUs();
    QueryResult r;
    std::string why;
    if (!conn) conn = Connect(&why);
    if (job.exec_done) {
      ExecResult e;
      if (!conn) {
        e.transient = true;
        e.error = "connection failed: " + why;
      } else {
        e = conn->RunTransaction(job.stmts, job.timeout_ms);
      }
      e.micros = MonotonicUs() - t0;
      queries_ += job.stmts.size();
      bool reached = e.ok || e.error.rfind("connection", 0) != 0;
      if (!e.ok) {
        ++errors_;
        if (!reached) conn.reset();
      }
      NoteReached(reached, e.error);
      job.exec_done(std::move(e));
      continue;
    }
    if (job.batch) {
      std::string err = conn ? conn->RunStream(job.sql, job.batch, job.on_batch) : "connection failed: " + why;
      if (!err.empty() && err.rfind("connection", 0) == 0) conn.reset();
      job.stream_done(err);
      continue;
    }
    if (!conn) {
      r.status = QueryResult::kError;
      r.error = "connection failed: " + why;
    } else {
      r = conn->Run(job.sql, job.params, job.timeout_ms);
    }
    r.micros = MonotonicUs() - t0;
    ++queries_;
    bool reached = r.status != QueryResult::kError || r.error.rfind("connection", 0) != 0;
    if (r.status == QueryResult::kError) {
      ++errors_;
      if (!reached) conn.reset();  // reconnect on the next query
    }
    NoteReached(reached, r.error);
    job.done(std::move(r));
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
        if (sqlite3_column_type(st, i) == SQLITE_NULL) {
          r.values.emplace_back(std::nullopt);
        } else {
          const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(st, i));
          r.values.emplace_back(std::string(text, static_cast<size_t>(sqlite3_column_bytes(st, i))));
        }
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

  std::string RunStream(const std::string& sql, size_t batch, const BatchFn& on_batch) override {
    QueryResult r;
    sqlite3_stmt* st = Prepare(sql, Mode::kRead, &r);
    if (!st) return r.error;
    deadline_us_ = INT64_MAX;
    RowBatch b;
    auto cols = std::make_shared<std::vector<std::string>>();
    for (int i = 0; i < sqlite3_column_count(st); ++i) cols->emplace_back(sqlite3_column_name(st, i));
    b.columns = cols;
    std::string err;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
      std::vector<std::optional<std::string>> row;
      for (int i = 0; i < static_cast<int>(cols->size()); ++i) {
        if (sqlite3_column_type(st, i) == SQLITE_NULL) row.emplace_back(std::nullopt);
        else row.emplace_back(std::string(reinterpret_cast<const char*>(sqlite3_column_text(st, i)),
                                          static_cast<size_t>(sqlite3_column_bytes(st, i))));
      }
      b.rows.push_back(std::move(row));
      if (b.rows.size() >= batch) {
        if (!on_batch(std::move(b))) break;
        b = RowBatch{cols, {}};
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

class PgConn : public Source::Conn {
 public:
  explicit PgConn(PGconn* c) : c_(c) {}
  ~PgConn() override { PQfinish(c_); }

  QueryResult Run(const std::string& sql, const Params& params, int64_t timeout_ms) override {
    QueryResult r;
    if (PQstatus(c_) != CONNECTION_OK) {
      r.status = QueryResult::kError;
      r.error = std::string("connection lost: ") + PQerrorMessage(c_);
      return r;
    }
    if (timeout_ms != timeout_ms_) {
      std::string set = "SET statement_timeout = " + std::to_string(timeout_ms);
      PQclear(PQexec(c_, set.c_str()));
      timeout_ms_ = timeout_ms;
    }
    std::vector<std::string> names;
    for (const auto& p : params) names.push_back(p.first);
    std::string numbered = SqlToNumbered(sql, names);
    std::vector<const char*> values;
    for (const auto& p : params) values.push_back(p.second.c_str());
    // A load runs in a transaction of its own that cannot write, whatever
    // the statement says (one statement: the extended protocol takes no more).
    PQclear(PQexec(c_, "BEGIN READ ONLY"));
    PGresult* res = PQexecParams(c_, numbered.c_str(), static_cast<int>(values.size()), nullptr, values.data(),
                                 nullptr, nullptr, 0);
    PQclear(PQexec(c_, "COMMIT"));
    ExecStatusType st = PQresultStatus(res);
    if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
      if (st == PGRES_TUPLES_OK && PQntuples(res) > 0) {
        r.status = QueryResult::kRow;
        int n = PQnfields(res);
        for (int i = 0; i < n; ++i) {
          r.columns.emplace_back(PQfname(res, i));
          if (PQgetisnull(res, 0, i)) r.values.emplace_back(std::nullopt);
          else r.values.emplace_back(std::string(PQgetvalue(res, 0, i), static_cast<size_t>(PQgetlength(res, 0, i))));
        }
      } else {
        r.status = QueryResult::kNoRow;
      }
    } else {
      r.status = QueryResult::kError;
      r.error = PQstatus(c_) != CONNECTION_OK ? std::string("connection lost: ") + PQerrorMessage(c_)
                                              : std::string(PQresultErrorMessage(res));
      while (!r.error.empty() && (r.error.back() == '\n' || r.error.back() == ' ')) r.error.pop_back();
    }
    PQclear(res);
    return r;
  }

  std::string RunStream(const std::string& sql, size_t batch, const BatchFn& on_batch) override {
    if (PQstatus(c_) != CONNECTION_OK) return std::string("connection lost: ") + PQerrorMessage(c_);
    if (timeout_ms_ != 0) {
      PQclear(PQexec(c_, "SET statement_timeout = 0"));
      timeout_ms_ = 0;
    }
    // As a load: one statement (PQsendQueryParams), in a read-only transaction.
    PQclear(PQexec(c_, "BEGIN READ ONLY"));
    if (!PQsendQueryParams(c_, sql.c_str(), 0, nullptr, nullptr, nullptr, nullptr, 0) || !PQsetSingleRowMode(c_)) {
      std::string e = PQerrorMessage(c_);
      PQclear(PQexec(c_, "ROLLBACK"));
      return e;
    }
    RowBatch b;
    std::shared_ptr<std::vector<std::string>> cols;
    std::string err;
    bool stop = false;
    while (PGresult* res = PQgetResult(c_)) {
      ExecStatusType st = PQresultStatus(res);
      if (st == PGRES_SINGLE_TUPLE && !stop) {
        if (!cols) {
          cols = std::make_shared<std::vector<std::string>>();
          for (int i = 0; i < PQnfields(res); ++i) cols->emplace_back(PQfname(res, i));
          b.columns = cols;
        }
        std::vector<std::optional<std::string>> row;
        for (int i = 0; i < PQnfields(res); ++i) {
          if (PQgetisnull(res, 0, i)) row.emplace_back(std::nullopt);
          else row.emplace_back(std::string(PQgetvalue(res, 0, i), static_cast<size_t>(PQgetlength(res, 0, i))));
        }
        b.rows.push_back(std::move(row));
        if (b.rows.size() >= batch) {
          stop = !on_batch(std::move(b));
          b = RowBatch{cols, {}};
        }
      } else if (st != PGRES_TUPLES_OK && st != PGRES_SINGLE_TUPLE && err.empty()) {
        err = PQresultErrorMessage(res);
        while (!err.empty() && (err.back() == '\n' || err.back() == ' ')) err.pop_back();
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
    auto lost = [&] {
      e.transient = true;
      e.error = std::string("connection lost: ") + PQerrorMessage(c_);
      while (!e.error.empty() && (e.error.back() == '\n' || e.error.back() == ' ')) e.error.pop_back();
      return e;
    };
    if (PQstatus(c_) != CONNECTION_OK) return lost();
    if (timeout_ms != timeout_ms_) {
      std::string set = "SET statement_timeout = " + std::to_string(timeout_ms);
      PQclear(PQexec(c_, set.c_str()));
      timeout_ms_ = timeout_ms;
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
          while (!e.error.empty() && (e.error.back() == '\n' || e.error.back() == ' ')) e.error.pop_back();
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
    if (!check(PQexec(c_, "COMMIT"))) return e;
    e.ok = true;
    return e;
  }

 private:
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
