#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "core/secret.h"
#include "storage/migrations.h"
#include "storage/sqlite.h"

namespace hawker::commerce {

// ---- Standard Webhooks signing ----------------------------------------------------------------

/// A new endpoint secret: `whsec_` followed by the base64 of 32 random bytes.
Result<Secret> new_webhook_secret();

/// The `webhook-signature` value for one attempt: `v1,<base64 HMAC-SHA256(key,
/// "{id}.{ts}.{body}")>` where key is the base64-decoded part of `secret` after `whsec_` (Standard
/// Webhooks 1.0).
Result<std::string> webhook_signature(const Secret& secret, std::string_view msg_id,
                                      int64_t timestamp_s, std::string_view body);

// ---- Event filters ----------------------------------------------------------------------------

/// Whether an endpoint subscribed to `filters` wants events of `type`. A filter is an exact type
/// ("order.paid"), a family ("order.*") or everything ("*").
bool event_matches(std::span<const std::string> filters, std::string_view type);

/// Checks a list of filters from an API body: non-empty, each "*", a known type or a known
/// family ("order.*"). The error names the offending entry.
Result<std::vector<std::string>> parse_event_filters(const nlohmann::json& events);

// ---- Retry policy -----------------------------------------------------------------------------

/// Delays before each attempt, counted from the previous one: attempt 1 waits [0], attempt 2
/// waits [1] after attempt 1 failed, and so on. About three days in all.
std::span<const int64_t> default_retry_schedule_ms();

/// The wait before the next attempt after `attempts_made` attempts failed, with up to +20 %
/// jitter (`jitter_unit` in [0, 1) picks where), or nullopt when the schedule is exhausted.
std::optional<int64_t> retry_delay_ms(std::span<const int64_t> schedule, int attempts_made,
                                      double jitter_unit);

/// A Retry-After value (delay-seconds or an HTTP-date) as milliseconds from `now_wall_ms`;
/// nullopt when it cannot be read. Dates in the past give 0.
std::optional<int64_t> parse_retry_after_ms(std::string_view value, int64_t now_wall_ms);

/// What one delivery attempt's answer means.
struct AttemptOutcome {
  enum class Kind {
    kSucceeded,     ///< 2xx
    kRetry,         ///< failed; another attempt at next_attempt_at_ms
    kFailed,        ///< failed and the schedule is exhausted
    kEndpointGone,  ///< 410: the endpoint is disabled, the delivery ends
  };
  Kind kind = Kind::kFailed;
  int64_t next_attempt_at_ms = 0;
};

/// Decides an attempt's outcome. `status` is the HTTP status (0 when no answer came: refused,
/// timed out, blocked). `attempts_made` counts this attempt. Retry-After is honoured on 429,
/// 502, 503 and 504, never waiting longer than a day nor less than the schedule asks.
AttemptOutcome decide_outcome(int status, std::optional<int64_t> retry_after_ms, int attempts_made,
                              std::span<const int64_t> schedule, int64_t now_ms,
                              double jitter_unit);

const char* to_string(AttemptOutcome::Kind kind);

// ---- Storage ----------------------------------------------------------------------------------

/// Tables webhook_endpoints, webhook_cursor, webhook_deliveries, webhook_attempts
/// (migrations 160-179).
std::span<const storage::Migration> webhook_migrations();

/// A seller's registered receiver. The secret is kept in clear in the database because each
/// attempt is signed with it (a hash would not do); it is shown to the seller only at creation.
struct WebhookEndpoint {
  std::string id;  ///< "whk_..."
  std::string url;
  std::string description;
  std::vector<std::string> events;
  Secret secret;
  bool enabled = true;
  std::string disabled_reason;
  int64_t created_at_ms = 0;
  /// Only events after this outbox seq are delivered to the endpoint.
  int64_t from_seq = 0;

  /// The public form, never with the secret.
  nlohmann::json to_json() const;
};

struct DeliveryAttempt {
  int64_t attempted_at_ms = 0;
  int status_code = 0;  ///< 0 when no HTTP answer came
  int64_t duration_ms = 0;
  std::string error;
  nlohmann::json to_json() const;
};

/// One event owed to one endpoint, with its attempts log.
struct Delivery {
  std::string id;  ///< "whd_..."
  std::string endpoint_id;
  int64_t event_seq = 0;
  std::string event_id;
  std::string event_type;
  std::string status;  ///< pending, succeeded, failed
  int attempts = 0;
  int64_t next_attempt_at_ms = 0;
  int64_t created_at_ms = 0;
  std::vector<DeliveryAttempt> attempt_log;
  nlohmann::json to_json() const;
};

/// A delivery taken by the sender, with what it needs to send it.
struct DueDelivery {
  std::string id;
  std::string endpoint_id;
  std::string url;
  Secret secret;
  std::string event_id;  ///< the webhook-id header
  std::string body;      ///< the event envelope, serialised
  int attempts = 0;      ///< attempts made before this one
};

Result<WebhookEndpoint> insert_endpoint(storage::Database& db, std::string url,
                                        std::string description, std::vector<std::string> events,
                                        int64_t now_ms);
Result<std::vector<WebhookEndpoint>> list_endpoints(storage::Database& db);
Result<std::optional<WebhookEndpoint>> find_endpoint(storage::Database& db, std::string_view id);
/// Removes the endpoint with its deliveries; false when there was none.
Result<bool> delete_endpoint(storage::Database& db, std::string_view id);
/// Enables or disables an endpoint; false when there was none.
Result<bool> set_endpoint_enabled(storage::Database& db, std::string_view id, bool enabled,
                                  std::string_view reason);

/// Moves the cursor over up to `limit` outbox events and, in the same transaction, adds one
/// pending delivery per enabled endpoint whose filter matches. Returns the events consumed, so
/// the caller knows to call again when it equals `limit`.
Result<size_t> fan_out_events(storage::Database& db, int64_t now_ms, size_t limit);

struct ClaimedDeliveries {
  std::vector<DueDelivery> due;
  /// When the earliest pending delivery not taken becomes due, if any.
  std::optional<int64_t> next_due_at_ms;
  /// Pending deliveries, taken ones included.
  int64_t pending = 0;
  int64_t disabled_endpoints = 0;
};

/// Takes up to `limit` due deliveries of enabled endpoints, leasing each for `lease_ms` (its
/// next_attempt_at moves that far), so a crash mid-send retries it after the lease.
Result<ClaimedDeliveries> claim_due_deliveries(storage::Database& db, int64_t now_ms,
                                               int64_t lease_ms, size_t limit);

/// Logs an attempt and applies its outcome (a 410 also disables the endpoint).
Status record_attempt(storage::Database& db, std::string_view delivery_id,
                      const DeliveryAttempt& attempt, const AttemptOutcome& outcome);

/// The endpoint's latest deliveries (newest first) with their attempts.
Result<std::vector<Delivery>> list_deliveries(storage::Database& db, std::string_view endpoint_id,
                                              size_t limit);

/// A new pending delivery of the same event to the same endpoint, due now; nullopt when the
/// delivery does not exist.
Result<std::optional<Delivery>> replay_delivery(storage::Database& db, std::string_view delivery_id,
                                                int64_t now_ms);

}  // namespace hawker::commerce
