#include <doctest/doctest.h>

#include "media/flv/tag.h"
#include "test/unit/media/media_test_util.h"

using namespace hawker;
using namespace hawker::media;
using namespace hawker::media::test;

TEST_CASE("SPS: 1280x720 high profile") {
  SpsParams p;
  auto sps = flv::parse_sps(make_sps(p));
  REQUIRE(sps);
  CHECK(sps->width == 1280);
  CHECK(sps->height == 720);
  CHECK(sps->profile_idc == 100);
  CHECK(sps->level_idc == 31);
  CHECK(sps->chroma_format_idc == 1);
}

TEST_CASE("SPS: 1920x1080 coded as 1088 with cropping") {
  SpsParams p;
  p.width_mbs = 120;
  p.height_map_units = 68;
  p.crop_bottom = 4;  // 4:2:0 crops in units of two lines
  p.level_idc = 40;
  auto sps = flv::parse_sps(make_sps(p));
  REQUIRE(sps);
  CHECK(sps->width == 1920);
  CHECK(sps->height == 1080);
}

TEST_CASE("SPS: interlaced, 4:2:2, 4:4:4, baseline, scaling matrices, POC type 1") {
  SpsParams interlaced;
  interlaced.frame_mbs_only = false;
  interlaced.height_map_units = 23;  // 23 field macroblock rows = 736 lines
  interlaced.crop_bottom = 4;        // units of four lines for interlaced 4:2:0
  auto sps = flv::parse_sps(make_sps(interlaced));
  REQUIRE(sps);
  CHECK(sps->height == 720);

  SpsParams yuv422;
  yuv422.profile_idc = 122;
  yuv422.chroma_format_idc = 2;
  yuv422.height_map_units = 68;
  yuv422.width_mbs = 120;
  yuv422.crop_bottom = 8;  // 4:2:2 crops vertically line by line
  sps = flv::parse_sps(make_sps(yuv422));
  REQUIRE(sps);
  CHECK(sps->height == 1080);
  CHECK(sps->chroma_format_idc == 2);

  SpsParams yuv444;
  yuv444.profile_idc = 244;
  yuv444.chroma_format_idc = 3;
  yuv444.crop_right = 6;
  sps = flv::parse_sps(make_sps(yuv444));
  REQUIRE(sps);
  CHECK(sps->width == 1274);

  SpsParams baseline;
  baseline.profile_idc = 66;
  baseline.constraints = 0xc0;
  baseline.width_mbs = 40;
  baseline.height_map_units = 23;
  baseline.crop_bottom = 4;
  baseline.poc_type = 1;
  sps = flv::parse_sps(make_sps(baseline));
  REQUIRE(sps);
  CHECK(sps->width == 640);
  CHECK(sps->height == 360);
  CHECK(sps->constraint_flags == 0xc0);

  SpsParams scaled;
  scaled.scaling_matrix = true;
  sps = flv::parse_sps(make_sps(scaled));
  REQUIRE(sps);
  CHECK(sps->width == 1280);
}

TEST_CASE("SPS: emulation prevention bytes are removed before parsing") {
  // profile_idc, constraint flags and level all zero: three zero bytes in a row force an
  // emulation prevention byte into the NAL unit.
  SpsParams p;
  p.profile_idc = 0;
  p.level_idc = 0;
  p.width_mbs = 1;
  p.height_map_units = 1;
  auto nal = make_sps(p);
  bool has_epb = false;
  for (size_t i = 2; i < nal.size(); ++i) {
    if (nal[i - 2] == 0 && nal[i - 1] == 0 && nal[i] == 3) has_epb = true;
  }
  REQUIRE(has_epb);
  auto sps = flv::parse_sps(nal);
  REQUIRE(sps);
  CHECK(sps->width == 16);
  CHECK(sps->height == 16);
}

TEST_CASE("SPS: malformed input is an error") {
  auto nal = make_sps(SpsParams{});
  CHECK_FALSE(flv::parse_sps(std::vector<uint8_t>(nal.begin(), nal.begin() + 6)));
  CHECK_FALSE(flv::parse_sps(std::vector<uint8_t>{0x68, 1, 2, 3, 4}));  // a PPS
  CHECK_FALSE(flv::parse_sps(std::vector<uint8_t>{0x67, 100, 0, 31, 0, 0, 0, 0, 0, 0}));
  SpsParams huge;
  huge.crop_right = 700;  // crops away the whole width
  CHECK_FALSE(flv::parse_sps(make_sps(huge)));
}

