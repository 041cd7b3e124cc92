#include "media/transcode/ladder.h"

#include <doctest/doctest.h>
#include <fmt/format.h>

#include <fstream>
#include <set>

#include "media/hls/packager.h"
#include "media/transcode/avc.h"
#include "test/unit/transcode/transcode_fixture.h"

namespace hawker::media::transcode {
namespace {

using remux::NormalisedPacket;

LadderConfig small_ladder() {
  LadderConfig config;
  config.rungs = {{270, 500'000, 30}, {180, 250'000, 30}};
  return config;
}

struct Packaged {
  Bytes init;
  std::vector<std::shared_ptr<const hls::Part>> parts;
  std::vector<hls::SegmentComplete> segments;
};

void collect(std::vector<hls::PackagerEvent>& events, Packaged& into) {
  for (auto& event : events) {
    if (auto* part = std::get_if<std::shared_ptr<const hls::Part>>(&event)) {
      into.parts.push_back(*part);
    } else {
      into.segments.push_back(std::get<hls::SegmentComplete>(event));
    }
  }
  events.clear();
}

// The source as the service runs it: the passthrough packager first, then the ladder, told to cut
// where the source's packager started a segment; each rung into its own packager.
struct Run {
  std::unique_ptr<Ladder> ladder;
  Packaged source;
  std::vector<Packaged> rungs;
  std::vector<std::vector<NormalisedPacket>> rung_packets;
};

Run run_stream(const test::Clip& clip, LadderConfig config, hls::PackagerOptions options = {}) {
  Run run;
  auto ladder = Ladder::open(clip.video, std::move(config));
  REQUIRE_MESSAGE(ladder, (ladder ? "" : ladder.error().message));
  run.ladder = std::move(*ladder);
  const TrackConfig source_track = clip.video;
  auto source = hls::Packager::open(std::span(&source_track, 1), options, 0, 0);
  REQUIRE(source);
  run.source.init = (*source)->init_segment();
  std::vector<std::unique_ptr<hls::Packager>> packagers;
  for (size_t i = 0; i < run.ladder->rung_count(); ++i) {
    const TrackConfig& track = run.ladder->track(i);
    auto packager = hls::Packager::open(std::span(&track, 1), options, 0, 0);
    REQUIRE_MESSAGE(packager, (packager ? "" : packager.error().message));
    run.rungs.emplace_back();
    run.rungs.back().init = (*packager)->init_segment();
    packagers.push_back(std::move(*packager));
  }
  run.rung_packets.resize(run.ladder->rung_count());
  std::vector<hls::PackagerEvent> events;
  std::vector<RungPacket> encoded;
  auto deliver = [&] {
    for (RungPacket& p : encoded) {
      run.rung_packets[p.rung].push_back(p.packet);
      REQUIRE(packagers[p.rung]->push(p.packet, events));
      collect(events, run.rungs[p.rung]);
    }
    encoded.clear();
  };
  for (const NormalisedPacket& packet : clip.packets) {
    REQUIRE((*source)->push(packet, events));
    bool cut = false;
    for (auto& event : events) {
      cut = cut || std::holds_alternative<hls::SegmentComplete>(event);
    }
    collect(events, run.source);
    REQUIRE(run.ladder->push(packet, cut, encoded));
    deliver();
  }
  REQUIRE(run.ladder->finish(encoded));
  deliver();
  REQUIRE((*source)->finish(events));
  collect(events, run.source);
  for (size_t i = 0; i < packagers.size(); ++i) {
    REQUIRE(packagers[i]->finish(events));
    collect(events, run.rungs[i]);
  }
  return run;
}

std::vector<int64_t> segment_starts(const Packaged& packaged) {
  std::vector<int64_t> starts;
  for (const auto& part : packaged.parts) {
    if (part->index == 0) {
      starts.push_back(part->start);
    }
  }
  return starts;
}

std::set<int64_t> keyframe_pts(const std::vector<NormalisedPacket>& packets) {
  std::set<int64_t> out;
  for (const auto& p : packets) {
    if (p.keyframe) {
      out.insert(p.pts);
    }
  }
  return out;
}

// Writes init + every part as one fragmented mp4 and asks ffprobe about it.
std::string probe(const Packaged& packaged, const std::string& name, const std::string& entries) {
  const std::string path = fmt::format("{}/{}.mp4", test::temp_dir(), name);
  {
    std::ofstream file(path, std::ios::binary);
    file.write(reinterpret_cast<const char*>(packaged.init.data()),
               static_cast<std::streamsize>(packaged.init.size()));
    for (const auto& part : packaged.parts) {
      file.write(reinterpret_cast<const char*>(part->bytes->data()),
                 static_cast<std::streamsize>(part->bytes->size()));
    }
  }
  std::string output;
  const int status = test::run_command(
      fmt::format("ffprobe -v error -count_frames -select_streams v:0 -show_entries {} -of "
                  "default=noprint_wrappers=1 {} 2>&1",
                  entries, path),
      &output);
  CHECK(status == 0);
  return output;
}

TEST_CASE("plan_rungs skips rungs at or above the source and keeps the aspect ratio") {
  TrackConfig source;
  source.width = 1920;
  source.height = 1080;
  auto plans = plan_rungs(source, LadderConfig{});
  REQUIRE(plans.size() == 3);
  CHECK(plans[0].width == 1280);
  CHECK(plans[0].height == 720);
  CHECK(plans[1].width == 854);
  CHECK(plans[1].height == 480);
  CHECK(plans[2].width == 640);
  CHECK(plans[2].height == 360);

  source.width = 1280;
  source.height = 720;
  plans = plan_rungs(source, LadderConfig{});
  REQUIRE(plans.size() == 2);
  CHECK(plans[0].height == 480);
  CHECK(plans[1].height == 360);

  source.width = 640;
  source.height = 360;
  CHECK(plan_rungs(source, LadderConfig{}).empty());
  source.width = 0;
  CHECK(plan_rungs(source, LadderConfig{}).empty());
}

TEST_CASE("bad configurations and sources are refused") {
  LadderConfig config;
  config.preset = "warp";
  CHECK_FALSE(config.validate());
  config = LadderConfig{};
  config.rungs = {{361, 800'000, 30}};
  CHECK_FALSE(config.validate());
  config = LadderConfig{};
  config.encoder_threads = 0;
  CHECK_FALSE(config.validate());
  CHECK(LadderConfig{}.validate());

  const test::Clip& clip = test::clip({});
  REQUIRE_MESSAGE(clip.error.empty(), clip.error);
  // A 360p source has nothing below it in the default ladder.
  auto none = Ladder::open(clip.video, LadderConfig{});
  REQUIRE_FALSE(none);
  CHECK(none.error().code == ErrorCode::kInvalidArgument);
  TrackConfig audio;
  audio.kind = TrackKind::kAudio;
  audio.codec = Codec::kAac;
  CHECK_FALSE(Ladder::open(audio, small_ladder()));
  TrackConfig garbage = clip.video;
  garbage.extradata = {1, 2, 3};
  CHECK_FALSE(Ladder::open(garbage, small_ladder()));
}

TEST_CASE("a 720p source gets 480p and 360p rungs whose tracks describe their bitstreams") {
  const test::Clip& clip = test::clip({.width = 1280, .height = 720, .frames = 30, .gop = 15});
  REQUIRE_MESSAGE(clip.error.empty(), clip.error);
  LadderConfig config;
  config.preset = "ultrafast";
  Run run = run_stream(clip, config);
  REQUIRE(run.ladder->rung_count() == 2);
  for (size_t i = 0; i < 2; ++i) {
    const TrackConfig& track = run.ladder->track(i);
    CHECK(track.height == (i == 0 ? 480 : 360));
    CHECK(track.width == (i == 0 ? 854 : 640));
    REQUIRE(track.extradata.size() > 8);
    CHECK(track.extradata[0] == 1);
    const size_t sps_size = (size_t{track.extradata[6]} << 8) | track.extradata[7];
    auto head = flv::parse_sps(std::span(track.extradata).subspan(8, sps_size));
    REQUIRE(head);
    CHECK(track.codec_string() == fmt::format("avc1.{:02x}{:02x}{:02x}", head->profile_idc,
                                              head->constraint_flags, head->level_idc));
    CHECK(run.rung_packets[i].size() == 30);
    const std::string probed = probe(run.rungs[i], fmt::format("rung720_{}", i),
                                     "stream=width,height,level,nb_read_frames");
    CHECK(probed.find(fmt::format("width={}", track.width)) != std::string::npos);
    CHECK(probed.find(fmt::format("height={}", track.height)) != std::string::npos);
    CHECK(probed.find(fmt::format("level={}", track.level_idc)) != std::string::npos);
    CHECK(probed.find("nb_read_frames=30") != std::string::npos);
    CHECK(probed.find("rror") == std::string::npos);
  }
}

TEST_CASE("every rung keeps the source's pts and has IDRs exactly on the source's keyframes") {
  const test::Clip& clip = test::clip({.frames = 75, .gop = 15});
  REQUIRE_MESSAGE(clip.error.empty(), clip.error);
  Run run = run_stream(clip, small_ladder());
  REQUIRE(run.ladder->rung_count() == 2);
  const std::set<int64_t> source_keys = keyframe_pts(clip.packets);
  CHECK(source_keys.size() == 5);
  std::vector<int64_t> source_pts;
  for (const auto& p : clip.packets) {
    source_pts.push_back(p.pts);
  }
  for (size_t i = 0; i < run.ladder->rung_count(); ++i) {
    const auto& packets = run.rung_packets[i];
    CHECK(keyframe_pts(packets) == source_keys);
    std::vector<int64_t> pts;
    for (const auto& p : packets) {
      pts.push_back(p.pts);
      CHECK(p.dts == p.pts);  // no B-frames anywhere
    }
    CHECK(pts == source_pts);
    const RungStats stats = run.ladder->rung_stats(i);
    CHECK(stats.frames_encoded == 75);
    CHECK(stats.keyframes == 5);
    CHECK(stats.frames_dropped_by_cap == 0);
    // Segments of every rendition start and end together.
    REQUIRE(run.rungs[i].segments.size() == run.source.segments.size());
    for (size_t s = 0; s < run.source.segments.size(); ++s) {
      CHECK(run.rungs[i].segments[s].msn == run.source.segments[s].msn);
      CHECK(run.rungs[i].segments[s].duration == run.source.segments[s].duration);
      CHECK(run.rungs[i].segments[s].independent);
    }
    CHECK(segment_starts(run.rungs[i]) == segment_starts(run.source));
    const std::string probed =
        probe(run.rungs[i], fmt::format("aligned_{}", i), "stream=nb_read_frames");
    CHECK(probed.find("nb_read_frames=75") != std::string::npos);
    CHECK(probed.find("rror") == std::string::npos);
  }
  CHECK(run.ladder->stats().frames_decoded == 75);
  CHECK(run.ladder->stats().decode_errors == 0);
}

TEST_CASE("a source with B-frames: rungs keep its pts and share its keyframe dts") {
  const test::Clip& clip = test::clip({.frames = 60, .gop = 30, .bframes = 2});
  REQUIRE_MESSAGE(clip.error.empty(), clip.error);
  Run run = run_stream(clip, small_ladder());
  std::set<int64_t> source_pts;
  std::map<int64_t, int64_t> source_key_dts;
  for (const auto& p : clip.packets) {
    source_pts.insert(p.pts);
    if (p.keyframe) {
      source_key_dts[p.pts] = p.dts;
    }
  }
  for (size_t i = 0; i < run.ladder->rung_count(); ++i) {
    std::set<int64_t> pts;
    int64_t last_dts = -1'000'000;
    for (const auto& p : run.rung_packets[i]) {
      pts.insert(p.pts);
      CHECK(p.dts > last_dts);
      CHECK(p.dts <= p.pts);
      last_dts = p.dts;
      if (p.keyframe) {
        REQUIRE(source_key_dts.count(p.pts) == 1);
        CHECK(p.dts == source_key_dts[p.pts]);
      }
    }
    CHECK(pts == source_pts);
    CHECK(keyframe_pts(run.rung_packets[i]).size() == source_key_dts.size());
  }
}

TEST_CASE("the frame-rate cap halves a 60 fps source and still cuts on every source keyframe") {
  const test::Clip& clip =
      test::clip({.width = 320, .height = 180, .fps = 60, .frames = 120, .gop = 30});
  REQUIRE_MESSAGE(clip.error.empty(), clip.error);
  LadderConfig config;
  config.rungs = {{144, 200'000, 30}, {90, 100'000, 0}};
  Run run = run_stream(clip, config);
  REQUIRE(run.ladder->rung_count() == 2);
  CHECK(run.rung_packets[0].size() == 60);
  CHECK(run.ladder->rung_stats(0).frames_dropped_by_cap == 60);
  CHECK(run.rung_packets[1].size() == 120);  // uncapped
  const std::set<int64_t> source_keys = keyframe_pts(clip.packets);
  CHECK(keyframe_pts(run.rung_packets[0]) == source_keys);
  // The last segment's last frame has no successor: its duration is each track's own estimate.
  REQUIRE(run.rungs[0].segments.size() == run.source.segments.size());
  for (size_t s = 0; s + 1 < run.source.segments.size(); ++s) {
    CHECK(run.rungs[0].segments[s].duration == run.source.segments[s].duration);
  }
  CHECK(segment_starts(run.rungs[0]) == segment_starts(run.source));
  const std::string probed = probe(run.rungs[0], "capped", "stream=nb_read_frames");
  CHECK(probed.find("nb_read_frames=60") != std::string::npos);
}

TEST_CASE("long keyframe interval: rungs get IDRs where the source's segments are cut") {
  // One keyframe every 6 s; the packager cuts the source at 4 s without one.
  const test::Clip& clip = test::clip({.width = 320, .height = 180, .frames = 270, .gop = 180});
  REQUIRE_MESSAGE(clip.error.empty(), clip.error);
  LadderConfig config;
  config.rungs = {{144, 200'000, 30}};
  Run run = run_stream(clip, config);
  REQUIRE(run.source.segments.size() >= 3);
  bool saw_forced = false;
  REQUIRE(run.rungs[0].segments.size() == run.source.segments.size());
  for (size_t s = 0; s < run.source.segments.size(); ++s) {
    saw_forced = saw_forced || run.source.segments[s].forced_cut;
    CHECK(run.rungs[0].segments[s].duration == run.source.segments[s].duration);
    // The rung starts every segment with an IDR even where the source cannot.
    CHECK(run.rungs[0].segments[s].independent);
    CHECK_FALSE(run.rungs[0].segments[s].forced_cut);
  }
  CHECK(saw_forced);
  CHECK(keyframe_pts(run.rung_packets[0]).size() == run.source.segments.size());
}

TEST_CASE("a 1080p source gets the default ladder") {
  const test::Clip& clip = test::clip({.width = 1920, .height = 1080, .frames = 8, .gop = 4});
  REQUIRE_MESSAGE(clip.error.empty(), clip.error);
  Run run = run_stream(clip, LadderConfig{});
  REQUIRE(run.ladder->rung_count() == 3);
  const int heights[] = {720, 480, 360};
  for (size_t i = 0; i < 3; ++i) {
    CHECK(run.ladder->track(i).height == heights[i]);
    CHECK(run.rung_packets[i].size() == 8);
    CHECK(keyframe_pts(run.rung_packets[i]) == keyframe_pts(clip.packets));
  }
}

// A clock that moves on every reading, as if each measured step took `step_ms`.
class SlowClock final : public Clock {
 public:
  explicit SlowClock(int64_t step_ms) : step_ms_(step_ms) {}
  int64_t steady_ms() const override { return now_ += step_ms_; }
  int64_t wall_ms() const override { return now_; }

 private:
  int64_t step_ms_;
  mutable int64_t now_ = 0;
};

TEST_CASE(
    "a ladder that cannot keep real time names the rung to shed; a shed rung comes back "
    "at a keyframe") {
  const test::Clip& clip = test::clip({.frames = 75, .gop = 15});
  REQUIRE_MESSAGE(clip.error.empty(), clip.error);
  LadderConfig config = small_ladder();
  config.realtime_window_ms = 1000;
  // Each measured step "takes" 20 ms: decode ~40 ms and each rung 20 ms per 33 ms frame.
  SlowClock slow(20);
  auto ladder = Ladder::open(clip.video, config, slow);
  REQUIRE(ladder);
  std::vector<RungPacket> out;
  size_t i = 0;
  for (; i < 40; ++i) {
    REQUIRE((*ladder)->push(clip.packets[i], false, out));
  }
  CHECK_FALSE((*ladder)->keeping_up());
  CHECK((*ladder)->stats().load > 1.0);
  auto shed = (*ladder)->rung_to_shed();
  REQUIRE(shed);
  (*ladder)->set_rung_enabled(*shed, false);
  CHECK_FALSE((*ladder)->rung_enabled(*shed));
  out.clear();
  for (; i < 50; ++i) {
    REQUIRE((*ladder)->push(clip.packets[i], false, out));
  }
  for (const RungPacket& p : out) {
    CHECK(p.rung != *shed);
  }
  // Back on between keyframes (frame 50 is not one): it resumes at frame 60 with an IDR.
  (*ladder)->set_rung_enabled(*shed, true);
  out.clear();
  for (; i < 75; ++i) {
    REQUIRE((*ladder)->push(clip.packets[i], false, out));
  }
  std::vector<NormalisedPacket> resumed;
  for (const RungPacket& p : out) {
    if (p.rung == *shed) {
      resumed.push_back(p.packet);
    }
  }
  REQUIRE(resumed.size() == 15);
  CHECK(resumed.front().keyframe);
  CHECK(resumed.front().pts == clip.packets[60].pts);

  // A clock that never moves: everything keeps up.
  ManualClock still;
  auto fast = Ladder::open(clip.video, config, still);
  REQUIRE(fast);
  for (size_t k = 0; k < 45; ++k) {
    REQUIRE((*fast)->push(clip.packets[k], false, out));
  }
  CHECK((*fast)->keeping_up());
  CHECK_FALSE((*fast)->rung_to_shed());
}

TEST_CASE("corrupt packets cost frames, not the stream; bad calls are errors") {
  const test::Clip& clip = test::clip({.frames = 75, .gop = 15});
  REQUIRE_MESSAGE(clip.error.empty(), clip.error);
  auto ladder = Ladder::open(clip.video, small_ladder());
  REQUIRE(ladder);
  std::vector<RungPacket> out;
  NormalisedPacket empty = clip.packets[0];
  empty.data = std::make_shared<const Bytes>();
  CHECK_FALSE((*ladder)->push(empty, false, out));
  for (size_t i = 0; i < clip.packets.size(); ++i) {
    NormalisedPacket packet = clip.packets[i];
    if (i >= 20 && i < 25) {
      Bytes junk = *packet.data;
      for (size_t b = 4; b < junk.size(); ++b) {
        junk[b] = static_cast<uint8_t>(junk[b] * 31 + b);
      }
      if (i == 22) {
        junk = {0, 0, 0, 200, 0x65};  // a NAL length past the end
      }
      packet.data = std::make_shared<const Bytes>(std::move(junk));
    }
    REQUIRE((*ladder)->push(packet, false, out));
  }
  REQUIRE((*ladder)->finish(out));
  // After the damage the stream recovers at the next keyframes.
  std::set<int64_t> rung0_pts;
  for (const RungPacket& p : out) {
    if (p.rung == 0) {
      rung0_pts.insert(p.packet.pts);
    }
  }
  CHECK(rung0_pts.count(clip.packets[74].pts) == 1);
  CHECK(rung0_pts.count(clip.packets[30].pts) == 1);
  CHECK_FALSE((*ladder)->push(clip.packets[0], false, out));
}

TEST_CASE("packets before the first keyframe are skipped; open and close many times") {
  const test::Clip& clip = test::clip({.frames = 75, .gop = 15});
  REQUIRE_MESSAGE(clip.error.empty(), clip.error);
  for (int cycle = 0; cycle < 5; ++cycle) {
    auto ladder = Ladder::open(clip.video, small_ladder());
    REQUIRE(ladder);
    std::vector<RungPacket> out;
    // Join mid-GOP, as after a reconnect.
    for (size_t i = 5 + cycle; i < 40; ++i) {
      REQUIRE((*ladder)->push(clip.packets[i], false, out));
    }
    REQUIRE((*ladder)->finish(out));
    REQUIRE_FALSE(out.empty());
    CHECK(out.front().packet.keyframe);
    CHECK(out.front().packet.pts == clip.packets[15].pts);
  }
}

}  // namespace
}  // namespace hawker::media::transcode
