#include "commerce/sse_hub.h"

#include <doctest/doctest.h>

using namespace hawker;
using namespace hawker::commerce;

namespace {

Event event(int64_t seq, std::string_view type, nlohmann::json data) {
  Event e;
  e.seq = seq;
  e.id = "evt_" + std::to_string(seq);
  e.type = std::string(type);
  e.data_text = data.dump();
  return e;
}

Event stock(int64_t seq, int64_t n, std::string_view product = "p1") {
  return event(seq, event_type::kStockChanged, {{"product_id", product}, {"stock", n}});
}

Event order(int64_t seq, int64_t quantity, std::string_view product = "p1") {
  return event(seq, event_type::kOrderCreated,
               {{"order_id", "ord_1"},
                {"product_id", product},
                {"quantity", quantity},
                {"amount_minor", 1000},
                {"currency", "EUR"},
                {"status", "reserved"}});
}

ViewerEvent viewer(const Event& e) {
  auto v = viewer_event(e);
  REQUIRE(v);
  return *v;
}

}  // namespace

TEST_CASE("viewers see stock, low stock, sold out and purchases without personal data") {
  auto s = viewer(stock(5, 7));
  CHECK(s.topic == "product:p1");
  CHECK(s.name == "stock");
  CHECK(s.seq == 5);
  CHECK(s.data["stock"] == 7);

  auto p = viewer(order(6, 2));
  CHECK(p.name == "purchase");
  CHECK(p.data["quantity"] == 2);
  CHECK_FALSE(p.data.contains("order_id"));
  CHECK_FALSE(p.data.contains("amount_minor"));
  CHECK(p.data.dump().find("ord_1") == std::string::npos);

  CHECK(viewer(event(7, event_type::kStockLow, {{"product_id", "p1"}, {"stock", 3}})).name ==
        "low_stock");
  CHECK(viewer(event(8, event_type::kStockSoldOut, {{"product_id", "p1"}, {"stock", 0}})).name ==
        "sold_out");
  CHECK_FALSE(viewer_event(event(9, event_type::kOrderPaid, {{"product_id", "p1"}})));
  CHECK_FALSE(viewer_event(event(10, event_type::kStockChanged, {{"stock", 1}})));
  CHECK_FALSE(viewer_event(event(11, event_type::kStockChanged, "not an object")));
}

TEST_CASE("stock updates are coalesced to one per interval, always the latest") {
  TopicCoalescer c(250);
  auto first = c.offer(1000, viewer(stock(1, 10)));
  REQUIRE(first.size() == 1);
  CHECK(first[0].data["stock"] == 10);

  CHECK(c.offer(1010, viewer(stock(2, 9))).empty());
  CHECK(c.offer(1020, viewer(stock(3, 8))).empty());
  CHECK(c.offer(1100, viewer(stock(4, 7))).empty());
  CHECK(c.next_due_ms() == 1250);
  CHECK(c.take_due(1249).empty());
  auto due = c.take_due(1250);
  REQUIRE(due.size() == 1);
  CHECK(due[0].data["stock"] == 7);
  CHECK(due[0].seq == 4);
  CHECK_FALSE(c.next_due_ms());

  // The next update inside the new interval waits again; after it, one goes at once.
  CHECK(c.offer(1300, viewer(stock(5, 6))).empty());
  CHECK(c.take_due(1500).size() == 1);
  CHECK(c.offer(1800, viewer(stock(6, 5))).size() == 1);
}

TEST_CASE("purchases are summed, alerts go at once, and ids never go back") {
  TopicCoalescer c(250);
  CHECK(c.offer(0, viewer(order(1, 1))).size() == 1);
  CHECK(c.offer(10, viewer(order(2, 2))).empty());
  CHECK(c.offer(20, viewer(order(3, 3))).empty());
  auto bought = c.take_due(250);
  REQUIRE(bought.size() == 1);
  CHECK(bought[0].name == "purchase");
  CHECK(bought[0].data["quantity"] == 5);
  CHECK(bought[0].data["orders"] == 2);
  CHECK(bought[0].seq == 3);

  CHECK(c.offer(260, viewer(stock(4, 4))).size() == 1);  // stock has its own interval
  CHECK(c.offer(270, viewer(stock(5, 1))).empty());
  auto sold = c.offer(280, viewer(event(6, event_type::kStockSoldOut, {{"product_id", "p1"}})));
  REQUIRE(sold.size() == 1);
  CHECK(sold[0].name == "sold_out");
  CHECK(sold[0].seq == 6);
  CHECK(c.take_due(500).empty());
  auto due = c.take_due(510);
  REQUIRE(due.size() == 1);
  CHECK(due[0].name == "stock");
  CHECK(due[0].data["stock"] == 1);
  // Held back past the sold-out event (seq 6), it carries that id so Last-Event-ID stays ordered.
  CHECK(due[0].seq == 6);
}

TEST_CASE("a Last-Event-ID replay keeps the product's events in order with the newest stock") {
  std::vector<Event> missed = {
      stock(11, 9),
      order(12, 1),
      stock(13, 8, "p2"),
      stock(14, 7),
      order(15, 2),
      stock(16, 5),
      event(17, event_type::kStockLow, {{"product_id", "p1"}, {"stock", 5}}),
      event(18, event_type::kOrderPaid, {{"product_id", "p1"}})};
  auto out = replay_events(missed, "product:p1");
  REQUIRE(out.size() == 4);
  CHECK(out[0].name == "purchase");
  CHECK(out[0].seq == 12);
  CHECK(out[1].name == "purchase");
  CHECK(out[1].seq == 15);
  CHECK(out[2].name == "stock");
  CHECK(out[2].seq == 16);
  CHECK(out[2].data["stock"] == 5);
  CHECK(out[3].name == "low_stock");
  CHECK(out[3].seq == 17);
  CHECK(replay_events(missed, "product:p2").size() == 1);
  CHECK(replay_events(missed, "product:none").empty());
}
