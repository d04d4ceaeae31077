// Sources: named database connections that rules load from. Queries never
// run on a shard thread: each source has a small pool of worker threads, each
// with its own database connection (SQLite through sqlite3, PostgreSQL
// through libpq), taking queries from one queue. A query reports back on the
// worker thread; callers post the result to where they need it.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "cache/rules.h"

typedef struct pg_conn PGconn;

namespace larder::cache {

struct QueryResult {
  enum Status { kRow, kNoRow, kError } status = kNoRow;
  std::vector<std::string> columns;
  std::vector<std::optional<std::string>> values;  // nullopt = SQL NULL
  std::string error;                               // for kError
  int64_t micros = 0;                              // time spent in the database
};

using Params = std::vector<std::pair<std::string, std::string>>;

// One statement of a transaction; a parameter without a value binds NULL,
// as does a :name the statement uses but `params` lacks.
struct Statement {
  std::string sql;
  std::vector<std::pair<std::string, std::optional<std::string>>> params;
};

// How a transaction ended. A transient failure (the database unreachable,
// a timeout, a serialization failure) may succeed if retried; any other
// (a constraint, a type error) will not.
struct ExecResult {
  bool ok = false;
  bool transient = false;
  std::string error;
  int64_t micros = 0;
};

// Rows streamed by a warming query: column names once, values per row.
struct RowBatch {
  std::shared_ptr<const std::vector<std::string>> columns;
  std::vector<std::vector<std::optional<std::string>>> rows;
};
// Called per batch on the worker thread; false stops the query.
using BatchFn = std::function<bool(RowBatch)>;

class Source {
 public:
  Source(SourceSpec spec, int connections);
  virtual ~Source();
  Source(const Source&) = delete;
  Source& operator=(const Source&) = delete;

  const std::string& name() const { return spec_.name; }
  const SourceSpec& spec() const { return spec_; }

  // Queues a statement (`sql` uses :name parameters, bound from `params`);
  // `done` runs on a worker thread with the first row, no row, or an error.
  // The statement is cancelled after `timeout_ms`.
  void Query(std::string sql, Params params, int64_t timeout_ms, std::function<void(QueryResult)> done);

  // Runs the statements in one transaction (all or none).
  void Exec(std::vector<Statement> stmts, int64_t timeout_ms, std::function<void(ExecResult)> done);

  // Runs `sql` (no parameters) and hands its rows over in batches of
  // `batch`; `done` gets "" or the error. Holds one connection meanwhile.
  void Stream(std::string sql, size_t batch, BatchFn on_batch, std::function<void(std::string)> done);

  void Start();
  void Stop();

  // For INFO: whether the last attempt reached the database.
  bool up() const { return up_.load(); }
  uint64_t queries() const { return queries_.load(); }
  uint64_t errors() const { return errors_.load(); }
  size_t queued() const;

  // One connection, owned by one worker thread.
  class Conn {
   public:
    virtual ~Conn() = default;
    virtual QueryResult Run(const std::string& sql, const Params& params, int64_t timeout_ms) = 0;
    // Returns "" or the error.
    virtual std::string RunStream(const std::string& sql, size_t batch, const BatchFn& on_batch) = 0;
    virtual ExecResult RunTransaction(const std::vector<Statement>& stmts, int64_t timeout_ms) = 0;
  };

 protected:
  // Opens a connection; null with the reason in `err` when it cannot.
  virtual std::unique_ptr<Conn> Connect(std::string* err) = 0;
  SourceSpec spec_;

 private:
  struct Job {
    std::string sql;
    Params params;
    int64_t timeout_ms;
    std::function<void(QueryResult)> done;
    // A streaming job instead (warming).
    size_t batch = 0;
    BatchFn on_batch;
    std::function<void(std::string)> stream_done;
    // A transaction instead (write-behind).
    std::vector<Statement> stmts;
    std::function<void(ExecResult)> exec_done;
  };
  void Worker();
  void NoteReached(bool reached, const std::string& error);

  int connections_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> jobs_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
  std::atomic<bool> up_{true};
  std::atomic<uint64_t> queries_{0}, errors_{0};
};

// A libpq connection (application_name 'larder'), or null with the reason.
PGconn* ConnectPostgres(const std::string& uri, std::string* err);

// Makes the source for a spec (SQLite or PostgreSQL).
std::unique_ptr<Source> MakeSource(const SourceSpec& spec, int connections);

}  // namespace larder::cache
