#include "storage/sqlite.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <climits>
#include <mutex>

namespace hawker::storage {
namespace {

ErrorCode code_for(int rc) {
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return ErrorCode::kUnavailable;
    case SQLITE_CONSTRAINT:
      return rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY
                 ? ErrorCode::kAlreadyExists
                 : ErrorCode::kConflict;
    case SQLITE_FULL:
    case SQLITE_NOMEM:
    case SQLITE_TOOBIG:
      return ErrorCode::kResourceExhausted;
    case SQLITE_IOERR:
    case SQLITE_CANTOPEN:
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return ErrorCode::kIo;
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_AUTH:
      return ErrorCode::kPermissionDenied;
    case SQLITE_MISMATCH:
    case SQLITE_RANGE:
    case SQLITE_ERROR:
      return ErrorCode::kInvalidArgument;
    default:
      return ErrorCode::kInternal;
  }
}

bool iequals(std::string_view a, std::string_view b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](char x, char y) {
    return std::tolower(static_cast<unsigned char>(x)) ==
           std::tolower(static_cast<unsigned char>(y));
  });
}

}  // namespace

Error sqlite_error(sqlite3* db, int rc, std::string_view what) {
  // sqlite3_errmsg describes the connection's most recent failure, which is this one only when
  // the connection reported it; otherwise the generic text of the code is the honest answer.
  const char* detail =
      db != nullptr && sqlite3_extended_errcode(db) == rc ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  return Error{code_for(rc), fmt::format("{}: {} (sqlite {})", what, detail, rc)};
}

const char* to_string(Synchronous s) {
  switch (s) {
    case Synchronous::kNormal:
      return "NORMAL";
    case Synchronous::kFull:
      return "FULL";
    case Synchronous::kExtra:
      return "EXTRA";
  }
  return "FULL";
}

Result<Synchronous> parse_synchronous(std::string_view s) {
  if (iequals(s, "normal")) return Synchronous::kNormal;
  if (iequals(s, "full")) return Synchronous::kFull;
  if (iequals(s, "extra")) return Synchronous::kExtra;
  return unexpected(ErrorCode::kInvalidArgument,
                    fmt::format("synchronous must be normal, full or extra, not '{}'", s));
}

// ---- Statement ----

std::string_view Statement::sql() const {
  const char* s = stmt_ ? sqlite3_sql(stmt_.get()) : nullptr;
  return s != nullptr ? std::string_view(s) : std::string_view();
}

void Statement::check_bind(int rc, int index) {
  if (rc == SQLITE_OK || has_bind_error_) return;
  has_bind_error_ = true;
  bind_error_ = sqlite_error(db_, rc, fmt::format("bind parameter {} of '{}'", index, sql()));
}

int Statement::index_of(std::string_view name) {
  if (has_bind_error_) return 0;
  int index = sqlite3_bind_parameter_index(stmt_.get(), std::string(name).c_str());
  if (index == 0) {
    has_bind_error_ = true;
    bind_error_ = Error{ErrorCode::kInvalidArgument,
                        fmt::format("no parameter named '{}' in '{}'", name, sql())};
  }
  return index;
}

Statement& Statement::bind_int64(int index, int64_t value) {
  check_bind(sqlite3_bind_int64(stmt_.get(), index, value), index);
  return *this;
}

Statement& Statement::bind_double(int index, double value) {
  check_bind(sqlite3_bind_double(stmt_.get(), index, value), index);
  return *this;
}

Statement& Statement::bind_text(int index, std::string_view value) {
  check_bind(sqlite3_bind_text64(stmt_.get(), index, value.data(), value.size(), SQLITE_TRANSIENT,
                                 SQLITE_UTF8),
             index);
  return *this;
}

Statement& Statement::bind_text_view(int index, std::string_view value) {
  // A null pointer would bind NULL; an empty view must stay an empty text.
  const char* data = value.data() != nullptr ? value.data() : "";
  check_bind(sqlite3_bind_text64(stmt_.get(), index, data, value.size(), SQLITE_STATIC,
                                 SQLITE_UTF8),
             index);
  return *this;
}

Statement& Statement::bind_blob(int index, std::span<const uint8_t> value) {
  // A null data pointer would bind NULL; an empty blob must stay a zero-length blob.
  static const uint8_t kEmpty = 0;
  const void* data = value.empty() ? &kEmpty : value.data();
  check_bind(sqlite3_bind_blob64(stmt_.get(), index, data, value.size(), SQLITE_TRANSIENT), index);
  return *this;
}

Statement& Statement::bind_null(int index) {
  check_bind(sqlite3_bind_null(stmt_.get(), index), index);
  return *this;
}

