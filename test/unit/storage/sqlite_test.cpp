#include "storage/sqlite.h"

#include <doctest/doctest.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "test/unit/storage/temp_dir.h"

using namespace hawker;
using namespace hawker::storage;
using hawker::storage::test::TempDir;

namespace {

Database open_file(const std::string& path, Synchronous sync = Synchronous::kFull,
                   int busy_timeout_ms = 5000) {
  OpenOptions options;
  options.path = path;
  options.synchronous = sync;
  options.busy_timeout_ms = busy_timeout_ms;
  auto db = Database::open(options);
  REQUIRE_MESSAGE(db.has_value(), (db ? "" : db.error().message));
  return std::move(*db);
}

int64_t count_rows(Database& db, const std::string& table) {
  auto stmt = db.prepare("SELECT count(*) FROM " + table);
  REQUIRE(stmt.has_value());
  auto step = stmt->step();
  REQUIRE(step.has_value());
  REQUIRE(*step == Statement::Step::kRow);
  return stmt->column_int64(0);
}

}  // namespace

TEST_CASE("statements bind by index and name and read every column type back") {
  TempDir dir;
  REQUIRE(dir.ok());
  Database db = open_file(dir.file("bind.db"));
  REQUIRE(db.exec("CREATE TABLE t (i INTEGER, d REAL, s TEXT, b BLOB, n TEXT)").ok());

  auto insert = db.prepare("INSERT INTO t VALUES (?1, ?2, ?3, ?4, ?5)");
  REQUIRE(insert.has_value());
  const std::string text_with_nul("a\0b", 3);
  const std::vector<uint8_t> blob = {0x00, 0xff, 0x10};
  insert->bind_int64(1, -9007199254740993LL)
      .bind_double(2, 2.5)
      .bind_text(3, text_with_nul)
      .bind_blob(4, blob)
      .bind_null(5);
  REQUIRE(insert->run().ok());

  auto named = db.prepare("INSERT INTO t VALUES (:i, @d, $s, :b, :n)");
  REQUIRE(named.has_value());
  named->bind_int64(":i", 7)
      .bind_double("@d", -0.125)
      .bind_text("$s", "héllo")
      .bind_blob(":b", std::span<const uint8_t>())
      .bind_null(":n");
  REQUIRE(named->run().ok());

  auto select = db.prepare("SELECT i, d, s, b, n FROM t ORDER BY rowid");
  REQUIRE(select.has_value());
  CHECK(select->column_count() == 5);
  CHECK(select->column_name(2) == "s");

  auto step = select->step();
  REQUIRE(step.has_value());
  REQUIRE(*step == Statement::Step::kRow);
  CHECK(select->column_int64(0) == -9007199254740993LL);
  CHECK(select->column_double(1) == 2.5);
  CHECK(select->column_text(2) == text_with_nul);
  auto got = select->column_blob(3);
  CHECK(std::vector<uint8_t>(got.begin(), got.end()) == blob);
  CHECK(select->column_is_null(4));

  step = select->step();
  REQUIRE(*step == Statement::Step::kRow);
  CHECK(select->column_int64(0) == 7);
  CHECK(select->column_double(1) == -0.125);
  CHECK(select->column_text(2) == "héllo");
  // An empty blob stays an empty blob, not NULL.
  CHECK_FALSE(select->column_is_null(3));
  CHECK(select->column_blob(3).empty());

  step = select->step();
  REQUIRE(step.has_value());
  CHECK(*step == Statement::Step::kDone);
}

TEST_CASE("a bad bind is reported by the next step and nothing is written") {
  TempDir dir;
  Database db = open_file(dir.file("badbind.db"));
  REQUIRE(db.exec("CREATE TABLE t (x INTEGER)").ok());
  auto insert = db.prepare("INSERT INTO t VALUES (:x)");
  REQUIRE(insert.has_value());
  insert->bind_int64(":nope", 1);
  auto result = insert->run();
  REQUIRE_FALSE(result.ok());
  CHECK(result.error().code == ErrorCode::kInvalidArgument);
  CHECK(result.error().message.find(":nope") != std::string::npos);

  insert->reset();
  insert->bind_int64(5, 1);  // out of range
  result = insert->run();
  REQUIRE_FALSE(result.ok());
  CHECK(result.error().message.find("bind parameter 5") != std::string::npos);
  CHECK(count_rows(db, "t") == 0);
}

TEST_CASE("prepare errors carry SQLite's message and extra statements are refused") {
  TempDir dir;
  Database db = open_file(dir.file("prep.db"));
  auto bad = db.prepare("SELEC 1");
  REQUIRE_FALSE(bad.has_value());
  CHECK(bad.error().message.find("syntax error") != std::string::npos);
  CHECK(bad.error().message.find("SELEC 1") != std::string::npos);

  auto two = db.prepare("SELECT 1; SELECT 2");
  REQUIRE_FALSE(two.has_value());
  CHECK(two.error().code == ErrorCode::kInvalidArgument);

  CHECK(db.prepare("SELECT 1; ").has_value());
}

