#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace hawker::media::hls {

struct ValidationOptions {
  /// When set, asked for every part marked INDEPENDENT=YES: does its media start on a keyframe?
  std::function<bool(int64_t msn, int part)> part_starts_with_keyframe;
};

struct ValidationResult {
  std::vector<std::string> errors;  ///< one line per broken rule; empty when valid
  int segments = 0;                 ///< complete segments listed
  int parts = 0;
  int skipped = 0;
  bool ok() const { return errors.empty(); }
};

/// Parses an LL-HLS media playlist and checks the rules of RFC 8216bis and Apple's LL-HLS
/// authoring spec that players rely on: part durations within PART-TARGET, parts adding up to
/// EXTINF, rounded EXTINF within TARGETDURATION, PART-HOLD-BACK >= 3 x PART-TARGET,
/// CAN-SKIP-UNTIL >= 6 x TARGETDURATION, a preload hint for the next part, contiguous media
/// sequence and part numbers, EXT-X-MAP before media, and program-date-time that advances with
/// media time.
ValidationResult validate_media_playlist(std::string_view text,
                                         const ValidationOptions& options = {});

}  // namespace hawker::media::hls
