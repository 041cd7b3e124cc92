#pragma once

#include <cstdint>
#include <memory>
#include <random>
#include <vector>

#include "commerce/events.h"
#include "commerce/outbound.h"
#include "commerce/webhooks.h"
#include "core/clock.h"
#include "core/loop.h"
#include "core/metrics.h"
#include "storage/store.h"

namespace hawker::commerce {

struct WebhookDispatcherOptions {
  /// Waits before each attempt; see default_retry_schedule_ms().
  std::vector<int64_t> retry_schedule_ms;
  /// How often the outbox and the queue are checked when nothing woke the dispatcher: a backstop
  /// for events written by another process and for lost wake-ups.
  int64_t poll_interval_ms = 5'000;
  /// Deliveries sent at once.
  size_t max_in_flight = 16;
  /// How long a taken delivery is held before another sender may take it (longer than the
  /// outbound total timeout), so a crash mid-send retries it after this.
  int64_t lease_ms = 60'000;
  /// Outbox events moved into deliveries per transaction.
  size_t fan_out_batch = 256;
};

/// Delivers outbox events to the seller's endpoints, at least once. Two stages, both durable:
/// fan-out moves a cursor over the outbox and adds one pending delivery row per matching
/// endpoint in the same transaction; the sender takes due rows (leasing them), signs and POSTs
/// each, and records the attempt and its outcome. Woken by the EventBus after every commit,
/// by a timer when the next retry is due, and by a slow poll. Loop thread only.
class WebhookDispatcher {
 public:
  WebhookDispatcher(storage::Store& store, EventBus& bus, OutboundClient& client, Loop& loop,
                    Clock& clock, Metrics& metrics, WebhookDispatcherOptions options);
  ~WebhookDispatcher();
  WebhookDispatcher(const WebhookDispatcher&) = delete;
  WebhookDispatcher& operator=(const WebhookDispatcher&) = delete;

  /// Subscribes to the bus and starts the timers; pending deliveries from before a restart are
  /// picked up at once.
  void start();
  /// Stops taking new work; answers already on their way are still recorded if storage is open.
  void stop();
  /// Something changed (events committed, a delivery replayed, an endpoint enabled).
  void wake();

 private:
  void fan_out();
  void claim();
  void send(DueDelivery delivery);
  void arm_next(std::optional<int64_t> next_due_at_ms);

  storage::Store& store_;
  EventBus& bus_;
  OutboundClient& client_;
  Loop& loop_;
  Clock& clock_;
  WebhookDispatcherOptions options_;
  Timer poll_timer_;
  Timer retry_timer_;
  std::mt19937_64 rng_;
  /// Shared with callbacks so an answer arriving after destruction does nothing.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  bool running_ = false;
  bool fanning_out_ = false;
  bool fan_out_again_ = false;
  bool claiming_ = false;
  bool claim_again_ = false;
  size_t sending_ = 0;

  Family<Counter>& deliveries_;
  Gauge& queue_depth_;
  Gauge& disabled_endpoints_;
  Gauge& in_flight_;
  Histogram& attempt_seconds_;
};

}  // namespace hawker::commerce
