#include "core/result.h"

#include <doctest/doctest.h>

using namespace hawker;

namespace {
Result<int> parse_positive(int v) {
  if (v <= 0) return unexpected(ErrorCode::kInvalidArgument, "must be positive");
  return v;
}
Status outer(int v) {
  HAWKER_TRY_STATUS(parse_positive(v), "reading count");
  return ok_status();
}
}  // namespace

TEST_CASE("Result carries a value or an error") {
  auto ok = parse_positive(3);
  REQUIRE(ok);
  CHECK(*ok == 3);
  auto bad = parse_positive(-1);
  REQUIRE_FALSE(bad);
  CHECK(bad.error().code == ErrorCode::kInvalidArgument);
  CHECK(bad.value_or(7) == 7);
}

TEST_CASE("errors gain context as they travel up") {
  Status s = outer(0);
  REQUIRE_FALSE(s);
  CHECK(s.error().message == "reading count: must be positive");
  CHECK(outer(5).ok());
}
