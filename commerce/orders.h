#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "commerce/catalogue.h"
#include "commerce/events.h"
#include "core/result.h"
#include "storage/migrations.h"
#include "storage/sqlite.h"
#include "storage/store.h"

namespace hawker::commerce {

/// Where an order is in its life. docs/commerce.md draws the machine.
enum class OrderStatus {
  kReserved,
  kPaid,
  kShipped,
  kExpired,
  kCancelled,
  kRefunded,
  kNeedsRefund
};
/// What may happen to an order.
enum class OrderTrigger {
  kPay,              ///< payment confirmed inside the window
  kExpire,           ///< the payment window passed
  kCancel,           ///< buyer or seller cancelled before payment
  kShip,             ///< the seller shipped it
  kRefund,           ///< the seller refunded the money
  kLatePayRestored,  ///< payment after expiry/cancel, and the stock could be taken again
  kLatePayNoStock,   ///< payment after expiry/cancel with nothing left: money must go back
};

const char* to_string(OrderStatus s);
std::optional<OrderStatus> parse_order_status(std::string_view s);
const char* to_string(OrderTrigger t);

/// The transition table: the state `trigger` leads to from `from`, or nullopt when the trigger
/// is not allowed there. Every status change in the code goes through it.
std::optional<OrderStatus> next_status(OrderStatus from, OrderTrigger trigger);

/// Event type told to the seller when a late payment found no stock.
inline constexpr std::string_view kOrderNeedsRefund = "order.needs_refund";

struct Order {
  std::string id;     ///< "ord_...", what the seller sees
  std::string token;  ///< "otk_...", the buyer's unguessable handle (a bearer capability)
  std::string product_id;
  int64_t quantity = 0;
  int64_t unit_price_minor = 0;
  int64_t amount_minor = 0;
  std::string currency;
  std::string email;
  std::string name;
  nlohmann::json shipping_address;
  OrderStatus status = OrderStatus::kReserved;
  bool restocked = false;
  /// Whether the order's units are out of stock on its account (reserved, sold, or refunded
  /// without restock): the ledger's reserved + sold.
  bool holds_stock = true;
  std::string payment_provider;
  std::string payment_ref;
  int64_t created_at_ms = 0;
  int64_t expires_at_ms = 0;
  int64_t updated_at_ms = 0;
};

/// The buyer's view (with token) or the seller's (also without it: `include_token`).
nlohmann::json to_json(const Order& o, bool include_token);

/// Orders, idempotency keys and payments (migration 140).
std::span<const storage::Migration> order_migrations();

struct OrderRequest {
  std::string product_id;
  int64_t quantity = 1;
  std::string email;
  std::string name;
  nlohmann::json shipping_address;
};
inline constexpr int64_t kMaxQuantity = 100;
inline constexpr size_t kMaxIdempotencyKey = 255;

/// The body of the 201 that created `o` and of every replay of it: to_json(o, true) with
/// "payment_url", the same text as nlohmann's dump, written without a JSON tree.
/// `shipping_address` is o.shipping_address as JSON text. For an order as created (no payment).
std::string created_answer(const Order& o, std::string_view shipping_address,
                           std::string_view payment_url);

/// Validates a POST /api/orders body; the error names the field.
std::optional<FieldError> parse_order_request(const nlohmann::json& body, OrderRequest& out);

enum class FlatRead { kRead, kNeedsTree };
/// Reads a POST /api/orders body from its text without a JSON tree when it has the usual shape:
/// one object whose known fields each come once, as strings and a whole number. kRead: `out`
/// and `error` are what parsing the text and calling parse_order_request would give.
/// kNeedsTree (an address object, another type, an unknown or repeated field, not JSON):
/// parse the tree and judge that; `out` may hold part of the body.
FlatRead read_flat_order_request(std::string_view text, OrderRequest& out,
                                 std::optional<FieldError>& error);
/// A fingerprint of the request's meaning, to tell a retry from a reuse of the key.
std::string request_fingerprint(const OrderRequest& r);
/// The same, with r.shipping_address already printed as JSON text.
std::string request_fingerprint(const OrderRequest& r, std::string_view shipping_address);

/// An HTTP answer decided inside the transaction, kept for idempotent replay.
struct StoredAnswer {
  int status = 0;
  std::string body;       ///< the JSON text, sent as it is
  bool replayed = false;  ///< the answer to an earlier request with this key
  std::string outcome;    ///< "reserved", "sold_out", "insufficient_stock", ... for metrics
};

struct Reservation {
  StoredAnswer answer;
  std::optional<Order> order;
  std::vector<Event> events;
};

/// Builds the payment URL the buyer is sent to.
using PaymentUrlFn = std::function<std::string(const Order&)>;

/// One write job: replays the key's first answer, refuses a reused key with another body
/// (422), or takes the stock with a conditional UPDATE and writes the order, its movement, its
/// events and the key's answer. Sold out and insufficient stock are answers (409), stored too.
Result<Reservation> reserve_order(storage::Database& db, std::string_view idempotency_key,
                                  const OrderRequest& request, int64_t now_ms, int64_t window_ms,
                                  const PaymentUrlFn& payment_url);

/// One POST /api/orders as the loop hands it to the storage thread.
struct OrderAttempt {
  std::string idempotency_key;
  OrderRequest request;
  int64_t now_ms = 0;
  int64_t window_ms = 0;
};

/// Many attempts at once, with the outcome reserve_order would give each in turn: a replay or
/// a refused key reuse for keys stored before, and for the others each product's stock handed
/// out in order, the units taken with one UPDATE per product, the orders, their movements,
/// their order.created events and the keys written many rows to a statement. A product's
/// stock events (stock.changed, and stock.low or stock.sold_out when crossed) are written once
/// for the run, from its stock before to its stock after, and go with the last order that took
/// units of it. `out` gets one Reservation per attempt. An error (a key twice in `attempts`,
/// an SQLite failure) leaves anything written to the caller to roll back.
Status reserve_orders(storage::Database& db, std::span<const OrderAttempt* const> attempts,
                      const PaymentUrlFn& payment_url, std::vector<Reservation>& out);

/// The storage job group of order attempts: queued together, they run as reserve_orders; alone
/// (or when that fails), each as reserve_order.
class OrderIntake final : public storage::JobGroup<OrderAttempt, Reservation> {
 public:
  explicit OrderIntake(PaymentUrlFn payment_url) : payment_url_(std::move(payment_url)) {}
  /// Prepares the statements of orders reserved together into the write connection's cache,
  /// at start, so the first run of a sale does not parse them (a few of them insert 32 rows).
  static Status prepare(storage::Database& db);
  Result<Reservation> run_one(storage::Database& db, const OrderAttempt& attempt) override;
  Status run_many(storage::Database& db, std::span<const OrderAttempt* const> attempts,
                  std::vector<Reservation>& out) override;

