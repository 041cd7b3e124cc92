#include "media/hls/segment_store.h"

#include <utility>

#include "media/remux/timestamps.h"

namespace hawker::media::hls {

SegmentStore::SegmentStore(SegmentStoreOptions options)
    : options_(options), generation_(options.first_generation - 1), next_msn_(options.first_msn) {}

SegmentStore::Segment* SegmentStore::open_segment() {
  if (segments_.empty() || segments_.back().complete) {
    return nullptr;
  }
  return &segments_.back();
}

void SegmentStore::begin_stream(Bytes init_segment) {
  ++version_;
  close_open_segment();
  ++generation_;
  bytes_held_ += init_segment.size();
  inits_[generation_] = std::make_shared<const Bytes>(std::move(init_segment));
  discontinuity_next_ = next_msn_ > options_.first_msn || !segments_.empty();
  ended_ = false;
  trim();
}

void SegmentStore::end_stream(bool final) {
  ++version_;
  close_open_segment();
  if (final) {
    ended_ = true;
    // Nothing more will come: every waiting request gets the final playlist now.
    auto waiters = std::exchange(waiters_, {});
    for (auto& [id, waiter] : waiters) {
      waiter.ready();
    }
  }
}

void SegmentStore::close_open_segment() {
  Segment* open = open_segment();
  if (open != nullptr) {
    (void)complete_segment(open->msn);
  }
}

Status SegmentStore::append_part(std::shared_ptr<const Part> part) {
  if (part == nullptr || part->bytes == nullptr || part->bytes->empty()) {
    return unexpected(ErrorCode::kInvalidArgument, "segment store: empty part");
  }
  if (generation_ < options_.first_generation) {
    return unexpected(ErrorCode::kInvalidArgument, "segment store: part before begin_stream");
  }
  Segment* open = open_segment();
  if (open != nullptr) {
    if (part->msn != open->msn || part->index != static_cast<int>(open->parts.size())) {
      return unexpected(ErrorCode::kInvalidArgument,
                        "segment store: part out of order in the open segment");
    }
  } else {
    if (part->msn != next_msn_ || part->index != 0) {
      return unexpected(ErrorCode::kInvalidArgument,
                        "segment store: a new segment must start at next_msn with part 0");
    }
    Segment segment;
    segment.msn = part->msn;
    segment.generation = generation_;
    segment.discontinuity = std::exchange(discontinuity_next_, false);
    segment.program_date_time_ms = part->program_date_time_ms;
    segments_.push_back(std::move(segment));
    open = &segments_.back();
  }
  open->duration += part->duration;
  open->part_list.push_back(PlaylistPart{part->duration, part->independent});
  bytes_held_ += part->bytes->size();
  position_.last_msn = part->msn;
  position_.last_part = part->index;
  open->parts.push_back(std::move(part));
  ++version_;
  wake_waiters();
  return ok_status();
}

Status SegmentStore::complete_segment(int64_t msn) {
  Segment* open = open_segment();
  if (open == nullptr || open->msn != msn) {
    return unexpected(ErrorCode::kInvalidArgument, "segment store: no open segment with that msn");
  }
  std::vector<std::span<const uint8_t>> pieces;
  pieces.reserve(open->parts.size());
  for (const auto& part : open->parts) {
    pieces.push_back(part->bytes->span());
  }
  // Straight from the parts into the sealed segment: one copy on the loop, not two.
  open->bytes = SealedBytes::concat(pieces);
  open->complete = true;
  bytes_held_ += open->bytes->size();
  next_msn_ = msn + 1;
  position_.last_complete_msn = msn;
  trim();
  ++version_;
  wake_waiters();
  return ok_status();
}

void SegmentStore::trim() {
  auto release = [this](Segment& segment) {
    for (const auto& part : segment.parts) {
      bytes_held_ -= part->bytes->size();
    }
    segment.parts.clear();
    segment.part_list.clear();
  };

  size_t complete = 0;
  int64_t complete_duration = 0;
  for (const Segment& segment : segments_) {
    if (segment.complete) {
      ++complete;
      complete_duration += segment.duration;
    }
  }
  const int64_t window = options_.window_ms * remux::kTicksPerMs;
  while (!segments_.empty() && segments_.front().complete &&
         (complete > options_.max_segments ||
          complete_duration - segments_.front().duration >= window)) {
    Segment& front = segments_.front();
    release(front);
    bytes_held_ -= front.bytes->size();
    if (front.discontinuity) {
      ++discontinuity_sequence_;
    }
    --complete;
    complete_duration -= front.duration;
    segments_.pop_front();
  }

  size_t seen_complete = 0;
  for (auto it = segments_.rbegin(); it != segments_.rend(); ++it) {
    if (!it->complete) {
      continue;
    }
    if (++seen_complete > options_.part_segments) {
      release(*it);
    }
  }

  const int oldest = segments_.empty() ? generation_ : segments_.front().generation;
  for (auto it = inits_.begin(); it != inits_.end();) {
    if (it->first < oldest && it->first != generation_) {
      bytes_held_ -= it->second->size();
      it = inits_.erase(it);
    } else {
      ++it;
    }
  }
}

std::shared_ptr<const Part> SegmentStore::find_part(int64_t msn, int index) const {
  if (segments_.empty() || msn < segments_.front().msn || msn > segments_.back().msn || index < 0) {
    return nullptr;
  }
  const Segment& segment = segments_[static_cast<size_t>(msn - segments_.front().msn)];
  if (static_cast<size_t>(index) >= segment.parts.size()) {
    return nullptr;
  }
  return segment.parts[static_cast<size_t>(index)];
}

SharedSealedBytes SegmentStore::find_segment(int64_t msn) const {
  if (segments_.empty() || msn < segments_.front().msn || msn > segments_.back().msn) {
    return nullptr;
  }
  const Segment& segment = segments_[static_cast<size_t>(msn - segments_.front().msn)];
  return segment.complete ? segment.bytes : nullptr;
}

SharedBytes SegmentStore::find_init(int generation) const {
  auto it = inits_.find(generation);
  return it == inits_.end() ? nullptr : it->second;
}

PlaylistPosition SegmentStore::position() const { return position_; }

MediaPlaylist SegmentStore::playlist(std::vector<RenditionReport> reports) const {
  MediaPlaylist playlist;
  playlist.target_duration_s = options_.target_duration_s;
  playlist.part_target = options_.part_target;
  playlist.discontinuity_sequence = discontinuity_sequence_;
  playlist.next_msn = next_msn_;
  playlist.ended = ended_;
  playlist.reports = std::move(reports);
  playlist.segments.reserve(segments_.size());
  for (const Segment& segment : segments_) {
    PlaylistSegment entry;
    entry.msn = segment.msn;
    entry.duration = segment.duration;
    entry.complete = segment.complete;
    entry.discontinuity = segment.discontinuity;
    entry.init_generation = segment.generation;
    entry.program_date_time_ms = segment.program_date_time_ms;
    entry.parts = segment.part_list;
    playlist.segments.push_back(std::move(entry));
  }
  return playlist;
}

SegmentStore::WaiterId SegmentStore::wait_for(int64_t msn, int part, std::function<void()> ready) {
  if (ended_ || is_available(position_, msn, part)) {
    ready();
    return 0;
  }
  const WaiterId id = next_waiter_++;
  waiters_.emplace(id, Waiter{msn, part, std::move(ready)});
  return id;
}

bool SegmentStore::cancel(WaiterId id) { return waiters_.erase(id) > 0; }

void SegmentStore::wake_waiters() {
  // Taken out before running, so a callback may add or cancel waiters safely.
  std::vector<std::function<void()>> ready;
  for (auto it = waiters_.begin(); it != waiters_.end();) {
    if (is_available(position_, it->second.msn, it->second.part)) {
      ready.push_back(std::move(it->second.ready));
      it = waiters_.erase(it);
    } else {
      ++it;
    }
  }
  for (auto& fn : ready) {
    fn();
  }
}

}  // namespace hawker::media::hls