TEST_CASE("AVC sequence header tag -> video TrackConfig, NALU tags -> packets") {
  auto record = make_avc_record(make_sps(SpsParams{}));
  flv::TagParser parser;

  // Frames before the sequence header cannot be decoded: dropped, not an error.
  auto early = parser.video(0, avc_nalu_tag(true, 0, {{0x65, 1, 2}}));
  REQUIRE(early);
  CHECK(std::holds_alternative<flv::Nothing>(*early));

  auto content = parser.video(0, avc_sequence_header_tag(record));
  REQUIRE(content);
  auto* config = std::get_if<TrackConfig>(&*content);
  REQUIRE(config);
  CHECK(config->kind == TrackKind::kVideo);
  CHECK(config->codec == Codec::kH264);
  CHECK(config->width == 1280);
  CHECK(config->height == 720);
  CHECK(config->extradata == record);
  CHECK(config->codec_string() == "avc1.64001f");

  content = parser.video(1000, avc_nalu_tag(true, 66, {{0x06, 5, 5}, {0x65, 1, 2, 3}}));
  REQUIRE(content);
  auto* packet = std::get_if<Packet>(&*content);
  REQUIRE(packet);
  CHECK(packet->keyframe);
  CHECK(packet->timestamp_ms == 1000);
  CHECK(packet->composition_ms == 66);
  CHECK(*packet->data == std::vector<uint8_t>{0, 0, 0, 3, 0x06, 5, 5, 0, 0, 0, 4, 0x65, 1, 2, 3});

  content = parser.video(1033, avc_nalu_tag(false, -33, {{0x41, 9}}));
  REQUIRE(content);
  packet = std::get_if<Packet>(&*content);
  REQUIRE(packet);
  CHECK_FALSE(packet->keyframe);
  CHECK(packet->composition_ms == -33);

  // End of sequence carries nothing.
  content = parser.video(2000, std::vector<uint8_t>{0x17, 2, 0, 0, 0});
  REQUIRE(content);
  CHECK(std::holds_alternative<flv::Nothing>(*content));

  // A NAL unit length running past the tag is an error.
  auto bad = avc_nalu_tag(true, 0, {{0x65, 1, 2}});
  bad[8] = 50;
  CHECK_FALSE(parser.video(0, bad));
}

TEST_CASE("two-byte NAL lengths are rewritten to four") {
  auto record = make_avc_record(make_sps(SpsParams{}));
  record[4] = 0xfd;  // lengthSizeMinusOne = 1
  flv::TagParser parser;
  REQUIRE(parser.video(0, avc_sequence_header_tag(record)));
  auto content = parser.video(0, std::vector<uint8_t>{0x17, 1, 0, 0, 0, 0, 2, 0x65, 7});
  REQUIRE(content);
  auto* packet = std::get_if<Packet>(&*content);
  REQUIRE(packet);
  CHECK(*packet->data == std::vector<uint8_t>{0, 0, 0, 2, 0x65, 7});
}

TEST_CASE("AAC sequence header and raw frames") {
  flv::TagParser parser;
  auto content = parser.audio(0, aac_sequence_header_tag());
  REQUIRE(content);
  auto* config = std::get_if<TrackConfig>(&*content);
  REQUIRE(config);
  CHECK(config->kind == TrackKind::kAudio);
  CHECK(config->codec == Codec::kAac);
  CHECK(config->audio_object_type == 2);
  CHECK(config->sample_rate == 44100);
  CHECK(config->channels == 2);
  CHECK(config->extradata == std::vector<uint8_t>{0x12, 0x10});
  CHECK(config->codec_string() == "mp4a.40.2");

  content = parser.audio(23, aac_raw_tag({0x21, 0x10, 0x04}));
  REQUIRE(content);
  auto* packet = std::get_if<Packet>(&*content);
  REQUIRE(packet);
  CHECK(packet->kind == TrackKind::kAudio);
  CHECK(packet->keyframe);
  CHECK(packet->timestamp_ms == 23);
  CHECK(*packet->data == std::vector<uint8_t>{0x21, 0x10, 0x04});
}

