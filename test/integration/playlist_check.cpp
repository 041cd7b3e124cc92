// Reads an LL-HLS media playlist on stdin and prints every rule it breaks, one per line, using
// hawker's own validator, so the integration tests check live responses against the same rules
// as the unit tests. Exit status: 0 valid, 1 invalid, 2 no input.
#include <cstdio>
#include <iostream>
#include <iterator>
#include <string>

#include "media/hls/playlist_validator.h"

int main() {
  std::string text((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
  if (text.empty()) {
    std::fputs("empty input\n", stdout);
    return 2;
  }
  auto result = hawker::media::hls::validate_media_playlist(text);
  for (const auto& error : result.errors) {
    std::printf("%s\n", error.c_str());
  }
  std::printf("segments=%d parts=%d skipped=%d\n", result.segments, result.parts, result.skipped);
  return result.ok() ? 0 : 1;
}
