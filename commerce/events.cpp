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
};

Event read_event(const storage::Statement& s) {
  Event e;
  e.seq = s.column_int64(0);
  e.id = std::string(s.column_text(1));
  e.type = std::string(s.column_text(2));
  e.data = nlohmann::json::parse(s.column_text(3), nullptr, false);
  e.created_at_ms = s.column_int64(4);
  return e;
}

}  // namespace

nlohmann::json Event::envelope() const {
  return {
      {"id", id}, {"type", type}, {"timestamp", format_rfc3339_ms(created_at_ms)}, {"data", data}};
}

std::span<const storage::Migration> event_migrations() { return kMigrations; }

Result<Event> append_event(storage::Database& db, std::string_view type, nlohmann::json data,
                           int64_t now_ms) {
  // Time-ordered, so the UNIQUE index on id grows at its end like seq does.
  auto id = time_ordered_token("evt_", now_ms, 16);
  if (!id) return unexpected(std::move(id).error());
  auto stmt = db.cached("INSERT INTO events (id, type, data, created_at_ms) VALUES (?, ?, ?, ?)");
  if (!stmt) return unexpected(std::move(stmt).error());
  std::string text = data.dump();
  (*stmt)->bind_text(1, id->reveal()).bind_text(2, type).bind_text(3, text).bind_int64(4, now_ms);
  HAWKER_TRY_STATUS((*stmt)->run(), "append event");
  Event e;
  e.seq = db.last_insert_rowid();
  e.id = id->reveal();
  e.type = std::string(type);
  e.data = std::move(data);
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
