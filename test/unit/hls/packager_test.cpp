#include "media/hls/packager.h"

#include <doctest/doctest.h>
#include <fmt/format.h>

#include <fstream>

#include "media/hls/playlist_validator.h"
#include "media/hls/segment_store.h"
#include "test/unit/hls/media_fixture.h"

namespace hawker::media::hls {
namespace {

using remux::kTicksPerMs;

struct Run {
  std::vector<std::shared_ptr<const Part>> parts;
  std::vector<SegmentComplete> segments;
  Bytes init;
  PackagerStats stats;
};

// Feeds a whole stream through a normaliser and a packager, the way a media worker does.
Run package(const test::EncodedStream& stream, PackagerOptions options, bool strip_keyframes,
            SegmentStore* store = nullptr) {
  Run run;
  auto packager = Packager::open(stream.tracks, options, 0, 1'700'000'000'000);
  REQUIRE(packager);
  run.init = (*packager)->init_segment();
  if (store != nullptr) {
    store->begin_stream(run.init);
  }
  remux::TimestampNormaliser normaliser;
  std::vector<PackagerEvent> events;
  bool first_video = true;
  for (Packet packet : stream.packets) {
    if (strip_keyframes && packet.kind == TrackKind::kVideo) {
      packet.keyframe = first_video;
      first_video = false;
    }
    REQUIRE((*packager)->push(normaliser.normalise(packet), events));
  }
  REQUIRE((*packager)->finish(events));
  for (auto& event : events) {
    if (auto* part = std::get_if<std::shared_ptr<const Part>>(&event)) {
      run.parts.push_back(*part);
      if (store != nullptr) {
        REQUIRE(store->append_part(*part));
      }
    } else {
      run.segments.push_back(std::get<SegmentComplete>(event));
      if (store != nullptr) {
        REQUIRE(store->complete_segment(run.segments.back().msn));
      }
    }
  }
  run.stats = (*packager)->stats();
  return run;
}

TEST_CASE("parts never exceed the part target and segments close at keyframes") {
  const auto& stream = test::encoded_stream(4, 30);
  if (!stream.error.empty()) {
    MESSAGE("skipped: " << stream.error);
    return;
  }
  PackagerOptions options;
  const Run run = package(stream, options, false);

  REQUIRE(run.segments.size() == 4);
  CHECK(run.stats.forced_cuts == 0);
  CHECK(run.stats.overlong_parts == 0);
  size_t next = 0;
  for (const SegmentComplete& segment : run.segments) {
    CHECK(segment.independent);
    CHECK_FALSE(segment.forced_cut);
    int64_t sum = 0;
    for (int i = 0; i < segment.part_count; ++i) {
      const Part& part = *run.parts.at(next++);
      CHECK(part.msn == segment.msn);
      CHECK(part.index == i);
      CHECK(part.duration <= options.part_target_ticks());
      CHECK(part.independent == (i == 0));
      sum += part.duration;
    }
    CHECK(sum == segment.duration);
    // A keyframe every second, target 1 s: segments of one second; parts of 7 frames (233 ms,
    // 8 would pass 250 ms) and the 2 frames left before the keyframe.
    CHECK(segment.duration == doctest::Approx(1000 * kTicksPerMs).epsilon(0.01));
    CHECK(segment.part_count == 5);
  }
  CHECK(next == run.parts.size());

  // Program-date-time follows media time.
  for (size_t i = 1; i < run.parts.size(); ++i) {
    const Part& a = *run.parts[i - 1];
    const Part& b = *run.parts[i];
    CHECK(b.start == a.start + a.duration);
    CHECK(b.program_date_time_ms - a.program_date_time_ms ==
          doctest::Approx(a.duration / kTicksPerMs).epsilon(0.01));
  }

  // The init segment and the parts, concatenated, are one playable file with every frame.
  const std::string path = fmt::format("{}/packaged.mp4", test::temp_dir());
  {
    std::ofstream file(path, std::ios::binary);
    file.write(reinterpret_cast<const char*>(run.init.data()),
               static_cast<std::streamsize>(run.init.size()));
    for (const auto& part : run.parts) {
      file.write(reinterpret_cast<const char*>(part->bytes->data()),
                 static_cast<std::streamsize>(part->bytes->size()));
    }
  }
  std::string frames;
  CHECK(test::run_command(fmt::format("ffprobe -v error -count_frames -select_streams v:0 "
                                      "-show_entries stream=nb_read_frames -of csv=p=0 {}",
                                      path),
                          &frames) == 0);
  CHECK(std::stoi(frames) == 120);
}

TEST_CASE("a part target that does not divide the frame rate still keeps every part under it") {
  const auto& stream = test::encoded_stream(4, 30);
  if (!stream.error.empty()) {
    MESSAGE("skipped: " << stream.error);
    return;
  }
  PackagerOptions options;
  options.part_target_ms = 250;
  options.segment_target_ms = 2000;
  const Run run = package(stream, options, false);
  REQUIRE(run.segments.size() == 2);
  for (const auto& part : run.parts) {
    CHECK(part->duration <= options.part_target_ticks());
    // 7 frames of 33.3 ms fit in 250 ms, 8 do not; only a segment's last part may be shorter.
    const auto& segment = run.segments.at(static_cast<size_t>(part->msn));
    if (part->index + 1 < segment.part_count) {
      CHECK(part->duration >= 233 * kTicksPerMs);
    }
  }
}

TEST_CASE("a keyframe interval longer than the maximum segment forces cuts without keyframes") {
  const auto& stream = test::encoded_stream(9, 30);
  if (!stream.error.empty()) {
    MESSAGE("skipped: " << stream.error);
    return;
  }
  PackagerOptions options;  // max segment 4 s -> TARGETDURATION 4
  SegmentStoreOptions store_options;
  store_options.target_duration_s = options.target_duration_s();
  store_options.part_target = options.part_target_ticks();
  SegmentStore store(store_options);
  const Run run = package(stream, options, /*strip_keyframes=*/true, &store);

  CHECK(options.target_duration_s() == 4);
  REQUIRE(run.segments.size() == 3);
  CHECK(run.stats.forced_cuts == 2);
  CHECK(run.segments[0].independent);
  CHECK(run.segments[0].forced_cut);
  CHECK_FALSE(run.segments[1].independent);
  for (const SegmentComplete& segment : run.segments) {
    CHECK(segment.duration <= 4000 * kTicksPerMs);
  }
  CHECK(run.segments[0].duration > 3600 * kTicksPerMs);

  const std::string text = write_media_playlist(store.playlist());
  const ValidationResult result = validate_media_playlist(text);
  for (const auto& error : result.errors) {
    FAIL_CHECK(error);
  }
  CHECK(result.segments == 3);
  CHECK(text.find("#EXT-X-TARGETDURATION:4\n") != std::string::npos);
}

TEST_CASE("packets before the first keyframe are dropped") {
  const auto& stream = test::encoded_stream(2, 30);
  if (!stream.error.empty()) {
    MESSAGE("skipped: " << stream.error);
    return;
  }
  auto packager = Packager::open(stream.tracks, PackagerOptions{}, 7, 0);
  REQUIRE(packager);
  remux::TimestampNormaliser normaliser;
  std::vector<PackagerEvent> events;
  int skipped_video = 0;
  for (const Packet& packet : stream.packets) {
    // Start the feed at the 5th video frame: no keyframe until 1 s.
    if (packet.kind == TrackKind::kVideo && skipped_video < 5) {
      ++skipped_video;
      continue;
    }
    REQUIRE((*packager)->push(normaliser.normalise(packet), events));
  }
  REQUIRE((*packager)->finish(events));
  REQUIRE_FALSE(events.empty());
  const auto& first = std::get<std::shared_ptr<const Part>>(events.front());
  CHECK(first->msn == 7);
  CHECK(first->independent);
  CHECK((*packager)->stats().dropped_before_keyframe > 25);
}

TEST_CASE("options are validated") {
  PackagerOptions options;
  CHECK(options.validate());
  options.part_target_ms = 50;
  CHECK_FALSE(options.validate());
  options = PackagerOptions{};
  options.max_segment_ms = 500;
  CHECK_FALSE(options.validate());
  CHECK_FALSE(Packager::open({}, PackagerOptions{}, 0, 0));
}

}  // namespace
}  // namespace hawker::media::hls
