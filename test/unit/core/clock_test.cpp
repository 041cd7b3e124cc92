#include "core/clock.h"

#include <doctest/doctest.h>

using namespace hawker;

TEST_CASE("RFC 3339 formats and parses") {
  int64_t ms = 0;
  REQUIRE(parse_rfc3339("2026-11-22T10:00:00Z", ms));
  CHECK(format_rfc3339(ms) == "2026-11-22T10:00:00Z");
  REQUIRE(parse_rfc3339("2026-11-22T10:00:00.250+01:00", ms));
  CHECK(format_rfc3339_ms(ms) == "2026-11-22T09:00:00.250Z");
  CHECK_FALSE(parse_rfc3339("2026-11-22 10:00:00", ms));
  CHECK_FALSE(parse_rfc3339("2026-13-22T10:00:00Z", ms));
  CHECK_FALSE(parse_rfc3339("2026-11-22T10:00:00Zjunk", ms));
}

TEST_CASE("manual clock moves only when told") {
  ManualClock c(1000);
  CHECK(c.wall_ms() == 1000);
  c.advance_ms(250);
  CHECK(c.wall_ms() == 1250);
  CHECK(c.steady_ms() == 250);
}
