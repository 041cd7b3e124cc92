#include "commerce/webhooks_dispatcher.h"

#include <fmt/format.h>

#include <algorithm>

#include "core/log.h"

namespace hawker::commerce {
namespace {

constexpr const char* kLog = "webhooks";

std::string describe_failure(int status, std::string_view body) {
  std::string snippet(body.substr(0, 200));
  for (char& c : snippet) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  if (status >= 300 && status <= 399) {
    return fmt::format("HTTP {} (redirects are not followed)", status);
  }
  return snippet.empty() ? fmt::format("HTTP {}", status)
                         : fmt::format("HTTP {}: {}", status, snippet);
}

}  // namespace

WebhookDispatcher::WebhookDispatcher(storage::Store& store, EventBus& bus, OutboundClient& client,
                                     Loop& loop, Clock& clock, Metrics& metrics,
                                     WebhookDispatcherOptions options)
    : store_(store),
      bus_(bus),
      client_(client),
      loop_(loop),
      clock_(clock),
      options_(std::move(options)),
      poll_timer_(loop),
      retry_timer_(loop),
      rng_(std::random_device{}()),
      deliveries_(metrics.counter("hawker_webhook_deliveries_total",
                                  "Webhook delivery attempts by outcome (succeeded, retry, "
                                  "failed, gone)",
                                  {"outcome"})),
      queue_depth_(
          metrics.gauge("hawker_webhook_queue_depth", "Webhook deliveries waiting to succeed")
              .with({})),
      disabled_endpoints_(metrics
                              .gauge("hawker_webhook_endpoints_disabled",
                                     "Webhook endpoints disabled (by the seller or after 410)")
                              .with({})),
      in_flight_(metrics.gauge("hawker_webhook_in_flight", "Webhook requests being sent").with({})),
      attempt_seconds_(metrics
                           .histogram("hawker_webhook_attempt_duration_seconds",
                                      "Time from sending a webhook to its answer or failure", {})
                           .with({})) {
  if (options_.retry_schedule_ms.empty()) {
    auto def = default_retry_schedule_ms();
    options_.retry_schedule_ms.assign(def.begin(), def.end());
  }
  options_.max_in_flight = std::max<size_t>(1, options_.max_in_flight);
}

WebhookDispatcher::~WebhookDispatcher() {
  *alive_ = false;
  stop();
}

void WebhookDispatcher::start() {
  if (running_) return;
  running_ = true;
  bus_.subscribe([this, alive = std::weak_ptr<bool>(alive_)](const Event&) {
    if (auto a = alive.lock(); a && *a) wake();
  });
  auto interval = static_cast<uint64_t>(std::max<int64_t>(options_.poll_interval_ms, 100));
  poll_timer_.start(interval, interval, [this] { wake(); });
  wake();
}

void WebhookDispatcher::stop() {
  running_ = false;
  poll_timer_.stop();
  retry_timer_.stop();
}

void WebhookDispatcher::wake() { fan_out(); }

void WebhookDispatcher::fan_out() {
  if (!running_) return;
  if (fanning_out_) {
    fan_out_again_ = true;
    return;
  }
  fanning_out_ = true;
  int64_t now = clock_.wall_ms();
  size_t batch = options_.fan_out_batch;
  store_.write<size_t>(
      [now, batch](storage::Database& db) { return fan_out_events(db, now, batch); },
      [this, alive = alive_, batch](Result<size_t> moved) {
        if (!*alive) return;
        fanning_out_ = false;
        if (!moved) log::warn(kLog, "fan-out failed: {}", moved.error().message);
        bool more = (moved && *moved == batch) || fan_out_again_;
        fan_out_again_ = false;
        if (more) fan_out();
        claim();
      });
}

void WebhookDispatcher::claim() {
  if (!running_) return;
  if (claiming_) {
    claim_again_ = true;
    return;
  }
  claiming_ = true;
  int64_t now = clock_.wall_ms();
  int64_t lease = options_.lease_ms;
  size_t room = options_.max_in_flight > sending_ ? options_.max_in_flight - sending_ : 0;
  store_.write<ClaimedDeliveries>(
      [now, lease, room](storage::Database& db) {
        return claim_due_deliveries(db, now, lease, room);
      },
      [this, alive = alive_, room](Result<ClaimedDeliveries> claimed) {
        if (!*alive) return;
        claiming_ = false;
        if (!claimed) {
          log::warn(kLog, "taking due deliveries failed: {}", claimed.error().message);
          return;  // the poll timer tries again
        }
        queue_depth_.set(static_cast<double>(claimed->pending));
        disabled_endpoints_.set(static_cast<double>(claimed->disabled_endpoints));
        bool full = room > 0 && claimed->due.size() == room;
        for (auto& d : claimed->due) send(std::move(d));
        if (claim_again_ || (full && sending_ < options_.max_in_flight)) {
          claim_again_ = false;
          claim();
          return;
        }
        arm_next(claimed->next_due_at_ms);
      });
}

void WebhookDispatcher::arm_next(std::optional<int64_t> next_due_at_ms) {
  if (!running_ || !next_due_at_ms || sending_ >= options_.max_in_flight) {
    retry_timer_.stop();
    return;
  }
  int64_t delay = std::max<int64_t>(0, *next_due_at_ms - clock_.wall_ms());
  // Beyond the poll interval the poll timer comes first anyway.
  if (delay > options_.poll_interval_ms) {
    retry_timer_.stop();
    return;
  }
  retry_timer_.start(static_cast<uint64_t>(delay) + 1, 0, [this] { claim(); });
}

void WebhookDispatcher::send(DueDelivery delivery) {
  ++sending_;
  in_flight_.set(static_cast<double>(sending_));
  int64_t started = clock_.wall_ms();
  int64_t timestamp = started / 1000;
  auto signature = webhook_signature(delivery.secret, delivery.event_id, timestamp, delivery.body);

  auto record = [this, alive = alive_, id = delivery.id, attempts = delivery.attempts + 1,
                 endpoint = delivery.endpoint_id,
                 started](int status, std::optional<std::string> retry_after, int64_t duration_ms,
                          std::string error) {
    if (!*alive) return;
    int64_t now = clock_.wall_ms();
    std::optional<int64_t> retry_after_ms;
    if (retry_after) retry_after_ms = parse_retry_after_ms(*retry_after, now);
    double jitter = std::uniform_real_distribution<double>(0.0, 1.0)(rng_);
    AttemptOutcome outcome =
        decide_outcome(status, retry_after_ms, attempts, options_.retry_schedule_ms, now, jitter);
    deliveries_.with({to_string(outcome.kind)}).inc();
    attempt_seconds_.observe(static_cast<double>(duration_ms) / 1000.0);
    if (outcome.kind == AttemptOutcome::Kind::kEndpointGone) {
      log::warn(kLog, "endpoint {} answered 410 Gone: disabled", endpoint);
    } else if (outcome.kind != AttemptOutcome::Kind::kSucceeded) {
      log::info(kLog, "delivery {} to {} attempt {} failed ({}): {}", id, endpoint, attempts,
                to_string(outcome.kind), error);
    }
    DeliveryAttempt attempt{started, status, duration_ms, std::move(error)};
    store_.write([id, attempt, outcome](
                     storage::Database& db) { return record_attempt(db, id, attempt, outcome); },
                 [this, alive](Status s) {
                   if (!*alive) return;
                   if (sending_ > 0) --sending_;
                   in_flight_.set(static_cast<double>(sending_));
                   if (!s) log::warn(kLog, "recording an attempt failed: {}", s.error().message);
                   claim();
                 });
  };

  if (!signature) {
    record(0, std::nullopt, 0, "cannot sign: " + signature.error().message);
    return;
  }
  OutboundRequest request;
  request.url = delivery.url;
  request.body = std::move(delivery.body);
  request.headers = {{"Content-Type", "application/json"},
                     {"webhook-id", delivery.event_id},
                     {"webhook-timestamp", std::to_string(timestamp)},
                     {"webhook-signature", *signature}};
  client_.post(std::move(request), [record = std::move(record), started, this,
                                    alive = alive_](Result<OutboundResponse> r) mutable {
    if (!*alive) return;
    if (!r) {
      record(0, std::nullopt, clock_.wall_ms() - started, std::move(r).error().message);
      return;
    }
    int status = r->status;
    std::string error = status >= 200 && status <= 299 ? "" : describe_failure(status, r->body);
    record(status, std::move(r->retry_after), r->duration_ms, std::move(error));
  });
}

}  // namespace hawker::commerce
