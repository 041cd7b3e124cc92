#include "media/hls/packager.h"

#include "core/log.h"

namespace hawker::media::hls {

Status PackagerOptions::validate() const {
  if (part_target_ms < 100 || part_target_ms > 2000) {
    return unexpected(ErrorCode::kInvalidArgument, "part target must be 100..2000 ms");
  }
  if (segment_target_ms < part_target_ms) {
    return unexpected(ErrorCode::kInvalidArgument, "segment target must be >= part target");
  }
  if (max_segment_ms < segment_target_ms) {
    return unexpected(ErrorCode::kInvalidArgument, "max segment must be >= segment target");
  }
  return ok_status();
}

Result<std::unique_ptr<Packager>> Packager::open(std::span<const TrackConfig> tracks,
                                                 PackagerOptions options, int64_t first_msn,
                                                 int64_t origin_wall_ms) {
  HAWKER_TRY_STATUS(options.validate(), "packager");
  auto muxer = remux::Fmp4Muxer::open(tracks);
  if (!muxer) {
    return unexpected(std::move(muxer).error().with_context("packager"));
  }
  bool has_video = false;
  for (const TrackConfig& track : tracks) {
    has_video = has_video || track.kind == TrackKind::kVideo;
  }
  return std::unique_ptr<Packager>(
      new Packager(options, first_msn, origin_wall_ms, has_video, std::move(*muxer)));
}

Packager::Packager(PackagerOptions options, int64_t first_msn, int64_t origin_wall_ms,
                   bool has_video, std::unique_ptr<remux::Fmp4Muxer> muxer)
    : options_(options),
      msn_(first_msn),
      origin_wall_ms_(origin_wall_ms),
      has_video_(has_video),
      muxer_(std::move(muxer)) {}

Status Packager::push(const remux::NormalisedPacket& packet, std::vector<PackagerEvent>& out) {
  if (finished_) {
    return unexpected(ErrorCode::kInvalidArgument, "packager: push after finish");
  }
  const bool timing = has_video_ ? packet.kind == TrackKind::kVideo : true;
  if (!started_) {
    // A part must start with something a decoder can begin from: the first keyframe. Audio that
    // came before it would have no picture to go with.
    if (!timing || (has_video_ && !packet.keyframe)) {
      ++stats_.dropped_before_keyframe;
      return ok_status();
    }
    started_ = true;
    part_start_ = packet.dts;
    segment_start_ = packet.dts;
    last_timing_dts_ = packet.dts;
    HAWKER_TRY_STATUS(muxer_->write(packet), "packager");
    return ok_status();
  }
  if (!timing) {
    HAWKER_TRY_STATUS(muxer_->write(packet), "packager");
    return ok_status();
  }

  const int64_t part_target = options_.part_target_ticks();
  const int64_t part_length = packet.dts - part_start_;
  const int64_t segment_length = packet.dts - segment_start_;
  // The next frame probably lasts as long as the last one did.
  const int64_t next_step = last_step_ > 0 ? last_step_ : packet.dts - last_timing_dts_;
  const bool at_keyframe = !has_video_ || packet.keyframe;
  const bool segment_due = segment_length >= options_.segment_target_ms * remux::kTicksPerMs;
  const bool forced = !(at_keyframe && segment_due) &&
                      segment_length + next_step > options_.max_segment_ms * remux::kTicksPerMs;
  const bool new_segment = (at_keyframe && segment_due) || forced;
  const bool new_part = new_segment || part_length + next_step > part_target;

  last_step_ = packet.dts - last_timing_dts_;
  last_timing_dts_ = packet.dts;
  HAWKER_TRY_STATUS(muxer_->write(packet), "packager");
  if (!new_part) {
    return ok_status();
  }
  auto fragment = muxer_->cut();
  if (!fragment) {
    return unexpected(std::move(fragment).error().with_context("packager"));
  }
  emit_part(std::move(*fragment), out);
  part_start_ = packet.dts;
  if (new_segment) {
    if (forced) {
      ++stats_.forced_cuts;
      if (!warned_long_gop_) {
        warned_long_gop_ = true;
        log::warn("hls",
                  "msn={} no keyframe within {} ms: cutting the segment without one; set the "
                  "encoder's keyframe interval to 1 or 2 s",
                  msn_, options_.max_segment_ms);
      }
    }
    complete_segment(forced, out);
    segment_start_ = packet.dts;
  }
  return ok_status();
}

void Packager::emit_part(remux::Fragment fragment, std::vector<PackagerEvent>& out) {
  if (fragment.bytes.empty()) {
    return;
  }
  // Sealed here, on the worker, so the loop only ever shares it.
  SharedSealedBytes bytes = SealedBytes::copy_of(fragment.bytes);
  auto part = std::make_shared<Part>();
  part->msn = msn_;
  part->index = part_index_++;
  part->start = fragment.start_dts;
  part->duration = fragment.duration;
  part->independent = fragment.independent;
  part->program_date_time_ms = origin_wall_ms_ + fragment.start_dts / remux::kTicksPerMs;
  part->bytes = std::move(bytes);
  if (part->duration > options_.part_target_ticks()) {
    ++stats_.overlong_parts;
  }
  if (part->index == 0) {
    segment_independent_ = part->independent;
    segment_duration_ = 0;
  }
  segment_duration_ += part->duration;
  ++stats_.parts;
  out.emplace_back(std::shared_ptr<const Part>(std::move(part)));
}

void Packager::complete_segment(bool forced, std::vector<PackagerEvent>& out) {
  if (part_index_ == 0) {
    return;
  }
  SegmentComplete done;
  done.msn = msn_;
  done.part_count = part_index_;
  done.duration = segment_duration_;
  done.independent = segment_independent_;
  done.forced_cut = forced;
  out.emplace_back(done);
  ++stats_.segments;
  ++msn_;
  part_index_ = 0;
  segment_duration_ = 0;
}

Status Packager::finish(std::vector<PackagerEvent>& out) {
  if (finished_) {
    return ok_status();
  }
  finished_ = true;
  if (started_) {
    auto fragment = muxer_->drain();
    if (!fragment) {
      return unexpected(std::move(fragment).error().with_context("packager: finish"));
    }
    emit_part(std::move(*fragment), out);
    complete_segment(false, out);
  }
  HAWKER_TRY_STATUS(muxer_->finish(), "packager");
  return ok_status();
}

}  // namespace hawker::media::hls