Statement& Statement::bind_int64(std::string_view name, int64_t value) {
  int index = index_of(name);
  return index == 0 ? *this : bind_int64(index, value);
}

Statement& Statement::bind_double(std::string_view name, double value) {
  int index = index_of(name);
  return index == 0 ? *this : bind_double(index, value);
}

Statement& Statement::bind_text(std::string_view name, std::string_view value) {
  int index = index_of(name);
  return index == 0 ? *this : bind_text(index, value);
}

Statement& Statement::bind_blob(std::string_view name, std::span<const uint8_t> value) {
  int index = index_of(name);
  return index == 0 ? *this : bind_blob(index, value);
}

Statement& Statement::bind_null(std::string_view name) {
  int index = index_of(name);
  return index == 0 ? *this : bind_null(index);
}

Result<Statement::Step> Statement::step() {
  if (has_bind_error_) return unexpected(bind_error_);
  int rc = sqlite3_step(stmt_.get());
  if (rc == SQLITE_ROW) return Step::kRow;
  if (rc == SQLITE_DONE) return Step::kDone;
  // With the v2 prepare interface, step() returns the specific code; the statement must be
  // reset before it can run again.
  Error error = sqlite_error(db_, rc, fmt::format("run '{}'", sql()));
  sqlite3_reset(stmt_.get());
  return unexpected(std::move(error));
}

Status Statement::run() {
  while (true) {
    auto step_result = step();
    if (!step_result) return std::move(step_result).error();
    if (*step_result == Step::kDone) return ok_status();
  }
}

void Statement::reset() {
  sqlite3_reset(stmt_.get());
  has_bind_error_ = false;
  bind_error_ = Error{};
}

void Statement::clear() {
  reset();
  sqlite3_clear_bindings(stmt_.get());
}

int Statement::column_count() const { return sqlite3_column_count(stmt_.get()); }

std::string_view Statement::column_name(int col) const {
  const char* name = sqlite3_column_name(stmt_.get(), col);
  return name != nullptr ? std::string_view(name) : std::string_view();
}

bool Statement::column_is_null(int col) const {
  return sqlite3_column_type(stmt_.get(), col) == SQLITE_NULL;
}

int64_t Statement::column_int64(int col) const { return sqlite3_column_int64(stmt_.get(), col); }

double Statement::column_double(int col) const { return sqlite3_column_double(stmt_.get(), col); }

std::string_view Statement::column_text(int col) const {
  const auto* text = sqlite3_column_text(stmt_.get(), col);
  if (text == nullptr) return {};
  int size = sqlite3_column_bytes(stmt_.get(), col);
  return std::string_view(reinterpret_cast<const char*>(text), static_cast<size_t>(size));
}

std::span<const uint8_t> Statement::column_blob(int col) const {
  const void* blob = sqlite3_column_blob(stmt_.get(), col);
  if (blob == nullptr) return {};
  int size = sqlite3_column_bytes(stmt_.get(), col);
  return std::span<const uint8_t>(static_cast<const uint8_t*>(blob), static_cast<size_t>(size));
}

// ---- Database ----

