#include "commerce/webhooks.h"

#include <doctest/doctest.h>

#include "commerce/events.h"
#include "commerce/outbound.h"

using namespace hawker;
using namespace hawker::commerce;

namespace {

storage::Database webhook_db() {
  auto db = storage::Database::open({.path = ":memory:", .wal = false});
  REQUIRE(db);
  storage::Schema schema;
  schema.add(event_migrations()).add(webhook_migrations());
  REQUIRE(storage::apply_migrations(*db, schema));
  return std::move(*db);
}

Event add_event(storage::Database& db, std::string_view type, int64_t now) {
  auto e = append_event(db, type, {{"product_id", "p1"}}, now);
  REQUIRE(e);
  return *e;
}

}  // namespace

TEST_CASE("signatures match the Standard Webhooks reference vector") {
  Secret secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
  auto sig = webhook_signature(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330,
                               R"({"test": 2432232314})");
  REQUIRE(sig);
  CHECK(*sig == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");

  // Any change of id, timestamp or body changes the signature.
  CHECK(*webhook_signature(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265331,
                           R"({"test": 2432232314})") != *sig);
  CHECK(*webhook_signature(secret, "msg_other", 1614265330, R"({"test": 2432232314})") != *sig);
  CHECK(*webhook_signature(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330,
                           R"({"test": 2432232315})") != *sig);
  CHECK_FALSE(webhook_signature(Secret("whsec_!!!"), "m", 1, "{}"));
}

TEST_CASE("new secrets are whsec_ with 32 random bytes, all different") {
  auto a = new_webhook_secret();
  auto b = new_webhook_secret();
  REQUIRE(a);
  REQUIRE(b);
  CHECK(a->reveal().rfind("whsec_", 0) == 0);
  CHECK(base64_decode(a->reveal().substr(6))->size() == 32);
  CHECK(a->reveal() != b->reveal());
}

TEST_CASE("event filters: exact types, families and everything") {
  std::vector<std::string> exact = {"order.paid"};
  CHECK(event_matches(exact, "order.paid"));
  CHECK_FALSE(event_matches(exact, "order.created"));
  std::vector<std::string> family = {"stock.*"};
  CHECK(event_matches(family, "stock.low"));
  CHECK(event_matches(family, "stock.sold_out"));
  CHECK_FALSE(event_matches(family, "order.paid"));
  CHECK_FALSE(event_matches(family, "stockx.low"));
  std::vector<std::string> all = {"*"};
  CHECK(event_matches(all, "broadcast.live"));
  CHECK_FALSE(event_matches(std::vector<std::string>{}, "order.paid"));

  auto ok = parse_event_filters(nlohmann::json::array({"order.*", "stock.low", "order.*"}));
  REQUIRE(ok);
  CHECK(ok->size() == 2);
  CHECK(parse_event_filters(nlohmann::json::array({"*"})));
  CHECK_FALSE(parse_event_filters(nlohmann::json::array()));
  CHECK_FALSE(parse_event_filters(nlohmann::json::array({"order.bogus"})));
  CHECK_FALSE(parse_event_filters(nlohmann::json::array({"nope.*"})));
  CHECK_FALSE(parse_event_filters(nlohmann::json::array({1})));
  CHECK_FALSE(parse_event_filters("order.paid"));
}

TEST_CASE("the default schedule retries for about three days, with bounded jitter") {
  auto s = default_retry_schedule_ms();
  REQUIRE(s.size() == 10);
  CHECK(s[0] == 0);
  CHECK(s[1] == 5'000);
  CHECK(s[9] == 24LL * 3600 * 1000);
  int64_t total = 0;
  for (int64_t d : s) total += d;
  CHECK(total > 3LL * 24 * 3600 * 1000);
  CHECK(total < 4LL * 24 * 3600 * 1000);

  CHECK(*retry_delay_ms(s, 1, 0.0) == 5'000);
  CHECK(*retry_delay_ms(s, 1, 0.999) >= 5'000);
  CHECK(*retry_delay_ms(s, 1, 0.999) <= 6'000);
  CHECK(*retry_delay_ms(s, 2, 0.5) == 5 * 60'000 + 30'000);
  CHECK_FALSE(retry_delay_ms(s, 10, 0.0));
  CHECK_FALSE(retry_delay_ms(s, -1, 0.0));
}

TEST_CASE("attempt outcomes: 2xx succeeds, 3xx retries, 410 gives up, Retry-After is honoured") {
  using Kind = AttemptOutcome::Kind;
  auto s = default_retry_schedule_ms();
  CHECK(decide_outcome(200, std::nullopt, 1, s, 1000, 0).kind == Kind::kSucceeded);
  CHECK(decide_outcome(204, std::nullopt, 1, s, 1000, 0).kind == Kind::kSucceeded);
  auto redirect = decide_outcome(301, std::nullopt, 1, s, 1000, 0);
  CHECK(redirect.kind == Kind::kRetry);
  CHECK(redirect.next_attempt_at_ms == 6000);
  CHECK(decide_outcome(410, std::nullopt, 1, s, 1000, 0).kind == Kind::kEndpointGone);
  CHECK(decide_outcome(0, std::nullopt, 3, s, 1000, 0).next_attempt_at_ms == 1000 + 30 * 60'000);
  CHECK(decide_outcome(500, std::nullopt, 10, s, 1000, 0).kind == Kind::kFailed);

  // Retry-After may lengthen the wait, never shorten it, and only on overload answers.
  CHECK(decide_outcome(429, 60'000, 1, s, 0, 0).next_attempt_at_ms == 60'000);
  CHECK(decide_outcome(503, 1'000, 1, s, 0, 0).next_attempt_at_ms == 5'000);
  CHECK(decide_outcome(500, 60'000, 1, s, 0, 0).next_attempt_at_ms == 5'000);
  CHECK(decide_outcome(429, 10LL * 24 * 3600 * 1000, 1, s, 0, 0).next_attempt_at_ms ==
        24LL * 3600 * 1000);
}

TEST_CASE("Retry-After in seconds and as an HTTP-date") {
  CHECK(parse_retry_after_ms("120", 0) == 120'000);
  CHECK(parse_retry_after_ms(" 5 ", 0) == 5'000);
  // Wed, 21 Oct 2015 07:28:00 GMT = 1445412480 s.
  CHECK(parse_retry_after_ms("Wed, 21 Oct 2015 07:28:00 GMT", 1445412480000 - 30'000) == 30'000);
  CHECK(parse_retry_after_ms("Wed, 21 Oct 2015 07:28:00 GMT", 1445412480000 + 30'000) == 0);
  CHECK_FALSE(parse_retry_after_ms("soon", 0));
  CHECK_FALSE(parse_retry_after_ms("-3", 0));
  CHECK_FALSE(parse_retry_after_ms("", 0));
}

TEST_CASE("SSRF: addresses outside the public internet are classified as such") {
  auto cls = [](const char* ip) { return classify_address(std::string_view(ip)); };
  CHECK(cls("8.8.8.8") == AddressClass::kPublic);
  CHECK(cls("93.184.216.34") == AddressClass::kPublic);
  CHECK(cls("127.0.0.1") == AddressClass::kLoopback);
  CHECK(cls("127.255.0.9") == AddressClass::kLoopback);
  CHECK(cls("0.0.0.0") == AddressClass::kUnspecified);
  CHECK(cls("10.1.2.3") == AddressClass::kPrivate);
  CHECK(cls("172.16.0.1") == AddressClass::kPrivate);
  CHECK(cls("172.31.255.255") == AddressClass::kPrivate);
  CHECK(cls("172.32.0.1") == AddressClass::kPublic);
  CHECK(cls("192.168.1.1") == AddressClass::kPrivate);
  CHECK(cls("169.254.169.254") == AddressClass::kLinkLocal);
  CHECK(cls("100.64.0.1") == AddressClass::kSharedCgnat);
  CHECK(cls("100.127.255.255") == AddressClass::kSharedCgnat);
  CHECK(cls("100.128.0.1") == AddressClass::kPublic);
  CHECK(cls("224.0.0.1") == AddressClass::kMulticast);
  CHECK(cls("255.255.255.255") == AddressClass::kReserved);

  CHECK(cls("::1") == AddressClass::kLoopback);
  CHECK(cls("::") == AddressClass::kUnspecified);
  CHECK(cls("fe80::1") == AddressClass::kLinkLocal);
  CHECK(cls("fe80::1%eth0") == AddressClass::kLinkLocal);
  CHECK(cls("fc00::1") == AddressClass::kUniqueLocal);
  CHECK(cls("fd12:3456::1") == AddressClass::kUniqueLocal);
  CHECK(cls("ff02::1") == AddressClass::kMulticast);
  CHECK(cls("2606:4700:4700::1111") == AddressClass::kPublic);
  // IPv4 inside IPv6 is judged by the IPv4 address.
  CHECK(cls("::ffff:127.0.0.1") == AddressClass::kLoopback);
  CHECK(cls("::ffff:10.0.0.1") == AddressClass::kPrivate);
  CHECK(cls("::ffff:8.8.8.8") == AddressClass::kPublic);
  CHECK(cls("64:ff9b::192.168.0.1") == AddressClass::kPrivate);
  CHECK_FALSE(cls("example.com"));
}

TEST_CASE("URLs are checked for scheme and literal private hosts") {
  CHECK(check_outbound_url("https://example.com/hook", false));
  CHECK(check_outbound_url("http://8.8.8.8:8080/x", false));
  CHECK_FALSE(check_outbound_url("ftp://example.com/x", false));
  CHECK_FALSE(check_outbound_url("file:///etc/passwd", false));
  CHECK_FALSE(check_outbound_url("not a url", false));
  CHECK(check_outbound_url("http://127.0.0.1:9/x", false).error().code ==
        ErrorCode::kPermissionDenied);
  CHECK_FALSE(check_outbound_url("http://[::1]:9/x", false));
  CHECK_FALSE(check_outbound_url("http://[::ffff:192.168.0.1]/x", false));
  CHECK_FALSE(check_outbound_url("http://localhost:9/x", false));
  CHECK(check_outbound_url("http://127.0.0.1:9/x", true));
}

TEST_CASE("fan-out gives each matching endpoint one delivery, once, after its creation") {
  auto db = webhook_db();
  add_event(db, event_type::kOrderCreated, 500);  // before any endpoint: never delivered
  auto all = insert_endpoint(db, "https://a.example/h", "all", {"*"}, 1000);
  auto orders = insert_endpoint(db, "https://b.example/h", "", {"order.*"}, 1000);
  REQUIRE(all);
  REQUIRE(orders);
  CHECK(all->secret.reveal().rfind("whsec_", 0) == 0);
  CHECK_FALSE(all->to_json().contains("secret"));

  auto paid = add_event(db, event_type::kOrderPaid, 2000);
  add_event(db, event_type::kStockLow, 2001);
  auto n = fan_out_events(db, 3000, 100);
  REQUIRE(n);
  CHECK(*n == 3);
  CHECK(*fan_out_events(db, 3000, 100) == 0);  // the cursor moved

  auto claimed = claim_due_deliveries(db, 3000, 60'000, 10);
  REQUIRE(claimed);
  CHECK(claimed->due.size() == 3);  // order.paid x2, stock.low x1
  CHECK(claimed->pending == 3);
  // Leased: not claimed again until the lease ends.
  CHECK(claim_due_deliveries(db, 3000, 60'000, 10)->due.empty());
  CHECK(claim_due_deliveries(db, 3000, 60'000, 10)->next_due_at_ms == 63'000);
  const DueDelivery& first = claimed->due.front();
  auto body = nlohmann::json::parse(first.body);
  CHECK(body["id"] == paid.id);
  CHECK(first.event_id == paid.id);
  CHECK(body["type"] == "order.paid");
  CHECK(body["data"]["product_id"] == "p1");
}

TEST_CASE("with no endpoint, fan-out passes events by seq alone, in batches of its limit") {
  auto db = webhook_db();
  for (int i = 0; i < 5; ++i) add_event(db, event_type::kStockChanged, 1000 + i);
  CHECK(*fan_out_events(db, 2000, 3) == 3);
  CHECK(*fan_out_events(db, 2000, 3) == 2);
  CHECK(*fan_out_events(db, 2000, 3) == 0);
  // Events passed before the endpoint existed are never delivered; later ones are.
  REQUIRE(insert_endpoint(db, "https://a.example/h", "", {"*"}, 2500));
  add_event(db, event_type::kStockChanged, 3000);
  CHECK(*fan_out_events(db, 3000, 3) == 1);
  auto claimed = claim_due_deliveries(db, 3000, 60'000, 10);
  REQUIRE(claimed);
  CHECK(claimed->due.size() == 1);
}

TEST_CASE("attempts are logged; retries stay pending; 410 disables; replay re-sends") {
  auto db = webhook_db();
  auto ep = insert_endpoint(db, "https://a.example/h", "", {"*"}, 1000);
  REQUIRE(ep);
  add_event(db, event_type::kOrderPaid, 2000);
  REQUIRE(fan_out_events(db, 2000, 10));
  auto claimed = claim_due_deliveries(db, 2000, 60'000, 10);
  REQUIRE(claimed->due.size() == 1);
  std::string id = claimed->due[0].id;

  auto s = default_retry_schedule_ms();
  DeliveryAttempt refused{2000, 0, 3, "connection refused"};
  REQUIRE(record_attempt(db, id, refused, decide_outcome(0, std::nullopt, 1, s, 2003, 0)));
  auto list = list_deliveries(db, ep->id, 10);
  REQUIRE(list);
  REQUIRE(list->size() == 1);
  CHECK((*list)[0].status == "pending");
  CHECK((*list)[0].attempts == 1);
  CHECK((*list)[0].next_attempt_at_ms == 7003);
  REQUIRE((*list)[0].attempt_log.size() == 1);
  CHECK((*list)[0].attempt_log[0].error == "connection refused");
  CHECK(claim_due_deliveries(db, 7002, 60'000, 10)->due.empty());
  REQUIRE(claim_due_deliveries(db, 7003, 60'000, 10)->due.size() == 1);

  DeliveryAttempt gone{7003, 410, 5, ""};
  REQUIRE(record_attempt(db, id, gone, decide_outcome(410, std::nullopt, 2, s, 7008, 0)));
  auto found = find_endpoint(db, ep->id);
  REQUIRE(found);
  REQUIRE(found->has_value());
  CHECK_FALSE((*found)->enabled);
  CHECK(claim_due_deliveries(db, 9000, 60'000, 10)->disabled_endpoints == 1);
  CHECK(list_deliveries(db, ep->id, 10)->front().status == "failed");

  // Disabled endpoints get no new deliveries and have none sent.
  add_event(db, event_type::kOrderShipped, 9000);
  REQUIRE(fan_out_events(db, 9000, 10));
  CHECK(list_deliveries(db, ep->id, 10)->size() == 1);

  REQUIRE(*set_endpoint_enabled(db, ep->id, true, ""));
  auto replayed = replay_delivery(db, id, 10'000);
  REQUIRE(replayed);
  REQUIRE(replayed->has_value());
  CHECK((*replayed)->id != id);
  CHECK((*replayed)->status == "pending");
  auto again = claim_due_deliveries(db, 10'000, 60'000, 10);
  REQUIRE(again->due.size() == 1);
  CHECK(again->due[0].event_id == list_deliveries(db, ep->id, 10)->back().event_id);
  CHECK_FALSE(replay_delivery(db, "whd_missing", 10'000)->has_value());

  CHECK(*delete_endpoint(db, ep->id));
  CHECK_FALSE(*delete_endpoint(db, ep->id));
  CHECK(claim_due_deliveries(db, 20'000, 60'000, 10)->pending == 0);
}

TEST_CASE("migration 112 rebuilds the outbox under pending deliveries without breaking them") {
  auto db = storage::Database::open({.path = ":memory:", .wal = false});
  REQUIRE(db);
  storage::Schema schema;
  schema.add(event_migrations()).add(webhook_migrations());
  auto all = schema.ordered();
  REQUIRE(all);
  std::vector<storage::Migration> before_112;
  for (const auto& m : *all) {
    if (m.version != 112) before_112.push_back(m);
  }
  REQUIRE(storage::apply_migrations(*db, before_112));
  REQUIRE(insert_endpoint(*db, "https://a.example/h", "", {"*"}, 1000));
  add_event(*db, event_type::kStockChanged, 2000);
  add_event(*db, event_type::kStockLow, 2001);
  REQUIRE(*fan_out_events(*db, 3000, 100) == 2);

  // Deliveries reference the events' seq: the rebuild must leave no dangling reference.
  // (Migrations run as the database opens, before any statement; here the cached ones used
  // above are reset first, as the Store does at every transaction's end.)
  db->reset_all_statements();
  REQUIRE(storage::apply_migrations(*db, schema));
  auto check = db->prepare("SELECT count(*) FROM pragma_foreign_key_check");
  REQUIRE(check);
  REQUIRE(check->step());
  CHECK(check->column_int64(0) == 0);
  auto claimed = claim_due_deliveries(*db, 3000, 60'000, 10);
  REQUIRE(claimed);
  REQUIRE(claimed->due.size() == 2);
  CHECK(nlohmann::json::parse(claimed->due[0].body)["type"] == "stock.changed");
  CHECK(nlohmann::json::parse(claimed->due[1].body)["data"]["product_id"] == "p1");
}