 private:
  PaymentUrlFn payment_url_;
};

Result<std::optional<Order>> find_order_by_token(storage::Database& db, std::string_view token);
Result<std::optional<Order>> find_order_by_id(storage::Database& db, std::string_view id);

struct OrderFilter {
  std::optional<OrderStatus> status;
  std::optional<std::string> product_id;
  std::optional<int64_t> created_from_ms;
  std::optional<int64_t> created_to_ms;
  int64_t limit = 100;
};
Result<std::vector<Order>> list_orders(storage::Database& db, const OrderFilter& filter);

/// A change applied to one order: the order after it and the events it wrote.
struct OrderChange {
  Order order;
  std::vector<Event> events;
};

/// Expires reservations whose window passed, at most `limit`: each status change is
/// conditional on the order still being reserved, so its stock comes back exactly once.
struct ExpirySweep {
  std::vector<Event> events;
  size_t expired = 0;
  std::optional<int64_t> next_expiry_ms;  ///< the earliest reservation still pending
};
Result<ExpirySweep> expire_overdue(storage::Database& db, int64_t now_ms, size_t limit);
/// The earliest expires_at among reserved orders.
Result<std::optional<int64_t>> next_expiry(storage::Database& db);

/// Applies a trigger (cancel, ship, refund) to an order found by token or id. kConflict when
/// the table forbids it (the message says from which state), kNotFound when there is no such
/// order. `restock` applies to refunds of orders whose stock was sold.
enum class OrderKey { kToken, kId };
Result<OrderChange> apply_trigger(storage::Database& db, OrderKey key, std::string_view value,
                                  OrderTrigger trigger, bool restock, int64_t now_ms);

/// A confirmed payment. Duplicate deliveries of the same (provider, payment_ref) change
/// nothing. Inside the window: paid. After expiry or cancellation: re-reserved and paid when
/// stock remains, else needs_refund with an event for the seller.
struct PaymentConfirmation {
  std::string provider;
  std::string payment_ref;
  int64_t amount_minor = 0;
  std::string currency;
};
struct PaymentResult {
  OrderChange change;
  bool duplicate = false;
};
Result<PaymentResult> apply_payment(storage::Database& db, OrderKey key, std::string_view value,
                                    const PaymentConfirmation& payment, int64_t now_ms);

/// Stock held by reserved orders and sold by paid/shipped ones, for the invariant
/// stock + reserved + sold == stocked.
struct StockLedger {
  int64_t stock = 0;
  int64_t reserved = 0;
  int64_t sold = 0;
  int64_t movements = 0;  ///< sum of every movement; equals stock
  int64_t stocked = 0;    ///< sum of the seller's adjustments; equals stock + reserved + sold
};
Result<StockLedger> stock_ledger(storage::Database& db, std::string_view product_id);

}  // namespace hawker::commerce
