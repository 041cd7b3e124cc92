#include <doctest/doctest.h>

#include "media/hls/playlist.h"

namespace hawker::media::hls {
namespace {

using Action = BlockingDecision::Action;

// Segment 10 is complete; segment 11 has parts 0 and 1.
PlaylistPosition position() { return PlaylistPosition{11, 1, 10}; }

BlockingDecision decide(std::optional<std::string_view> msn, std::optional<std::string_view> part,
                        std::optional<std::string_view> skip = std::nullopt) {
  return decide_blocking_request(BlockingQuery{msn, part, skip}, position());
}

TEST_CASE("a plain request is answered now") {
  CHECK(decide(std::nullopt, std::nullopt).action == Action::kAnswerNow);
}

TEST_CASE("a part that exists is answered now, a future one is held") {
  CHECK(decide("11", "1").action == Action::kAnswerNow);
  CHECK(decide("10", "7").action == Action::kAnswerNow);  // past the end of a complete segment
  const BlockingDecision hold = decide("11", "2");
  CHECK(hold.action == Action::kHold);
  CHECK(hold.msn == 11);
  CHECK(hold.part == 2);
  CHECK(decide("12", "0").action == Action::kHold);
  CHECK(decide("13", "0").action == Action::kHold);
}

TEST_CASE("_HLS_msn alone waits for the whole segment") {
  CHECK(decide("10", std::nullopt).action == Action::kAnswerNow);
  const BlockingDecision hold = decide("11", std::nullopt);
  CHECK(hold.action == Action::kHold);
  CHECK(hold.part == -1);
}

TEST_CASE("bad requests get 400") {
  CHECK(decide("14", "0").action == Action::kBadRequest);  // more than two past the last
  CHECK(decide(std::nullopt, "1").action == Action::kBadRequest);
  CHECK(decide("abc", std::nullopt).action == Action::kBadRequest);
  CHECK(decide("-1", std::nullopt).action == Action::kBadRequest);
  CHECK(decide("", std::nullopt).action == Action::kBadRequest);
  CHECK(decide("11", "1.5").action == Action::kBadRequest);
  CHECK(decide("99999999999999999999", std::nullopt).action == Action::kBadRequest);
  CHECK(decide("11", "2", "NO").action == Action::kBadRequest);
  CHECK_FALSE(decide(std::nullopt, "1").error.empty());
}

TEST_CASE("_HLS_skip asks for a delta update") {
  CHECK(decide(std::nullopt, std::nullopt, "YES").delta_update);
  CHECK(decide("11", "2", "v2").delta_update);
  CHECK(decide("11", "2", "v2").action == Action::kHold);
  CHECK_FALSE(decide(std::nullopt, std::nullopt).delta_update);
}

TEST_CASE("before any part, the first segments may be waited for") {
  const PlaylistPosition empty;
  CHECK(decide_blocking_request(BlockingQuery{"0", "0", std::nullopt}, empty).action ==
        Action::kHold);
  CHECK(decide_blocking_request(BlockingQuery{"1", "0", std::nullopt}, empty).action ==
        Action::kHold);
  CHECK(decide_blocking_request(BlockingQuery{"2", "0", std::nullopt}, empty).action ==
        Action::kBadRequest);
}

}  // namespace
}  // namespace hawker::media::hls
