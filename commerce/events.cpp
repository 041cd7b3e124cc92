#include "commerce/events.h"

#include "core/clock.h"
#include "core/secret.h"

namespace hawker::commerce {
namespace {

constexpr storage::Migration kMigrations[] = {
    {110, "events outbox", R"sql(
CREATE TABLE events (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  type TEXT NOT NULL,
  data TEXT NOT NULL,
  created_at_ms INTEGER NOT NULL
);
CREATE INDEX events_type ON events(type, seq);
)sql"},
    // No query reads events by type (consumers follow seq), and the index cost a B-tree
    // insert on every event, several per order.
    {111, "events: drop the unused type index", R"sql(
DROP INDEX events_type;
)sql"},
    // Nothing looks an event up by id: consumers follow seq, deliveries name seq. The id's
    // UNIQUE index cost a B-tree insert per event, two per order; ids are 128 random bits
    // after the time, so they stay unique without it. Webhook deliveries reference seq, so
    // the table is rebuilt as migration 142 rebuilds orders: under deferred foreign keys, the
    // rows put back under the same name count off the references the DROP counted (a RENAME
    // would not). AUTOINCREMENT's high-water mark is carried over, so no seq is handed out
    // twice even where the newest events were pruned.
    {112, "events: id without a unique index", R"sql(
PRAGMA defer_foreign_keys = ON;
CREATE TABLE events_111 AS SELECT seq, id, type, data, created_at_ms FROM events;
CREATE TABLE events_111_sequence AS SELECT seq FROM sqlite_sequence WHERE name = 'events';
DROP TABLE events;
CREATE TABLE events (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL,
  type TEXT NOT NULL,
  data TEXT NOT NULL,
  created_at_ms INTEGER NOT NULL
);
INSERT INTO events SELECT seq, id, type, data, created_at_ms FROM events_111 ORDER BY seq;
DELETE FROM sqlite_sequence WHERE name = 'events';
INSERT INTO sqlite_sequence (name, seq) SELECT 'events', seq FROM events_111_sequence;
DROP TABLE events_111;
DROP TABLE events_111_sequence;
)sql"},
};

Event read_event(const storage::Statement& s) {
  Event e;
  e.seq = s.column_int64(0);
  e.id = std::string(s.column_text(1));
  e.type = std::string(s.column_text(2));
  e.data_text = std::string(s.column_text(3));
  e.created_at_ms = s.column_int64(4);
  return e;
}

}  // namespace

nlohmann::json Event::data() const { return nlohmann::json::parse(data_text, nullptr, false); }

nlohmann::json Event::envelope() const {
  return {{"id", id},
          {"type", type},
          {"timestamp", format_rfc3339_ms(created_at_ms)},
          {"data", data()}};
}

std::span<const storage::Migration> event_migrations() { return kMigrations; }

Result<Event> append_event(storage::Database& db, std::string_view type, const nlohmann::json& data,
                           int64_t now_ms) {
  return append_event_text(db, type, data.dump(), now_ms);
}

Result<Event> append_event_text(storage::Database& db, std::string_view type, std::string data_text,
                                int64_t now_ms) {
  // Time-ordered like seq; 16 random bytes keep ids unique without an index (migration 112).
  auto id = time_ordered_token("evt_", now_ms, 16);
  if (!id) return unexpected(std::move(id).error());
  auto stmt = db.cached("INSERT INTO events (id, type, data, created_at_ms) VALUES (?, ?, ?, ?)");
  if (!stmt) return unexpected(std::move(stmt).error());
  (*stmt)
      ->bind_text(1, id->reveal())
      .bind_text(2, type)
      .bind_text(3, data_text)
      .bind_int64(4, now_ms);
  HAWKER_TRY_STATUS((*stmt)->run(), "append event");
  Event e;
  e.seq = db.last_insert_rowid();
  e.id = id->reveal();
  e.type = std::string(type);
  e.data_text = std::move(data_text);
  e.created_at_ms = now_ms;
  return e;
}

Result<std::vector<Event>> events_after(storage::Database& db, int64_t after_seq, size_t limit) {
  auto stmt = db.cached(
      "SELECT seq, id, type, data, created_at_ms FROM events WHERE seq > ? ORDER BY seq LIMIT ?");
  if (!stmt) return unexpected(std::move(stmt).error());
  (*stmt)->bind_int64(1, after_seq).bind_int64(2, static_cast<int64_t>(limit));
  std::vector<Event> out;
  while (true) {
    auto step = (*stmt)->step();
    if (!step) return unexpected(std::move(step).error());
    if (*step == storage::Statement::Step::kDone) break;
    out.push_back(read_event(**stmt));
  }
  return out;
}

Result<int64_t> last_event_seq(storage::Database& db) {
  auto stmt = db.cached("SELECT coalesce(max(seq), 0) FROM events");
  if (!stmt) return unexpected(std::move(stmt).error());
  auto step = (*stmt)->step();
  if (!step) return unexpected(std::move(step).error());
  return (*stmt)->column_int64(0);
}

}  // namespace hawker::commerce