Result<Database> Database::open(const OpenOptions& options) {
  // Two process-wide settings, which only take before SQLite initialises (the first open
  // does; later calls change nothing):
  // - SQLite counts every allocation under one mutex for sqlite3_status(), which hawker never
  //   reads; on the write path that is a lock and unlock per malloc.
  // - The Store runs every job in a SAVEPOINT, whose journal holds each page the job changes
  //   (a dozen or more per order). Past 64 KiB SQLite spilled it into a temporary file that
  //   was created, written and deleted in every batch transaction; temp_store=MEMORY keeps it
  //   in memory but in 1 KiB chunks, four mallocs and frees per page. A 1 MiB spill threshold
  //   keeps a job's journal in one allocation; only a job that changes more than 1 MiB spills.
  static std::once_flag configured;
  std::call_once(configured, [] {
    (void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    (void)sqlite3_config(SQLITE_CONFIG_STMTJRNL_SPILL, 1 << 20);
  });
  int flags = SQLITE_OPEN_NOMUTEX;
  if (options.read_only) {
    flags |= SQLITE_OPEN_READONLY;
  } else {
    flags |= SQLITE_OPEN_READWRITE;
    if (options.create) flags |= SQLITE_OPEN_CREATE;
  }
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(options.path.c_str(), &raw, flags, nullptr);
  // SQLite hands back a connection even when opening failed; it must still be closed.
  Database db(raw, options.path);
  if (rc != SQLITE_OK) {
    return unexpected(sqlite_error(raw, rc, fmt::format("open database {}", options.path)));
  }
  sqlite3_extended_result_codes(raw, 1);
  HAWKER_TRY_STATUS(db.configure(options), fmt::format("configure database {}", options.path));
  return db;
}

Status Database::configure(const OpenOptions& options) {
  int rc = sqlite3_busy_timeout(db_.get(), std::max(0, options.busy_timeout_ms));
  if (rc != SQLITE_OK) return sqlite_error(db_.get(), rc, "set busy_timeout");
  HAWKER_TRY_STATUS(
      exec(options.foreign_keys ? "PRAGMA foreign_keys=ON" : "PRAGMA foreign_keys=OFF"),
      "set foreign_keys");
  if (options.read_only) {
    // A reader must not change the file; the journal mode is the writer's to set.
    return exec("PRAGMA query_only=ON");
  }
  if (options.wal) {
    auto mode = pragma("journal_mode=WAL");
    if (!mode) return std::move(mode).error().with_context("set journal_mode");
    // An in-memory database cannot use WAL and answers "memory"; a file that answers anything
    // else would silently lose the concurrency the Store relies on.
    if (!iequals(*mode, "wal") && options.path != ":memory:") {
      return Error{ErrorCode::kUnsupported,
                   fmt::format("journal_mode=WAL was refused (mode is {})", *mode)};
    }
  }
  return exec(fmt::format("PRAGMA synchronous={}", to_string(options.synchronous)));
}

Status Database::exec(std::string_view sql) {
  std::string text(sql);
  char* message = nullptr;
  int rc = sqlite3_exec(db_.get(), text.c_str(), nullptr, nullptr, &message);
  if (rc == SQLITE_OK) return ok_status();
  std::string detail = message != nullptr ? message : sqlite3_errstr(rc);
  sqlite3_free(message);
  return Error{code_for(sqlite3_extended_errcode(db_.get())),
               fmt::format("exec '{}': {} (sqlite {})", sql, detail, rc)};
}

Result<Statement> Database::prepare(std::string_view sql) {
  if (sql.size() > static_cast<size_t>(INT_MAX)) {
    return unexpected(ErrorCode::kInvalidArgument, "statement too long");
  }
  sqlite3_stmt* stmt = nullptr;
  const char* tail = nullptr;
  int rc = sqlite3_prepare_v3(db_.get(), sql.data(), static_cast<int>(sql.size()),
                              SQLITE_PREPARE_PERSISTENT, &stmt, &tail);
  Statement statement(db_.get(), stmt);
  if (rc != SQLITE_OK)
    return unexpected(sqlite_error(db_.get(), rc, fmt::format("prepare '{}'", sql)));
  if (stmt == nullptr) {
    return unexpected(ErrorCode::kInvalidArgument, fmt::format("prepare '{}': no statement", sql));
  }
  // Trailing statements would be silently ignored; refuse them so nothing is lost unseen.
  std::string_view rest(tail, static_cast<size_t>(sql.data() + sql.size() - tail));
  if (rest.find_first_not_of(" \t\r\n;") != std::string_view::npos) {
    return unexpected(ErrorCode::kInvalidArgument,
                      fmt::format("prepare '{}': more than one statement", sql));
  }
  return statement;
}

Result<Statement*> Database::cached(std::string_view sql) {
  auto it = cache_.find(sql);
  if (it != cache_.end()) {
    it->second->clear();
    return it->second.get();
  }
  auto statement = prepare(sql);
  if (!statement) return std::move(statement).error();
  auto owned = std::make_unique<Statement>(std::move(*statement));
  Statement* raw = owned.get();
  cache_.emplace(std::string(sql), std::move(owned));
  return raw;
}

Status Database::exec_cached(std::string_view sql) {
  auto statement = cached(sql);
  if (!statement) return std::move(statement).error();
  Status done = (*statement)->run();
  (*statement)->reset();
  return done;
}

void Database::reset_all_statements() {
  sqlite3_stmt* stmt = nullptr;
  while ((stmt = sqlite3_next_stmt(db_.get(), stmt)) != nullptr) sqlite3_reset(stmt);
}

Result<std::string> Database::pragma(std::string_view name) {
  auto statement = prepare(fmt::format("PRAGMA {}", name));
  if (!statement) return std::move(statement).error();
  auto step = statement->step();
  if (!step) return std::move(step).error();
  if (*step != Statement::Step::kRow) {
    return unexpected(ErrorCode::kNotFound, fmt::format("PRAGMA {} returned no value", name));
  }
  return std::string(statement->column_text(0));
}

int64_t Database::last_insert_rowid() const { return sqlite3_last_insert_rowid(db_.get()); }

int Database::changes() const { return sqlite3_changes(db_.get()); }

int64_t Database::total_changes() const { return sqlite3_total_changes64(db_.get()); }

bool Database::autocommit() const { return sqlite3_get_autocommit(db_.get()) != 0; }

}  // namespace hawker::storage
