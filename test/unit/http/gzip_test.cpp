#include "http/gzip.h"

#include <doctest/doctest.h>

using namespace hawker::http;

TEST_CASE("gzip round-trips and shrinks repetitive text") {
  std::string text;
  for (int i = 0; i < 200; ++i) text += "#EXT-X-PART:DURATION=0.33334,URI=\"part.m4s\"\n";
  auto gz = gzip_compress(text);
  REQUIRE(gz.has_value());
  CHECK(gz->size() < text.size() / 5);
  CHECK(static_cast<unsigned char>((*gz)[0]) == 0x1f);
  CHECK(static_cast<unsigned char>((*gz)[1]) == 0x8b);
  CHECK(gzip_decompress(*gz, 1 << 20) == text);
  CHECK_FALSE(gzip_decompress(*gz, 100).has_value());
  CHECK_FALSE(gzip_decompress(gz->substr(0, gz->size() / 2), 1 << 20).has_value());
  CHECK_FALSE(gzip_decompress("not gzip at all", 1 << 20).has_value());
  CHECK(gzip_decompress(*gzip_compress(""), 10) == "");
}

TEST_CASE("Accept-Encoding negotiation honours q values") {
  CHECK(accepts_gzip("gzip"));
  CHECK(accepts_gzip("gzip, deflate, br"));
  CHECK(accepts_gzip("br;q=1.0, GZIP;q=0.5"));
  CHECK(accepts_gzip("*"));
  CHECK(accepts_gzip("x-gzip"));
  CHECK_FALSE(accepts_gzip("gzip;q=0"));
  CHECK_FALSE(accepts_gzip("*, gzip;q=0"));
  CHECK_FALSE(accepts_gzip("identity"));
  CHECK_FALSE(accepts_gzip(""));
  CHECK_FALSE(accepts_gzip("*;q=0"));
}
