#include "core/clock.h"

#include <doctest/doctest.h>
#include <fmt/format.h>

#include <cstdio>
#include <ctime>
#include <string>

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

TEST_CASE("RFC 3339 with milliseconds: the cached second never leaks into another") {
  // The formatter keeps the last second it printed; times are visited out of order, across
  // second, day and year boundaries and before 1970, and each is checked against gmtime.
  const int64_t points[] = {1'767'225'599'999, 1'767'225'600'000, 1'767'225'599'000, 0, -1, -1000,
                            -1001, 1'700'000'000'123, 1'700'000'000'999, 1'700'000'001'000,
                            1'700'000'000'000, 1'767'225'600'001};
  for (int64_t ms : points) {
    std::time_t t = static_cast<std::time_t>(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char expected[64];
    std::snprintf(expected, sizeof expected, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
                  tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                  static_cast<int>(ms - static_cast<int64_t>(t) * 1000));
    CAPTURE(ms);
    CHECK(format_rfc3339_ms(ms) == expected);
    fmt::memory_buffer out;
    out.append(std::string_view("at "));
    append_rfc3339_ms(out, ms);
    CHECK(fmt::to_string(out) == std::string("at ") + expected);
  }
  CHECK(format_rfc3339_ms(-1) == "1969-12-31T23:59:59.999Z");
  CHECK(format_rfc3339_ms(1'767'225'600'000) == "2026-01-01T00:00:00.000Z");
}

TEST_CASE("manual clock moves only when told") {
  ManualClock c(1000);
  CHECK(c.wall_ms() == 1000);
  c.advance_ms(250);
  CHECK(c.wall_ms() == 1250);
  CHECK(c.steady_ms() == 250);
}
