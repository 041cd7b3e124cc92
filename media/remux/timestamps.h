#pragma once

#include <array>
#include <cstdint>
#include <optional>

#include "media/packet.h"

namespace hawker::media::remux {

/// Every normalised timestamp is in this timebase: 90 kHz, the MPEG clock. It is exact for
/// RTMP's whole milliseconds (1 ms = 90 ticks) and for every common frame rate.
inline constexpr int64_t kTimebase = 90'000;
inline constexpr int64_t kTicksPerMs = kTimebase / 1000;

/// A packet on the stream's media timeline: one origin for every track, no wrap, per-track
/// strictly increasing dts.
struct NormalisedPacket {
  TrackKind kind = TrackKind::kVideo;
  int64_t dts = 0;  ///< 90 kHz, 0 = the first packet of either track
  int64_t pts = 0;  ///< 90 kHz, >= dts
  bool keyframe = false;
  /// The source clock jumped before this packet and the timeline was re-anchored so that media
  /// time stays continuous.
  bool discontinuity = false;
  SharedBytes data;
};

/// Turns raw 32-bit millisecond RTMP timestamps into one continuous 90 kHz media timeline.
///
/// - 32-bit wrap: each timestamp is read as a signed step from the previous one of its track (the
///   first one of a track from the previous one of any track), so 0xFFFFFF00 -> 0x00000010 is a
///   step of +272 ms, not -4 294 966 ms.
/// - One origin: the first packet of either track is 0; the other track keeps its offset to it.
/// - Forward gaps longer than `max_gap_ms` and backward jumps longer than `max_backwards_ms`
///   (encoder restarts, clock resets) re-anchor the timeline: the packet is placed one frame after
///   its track's previous one, both tracks move together, and the packet is flagged.
/// - Smaller backward steps are clamped so that each track's dts strictly increases (muxers need
///   it).
class TimestampNormaliser {
 public:
  struct Options {
    int64_t max_gap_ms = 3000;
    int64_t max_backwards_ms = 1000;
  };

  TimestampNormaliser() : TimestampNormaliser(Options{}) {}
  explicit TimestampNormaliser(Options options) : options_(options) {}

  NormalisedPacket normalise(const Packet& packet);

  /// How often the timeline was re-anchored.
  int64_t discontinuities() const { return discontinuities_; }

 private:
  struct TrackState {
    bool seen = false;
    uint32_t last_raw = 0;
    int64_t last_unwrapped_ms = 0;
    int64_t last_dts = 0;   ///< 90 kHz, after clamping
    int64_t last_step = 0;  ///< 90 kHz, the previous dts step, a frame-duration estimate
  };

  Options options_;
  std::array<TrackState, 2> tracks_{};
  bool any_seen_ = false;
  uint32_t any_last_raw_ = 0;
  int64_t any_last_unwrapped_ms_ = 0;
  /// Added to an unwrapped timestamp (ms) to give media time (ms); starts as -origin.
  int64_t offset_ms_ = 0;
  int64_t discontinuities_ = 0;
};

}  // namespace hawker::media::remux
