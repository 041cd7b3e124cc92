#include "commerce/webhooks.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <ctime>

#include "commerce/events.h"
#include "core/clock.h"

namespace hawker::commerce {
namespace {

constexpr std::string_view kSecretPrefix = "whsec_";
constexpr int64_t kMaxRetryAfterMs = 24LL * 3600 * 1000;

constexpr std::array<int64_t, 10> kDefaultSchedule = {
    0,                 // at once
    5'000,             // 5 s
    5 * 60'000,        // 5 min
    30 * 60'000,       // 30 min
    2 * 3'600'000,     // 2 h
    5 * 3'600'000,     // 5 h
    10 * 3'600'000,    // 10 h
    14 * 3'600'000,    // 14 h
    20 * 3'600'000,    // 20 h
    24LL * 3'600'000,  // 24 h
};

constexpr std::string_view kKnownTypes[] = {
    event_type::kOrderCreated,   event_type::kOrderPaid,      event_type::kOrderExpired,
    event_type::kOrderCancelled, event_type::kOrderRefunded,  event_type::kOrderShipped,
    event_type::kStockChanged,   event_type::kStockLow,       event_type::kStockSoldOut,
    event_type::kBroadcastLive,  event_type::kBroadcastEnded,
};

bool known_family(std::string_view family) {
  return std::any_of(std::begin(kKnownTypes), std::end(kKnownTypes), [&](std::string_view t) {
    return t.size() > family.size() && t.substr(0, family.size()) == family &&
           t[family.size()] == '.';
  });
}

constexpr storage::Migration kMigrations[] = {
    {160, "webhook endpoints, cursor, deliveries and attempts", R"sql(
CREATE TABLE webhook_endpoints (
  id TEXT PRIMARY KEY,
  url TEXT NOT NULL,
  description TEXT NOT NULL DEFAULT '',
  events TEXT NOT NULL,
  secret TEXT NOT NULL,
  enabled INTEGER NOT NULL DEFAULT 1,
  disabled_reason TEXT NOT NULL DEFAULT '',
  created_at_ms INTEGER NOT NULL,
  from_seq INTEGER NOT NULL
);
CREATE TABLE webhook_cursor (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  seq INTEGER NOT NULL
);
INSERT INTO webhook_cursor (id, seq) SELECT 1, coalesce(max(seq), 0) FROM events;
CREATE TABLE webhook_deliveries (
  id TEXT PRIMARY KEY,
  endpoint_id TEXT NOT NULL REFERENCES webhook_endpoints(id) ON DELETE CASCADE,
  event_seq INTEGER NOT NULL REFERENCES events(seq),
  status TEXT NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
  attempts INTEGER NOT NULL DEFAULT 0,
  next_attempt_at_ms INTEGER NOT NULL,
  created_at_ms INTEGER NOT NULL,
  updated_at_ms INTEGER NOT NULL
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries(status, next_attempt_at_ms);
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries(endpoint_id, created_at_ms);
CREATE TABLE webhook_attempts (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  delivery_id TEXT NOT NULL REFERENCES webhook_deliveries(id) ON DELETE CASCADE,
  attempted_at_ms INTEGER NOT NULL,
  status_code INTEGER NOT NULL,
  duration_ms INTEGER NOT NULL,
  error TEXT NOT NULL DEFAULT ''
);
CREATE INDEX webhook_attempts_delivery ON webhook_attempts(delivery_id, id);
)sql"},
};

template <typename T>
Unexpected fail(Result<T>&& r, std::string_view what) {
  return unexpected(std::move(r).error().with_context(what));
}

std::vector<std::string> parse_events_column(std::string_view text) {
  std::vector<std::string> out;
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (!j.is_array()) return out;
  for (const auto& e : j) {
    if (e.is_string()) out.push_back(e.get<std::string>());
  }
  return out;
}

constexpr const char* kEndpointColumns =
    "id, url, description, events, secret, enabled, disabled_reason, created_at_ms, from_seq";

WebhookEndpoint read_endpoint(const storage::Statement& s) {
  WebhookEndpoint e;
  e.id = std::string(s.column_text(0));
  e.url = std::string(s.column_text(1));
  e.description = std::string(s.column_text(2));
  e.events = parse_events_column(s.column_text(3));
  e.secret = Secret(std::string(s.column_text(4)));
  e.enabled = s.column_int64(5) != 0;
  e.disabled_reason = std::string(s.column_text(6));
  e.created_at_ms = s.column_int64(7);
  e.from_seq = s.column_int64(8);
  return e;
}

Result<std::vector<WebhookEndpoint>> query_endpoints(storage::Database& db, std::string_view where,
                                                     std::optional<std::string_view> bind) {
  auto stmt = db.cached(fmt::format(
      "SELECT {} FROM webhook_endpoints {} ORDER BY created_at_ms, id", kEndpointColumns, where));
  if (!stmt) return fail(std::move(stmt), "list webhook endpoints");
  if (bind) (*stmt)->bind_text(1, *bind);
  std::vector<WebhookEndpoint> out;
  while (true) {
    auto step = (*stmt)->step();
    if (!step) return fail(std::move(step), "list webhook endpoints");
    if (*step == storage::Statement::Step::kDone) break;
    out.push_back(read_endpoint(**stmt));
  }
  return out;
}

Result<int64_t> scalar(storage::Database& db, std::string_view sql) {
  auto stmt = db.cached(sql);
  if (!stmt) return unexpected(std::move(stmt).error());
  auto step = (*stmt)->step();
  if (!step) return unexpected(std::move(step).error());
  if (*step == storage::Statement::Step::kDone || (*stmt)->column_is_null(0)) return int64_t{0};
  return (*stmt)->column_int64(0);
}

Result<std::optional<Delivery>> find_delivery(storage::Database& db, std::string_view id) {
  auto stmt = db.cached(
      "SELECT d.id, d.endpoint_id, d.event_seq, ev.id, ev.type, d.status, d.attempts, "
      "d.next_attempt_at_ms, d.created_at_ms FROM webhook_deliveries d "
      "JOIN events ev ON ev.seq = d.event_seq WHERE d.id = ?");
  if (!stmt) return fail(std::move(stmt), "find delivery");
  (*stmt)->bind_text(1, id);
  auto step = (*stmt)->step();
  if (!step) return fail(std::move(step), "find delivery");
  if (*step == storage::Statement::Step::kDone) return std::optional<Delivery>{};
  const auto& s = **stmt;
  Delivery d;
  d.id = std::string(s.column_text(0));
  d.endpoint_id = std::string(s.column_text(1));
  d.event_seq = s.column_int64(2);
  d.event_id = std::string(s.column_text(3));
  d.event_type = std::string(s.column_text(4));
  d.status = std::string(s.column_text(5));
  d.attempts = static_cast<int>(s.column_int64(6));
  d.next_attempt_at_ms = s.column_int64(7);
  d.created_at_ms = s.column_int64(8);
  return std::optional<Delivery>{std::move(d)};
}

Status insert_delivery(storage::Database& db, std::string_view endpoint_id, int64_t event_seq,
                       int64_t now_ms, std::string* id_out) {
  auto id = random_token("whd_", 12);
  if (!id) return unexpected(std::move(id).error());
  auto stmt = db.cached(
      "INSERT INTO webhook_deliveries (id, endpoint_id, event_seq, status, attempts, "
      "next_attempt_at_ms, created_at_ms, updated_at_ms) VALUES (?, ?, ?, 'pending', 0, ?, ?, ?)");
  if (!stmt) return unexpected(std::move(stmt).error());
  (*stmt)
      ->bind_text(1, id->reveal())
      .bind_text(2, endpoint_id)
      .bind_int64(3, event_seq)
      .bind_int64(4, now_ms)
      .bind_int64(5, now_ms)
      .bind_int64(6, now_ms);
  HAWKER_TRY_STATUS((*stmt)->run(), "insert delivery");
  if (id_out != nullptr) *id_out = id->reveal();
  return ok_status();
}

}  // namespace

Result<Secret> new_webhook_secret() {
  auto bytes = random_bytes(32);
  if (!bytes) return unexpected(std::move(bytes).error());
  return Secret(std::string(kSecretPrefix) + base64_encode(*bytes));
}

Result<std::string> webhook_signature(const Secret& secret, std::string_view msg_id,
                                      int64_t timestamp_s, std::string_view body) {
  std::string_view text = secret.reveal();
  if (text.substr(0, kSecretPrefix.size()) == kSecretPrefix)
    text.remove_prefix(kSecretPrefix.size());
  auto key = base64_decode(text);
  if (!key) return unexpected(std::move(key).error().with_context("webhook secret"));
  if (key->empty()) return unexpected(ErrorCode::kInvalidArgument, "webhook secret is empty");
  std::string content = fmt::format("{}.{}.{}", msg_id, timestamp_s, body);
  return "v1," + base64_encode(hmac_sha256(*key, content));
}

bool event_matches(std::span<const std::string> filters, std::string_view type) {
  for (const auto& f : filters) {
    if (f == "*" || f == type) return true;
    if (f.size() >= 2 && f.ends_with(".*")) {
      std::string_view family(f.data(), f.size() - 1);  // "order."
      if (type.size() > family.size() && type.substr(0, family.size()) == family) return true;
    }
  }
  return false;
}

Result<std::vector<std::string>> parse_event_filters(const nlohmann::json& events) {
  if (!events.is_array() || events.empty()) {
    return unexpected(ErrorCode::kInvalidArgument,
                      "events must be a non-empty array of event types, families (\"order.*\") "
                      "or \"*\"");
  }
  std::vector<std::string> out;
  for (const auto& e : events) {
    if (!e.is_string()) {
      return unexpected(ErrorCode::kInvalidArgument, "events entries must be strings");
    }
    std::string f = e.get<std::string>();
    bool ok =
        f == "*" ||
        std::find(std::begin(kKnownTypes), std::end(kKnownTypes), f) != std::end(kKnownTypes) ||
        (f.size() > 2 && f.ends_with(".*") &&
         known_family(std::string_view(f).substr(0, f.size() - 2)));
    if (!ok) {
      return unexpected(ErrorCode::kInvalidArgument, fmt::format("unknown event type \"{}\"", f));
    }
    if (std::find(out.begin(), out.end(), f) == out.end()) out.push_back(std::move(f));
  }
  return out;
}

std::span<const int64_t> default_retry_schedule_ms() { return kDefaultSchedule; }

std::optional<int64_t> retry_delay_ms(std::span<const int64_t> schedule, int attempts_made,
                                      double jitter_unit) {
  if (attempts_made < 0 || static_cast<size_t>(attempts_made) >= schedule.size()) {
    return std::nullopt;
  }
  int64_t base = schedule[static_cast<size_t>(attempts_made)];
  double unit = std::clamp(jitter_unit, 0.0, 1.0);
  return base + static_cast<int64_t>(static_cast<double>(base) * 0.2 * unit);
}

std::optional<int64_t> parse_retry_after_ms(std::string_view value, int64_t now_wall_ms) {
  while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  while (!value.empty() && value.back() == ' ') value.remove_suffix(1);
  if (value.empty()) return std::nullopt;
  int64_t seconds = 0;
  auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), seconds);
  if (ec == std::errc() && p == value.data() + value.size()) {
    if (seconds < 0) return std::nullopt;
    return std::min<int64_t>(seconds, kMaxRetryAfterMs / 1000) * 1000;
  }
  // IMF-fixdate, the only HTTP-date form senders may generate (RFC 9110 section 5.6.7).
  std::tm tm{};
  std::string text(value);
  const char* end = strptime(text.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  if (end == nullptr || *end != '\0') return std::nullopt;
  int64_t at_ms = static_cast<int64_t>(timegm(&tm)) * 1000;
  return std::max<int64_t>(0, at_ms - now_wall_ms);
}

AttemptOutcome decide_outcome(int status, std::optional<int64_t> retry_after_ms, int attempts_made,
                              std::span<const int64_t> schedule, int64_t now_ms,
                              double jitter_unit) {
  using Kind = AttemptOutcome::Kind;
  if (status >= 200 && status <= 299) return {Kind::kSucceeded, 0};
  if (status == 410) return {Kind::kEndpointGone, 0};
  auto delay = retry_delay_ms(schedule, attempts_made, jitter_unit);
  if (!delay) return {Kind::kFailed, 0};
  bool may_ask = status == 429 || status == 502 || status == 503 || status == 504;
  if (may_ask && retry_after_ms) {
    delay = std::max(*delay, std::min(*retry_after_ms, kMaxRetryAfterMs));
  }
  return {Kind::kRetry, now_ms + *delay};
}

const char* to_string(AttemptOutcome::Kind kind) {
  switch (kind) {
    case AttemptOutcome::Kind::kSucceeded:
      return "succeeded";
    case AttemptOutcome::Kind::kRetry:
      return "retry";
    case AttemptOutcome::Kind::kFailed:
      return "failed";
    case AttemptOutcome::Kind::kEndpointGone:
      return "gone";
  }
  return "unknown";
}

std::span<const storage::Migration> webhook_migrations() { return kMigrations; }

nlohmann::json WebhookEndpoint::to_json() const {
  nlohmann::json j = {
      {"id", id},         {"url", url},         {"description", description},
      {"events", events}, {"enabled", enabled}, {"created_at", format_rfc3339_ms(created_at_ms)}};
  if (!enabled) j["disabled_reason"] = disabled_reason;
  return j;
}

nlohmann::json DeliveryAttempt::to_json() const {
  nlohmann::json j = {{"attempted_at", format_rfc3339_ms(attempted_at_ms)},
                      {"duration_ms", duration_ms}};
  j["status_code"] = status_code == 0 ? nlohmann::json(nullptr) : nlohmann::json(status_code);
  j["error"] = error.empty() ? nlohmann::json(nullptr) : nlohmann::json(error);
  return j;
}

nlohmann::json Delivery::to_json() const {
  nlohmann::json log = nlohmann::json::array();
  for (const auto& a : attempt_log) log.push_back(a.to_json());
  nlohmann::json j = {{"id", id},
                      {"endpoint_id", endpoint_id},
                      {"event_id", event_id},
                      {"event_type", event_type},
                      {"status", status},
                      {"attempts", attempts},
                      {"created_at", format_rfc3339_ms(created_at_ms)},
                      {"attempt_log", std::move(log)}};
  if (status == "pending") j["next_attempt_at"] = format_rfc3339_ms(next_attempt_at_ms);
  return j;
}

Result<WebhookEndpoint> insert_endpoint(storage::Database& db, std::string url,
                                        std::string description, std::vector<std::string> events,
                                        int64_t now_ms) {
  auto id = random_token("whk_", 12);
  if (!id) return unexpected(std::move(id).error());
  auto secret = new_webhook_secret();
  if (!secret) return unexpected(std::move(secret).error());
  auto from_seq = last_event_seq(db);
  if (!from_seq) return fail(std::move(from_seq), "create webhook endpoint");
  WebhookEndpoint e;
  e.id = id->reveal();
  e.url = std::move(url);
  e.description = std::move(description);
  e.events = std::move(events);
  e.secret = std::move(*secret);
  e.created_at_ms = now_ms;
  e.from_seq = *from_seq;
  auto stmt = db.cached(
      "INSERT INTO webhook_endpoints (id, url, description, events, secret, enabled, "
      "disabled_reason, created_at_ms, from_seq) VALUES (?, ?, ?, ?, ?, 1, '', ?, ?)");
  if (!stmt) return fail(std::move(stmt), "create webhook endpoint");
  std::string events_text = nlohmann::json(e.events).dump();
  (*stmt)
      ->bind_text(1, e.id)
      .bind_text(2, e.url)
      .bind_text(3, e.description)
      .bind_text(4, events_text)
      .bind_text(5, e.secret.reveal())
      .bind_int64(6, e.created_at_ms)
      .bind_int64(7, e.from_seq);
  HAWKER_TRY_STATUS((*stmt)->run(), "create webhook endpoint");
  return e;
}

Result<std::vector<WebhookEndpoint>> list_endpoints(storage::Database& db) {
  return query_endpoints(db, "", std::nullopt);
}

Result<std::optional<WebhookEndpoint>> find_endpoint(storage::Database& db, std::string_view id) {
  auto found = query_endpoints(db, "WHERE id = ?", id);
  if (!found) return unexpected(std::move(found).error());
  if (found->empty()) return std::optional<WebhookEndpoint>{};
  return std::optional<WebhookEndpoint>{std::move(found->front())};
}

Result<bool> delete_endpoint(storage::Database& db, std::string_view id) {
  auto stmt = db.cached("DELETE FROM webhook_endpoints WHERE id = ?");
  if (!stmt) return fail(std::move(stmt), "delete webhook endpoint");
  (*stmt)->bind_text(1, id);
  HAWKER_TRY_STATUS((*stmt)->run(), "delete webhook endpoint");
  return db.changes() > 0;
}

Result<bool> set_endpoint_enabled(storage::Database& db, std::string_view id, bool enabled,
                                  std::string_view reason) {
  auto stmt =
      db.cached("UPDATE webhook_endpoints SET enabled = ?, disabled_reason = ? WHERE id = ?");
  if (!stmt) return fail(std::move(stmt), "update webhook endpoint");
  (*stmt)->bind_int64(1, enabled ? 1 : 0).bind_text(2, enabled ? "" : reason).bind_text(3, id);
  HAWKER_TRY_STATUS((*stmt)->run(), "update webhook endpoint");
  return db.changes() > 0;
}

Result<size_t> fan_out_events(storage::Database& db, int64_t now_ms, size_t limit) {
  auto cursor = scalar(db, "SELECT seq FROM webhook_cursor WHERE id = 1");
  if (!cursor) return fail(std::move(cursor), "read webhook cursor");
  auto endpoints = query_endpoints(db, "WHERE enabled = 1", std::nullopt);
  if (!endpoints) return unexpected(std::move(endpoints).error());
  auto advance = [&db](int64_t seq) -> Status {
    auto stmt = db.cached("UPDATE webhook_cursor SET seq = ? WHERE id = 1");
    if (!stmt) return fail(std::move(stmt), "advance webhook cursor");
    (*stmt)->bind_int64(1, seq);
    HAWKER_TRY_STATUS((*stmt)->run(), "advance webhook cursor");
    return ok_status();
  };
  if (endpoints->empty()) {
    // Nobody to deliver to: pass the events by their seq alone, without reading and parsing
    // each one (a flash sale writes a few per order and fans out after every batch).
    auto passed = db.cached(
        "SELECT count(*), max(seq) FROM (SELECT seq FROM events WHERE seq > ? ORDER BY seq "
        "LIMIT ?)");
    if (!passed) return fail(std::move(passed), "read outbox");
    (*passed)->bind_int64(1, *cursor).bind_int64(2, static_cast<int64_t>(limit));
    auto step = (*passed)->step();
    if (!step) return fail(std::move(step), "read outbox");
    auto count = static_cast<size_t>((*passed)->column_int64(0));
    int64_t last = (*passed)->column_int64(1);
    (*passed)->reset();
    if (count == 0) return size_t{0};
    HAWKER_TRY_STATUS(advance(last), "fan out");
    return count;
  }
  auto events = events_after(db, *cursor, limit);
  if (!events) return fail(std::move(events), "read outbox");
  if (events->empty()) return size_t{0};
  for (const auto& ev : *events) {
    for (const auto& ep : *endpoints) {
      if (ev.seq <= ep.from_seq || !event_matches(ep.events, ev.type)) continue;
      HAWKER_TRY_STATUS(insert_delivery(db, ep.id, ev.seq, now_ms, nullptr), "fan out event");
    }
  }
  HAWKER_TRY_STATUS(advance(events->back().seq), "fan out");
  return events->size();
}

Result<ClaimedDeliveries> claim_due_deliveries(storage::Database& db, int64_t now_ms,
                                               int64_t lease_ms, size_t limit) {
  ClaimedDeliveries out;
  if (limit > 0) {
    auto stmt = db.cached(
        "SELECT d.id, d.endpoint_id, e.url, e.secret, ev.seq, ev.id, ev.type, ev.data, "
        "ev.created_at_ms, d.attempts FROM webhook_deliveries d "
        "JOIN webhook_endpoints e ON e.id = d.endpoint_id JOIN events ev ON ev.seq = d.event_seq "
        "WHERE d.status = 'pending' AND e.enabled = 1 AND d.next_attempt_at_ms <= ? "
        "ORDER BY d.next_attempt_at_ms, d.rowid LIMIT ?");
    if (!stmt) return fail(std::move(stmt), "claim deliveries");
    (*stmt)->bind_int64(1, now_ms).bind_int64(2, static_cast<int64_t>(limit));
    while (true) {
      auto step = (*stmt)->step();
      if (!step) return fail(std::move(step), "claim deliveries");
      if (*step == storage::Statement::Step::kDone) break;
      const auto& s = **stmt;
      DueDelivery d;
      d.id = std::string(s.column_text(0));
      d.endpoint_id = std::string(s.column_text(1));
      d.url = std::string(s.column_text(2));
      d.secret = Secret(std::string(s.column_text(3)));
      Event ev;
      ev.seq = s.column_int64(4);
      ev.id = std::string(s.column_text(5));
      ev.type = std::string(s.column_text(6));
      ev.data_text = std::string(s.column_text(7));
      ev.created_at_ms = s.column_int64(8);
      d.event_id = ev.id;
      d.body = ev.envelope().dump();
      d.attempts = static_cast<int>(s.column_int64(9));
      out.due.push_back(std::move(d));
    }
    auto lease = db.cached("UPDATE webhook_deliveries SET next_attempt_at_ms = ? WHERE id = ?");
    if (!lease) return fail(std::move(lease), "lease deliveries");
    for (const auto& d : out.due) {
      (*lease)->reset();
      (*lease)->bind_int64(1, now_ms + lease_ms).bind_text(2, d.id);
      HAWKER_TRY_STATUS((*lease)->run(), "lease delivery");
    }
  }
  auto next = db.cached(
      "SELECT min(d.next_attempt_at_ms) FROM webhook_deliveries d "
      "JOIN webhook_endpoints e ON e.id = d.endpoint_id "
      "WHERE d.status = 'pending' AND e.enabled = 1");
  if (!next) return fail(std::move(next), "next due delivery");
  auto step = (*next)->step();
  if (!step) return fail(std::move(step), "next due delivery");
  if (*step == storage::Statement::Step::kRow && !(*next)->column_is_null(0)) {
    out.next_due_at_ms = (*next)->column_int64(0);
  }
  auto pending = scalar(db, "SELECT count(*) FROM webhook_deliveries WHERE status = 'pending'");
  if (!pending) return fail(std::move(pending), "count pending deliveries");
  out.pending = *pending;
  auto disabled = scalar(db, "SELECT count(*) FROM webhook_endpoints WHERE enabled = 0");
  if (!disabled) return fail(std::move(disabled), "count disabled endpoints");
  out.disabled_endpoints = *disabled;
  return out;
}

Status record_attempt(storage::Database& db, std::string_view delivery_id,
                      const DeliveryAttempt& attempt, const AttemptOutcome& outcome) {
  auto log = db.cached(
      "INSERT INTO webhook_attempts (delivery_id, attempted_at_ms, status_code, duration_ms, "
      "error) VALUES (?, ?, ?, ?, ?)");
  if (!log) return unexpected(std::move(log).error().with_context("log attempt"));
  (*log)
      ->bind_text(1, delivery_id)
      .bind_int64(2, attempt.attempted_at_ms)
      .bind_int64(3, attempt.status_code)
      .bind_int64(4, attempt.duration_ms)
      .bind_text(5, attempt.error);
  HAWKER_TRY_STATUS((*log)->run(), "log attempt");

  using Kind = AttemptOutcome::Kind;
  const char* status = outcome.kind == Kind::kSucceeded ? "succeeded"
                       : outcome.kind == Kind::kRetry   ? "pending"
                                                        : "failed";
  int64_t now = attempt.attempted_at_ms + attempt.duration_ms;
  auto update = db.cached(
      "UPDATE webhook_deliveries SET attempts = attempts + 1, status = ?, next_attempt_at_ms = ?, "
      "updated_at_ms = ? WHERE id = ?");
  if (!update) return unexpected(std::move(update).error().with_context("update delivery"));
  (*update)
      ->bind_text(1, status)
      .bind_int64(2, outcome.kind == Kind::kRetry ? outcome.next_attempt_at_ms : now)
      .bind_int64(3, now)
      .bind_text(4, delivery_id);
  HAWKER_TRY_STATUS((*update)->run(), "update delivery");

  if (outcome.kind == Kind::kEndpointGone) {
    auto gone = db.cached(
        "UPDATE webhook_endpoints SET enabled = 0, disabled_reason = 'the endpoint answered 410 "
        "Gone' WHERE id = (SELECT endpoint_id FROM webhook_deliveries WHERE id = ?)");
    if (!gone) return unexpected(std::move(gone).error().with_context("disable endpoint"));
    (*gone)->bind_text(1, delivery_id);
    HAWKER_TRY_STATUS((*gone)->run(), "disable endpoint");
  }
  return ok_status();
}

Result<std::vector<Delivery>> list_deliveries(storage::Database& db, std::string_view endpoint_id,
                                              size_t limit) {
  auto stmt = db.cached(
      "SELECT d.id FROM webhook_deliveries d WHERE d.endpoint_id = ? "
      "ORDER BY d.created_at_ms DESC, d.rowid DESC LIMIT ?");
  if (!stmt) return fail(std::move(stmt), "list deliveries");
  (*stmt)->bind_text(1, endpoint_id).bind_int64(2, static_cast<int64_t>(limit));
  std::vector<std::string> ids;
  while (true) {
    auto step = (*stmt)->step();
    if (!step) return fail(std::move(step), "list deliveries");
    if (*step == storage::Statement::Step::kDone) break;
    ids.emplace_back((*stmt)->column_text(0));
  }
  std::vector<Delivery> out;
  auto attempts = db.cached(
      "SELECT attempted_at_ms, status_code, duration_ms, error FROM webhook_attempts "
      "WHERE delivery_id = ? ORDER BY id");
  if (!attempts) return fail(std::move(attempts), "list attempts");
  for (const auto& id : ids) {
    auto d = find_delivery(db, id);
    if (!d) return unexpected(std::move(d).error());
    if (!d->has_value()) continue;
    (*attempts)->reset();
    (*attempts)->bind_text(1, id);
    while (true) {
      auto step = (*attempts)->step();
      if (!step) return fail(std::move(step), "list attempts");
      if (*step == storage::Statement::Step::kDone) break;
      const auto& s = **attempts;
      (*d)->attempt_log.push_back(
          DeliveryAttempt{s.column_int64(0), static_cast<int>(s.column_int64(1)), s.column_int64(2),
                          std::string(s.column_text(3))});
    }
    out.push_back(std::move(**d));
  }
  return out;
}

Result<std::optional<Delivery>> replay_delivery(storage::Database& db, std::string_view delivery_id,
                                                int64_t now_ms) {
  auto original = find_delivery(db, delivery_id);
  if (!original) return unexpected(std::move(original).error());
  if (!original->has_value()) return std::optional<Delivery>{};
  std::string id;
  HAWKER_TRY_STATUS(
      insert_delivery(db, (*original)->endpoint_id, (*original)->event_seq, now_ms, &id),
      "replay delivery");
  return find_delivery(db, id);
}

}  // namespace hawker::commerce
