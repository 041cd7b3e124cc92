#include "commerce/orders.h"

#include <fmt/format.h>

#include <array>
#include <bit>
#include <unordered_set>

#include "core/clock.h"
#include "core/log.h"
#include "core/secret.h"

namespace hawker::commerce {
namespace {

constexpr storage::Migration kMigrations[] = {
    {140, "orders, idempotency keys, payments", R"sql(
CREATE TABLE orders (
  id TEXT PRIMARY KEY,
  token TEXT NOT NULL UNIQUE,
  product_id TEXT NOT NULL REFERENCES products(id),
  quantity INTEGER NOT NULL CHECK (quantity > 0),
  unit_price_minor INTEGER NOT NULL,
  amount_minor INTEGER NOT NULL,
  currency TEXT NOT NULL,
  email TEXT NOT NULL,
  name TEXT NOT NULL,
  shipping_address TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('reserved', 'paid', 'shipped', 'expired', 'cancelled',
                                         'refunded', 'needs_refund')),
  restocked INTEGER NOT NULL DEFAULT 0,
  holds_stock INTEGER NOT NULL DEFAULT 1,
  payment_provider TEXT NOT NULL DEFAULT '',
  payment_ref TEXT NOT NULL DEFAULT '',
  created_at_ms INTEGER NOT NULL,
  expires_at_ms INTEGER NOT NULL,
  updated_at_ms INTEGER NOT NULL
);
CREATE INDEX orders_reserved_expiry ON orders(expires_at_ms) WHERE status = 'reserved';
CREATE INDEX orders_product ON orders(product_id, created_at_ms);
CREATE INDEX orders_created ON orders(created_at_ms);
CREATE TABLE idempotency_keys (
  key TEXT PRIMARY KEY,
  fingerprint TEXT NOT NULL,
  status INTEGER NOT NULL,
  body TEXT NOT NULL,
  created_at_ms INTEGER NOT NULL
);
CREATE INDEX idempotency_keys_created ON idempotency_keys(created_at_ms);
CREATE TABLE payments (
  provider TEXT NOT NULL,
  payment_ref TEXT NOT NULL,
  order_id TEXT NOT NULL REFERENCES orders(id),
  amount_minor INTEGER NOT NULL,
  currency TEXT NOT NULL,
  created_at_ms INTEGER NOT NULL,
  PRIMARY KEY (provider, payment_ref)
);
)sql"},
    // A key's row was three B-tree inserts (table, key, created_at) and a copy of the whole
    // 201 body. Now it is two (seq, key): pruning walks seq, which follows time, and a 201
    // names its order, whose creation-time view is rebuilt on replay. Other answers keep
    // their body. Keys stored before keep theirs too.
    {141, "idempotency keys: ordered by seq, 201s by reference to the order", R"sql(
ALTER TABLE idempotency_keys RENAME TO idempotency_keys_140;
CREATE TABLE idempotency_keys (
  seq INTEGER PRIMARY KEY,
  key TEXT NOT NULL UNIQUE,
  fingerprint TEXT NOT NULL,
  status INTEGER NOT NULL,
  order_id TEXT REFERENCES orders(id),
  body TEXT,
  created_at_ms INTEGER NOT NULL,
  CHECK ((order_id IS NULL) != (body IS NULL))
);
INSERT INTO idempotency_keys (key, fingerprint, status, body, created_at_ms)
  SELECT key, fingerprint, status, body, created_at_ms FROM idempotency_keys_140
  ORDER BY created_at_ms, rowid;
DROP TABLE idempotency_keys_140;
)sql"},
    // SQLite checks `x IN (list of 3 or more)` through a temporary index built for each
    // statement: a B-tree opened and closed on every order INSERT. The same check as ORs
    // costs a few compares. Keys and payments reference orders, so the table is rebuilt under
    // deferred foreign keys: dropping it counts their references as violations, putting the
    // rows back under the same name counts them off again, before COMMIT checks.
    {142, "orders: status check without an IN list", R"sql(
PRAGMA defer_foreign_keys = ON;
CREATE TABLE orders_141 AS SELECT * FROM orders;
DROP TABLE orders;
CREATE TABLE orders (
  id TEXT PRIMARY KEY,
  token TEXT NOT NULL UNIQUE,
  product_id TEXT NOT NULL REFERENCES products(id),
  quantity INTEGER NOT NULL CHECK (quantity > 0),
  unit_price_minor INTEGER NOT NULL,
  amount_minor INTEGER NOT NULL,
  currency TEXT NOT NULL,
  email TEXT NOT NULL,
  name TEXT NOT NULL,
  shipping_address TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status = 'reserved' OR status = 'paid' OR status = 'shipped' OR
                              status = 'expired' OR status = 'cancelled' OR
                              status = 'refunded' OR status = 'needs_refund'),
  restocked INTEGER NOT NULL DEFAULT 0,
  holds_stock INTEGER NOT NULL DEFAULT 1,
  payment_provider TEXT NOT NULL DEFAULT '',
  payment_ref TEXT NOT NULL DEFAULT '',
  created_at_ms INTEGER NOT NULL,
  expires_at_ms INTEGER NOT NULL,
  updated_at_ms INTEGER NOT NULL
);
INSERT INTO orders SELECT id, token, product_id, quantity, unit_price_minor, amount_minor,
  currency, email, name, shipping_address, status, restocked, holds_stock, payment_provider,
  payment_ref, created_at_ms, expires_at_ms, updated_at_ms FROM orders_141 ORDER BY rowid;
DROP TABLE orders_141;
CREATE INDEX orders_reserved_expiry ON orders(expires_at_ms) WHERE status = 'reserved';
CREATE INDEX orders_product ON orders(product_id, created_at_ms);
CREATE INDEX orders_created ON orders(created_at_ms);
)sql"},
};

/// Stripe keeps keys for 24 hours; a retry later than that is a new request.
constexpr int64_t kIdempotencyRetentionMs = 24 * 3600 * 1000;

struct Transition {
  OrderStatus from;
  OrderTrigger trigger;
  OrderStatus to;
};

// The whole order state machine. Anything not listed is refused.
constexpr Transition kTransitions[] = {
    {OrderStatus::kReserved, OrderTrigger::kPay, OrderStatus::kPaid},
    {OrderStatus::kReserved, OrderTrigger::kExpire, OrderStatus::kExpired},
    {OrderStatus::kReserved, OrderTrigger::kCancel, OrderStatus::kCancelled},
    {OrderStatus::kPaid, OrderTrigger::kShip, OrderStatus::kShipped},
    {OrderStatus::kPaid, OrderTrigger::kRefund, OrderStatus::kRefunded},
    {OrderStatus::kShipped, OrderTrigger::kRefund, OrderStatus::kRefunded},
    {OrderStatus::kExpired, OrderTrigger::kLatePayRestored, OrderStatus::kPaid},
    {OrderStatus::kExpired, OrderTrigger::kLatePayNoStock, OrderStatus::kNeedsRefund},
    {OrderStatus::kCancelled, OrderTrigger::kLatePayRestored, OrderStatus::kPaid},
    {OrderStatus::kCancelled, OrderTrigger::kLatePayNoStock, OrderStatus::kNeedsRefund},
    {OrderStatus::kNeedsRefund, OrderTrigger::kRefund, OrderStatus::kRefunded},
};

constexpr std::string_view kOrderColumns =
    "id, token, product_id, quantity, unit_price_minor, amount_minor, currency, email, name, "
    "shipping_address, status, restocked, payment_provider, payment_ref, created_at_ms, "
    "expires_at_ms, updated_at_ms, holds_stock";

