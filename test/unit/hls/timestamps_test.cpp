#include "media/remux/timestamps.h"

#include <doctest/doctest.h>

namespace hawker::media::remux {
namespace {

Packet video(uint32_t ms, bool key = false, int32_t composition = 0) {
  Packet p;
  p.kind = TrackKind::kVideo;
  p.timestamp_ms = ms;
  p.keyframe = key;
  p.composition_ms = composition;
  return p;
}

Packet audio(uint32_t ms) {
  Packet p;
  p.kind = TrackKind::kAudio;
  p.timestamp_ms = ms;
  p.keyframe = true;
  return p;
}

TEST_CASE("the first packet of either track is time zero and the other keeps its offset") {
  TimestampNormaliser n;
  CHECK(n.normalise(audio(1000)).dts == 0);
  CHECK(n.normalise(video(1020, true)).dts == 20 * kTicksPerMs);
  CHECK(n.normalise(audio(1023)).dts == 23 * kTicksPerMs);
  CHECK(n.normalise(video(1053)).dts == 53 * kTicksPerMs);
}

TEST_CASE("a track that starts slightly before the origin is clamped to zero") {
  TimestampNormaliser n;
  CHECK(n.normalise(video(500, true)).dts == 0);
  CHECK(n.normalise(audio(480)).dts == 0);
  CHECK(n.normalise(audio(503)).dts == 3 * kTicksPerMs);
}

TEST_CASE("timestamps unwrap at 2^32") {
  TimestampNormaliser n;
  CHECK(n.normalise(video(0xFFFFFF00u, true)).dts == 0);
  CHECK(n.normalise(audio(0xFFFFFFF0u)).dts == 0xF0 * kTicksPerMs);
  const NormalisedPacket v = n.normalise(video(0x00000010u));
  CHECK(v.dts == 0x110 * kTicksPerMs);
  CHECK_FALSE(v.discontinuity);
  CHECK(n.normalise(audio(0x00000020u)).dts == 0x120 * kTicksPerMs);
  CHECK(n.discontinuities() == 0);
}

TEST_CASE("a track whose first packet comes after the wrap is unwrapped against the other") {
  TimestampNormaliser n;
  n.normalise(video(0xFFFFFFF0u, true));
  CHECK(n.normalise(video(0x00000010u)).dts == 0x20 * kTicksPerMs);
  CHECK(n.normalise(audio(0x00000015u)).dts == 0x25 * kTicksPerMs);
}

TEST_CASE("pts is dts plus the composition offset") {
  TimestampNormaliser n;
  const NormalisedPacket p = n.normalise(video(0, true, 66));
  CHECK(p.dts == 0);
  CHECK(p.pts == 66 * kTicksPerMs);
  CHECK(n.normalise(audio(10)).pts == 10 * kTicksPerMs);
}

TEST_CASE("a forward gap re-anchors both tracks so media time stays continuous") {
  TimestampNormaliser n;
  for (uint32_t t = 0; t <= 1000; t += 40) {
    n.normalise(video(t, t == 0));
    n.normalise(audio(t + 5));
  }
  // The encoder restarted its clock 60 s later.
  const NormalisedPacket v = n.normalise(video(61000, true));
  CHECK(v.discontinuity);
  CHECK(v.dts == 1040 * kTicksPerMs);
  const NormalisedPacket a = n.normalise(audio(61005));
  CHECK_FALSE(a.discontinuity);
  CHECK(a.dts == 1045 * kTicksPerMs);
  CHECK(n.normalise(video(61040)).dts == 1080 * kTicksPerMs);
  CHECK(n.discontinuities() == 1);
}

TEST_CASE("a large backward jump re-anchors; a small one is clamped to keep dts increasing") {
  TimestampNormaliser n;
  n.normalise(video(10000, true));
  n.normalise(video(10033));
  const NormalisedPacket back = n.normalise(video(2000));
  CHECK(back.discontinuity);
  CHECK(back.dts == 66 * kTicksPerMs);
  CHECK(n.normalise(video(2033)).dts == 99 * kTicksPerMs);

  const NormalisedPacket small = n.normalise(video(2020));
  CHECK_FALSE(small.discontinuity);
  CHECK(small.dts == 99 * kTicksPerMs + 1);
}

TEST_CASE("a gap shorter than the limit is kept as it is") {
  TimestampNormaliser n;
  n.normalise(video(0, true));
  const NormalisedPacket p = n.normalise(video(2500));
  CHECK_FALSE(p.discontinuity);
  CHECK(p.dts == 2500 * kTicksPerMs);
}

}  // namespace
}  // namespace hawker::media::remux
