#include "commerce/broadcasts.h"

#include <fmt/format.h>

#include <algorithm>
#include <set>

#include "core/clock.h"
#include "core/secret.h"

namespace hawker::commerce {
namespace {

constexpr storage::Migration kMigrations[] = {
    {180, "broadcasts and their products", R"sql(
CREATE TABLE broadcasts (
  id TEXT PRIMARY KEY,
  title TEXT NOT NULL,
  description TEXT NOT NULL DEFAULT '',
  starts_at_ms INTEGER NOT NULL,
  ends_at_ms INTEGER NOT NULL,
  streamer_id INTEGER NOT NULL REFERENCES streamers(id),
  status TEXT NOT NULL CHECK (status IN ('scheduled', 'live', 'ended', 'cancelled')),
  unscheduled INTEGER NOT NULL DEFAULT 0,
  pinned_product_id TEXT NOT NULL DEFAULT '',
  live_at_ms INTEGER NOT NULL DEFAULT 0,
  ended_at_ms INTEGER NOT NULL DEFAULT 0,
  created_at_ms INTEGER NOT NULL,
  updated_at_ms INTEGER NOT NULL
);
CREATE INDEX broadcasts_streamer ON broadcasts(streamer_id, status);
CREATE INDEX broadcasts_status ON broadcasts(status, starts_at_ms);
CREATE TABLE broadcast_products (
  broadcast_id TEXT NOT NULL REFERENCES broadcasts(id),
  product_id TEXT NOT NULL,
  position INTEGER NOT NULL,
  PRIMARY KEY (broadcast_id, product_id)
);
)sql"},
};

constexpr size_t kMaxTitle = 200;
constexpr size_t kMaxDescription = 5000;
constexpr size_t kMaxProducts = 100;
constexpr int64_t kUnscheduledLengthMs = 3600 * 1000;

constexpr std::string_view kSelect =
    "SELECT b.id, b.title, b.description, b.starts_at_ms, b.ends_at_ms, b.streamer_id, "
    "s.channel, s.email, b.status, b.unscheduled, b.pinned_product_id, b.live_at_ms, "
    "b.ended_at_ms, b.created_at_ms, b.updated_at_ms FROM broadcasts b "
    "JOIN streamers s ON s.id = b.streamer_id ";

Broadcast read_row(const storage::Statement& s) {
  Broadcast b;
  b.id = std::string(s.column_text(0));
  b.title = std::string(s.column_text(1));
  b.description = std::string(s.column_text(2));
  b.starts_at_ms = s.column_int64(3);
  b.ends_at_ms = s.column_int64(4);
  b.streamer_id = s.column_int64(5);
  b.channel = std::string(s.column_text(6));
  b.streamer_email = std::string(s.column_text(7));
  b.status = parse_broadcast_status(s.column_text(8)).value_or(BroadcastStatus::kEnded);
  b.unscheduled = s.column_int64(9) != 0;
  b.pinned_product_id = std::string(s.column_text(10));
  b.live_at_ms = s.column_int64(11);
  b.ended_at_ms = s.column_int64(12);
  b.created_at_ms = s.column_int64(13);
  b.updated_at_ms = s.column_int64(14);
  return b;
}

Status load_products(storage::Database& db, Broadcast& b) {
  auto stmt = db.cached(
      "SELECT product_id FROM broadcast_products WHERE broadcast_id = ? ORDER BY position");
  if (!stmt) return unexpected(std::move(stmt).error());
  (*stmt)->bind_text(1, b.id);
  b.product_ids.clear();
  while (true) {
    auto step = (*stmt)->step();
    if (!step) return unexpected(std::move(step).error());
    if (*step == storage::Statement::Step::kDone) break;
    b.product_ids.emplace_back((*stmt)->column_text(0));
  }
  return ok_status();
}

Result<std::vector<Broadcast>> query(storage::Database& db, std::string_view where,
                                     const std::function<void(storage::Statement&)>& bind) {
  auto stmt = db.cached(fmt::format("{}{}", kSelect, where));
  if (!stmt) return unexpected(std::move(stmt).error());
  bind(**stmt);
  std::vector<Broadcast> out;
  while (true) {
    auto step = (*stmt)->step();
    if (!step) return unexpected(std::move(step).error());
    if (*step == storage::Statement::Step::kDone) break;
    out.push_back(read_row(**stmt));
  }
  // Products are read after the outer statement finished: a cached statement is not re-entrant.
  for (auto& b : out) HAWKER_TRY_STATUS(load_products(db, b), "broadcast products");
  return out;
}

Result<Broadcast> must_find(storage::Database& db, std::string_view id) {
  auto found = find_broadcast(db, id);
  if (!found) return unexpected(std::move(found).error());
  if (!found->has_value()) {
    return unexpected(ErrorCode::kNotFound, fmt::format("no broadcast {}", id));
  }
  return std::move(**found);
}

Status set_status(storage::Database& db, Broadcast& b, BroadcastAction action, int64_t now_ms) {
  auto next = broadcast_transition(b.status, action);
  if (!next) return unexpected(std::move(next).error());
  if (action == BroadcastAction::kGoLive && b.status != BroadcastStatus::kLive)
    b.live_at_ms = now_ms;
  if (action == BroadcastAction::kEnd) b.ended_at_ms = now_ms;
  b.status = *next;
  b.updated_at_ms = now_ms;
  auto stmt = db.cached(
      "UPDATE broadcasts SET status = ?, live_at_ms = ?, ended_at_ms = ?, updated_at_ms = ? "
      "WHERE id = ?");
  if (!stmt) return unexpected(std::move(stmt).error());
  (*stmt)
      ->bind_text(1, to_string(b.status))
      .bind_int64(2, b.live_at_ms)
      .bind_int64(3, b.ended_at_ms)
      .bind_int64(4, now_ms)
      .bind_text(5, b.id);
  return (*stmt)->run();
}

Status check_products(storage::Database& db, const std::vector<std::string>& ids) {
  auto stmt = db.cached("SELECT 1 FROM products WHERE id = ? AND deleted = 0");
  if (!stmt) return unexpected(std::move(stmt).error());
  for (const auto& id : ids) {
    (*stmt)->reset();
    (*stmt)->bind_text(1, id);
    auto step = (*stmt)->step();
    if (!step) return unexpected(std::move(step).error());
    if (*step == storage::Statement::Step::kDone) {
      return unexpected(ErrorCode::kInvalidArgument, fmt::format("no product {}", id));
    }
  }
  (*stmt)->reset();
  return ok_status();
}

Status write_products(storage::Database& db, std::string_view id,
                      const std::vector<std::string>& product_ids) {
  auto del = db.cached("DELETE FROM broadcast_products WHERE broadcast_id = ?");
  if (!del) return unexpected(std::move(del).error());
  (*del)->bind_text(1, id);
  HAWKER_TRY_STATUS((*del)->run(), "clear broadcast products");
  auto ins = db.cached(
      "INSERT INTO broadcast_products (broadcast_id, product_id, position) VALUES (?, ?, ?)");
  if (!ins) return unexpected(std::move(ins).error());
  int64_t position = 0;
  for (const auto& pid : product_ids) {
    (*ins)->reset();
    (*ins)->bind_text(1, id).bind_text(2, pid).bind_int64(3, position++);
    HAWKER_TRY_STATUS((*ins)->run(), "add broadcast product");
  }
  return ok_status();
}

Result<Broadcast> insert_broadcast(storage::Database& db, Broadcast b) {
  auto id = random_token("bc_", 9);
  if (!id) return unexpected(std::move(id).error());
  b.id = id->reveal();
  auto stmt = db.cached(
      "INSERT INTO broadcasts (id, title, description, starts_at_ms, ends_at_ms, streamer_id, "
      "status, unscheduled, pinned_product_id, live_at_ms, ended_at_ms, created_at_ms, "
      "updated_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
  if (!stmt) return unexpected(std::move(stmt).error());
  (*stmt)
      ->bind_text(1, b.id)
      .bind_text(2, b.title)
      .bind_text(3, b.description)
      .bind_int64(4, b.starts_at_ms)
      .bind_int64(5, b.ends_at_ms)
      .bind_int64(6, b.streamer_id)
      .bind_text(7, to_string(b.status))
      .bind_int64(8, b.unscheduled ? 1 : 0)
      .bind_text(9, b.pinned_product_id)
      .bind_int64(10, b.live_at_ms)
      .bind_int64(11, b.ended_at_ms)
      .bind_int64(12, b.created_at_ms)
      .bind_int64(13, b.updated_at_ms);
  HAWKER_TRY_STATUS((*stmt)->run(), "insert broadcast");
  HAWKER_TRY_STATUS(write_products(db, b.id, b.product_ids), "broadcast products");
  return b;
}

bool contains(int64_t from, int64_t to, int64_t t) { return t >= from && t <= to; }

Status string_field(const nlohmann::json& body, const char* name, size_t max, bool allow_empty,
                    std::optional<std::string>& out, std::string& field) {
  auto it = body.find(name);
  if (it == body.end()) return ok_status();
  field = name;
  if (!it->is_string()) return unexpected(ErrorCode::kInvalidArgument, "must be a string");
  std::string v = it->get<std::string>();
  if (!allow_empty && v.empty())
    return unexpected(ErrorCode::kInvalidArgument, "must not be empty");
  if (v.size() > max) {
    return unexpected(ErrorCode::kInvalidArgument, fmt::format("longer than {} bytes", max));
  }
  out = std::move(v);
  field.clear();
  return ok_status();
}

Status time_field(const nlohmann::json& body, const char* name, std::optional<int64_t>& out,
                  std::string& field) {
  auto it = body.find(name);
  if (it == body.end()) return ok_status();
  field = name;
  int64_t ms = 0;
  if (!it->is_string() || !parse_rfc3339(it->get<std::string>(), ms)) {
    return unexpected(ErrorCode::kInvalidArgument,
                      "must be an RFC 3339 time such as 2026-11-22T18:00:00Z");
  }
  out = ms;
  field.clear();
  return ok_status();
}

}  // namespace

const char* to_string(BroadcastStatus s) {
  switch (s) {
    case BroadcastStatus::kScheduled:
      return "scheduled";
    case BroadcastStatus::kLive:
      return "live";
    case BroadcastStatus::kEnded:
      return "ended";
    case BroadcastStatus::kCancelled:
      return "cancelled";
  }
  return "ended";
}

std::optional<BroadcastStatus> parse_broadcast_status(std::string_view s) {
  for (auto st : {BroadcastStatus::kScheduled, BroadcastStatus::kLive, BroadcastStatus::kEnded,
                  BroadcastStatus::kCancelled}) {
    if (s == to_string(st)) return st;
  }
  return std::nullopt;
}

const char* to_string(BroadcastAction a) {
  switch (a) {
    case BroadcastAction::kGoLive:
      return "go live";
    case BroadcastAction::kEnd:
      return "end";
    case BroadcastAction::kCancel:
      return "cancel";
    case BroadcastAction::kEdit:
      return "edit";
    case BroadcastAction::kPin:
      return "pin a product";
  }
  return "?";
}

Result<BroadcastStatus> broadcast_transition(BroadcastStatus from, BroadcastAction action) {
  using S = BroadcastStatus;
  using A = BroadcastAction;
  struct Row {
    S from;
    A action;
    S to;
  };
  // Every allowed move; anything not listed is refused. Going live again while live is a
  // publisher reconnecting (or taking over) and changes nothing. A live show cannot be
  // cancelled: it ends when its publisher leaves, so viewers are told the truth.
  static constexpr Row kTable[] = {
      {S::kScheduled, A::kGoLive, S::kLive},    {S::kLive, A::kGoLive, S::kLive},
      {S::kLive, A::kEnd, S::kEnded},           {S::kScheduled, A::kCancel, S::kCancelled},
      {S::kScheduled, A::kEdit, S::kScheduled}, {S::kLive, A::kEdit, S::kLive},
      {S::kScheduled, A::kPin, S::kScheduled},  {S::kLive, A::kPin, S::kLive},
  };
  for (const auto& row : kTable) {
    if (row.from == from && row.action == action) return row.to;
  }
  return unexpected(ErrorCode::kConflict, fmt::format("a broadcast that is {} cannot {}",
                                                      to_string(from), to_string(action)));
}

nlohmann::json to_admin_json(const Broadcast& b) {
  nlohmann::json j = {
      {"id", b.id},
      {"title", b.title},
      {"description", b.description},
      {"starts_at", format_rfc3339(b.starts_at_ms)},
      {"ends_at", format_rfc3339(b.ends_at_ms)},
      {"status", to_string(b.status)},
      {"channel", b.channel},
      {"streamer_email", b.streamer_email},
      {"unscheduled", b.unscheduled},
      {"product_ids", b.product_ids},
      {"pinned_product_id",
       b.pinned_product_id.empty() ? nlohmann::json(nullptr) : nlohmann::json(b.pinned_product_id)},
      {"created_at", format_rfc3339(b.created_at_ms)},
      {"updated_at", format_rfc3339(b.updated_at_ms)}};
  j["live_at"] = b.live_at_ms ? nlohmann::json(format_rfc3339(b.live_at_ms)) : nullptr;
  j["ended_at"] = b.ended_at_ms ? nlohmann::json(format_rfc3339(b.ended_at_ms)) : nullptr;
  return j;
}

nlohmann::json broadcast_event_data(const Broadcast& b) {
  nlohmann::json j = {{"broadcast_id", b.id},
                      {"title", b.title},
                      {"channel", b.channel},
                      {"status", to_string(b.status)},
                      {"starts_at", format_rfc3339(b.starts_at_ms)},
                      {"ends_at", format_rfc3339(b.ends_at_ms)},
                      {"playback_path", fmt::format("/live/{}/index.m3u8", b.channel)},
                      {"watch_path", fmt::format("/watch/{}", b.channel)}};
  j["pinned_product_id"] =
      b.pinned_product_id.empty() ? nlohmann::json(nullptr) : nlohmann::json(b.pinned_product_id);
  return j;
}

std::span<const storage::Migration> broadcast_migrations() { return kMigrations; }

Status parse_broadcast_fields(const nlohmann::json& body, bool creating, BroadcastFields& out,
                              std::string& field) {
  out = BroadcastFields{};
  field.clear();
  static const std::set<std::string> kKnown = {"title",   "description",    "starts_at",
                                               "ends_at", "streamer_email", "product_ids"};
  for (const auto& [k, v] : body.items()) {
    if (!kKnown.count(k)) {
      field = k;
      return unexpected(ErrorCode::kInvalidArgument, "unknown field");
    }
  }
  HAWKER_TRY_STATUS(string_field(body, "title", kMaxTitle, false, out.title, field), "");
  HAWKER_TRY_STATUS(
      string_field(body, "description", kMaxDescription, true, out.description, field), "");
  HAWKER_TRY_STATUS(time_field(body, "starts_at", out.starts_at_ms, field), "");
  HAWKER_TRY_STATUS(time_field(body, "ends_at", out.ends_at_ms, field), "");
  HAWKER_TRY_STATUS(string_field(body, "streamer_email", 254, false, out.streamer_email, field),
                    "");
  if (out.streamer_email && !valid_email(*out.streamer_email)) {
    field = "streamer_email";
    return unexpected(ErrorCode::kInvalidArgument, "not an email address");
  }
  if (auto it = body.find("product_ids"); it != body.end()) {
    field = "product_ids";
    if (!it->is_array()) return unexpected(ErrorCode::kInvalidArgument, "must be an array");
    if (it->size() > kMaxProducts) {
      return unexpected(ErrorCode::kInvalidArgument,
                        fmt::format("at most {} products", kMaxProducts));
    }
    std::vector<std::string> ids;
    for (const auto& p : *it) {
      if (!p.is_string() || p.get<std::string>().empty() || p.get<std::string>().size() > 128) {
        return unexpected(ErrorCode::kInvalidArgument, "must hold product ids");
      }
      std::string id = p.get<std::string>();
      if (std::find(ids.begin(), ids.end(), id) == ids.end()) ids.push_back(std::move(id));
    }
    out.product_ids = std::move(ids);
    field.clear();
  }
  if (creating) {
    for (auto [name, present] : {std::pair{"title", out.title.has_value()},
                                 {"starts_at", out.starts_at_ms.has_value()},
                                 {"ends_at", out.ends_at_ms.has_value()},
                                 {"streamer_email", out.streamer_email.has_value()}}) {
      if (!present) {
        field = name;
        return unexpected(ErrorCode::kInvalidArgument, "required");
      }
    }
  } else if (out.streamer_email) {
    field = "streamer_email";
    return unexpected(ErrorCode::kInvalidArgument,
                      "cannot be changed; cancel and schedule a new broadcast");
  }
  if (out.starts_at_ms && out.ends_at_ms && *out.ends_at_ms <= *out.starts_at_ms) {
    field = "ends_at";
    return unexpected(ErrorCode::kInvalidArgument, "must be after starts_at");
  }
  return ok_status();
}

Result<std::string> channel_for_email(storage::Database& db, std::string_view email) {
  std::string base;
  for (char c : email.substr(0, email.find('@'))) {
    char l = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    bool ok = (l >= 'a' && l <= 'z') || (l >= '0' && l <= '9');
    if (ok) {
      base += l;
    } else if (!base.empty() && base.back() != '-') {
      base += '-';
    }
    if (base.size() >= 32) break;
  }
  while (!base.empty() && base.back() == '-') base.pop_back();
  if (base.size() < 2) base = "streamer";
  for (int n = 1; n < 1000; ++n) {
    std::string candidate = n == 1 ? base : fmt::format("{}-{}", base, n);
    auto taken = find_streamer_by_channel(db, candidate);
    if (!taken) return unexpected(std::move(taken).error());
    if (!taken->has_value()) return candidate;
  }
  return unexpected(ErrorCode::kConflict, "no free channel name for this email");
}

Result<CreatedBroadcast> create_broadcast(storage::Database& db, const BroadcastFields& fields,
                                          int64_t now_ms) {
  if (!fields.title || !fields.starts_at_ms || !fields.ends_at_ms || !fields.streamer_email) {
    return unexpected(ErrorCode::kInvalidArgument,
                      "title, starts_at, ends_at and streamer_email are required");
  }
  if (*fields.ends_at_ms <= *fields.starts_at_ms) {
    return unexpected(ErrorCode::kInvalidArgument, "ends_at must be after starts_at");
  }
  std::vector<std::string> products = fields.product_ids.value_or(std::vector<std::string>{});
  HAWKER_TRY_STATUS(check_products(db, products), "product_ids");

  CreatedBroadcast created;
  auto streamer = find_streamer_by_email(db, *fields.streamer_email);
  if (!streamer) return unexpected(std::move(streamer).error());
  Streamer st;
  if (streamer->has_value()) {
    st = **streamer;
  } else {
    auto channel = channel_for_email(db, *fields.streamer_email);
    if (!channel) return unexpected(std::move(channel).error());
    auto issued = add_streamer(db, *fields.streamer_email, *channel, now_ms);
    if (!issued) return unexpected(std::move(issued).error());
    st = issued->streamer;
    created.issued = std::move(*issued);
  }
  Broadcast b;
  b.title = *fields.title;
  b.description = fields.description.value_or("");
  b.starts_at_ms = *fields.starts_at_ms;
  b.ends_at_ms = *fields.ends_at_ms;
  b.streamer_id = st.id;
  b.channel = st.channel;
  b.streamer_email = st.email;
  b.product_ids = std::move(products);
  b.created_at_ms = now_ms;
  b.updated_at_ms = now_ms;
  auto inserted = insert_broadcast(db, std::move(b));
  if (!inserted) return unexpected(std::move(inserted).error());
  created.broadcast = std::move(*inserted);
  return created;
}

Result<Broadcast> update_broadcast(storage::Database& db, std::string_view id,
                                   const BroadcastFields& fields, int64_t now_ms) {
  auto found = must_find(db, id);
  if (!found) return found;
  Broadcast b = std::move(*found);
  HAWKER_TRY_STATUS(broadcast_transition(b.status, BroadcastAction::kEdit), "edit");
  if (fields.title) b.title = *fields.title;
  if (fields.description) b.description = *fields.description;
  if (fields.starts_at_ms) b.starts_at_ms = *fields.starts_at_ms;
  if (fields.ends_at_ms) b.ends_at_ms = *fields.ends_at_ms;
  if (b.ends_at_ms <= b.starts_at_ms) {
    return unexpected(ErrorCode::kInvalidArgument, "ends_at must be after starts_at");
  }
  if (fields.product_ids) {
    HAWKER_TRY_STATUS(check_products(db, *fields.product_ids), "product_ids");
    b.product_ids = *fields.product_ids;
    HAWKER_TRY_STATUS(write_products(db, b.id, b.product_ids), "broadcast products");
    if (!b.pinned_product_id.empty() && std::find(b.product_ids.begin(), b.product_ids.end(),
                                                  b.pinned_product_id) == b.product_ids.end()) {
      b.pinned_product_id.clear();
    }
  }
  b.updated_at_ms = now_ms;
  auto stmt = db.cached(
      "UPDATE broadcasts SET title = ?, description = ?, starts_at_ms = ?, ends_at_ms = ?, "
      "pinned_product_id = ?, updated_at_ms = ? WHERE id = ?");
  if (!stmt) return unexpected(std::move(stmt).error());
  (*stmt)
      ->bind_text(1, b.title)
      .bind_text(2, b.description)
      .bind_int64(3, b.starts_at_ms)
      .bind_int64(4, b.ends_at_ms)
      .bind_text(5, b.pinned_product_id)
      .bind_int64(6, now_ms)
      .bind_text(7, b.id);
  HAWKER_TRY_STATUS((*stmt)->run(), "update broadcast");
  return b;
}

Result<Broadcast> cancel_broadcast(storage::Database& db, std::string_view id, int64_t now_ms) {
  auto found = must_find(db, id);
  if (!found) return found;
  HAWKER_TRY_STATUS(set_status(db, *found, BroadcastAction::kCancel, now_ms), "cancel");
  return found;
}

Result<Broadcast> pin_product(storage::Database& db, std::string_view id,
                              std::string_view product_id, int64_t now_ms,
                              std::vector<Event>& events) {
  auto found = must_find(db, id);
  if (!found) return found;
  Broadcast b = std::move(*found);
  HAWKER_TRY_STATUS(broadcast_transition(b.status, BroadcastAction::kPin), "pin");
  if (!product_id.empty() &&
      std::find(b.product_ids.begin(), b.product_ids.end(), product_id) == b.product_ids.end()) {
    return unexpected(ErrorCode::kInvalidArgument,
                      fmt::format("product {} is not shown in this broadcast", product_id));
  }
  b.pinned_product_id = std::string(product_id);
  b.updated_at_ms = now_ms;
  auto stmt =
      db.cached("UPDATE broadcasts SET pinned_product_id = ?, updated_at_ms = ? WHERE id = ?");
  if (!stmt) return unexpected(std::move(stmt).error());
  (*stmt)->bind_text(1, b.pinned_product_id).bind_int64(2, now_ms).bind_text(3, b.id);
  HAWKER_TRY_STATUS((*stmt)->run(), "pin product");
  auto e = append_event(db, kBroadcastPinned, broadcast_event_data(b), now_ms);
  if (!e) return unexpected(std::move(e).error());
  events.push_back(std::move(*e));
  return b;
}

Result<std::optional<Broadcast>> find_broadcast(storage::Database& db, std::string_view id) {
  std::string key(id);
  auto all = query(db, "WHERE b.id = ?", [&](storage::Statement& s) { s.bind_text(1, key); });
  if (!all) return unexpected(std::move(all).error());
  if (all->empty()) return std::optional<Broadcast>{};
  return std::optional<Broadcast>{std::move(all->front())};
}

Result<std::vector<Broadcast>> list_broadcasts(storage::Database& db, size_t limit) {
  return query(db, "ORDER BY b.starts_at_ms DESC LIMIT ?",
               [&](storage::Statement& s) { s.bind_int64(1, static_cast<int64_t>(limit)); });
}

Result<std::vector<Broadcast>> current_broadcasts(storage::Database& db, int64_t now_ms) {
  return query(db,
               "WHERE b.status = 'live' OR (b.status = 'scheduled' AND b.ends_at_ms > ?) "
               "ORDER BY b.status = 'live' DESC, b.starts_at_ms LIMIT 200",
               [&](storage::Statement& s) { s.bind_int64(1, now_ms); });
}

Result<std::vector<Broadcast>> open_broadcasts_of(storage::Database& db, int64_t streamer_id) {
  return query(db,
               "WHERE b.streamer_id = ? AND b.status IN ('scheduled', 'live') "
               "ORDER BY b.starts_at_ms",
               [&](storage::Statement& s) { s.bind_int64(1, streamer_id); });
}

std::optional<size_t> select_for_go_live(std::span<const Broadcast> open, int64_t now_ms,
                                         const GoLiveRule& rule) {
  std::optional<size_t> best;
  auto earlier = [&](size_t i) { return !best || open[i].starts_at_ms < open[*best].starts_at_ms; };
  for (size_t i = 0; i < open.size(); ++i) {
    if (open[i].status == BroadcastStatus::kLive) return i;
  }
  for (size_t i = 0; i < open.size(); ++i) {
    const auto& b = open[i];
    if (b.status == BroadcastStatus::kScheduled &&
        contains(b.starts_at_ms - rule.early_ms, b.ends_at_ms, now_ms) && earlier(i)) {
      best = i;
    }
  }
  if (best) return best;
  for (size_t i = 0; i < open.size(); ++i) {
    const auto& b = open[i];
    if (b.status == BroadcastStatus::kScheduled && b.starts_at_ms > now_ms &&
        b.starts_at_ms - now_ms <= rule.lookahead_ms && earlier(i)) {
      best = i;
    }
  }
  return best;
}

std::optional<std::string> key_window_refusal(std::span<const Broadcast> open, int64_t now_ms,
                                              const GoLiveRule& rule) {
  if (!rule.key_window) return std::nullopt;
  const Broadcast* next = nullptr;
  for (const auto& b : open) {
    if (b.status == BroadcastStatus::kLive) return std::nullopt;
    if (b.status != BroadcastStatus::kScheduled) continue;
    if (contains(b.starts_at_ms - rule.early_ms, b.ends_at_ms + rule.late_ms, now_ms)) {
      return std::nullopt;
    }
    if (b.starts_at_ms - rule.early_ms > now_ms &&
        (next == nullptr || b.starts_at_ms < next->starts_at_ms)) {
      next = &b;
    }
  }
  if (next == nullptr) {
    return "no broadcast is scheduled for this stream key: ask the seller to schedule one";
  }
  return fmt::format("too early: the next broadcast starts at {}; this key works from {}",
                     format_rfc3339(next->starts_at_ms),
                     format_rfc3339(next->starts_at_ms - rule.early_ms));
}

Result<std::optional<Broadcast>> go_live(storage::Database& db, const Streamer& streamer,
                                         int64_t now_ms, const GoLiveRule& rule,
                                         std::vector<Event>& events) {
  auto open = open_broadcasts_of(db, streamer.id);
  if (!open) return unexpected(std::move(open).error());
  Broadcast b;
  if (auto pick = select_for_go_live(*open, now_ms, rule)) {
    b = std::move((*open)[*pick]);
    if (b.status == BroadcastStatus::kLive) return std::optional<Broadcast>{std::move(b)};
    HAWKER_TRY_STATUS(set_status(db, b, BroadcastAction::kGoLive, now_ms), "go live");
  } else if (rule.allow_unscheduled) {
    b.title = fmt::format("{} live", streamer.channel);
    b.starts_at_ms = now_ms;
    b.ends_at_ms = now_ms + kUnscheduledLengthMs;
    b.streamer_id = streamer.id;
    b.channel = streamer.channel;
    b.streamer_email = streamer.email;
    b.status = BroadcastStatus::kLive;
    b.unscheduled = true;
    b.live_at_ms = now_ms;
    b.created_at_ms = now_ms;
    b.updated_at_ms = now_ms;
    auto inserted = insert_broadcast(db, std::move(b));
    if (!inserted) return unexpected(std::move(inserted).error());
    b = std::move(*inserted);
  } else {
    return std::optional<Broadcast>{};
  }
  auto e = append_event(db, event_type::kBroadcastLive, broadcast_event_data(b), now_ms);
  if (!e) return unexpected(std::move(e).error());
  events.push_back(std::move(*e));
  return std::optional<Broadcast>{std::move(b)};
}

Result<std::vector<Broadcast>> end_live(storage::Database& db, std::string_view channel,
                                        int64_t now_ms, std::vector<Event>& events) {
  std::string ch(channel);
  auto live = query(db, "WHERE s.channel = ? AND b.status = 'live'",
                    [&](storage::Statement& s) { s.bind_text(1, ch); });
  if (!live) return live;
  for (auto& b : *live) {
    HAWKER_TRY_STATUS(set_status(db, b, BroadcastAction::kEnd, now_ms), "end broadcast");
    // An unscheduled show's end is when it really ended.
    if (b.unscheduled) {
      auto stmt = db.cached("UPDATE broadcasts SET ends_at_ms = ? WHERE id = ?");
      if (!stmt) return unexpected(std::move(stmt).error());
      (*stmt)->bind_int64(1, now_ms).bind_text(2, b.id);
      HAWKER_TRY_STATUS((*stmt)->run(), "end broadcast");
      b.ends_at_ms = now_ms;
    }
    auto e = append_event(db, event_type::kBroadcastEnded, broadcast_event_data(b), now_ms);
    if (!e) return unexpected(std::move(e).error());
    events.push_back(std::move(*e));
  }
  return live;
}

}  // namespace hawker::commerce