Order read_order(const storage::Statement& s) {
  Order o;
  o.id = std::string(s.column_text(0));
  o.token = std::string(s.column_text(1));
  o.product_id = std::string(s.column_text(2));
  o.quantity = s.column_int64(3);
  o.unit_price_minor = s.column_int64(4);
  o.amount_minor = s.column_int64(5);
  o.currency = std::string(s.column_text(6));
  o.email = std::string(s.column_text(7));
  o.name = std::string(s.column_text(8));
  o.shipping_address = nlohmann::json::parse(s.column_text(9), nullptr, false);
  o.status = parse_order_status(s.column_text(10)).value_or(OrderStatus::kReserved);
  o.restocked = s.column_int64(11) != 0;
  o.payment_provider = std::string(s.column_text(12));
  o.payment_ref = std::string(s.column_text(13));
  o.created_at_ms = s.column_int64(14);
  o.expires_at_ms = s.column_int64(15);
  o.updated_at_ms = s.column_int64(16);
  o.holds_stock = s.column_int64(17) != 0;
  return o;
}

Result<std::optional<Order>> find_order(storage::Database& db, std::string_view column,
                                        std::string_view value) {
  auto stmt = db.cached(fmt::format("SELECT {} FROM orders WHERE {} = ?", kOrderColumns, column));
  if (!stmt) return unexpected(std::move(stmt).error());
  (*stmt)->bind_text(1, value);
  auto step = (*stmt)->step();
  if (!step) return unexpected(std::move(step).error());
  if (*step == storage::Statement::Step::kDone) return std::optional<Order>{};
  Order o = read_order(**stmt);
  (*stmt)->reset();
  return std::optional<Order>{std::move(o)};
}

/// The order as it was when created: what its 201 answer showed, whatever happened since.
Order as_created(Order o) {
  o.status = OrderStatus::kReserved;
  o.restocked = false;
  o.holds_stock = true;
  o.payment_provider.clear();
  o.payment_ref.clear();
  o.updated_at_ms = o.created_at_ms;
  return o;
}

nlohmann::json problem_body(int status, std::string_view slug, std::string_view title,
                            std::string_view detail) {
  return {{"type", fmt::format("/problems/{}", slug)},
          {"title", title},
          {"status", status},
          {"detail", detail}};
}

/// A reserved order for `request` at the product's price, with a new id and token.
Result<Order> new_order(const OrderRequest& request, int64_t unit_price_minor,
                        std::string_view currency, int64_t now_ms, int64_t window_ms) {
  // Time-ordered, so each order's index entries go to the end of their B-trees: a batch of
  // orders dirties a few pages instead of one random page per order and per index.
  auto id = time_ordered_token("ord_", now_ms, 12);
  auto token = time_ordered_token("otk_", now_ms, 24);
  if (!id || !token) return unexpected(ErrorCode::kInternal, "no randomness");
  Order o;
  o.id = id->reveal();
  o.token = token->reveal();
  o.product_id = request.product_id;
  o.quantity = request.quantity;
  o.unit_price_minor = unit_price_minor;
  o.amount_minor = unit_price_minor * request.quantity;
  o.currency = std::string(currency);
  o.email = request.email;
  o.name = request.name;
  o.shipping_address = request.shipping_address;
  o.status = OrderStatus::kReserved;
  o.created_at_ms = now_ms;
  o.updated_at_ms = now_ms;
  o.expires_at_ms = now_ms + window_ms;
  return o;
}

/// Rows inserted many to a statement: the statement text for 1, 2, 4 ... kMaxRows rows, made
/// once, so that a table needs a handful of cached statements whatever the number of rows.
class BulkInsert {
 public:
  static constexpr size_t kMaxRows = 32;

  /// `head` is "INSERT INTO t (a, b) VALUES ", `row` "(?, ?)" with `params` parameters.
  BulkInsert(std::string_view head, std::string_view row, int params) : params_(params) {
    for (size_t k = 0; k < sql_.size(); ++k) {
      std::string& sql = sql_[k];
      sql = head;
      for (size_t r = 0; r < (size_t{1} << k); ++r) {
        if (r > 0) sql += ", ";
        sql += row;
      }
    }
  }

  /// Prepares every statement text into the connection's cache.
  Status prepare(storage::Database& db) const {
    for (const std::string& sql : sql_) {
      auto stmt = db.cached(sql);
      if (!stmt) return std::move(stmt).error();
    }
    return ok_status();
  }

  /// Inserts rows 0 to count - 1. `bind(stmt, first, i)` binds row i's values from parameter
  /// `first` on; `inserted(begin, rows, last_rowid)` hears of each statement's rows.
  template <typename Bind, typename Inserted>
  Status insert(storage::Database& db, size_t count, const Bind& bind,
                const Inserted& inserted) const {
    size_t begin = 0;
    while (begin < count) {
      size_t rows = std::bit_floor(std::min(count - begin, kMaxRows));
      auto stmt = db.cached(sql_[static_cast<size_t>(std::countr_zero(rows))]);
      if (!stmt) return std::move(stmt).error();
      for (size_t r = 0; r < rows; ++r) bind(**stmt, static_cast<int>(r) * params_ + 1, begin + r);
      HAWKER_TRY_STATUS((*stmt)->run(), "bulk insert");
      inserted(begin, rows, db.last_insert_rowid());
      begin += rows;
    }
    return ok_status();
  }

 private:
  std::array<std::string, std::bit_width(kMaxRows)> sql_;
  int params_;
};

// The rows of orders reserved together (reserve_orders).
const BulkInsert kOrderRows(
    "INSERT INTO orders (id, token, product_id, quantity, unit_price_minor, amount_minor, "
    "currency, email, name, shipping_address, status, created_at_ms, expires_at_ms, "
    "updated_at_ms) VALUES ",
    "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'reserved', ?, ?, ?)", 13);
const BulkInsert kMovementRows(
    "INSERT INTO stock_movements (product_id, kind, delta, reason, order_id, created_at_ms) "
    "VALUES ",
    "(?, 'reservation', ?, 'reserved', ?, ?)", 4);
const BulkInsert kCreatedEventRows("INSERT INTO events (id, type, data, created_at_ms) VALUES ",
                                   "(?, 'order.created', ?, ?)", 3);
const BulkInsert kKeyRows(
    "INSERT INTO idempotency_keys (key, fingerprint, status, order_id, body, created_at_ms) "
    "VALUES ",
    "(?, ?, ?, ?, ?, ?)", 6);
constexpr std::string_view kKeySeen = "SELECT 1 FROM idempotency_keys WHERE key = ?";
constexpr std::string_view kProductForRun =
    "SELECT stock, price_minor, currency, low_stock_threshold, active, deleted FROM products "
    "WHERE id = ?";
constexpr std::string_view kTakeForRun =
    "UPDATE products SET stock = ?1 WHERE id = ?2 AND stock = ?3";

/// The answer to an order whose stock could not be taken: the product is not on sale (404),
/// or has `stock` units left, fewer than `quantity` (409).
StoredAnswer refused_answer(bool on_sale, int64_t stock, int64_t quantity) {
  StoredAnswer answer;
  nlohmann::json problem;
  if (!on_sale) {
    answer.status = 404;
    problem = problem_body(404, "product-not-found", "Product not found", "no such product on sale");
    answer.outcome = "not_found";
  } else if (stock == 0) {
    answer.status = 409;
    problem = problem_body(409, "sold-out", "Sold out", "no units left");
    answer.outcome = "sold_out";
  } else {
    answer.status = 409;
    problem = problem_body(409, "insufficient-stock", "Insufficient stock",
                           fmt::format("{} asked, {} left", quantity, stock));
    problem["available"] = stock;
    answer.outcome = "insufficient_stock";
  }
  answer.body = problem.dump();
  return answer;
}

/// A 201 replayed from a key: the order as it was created, whatever happened since.
std::string replayed_created_answer(const Order& o, const PaymentUrlFn& payment_url) {
  Order created = as_created(o);
  return created_answer(created, created.shipping_address.dump(), payment_url(created));
}

