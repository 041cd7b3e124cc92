#include "storage/migrations.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>

#include "core/log.h"

namespace hawker::storage {
namespace {

// storage/ owns versions 1-99. Later storage migrations are appended here; other modules keep
// their own lists (commerce 100-199, media 200-299, app 300-399) and join them in a Schema.
constexpr std::array kStorageMigrations = {
    Migration{1, "meta",
              R"sql(
CREATE TABLE meta (
  key TEXT PRIMARY KEY NOT NULL,
  value TEXT NOT NULL
) STRICT, WITHOUT ROWID;
INSERT INTO meta (key, value) VALUES
  ('instance_id', lower(hex(randomblob(16)))),
  ('created_at', strftime('%Y-%m-%dT%H:%M:%SZ', 'now'));
)sql"},
};

constexpr std::string_view kCreateMigrationsTable = R"sql(
CREATE TABLE IF NOT EXISTS schema_migrations (
  version INTEGER PRIMARY KEY NOT NULL,
  name TEXT NOT NULL,
  applied_at TEXT NOT NULL
) STRICT;
)sql";

Result<std::vector<Migration>> sorted_checked(std::span<const Migration> migrations) {
  std::vector<Migration> sorted(migrations.begin(), migrations.end());
  std::stable_sort(sorted.begin(), sorted.end(),
                   [](const Migration& a, const Migration& b) { return a.version < b.version; });
  for (size_t i = 0; i < sorted.size(); ++i) {
    if (sorted[i].version <= 0) {
      return unexpected(ErrorCode::kInvalidArgument,
                        fmt::format("migration '{}' has version {}; versions start at 1",
                                    sorted[i].name, sorted[i].version));
    }
    if (i > 0 && sorted[i].version == sorted[i - 1].version) {
      return unexpected(ErrorCode::kInvalidArgument,
                        fmt::format("migrations '{}' and '{}' both claim version {}",
                                    sorted[i - 1].name, sorted[i].name, sorted[i].version));
    }
  }
  return sorted;
}

Result<bool> is_applied(Database& db, int version) {
  auto stmt = db.cached("SELECT 1 FROM schema_migrations WHERE version = ?");
  if (!stmt) return std::move(stmt).error();
  (*stmt)->bind_int64(1, version);
  auto step = (*stmt)->step();
  if (!step) return std::move(step).error();
  bool applied = *step == Statement::Step::kRow;
  (*stmt)->reset();
  return applied;
}

Status apply_one(Database& db, const Migration& m) {
  HAWKER_TRY_STATUS(db.exec("BEGIN IMMEDIATE"), "begin");
  // Another process may have applied it while this one waited for the write lock.
  auto applied = is_applied(db, m.version);
  Status status;
  if (!applied) {
    status = std::move(applied).error();
  } else if (*applied) {
    return db.exec("COMMIT");
  } else {
    status = db.exec(m.sql);
    if (status) {
      auto insert = db.cached(
          "INSERT INTO schema_migrations (version, name, applied_at) "
          "VALUES (?, ?, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))");
      if (!insert) {
        status = std::move(insert).error();
      } else {
        status = (*insert)->bind_int64(1, m.version).bind_text(2, m.name).run();
      }
    }
    if (status) status = db.exec("COMMIT");
  }
  if (!status) {
    if (!db.autocommit()) (void)db.exec("ROLLBACK");
    return std::move(status).error();
  }
  log::info("storage", "applied migration {} ({})", m.version, m.name);
  return ok_status();
}

}  // namespace

std::span<const Migration> storage_migrations() { return kStorageMigrations; }

Schema::Schema() { lists_.push_back(storage_migrations()); }

Schema& Schema::add(std::span<const Migration> migrations) {
  lists_.push_back(migrations);
  return *this;
}

Result<std::vector<Migration>> Schema::ordered() const {
  std::vector<Migration> all;
  for (auto list : lists_) all.insert(all.end(), list.begin(), list.end());
  return sorted_checked(all);
}

Result<std::vector<int>> applied_versions(Database& db) {
  auto exists =
      db.prepare("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'schema_migrations'");
  if (!exists) return std::move(exists).error();
  auto found = exists->step();
  if (!found) return std::move(found).error();
  std::vector<int> versions;
  if (*found != Statement::Step::kRow) return versions;

  auto stmt = db.prepare("SELECT version FROM schema_migrations ORDER BY version");
  if (!stmt) return std::move(stmt).error();
  while (true) {
    auto step = stmt->step();
    if (!step) return std::move(step).error();
    if (*step == Statement::Step::kDone) break;
    versions.push_back(static_cast<int>(stmt->column_int64(0)));
  }
  return versions;
}

Status apply_migrations(Database& db, std::span<const Migration> migrations) {
  if (!db.autocommit()) {
    return Error{ErrorCode::kInvalidArgument, "apply migrations: a transaction is already open"};
  }
  auto sorted = sorted_checked(migrations);
  if (!sorted) return std::move(sorted).error().with_context("apply migrations");
  HAWKER_TRY_STATUS(db.exec(kCreateMigrationsTable), "apply migrations");

  auto applied = applied_versions(db);
  if (!applied) return std::move(applied).error().with_context("apply migrations");
  int newest_known = sorted->empty() ? 0 : sorted->back().version;
  for (int version : *applied) {
    bool known = std::any_of(sorted->begin(), sorted->end(),
                             [&](const Migration& m) { return m.version == version; });
    if (!known) {
      return Error{ErrorCode::kUnsupported,
                   fmt::format("database {} has schema version {}, which this hawker does not "
                               "know (it knows up to {}): it was written by a newer hawker; "
                               "upgrade hawker or restore a backup",
                               db.path(), version, newest_known)};
    }
  }

  for (const Migration& m : *sorted) {
    if (std::binary_search(applied->begin(), applied->end(), m.version)) continue;
    HAWKER_TRY_STATUS(apply_one(db, m), fmt::format("apply migration {} ({})", m.version, m.name));
  }
  return ok_status();
}

Status apply_migrations(Database& db, const Schema& schema) {
  auto ordered = schema.ordered();
  if (!ordered) return std::move(ordered).error().with_context("apply migrations");
  return apply_migrations(db, *ordered);
}

}  // namespace hawker::storage
