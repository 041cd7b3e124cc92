#include "storage/migrations.h"

#include <doctest/doctest.h>

#include <array>
#include <string>
#include <vector>

#include "test/unit/storage/temp_dir.h"

using namespace hawker;
using namespace hawker::storage;
using hawker::storage::test::TempDir;

namespace {

Database open_file(const std::string& path) {
  OpenOptions options;
  options.path = path;
  auto db = Database::open(options);
  REQUIRE(db.has_value());
  return std::move(*db);
}

std::string meta(Database& db, const std::string& key) {
  auto stmt = db.prepare("SELECT value FROM meta WHERE key = ?");
  REQUIRE(stmt.has_value());
  stmt->bind_text(1, key);
  auto step = stmt->step();
  REQUIRE(step.has_value());
  if (*step != Statement::Step::kRow) return "";
  return std::string(stmt->column_text(0));
}

bool table_exists(Database& db, const std::string& name) {
  auto stmt = db.prepare("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?");
  REQUIRE(stmt.has_value());
  stmt->bind_text(1, name);
  return *stmt->step() == Statement::Step::kRow;
}

constexpr std::array kShopV1 = {
    Migration{100, "products", "CREATE TABLE products (id INTEGER PRIMARY KEY, name TEXT);"},
    Migration{101, "stock", "ALTER TABLE products ADD COLUMN stock INTEGER NOT NULL DEFAULT 0;"},
};
constexpr std::array kShopV2 = {
    Migration{100, "products", "CREATE TABLE products (id INTEGER PRIMARY KEY, name TEXT);"},
    Migration{101, "stock", "ALTER TABLE products ADD COLUMN stock INTEGER NOT NULL DEFAULT 0;"},
    Migration{102, "orders", "CREATE TABLE orders (id INTEGER PRIMARY KEY);"},
};

}  // namespace

TEST_CASE("migration 1 creates meta with an instance id, once") {
  TempDir dir;
  Database db = open_file(dir.file("m.db"));
  REQUIRE(apply_migrations(db, Schema()).ok());
  std::string id = meta(db, "instance_id");
  CHECK(id.size() == 32);
  CHECK(id.find_first_not_of("0123456789abcdef") == std::string::npos);
  CHECK_FALSE(meta(db, "created_at").empty());
  CHECK(*applied_versions(db) == std::vector<int>{1});

  // Idempotent, also from another connection: nothing re-runs, the instance id stays.
  Database again = open_file(dir.file("m.db"));
  REQUIRE(apply_migrations(again, Schema()).ok());
  REQUIRE(apply_migrations(again, Schema()).ok());
  CHECK(meta(again, "instance_id") == id);
  CHECK(*applied_versions(again) == std::vector<int>{1});
}

TEST_CASE("modules register their own lists and only new migrations run") {
  TempDir dir;
  Database db = open_file(dir.file("m.db"));
  Schema v1;
  v1.add(kShopV1);
  REQUIRE(apply_migrations(db, v1).ok());
  CHECK(*applied_versions(db) == std::vector<int>{1, 100, 101});
  REQUIRE(db.exec("INSERT INTO products (name, stock) VALUES ('mug', 4)").ok());

  Schema v2;
  v2.add(kShopV2);
  REQUIRE(apply_migrations(db, v2).ok());
  CHECK(*applied_versions(db) == std::vector<int>{1, 100, 101, 102});
  CHECK(table_exists(db, "orders"));
  auto stock = db.prepare("SELECT stock FROM products");
  REQUIRE(*stock->step() == Statement::Step::kRow);
  CHECK(stock->column_int64(0) == 4);
}

TEST_CASE("a database from a newer hawker is refused and left untouched") {
  TempDir dir;
  Database db = open_file(dir.file("m.db"));
  Schema newer;
  newer.add(kShopV2);
  REQUIRE(apply_migrations(db, newer).ok());

  constexpr std::array kOther = {Migration{200, "segments", "CREATE TABLE segments (id);"}};
  Schema older;
  older.add(kShopV1).add(kOther);
  Status refused = apply_migrations(db, older);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().code == ErrorCode::kUnsupported);
  CHECK(refused.error().message.find("schema version 102") != std::string::npos);
  CHECK(refused.error().message.find("newer hawker") != std::string::npos);
  // Migration 200 was pending but must not have run.
  CHECK_FALSE(table_exists(db, "segments"));
}

TEST_CASE("a failing migration rolls back entirely and names itself") {
  TempDir dir;
  Database db = open_file(dir.file("m.db"));
  constexpr std::array kBroken = {
      Migration{100, "half", "CREATE TABLE half (x); INSERT INTO nowhere VALUES (1);"}};
  Schema schema;
  schema.add(kBroken);
  Status status = apply_migrations(db, schema);
  REQUIRE_FALSE(status.ok());
  CHECK(status.error().message.find("migration 100 (half)") != std::string::npos);
  CHECK(status.error().message.find("no such table: nowhere") != std::string::npos);
  CHECK_FALSE(table_exists(db, "half"));
  CHECK(*applied_versions(db) == std::vector<int>{1});
  CHECK(db.autocommit());
}

TEST_CASE("two migrations claiming one version are refused before anything runs") {
  TempDir dir;
  Database db = open_file(dir.file("m.db"));
  constexpr std::array kClash = {Migration{1, "clash", "CREATE TABLE clash (x);"}};
  Schema schema;
  schema.add(kClash);
  CHECK_FALSE(schema.ordered().has_value());
  Status status = apply_migrations(db, schema);
  REQUIRE_FALSE(status.ok());
  CHECK(status.error().message.find("both claim version 1") != std::string::npos);
  CHECK(applied_versions(db)->empty());
}