/// Moves `delta` units of available stock (negative: take) and reports the stock before and
/// after; with `must_cover` the UPDATE only happens when enough is there. nullopt: not enough.
struct StockMove {
  int64_t before = 0;
  int64_t after = 0;
  int64_t threshold = 0;
};
Result<std::optional<StockMove>> move_stock(storage::Database& db, std::string_view product_id,
                                            int64_t delta) {
  auto stmt = db.cached(
      "UPDATE products SET stock = stock + ?1 WHERE id = ?2 AND stock + ?1 >= 0 "
      "RETURNING stock, low_stock_threshold");
  if (!stmt) return unexpected(std::move(stmt).error());
  (*stmt)->bind_int64(1, delta).bind_text(2, product_id);
  auto step = (*stmt)->step();
  if (!step) return unexpected(std::move(step).error());
  if (*step == storage::Statement::Step::kDone) return std::optional<StockMove>{};
  StockMove m;
  m.after = (*stmt)->column_int64(0);
  m.before = m.after - delta;
  m.threshold = (*stmt)->column_int64(1);
  (*stmt)->reset();
  return std::optional<StockMove>{m};
}

/// An order.* event's data as JSON text, keys sorted as nlohmann prints them; a refund also
/// says whether the units went back on sale.
std::string event_data(const Order& o, std::optional<bool> restocked = std::nullopt) {
  fmt::memory_buffer out;
  fmt::format_to(std::back_inserter(out), R"({{"amount_minor":{},"currency":")", o.amount_minor);
  log::append_json_escaped(out, o.currency);
  out.append(std::string_view(R"(","order_id":")"));
  log::append_json_escaped(out, o.id);
  out.append(std::string_view(R"(","product_id":")"));
  log::append_json_escaped(out, o.product_id);
  fmt::format_to(std::back_inserter(out), R"(","quantity":{},)", o.quantity);
  if (restocked) fmt::format_to(std::back_inserter(out), R"("restocked":{},)", *restocked);
  fmt::format_to(std::back_inserter(out), R"("status":"{}"}})", to_string(o.status));
  return fmt::to_string(out);
}

Status push_event(storage::Database& db, std::string_view type, std::string data, int64_t now_ms,
                  std::vector<Event>& events) {
  auto e = append_event_text(db, type, std::move(data), now_ms);
  if (!e) return unexpected(std::move(e).error());
  events.push_back(std::move(*e));
  return ok_status();
}

/// Returns or takes the order's units and records the movement and stock events.
Status shift_stock(storage::Database& db, const Order& o, int64_t delta, MovementKind kind,
                   std::string_view reason, int64_t now_ms, std::vector<Event>& events,
                   bool* taken = nullptr) {
  auto moved = move_stock(db, o.product_id, delta);
  if (!moved) return unexpected(std::move(moved).error());
  if (!moved->has_value()) {
    if (taken != nullptr) {
      *taken = false;
      return ok_status();
    }
    return unexpected(ErrorCode::kInternal, "stock would go negative");
  }
  if (taken != nullptr) *taken = true;
  HAWKER_TRY_STATUS(record_movement(db, o.product_id, kind, delta, reason, o.id, now_ms),
                    "movement");
  return append_stock_events(db, o.product_id, (*moved)->before, (*moved)->after,
                             (*moved)->threshold, now_ms, events);
}

/// Applies one transition of the table to `o` and writes its side effects.
Status transition(storage::Database& db, Order& o, OrderTrigger trigger, bool restock,
                  int64_t now_ms, std::vector<Event>& events) {
  auto to = next_status(o.status, trigger);
  if (!to) {
    return unexpected(ErrorCode::kConflict, fmt::format("order is {}: cannot {}",
                                                        to_string(o.status), to_string(trigger)));
  }
  OrderStatus from = o.status;
  bool will_restock = trigger == OrderTrigger::kRefund && restock &&
                      (from == OrderStatus::kPaid || from == OrderStatus::kShipped);
  bool holds = o.holds_stock;
  switch (trigger) {
    case OrderTrigger::kPay:
    case OrderTrigger::kLatePayRestored:
      holds = true;
      break;
    case OrderTrigger::kExpire:
    case OrderTrigger::kCancel:
    case OrderTrigger::kLatePayNoStock:
      holds = false;
      break;
    case OrderTrigger::kRefund:
      holds = holds && !will_restock;
      break;
    case OrderTrigger::kShip:
      break;
  }
  auto stmt = db.cached(
      "UPDATE orders SET status = ?, restocked = ?, holds_stock = ?, updated_at_ms = ? "
      "WHERE id = ? AND status = ?");
  if (!stmt) return unexpected(std::move(stmt).error());
  (*stmt)
      ->bind_text(1, to_string(*to))
      .bind_int64(2, (o.restocked || will_restock) ? 1 : 0)
      .bind_int64(3, holds ? 1 : 0)
      .bind_int64(4, now_ms)
      .bind_text(5, o.id)
      .bind_text(6, to_string(from));
  HAWKER_TRY_STATUS((*stmt)->run(), "update order");
  if (db.changes() != 1) {
    return unexpected(ErrorCode::kConflict, "order changed meanwhile");
  }
  o.status = *to;
  o.restocked = o.restocked || will_restock;
  o.holds_stock = holds;
  o.updated_at_ms = now_ms;
  switch (trigger) {
    case OrderTrigger::kPay:
    case OrderTrigger::kLatePayRestored:
      HAWKER_TRY_STATUS(
          record_movement(db, o.product_id, MovementKind::kSale, 0, "paid", o.id, now_ms), "sale");
      return push_event(db, event_type::kOrderPaid, event_data(o), now_ms, events);
    case OrderTrigger::kExpire:
      HAWKER_TRY_STATUS(
          shift_stock(db, o, o.quantity, MovementKind::kRelease, "expired", now_ms, events),
          "release");
      return push_event(db, event_type::kOrderExpired, event_data(o), now_ms, events);
    case OrderTrigger::kCancel:
      HAWKER_TRY_STATUS(
          shift_stock(db, o, o.quantity, MovementKind::kRelease, "cancelled", now_ms, events),
          "release");
      return push_event(db, event_type::kOrderCancelled, event_data(o), now_ms, events);
    case OrderTrigger::kShip:
      return push_event(db, event_type::kOrderShipped, event_data(o), now_ms, events);
    case OrderTrigger::kRefund: {
      if (will_restock) {
        HAWKER_TRY_STATUS(
            shift_stock(db, o, o.quantity, MovementKind::kRestock, "refunded", now_ms, events),
            "restock");
      }
      return push_event(db, event_type::kOrderRefunded, event_data(o, will_restock), now_ms,
                        events);
    }
    case OrderTrigger::kLatePayNoStock:
      return push_event(db, kOrderNeedsRefund, event_data(o), now_ms, events);
  }
  return ok_status();
}

Result<std::optional<Order>> find_by(storage::Database& db, OrderKey key, std::string_view v) {
  return find_order(db, key == OrderKey::kToken ? "token" : "id", v);
}

}  // namespace

const char* to_string(OrderStatus s) {
  switch (s) {
    case OrderStatus::kReserved:
      return "reserved";
    case OrderStatus::kPaid:
      return "paid";
    case OrderStatus::kShipped:
      return "shipped";
    case OrderStatus::kExpired:
      return "expired";
    case OrderStatus::kCancelled:
      return "cancelled";
    case OrderStatus::kRefunded:
      return "refunded";
    case OrderStatus::kNeedsRefund:
      return "needs_refund";
  }
  return "reserved";
}

std::optional<OrderStatus> parse_order_status(std::string_view s) {
  for (auto st :
       {OrderStatus::kReserved, OrderStatus::kPaid, OrderStatus::kShipped, OrderStatus::kExpired,
        OrderStatus::kCancelled, OrderStatus::kRefunded, OrderStatus::kNeedsRefund}) {
    if (s == to_string(st)) return st;
  }
  return std::nullopt;
}

const char* to_string(OrderTrigger t) {
  switch (t) {
    case OrderTrigger::kPay:
      return "pay";
    case OrderTrigger::kExpire:
      return "expire";
    case OrderTrigger::kCancel:
      return "cancel";
    case OrderTrigger::kShip:
      return "ship";
    case OrderTrigger::kRefund:
      return "refund";
    case OrderTrigger::kLatePayRestored:
      return "accept a late payment";
    case OrderTrigger::kLatePayNoStock:
      return "flag a late payment";
  }
  return "change";
}

