#include "media/remux/fmp4_muxer.h"

#include <doctest/doctest.h>
#include <fmt/format.h>

#include <fstream>
#include <string_view>

#include "test/unit/hls/media_fixture.h"

namespace hawker::media::remux {
namespace {

std::string_view box_type(const Bytes& bytes, size_t offset = 0) {
  if (bytes.size() < offset + 8) {
    return {};
  }
  return std::string_view(reinterpret_cast<const char*>(bytes.data()) + offset + 4, 4);
}

void write_file(const std::string& path, const Bytes& init, const std::vector<Fragment>& parts) {
  std::ofstream file(path, std::ios::binary);
  file.write(reinterpret_cast<const char*>(init.data()), static_cast<std::streamsize>(init.size()));
  for (const Fragment& f : parts) {
    file.write(reinterpret_cast<const char*>(f.bytes.data()),
               static_cast<std::streamsize>(f.bytes.size()));
  }
}

TEST_CASE("fMP4 parts from real H.264/AAC decode as one stream with every frame") {
  const auto& stream = test::encoded_stream(2, 30);
  if (!stream.error.empty()) {
    MESSAGE("skipped: " << stream.error);
    return;
  }
  REQUIRE(stream.tracks.size() == 2);

  auto muxer = Fmp4Muxer::open(stream.tracks);
  REQUIRE(muxer);
  const Bytes init = (*muxer)->init_segment();
  CHECK(box_type(init) == "ftyp");

  TimestampNormaliser normaliser;
  std::vector<Fragment> fragments;
  int video_frames = 0;
  for (const Packet& packet : stream.packets) {
    const NormalisedPacket p = normaliser.normalise(packet);
    REQUIRE((*muxer)->write(p));
    if (p.kind == TrackKind::kVideo) {
      // Cut before every 10th frame: fragments of exactly 10 frames, the keyframes (every 30)
      // at fragment starts.
      if (video_frames++ % 10 == 0 && video_frames > 1) {
        auto fragment = (*muxer)->cut();
        REQUIRE(fragment);
        fragments.push_back(std::move(*fragment));
      }
    }
  }
  auto last = (*muxer)->drain();
  REQUIRE(last);
  fragments.push_back(std::move(*last));
  REQUIRE((*muxer)->finish());
  CHECK(video_frames == 60);

  // Each fragment is moof+mdat, contiguous in time, 10 frames long.
  int64_t expected_start = fragments.front().start_dts;
  int64_t total = 0;
  for (const Fragment& f : fragments) {
    CHECK(box_type(f.bytes) == "moof");
    CHECK(f.start_dts == expected_start);
    expected_start = f.start_dts + f.duration;
    total += f.duration;
    CHECK(f.duration >= 333 * kTicksPerMs);
    CHECK(f.duration <= 334 * kTicksPerMs);
  }
  CHECK(total == doctest::Approx(2.0 * kTimebase).epsilon(0.01));
  // -g 30: keyframes at frames 0 and 30, the starts of fragments 0 and 3.
  REQUIRE(fragments.size() == 6);
  for (size_t i = 0; i < fragments.size(); ++i) {
    CHECK(fragments[i].independent == (i == 0 || i == 3));
  }

  const std::string path = fmt::format("{}/muxed.mp4", test::temp_dir());
  write_file(path, init, fragments);
  std::string frames;
  const int rc = test::run_command(
      fmt::format("ffprobe -v error -count_frames -select_streams v:0 -show_entries "
                  "stream=nb_read_frames -of csv=p=0 {}",
                  path),
      &frames);
  CHECK(rc == 0);
  CHECK(std::stoi(frames) == 60);

  std::string audio_frames;
  CHECK(test::run_command(fmt::format("ffprobe -v error -count_frames -select_streams a:0 "
                                      "-show_entries stream=nb_read_frames -of csv=p=0 {}",
                                      path),
                          &audio_frames) == 0);
  CHECK(std::stoi(audio_frames) >= 85);

  // Audio and video share one origin: their first timestamps differ by what the source had.
  std::string starts;
  CHECK(test::run_command(fmt::format("ffprobe -v error -show_entries stream=codec_type,start_time "
                                      "-of csv=p=0 {}",
                                      path),
                          &starts) == 0);
  double video_start = -1;
  double audio_start = -1;
  for (size_t at = 0; at < starts.size();) {
    const size_t end = starts.find('\n', at);
    const std::string row = starts.substr(at, end - at);
    const size_t comma = row.find(',');
    if (comma != std::string::npos) {
      (row.substr(0, comma) == "video" ? video_start : audio_start) =
          std::stod(row.substr(comma + 1));
    }
    at = end == std::string::npos ? starts.size() : end + 1;
  }
  int64_t first_video_ms = -1;
  int64_t first_audio_ms = -1;
  for (const Packet& packet : stream.packets) {
    int64_t& first = packet.kind == TrackKind::kVideo ? first_video_ms : first_audio_ms;
    if (first < 0) {
      first = packet.timestamp_ms;
    }
  }
  CHECK(video_start - audio_start ==
        doctest::Approx((first_video_ms - first_audio_ms) / 1000.0).epsilon(0.001));

  // A full decode reports nothing: every sample is where its moof says.
  std::string decode_errors;
  CHECK(test::run_command(fmt::format("ffmpeg -nostdin -v error -i {} -f null - 2>&1", path),
                          &decode_errors) == 0);
  CHECK(decode_errors.empty());
}

TEST_CASE("audio whose clock steps back over time already sent loses the overlap, not the stream") {
  const auto& stream = test::encoded_stream(2, 30);
  if (!stream.error.empty()) {
    MESSAGE("skipped: " << stream.error);
    return;
  }
  auto muxer = Fmp4Muxer::open(stream.tracks);
  REQUIRE(muxer);
  // From 1 s on, the audio's timestamps are 70 ms earlier, as at the join of a file that ffmpeg
  // loops with -c copy when its audio is longer than its video.
  TimestampNormaliser normaliser;
  int audio_in = 0;
  for (Packet packet : stream.packets) {
    if (packet.kind == TrackKind::kAudio) {
      ++audio_in;
      if (packet.timestamp_ms >= 1000) {
        packet.timestamp_ms -= 70;
      }
    }
    REQUIRE((*muxer)->write(normaliser.normalise(packet)));
  }
  auto whole = (*muxer)->drain();  // one fragment: this test is about time, not cutting
  REQUIRE(whole);
  REQUIRE((*muxer)->finish());
  // About 70 ms of AAC at 44.1 or 48 kHz: two to four frames.
  CHECK((*muxer)->overlapping_audio_frames() >= 1);
  CHECK((*muxer)->overlapping_audio_frames() <= 4);

  const std::string path = fmt::format("{}/overlap.mp4", test::temp_dir());
  write_file(path, (*muxer)->init_segment(), {*whole});
  std::string errors;
  CHECK(test::run_command(fmt::format("ffmpeg -v error -nostdin -i {} -f null - 2>&1", path),
                          &errors) == 0);
  CHECK(errors.empty());
  std::string audio_frames;
  CHECK(test::run_command(fmt::format("ffprobe -v error -count_frames -select_streams a:0 "
                                      "-show_entries stream=nb_read_frames -of csv=p=0 {}",
                                      path),
                          &audio_frames) == 0);
  CHECK(std::stoi(audio_frames) ==
        audio_in - static_cast<int>((*muxer)->overlapping_audio_frames()));
}

}  // namespace
}  // namespace hawker::media::remux
