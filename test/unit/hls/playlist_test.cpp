#include "media/hls/playlist.h"

#include <doctest/doctest.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "media/hls/playlist_validator.h"

namespace hawker::media::hls {
namespace {

constexpr int64_t kWall = 1'795'000'000'000;  // 2026-11-18T...
constexpr int64_t kPart = 30'030;             // 10 frames at 29.97 fps, 90 kHz

// Compares with test/unit/hls/golden/<name>; HAWKER_UPDATE_GOLDEN=1 rewrites the file instead.
void check_golden(const std::string& name, const std::string& text) {
  const std::string path = std::string(HLS_GOLDEN_DIR) + "/" + name;
  if (std::getenv("HAWKER_UPDATE_GOLDEN") != nullptr) {
    std::ofstream(path) << text;
  }
  std::ifstream file(path);
  REQUIRE_MESSAGE(file.good(), "missing golden file " << path);
  std::stringstream expected;
  expected << file.rdbuf();
  CHECK_MESSAGE(expected.str() == text, "golden " << name << " differs; got:\n" << text);
  const ValidationResult result = validate_media_playlist(text);
  for (const auto& error : result.errors) {
    FAIL_CHECK(name << ": " << error);
  }
}

// A live playlist: `count` segments of 3 parts from `first_msn`, parts listed for the newest
// three, then `open_parts` parts of an open segment.
MediaPlaylist live(int64_t first_msn, int count, int open_parts) {
  MediaPlaylist playlist;
  playlist.target_duration_s = 4;
  playlist.part_target = 334 * 90;
  playlist.next_msn = first_msn + count;
  int64_t start = first_msn * 3 * kPart;
  for (int i = 0; i < count + (open_parts > 0 ? 1 : 0); ++i) {
    PlaylistSegment segment;
    segment.msn = first_msn + i;
    segment.complete = i < count;
    segment.program_date_time_ms = kWall + start / 90;
    const int parts = segment.complete ? 3 : open_parts;
    for (int p = 0; p < parts; ++p) {
      segment.duration += kPart;
      if (i >= count - 3) {
        segment.parts.push_back(PlaylistPart{kPart, p == 0});
      }
    }
    start += segment.duration;
    playlist.segments.push_back(segment);
  }
  return playlist;
}

TEST_CASE("golden: steady state with parts, preload hint and server control") {
  check_golden("steady.m3u8", write_media_playlist(live(100, 5, 2)));
}

TEST_CASE("golden: a preload hint for the next segment's first part after a segment completes") {
  check_golden("segment_boundary.m3u8", write_media_playlist(live(100, 4, 0)));
}

TEST_CASE("golden: delta update skips segments older than CAN-SKIP-UNTIL") {
  // 30 segments of 1 s; CAN-SKIP-UNTIL 24 s.
  const MediaPlaylist playlist = live(40, 30, 1);
  const std::string full = write_media_playlist(playlist);
  const std::string delta = write_media_playlist(playlist, true);
  check_golden("delta.m3u8", delta);
  const ValidationResult result = validate_media_playlist(delta);
  CHECK(result.skipped == 6);
  CHECK(result.skipped + result.segments == 30);
  CHECK(delta.size() < full.size());
  CHECK(write_media_playlist(live(40, 5, 1), true).find("EXT-X-SKIP") == std::string::npos);
}

TEST_CASE("golden: discontinuity after a republish, with a new init segment") {
  MediaPlaylist playlist = live(7, 5, 1);
  playlist.discontinuity_sequence = 2;
  for (size_t i = 3; i < playlist.segments.size(); ++i) {
    playlist.segments[i].init_generation = 1;
    playlist.segments[i].program_date_time_ms += 20'000;  // publisher was away 20 s
  }
  playlist.segments[3].discontinuity = true;
  check_golden("discontinuity.m3u8", write_media_playlist(playlist));
}

TEST_CASE("golden: rendition reports for the other renditions") {
  MediaPlaylist playlist = live(100, 5, 2);
  playlist.reports = {RenditionReport{"720p", 105, 1}, RenditionReport{"360p", 105, 0}};
  check_golden("rendition_reports.m3u8", write_media_playlist(playlist));
}

TEST_CASE("golden: multivariant playlist") {
  TrackConfig video;
  video.kind = TrackKind::kVideo;
  video.codec = Codec::kH264;
  video.width = 1920;
  video.height = 1080;
  video.profile_idc = 100;
  video.level_idc = 42;
  TrackConfig audio;
  audio.kind = TrackKind::kAudio;
  audio.codec = Codec::kAac;
  audio.audio_object_type = 2;
  TrackConfig small = video;
  small.width = 640;
  small.height = 360;
  small.profile_idc = 77;
  small.level_idc = 30;
  const std::vector<Variant> variants = {
      Variant{"source", 6'500'000, 6'000'000, 30.0, {video, audio}},
      Variant{"360p", 900'000, 800'000, 29.97, {small, audio}},
  };
  const std::string text = write_multivariant_playlist(variants);
  const std::string path = std::string(HLS_GOLDEN_DIR) + "/multivariant.m3u8";
  if (std::getenv("HAWKER_UPDATE_GOLDEN") != nullptr) {
    std::ofstream(path) << text;
  }
  std::ifstream file(path);
  std::stringstream expected;
  expected << file.rdbuf();
  CHECK(expected.str() == text);
}

TEST_CASE("server control values follow the targets") {
  MediaPlaylist playlist;
  playlist.target_duration_s = 4;
  playlist.part_target = 334 * 90;
  CHECK(part_hold_back_s(playlist) == doctest::Approx(1.002));
  CHECK(can_skip_until_s(playlist) == doctest::Approx(24.0));
  playlist.part_target = 30'030;  // 333.67 ms rounds up, never under 3 x
  CHECK(part_hold_back_s(playlist) >= 3 * 30'030 / 90'000.0);
}

TEST_CASE("an empty playlist hints the first part of the next segment") {
  MediaPlaylist playlist;
  playlist.part_target = 334 * 90;
  playlist.next_msn = 12;
  const std::string text = write_media_playlist(playlist);
  CHECK(text.find("#EXT-X-MEDIA-SEQUENCE:12\n") != std::string::npos);
  CHECK(text.find("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part12.0.m4s\"\n") != std::string::npos);
  CHECK(validate_media_playlist(text).ok());
}

}  // namespace
}  // namespace hawker::media::hls