std::optional<OrderStatus> next_status(OrderStatus from, OrderTrigger trigger) {
  for (const auto& t : kTransitions) {
    if (t.from == from && t.trigger == trigger) return t.to;
  }
  return std::nullopt;
}

nlohmann::json to_json(const Order& o, bool include_token) {
  nlohmann::json j = {{"id", o.id},
                      {"product_id", o.product_id},
                      {"quantity", o.quantity},
                      {"unit_price_minor", o.unit_price_minor},
                      {"amount_minor", o.amount_minor},
                      {"currency", o.currency},
                      {"email", o.email},
                      {"name", o.name},
                      {"shipping_address", o.shipping_address},
                      {"status", to_string(o.status)},
                      {"restocked", o.restocked},
                      {"created_at", format_rfc3339_ms(o.created_at_ms)},
                      {"expires_at", format_rfc3339_ms(o.expires_at_ms)},
                      {"updated_at", format_rfc3339_ms(o.updated_at_ms)}};
  if (!o.payment_provider.empty()) {
    j["payment"] = {{"provider", o.payment_provider}, {"reference", o.payment_ref}};
  }
  if (include_token) j["token"] = o.token;
  return j;
}

std::string created_answer(const Order& o, std::string_view shipping_address,
                           std::string_view payment_url) {
  // Every order builds this once, where a JSON tree took a few dozen allocations; the keys
  // come in the order nlohmann's sorted objects print them, so the bytes are the same.
  fmt::memory_buffer out;
  auto raw = [&out](std::string_view s) { out.append(s); };
  auto text = [&out](std::string_view s) { log::append_json_escaped(out, s); };
  auto time = [&out](int64_t ms) { append_rfc3339_ms(out, ms); };
  auto number = [&out](int64_t v) { fmt::format_to(std::back_inserter(out), "{}", v); };
  raw(R"({"amount_minor":)");
  number(o.amount_minor);
  raw(R"(,"created_at":")");
  time(o.created_at_ms);
  raw(R"(","currency":")");
  text(o.currency);
  raw(R"(","email":")");
  text(o.email);
  raw(R"(","expires_at":")");
  time(o.expires_at_ms);
  raw(R"(","id":")");
  text(o.id);
  raw(R"(","name":")");
  text(o.name);
  raw(R"(","payment_url":")");
  text(payment_url);
  raw(R"(","product_id":")");
  text(o.product_id);
  raw(R"(","quantity":)");
  number(o.quantity);
  raw(o.restocked ? R"(,"restocked":true,"shipping_address":)"
                  : R"(,"restocked":false,"shipping_address":)");
  raw(shipping_address);
  raw(R"(,"status":")");
  raw(to_string(o.status));
  raw(R"(","token":")");
  text(o.token);
  raw(R"(","unit_price_minor":)");
  number(o.unit_price_minor);
  raw(R"(,"updated_at":")");
  time(o.updated_at_ms);
  raw(R"("})");
  return fmt::to_string(out);
}

std::span<const storage::Migration> order_migrations() { return kMigrations; }

namespace {

// The checks of each field's value, shared by the tree and the flat reader. Fields are judged
// in this order and the first bad one is named.
std::optional<FieldError> check_product_id(std::string_view v) {
  if (v.empty() || v.size() > 64) return FieldError{"product_id", "required product id string"};
  return std::nullopt;
}

std::optional<FieldError> check_quantity(int64_t q) {
  if (q < 1 || q > kMaxQuantity) {
    return FieldError{"quantity", fmt::format("must be 1 to {}", kMaxQuantity)};
  }
  return std::nullopt;
}

std::optional<FieldError> check_email(std::string_view e) {
  size_t at = e.find('@');
  if (e.size() > 254 || at == std::string_view::npos || at == 0 ||
      e.find('.', at) == std::string_view::npos || e.back() == '.' ||
      e.find_first_of(" \t\r\n<>") != std::string_view::npos) {
    return FieldError{"email", "not an email address"};
  }
  return std::nullopt;
}

std::optional<FieldError> check_name(std::string_view n) {
  if (n.empty() || n.size() > 200) return FieldError{"name", "required, 1 to 200 bytes"};
  return std::nullopt;
}

constexpr size_t kMaxAddressJson = 2000;

std::optional<FieldError> check_address_text(std::string_view a) {
  if (a.empty()) {
    return FieldError{"shipping_address", "must be a non-empty string or an object"};
  }
  if (log::json_escaped_size(a) + 2 > kMaxAddressJson) {  // as JSON: escaped, in quotes
    return FieldError{"shipping_address", "at most 2000 bytes"};
  }
  return std::nullopt;
}

/// Reads the usual order body, a flat object of strings and one whole number, straight into
/// an OrderRequest: no tree, no JSON library, one copy of each string. It reads only what it
/// can read exactly as nlohmann would: strings without escapes (valid UTF-8, no control
/// characters), whole numbers of up to 18 digits, each known field once, JSON whitespace.
/// Anything else (an escape, a fraction, an object, an unknown or repeated field, a byte order
/// mark, bytes after the object, text that is not JSON) stops it, and the tree judges.
class FlatOrderScanner {
 public:
  enum Field { kProduct, kQuantity, kEmail, kName, kAddress, kCount };

  FlatOrderScanner(std::string_view text, OrderRequest& out) : text_(text), out_(out) {}

  bool scan() {
    skip_space();
    if (!take('{')) return false;
    skip_space();
    if (take('}')) return finished();
    while (true) {
      std::string_view key;
      if (!string(key)) return false;
      Field field = field_named(key);
      if (field == kCount || seen_[field]) return false;  // unknown or repeated: the tree names it
      seen_[field] = true;
      skip_space();
      if (!take(':')) return false;
      skip_space();
      if (!value(field)) return false;
      skip_space();
      if (take('}')) return finished();
      if (!take(',')) return false;
      skip_space();
    }
  }

  bool seen(Field f) const { return seen_[f]; }
  std::string_view address() const { return address_; }

 private:
  static Field field_named(std::string_view key) {
    static constexpr std::string_view kNames[kCount] = {"product_id", "quantity", "email", "name",
                                                        "shipping_address"};
    for (int f = 0; f < kCount; ++f) {
      if (key == kNames[f]) return static_cast<Field>(f);
    }
    return kCount;
  }

  bool value(Field field) {
    if (field == kQuantity) return integer(out_.quantity);
    std::string_view v;
    if (!string(v)) return false;
    switch (field) {
      case kProduct:
        out_.product_id.assign(v);
        return true;
      case kEmail:
        out_.email.assign(v);
        return true;
      case kName:
        out_.name.assign(v);
        return true;
      default:
        address_ = v;
        return true;
    }
  }

  bool finished() {
    skip_space();
    return pos_ == text_.size();
  }

  void skip_space() {
    while (pos_ < text_.size()) {
      char c = text_[pos_];
      if (c != ' ' && c != '\t' && c != '\n' && c != '\r') return;
      ++pos_;
    }
  }

  bool take(char c) {
    if (pos_ >= text_.size() || text_[pos_] != c) return false;
    ++pos_;
    return true;
  }

  /// A string without escapes whose bytes are well-formed UTF-8 (RFC 3629, as nlohmann's
  /// lexer checks them) and no control characters.
  bool string(std::string_view& out) {
    if (!take('"')) return false;
    size_t begin = pos_;
    while (pos_ < text_.size()) {
      auto c = static_cast<unsigned char>(text_[pos_]);
      if (c == '"') {
        out = text_.substr(begin, pos_ - begin);
        ++pos_;
        return true;
      }
      if (c == '\\' || c < 0x20) return false;
      if (c < 0x80) {
        ++pos_;
        continue;
      }
      if (!utf8_sequence()) return false;
    }
    return false;
  }

