#include "commerce/events.h"

#include <doctest/doctest.h>

using namespace hawker;
using namespace hawker::commerce;

TEST_CASE("the outbox keeps events in commit order with stable ids") {
  auto db = storage::Database::open({.path = ":memory:", .wal = false});
  REQUIRE(db);
  storage::Schema schema;
  schema.add(event_migrations());
  REQUIRE(storage::apply_migrations(*db, schema));
  auto a = append_event(*db, event_type::kOrderCreated, {{"order_id", "o1"}}, 1000);
  auto b = append_event(*db, event_type::kStockChanged, {{"stock", 4}}, 1001);
  REQUIRE(a);
  REQUIRE(b);
  CHECK(a->id.rfind("evt_", 0) == 0);
  CHECK(a->id != b->id);
  CHECK(b->seq > a->seq);
  auto after = events_after(*db, a->seq, 10);
  REQUIRE(after);
  REQUIRE(after->size() == 1);
  CHECK((*after)[0].type == "stock.changed");
  CHECK((*after)[0].data()["stock"] == 4);
  CHECK((*after)[0].envelope()["timestamp"] == "1970-01-01T00:00:01.001Z");
  CHECK(*last_event_seq(*db) == b->seq);

  int seen = 0;
  EventBus bus;
  bus.subscribe([&](const Event& e) { seen += e.type == "order.created"; });
  bus.publish(*a);
  CHECK(seen == 1);
}
