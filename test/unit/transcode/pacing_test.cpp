#include "media/transcode/pacing.h"

#include <doctest/doctest.h>

#include <cstddef>
#include <vector>

namespace hawker::media::transcode {
namespace {

// pts of frames at `fps` with RTMP's whole-millisecond rounding.
std::vector<int64_t> frame_times(int fps, int frames) {
  std::vector<int64_t> pts;
  for (int i = 0; i < frames; ++i) {
    pts.push_back(static_cast<int64_t>(i) * 1000 / fps * 90);
  }
  return pts;
}

TEST_CASE("a 60 fps source capped at 30 keeps every other frame, evenly") {
  FrameRateCap cap(30);
  std::vector<int64_t> kept;
  for (int64_t pts : frame_times(60, 120)) {
    if (cap.admit(pts, false)) {
      kept.push_back(pts);
    }
  }
  CHECK(kept.size() == 60);
  for (size_t i = 1; i < kept.size(); ++i) {
    CHECK(kept[i] - kept[i - 1] >= 2970);
    CHECK(kept[i] - kept[i - 1] <= 3060);
  }
}

TEST_CASE("a source at or below the cap keeps every frame despite millisecond jitter") {
  for (int fps : {30, 25, 24}) {
    FrameRateCap cap(30);
    int kept = 0;
    for (int64_t pts : frame_times(fps, 90)) {
      kept += cap.admit(pts, false) ? 1 : 0;
    }
    CHECK(kept == 90);
  }
}

TEST_CASE("50 fps capped at 30 gives 30 fps, and frames that must be kept always are") {
  FrameRateCap cap(30);
  int kept = 0;
  for (int64_t pts : frame_times(50, 100)) {
    kept += cap.admit(pts, false) ? 1 : 0;
  }
  CHECK(kept == 60);

  FrameRateCap keyed(30);
  int kept_keys = 0;
  for (int i = 0; i < 120; ++i) {
    const bool key = i % 7 == 0;
    const bool admitted = keyed.admit(static_cast<int64_t>(i) * 1500, key);
    kept_keys += key && admitted ? 1 : 0;
  }
  CHECK(kept_keys == 18);
}

TEST_CASE("no cap keeps everything") {
  FrameRateCap cap(0);
  for (int64_t pts : frame_times(120, 50)) {
    CHECK(cap.admit(pts, false));
  }
}

TEST_CASE("the realtime meter compares wall time with media time over a sliding window") {
  RealtimeMeter meter(90'000);  // one second
  CHECK(meter.load() == 0.0);
  for (int i = 0; i < 30; ++i) {
    meter.add(3000, 10);  // 10 ms of work per 33.3 ms frame
  }
  CHECK(meter.load() == doctest::Approx(0.3).epsilon(0.01));
  for (int i = 0; i < 30; ++i) {
    meter.add(3000, 50);  // slower than real time
  }
  // The window forgot the fast frames.
  CHECK(meter.load() == doctest::Approx(1.5).epsilon(0.01));
  CHECK(meter.media_ticks() <= 90'000 + 3000);
  meter.reset();
  CHECK(meter.load() == 0.0);
  CHECK(meter.media_ticks() == 0);
}

}  // namespace
}  // namespace hawker::media::transcode