TEST_CASE("AudioSpecificConfig: escape object type, explicit rate, bad fields") {
  // HE-AAC (5), 48 kHz (index 3), mono.
  auto he = flv::parse_audio_specific_config(std::vector<uint8_t>{0x29, 0x88});
  REQUIRE(he);
  CHECK(he->audio_object_type == 5);
  CHECK(he->sample_rate == 48000);
  CHECK(he->channels == 1);

  // Object type 31 + 6 bits (escape to 32+1 = 33), explicit rate 37800, stereo.
  test::BitWriter w;
  w.bits(31, 5);
  w.bits(1, 6);
  w.bits(15, 4);
  w.bits(37800, 24);
  w.bits(2, 4);
  auto bytes = w.finish_nal(0);
  auto explicit_rate = flv::parse_audio_specific_config(std::span(bytes).subspan(1));
  REQUIRE(explicit_rate);
  CHECK(explicit_rate->audio_object_type == 33);
  CHECK(explicit_rate->sample_rate == 37800);
  CHECK(explicit_rate->channels == 2);

  CHECK_FALSE(flv::parse_audio_specific_config(std::vector<uint8_t>{0x12}));
  CHECK_FALSE(flv::parse_audio_specific_config(std::vector<uint8_t>{0x16, 0x90}));  // index 13
  auto pce = flv::parse_audio_specific_config(std::vector<uint8_t>{0x12, 0x00});
  REQUIRE_FALSE(pce);
  CHECK(pce.error().code == ErrorCode::kUnsupported);
}

TEST_CASE("other codecs and Enhanced RTMP are refused by name") {
  flv::TagParser parser;
  auto refused = [](const Result<flv::TagContent>& r, std::string_view name) {
    return !r && r.error().code == ErrorCode::kUnsupported &&
           r.error().message.find(name) != std::string::npos;
  };
  CHECK(refused(parser.video(0, std::vector<uint8_t>{0x1c, 0, 0, 0, 0}), "HEVC"));
  CHECK(refused(parser.video(0, std::vector<uint8_t>{0x12, 0}), "H.263"));
  CHECK(refused(parser.video(0, std::vector<uint8_t>{0x14, 0}), "VP6"));
  CHECK(refused(parser.video(0, std::vector<uint8_t>{0x90, 'h', 'v', 'c', '1'}), "hvc1"));
  CHECK(refused(parser.video(0, std::vector<uint8_t>{0x90, 'a', 'v', '0', '1'}), "av01"));
  CHECK(refused(parser.audio(0, std::vector<uint8_t>{0x2f, 0xff}), "MP3"));
  CHECK(refused(parser.audio(0, std::vector<uint8_t>{0xb6, 0}), "Speex"));
  CHECK(refused(parser.audio(0, std::vector<uint8_t>{0x9f, 'O', 'p', 'u', 's'}), "Opus"));
}

TEST_CASE("malformed tags are errors") {
  flv::TagParser parser;
  auto malformed = [](const Result<flv::TagContent>& r) {
    return !r && r.error().code == ErrorCode::kProtocol;
  };
  CHECK(malformed(parser.video(0, std::vector<uint8_t>{})));
  CHECK(malformed(parser.video(0, std::vector<uint8_t>{0x17, 0})));
  CHECK(malformed(parser.video(0, std::vector<uint8_t>{0x17, 0, 0, 0, 0, 1, 100})));
  CHECK(malformed(parser.video(0, std::vector<uint8_t>{0x17, 7, 0, 0, 0})));
  CHECK(malformed(parser.video(0, std::vector<uint8_t>{0x07, 1, 0, 0, 0})));
  CHECK(malformed(parser.audio(0, std::vector<uint8_t>{})));
  CHECK(malformed(parser.audio(0, std::vector<uint8_t>{0xaf})));
  CHECK(malformed(parser.audio(0, std::vector<uint8_t>{0xaf, 5, 1})));
  // A sequence header without PPS.
  auto record = make_avc_record(make_sps(SpsParams{}));
  record.resize(record.size() - 9);
  record.push_back(0);
  CHECK(malformed(parser.video(0, avc_sequence_header_tag(record))));
}
