#include "commerce/orders.h"

#include <doctest/doctest.h>
#include <fmt/format.h>

#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "commerce/catalogue.h"
#include "core/secret.h"

using namespace hawker;
using namespace hawker::commerce;

namespace {

storage::Schema shop_schema() {
  storage::Schema schema;
  schema.add(event_migrations()).add(catalogue_migrations()).add(order_migrations());
  return schema;
}

storage::Database shop_db() {
  auto db = storage::Database::open({.path = ":memory:", .wal = false});
  REQUIRE(db);
  REQUIRE(storage::apply_migrations(*db, shop_schema()));
  return std::move(*db);
}

Product make_product(storage::Database& db, int64_t stock, int64_t threshold = 10) {
  ProductFields f;
  f.title = "Mug";
  f.price_minor = 1500;
  f.currency = "EUR";
  f.stock = stock;
  f.low_stock_threshold = threshold;
  std::vector<Event> events;
  auto p = create_product(db, f, 1000, events);
  REQUIRE(p);
  return *p;
}

OrderRequest request_for(const Product& p, int64_t quantity = 1) {
  OrderRequest r;
  r.product_id = p.id;
  r.quantity = quantity;
  r.email = "ann@example.com";
  r.name = "Ann";
  r.shipping_address = "1 Main St";
  return r;
}

const PaymentUrlFn kUrl = [](const Order& o) { return "http://shop/pay/" + o.token; };

void check_invariant(storage::Database& db, const Product& p) {
  auto l = stock_ledger(db, p.id);
  REQUIRE(l);
  CHECK(l->stock == l->movements);
  CHECK(l->stock + l->reserved + l->sold == l->stocked);
}

/// An in-memory database with only the migrations of `schema` that `keep` accepts applied,
/// to test what later migrations do to existing rows.
std::optional<storage::Database> partly_migrated(const storage::Schema& schema,
                                                 const std::function<bool(int)>& keep) {
  auto db = storage::Database::open({.path = ":memory:", .wal = false});
  REQUIRE(db);
  auto all = schema.ordered();
  REQUIRE(all);
  std::vector<storage::Migration> some;
  for (const auto& m : *all) {
    if (keep(m.version)) some.push_back(m);
  }
  REQUIRE(storage::apply_migrations(*db, some));
  return std::move(*db);
}

nlohmann::json body_of(const StoredAnswer& a) { return nlohmann::json::parse(a.body); }

std::vector<std::string> types(const std::vector<Event>& events) {
  std::vector<std::string> out;
  for (const auto& e : events) out.push_back(e.type);
  return out;
}

}  // namespace

TEST_CASE("the transition table allows exactly the documented moves") {
  using S = OrderStatus;
  using T = OrderTrigger;
  CHECK(next_status(S::kReserved, T::kPay) == S::kPaid);
  CHECK(next_status(S::kReserved, T::kExpire) == S::kExpired);
  CHECK(next_status(S::kReserved, T::kCancel) == S::kCancelled);
  CHECK(next_status(S::kPaid, T::kShip) == S::kShipped);
  CHECK(next_status(S::kShipped, T::kRefund) == S::kRefunded);
  CHECK(next_status(S::kExpired, T::kLatePayRestored) == S::kPaid);
  CHECK(next_status(S::kExpired, T::kLatePayNoStock) == S::kNeedsRefund);
  CHECK(next_status(S::kNeedsRefund, T::kRefund) == S::kRefunded);
  CHECK_FALSE(next_status(S::kPaid, T::kCancel));
  CHECK_FALSE(next_status(S::kPaid, T::kExpire));
  CHECK_FALSE(next_status(S::kReserved, T::kShip));
  CHECK_FALSE(next_status(S::kReserved, T::kRefund));
  CHECK_FALSE(next_status(S::kExpired, T::kPay));
  CHECK_FALSE(next_status(S::kRefunded, T::kRefund));
  CHECK_FALSE(next_status(S::kShipped, T::kShip));
  // Terminal states accept nothing but what the table names.
  for (auto t : {T::kPay, T::kExpire, T::kCancel, T::kShip, T::kRefund}) {
    CHECK_FALSE(next_status(S::kRefunded, t));
  }
}

