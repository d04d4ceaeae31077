// Sources: named database connections that rules load from. Queries never
// run on a shard thread: each source has a small pool of worker threads, each
// with its own database connection (SQLite through sqlite3, PostgreSQL
// through libpq), taking queries from one queue. A query reports back on the
// worker thread; callers post the result to where they need it.
#pragma once

#include <atomic>
#include <cstdint>
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

// What a column's value is, as the database says (SQLite's storage class
// of the value, PostgreSQL's column type): `as json` rules write numbers,
// booleans and embedded JSON as such; every other value is text.
enum class ColType : uint8_t { kText, kInteger, kReal, kBool, kJson };

struct QueryResult {
  enum Status { kRow, kNoRow, kError } status = kNoRow;
  std::vector<std::string> columns;
  std::vector<std::optional<std::string>> values;  // nullopt = SQL NULL
  std::vector<ColType> types;                      // one per value
  std::string error;                               // for kError: one line (OneLine)
  int64_t micros = 0;                              // time spent in the database
  // The connection turned out closed (the server restarted, the network
  // dropped): nothing ran, so the query may be sent again on a new one.
  bool lost = false;
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
  bool lost = false;  // as QueryResult::lost: the connection was gone before COMMIT
};

// Rows streamed by a warming query or answered by a batched load: column
// names once, values (and their types) per row.
struct RowBatch {
  std::shared_ptr<const std::vector<std::string>> columns;
  std::vector<std::vector<std::optional<std::string>>> rows;
  std::vector<std::vector<ColType>> types;  // parallel to rows
};
// Called per batch on the worker thread; false stops the query.
using BatchFn = std::function<bool(RowBatch)>;

// A batched load's answer: every row the statement returned, or an error.
struct ManyResult {
  bool ok = false;
  RowBatch rows;
  std::string error;
  int64_t micros = 0;
  bool lost = false;
};

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

  // A batched load: `sql` has one parameter, `list`, bound to all of
  // `values` (PostgreSQL: one text array, for `= ANY(:list)`; SQLite: the
  // list itself, for `IN (:list)`). `done` gets every row.
  void QueryMany(std::string sql, std::string list, std::vector<std::string> values, int64_t timeout_ms,
                 std::function<void(ManyResult)> done);

  // Starts the workers and the health probe.
  void Start();
  void Stop();

  // Health (INFO, the read path): whether the database was reachable at
  // the last attempt, a client's or the probe's. While it is not, the
  // source is "open circuit": connection attempts (workers' and probe's
  // together) are spaced by a backoff from 100 ms doubling to 1 s, and a
  // job that finds no connection and may not try fails at once.
  bool up() const { return up_.load(); }
  uint64_t queries() const { return queries_.load(); }
  uint64_t errors() const { return errors_.load(); }
  uint64_t connects() const { return connects_.load(); }
  uint64_t retries() const { return retries_.load(); }
  size_t queued() const;
  // How often the probe checks a source that is up.
  static constexpr int64_t kProbeIntervalMs = 1000;

  // One connection, owned by one worker thread.
  class Conn {
   public:
    virtual ~Conn() = default;
    virtual QueryResult Run(const std::string& sql, const Params& params, int64_t timeout_ms) = 0;
    // Returns "" or the error; `lost` set as in QueryResult.
    virtual std::string RunStream(const std::string& sql, size_t batch, const BatchFn& on_batch, bool* lost) = 0;
    virtual ExecResult RunTransaction(const std::vector<Statement>& stmts, int64_t timeout_ms) = 0;
    virtual ManyResult RunMany(const std::string& sql, const std::string& list, const std::vector<std::string>& values,
                               int64_t timeout_ms) = 0;
    // The health probe's check: "" when the database answers.
    virtual std::string Ping() = 0;
  };

 protected:
  // Opens a connection; null with the reason in `err` when it cannot.
  virtual std::unique_ptr<Conn> Connect(std::string* err) = 0;
  // Whether the probe keeps its connection between checks (PostgreSQL);
  // SQLite's probe opens the file anew each time, as a new worker would.
  virtual bool ProbeKeepsConnection() const { return true; }
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
    // A batched load instead.
    std::string list;
    std::vector<std::string> list_values;
    std::function<void(ManyResult)> many_done;
  };
  void Push(Job job);
  void Worker();
  void RunJob(Job& job, std::unique_ptr<Conn>& conn);
  void Probe();
  // The breaker: whether a new connection may be tried now (always while
  // up; once per backoff step while down). `why` gets the last error when not.
  bool MayConnect(std::string* why);
  std::unique_ptr<Conn> TryConnect(std::string* err);
  void NoteReached(bool reached, const std::string& error);

  int connections_;
  mutable std::mutex mu_;
  std::condition_variable cv_, probe_cv_;
  std::deque<Job> jobs_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
  std::thread prober_;
  std::atomic<bool> up_{true};
  std::atomic<uint64_t> queries_{0}, errors_{0}, connects_{0}, retries_{0};
  // The breaker's state (under health_mu_).
  std::mutex health_mu_;
  int64_t next_try_us_ = 0;
  int64_t backoff_us_ = 0;
  std::string last_error_;
};

// A libpq connection (application_name 'larder'), or null with the reason.
PGconn* ConnectPostgres(const std::string& uri, std::string* err);

// Makes the source for a spec (SQLite or PostgreSQL).
std::unique_ptr<Source> MakeSource(const SourceSpec& spec, int connections);

}  // namespace larder::cache