  bool utf8_sequence() {
    auto byte = [this](size_t k) -> unsigned {
      return pos_ + k < text_.size() ? static_cast<unsigned char>(text_[pos_ + k]) : 0u;
    };
    auto in = [](unsigned b, unsigned lo, unsigned hi) { return b >= lo && b <= hi; };
    unsigned b0 = byte(0);
    size_t length = 0;
    if (in(b0, 0xC2, 0xDF)) {
      length = in(byte(1), 0x80, 0xBF) ? 2 : 0;
    } else if (in(b0, 0xE0, 0xEF)) {
      unsigned lo = b0 == 0xE0 ? 0xA0 : 0x80;
      unsigned hi = b0 == 0xED ? 0x9F : 0xBF;
      length = in(byte(1), lo, hi) && in(byte(2), 0x80, 0xBF) ? 3 : 0;
    } else if (in(b0, 0xF0, 0xF4)) {
      unsigned lo = b0 == 0xF0 ? 0x90 : 0x80;
      unsigned hi = b0 == 0xF4 ? 0x8F : 0xBF;
      length =
          in(byte(1), lo, hi) && in(byte(2), 0x80, 0xBF) && in(byte(3), 0x80, 0xBF) ? 4 : 0;
    }
    pos_ += length;
    return length != 0;
  }

  /// A JSON number without fraction or exponent, of up to 18 digits (longer ones may not fit
  /// an int64 the way nlohmann reads them).
  bool integer(int64_t& out) {
    bool negative = take('-');
    size_t begin = pos_;
    int64_t v = 0;
    while (pos_ < text_.size() && text_[pos_] >= '0' && text_[pos_] <= '9') {
      // A 19th digit already means no: stop adding before the sum could overflow.
      if (pos_ - begin == 18) return false;
      v = v * 10 + (text_[pos_] - '0');
      ++pos_;
    }
    size_t digits = pos_ - begin;
    if (digits == 0 || (digits > 1 && text_[begin] == '0')) return false;
    if (pos_ < text_.size() &&
        (text_[pos_] == '.' || text_[pos_] == 'e' || text_[pos_] == 'E')) {
      return false;
    }
    out = negative ? -v : v;
    return true;
  }

  std::string_view text_;
  OrderRequest& out_;
  std::string_view address_;
  bool seen_[kCount] = {};
  size_t pos_ = 0;
};

}  // namespace

FlatRead read_flat_order_request(std::string_view text, OrderRequest& out,
                                 std::optional<FieldError>& error) {
  using Scanner = FlatOrderScanner;
  Scanner scanner(text, out);
  if (!scanner.scan() || !scanner.seen(Scanner::kProduct) || !scanner.seen(Scanner::kEmail) ||
      !scanner.seen(Scanner::kName) || !scanner.seen(Scanner::kAddress)) {
    return FlatRead::kNeedsTree;
  }
  error = check_product_id(out.product_id);
  if (!error && scanner.seen(Scanner::kQuantity)) error = check_quantity(out.quantity);
  if (!error) error = check_email(out.email);
  if (!error) error = check_name(out.name);
  if (!error) error = check_address_text(scanner.address());
  if (!error) out.shipping_address = std::string(scanner.address());
  return FlatRead::kRead;
}

std::optional<FieldError> parse_order_request(const nlohmann::json& body, OrderRequest& out) {
  static const char* kKnown[] = {"product_id", "quantity", "email", "name", "shipping_address"};
  for (const auto& [key, value] : body.items()) {
    bool known = false;
    for (const char* k : kKnown) known = known || key == k;
    if (!known) return FieldError{key, "unknown field"};
  }
  auto field = [&body](const char* name) -> const nlohmann::json* {
    auto it = body.find(name);
    return it == body.end() ? nullptr : &*it;
  };
  const nlohmann::json* product = field("product_id");
  if (product == nullptr || !product->is_string()) {
    return FieldError{"product_id", "required product id string"};
  }
  out.product_id = product->get_ref<const std::string&>();
  if (auto e = check_product_id(out.product_id)) return e;
  if (const nlohmann::json* quantity = field("quantity")) {
    if (!quantity->is_number_integer()) {
      return FieldError{"quantity", "must be a whole number"};
    }
    out.quantity = quantity->get<int64_t>();
    if (auto e = check_quantity(out.quantity)) return e;
  }
  const nlohmann::json* email = field("email");
  if (email == nullptr || !email->is_string()) {
    return FieldError{"email", "required string"};
  }
  out.email = email->get_ref<const std::string&>();
  if (auto e = check_email(out.email)) return e;
  const nlohmann::json* name = field("name");
  if (name == nullptr || !name->is_string()) return FieldError{"name", "required, 1 to 200 bytes"};
  out.name = name->get_ref<const std::string&>();
  if (auto e = check_name(out.name)) return e;
  const nlohmann::json* address = field("shipping_address");
  if (address == nullptr) return FieldError{"shipping_address", "required"};
  const auto& addr = *address;
  if (addr.is_string()) {
    if (auto e = check_address_text(addr.get_ref<const std::string&>())) return e;
  } else if (!addr.is_object()) {
    return FieldError{"shipping_address", "must be a non-empty string or an object"};
  } else if (addr.dump().size() > kMaxAddressJson) {
    return FieldError{"shipping_address", "at most 2000 bytes"};
  }
  out.shipping_address = addr;
  return std::nullopt;
}

std::string request_fingerprint(const OrderRequest& r) {
  return request_fingerprint(r, r.shipping_address.dump());
}

