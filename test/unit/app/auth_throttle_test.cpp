#include "app/auth_throttle.h"

#include <doctest/doctest.h>

#include <string>

using hawker::app::AuthThrottle;

namespace {
AuthThrottle::Options options(int free_failures, int64_t window_ms, int64_t base_ms, int64_t max_ms,
                              size_t max_tracked = 10'000) {
  AuthThrottle::Options o;
  o.free_failures = free_failures;
  o.window_ms = window_ms;
  o.base_delay_ms = base_ms;
  o.max_delay_ms = max_ms;
  o.max_tracked = max_tracked;
  return o;
}
}  // namespace

TEST_CASE("an address with no failures is never slowed down") {
  AuthThrottle t;
  CHECK(t.delay_ms("10.0.0.1", 0) == 0);
  CHECK(t.delay_ms("10.0.0.1", 1'000'000) == 0);
  CHECK(t.tracked() == 0);
}

TEST_CASE("the first free failures cost nothing, then each attempt waits twice as long") {
  AuthThrottle t(options(3, 60'000, 1000, 30'000));
  const std::string a = "192.0.2.7";
  int64_t now = 5'000;
  for (int i = 0; i < 2; ++i) {
    t.record_failure(a, now);
    CHECK(t.delay_ms(a, now) == 0);
  }
  t.record_failure(a, now);
  CHECK(t.delay_ms(a, now) == 1000);
  t.record_failure(a, now);
  CHECK(t.delay_ms(a, now) == 2000);
  t.record_failure(a, now);
  CHECK(t.delay_ms(a, now) == 4000);
  t.record_failure(a, now);
  CHECK(t.delay_ms(a, now) == 8000);
  t.record_failure(a, now);
  CHECK(t.delay_ms(a, now) == 16'000);
  t.record_failure(a, now);
  CHECK(t.delay_ms(a, now) == 30'000);
}

TEST_CASE("the delay is capped however many failures pile up") {
  AuthThrottle t(options(3, 60'000, 1000, 30'000));
  for (int i = 0; i < 500; ++i) t.record_failure("198.51.100.1", 10'000 + i);
  CHECK(t.delay_ms("198.51.100.1", 11'000) == 30'000);
}

TEST_CASE("addresses are counted separately") {
  AuthThrottle t(options(1, 60'000, 500, 10'000));
  t.record_failure("a", 1000);
  t.record_failure("a", 1000);
  CHECK(t.delay_ms("a", 1000) == 1000);
  CHECK(t.delay_ms("b", 1000) == 0);
  t.record_failure("b", 1000);
  CHECK(t.delay_ms("b", 1000) == 500);
  CHECK(t.tracked() == 2);
}

TEST_CASE("a success clears the address") {
  AuthThrottle t(options(1, 60'000, 500, 10'000));
  for (int i = 0; i < 4; ++i) t.record_failure("a", 1000);
  REQUIRE(t.delay_ms("a", 1000) > 0);
  t.record_success("a");
  CHECK(t.delay_ms("a", 1000) == 0);
  CHECK(t.tracked() == 0);
  t.record_failure("a", 1000);
  CHECK(t.delay_ms("a", 1000) == 500);
}

TEST_CASE("failures older than the window are forgotten") {
  AuthThrottle t(options(2, 10'000, 1000, 30'000));
  for (int i = 0; i < 5; ++i) t.record_failure("a", 100'000);
  CHECK(t.delay_ms("a", 110'000) == 8000);
  SUBCASE("asking after the window drops the entry") {
    CHECK(t.delay_ms("a", 110'001) == 0);
    CHECK(t.tracked() == 0);
  }
  SUBCASE("a failure after the window starts the count again") {
    t.record_failure("a", 120'000);
    CHECK(t.delay_ms("a", 120'000) == 0);
    t.record_failure("a", 120'000);
    CHECK(t.delay_ms("a", 120'000) == 1000);
  }
  SUBCASE("each failure extends the window") {
    t.record_failure("a", 109'000);
    CHECK(t.delay_ms("a", 118'000) == 16'000);
  }
}

TEST_CASE("a full table first forgets addresses whose window ran out") {
  AuthThrottle t(options(0, 100, 10, 1000, 4));
  t.record_failure("old-1", 1000);
  t.record_failure("old-2", 1000);
  t.record_failure("new-1", 1150);
  t.record_failure("new-2", 1150);
  REQUIRE(t.tracked() == 4);
  t.record_failure("newest", 1160);
  CHECK(t.tracked() == 3);
  CHECK(t.delay_ms("new-1", 1160) > 0);
  CHECK(t.delay_ms("new-2", 1160) > 0);
  CHECK(t.delay_ms("newest", 1160) > 0);
}

TEST_CASE("a table full of fresh addresses drops its oldest half instead of growing") {
  AuthThrottle t(options(0, 1'000'000, 10, 1000, 4));
  t.record_failure("a", 1001);
  t.record_failure("b", 1002);
  t.record_failure("c", 1003);
  t.record_failure("d", 1004);
  t.record_failure("e", 1005);
  CHECK(t.tracked() == 3);
  CHECK(t.delay_ms("a", 1006) == 0);
  CHECK(t.delay_ms("b", 1006) == 0);
  CHECK(t.delay_ms("c", 1006) > 0);
  CHECK(t.delay_ms("d", 1006) > 0);
  CHECK(t.delay_ms("e", 1006) > 0);
  // A known address is counted again without evicting anyone.
  t.record_failure("c", 1007);
  CHECK(t.tracked() == 3);
  for (int i = 0; i < 1000; ++i) t.record_failure("x" + std::to_string(i), 2000 + i);
  CHECK(t.tracked() <= 4);
}

TEST_CASE("host_of strips the port from IPv4 and bracketed IPv6 addresses") {
  CHECK(AuthThrottle::host_of("127.0.0.1:54321") == "127.0.0.1");
  CHECK(AuthThrottle::host_of("[::1]:1935") == "::1");
  CHECK(AuthThrottle::host_of("[2001:db8::5]:40000") == "2001:db8::5");
  // Another port from the same host is the same address: a client cannot dodge the slow-down
  // by reconnecting.
  CHECK(AuthThrottle::host_of("10.1.2.3:1") == AuthThrottle::host_of("10.1.2.3:65535"));
}

TEST_CASE("host_of leaves addresses without a port alone and survives malformed input") {
  CHECK(AuthThrottle::host_of("10.1.2.3") == "10.1.2.3");
  CHECK(AuthThrottle::host_of("::1") == "::1");
  CHECK(AuthThrottle::host_of("2001:db8::5") == "2001:db8::5");
  CHECK(AuthThrottle::host_of("[::1") == "::1");
  CHECK(AuthThrottle::host_of("[") == "");
  CHECK(AuthThrottle::host_of("") == "");
  CHECK(AuthThrottle::host_of(":") == "");
}
