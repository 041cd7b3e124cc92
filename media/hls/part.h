#pragma once

#include <cstdint>

#include "core/sealed_bytes.h"
#include "media/packet.h"

namespace hawker::media::hls {

/// One LL-HLS partial segment: a moof+mdat that a player can fetch and append on its own.
/// Immutable once made; shared between the media worker, the store and HTTP writers.
struct Part {
  /// The moof+mdat, sealed in memory that the HTTP server can sendfile from.
  SharedSealedBytes bytes;
  int64_t msn = 0;                   ///< media sequence number of the parent segment
  int index = 0;                     ///< position inside the parent segment, from 0
  int64_t start = 0;                 ///< 90 kHz media time of its first sample
  int64_t duration = 0;              ///< 90 kHz
  bool independent = false;          ///< starts with a video keyframe (INDEPENDENT=YES)
  int64_t program_date_time_ms = 0;  ///< wall clock of `start` (EXT-X-PROGRAM-DATE-TIME)
};

/// The parent segment `msn` has all its parts.
struct SegmentComplete {
  int64_t msn = 0;
  int part_count = 0;
  int64_t duration = 0;      ///< 90 kHz, the sum of its parts
  bool independent = false;  ///< its first part starts with a keyframe
  /// It was ended at the maximum segment duration rather than at a keyframe, because the
  /// encoder's keyframe interval is longer than that: the next segment starts without one.
  bool forced_cut = false;
};

}  // namespace hawker::media::hls