TEST_CASE("a reservation takes stock, and the first answer is replayed for the same key") {
  auto db = shop_db();
  Product p = make_product(db, 3, 2);
  auto first = reserve_order(db, "key-1", request_for(p, 2), 2000, 60'000, kUrl);
  REQUIRE(first);
  CHECK(first->answer.status == 201);
  CHECK(body_of(first->answer)["status"] == "reserved");
  CHECK(body_of(first->answer)["token"].get<std::string>().rfind("otk_", 0) == 0);
  CHECK(body_of(first->answer)["payment_url"].get<std::string>().find("http://shop/pay/otk_") == 0);
  CHECK(types(first->events) ==
        std::vector<std::string>{"order.created", "stock.changed", "stock.low"});
  auto again = reserve_order(db, "key-1", request_for(p, 2), 2500, 60'000, kUrl);
  REQUIRE(again);
  CHECK(again->answer.replayed);
  CHECK(again->answer.body == first->answer.body);
  CHECK(again->events.empty());
  CHECK((*find_product(db, p.id))->stock == 1);

  auto other = reserve_order(db, "key-1", request_for(p, 1), 2600, 60'000, kUrl);
  REQUIRE(other);
  CHECK(other->answer.status == 422);
  CHECK(body_of(other->answer)["type"] == "/problems/idempotency-key-reused");

  // The 201 is kept as a reference to the order; a replay after the order was paid still shows
  // the order as the first answer did.
  REQUIRE(
      apply_payment(db, OrderKey::kToken, first->order->token, {"test", "t1", 3000, "EUR"}, 2700));
  auto after_pay = reserve_order(db, "key-1", request_for(p, 2), 2800, 60'000, kUrl);
  REQUIRE(after_pay);
  CHECK(after_pay->answer.replayed);
  CHECK(after_pay->answer.status == 201);
  CHECK(after_pay->answer.body == first->answer.body);
  check_invariant(db, p);
}

TEST_CASE("the 201 body is written without a JSON tree, byte for byte as nlohmann prints it") {
  auto db = shop_db();
  Product p = make_product(db, 3);
  OrderRequest r = request_for(p);
  r.name = "Zo\xc3\xab \"Q\" \\ \b\f\n\r\t\x01 \x7f";
  r.shipping_address = {{"line1", "1 Main St"}, {"city", "Ghent"}, {"zip", 9000}};
  auto created = reserve_order(db, "k-1", r, 1'700'000'000'123, 60'000, kUrl);
  REQUIRE(created);
  REQUIRE(created->answer.status == 201);
  nlohmann::json expected = to_json(*created->order, true);
  expected["payment_url"] = kUrl(*created->order);
  CHECK(created->answer.body == expected.dump());
  CHECK(body_of(created->answer)["name"] == r.name);
  CHECK(body_of(created->answer)["created_at"] == "2023-11-14T22:13:20.123Z");
}

TEST_CASE("order and stock event data are written as text, byte for byte as nlohmann prints them") {
  auto db = shop_db();
  Product p = make_product(db, 3, 2);
  auto created = reserve_order(db, "k-1", request_for(p, 2), 2000, 60'000, kUrl);
  REQUIRE(created);
  REQUIRE(created->events.size() == 3);
  const Order& o = *created->order;
  nlohmann::json order_data = {{"order_id", o.id},  {"product_id", p.id},
                               {"quantity", 2},     {"amount_minor", 3000},
                               {"currency", "EUR"}, {"status", "reserved"}};
  CHECK(created->events[0].data_text == order_data.dump());
  nlohmann::json stock_data = {{"product_id", p.id}, {"stock", 1}};
  CHECK(created->events[1].data_text == stock_data.dump());
  CHECK(created->events[2].type == "stock.low");
  CHECK(created->events[2].data_text == stock_data.dump());
  // What was stored is what was handed on.
  auto stored = events_after(db, created->events[0].seq - 1, 1);
  REQUIRE(stored);
  CHECK((*stored)[0].data_text == created->events[0].data_text);

  REQUIRE(apply_payment(db, OrderKey::kToken, o.token, {"test", "t1", 3000, "EUR"}, 2100));
  auto refunded = apply_trigger(db, OrderKey::kToken, o.token, OrderTrigger::kRefund, true, 2200);
  REQUIRE(refunded);
  REQUIRE(refunded->events.back().type == "order.refunded");
  order_data["status"] = "refunded";
  order_data["restocked"] = true;
  CHECK(refunded->events.back().data_text == order_data.dump());
  CHECK(refunded->events.back().data()["restocked"] == true);
}

TEST_CASE("the request fingerprint is the one earlier versions stored: SHA-256 of the JSON") {
  OrderRequest r;
  r.product_id = "prod_1";
  r.quantity = 2;
  r.email = "a\"b@example.com";
  r.name = "Zo\xc3\xab \\ \b\f\n\r\t\x01 \x7f";
  r.shipping_address = {{"line1", "1 Main St"}, {"zip", 9000}};
  nlohmann::json j = {{"product_id", r.product_id},
                      {"quantity", r.quantity},
                      {"email", r.email},
                      {"name", r.name},
                      {"shipping_address", r.shipping_address}};
  CHECK(request_fingerprint(r) == sha256_hex(j.dump()));
}

TEST_CASE("order ids and tokens made later sort after earlier ones") {
  auto db = shop_db();
  Product p = make_product(db, 3);
  auto a = reserve_order(db, "a", request_for(p), 2000, 60'000, kUrl);
  auto b = reserve_order(db, "b", request_for(p), 2001, 60'000, kUrl);
  REQUIRE(a->order);
  REQUIRE(b->order);
  CHECK(a->order->id < b->order->id);
  CHECK(a->order->token < b->order->token);
  CHECK(a->events.front().id < b->events.front().id);
}

TEST_CASE("idempotency keys are forgotten after a day, and only then") {
  auto db = shop_db();
  Product p = make_product(db, 5);
  constexpr int64_t kDay = 24 * 3600 * 1000;
  REQUIRE(reserve_order(db, "old", request_for(p), 500, 60'000, kUrl)->answer.status == 201);
  REQUIRE(reserve_order(db, "young", request_for(p), kDay, 60'000, kUrl)->answer.status == 201);
  REQUIRE(expire_overdue(db, kDay + 1000, 100));
  // "old" is past a day and a retry is a new order; "young" still replays.
  auto retry_old = reserve_order(db, "old", request_for(p), kDay + 2000, 60'000, kUrl);
  CHECK_FALSE(retry_old->answer.replayed);
  CHECK(retry_old->answer.status == 201);
  auto retry_young = reserve_order(db, "young", request_for(p), kDay + 2000, 60'000, kUrl);
  CHECK(retry_young->answer.replayed);
  check_invariant(db, p);
}

TEST_CASE("keys stored before migration 141 still replay their stored answer") {
  storage::Schema schema = shop_schema();
  auto db = partly_migrated(schema, [](int version) { return version <= 140; });
  Product p = make_product(*db, 3);
  auto fingerprint = request_fingerprint(request_for(p));
  auto stmt = db->prepare(
      "INSERT INTO idempotency_keys (key, fingerprint, status, body, created_at_ms) "
      "VALUES ('k-140', ?, 201, '{\"id\":\"ord_before\"}', 1500)");
  REQUIRE(stmt);
  stmt->bind_text(1, fingerprint);
  REQUIRE(stmt->run());
  REQUIRE(storage::apply_migrations(*db, schema));
  auto again = reserve_order(*db, "k-140", request_for(p), 2000, 60'000, kUrl);
  REQUIRE(again);
  CHECK(again->answer.replayed);
  CHECK(body_of(again->answer) == nlohmann::json{{"id", "ord_before"}});
  CHECK((*find_product(*db, p.id))->stock == 3);
}

TEST_CASE("migration 112 keeps every event and the seq high-water mark, without the id index") {
  storage::Schema schema = shop_schema();
  auto db = partly_migrated(schema, [](int version) { return version != 112; });
  Product p = make_product(*db, 5);
  auto first = reserve_order(*db, "key-1", request_for(p, 2), 2000, 60'000, kUrl);
  REQUIRE(first);
  auto before = events_after(*db, 0, 100);
  REQUIRE(before);
  int64_t high = before->back().seq;
  // The newest event gone (as a prune would): AUTOINCREMENT must not hand its seq out again.
  REQUIRE(db->exec(fmt::format("DELETE FROM events WHERE seq = {}", high)));
  REQUIRE(storage::apply_migrations(*db, schema));
  auto after = events_after(*db, 0, 100);
  REQUIRE(after);
  REQUIRE(after->size() == before->size() - 1);
  for (size_t i = 0; i < after->size(); ++i) {
    CHECK((*after)[i].seq == (*before)[i].seq);
    CHECK((*after)[i].id == (*before)[i].id);
    CHECK((*after)[i].data_text == (*before)[i].data_text);
  }
  auto next = reserve_order(*db, "key-2", request_for(p, 1), 3000, 60'000, kUrl);
  REQUIRE(next);
  CHECK(next->events.front().seq > high);
  auto indexes = db->prepare(
      "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND tbl_name = 'events'");
  REQUIRE(indexes);
  REQUIRE(indexes->step());
  CHECK(indexes->column_int64(0) == 0);
}

TEST_CASE("migrations 131 and 142 keep orders, keys, payments and movements, and their checks") {
  storage::Schema schema = shop_schema();
  auto db = partly_migrated(schema, [](int version) { return version != 131 && version != 142; });
  Product p = make_product(*db, 5);
  auto first = reserve_order(*db, "key-1", request_for(p, 2), 2000, 60'000, kUrl);
  REQUIRE(first);
  REQUIRE(first->answer.status == 201);
  REQUIRE(
      apply_payment(*db, OrderKey::kToken, first->order->token, {"test", "t1", 3000, "EUR"}, 2500));
  REQUIRE(reserve_order(*db, "key-2", request_for(p, 1), 2600, 60'000, kUrl));
  auto count = [&](std::string_view sql) {
    auto stmt = db->prepare(sql);
    REQUIRE(stmt);
    REQUIRE(*stmt->step() == storage::Statement::Step::kRow);
    return stmt->column_int64(0);
  };
  int64_t movements = count("SELECT count(*) FROM stock_movements");

  REQUIRE(storage::apply_migrations(*db, schema));
  CHECK(count("SELECT count(*) FROM orders") == 2);
  CHECK(count("SELECT count(*) FROM payments") == 1);
  CHECK(count("SELECT count(*) FROM stock_movements") == movements);
  CHECK(count("SELECT count(*) FROM pragma_foreign_key_check") == 0);
  CHECK(count("SELECT count(*) FROM sqlite_schema WHERE sql LIKE '%IN (%' AND "
              "tbl_name IN ('orders', 'stock_movements')") == 0);
  CHECK(count("SELECT count(*) FROM sqlite_schema WHERE type = 'index' AND "
              "tbl_name IN ('orders', 'stock_movements')") == 6);
  // The first answer still replays, from the order that survived the rebuild.
  auto again = reserve_order(*db, "key-1", request_for(p, 2), 4000, 60'000, kUrl);
  REQUIRE(again);
  CHECK(again->answer.replayed);
  CHECK(again->answer.body == first->answer.body);
  check_invariant(*db, p);
  // The checks still refuse what they refused.
  CHECK_FALSE(db->exec("UPDATE orders SET status = 'lost'"));
  CHECK_FALSE(db->exec("UPDATE stock_movements SET kind = 'theft'"));
  CHECK(db->exec("UPDATE orders SET status = 'shipped' WHERE status = 'paid'"));
}

TEST_CASE("too little stock is a stored 409 and never oversells") {
  auto db = shop_db();
  Product p = make_product(db, 2);
  auto big = reserve_order(db, "k1", request_for(p, 3), 2000, 60'000, kUrl);
  REQUIRE(big);
  CHECK(big->answer.status == 409);
  CHECK(body_of(big->answer)["type"] == "/problems/insufficient-stock");
  CHECK(body_of(big->answer)["available"] == 2);
  REQUIRE(reserve_order(db, "k2", request_for(p, 2), 2000, 60'000, kUrl)->answer.status == 201);
  auto late = reserve_order(db, "k3", request_for(p, 1), 2000, 60'000, kUrl);
  CHECK(late->answer.status == 409);
  CHECK(body_of(late->answer)["type"] == "/problems/sold-out");
  // The refusal is the key's answer: a retry replays it even after stock comes back.
  REQUIRE(apply_trigger(db, OrderKey::kId, (*list_orders(db, {}))[0].id, OrderTrigger::kCancel,
                        false, 3000));
  auto retry = reserve_order(db, "k3", request_for(p, 1), 3100, 60'000, kUrl);
  CHECK(retry->answer.replayed);
  CHECK(retry->answer.status == 409);
  check_invariant(db, p);
}

TEST_CASE("expiry returns stock exactly once") {
  auto db = shop_db();
  Product p = make_product(db, 5);
  auto r = reserve_order(db, "k", request_for(p, 2), 1000, 10'000, kUrl);
  REQUIRE(r->order);
  auto early = expire_overdue(db, 5000, 100);
  REQUIRE(early);
  CHECK(early->expired == 0);
  CHECK(early->next_expiry_ms == 11'000);
  auto sweep = expire_overdue(db, 11'000, 100);
  REQUIRE(sweep);
  CHECK(sweep->expired == 1);
  CHECK_FALSE(sweep->next_expiry_ms);
  CHECK(types(sweep->events) == std::vector<std::string>{"stock.changed", "order.expired"});
  auto again = expire_overdue(db, 12'000, 100);
  CHECK(again->expired == 0);
  CHECK((*find_product(db, p.id))->stock == 5);
  // Cancelling an expired order is refused; the stock stays where it is.
  auto cancel =
      apply_trigger(db, OrderKey::kToken, r->order->token, OrderTrigger::kCancel, false, 13'000);
  CHECK_FALSE(cancel);
  CHECK(cancel.error().code == ErrorCode::kConflict);
  CHECK((*find_product(db, p.id))->stock == 5);
  check_invariant(db, p);
}

TEST_CASE("payments: in the window, duplicates, late with and without stock") {
  auto db = shop_db();
  Product p = make_product(db, 1);
  auto r = reserve_order(db, "k", request_for(p), 1000, 10'000, kUrl);
  Order o = *r->order;
  PaymentConfirmation pay{"hosted", "pay_1", 1500, "EUR"};
  auto wrong = apply_payment(db, OrderKey::kId, o.id, {"hosted", "pay_x", 1400, "EUR"}, 2000);
  CHECK_FALSE(wrong);
  auto paid = apply_payment(db, OrderKey::kId, o.id, pay, 2000);
  REQUIRE(paid);
  CHECK(paid->change.order.status == OrderStatus::kPaid);
  CHECK(types(paid->change.events) == std::vector<std::string>{"order.paid"});
  auto dup = apply_payment(db, OrderKey::kId, o.id, pay, 2100);
  REQUIRE(dup);
  CHECK(dup->duplicate);
  CHECK(dup->change.events.empty());
  check_invariant(db, p);

  // A late payment re-reserves when the unit is still there...
  auto shipped = apply_trigger(db, OrderKey::kId, o.id, OrderTrigger::kRefund, true, 2200);
  REQUIRE(shipped);
  CHECK((*find_product(db, p.id))->stock == 1);
  auto r2 = reserve_order(db, "k2", request_for(p), 3000, 10'000, kUrl);
  REQUIRE(expire_overdue(db, 20'000, 10)->expired == 1);
  auto late =
      apply_payment(db, OrderKey::kId, r2->order->id, {"hosted", "pay_2", 1500, "EUR"}, 21'000);
  REQUIRE(late);
  CHECK(late->change.order.status == OrderStatus::kPaid);
  CHECK((*find_product(db, p.id))->stock == 0);
  check_invariant(db, p);
  // A second, different payment for a paid order is refused, not applied.
  auto second =
      apply_payment(db, OrderKey::kId, r2->order->id, {"hosted", "pay_3", 1500, "EUR"}, 21'500);
  CHECK_FALSE(second);
  CHECK(second.error().code == ErrorCode::kConflict);
}

TEST_CASE("a late payment with nothing left flags the order for refund") {
  auto db = shop_db();
  Product p = make_product(db, 1);
  auto a = reserve_order(db, "a", request_for(p), 1000, 10'000, kUrl);
  REQUIRE(expire_overdue(db, 11'000, 10)->expired == 1);
  auto b = reserve_order(db, "b", request_for(p), 12'000, 10'000, kUrl);
  REQUIRE(b->answer.status == 201);
  auto late =
      apply_payment(db, OrderKey::kId, a->order->id, {"hosted", "pay_a", 1500, "EUR"}, 13'000);
  REQUIRE(late);
  CHECK(late->change.order.status == OrderStatus::kNeedsRefund);
  CHECK(types(late->change.events) == std::vector<std::string>{"order.needs_refund"});
  check_invariant(db, p);
  REQUIRE(apply_trigger(db, OrderKey::kId, a->order->id, OrderTrigger::kRefund, false, 14'000));
  check_invariant(db, p);
}

TEST_CASE("stock equals the sum of its movements through every kind of change") {
  auto db = shop_db();
  Product p = make_product(db, 20, 5);
  std::vector<Event> events;
  ProductFields set;
  set.stock = 12;
  set.stock_reason = "counted";
  REQUIRE(update_product(db, p.id, set, 1500, events));
  CHECK(types(events) == std::vector<std::string>{"stock.changed"});
  std::vector<std::string> tokens;
  for (int i = 0; i < 6; ++i) {
    auto r = reserve_order(db, "k" + std::to_string(i), request_for(p, 2), 2000 + i, 1000, kUrl);
    REQUIRE(r->answer.status == 201);
    tokens.push_back(r->order->token);
  }
  CHECK((*find_product(db, p.id))->stock == 0);
  REQUIRE(apply_payment(db, OrderKey::kToken, tokens[0], {"test", "t0", 3000, "EUR"}, 2100));
  REQUIRE(apply_trigger(db, OrderKey::kToken, tokens[0], OrderTrigger::kShip, false, 2200));
  REQUIRE(apply_trigger(db, OrderKey::kToken, tokens[1], OrderTrigger::kCancel, false, 2200));
  REQUIRE(apply_payment(db, OrderKey::kToken, tokens[2], {"test", "t2", 3000, "EUR"}, 2300));
  REQUIRE(apply_trigger(db, OrderKey::kToken, tokens[2], OrderTrigger::kRefund, true, 2400));
  REQUIRE(apply_payment(db, OrderKey::kToken, tokens[3], {"test", "t3", 3000, "EUR"}, 2300));
  REQUIRE(apply_trigger(db, OrderKey::kToken, tokens[3], OrderTrigger::kRefund, false, 2400));
  REQUIRE(expire_overdue(db, 10'000, 100));
  auto l = stock_ledger(db, p.id);
  REQUIRE(l);
  CHECK(l->stock == l->movements);
  CHECK(l->sold == 4);  // shipped t0, refunded t3 without restock
  CHECK(l->reserved == 0);
  CHECK(l->stocked == 12);
  CHECK(l->stock == 8);
  CHECK(*movement_sum(db, p.id) == 8);
}

TEST_CASE("order requests name the bad field") {
  OrderRequest r;
  auto err = [&](nlohmann::json body) {
    auto e = parse_order_request(body, r);
    return e ? e->field : std::string();
  };
  nlohmann::json ok = {{"product_id", "prod_1"},
                       {"quantity", 2},
                       {"email", "a@b.co"},
                       {"name", "A"},
                       {"shipping_address", {{"line1", "x"}}}};
  CHECK(err(ok).empty());
  auto with = [&](const char* k, nlohmann::json v) {
    auto b = ok;
    b[k] = v;
    return err(b);
  };
  CHECK(with("quantity", 0) == "quantity");
  CHECK(with("quantity", "2") == "quantity");
  CHECK(with("email", "nope") == "email");
  CHECK(with("name", "") == "name");
  CHECK(with("shipping_address", 5) == "shipping_address");
  // At most 2000 bytes as JSON, whether a string (escapes count) or an object.
  CHECK(with("shipping_address", std::string(1998, 'a')).empty());
  CHECK(with("shipping_address", std::string(1999, 'a')) == "shipping_address");
  CHECK(with("shipping_address", std::string(1000, '"')) == "shipping_address");
  CHECK(with("shipping_address", std::string(334, '\x01')) == "shipping_address");
  CHECK(with("shipping_address", std::string(333, '\x01')).empty());
  CHECK(with("shipping_address", {{"line1", std::string(1990, 'a')}}) == "shipping_address");
  CHECK(with("surprise", 1) == "surprise");
  auto b = ok;
  b.erase("product_id");
  CHECK(err(b) == "product_id");
  // Same meaning, same fingerprint; any change, another.
  OrderRequest x;
  REQUIRE_FALSE(parse_order_request(ok, x));
  OrderRequest y = x;
  CHECK(request_fingerprint(x) == request_fingerprint(y));
  y.quantity = 3;
  CHECK(request_fingerprint(x) != request_fingerprint(y));
}

TEST_CASE("the flat order reader answers exactly as the tree does, or hands over to it") {
  // Both ways, for one body: the tree (nullopt when the text is not a JSON object) and the
  // flat reader (nullopt when it hands over).
  struct Outcome {
    std::optional<FieldError> error;
    OrderRequest request;
  };
  auto by_tree = [](const std::string& text) -> std::optional<Outcome> {
    auto body = nlohmann::json::parse(text, nullptr, false);
    if (body.is_discarded() || !body.is_object()) return std::nullopt;
    Outcome o;
    o.error = parse_order_request(body, o.request);
    return o;
  };
  auto flat = [](const std::string& text) -> std::optional<Outcome> {
    Outcome o;
    if (read_flat_order_request(text, o.request, o.error) == FlatRead::kNeedsTree) {
      return std::nullopt;
    }
    return o;
  };
  std::vector<std::string> values = {R"("prod_1")",
                                     R"("")",
                                     R"("a@b.co")",
                                     R"("nope")",
                                     R"("x@y.")",
                                     R"("<a>@b.co")",
                                     R"("Ann")",
                                     R"("Zo\u00eb \"Q\" \\ \n\t\u0001")",
                                     R"("caf\u00c3\u00a9 \ud83d\ude00")",
                                     "\"" + std::string(64, 'p') + "\"",
                                     "\"" + std::string(65, 'p') + "\"",
                                     "\"" + std::string(200, 'n') + "\"",
                                     "\"" + std::string(201, 'n') + "\"",
                                     "\"" + std::string(1998, 'a') + "\"",
                                     "\"" + std::string(1999, 'a') + "\"",
                                     "\"" + std::string(500, '"') + "\"",
                                     R"("a@b.c")",
                                     "1",
                                     "0",
                                     "100",
                                     "101",
                                     "-1",
                                     "2.0",
                                     "1e2",
                                     "18446744073709551615",
                                     "9223372036854775808",
                                     "true",
                                     "null",
                                     R"({"line1":"x"})",
                                     "[]",
                                     "[1]"};
  std::vector<std::string> names = {"product_id", "quantity", "email", "name", "shipping_address"};
  std::vector<std::string> good = {R"("prod_1")", "2", R"("a@b.co")", R"("Ann")", R"("1 Main St")"};
  auto object = [&](const std::vector<std::string>& vals, const std::string& extra) {
    std::string text = "{";
    for (size_t i = 0; i < names.size(); ++i) {
      if (vals[i].empty()) continue;
      if (text.size() > 1) text += ",";
      text += "\"" + names[i] + "\":" + vals[i];
    }
    if (!extra.empty()) text += (text.size() > 1 ? "," : "") + extra;
    return text + "}";
  };
  std::vector<std::string> bodies = {object(good, ""),
                                     " " + object(good, "") + "\n",
                                     object(good, R"("surprise":1)"),
                                     object(good, R"("email":"c@d.co")"),
                                     object(good, "") + "x",
                                     "",
                                     "[]",
                                     "\"text\"",
                                     "{",
                                     R"({"quantity":1})",
                                     "{}"};
  for (size_t i = 0; i < names.size(); ++i) {
    auto without = good;
    without[i].clear();
    bodies.push_back(object(without, ""));
    for (const auto& v : values) {
      auto with = good;
      with[i] = v;
      bodies.push_back(object(with, ""));
    }
  }
  size_t read_flat = 0;
  for (const auto& text : bodies) {
    CAPTURE(text);
    auto tree = by_tree(text);
    auto fast = flat(text);
    if (!fast) continue;
    ++read_flat;
    REQUIRE(tree);
    CHECK(fast->error.has_value() == tree->error.has_value());
    if (fast->error && tree->error) {
      CHECK(fast->error->field == tree->error->field);
      CHECK(fast->error->message == tree->error->message);
      continue;
    }
    CHECK(fast->request.product_id == tree->request.product_id);
    CHECK(fast->request.quantity == tree->request.quantity);
    CHECK(fast->request.email == tree->request.email);
    CHECK(fast->request.name == tree->request.name);
    CHECK(fast->request.shipping_address == tree->request.shipping_address);
    CHECK(request_fingerprint(fast->request) == request_fingerprint(tree->request));
  }
  // The usual body, and the variations that keep each value's type, never build a tree.
  CHECK(flat(object(good, "")).has_value());
  CHECK(read_flat >= bodies.size() / 3);
  // Shapes the flat reader hands over.
  CHECK_FALSE(flat(object(good, R"("surprise":1)")));
  CHECK_FALSE(flat(object(good, R"("email":"c@d.co")")));
  CHECK_FALSE(flat(R"({"product_id":"p","email":"a@b.co","name":"A","shipping_address":{"a":1}})"));
  CHECK_FALSE(flat("[]"));
  CHECK_FALSE(flat(""));
}

TEST_CASE("products validate their fields and sniff images") {
  ProductFields f;
  auto field = [&](nlohmann::json body, bool creating = true) {
    ProductFields out;
    auto e = parse_product_fields(body, creating, out);
    return e ? e->field : std::string();
  };
  CHECK(field({{"title", "T"}, {"price_minor", 100}, {"currency", "EUR"}}).empty());
  CHECK(field({{"title", "T"}, {"price_minor", 100}, {"currency", "eur"}}) == "currency");
  CHECK(field({{"title", "T"}, {"price_minor", -1}, {"currency", "EUR"}}) == "price_minor");
  CHECK(field({{"title", "T"}, {"currency", "EUR"}}) == "price_minor");
  CHECK(field({{"stock", -2}}, false) == "stock");
  CHECK(field({{"active", "yes"}}, false) == "active");
  CHECK(field({{"stock", 5}}, false).empty());
  CHECK(sniff_image_type(std::string("\xFF\xD8\xFF\xE0", 4)) == "image/jpeg");
  CHECK(sniff_image_type(std::string("\x89PNG\r\n\x1a\n....", 12)) == "image/png");
  CHECK(sniff_image_type(std::string("RIFF\x10\0\0\0WEBPVP8 ", 16)) == "image/webp");
  CHECK(sniff_image_type("<svg onload=alert(1)>") == "");
}

namespace {

/// Products with the same ids in every database of a comparison: on sale with little stock,
/// inactive, and deleted.
void seed_products(storage::Database& db) {
  REQUIRE(db.exec(R"sql(
INSERT INTO products (id, title, price_minor, currency, stock, low_stock_threshold, active,
                      deleted, created_at_ms, updated_at_ms) VALUES
  ('prod_few', 'Few', 1500, 'EUR', 9, 4, 1, 0, 1, 1),
  ('prod_more', 'More', 990, 'USD', 120, 12, 1, 0, 1, 1),
  ('prod_off', 'Off', 500, 'EUR', 5, 2, 0, 0, 1, 1),
  ('prod_gone', 'Gone', 500, 'EUR', 5, 2, 1, 1, 1, 1);
INSERT INTO stock_movements (product_id, kind, delta, reason, created_at_ms)
  SELECT id, 'adjustment', stock, 'initial stock', 1 FROM products;
)sql"));
}

/// An answer with what differs between two runs of the same attempts taken out: the random
/// ids, tokens and the payment URL made of the token.
nlohmann::json comparable(const StoredAnswer& a) {
  nlohmann::json j = nlohmann::json::parse(a.body);
  j.erase("id");
  j.erase("token");
  j.erase("payment_url");
  return {{"status", a.status}, {"outcome", a.outcome}, {"replayed", a.replayed}, {"body", j}};
}

int64_t count_rows(storage::Database& db, const std::string& sql) {
  auto stmt = db.prepare(sql);
  REQUIRE(stmt);
  REQUIRE(*stmt->step() == storage::Statement::Step::kRow);
  return stmt->column_int64(0);
}

}  // namespace

TEST_CASE("orders reserved together answer as the same orders reserved one by one") {
  // The same 400 attempts, in runs of 1 to 40, go one at a time through reserve_order into
  // one database and a run at a time through reserve_orders into another: every answer, the
  // stock and the ledger must come out the same. Attempts mix products on sale, inactive,
  // deleted and unknown, quantities that do not fit, and keys used before with the same body
  // (a replay) or another (422).
  auto one_by_one = shop_db();
  auto together = shop_db();
  seed_products(one_by_one);
  seed_products(together);
  const std::vector<std::string> products = {"prod_few", "prod_few",  "prod_more", "prod_more",
                                             "prod_more", "prod_off", "prod_gone", "prod_none"};
  uint64_t seed = 20261204;
  auto next = [&seed](uint64_t bound) {
    seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
    return (seed >> 33) % bound;
  };
  std::vector<OrderAttempt> attempts;
  std::vector<size_t> run_sizes;
  size_t used_before_run = 0;  // keys of earlier runs may come again
  while (attempts.size() < 400) {
    size_t size = 1 + next(40);
    std::set<std::string> run_keys;  // a key comes at most once per run
    for (size_t k = 0; k < size; ++k) {
      OrderAttempt a;
      a.now_ms = 1'700'000'000'000 + static_cast<int64_t>(attempts.size()) * 7;
      a.window_ms = 600'000;
      const OrderAttempt* earlier =
          used_before_run > 0 && next(8) == 0 ? &attempts[next(used_before_run)] : nullptr;
      if (earlier != nullptr && run_keys.insert(earlier->idempotency_key).second) {
        a.idempotency_key = earlier->idempotency_key;
        a.request = earlier->request;
        if (next(2) == 0) a.request.quantity = earlier->request.quantity % kMaxQuantity + 1;
      } else {
        a.idempotency_key = fmt::format("key-{}", attempts.size());
        a.request.product_id = products[next(products.size())];
        a.request.quantity = 1 + static_cast<int64_t>(next(5));
        a.request.email = fmt::format("buyer{}@example.com", attempts.size());
        a.request.name = "Buyer \"B\"";
        if (next(3) == 0) {
          a.request.shipping_address = {{"line1", "1 Main St"}, {"city", "Ghent"}};
        } else {
          a.request.shipping_address = "1 Main St";
        }
      }
      attempts.push_back(std::move(a));
    }
    run_sizes.push_back(size);
    used_before_run = attempts.size();
  }

  std::vector<Reservation> solo;
  std::vector<Reservation> grouped;
  size_t begin = 0;
  for (size_t size : run_sizes) {
    REQUIRE(one_by_one.exec("BEGIN").ok());
    for (size_t i = begin; i < begin + size; ++i) {
      const OrderAttempt& a = attempts[i];
      auto r = reserve_order(one_by_one, a.idempotency_key, a.request, a.now_ms, a.window_ms, kUrl);
      REQUIRE(r);
      solo.push_back(std::move(*r));
    }
    REQUIRE(one_by_one.exec("COMMIT").ok());
    std::vector<const OrderAttempt*> run;
    for (size_t i = begin; i < begin + size; ++i) run.push_back(&attempts[i]);
    std::vector<Reservation> out;
    REQUIRE(together.exec("BEGIN").ok());
    Status status = reserve_orders(together, run, kUrl, out);
    std::string why = status.ok() ? std::string() : status.error().message;
    INFO(why);
    REQUIRE(status.ok());
    REQUIRE(together.exec("COMMIT").ok());
    REQUIRE(out.size() == size);
    for (auto& r : out) grouped.push_back(std::move(r));
    begin += size;
  }

  std::map<std::string, int> outcomes;
  for (size_t i = 0; i < attempts.size(); ++i) {
    CAPTURE(i);
    CHECK(comparable(grouped[i].answer) == comparable(solo[i].answer));
    CHECK(grouped[i].order.has_value() == solo[i].order.has_value());
    ++outcomes[grouped[i].answer.outcome];
    // A replayed 201 shows the order its key created, in both.
    if (grouped[i].answer.replayed && grouped[i].answer.status == 201) {
      size_t first = 0;
      while (attempts[first].idempotency_key != attempts[i].idempotency_key) ++first;
      CHECK(grouped[i].answer.body == grouped[first].answer.body);
      CHECK(solo[i].answer.body == solo[first].answer.body);
    }
  }
  // Every kind of answer came up.
  for (std::string o : {"reserved", "sold_out", "insufficient_stock", "not_found", "replayed",
                        "key_reused"}) {
    CAPTURE(o);
    std::string seen;
    for (const auto& [name, times] : outcomes) seen += fmt::format("{}={} ", name, times);
    CAPTURE(seen);
    CHECK(outcomes[o] > 0);
  }
  for (const char* product : {"prod_few", "prod_more", "prod_off", "prod_gone"}) {
    CAPTURE(product);
    auto a = stock_ledger(one_by_one, product);
    auto b = stock_ledger(together, product);
    REQUIRE(a);
    REQUIRE(b);
    CHECK(b->stock == a->stock);
    CHECK(b->reserved == a->reserved);
    CHECK(b->movements == b->stock);
    CHECK(b->stock + b->reserved + b->sold == b->stocked);
  }
  for (const char* table : {"orders", "stock_movements", "idempotency_keys"}) {
    CAPTURE(table);
    std::string sql = fmt::format("SELECT count(*) FROM {}", table);
    CHECK(count_rows(together, sql) == count_rows(one_by_one, sql));
  }
  // One order.created per order. The stock events come once per product and run instead of
  // once per order, from the stock before the run to the stock after it: a sell-out is told
  // as often, a fall below the low-stock threshold only when a run ends above zero.
  for (std::string type : {"order.created", "stock.sold_out"}) {
    CAPTURE(type);
    std::string sql = fmt::format("SELECT count(*) FROM events WHERE type = '{}'", type);
    CHECK(count_rows(together, sql) == count_rows(one_by_one, sql));
  }
  std::string low = "SELECT count(*) FROM events WHERE type = 'stock.low'";
  CHECK(count_rows(together, low) <= count_rows(one_by_one, low));
  std::string changed = "SELECT count(*) FROM events WHERE type = 'stock.changed'";
  CHECK(count_rows(together, changed) < count_rows(one_by_one, changed));
  // The last stock.changed of each product tells its stock now.
  for (const char* product : {"prod_few", "prod_more"}) {
    auto last = together.prepare(
        "SELECT json_extract(data, '$.stock') FROM events WHERE type = 'stock.changed' AND "
        "json_extract(data, '$.product_id') = ? ORDER BY seq DESC LIMIT 1");
    REQUIRE(last);
    last->bind_text(1, product);
    REQUIRE(*last->step() == storage::Statement::Step::kRow);
    CHECK(last->column_int64(0) == (*stock_ledger(together, product)).stock);
  }
  // The events handed back are the ones stored, seq for seq.
  size_t handed = 0;
  for (const Reservation& r : grouped) {
    for (const Event& e : r.events) {
      auto stored = events_after(together, e.seq - 1, 1);
      REQUIRE(stored);
      REQUIRE(stored->size() == 1);
      CHECK((*stored)[0].id == e.id);
      CHECK((*stored)[0].type == e.type);
      CHECK((*stored)[0].data_text == e.data_text);
      ++handed;
    }
  }
  CHECK(static_cast<int64_t>(handed) == count_rows(together, "SELECT count(*) FROM events"));
}

TEST_CASE("orders reserved together refuse a key that comes twice in one run") {
  auto db = shop_db();
  seed_products(db);
  OrderAttempt a{"same-key", {}, 1000, 60'000};
  a.request.product_id = "prod_few";
  a.request.email = "a@example.com";
  a.request.name = "A";
  a.request.shipping_address = "1 Main St";
  OrderAttempt b = a;
  std::vector<const OrderAttempt*> run = {&a, &b};
  std::vector<Reservation> out;
  CHECK_FALSE(reserve_orders(db, run, kUrl, out).ok());
}

TEST_CASE("order statements prepared at start are the ones a run of orders uses") {
  auto db = shop_db();
  seed_products(db);
  REQUIRE(OrderIntake::prepare(db).ok());
  size_t prepared = db.cached_count();
  CHECK(prepared >= 4 * 6 + 3);
  std::vector<OrderAttempt> attempts(40);
  std::vector<const OrderAttempt*> run;
  for (size_t i = 0; i < attempts.size(); ++i) {
    attempts[i] = OrderAttempt{fmt::format("k-{}", i), {}, 1000, 60'000};
    attempts[i].request.product_id = "prod_more";
    attempts[i].request.email = "a@example.com";
    attempts[i].request.name = "A";
    attempts[i].request.shipping_address = "1 Main St";
    run.push_back(&attempts[i]);
  }
  std::vector<Reservation> out;
  REQUIRE(reserve_orders(db, run, kUrl, out).ok());
  CHECK(out.back().answer.status == 201);
  // 32 + 8 rows to a statement, all prepared before; only the stock event (one row, the same
  // statement as every event's) was new.
  CHECK(db.cached_count() == prepared + 1);
}
