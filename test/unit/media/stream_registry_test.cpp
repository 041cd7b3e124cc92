#include "media/stream_registry.h"

#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

using namespace hawker::media;

namespace {
Packet video(uint32_t ts, bool key) {
  Packet p;
  p.kind = TrackKind::kVideo;
  p.timestamp_ms = ts;
  p.keyframe = key;
  return p;
}
}  // namespace

TEST_CASE("a second publisher on a live channel takes over") {
  StreamRegistry reg(10'000);
  CHECK_FALSE(reg.publish_started("shop", 1, "10.0.0.1:5000", 0).has_value());
  auto old = reg.publish_started("shop", 2, "10.0.0.1:5001", 100);
  REQUIRE(old.has_value());
  CHECK(*old == 1);
  CHECK(reg.find("shop")->reconnects == 1);
  CHECK(reg.find("shop")->conn_id == 2);
  // The old connection's close no longer concerns the channel.
  CHECK_FALSE(reg.publisher_left(1, 200).has_value());
  CHECK(reg.find("shop")->state == StreamState::kLive);
}

TEST_CASE("a dropped publisher is reconnecting for the grace period, then ended") {
  StreamRegistry reg(5'000);
  reg.publish_started("shop", 1, "a", 0);
  auto left = reg.publisher_left(1, 1'000);
  REQUIRE(left.has_value());
  CHECK(reg.find("shop")->state == StreamState::kReconnecting);
  CHECK(reg.expire(5'999).empty());
  // Back within the grace period: the same stream goes on.
  CHECK_FALSE(reg.publish_started("shop", 2, "a", 4'000).has_value());
  CHECK(reg.find("shop")->state == StreamState::kLive);
  CHECK(reg.find("shop")->live_since_ms == 0);
  reg.publisher_left(2, 10'000);
  CHECK(reg.expire(14'999).empty());
  auto ended = reg.expire(15'000);
  REQUIRE(ended.size() == 1);
  CHECK(ended[0] == "shop");
  CHECK(reg.find("shop") == nullptr);
}

TEST_CASE("keyframe interval, frame rate and bitrate are measured") {
  StreamRegistry reg(5'000);
  reg.publish_started("shop", 1, "a", 0);
  // 30 fps with a keyframe every 4 s, 1000 bytes a frame, for 6 wall seconds.
  for (int i = 0; i < 180; ++i) {
    uint32_t ts = static_cast<uint32_t>(i * 1000 / 30);
    reg.on_packet(1, video(ts, i % 120 == 0), 1000, ts);
  }
  const StreamInfo* s = reg.find("shop");
  CHECK(s->keyframe_interval_ms == 4000);
  CHECK(s->keyframe_interval_warning());
  CHECK(s->frame_rate == doctest::Approx(30).epsilon(0.05));
  CHECK(s->bitrate_bps == doctest::Approx(240'000).epsilon(0.05));
  CHECK(s->bytes_in == 180'000);
  auto j = to_json(*s);
  CHECK(j["keyframe_interval_warning"] == true);
  CHECK(j["warnings"].size() == 1);
}

TEST_CASE("keyframe interval is measured across the 32-bit timestamp wrap") {
  StreamRegistry reg(5'000);
  reg.publish_started("shop", 1, "a", 0);
  reg.on_packet(1, video(0xFFFFFC18u, true), 10, 0);  // 2^32 - 1000
  reg.on_packet(1, video(1000, true), 10, 2000);
  CHECK(reg.find("shop")->keyframe_interval_ms == 2000);
  CHECK_FALSE(reg.find("shop")->keyframe_interval_warning());
}

TEST_CASE("codec facts come from the track configs") {
  StreamRegistry reg(5'000);
  reg.publish_started("shop", 7, "a", 0);
  TrackConfig v;
  v.kind = TrackKind::kVideo;
  v.width = 1280;
  v.height = 720;
  v.profile_idc = 100;
  v.level_idc = 31;
  reg.on_track_config(7, v);
  TrackConfig a;
  a.kind = TrackKind::kAudio;
  a.codec = Codec::kAac;
  a.sample_rate = 48000;
  a.channels = 2;
  a.audio_object_type = 2;
  reg.on_track_config(7, a);
  auto j = to_json(*reg.find("shop"));
  CHECK(j["video"]["profile"] == "High");
  CHECK(j["video"]["codecs"] == "avc1.64001f");
  CHECK(j["video"]["width"] == 1280);
  CHECK(j["audio"]["codecs"] == "mp4a.40.2");
  CHECK(j["audio"]["sample_rate"] == 48000);
}
