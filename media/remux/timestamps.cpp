#include "media/remux/timestamps.h"

#include <algorithm>

namespace hawker::media::remux {

namespace {

// The signed step between two 32-bit timestamps, read modulo 2^32.
int64_t wrapped_step(uint32_t from, uint32_t to) {
  return static_cast<int64_t>(static_cast<int32_t>(to - from));
}

// A frame duration to place a packet after a jump, when the track has no history yet.
int64_t default_step(TrackKind kind) {
  return kind == TrackKind::kVideo ? kTimebase / 30 : 1024 * kTimebase / 44100;
}

}  // namespace

NormalisedPacket TimestampNormaliser::normalise(const Packet& packet) {
  TrackState& track = tracks_[packet.kind == TrackKind::kVideo ? 0 : 1];

  int64_t unwrapped = 0;
  if (track.seen) {
    unwrapped = track.last_unwrapped_ms + wrapped_step(track.last_raw, packet.timestamp_ms);
  } else if (any_seen_) {
    unwrapped = any_last_unwrapped_ms_ + wrapped_step(any_last_raw_, packet.timestamp_ms);
  } else {
    unwrapped = packet.timestamp_ms;
    offset_ms_ = -unwrapped;
  }

  NormalisedPacket out;
  out.kind = packet.kind;
  out.keyframe = packet.keyframe;
  out.data = packet.data;

  int64_t dts = (unwrapped + offset_ms_) * kTicksPerMs;
  if (track.seen) {
    const int64_t step = dts - track.last_dts;
    if (step > options_.max_gap_ms * kTicksPerMs ||
        step < -options_.max_backwards_ms * kTicksPerMs) {
      const int64_t frame = track.last_step > 0 ? track.last_step : default_step(packet.kind);
      // Re-anchor in whole milliseconds so that later packets, which are whole milliseconds
      // too, stay on the same grid as this one.
      const int64_t target_ms = (track.last_dts + frame + kTicksPerMs - 1) / kTicksPerMs;
      offset_ms_ = target_ms - unwrapped;
      dts = target_ms * kTicksPerMs;
      out.discontinuity = true;
      ++discontinuities_;
    }
    if (dts <= track.last_dts) {
      dts = track.last_dts + 1;
    }
    track.last_step = dts - track.last_dts;
  } else {
    dts = std::max<int64_t>(dts, 0);
  }

  out.dts = dts;
  out.pts = packet.kind == TrackKind::kVideo
                ? std::max(dts, dts + int64_t{packet.composition_ms} * kTicksPerMs)
                : dts;

  track.seen = true;
  track.last_raw = packet.timestamp_ms;
  track.last_unwrapped_ms = unwrapped;
  track.last_dts = dts;
  any_seen_ = true;
  any_last_raw_ = packet.timestamp_ms;
  any_last_unwrapped_ms_ = unwrapped;
  return out;
}

}  // namespace hawker::media::remux
