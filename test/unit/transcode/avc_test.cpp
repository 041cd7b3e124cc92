#include "media/transcode/avc.h"

#include <doctest/doctest.h>

#include "test/unit/transcode/transcode_fixture.h"

namespace hawker::media::transcode {
namespace {

// The SPS and PPS inside an AVCDecoderConfigurationRecord (one of each).
std::pair<Bytes, Bytes> parameter_sets(const Bytes& record) {
  REQUIRE(record.size() > 8);
  const size_t sps_size = (size_t{record[6]} << 8) | record[7];
  REQUIRE(record.size() >= 8 + sps_size + 3);
  Bytes sps(record.begin() + 8, record.begin() + 8 + static_cast<long>(sps_size));
  const size_t at = 8 + sps_size + 1;
  const size_t pps_size = (size_t{record[at]} << 8) | record[at + 1];
  REQUIRE(record.size() >= at + 2 + pps_size);
  Bytes pps(record.begin() + static_cast<long>(at + 2),
            record.begin() + static_cast<long>(at + 2 + pps_size));
  return {sps, pps};
}

TEST_CASE("annexb_to_avcc rewrites 3- and 4-byte start codes as 4-byte lengths") {
  const Bytes annexb = {0, 0, 0, 1, 0x65, 0xAA, 0xBB, 0, 0, 1, 0x41, 0xCC, 0, 0, 0, 1, 0x06, 0x05};
  auto avcc = annexb_to_avcc(annexb);
  REQUIRE(avcc);
  const Bytes expected = {0, 0,    0,    3, 0x65, 0xAA, 0xBB, 0,    0,   0,
                          2, 0x41, 0xCC, 0, 0,    0,    2,    0x06, 0x05};
  CHECK(*avcc == expected);
}

TEST_CASE("annexb_to_avcc rejects data without a start code") {
  CHECK_FALSE(annexb_to_avcc(Bytes{0, 0, 0, 5, 0x65, 1, 2, 3, 4}));
  CHECK_FALSE(annexb_to_avcc(Bytes{}));
  CHECK_FALSE(annexb_to_avcc(Bytes{0, 0}));
}

TEST_CASE("a real encoder's SPS parses and its parameter sets rebuild the same record") {
  const test::Clip& clip = test::clip({});
  REQUIRE_MESSAGE(clip.error.empty(), clip.error);
  const Bytes& record = clip.video.extradata;
  auto [sps, pps] = parameter_sets(record);
  auto head = flv::parse_sps(sps);
  REQUIRE(head);
  CHECK(head->profile_idc == record[1]);
  CHECK(head->constraint_flags == record[2]);
  CHECK(head->level_idc == record[3]);
  CHECK(head->chroma_format_idc == 1);
  CHECK(head->bit_depth_luma == 8);

  Bytes annexb = {0, 0, 0, 1};
  annexb.insert(annexb.end(), sps.begin(), sps.end());
  annexb.insert(annexb.end(), {0, 0, 0, 1});
  annexb.insert(annexb.end(), pps.begin(), pps.end());
  auto rebuilt = avc_decoder_configuration(annexb);
  REQUIRE(rebuilt);
  // The same prefix (header, SPS, PPS) as libx264's own record through libavformat.
  REQUIRE(rebuilt->size() >= 11 + sps.size() + pps.size());
  CHECK(
      Bytes(rebuilt->begin(), rebuilt->begin() + static_cast<long>(11 + sps.size() + pps.size())) ==
      Bytes(record.begin(), record.begin() + static_cast<long>(11 + sps.size() + pps.size())));
  if (head->profile_idc == 100) {
    // High profile: the 4:2:0 8-bit extension follows.
    CHECK(rebuilt->size() == 11 + sps.size() + pps.size() + 4);
    CHECK((*rebuilt)[11 + sps.size() + pps.size()] == 0xFD);
  }

  // AVCC-framed parameter sets give the same record; a record passes through.
  auto from_avcc = avc_decoder_configuration(*annexb_to_avcc(annexb));
  REQUIRE(from_avcc);
  CHECK(*from_avcc == *rebuilt);
  CHECK(*avc_decoder_configuration(*rebuilt) == *rebuilt);
}

TEST_CASE("bad parameter sets are errors, not crashes") {
  CHECK_FALSE(avc_decoder_configuration(Bytes{}));
  CHECK_FALSE(avc_decoder_configuration(Bytes{0, 0, 1, 0x68, 0xEE}));      // PPS only
  CHECK_FALSE(avc_decoder_configuration(Bytes{0, 0, 1, 0x67, 0x64}));      // truncated SPS
  CHECK_FALSE(avc_decoder_configuration(Bytes{1, 0x64, 0}));               // short record
  CHECK_FALSE(flv::parse_sps(Bytes{0x68, 1, 2, 3}));                       // not an SPS
  CHECK_FALSE(flv::parse_sps(Bytes{0x67, 100, 0, 31, 0x00, 0x00, 0x00}));  // ue() overruns
  for (int seed = 0; seed < 200; ++seed) {
    Bytes noise = {0, 0, 1, 0x67};
    for (int i = 0; i < seed % 23; ++i) {
      noise.push_back(static_cast<uint8_t>((seed * 131 + i * 71) & 0xFF));
    }
    noise.insert(noise.end(), {0, 0, 1, 0x68, 0xCE});
    (void)avc_decoder_configuration(noise);
  }
}

}  // namespace
}  // namespace hawker::media::transcode