std::string request_fingerprint(const OrderRequest& r, std::string_view shipping_address) {
  // The SHA-256 of the request as a JSON object with sorted keys, as nlohmann prints it: keys
  // stored by earlier versions must keep matching their retries.
  fmt::memory_buffer text;
  text.append(std::string_view(R"({"email":")"));
  log::append_json_escaped(text, r.email);
  text.append(std::string_view(R"(","name":")"));
  log::append_json_escaped(text, r.name);
  text.append(std::string_view(R"(","product_id":")"));
  log::append_json_escaped(text, r.product_id);
  fmt::format_to(std::back_inserter(text), R"(","quantity":{},"shipping_address":)", r.quantity);
  text.append(shipping_address);
  text.push_back('}');
  return sha256_hex(std::string_view(text.data(), text.size()));
}

Result<Reservation> reserve_order(storage::Database& db, std::string_view idempotency_key,
                                  const OrderRequest& request, int64_t now_ms, int64_t window_ms,
                                  const PaymentUrlFn& payment_url) {
  Reservation res;
  std::string shipping_address = request.shipping_address.dump();
  std::string fingerprint = request_fingerprint(request, shipping_address);
  {
    auto stmt =
        db.cached("SELECT fingerprint, status, body, order_id FROM idempotency_keys WHERE key = ?");
    if (!stmt) return unexpected(std::move(stmt).error());
    (*stmt)->bind_text(1, idempotency_key);
    auto step = (*stmt)->step();
    if (!step) return unexpected(std::move(step).error());
    if (*step == storage::Statement::Step::kRow) {
      bool same = (*stmt)->column_text(0) == fingerprint;
      if (same) {
        res.answer.status = static_cast<int>((*stmt)->column_int64(1));
        res.answer.replayed = true;
        res.answer.outcome = "replayed";
        if ((*stmt)->column_is_null(3)) {
          res.answer.body = std::string((*stmt)->column_text(2));
        } else {
          std::string order_id((*stmt)->column_text(3));
          (*stmt)->reset();
          auto found = find_order(db, "id", order_id);
          if (!found) return unexpected(std::move(found).error());
          if (!found->has_value()) {
            return unexpected(ErrorCode::kInternal, "idempotency key names a missing order");
          }
          res.answer.body = replayed_created_answer(**found, payment_url);
        }
      } else {
        res.answer.status = 422;
        res.answer.body = problem_body(422, "idempotency-key-reused", "Idempotency key reused",
                                       "this Idempotency-Key was used with a different body")
                              .dump();
        res.answer.outcome = "key_reused";
      }
      (*stmt)->reset();
      return res;
    }
  }

  // A 201 is stored as the order it created; any other answer as its body.
  auto store_answer = [&](const Order* created) -> Status {
    auto stmt = db.cached(
        "INSERT INTO idempotency_keys (key, fingerprint, status, order_id, body, created_at_ms) "
        "VALUES (?, ?, ?, ?, ?, ?)");
    if (!stmt) return unexpected(std::move(stmt).error());
    (*stmt)->bind_text(1, idempotency_key).bind_text(2, fingerprint);
    (*stmt)->bind_int64(3, res.answer.status).bind_int64(6, now_ms);
    if (created != nullptr) {
      (*stmt)->bind_text(4, created->id).bind_null(5);
    } else {
      (*stmt)->bind_null(4).bind_text(5, res.answer.body);
    }
    return (*stmt)->run();
  };

  // Take the stock first: the one statement that decides who gets the last unit. Without
  // RETURNING, which made SQLite open and close a temporary B-tree (a pager, a page cache and
  // a few large allocations) for every order; the row is read back by its key instead, in the
  // same transaction, where no other writer can change it in between.
  auto take = db.cached(
      "UPDATE products SET stock = stock - ?1 WHERE id = ?2 AND active = 1 AND deleted = 0 "
      "AND stock >= ?1");
  if (!take) return unexpected(std::move(take).error());
  (*take)->bind_int64(1, request.quantity).bind_text(2, request.product_id);
  HAWKER_TRY_STATUS((*take)->run(), "take stock");
  if (db.changes() == 0) {
    auto p = find_product(db, request.product_id);
    if (!p) return unexpected(std::move(p).error());
    bool on_sale = p->has_value() && (*p)->active;
    res.answer = refused_answer(on_sale, on_sale ? (*p)->stock : 0, request.quantity);
    HAWKER_TRY_STATUS(store_answer(nullptr), "store answer");
    return res;
  }
  auto taken = db.cached(
      "SELECT stock, price_minor, currency, low_stock_threshold FROM products WHERE id = ?");
  if (!taken) return unexpected(std::move(taken).error());
  (*taken)->bind_text(1, request.product_id);
  auto row = (*taken)->step();
  if (!row) return unexpected(std::move(row).error().with_context("read taken stock"));
  if (*row != storage::Statement::Step::kRow) {
    return unexpected(ErrorCode::kInternal, "the product vanished after its stock was taken");
  }
  int64_t after = (*taken)->column_int64(0);
  auto built = new_order(request, (*taken)->column_int64(1), (*taken)->column_text(2), now_ms,
                         window_ms);
  int64_t threshold = (*taken)->column_int64(3);
  (*taken)->reset();
  if (!built) return unexpected(std::move(built).error());
  Order o = std::move(*built);

  auto ins = db.cached(
      "INSERT INTO orders (id, token, product_id, quantity, unit_price_minor, amount_minor, "
      "currency, email, name, shipping_address, status, created_at_ms, expires_at_ms, "
      "updated_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'reserved', ?, ?, ?)");
  if (!ins) return unexpected(std::move(ins).error());
  (*ins)
      ->bind_text(1, o.id)
      .bind_text(2, o.token)
      .bind_text(3, o.product_id)
      .bind_int64(4, o.quantity)
      .bind_int64(5, o.unit_price_minor)
      .bind_int64(6, o.amount_minor)
      .bind_text(7, o.currency)
      .bind_text(8, o.email)
      .bind_text(9, o.name)
      .bind_text(10, shipping_address)
      .bind_int64(11, now_ms)
      .bind_int64(12, o.expires_at_ms)
      .bind_int64(13, now_ms);
  HAWKER_TRY_STATUS((*ins)->run(), "insert order");
  HAWKER_TRY_STATUS(record_movement(db, o.product_id, MovementKind::kReservation, -o.quantity,
                                    "reserved", o.id, now_ms),
                    "reservation movement");
  HAWKER_TRY_STATUS(push_event(db, event_type::kOrderCreated, event_data(o), now_ms, res.events),
                    "order.created");
  HAWKER_TRY_STATUS(append_stock_events(db, o.product_id, after + o.quantity, after, threshold,
                                        now_ms, res.events),
                    "stock events");
  res.answer.status = 201;
  res.answer.body = created_answer(o, shipping_address, payment_url(o));
  res.answer.outcome = "reserved";
  HAWKER_TRY_STATUS(store_answer(&o), "store answer");
  res.order = std::move(o);
  return res;
}

Status reserve_orders(storage::Database& db, std::span<const OrderAttempt* const> attempts,
                      const PaymentUrlFn& payment_url, std::vector<Reservation>& out) {
  const size_t n = attempts.size();
  out.clear();
  out.resize(n);
  {
    // The loop never queues a key while an attempt with it is in flight; were it to, the second
    // must see the first one's answer, which only one attempt after the other gives.
    std::unordered_set<std::string_view> keys;
    keys.reserve(n);
    for (const OrderAttempt* a : attempts) {
      if (!keys.insert(a->idempotency_key).second) {
        return unexpected(ErrorCode::kInvalidArgument, "an Idempotency-Key twice in one run");
      }
    }
  }

  // Keys stored before are retries or reuses: reserve_order answers those from the key and
  // writes nothing. The others are new; what reserve_order works out before writing is worked
  // out for them here.
  std::vector<size_t> fresh;
  fresh.reserve(n);
  std::vector<std::string> addresses(n);
  std::vector<std::string> fingerprints(n);
  for (size_t i = 0; i < n; ++i) {
    const OrderAttempt& a = *attempts[i];
    auto seen = db.cached(kKeySeen);
    if (!seen) return unexpected(std::move(seen).error());
    (*seen)->bind_text_view(1, a.idempotency_key);
    auto step = (*seen)->step();
    if (!step) return unexpected(std::move(step).error());
    (*seen)->reset();
    if (*step == storage::Statement::Step::kRow) {
      auto replay = reserve_order(db, a.idempotency_key, a.request, a.now_ms, a.window_ms,
                                  payment_url);
      if (!replay) return unexpected(std::move(replay).error());
      out[i] = std::move(*replay);
      continue;
    }
    fresh.push_back(i);
    addresses[i] = a.request.shipping_address.dump();
    fingerprints[i] = request_fingerprint(a.request, addresses[i]);
  }

  // Each product's stock is handed out in queue order, as one attempt after the other would
  // take it, and taken with one UPDATE.
  std::vector<std::string_view> products;
  for (size_t i : fresh) {
    std::string_view id = attempts[i]->request.product_id;
    if (std::find(products.begin(), products.end(), id) == products.end()) products.push_back(id);
  }
  std::vector<Order> orders;
  std::vector<size_t> order_attempt;  // the attempt each order answers
  orders.reserve(fresh.size());
  order_attempt.reserve(fresh.size());
  struct StockChange {
    std::string_view product_id;
    int64_t before = 0;
    int64_t after = 0;
    int64_t threshold = 0;
    size_t last_attempt = 0;  // the last attempt that took units: it carries the stock events
  };
  std::vector<StockChange> changes;
  for (std::string_view product_id : products) {
    auto read = db.cached(kProductForRun);
    if (!read) return unexpected(std::move(read).error());
    (*read)->bind_text_view(1, product_id);
    auto row = (*read)->step();
    if (!row) return unexpected(std::move(row).error().with_context("read product"));
    bool on_sale = *row == storage::Statement::Step::kRow && (*read)->column_int64(4) != 0 &&
                   (*read)->column_int64(5) == 0;
    StockChange change{product_id};
    int64_t price = 0;
    std::string currency;
    if (on_sale) {
      change.before = (*read)->column_int64(0);
      price = (*read)->column_int64(1);
      currency = std::string((*read)->column_text(2));
      change.threshold = (*read)->column_int64(3);
    }
    (*read)->reset();
    int64_t stock = change.before;
    for (size_t i : fresh) {
      const OrderAttempt& a = *attempts[i];
      if (a.request.product_id != product_id) continue;
      if (!on_sale || stock < a.request.quantity) {
        out[i].answer = refused_answer(on_sale, stock, a.request.quantity);
        continue;
      }
      stock -= a.request.quantity;
      auto o = new_order(a.request, price, currency, a.now_ms, a.window_ms);
      if (!o) return unexpected(std::move(o).error());
      orders.push_back(std::move(*o));
      order_attempt.push_back(i);
      change.last_attempt = i;
    }
    if (stock == change.before) continue;
    change.after = stock;
    auto take = db.cached(kTakeForRun);
    if (!take) return unexpected(std::move(take).error());
    (*take)->bind_int64(1, change.after).bind_text_view(2, product_id).bind_int64(3, change.before);
    HAWKER_TRY_STATUS((*take)->run(), "take stock");
    if (db.changes() != 1) return unexpected(ErrorCode::kInternal, "stock changed while taken");
    changes.push_back(change);
  }

  // The orders, their movements and their events, many rows to a statement.
  HAWKER_TRY_STATUS(kOrderRows.insert(
                        db, orders.size(),
                        [&](storage::Statement& s, int p, size_t k) {
                          const Order& o = orders[k];
                          s.bind_text_view(p, o.id)
                              .bind_text_view(p + 1, o.token)
                              .bind_text_view(p + 2, o.product_id)
                              .bind_int64(p + 3, o.quantity)
                              .bind_int64(p + 4, o.unit_price_minor)
                              .bind_int64(p + 5, o.amount_minor)
                              .bind_text_view(p + 6, o.currency)
                              .bind_text_view(p + 7, o.email)
                              .bind_text_view(p + 8, o.name)
                              .bind_text_view(p + 9, addresses[order_attempt[k]])
                              .bind_int64(p + 10, o.created_at_ms)
                              .bind_int64(p + 11, o.expires_at_ms)
                              .bind_int64(p + 12, o.updated_at_ms);
                        },
                        [](size_t, size_t, int64_t) {}),
                    "insert orders");
  HAWKER_TRY_STATUS(kMovementRows.insert(
                        db, orders.size(),
                        [&](storage::Statement& s, int p, size_t k) {
                          const Order& o = orders[k];
                          s.bind_text_view(p, o.product_id)
                              .bind_int64(p + 1, -o.quantity)
                              .bind_text_view(p + 2, o.id)
                              .bind_int64(p + 3, o.created_at_ms);
                        },
                        [](size_t, size_t, int64_t) {}),
                    "reservation movements");
  std::vector<Event> created(orders.size());
  for (size_t k = 0; k < orders.size(); ++k) {
    // Time-ordered like seq; 16 random bytes keep ids unique without an index.
    auto id = time_ordered_token("evt_", orders[k].created_at_ms, 16);
    if (!id) return unexpected(std::move(id).error());
    created[k].id = id->reveal();
    created[k].type = std::string(event_type::kOrderCreated);
    created[k].data_text = event_data(orders[k]);
    created[k].created_at_ms = orders[k].created_at_ms;
  }
  HAWKER_TRY_STATUS(kCreatedEventRows.insert(
                        db, created.size(),
                        [&](storage::Statement& s, int p, size_t k) {
                          s.bind_text_view(p, created[k].id)
                              .bind_text_view(p + 1, created[k].data_text)
                              .bind_int64(p + 2, created[k].created_at_ms);
                        },
                        [&](size_t begin, size_t rows, int64_t last_rowid) {
                          // One writer, one statement: its rows took the seqs up to the last.
                          for (size_t r = 0; r < rows; ++r) {
                            created[begin + r].seq =
                                last_rowid - static_cast<int64_t>(rows - 1 - r);
                          }
                        }),
                    "order.created");
  for (size_t k = 0; k < orders.size(); ++k) {
    out[order_attempt[k]].events.push_back(std::move(created[k]));
  }
  for (const StockChange& c : changes) {
    const OrderAttempt& last = *attempts[c.last_attempt];
    HAWKER_TRY_STATUS(append_stock_events(db, last.request.product_id, c.before, c.after,
                                          c.threshold, last.now_ms, out[c.last_attempt].events),
                      "stock events");
  }

  // The answers, and the keys that keep them: a 201 as its order, any other as its body.
  for (size_t k = 0; k < orders.size(); ++k) {
    Reservation& r = out[order_attempt[k]];
    r.answer.status = 201;
    r.answer.body =
        created_answer(orders[k], addresses[order_attempt[k]], payment_url(orders[k]));
    r.answer.outcome = "reserved";
  }
  std::vector<const Order*> order_for(n, nullptr);
  for (size_t k = 0; k < orders.size(); ++k) order_for[order_attempt[k]] = &orders[k];
  HAWKER_TRY_STATUS(kKeyRows.insert(
                        db, fresh.size(),
                        [&](storage::Statement& s, int p, size_t k) {
                          size_t i = fresh[k];
                          s.bind_text_view(p, attempts[i]->idempotency_key)
                              .bind_text_view(p + 1, fingerprints[i])
                              .bind_int64(p + 2, out[i].answer.status)
                              .bind_int64(p + 5, attempts[i]->now_ms);
                          if (order_for[i] != nullptr) {
                            s.bind_text_view(p + 3, order_for[i]->id).bind_null(p + 4);
                          } else {
                            s.bind_null(p + 3).bind_text_view(p + 4, out[i].answer.body);
                          }
                        },
                        [](size_t, size_t, int64_t) {}),
                    "store answers");
  for (size_t k = 0; k < orders.size(); ++k) out[order_attempt[k]].order = std::move(orders[k]);
  return ok_status();
}

Status OrderIntake::prepare(storage::Database& db) {
  for (const BulkInsert* rows : {&kOrderRows, &kMovementRows, &kCreatedEventRows, &kKeyRows}) {
    HAWKER_TRY_STATUS(rows->prepare(db), "prepare bulk inserts");
  }
  for (std::string_view sql : {kKeySeen, kProductForRun, kTakeForRun}) {
    auto stmt = db.cached(sql);
    if (!stmt) return unexpected(std::move(stmt).error());
  }
  return ok_status();
}

Result<Reservation> OrderIntake::run_one(storage::Database& db, const OrderAttempt& attempt) {
  return reserve_order(db, attempt.idempotency_key, attempt.request, attempt.now_ms,
                       attempt.window_ms, payment_url_);
}

Status OrderIntake::run_many(storage::Database& db, std::span<const OrderAttempt* const> attempts,
                             std::vector<Reservation>& out) {
  return reserve_orders(db, attempts, payment_url_, out);
}

Result<std::optional<Order>> find_order_by_token(storage::Database& db, std::string_view token) {
  return find_order(db, "token", token);
}

Result<std::optional<Order>> find_order_by_id(storage::Database& db, std::string_view id) {
  return find_order(db, "id", id);
}

Result<std::vector<Order>> list_orders(storage::Database& db, const OrderFilter& f) {
  std::string sql = fmt::format("SELECT {} FROM orders WHERE 1", kOrderColumns);
  if (f.status) sql += " AND status = :status";
  if (f.product_id) sql += " AND product_id = :product";
  if (f.created_from_ms) sql += " AND created_at_ms >= :from";
  if (f.created_to_ms) sql += " AND created_at_ms < :to";
  sql += " ORDER BY created_at_ms DESC, id LIMIT :limit";
  auto stmt = db.prepare(sql);
  if (!stmt) return unexpected(std::move(stmt).error());
  if (f.status) stmt->bind_text(":status", to_string(*f.status));
  if (f.product_id) stmt->bind_text(":product", *f.product_id);
  if (f.created_from_ms) stmt->bind_int64(":from", *f.created_from_ms);
  if (f.created_to_ms) stmt->bind_int64(":to", *f.created_to_ms);
  stmt->bind_int64(":limit", f.limit);
  std::vector<Order> out;
  while (true) {
    auto step = stmt->step();
    if (!step) return unexpected(std::move(step).error());
    if (*step == storage::Statement::Step::kDone) break;
    out.push_back(read_order(*stmt));
  }
  return out;
}

Result<std::optional<int64_t>> next_expiry(storage::Database& db) {
  auto stmt = db.cached("SELECT min(expires_at_ms) FROM orders WHERE status = 'reserved'");
  if (!stmt) return unexpected(std::move(stmt).error());
  auto step = (*stmt)->step();
  if (!step) return unexpected(std::move(step).error());
  std::optional<int64_t> next;
  if (!(*stmt)->column_is_null(0)) next = (*stmt)->column_int64(0);
  (*stmt)->reset();
  return next;
}

Result<ExpirySweep> expire_overdue(storage::Database& db, int64_t now_ms, size_t limit) {
  ExpirySweep sweep;
  std::vector<std::string> ids;
  {
    auto stmt = db.cached(
        "SELECT id FROM orders WHERE status = 'reserved' AND expires_at_ms <= ? "
        "ORDER BY expires_at_ms LIMIT ?");
    if (!stmt) return unexpected(std::move(stmt).error());
    (*stmt)->bind_int64(1, now_ms).bind_int64(2, static_cast<int64_t>(limit));
    while (true) {
      auto step = (*stmt)->step();
      if (!step) return unexpected(std::move(step).error());
      if (*step == storage::Statement::Step::kDone) break;
      ids.emplace_back((*stmt)->column_text(0));
    }
  }
  for (const auto& id : ids) {
    auto found = find_order(db, "id", id);
    if (!found) return unexpected(std::move(found).error());
    if (!found->has_value()) continue;
    Order o = std::move(**found);
    HAWKER_TRY_STATUS(transition(db, o, OrderTrigger::kExpire, false, now_ms, sweep.events),
                      "expire " + id);
    ++sweep.expired;
  }
  // seq follows time, so the keys to drop are the ones before the first young one; the
  // subquery walks only those (a clock that stepped back can only keep a key longer).
  auto prune = db.cached(
      "DELETE FROM idempotency_keys WHERE seq < coalesce("
      "(SELECT seq FROM idempotency_keys WHERE created_at_ms >= ?1 ORDER BY seq LIMIT 1), "
      "(SELECT max(seq) + 1 FROM idempotency_keys))");
  if (!prune) return unexpected(std::move(prune).error());
  (*prune)->bind_int64(1, now_ms - kIdempotencyRetentionMs);
  HAWKER_TRY_STATUS((*prune)->run(), "prune idempotency keys");
  auto next = next_expiry(db);
  if (!next) return unexpected(std::move(next).error());
  sweep.next_expiry_ms = *next;
  return sweep;
}

Result<OrderChange> apply_trigger(storage::Database& db, OrderKey key, std::string_view value,
                                  OrderTrigger trigger, bool restock, int64_t now_ms) {
  auto found = find_by(db, key, value);
  if (!found) return unexpected(std::move(found).error());
  if (!found->has_value()) return unexpected(ErrorCode::kNotFound, "no such order");
  OrderChange change{std::move(**found), {}};
  // A reservation past its window is expired first, whatever the timer has done so far, so a
  // buyer can never act on a reservation that no longer holds.
  if (change.order.status == OrderStatus::kReserved && change.order.expires_at_ms <= now_ms) {
    HAWKER_TRY_STATUS(
        transition(db, change.order, OrderTrigger::kExpire, false, now_ms, change.events),
        "expire");
  }
  HAWKER_TRY_STATUS(transition(db, change.order, trigger, restock, now_ms, change.events),
                    to_string(trigger));
  return change;
}

Result<PaymentResult> apply_payment(storage::Database& db, OrderKey key, std::string_view value,
                                    const PaymentConfirmation& payment, int64_t now_ms) {
  auto found = find_by(db, key, value);
  if (!found) return unexpected(std::move(found).error());
  if (!found->has_value()) return unexpected(ErrorCode::kNotFound, "no such order");
  PaymentResult result{OrderChange{std::move(**found), {}}, false};
  Order& o = result.change.order;
  {
    auto seen = db.cached("SELECT order_id FROM payments WHERE provider = ? AND payment_ref = ?");
    if (!seen) return unexpected(std::move(seen).error());
    (*seen)->bind_text(1, payment.provider).bind_text(2, payment.payment_ref);
    auto step = (*seen)->step();
    if (!step) return unexpected(std::move(step).error());
    if (*step == storage::Statement::Step::kRow) {
      bool same_order = (*seen)->column_text(0) == o.id;
      (*seen)->reset();
      if (!same_order) {
        return unexpected(ErrorCode::kConflict, "payment reference belongs to another order");
      }
      result.duplicate = true;
      return result;
    }
  }
  if (payment.amount_minor != o.amount_minor || payment.currency != o.currency) {
    return unexpected(
        ErrorCode::kInvalidArgument,
        fmt::format("payment of {} {} does not match the order's {} {}", payment.amount_minor,
                    payment.currency, o.amount_minor, o.currency));
  }
  auto& events = result.change.events;
  if (o.status == OrderStatus::kReserved && o.expires_at_ms <= now_ms) {
    HAWKER_TRY_STATUS(transition(db, o, OrderTrigger::kExpire, false, now_ms, events), "expire");
  }
  if (o.status == OrderStatus::kReserved) {
    HAWKER_TRY_STATUS(transition(db, o, OrderTrigger::kPay, false, now_ms, events), "pay");
  } else if (o.status == OrderStatus::kExpired || o.status == OrderStatus::kCancelled) {
    bool taken = false;
    HAWKER_TRY_STATUS(shift_stock(db, o, -o.quantity, MovementKind::kReservation, "late payment",
                                  now_ms, events, &taken),
                      "re-reserve");
    HAWKER_TRY_STATUS(
        transition(db, o, taken ? OrderTrigger::kLatePayRestored : OrderTrigger::kLatePayNoStock,
                   false, now_ms, events),
        "late payment");
  } else {
    return unexpected(ErrorCode::kConflict,
                      fmt::format("order is already {}", to_string(o.status)));
  }
  auto rec = db.cached(
      "INSERT INTO payments (provider, payment_ref, order_id, amount_minor, currency, "
      "created_at_ms) VALUES (?, ?, ?, ?, ?, ?)");
  if (!rec) return unexpected(std::move(rec).error());
  (*rec)
      ->bind_text(1, payment.provider)
      .bind_text(2, payment.payment_ref)
      .bind_text(3, o.id)
      .bind_int64(4, payment.amount_minor)
      .bind_text(5, payment.currency)
      .bind_int64(6, now_ms);
  HAWKER_TRY_STATUS((*rec)->run(), "record payment");
  auto upd = db.cached("UPDATE orders SET payment_provider = ?, payment_ref = ? WHERE id = ?");
  if (!upd) return unexpected(std::move(upd).error());
  (*upd)->bind_text(1, payment.provider).bind_text(2, payment.payment_ref).bind_text(3, o.id);
  HAWKER_TRY_STATUS((*upd)->run(), "order payment");
  o.payment_provider = payment.provider;
  o.payment_ref = payment.payment_ref;
  return result;
}

Result<StockLedger> stock_ledger(storage::Database& db, std::string_view product_id) {
  auto stmt = db.prepare(
      "SELECT (SELECT stock FROM products WHERE id = ?1), "
      "(SELECT coalesce(sum(quantity), 0) FROM orders WHERE product_id = ?1 AND status = "
      "'reserved'), "
      "(SELECT coalesce(sum(quantity), 0) FROM orders WHERE product_id = ?1 AND status != "
      "'reserved' AND holds_stock = 1), "
      "(SELECT coalesce(sum(delta), 0) FROM stock_movements WHERE product_id = ?1), "
      "(SELECT coalesce(sum(delta), 0) FROM stock_movements WHERE product_id = ?1 AND kind = "
      "'adjustment')");
  if (!stmt) return unexpected(std::move(stmt).error());
  stmt->bind_text(1, product_id);
  auto step = stmt->step();
  if (!step) return unexpected(std::move(step).error());
  if (stmt->column_is_null(0)) return unexpected(ErrorCode::kNotFound, "no such product");
  return StockLedger{stmt->column_int64(0), stmt->column_int64(1), stmt->column_int64(2),
                     stmt->column_int64(3), stmt->column_int64(4)};
}

}  // namespace hawker::commerce