TEST_CASE("RETURNING hands back the written row and constraint errors map to codes") {
  TempDir dir;
  Database db = open_file(dir.file("returning.db"));
  REQUIRE(db.exec("CREATE TABLE products (id INTEGER PRIMARY KEY, sku TEXT UNIQUE, stock INTEGER "
                  "CHECK (stock >= 0))")
              .ok());
  REQUIRE(db.exec("INSERT INTO products (sku, stock) VALUES ('mug', 3)").ok());

  auto take = db.cached(
      "UPDATE products SET stock = stock - ? WHERE sku = ? AND stock >= ? "
      "RETURNING id, stock");
  REQUIRE(take.has_value());
  (*take)->bind_int64(1, 2).bind_text(2, "mug").bind_int64(3, 2);
  auto step = (*take)->step();
  REQUIRE(step.has_value());
  REQUIRE(*step == Statement::Step::kRow);
  CHECK((*take)->column_int64(0) == 1);
  CHECK((*take)->column_int64(1) == 1);
  step = (*take)->step();
  CHECK(*step == Statement::Step::kDone);

  // Not enough stock left: no row comes back.
  take = db.cached(
      "UPDATE products SET stock = stock - ? WHERE sku = ? AND stock >= ? "
      "RETURNING id, stock");
  REQUIRE(take.has_value());
  (*take)->bind_int64(1, 2).bind_text(2, "mug").bind_int64(3, 2);
  step = (*take)->step();
  REQUIRE(step.has_value());
  CHECK(*step == Statement::Step::kDone);

  auto dup = db.exec("INSERT INTO products (sku, stock) VALUES ('mug', 1)");
  REQUIRE_FALSE(dup.ok());
  CHECK(dup.error().code == ErrorCode::kAlreadyExists);

  auto negative = db.prepare("UPDATE products SET stock = -1");
  REQUIRE(negative.has_value());
  auto result = negative->run();
  REQUIRE_FALSE(result.ok());
  CHECK(result.error().code == ErrorCode::kConflict);
  CHECK(result.error().message.find("CHECK constraint failed") != std::string::npos);
}

TEST_CASE("the statement cache prepares once per SQL text and hands back a clean statement") {
  TempDir dir;
  Database db = open_file(dir.file("cache.db"));
  const std::string sql = "SELECT ?1 + 1";
  auto first = db.cached(sql);
  REQUIRE(first.has_value());
  (*first)->bind_int64(1, 41);
  REQUIRE(*(*first)->step() == Statement::Step::kRow);
  CHECK((*first)->column_int64(0) == 42);

  // Fetched again while mid-result: it comes back reset, with the old binding cleared.
  auto second = db.cached(sql);
  REQUIRE(second.has_value());
  CHECK(*first == *second);
  CHECK(db.cached_count() == 1);
  REQUIRE(*(*second)->step() == Statement::Step::kRow);
  CHECK((*second)->column_is_null(0));

  auto other = db.cached("SELECT 2");
  REQUIRE(other.has_value());
  CHECK(*other != *first);
  CHECK(db.cached_count() == 2);

  CHECK_FALSE(db.cached("SELECT nope FROM nowhere").has_value());
  CHECK(db.cached_count() == 2);
}

TEST_CASE("text bound as a view is read in place and gone once the cache hands it out again") {
  TempDir dir;
  Database db = open_file(dir.file("view.db"));
  REQUIRE(db.exec("CREATE TABLE t (s TEXT)").ok());
  const std::string sql = "INSERT INTO t VALUES (?1), (?2), (?3)";
  {
    std::string long_text(3000, 'x');
    auto insert = db.cached(sql);
    REQUIRE(insert.has_value());
    (*insert)->bind_text_view(1, "short").bind_text_view(2, long_text).bind_text_view(3, {});
    REQUIRE((*insert)->run().ok());
  }
  // The strings above are gone; fetched again, the statement holds no pointer to them.
  auto again = db.cached(sql);
  REQUIRE(again.has_value());
  REQUIRE((*again)->run().ok());
  auto rows = db.prepare("SELECT s IS NULL, length(s), typeof(s) FROM t ORDER BY rowid");
  REQUIRE(rows.has_value());
  std::vector<std::string> seen;
  while (*rows->step() == Statement::Step::kRow) {
    seen.push_back(std::to_string(rows->column_int64(0)) + ":" +
                   std::string(rows->column_text(2)) + ":" +
                   std::to_string(rows->column_int64(1)));
  }
  // An empty view is an empty text, not NULL; the second run bound nothing.
  CHECK(seen == std::vector<std::string>{"0:text:5", "0:text:3000", "0:text:0", "1:null:0",
                                         "1:null:0", "1:null:0"});
}

