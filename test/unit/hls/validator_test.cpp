#include <doctest/doctest.h>

#include <string>

#include "media/hls/playlist_validator.h"

namespace hawker::media::hls {
namespace {

const std::string kGood =
    "#EXTM3U\n"
    "#EXT-X-VERSION:9\n"
    "#EXT-X-TARGETDURATION:2\n"
    "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=12.0,PART-HOLD-BACK=1.500\n"
    "#EXT-X-PART-INF:PART-TARGET=0.500\n"
    "#EXT-X-MEDIA-SEQUENCE:5\n"
    "#EXT-X-DISCONTINUITY-SEQUENCE:0\n"
    "#EXT-X-MAP:URI=\"init0.mp4\"\n"
    "#EXT-X-PROGRAM-DATE-TIME:2026-11-22T10:00:00.000Z\n"
    "#EXTINF:2.00000,\n"
    "seg5.m4s\n"
    "#EXT-X-PROGRAM-DATE-TIME:2026-11-22T10:00:02.000Z\n"
    "#EXT-X-PART:DURATION=0.50000,URI=\"part6.0.m4s\",INDEPENDENT=YES\n"
    "#EXT-X-PART:DURATION=0.50000,URI=\"part6.1.m4s\"\n"
    "#EXT-X-PART:DURATION=0.50000,URI=\"part6.2.m4s\"\n"
    "#EXT-X-PART:DURATION=0.40000,URI=\"part6.3.m4s\"\n"
    "#EXTINF:1.90000,\n"
    "seg6.m4s\n"
    "#EXT-X-PROGRAM-DATE-TIME:2026-11-22T10:00:03.900Z\n"
    "#EXT-X-PART:DURATION=0.50000,URI=\"part7.0.m4s\",INDEPENDENT=YES\n"
    "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part7.1.m4s\"\n"
    "#EXT-X-RENDITION-REPORT:URI=\"../360p/playlist.m3u8\",LAST-MSN=7,LAST-PART=0\n";

std::string replace(std::string text, const std::string& from, const std::string& to) {
  const size_t at = text.find(from);
  REQUIRE_MESSAGE(at != std::string::npos, "no '" << from << "' in the playlist");
  return text.replace(at, from.size(), to);
}

// The playlist must be rejected, with an error that mentions `what`.
void check_rejected(const std::string& text, const std::string& what) {
  const ValidationResult result = validate_media_playlist(text);
  CHECK_FALSE(result.ok());
  bool found = false;
  for (const auto& error : result.errors) {
    found = found || error.find(what) != std::string::npos;
  }
  CHECK_MESSAGE(found, "expected an error about '" << what << "'");
}

TEST_CASE("a correct LL-HLS playlist is accepted") {
  const ValidationResult result = validate_media_playlist(kGood);
  for (const auto& error : result.errors) {
    FAIL_CHECK(error);
  }
  CHECK(result.segments == 2);
  CHECK(result.parts == 5);
}

TEST_CASE("broken playlists are rejected") {
  check_rejected(replace(kGood, "DURATION=0.40000", "DURATION=0.60000"), "PART-TARGET");
  check_rejected(replace(kGood, "#EXTINF:1.90000", "#EXTINF:2.10000"), "parts add up");
  check_rejected(replace(kGood, "#EXTINF:2.00000", "#EXTINF:2.60000"), "TARGETDURATION");
  check_rejected(replace(kGood, "PART-HOLD-BACK=1.500", "PART-HOLD-BACK=1.250"), "PART-HOLD-BACK");
  check_rejected(replace(kGood, "CAN-SKIP-UNTIL=12.0", "CAN-SKIP-UNTIL=6.0"), "CAN-SKIP-UNTIL");
  check_rejected(replace(kGood, "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part7.1.m4s\"\n", ""),
                 "PRELOAD-HINT");
  check_rejected(replace(kGood, "URI=\"part7.1.m4s\"", "URI=\"part7.2.m4s\""), "preload hint");
  check_rejected(replace(kGood, "seg6.m4s", "seg8.m4s"), "segment 8 where 6");
  check_rejected(replace(kGood, "part6.2.m4s", "part6.3.m4s"), "part 6.3 where 6.2");
  check_rejected(replace(kGood, "#EXT-X-MEDIA-SEQUENCE:5", "#EXT-X-MEDIA-SEQUENCE:4"),
                 "segment 5 where 4");
  check_rejected(replace(kGood, "10:00:03.900Z", "10:00:04.500Z"), "PROGRAM-DATE-TIME");
  check_rejected(replace(kGood, "#EXT-X-VERSION:9", "#EXT-X-VERSION:6"), "VERSION");
  check_rejected(replace(kGood, "CAN-BLOCK-RELOAD=YES", "CAN-BLOCK-RELOAD=NO"), "CAN-BLOCK-RELOAD");
  check_rejected(replace(kGood, "#EXT-X-MAP:URI=\"init0.mp4\"\n", ""), "EXT-X-MAP");
  check_rejected(replace(kGood, ",LAST-MSN=7,LAST-PART=0", ""), "RENDITION-REPORT");
  check_rejected(
      replace(kGood, "#EXT-X-DISCONTINUITY-SEQUENCE:0\n", "#EXT-X-SKIP:SKIPPED-SEGMENTS=1\n"),
      "segment 5 where 6");
  check_rejected("not a playlist", "EXTM3U");
  check_rejected("", "EXTM3U");
}

TEST_CASE("a discontinuity resets the date check and needs the discontinuity sequence") {
  const std::string moved = replace(kGood, "10:00:03.900Z", "10:00:30.000Z");
  const std::string with_break =
      replace(moved, "#EXT-X-PROGRAM-DATE-TIME:2026-11-22T10:00:30",
              "#EXT-X-DISCONTINUITY\n#EXT-X-PROGRAM-DATE-TIME:2026-11-22T10:00:30");
  CHECK(validate_media_playlist(with_break).ok());
  check_rejected(replace(with_break, "#EXT-X-DISCONTINUITY-SEQUENCE:0\n", ""),
                 "DISCONTINUITY-SEQUENCE");
}

TEST_CASE("INDEPENDENT parts are checked against the media when asked") {
  ValidationOptions options;
  options.part_starts_with_keyframe = [](int64_t msn, int part) { return msn == 6 && part == 0; };
  const ValidationResult result = validate_media_playlist(kGood, options);
  REQUIRE(result.errors.size() == 1);
  CHECK(result.errors.front().find("part 7.0") != std::string::npos);
}

TEST_CASE("garbage lines and attributes do not crash the validator") {
  const std::string junk[] = {
      "#EXTM3U\n#EXT-X-PART:DURATION=\n#EXT-X-PART-INF:PART-TARGET=x\n#EXTINF:,\nseg.m4s\n",
      "#EXTM3U\n#EXT-X-PART:URI=\"part1.m4s\",DURATION=0.1\n#EXT-X-SKIP:\n#EXT-X-MAP:URI=\"\n",
      "#EXTM3U\r\n#EXT-X-TARGETDURATION:99999999999999999999\r\npart9999999999999999999.1.m4s\r\n",
  };
  for (const auto& text : junk) {
    CHECK_FALSE(validate_media_playlist(text).ok());
  }
}

}  // namespace
}  // namespace hawker::media::hls
