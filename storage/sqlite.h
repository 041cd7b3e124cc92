#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>

#include "core/deleters.h"
#include "core/result.h"

namespace hawker::storage {

/// Turns a SQLite result code into an Error: the code picks the ErrorCode, `sqlite3_errmsg`
/// (when `db` is given) the message, and `what` says what was being done.
Error sqlite_error(sqlite3* db, int rc, std::string_view what);

/// How hard SQLite syncs the WAL. FULL syncs on every commit, so an acknowledged write survives
/// power loss; NORMAL may lose the last commits (never corrupts); EXTRA also syncs the directory.
enum class Synchronous { kNormal, kFull, kExtra };

const char* to_string(Synchronous s);
/// Parses "normal", "full" or "extra" (any case).
Result<Synchronous> parse_synchronous(std::string_view s);

struct OpenOptions {
  /// A file path, or ":memory:" for a private in-memory database (tests).
  std::string path;
  bool read_only = false;
  /// Create the file when missing (ignored for read-only connections).
  bool create = true;
  Synchronous synchronous = Synchronous::kFull;
  /// How long a writer waits for another connection (another process too) to release the
  /// write lock before failing with kUnavailable.
  int busy_timeout_ms = 5000;
  /// WAL lets readers run while one writer commits; only off for special cases.
  bool wal = true;
  bool foreign_keys = true;
};

/// One prepared statement. Binds are chainable and sticky: the first bind error is kept and
/// returned by the next step()/run(), so a caller checks once:
///   stmt.bind_int64(1, id).bind_text(2, name); auto r = stmt.run();
class Statement {
 public:
  enum class Step { kRow, kDone };

  Statement() = default;
  Statement(Statement&&) = default;
  Statement& operator=(Statement&&) = default;

  bool valid() const { return stmt_ != nullptr; }
  sqlite3_stmt* handle() const { return stmt_.get(); }
  std::string_view sql() const;

  /// Parameters are 1-based, as in SQLite.
  Statement& bind_int64(int index, int64_t value);
  Statement& bind_double(int index, double value);
  Statement& bind_text(int index, std::string_view value);
  /// Binds `value` without copying it, for statements that bind many strings the caller
  /// keeps anyway (rows inserted many to a statement): its bytes must stay valid and unchanged
  /// until the statement has finished stepping. A statement from Database::cached() drops its
  /// bindings before it is handed out again.
  Statement& bind_text_view(int index, std::string_view value);
  Statement& bind_blob(int index, std::span<const uint8_t> value);
  Statement& bind_null(int index);
  /// Named parameters include their prefix: ":id", "@id" or "$id".
  Statement& bind_int64(std::string_view name, int64_t value);
  Statement& bind_double(std::string_view name, double value);
  Statement& bind_text(std::string_view name, std::string_view value);
  Statement& bind_blob(std::string_view name, std::span<const uint8_t> value);
  Statement& bind_null(std::string_view name);

  /// Advances to the next row, or reports that the statement finished.
  Result<Step> step();
  /// Steps until done, for statements whose rows (if any) are not wanted.
  Status run();
  /// Rewinds to run again; bindings stay, the sticky bind error is cleared.
  void reset();
  /// Resets and clears every binding to NULL.
  void clear();

  /// Columns are 0-based, valid after step() returned kRow. Text and blob views stay valid
  /// until the next step(), reset() or destruction.
  int column_count() const;
  std::string_view column_name(int col) const;
  bool column_is_null(int col) const;
  int64_t column_int64(int col) const;
  double column_double(int col) const;
  std::string_view column_text(int col) const;
  std::span<const uint8_t> column_blob(int col) const;

 private:
  friend class Database;
  Statement(sqlite3* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}
  int index_of(std::string_view name);
  void check_bind(int rc, int index);

  sqlite3* db_ = nullptr;
  CPtr<sqlite3_stmt, sqlite3_finalize> stmt_;
  Error bind_error_;
  bool has_bind_error_ = false;
};

/// One SQLite connection. Used by one thread at a time (the connection is opened without
/// SQLite's own mutex); the Store gives each of its threads its own Database.
class Database {
 public:
  /// Opens (and creates) the database and applies the settings in `options`: busy timeout,
  /// WAL, synchronous and foreign keys.
  static Result<Database> open(const OpenOptions& options);

  Database(Database&&) = default;
  Database& operator=(Database&&) = default;

  sqlite3* handle() const { return db_.get(); }
  const std::string& path() const { return path_; }

  /// Runs one or more statements that return no rows wanted by the caller.
  Status exec(std::string_view sql);
  /// Prepares a statement owned by the caller.
  Result<Statement> prepare(std::string_view sql);
  /// Returns this connection's cached statement for `sql`, prepared on first use, reset and
  /// with cleared bindings. The pointer stays valid for the life of the connection; it must not
  /// be used by two callers at once.
  Result<Statement*> cached(std::string_view sql);
  size_t cached_count() const { return cache_.size(); }
  /// Runs one cached statement that returns no rows wanted by the caller: exec() for the
  /// statements run again and again (BEGIN, SAVEPOINT, RELEASE, COMMIT), parsed only once.
  Status exec_cached(std::string_view sql);
  /// Resets every statement of this connection so none keeps a read open across the end of a
  /// transaction or savepoint.
  void reset_all_statements();

  /// Reads a pragma's first value as text ("wal", "2").
  Result<std::string> pragma(std::string_view name);

  int64_t last_insert_rowid() const;
  int changes() const;
  /// Rows inserted, updated or deleted by this connection since it opened; a statement that
  /// failed and was rolled back adds nothing.
  int64_t total_changes() const;
  /// False while a transaction is open on this connection.
  bool autocommit() const;

 private:
  struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };

  Database(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}
  Status configure(const OpenOptions& options);

  CPtr<sqlite3, sqlite3_close_v2> db_;
  std::string path_;
  // Declared after db_ so the statements are finalized before the connection closes.
  std::unordered_map<std::string, std::unique_ptr<Statement>, StringHash, std::equal_to<>> cache_;
};

}  // namespace hawker::storage
