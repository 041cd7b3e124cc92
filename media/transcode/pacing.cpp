#include "media/transcode/pacing.h"

#include "media/remux/timestamps.h"

namespace hawker::media::transcode {

bool FrameRateCap::admit(int64_t pts, bool must_keep) {
  if (max_fps_ <= 0) {
    return true;
  }
  if (must_keep || !started_) {
    started_ = true;
    origin_ = pts;
    last_slot_ = 0;
    return true;
  }
  if (pts < origin_) {
    return false;
  }
  // slot = floor(elapsed * fps / 90 kHz + 1/4), in integers.
  const int64_t slot = ((pts - origin_) * max_fps_ * 4 + remux::kTimebase) / (remux::kTimebase * 4);
  if (slot <= last_slot_) {
    return false;
  }
  last_slot_ = slot;
  return true;
}

void RealtimeMeter::add(int64_t media_ticks, int64_t wall_ms) {
  samples_.push_back({media_ticks, wall_ms});
  media_sum_ += media_ticks;
  wall_sum_ += wall_ms;
  while (samples_.size() > 1 && media_sum_ - samples_.front().media_ticks >= window_ticks_) {
    media_sum_ -= samples_.front().media_ticks;
    wall_sum_ -= samples_.front().wall_ms;
    samples_.pop_front();
  }
}

void RealtimeMeter::reset() {
  samples_.clear();
  media_sum_ = 0;
  wall_sum_ = 0;
}

double RealtimeMeter::load() const {
  if (media_sum_ <= 0) {
    return 0.0;
  }
  return static_cast<double>(wall_sum_ * remux::kTicksPerMs) / static_cast<double>(media_sum_);
}

}  // namespace hawker::media::transcode
