#pragma once

#include <span>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "storage/sqlite.h"

namespace hawker::storage {

/// One schema change. Versions are global across modules and never reused; each module owns a
/// block so modules add migrations without coordinating: storage 1-99, commerce 100-199,
/// media 200-299, app 300-399. A released migration is never edited: add a new one.
struct Migration {
  int version;
  std::string_view name;
  std::string_view sql;
};

/// The migrations storage/ itself owns (the `meta` table).
std::span<const Migration> storage_migrations();

/// The whole schema the binary knows, put together from each module's list, so commerce/ and
/// media/ each own their SQL and storage/ includes neither:
///   Schema schema; schema.add(storage_migrations()).add(commerce::migrations());
class Schema {
 public:
  /// Starts with storage_migrations().
  Schema();
  /// Adds a module's list; the lists must outlive the Schema (they are static tables).
  Schema& add(std::span<const Migration> migrations);
  /// Every migration ordered by version, or an error naming two migrations that share a
  /// version or a version that is not positive.
  Result<std::vector<Migration>> ordered() const;

 private:
  std::vector<std::span<const Migration>> lists_;
};

/// Brings the database up to date: each pending migration runs in its own transaction
/// (BEGIN IMMEDIATE, so a second process migrating at once waits and then finds the work done)
/// and is recorded in `schema_migrations`. Running it again changes nothing. Refuses, changing
/// nothing, when the database holds a version this binary does not know: a newer hawker wrote
/// it and this one could corrupt its data.
Status apply_migrations(Database& db, std::span<const Migration> migrations);
Status apply_migrations(Database& db, const Schema& schema);

/// Versions recorded in `schema_migrations`, ascending (empty for a new database).
Result<std::vector<int>> applied_versions(Database& db);

}  // namespace hawker::storage