TEST_CASE("exec_cached runs the same statement again and again, savepoints included") {
  TempDir dir;
  Database db = open_file(dir.file("savepoints.db"));
  REQUIRE(db.exec("CREATE TABLE t (v INTEGER)").ok());
  REQUIRE(db.exec_cached("BEGIN IMMEDIATE").ok());
  for (int i = 0; i < 3; ++i) {
    REQUIRE(db.exec_cached("SAVEPOINT job").ok());
    auto insert = db.cached("INSERT INTO t VALUES (?)");
    REQUIRE(insert.has_value());
    REQUIRE((*insert)->bind_int64(1, i).run().ok());
    // The middle job fails: only its row goes.
    if (i == 1) REQUIRE(db.exec_cached("ROLLBACK TO job").ok());
    REQUIRE(db.exec_cached("RELEASE job").ok());
  }
  REQUIRE(db.exec_cached("COMMIT").ok());
  CHECK(db.autocommit());
  CHECK(count_rows(db, "t") == 2);
  CHECK(db.cached_count() == 6);
  auto bad = db.exec_cached("RELEASE nothing");
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().message.find("nothing") != std::string::npos);
}

TEST_CASE("connections open in WAL with the requested synchronous level and foreign keys") {
  TempDir dir;
  {
    Database db = open_file(dir.file("full.db"));
    CHECK(*db.pragma("journal_mode") == "wal");
    CHECK(*db.pragma("synchronous") == "2");
    CHECK(*db.pragma("foreign_keys") == "1");
    CHECK(*db.pragma("busy_timeout") == "5000");
  }
  {
    Database db = open_file(dir.file("normal.db"), Synchronous::kNormal);
    CHECK(*db.pragma("synchronous") == "1");
  }
  {
    Database db = open_file(dir.file("extra.db"), Synchronous::kExtra);
    CHECK(*db.pragma("synchronous") == "3");
    REQUIRE(db.exec("CREATE TABLE parent (id INTEGER PRIMARY KEY);"
                    "CREATE TABLE child (parent_id INTEGER REFERENCES parent(id))")
                .ok());
    auto orphan = db.exec("INSERT INTO child VALUES (99)");
    REQUIRE_FALSE(orphan.ok());
    CHECK(orphan.error().code == ErrorCode::kConflict);
  }

  CHECK(*parse_synchronous("Normal") == Synchronous::kNormal);
  CHECK(*parse_synchronous("FULL") == Synchronous::kFull);
  CHECK(*parse_synchronous("extra") == Synchronous::kExtra);
  CHECK_FALSE(parse_synchronous("off").has_value());
}

TEST_CASE("a read-only connection refuses writes") {
  TempDir dir;
  Database writer = open_file(dir.file("ro.db"));
  REQUIRE(writer.exec("CREATE TABLE t (x)").ok());
  OpenOptions options;
  options.path = dir.file("ro.db");
  options.read_only = true;
  auto reader = Database::open(options);
  REQUIRE(reader.has_value());
  auto write = reader->exec("INSERT INTO t VALUES (1)");
  REQUIRE_FALSE(write.ok());
  CHECK(count_rows(*reader, "t") == 0);
}

TEST_CASE("opening a file in a missing directory fails with the path in the message") {
  OpenOptions options;
  options.path = "/tmp/hawker-storage-does-not-exist/x/y.db";
  auto db = Database::open(options);
  REQUIRE_FALSE(db.has_value());
  CHECK(db.error().code == ErrorCode::kIo);
  CHECK(db.error().message.find(options.path) != std::string::npos);
}

TEST_CASE("two connections (CLI and server) both write; busy_timeout makes one wait") {
  TempDir dir;
  const std::string path = dir.file("shared.db");
  Database server = open_file(path);
  REQUIRE(server.exec("CREATE TABLE streamers (name TEXT)").ok());
  Database cli = open_file(path);
  Database impatient = open_file(path, Synchronous::kFull, 0);

  REQUIRE(server.exec("BEGIN IMMEDIATE").ok());
  REQUIRE(server.exec("INSERT INTO streamers VALUES ('from-server')").ok());

  // Without a busy timeout the lock holder's transaction is an immediate, clear failure.
  auto refused = impatient.exec("INSERT INTO streamers VALUES ('impatient')");
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().code == ErrorCode::kUnavailable);

  std::thread holder([&server] {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    (void)server.exec("COMMIT");
  });
  auto started = std::chrono::steady_clock::now();
  auto waited = cli.exec("INSERT INTO streamers VALUES ('from-cli')");
  auto elapsed = std::chrono::steady_clock::now() - started;
  holder.join();
  REQUIRE_MESSAGE(waited.ok(), (waited.ok() ? "" : waited.error().message));
  CHECK(elapsed >= std::chrono::milliseconds(100));
  CHECK(count_rows(server, "streamers") == 2);
  CHECK(count_rows(cli, "streamers") == 2);
}
