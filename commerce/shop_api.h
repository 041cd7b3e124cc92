#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_set>

#include "commerce/auth.h"
#include "commerce/events.h"
#include "commerce/orders.h"
#include "commerce/payments.h"
#include "core/clock.h"
#include "core/loop.h"
#include "core/metrics.h"
#include "http/router.h"
#include "storage/store.h"

namespace hawker::commerce {

struct ShopOptions {
  /// How long a reservation holds its stock for payment (orders.payment-window).
  int64_t payment_window_ms = 10 * 60 * 1000;
  /// low_stock_threshold of products created without one (orders.low-stock-threshold).
  int64_t default_low_stock_threshold = 10;
  /// How often the loop checks whether the earliest reservation is due.
  int64_t expiry_tick_ms = 200;
  /// Most reservations expired in one write job.
  size_t expiry_batch = 500;
  /// Tolerance for the hosted provider's webhook-timestamp.
  int64_t webhook_tolerance_s = 300;
};

/// The shop's HTTP API: catalogue (admin CRUD, public read, images), orders (reservation with
/// idempotency keys, buyer view and cancel, admin list and actions), payments (test provider's
/// pay, hosted provider's webhook) and the expiry of unpaid reservations. Loop thread only;
/// every database touch is a Store job.
class ShopApi {
 public:
  ShopApi(Loop& loop, storage::Store& store, AdminAuth& auth, const EventBus& bus, Metrics& metrics,
          const Clock& clock, std::unique_ptr<PaymentProvider> provider, ShopOptions options);
  ~ShopApi();
  ShopApi(const ShopApi&) = delete;
  ShopApi& operator=(const ShopApi&) = delete;

  Status add_routes(http::Router& router);
  /// Expires reservations that became overdue while hawker was down, then starts the timer.
  void start();
  void stop();

 private:
  // Catalogue.
  void create_product(const http::Request& req, const http::ExchangePtr& ex);
  void list_products(const http::ExchangePtr& ex);
  void get_product(const http::Request& req, const http::ExchangePtr& ex, bool admin);
  void patch_product(const http::Request& req, const http::ExchangePtr& ex);
  void delete_product(const http::Request& req, const http::ExchangePtr& ex);
  void upload_image(const http::Request& req, const http::ExchangePtr& ex);
  void serve_image(const http::Request& req, const http::ExchangePtr& ex);
  void product_stock(const http::Request& req, const http::ExchangePtr& ex);
  // Orders.
  void create_order(const http::Request& req, const http::ExchangePtr& ex);
  void get_order(const http::Request& req, const http::ExchangePtr& ex, OrderKey key);
  void list_orders(const http::Request& req, const http::ExchangePtr& ex);
  void order_action(const http::Request& req, const http::ExchangePtr& ex, OrderKey key,
                    OrderTrigger trigger);
  // Payments.
  void test_pay(const http::Request& req, const http::ExchangePtr& ex);
  void hosted_webhook(const http::Request& req, const http::ExchangePtr& ex);

  void admin(const http::Request& req, const http::ExchangePtr& ex, std::string_view role,
             std::function<void()> then);
  void answer_change(const http::ExchangePtr& ex, Result<OrderChange> change, bool with_token);
  void note_expiry(int64_t expires_at_ms);
  void tick();
  void count(std::string_view outcome, double by = 1.0);

  Loop& loop_;
  storage::Store& store_;
  AdminAuth& auth_;
  const EventBus& bus_;
  Metrics& metrics_;
  const Clock& clock_;
  /// Shared with order_intake_, whose jobs may outlive a request's handler.
  std::shared_ptr<PaymentProvider> provider_;
  /// The storage job group every POST /api/orders is queued to: the orders that queue up
  /// while a commit syncs are reserved together (docs/commerce.md).
  std::shared_ptr<OrderIntake> order_intake_;
  ShopOptions options_;
  Timer timer_;
  std::optional<int64_t> next_expiry_ms_;
  bool sweeping_ = false;
  bool stopped_ = false;
  /// Idempotency keys whose first request is still in the storage queue: a retry meanwhile
  /// gets 409 rather than a second attempt.
  std::unordered_set<std::string> in_flight_keys_;
  Histogram& reservation_latency_;
  /// hawker_orders_total's children by outcome, so that counting an order allocates nothing
  /// and takes no lock once each outcome was seen.
  std::map<std::string, Counter*, std::less<>> outcome_counters_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace hawker::commerce
