#pragma once

#include <cstdint>
#include <deque>

namespace hawker::media::transcode {

/// Caps a rung's frame rate by dropping frames, on a grid of 1/max_fps slots anchored at the last
/// frame that had to be kept (a keyframe), so the kept frames are evenly spaced after every cut.
/// A frame is kept when it falls in a later slot than the previous kept frame; a quarter-slot
/// tolerance absorbs the whole-millisecond jitter of RTMP timestamps.
class FrameRateCap {
 public:
  /// `max_fps` <= 0 keeps every frame.
  explicit FrameRateCap(int max_fps) : max_fps_(max_fps) {}

  /// Whether to encode the frame at `pts` (90 kHz). `must_keep` frames (IDRs) are always kept.
  bool admit(int64_t pts, bool must_keep);

 private:
  int max_fps_;
  bool started_ = false;
  int64_t origin_ = 0;
  int64_t last_slot_ = 0;
};

/// Wall time spent against media time covered, over a sliding window of media time: a load of 1.0
/// means the work takes exactly real time.
class RealtimeMeter {
 public:
  explicit RealtimeMeter(int64_t window_ticks) : window_ticks_(window_ticks) {}

  /// One frame's worth: the media time it covers (90 kHz) and the wall time spent on it (ms).
  void add(int64_t media_ticks, int64_t wall_ms);
  void reset();

  /// Wall seconds per media second over the window; 0 before any media time.
  double load() const;
  /// Media time the window currently covers (90 kHz).
  int64_t media_ticks() const { return media_sum_; }

 private:
  struct Sample {
    int64_t media_ticks;
    int64_t wall_ms;
  };
  int64_t window_ticks_;
  std::deque<Sample> samples_;
  int64_t media_sum_ = 0;
  int64_t wall_sum_ = 0;
};

}  // namespace hawker::media::transcode
