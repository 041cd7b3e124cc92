#include "media/hls/ladder_pipeline.h"

#include <utility>

#include "core/log.h"
#include "fmt/format.h"

namespace hawker::media::hls {
namespace {

constexpr const char* kLog = "transcode";

}  // namespace

std::string LadderPipeline::rendition_name(const transcode::RungPlan& plan) {
  return fmt::format("{}p", plan.height);
}

LadderPipeline::LadderPipeline(std::string channel, LadderPipelineOptions options,
                               const Clock& clock)
    : channel_(std::move(channel)), options_(std::move(options)), clock_(clock) {}

LadderPipeline::~LadderPipeline() = default;

void LadderPipeline::handle(const SourceTapEvent& event, LadderOutput& out) {
  switch (event.kind) {
    case SourceTapEvent::Kind::kOpened:
      open(event, out);
      break;
    case SourceTapEvent::Kind::kPacket:
      packet(event, out);
      break;
    case SourceTapEvent::Kind::kClosed:
      close(out);
      break;
  }
}

void LadderPipeline::open(const SourceTapEvent& event, LadderOutput& out) {
  close(out);
  out.rungs.emplace();
  const TrackConfig* video = nullptr;
  audio_.reset();
  for (const TrackConfig& track : event.tracks) {
    if (track.kind == TrackKind::kVideo) {
      video = &track;
    } else {
      audio_ = track;
    }
  }
  if (video == nullptr || video->codec != Codec::kH264) {
    log::info(kLog, "channel={} no H.264 video: the source is the only rendition", channel_);
    return;
  }
  if (transcode::plan_rungs(*video, options_.ladder).empty()) {
    log::info(kLog,
              "channel={} source is {}x{}: no rung below it, the source is the only rendition",
              channel_, video->width, video->height);
    return;
  }
  auto ladder = transcode::Ladder::open(*video, options_.ladder, clock_);
  if (!ladder) {
    log::warn(kLog, "channel={} no transcoded renditions: {}", channel_, ladder.error().message);
    return;
  }
  ladder_ = std::move(*ladder);
  origin_wall_ms_ = event.origin_wall_ms;
  for (size_t i = 0; i < ladder_->rung_count(); ++i) {
    Rung rung;
    rung.name = rendition_name(ladder_->plan(i));
    rung.tracks.push_back(ladder_->track(i));
    if (audio_) {
      rung.tracks.push_back(*audio_);
    }
    out.rungs->push_back(rung.name);
    rungs_.push_back(std::move(rung));
    start_generation(i, event.first_msn, out);
  }
  log::info(kLog, "channel={} transcoding {} rung(s) from {}x{}", channel_, rungs_.size(),
            video->width, video->height);
}

void LadderPipeline::start_generation(size_t index, int64_t msn, LadderOutput& out) {
  Rung& rung = rungs_[index];
  auto packager = Packager::open(rung.tracks, options_.packager, msn, origin_wall_ms_);
  if (!packager) {
    log::warn(kLog, "channel={} rendition={} cannot package: {}", channel_, rung.name,
              packager.error().message);
    ladder_->set_rung_enabled(index, false);
    rung.dropped = true;
    rung.dropped_at = last_video_pts_;
    return;
  }
  rung.packager = std::move(*packager);
  auto opened = std::make_shared<RenditionOpened>();
  opened->tracks = rung.tracks;
  opened->init_segment = rung.packager->init_segment();
  opened->first_msn = msn;
  opened->origin_wall_ms = origin_wall_ms_;
  out.events.push_back(RenditionEvent{rung.name, std::move(opened)});
}

void LadderPipeline::end_generation(size_t index, LadderOutput& out) {
  Rung& rung = rungs_[index];
  if (rung.packager == nullptr) {
    return;
  }
  scratch_.clear();
  Status finished = rung.packager->finish(scratch_);
  forward(index, scratch_, out);
  if (!finished) {
    log::warn(kLog, "channel={} rendition={} finishing: {}", channel_, rung.name,
              finished.error().message);
  }
  out.events.push_back(RenditionEvent{rung.name, RenditionClosed{rung.packager->stats()}});
  rung.packager.reset();
}

void LadderPipeline::drop(size_t index, int64_t pts, const char* why, LadderOutput& out) {
  Rung& rung = rungs_[index];
  if (rung.dropped) {
    return;
  }
  ladder_->set_rung_enabled(index, false);
  end_generation(index, out);
  rung.dropped = true;
  rung.restart = false;
  rung.dropped_at = pts;
  out.dropped.push_back(rung.name);
  log::warn(kLog, "channel={} rendition={} dropped: {}; retry in {} s", channel_, rung.name, why,
            options_.retry_after_ms / 1000);
}

void LadderPipeline::close(LadderOutput& out) {
  if (ladder_ != nullptr) {
    encoded_.clear();
    if (Status finished = ladder_->finish(encoded_); !finished) {
      log::warn(kLog, "channel={} draining the ladder: {}", channel_, finished.error().message);
    }
    for (const transcode::RungPacket& p : encoded_) {
      push(p.rung, p.packet, out);
    }
    for (size_t i = 0; i < rungs_.size(); ++i) {
      end_generation(i, out);
    }
  }
  ladder_.reset();
  rungs_.clear();
}

void LadderPipeline::packet(const SourceTapEvent& event, LadderOutput& out) {
  if (ladder_ == nullptr) {
    return;
  }
  const remux::NormalisedPacket& source = event.packet;
  if (source.kind == TrackKind::kAudio) {
    for (size_t i = 0; i < rungs_.size(); ++i) {
      push(i, source, out);
    }
    return;
  }
  last_video_pts_ = source.pts;
  if (event.segment_start) {
    const int64_t retry_ticks = options_.retry_after_ms * remux::kTicksPerMs;
    for (size_t i = 0; i < rungs_.size(); ++i) {
      Rung& rung = rungs_[i];
      if (rung.dropped && source.pts - rung.dropped_at >= retry_ticks) {
        log::info(kLog, "channel={} rendition={} retried from msn {}", channel_, rung.name,
                  event.msn);
        rung.dropped = false;
        rung.restart = true;
        ladder_->set_rung_enabled(i, true);
      }
      if (rung.restart) {
        rung.restart = false;
        start_generation(i, event.msn, out);
      }
    }
  }
  encoded_.clear();
  if (Status pushed = ladder_->push(source, event.segment_start, encoded_); !pushed) {
    log::warn(kLog, "channel={} transcoding stopped until the next publish: {}", channel_,
              pushed.error().message);
    close(out);
    return;
  }
  for (const transcode::RungPacket& p : encoded_) {
    push(p.rung, p.packet, out);
  }
  if (!ladder_->keeping_up()) {
    if (std::optional<size_t> shed = ladder_->rung_to_shed()) {
      drop(*shed, source.pts, "encoding cannot keep real time", out);
    }
  }
}

void LadderPipeline::input_lost(LadderOutput& out) {
  if (ladder_ == nullptr) {
    return;
  }
  std::optional<size_t> shed = ladder_->rung_to_shed();
  for (size_t i = 0; !shed && i < rungs_.size(); ++i) {
    if (!rungs_[i].dropped) {
      shed = i;  // rungs are highest first: the costliest one
    }
  }
  if (shed) {
    drop(*shed, last_video_pts_, "the ladder fell behind its bounded queue", out);
  }
  // The others lost frames: their generation ends and starts again at the next segment start.
  for (size_t i = 0; i < rungs_.size(); ++i) {
    if (!rungs_[i].dropped && rungs_[i].packager != nullptr) {
      end_generation(i, out);
      rungs_[i].restart = true;
    }
  }
}

void LadderPipeline::push(size_t index, const remux::NormalisedPacket& packet, LadderOutput& out) {
  if (index >= rungs_.size() || rungs_[index].packager == nullptr) {
    return;
  }
  scratch_.clear();
  Status pushed = rungs_[index].packager->push(packet, scratch_);
  forward(index, scratch_, out);
  if (!pushed) {
    log::warn(kLog, "channel={} rendition={} packaging: {}", channel_, rungs_[index].name,
              pushed.error().message);
    drop(index, last_video_pts_, "packaging failed", out);
  }
}

void LadderPipeline::forward(size_t index, std::vector<PackagerEvent>& events, LadderOutput& out) {
  for (PackagerEvent& event : events) {
    if (auto* part = std::get_if<std::shared_ptr<const Part>>(&event)) {
      out.events.push_back(RenditionEvent{rungs_[index].name, std::move(*part)});
    } else {
      out.events.push_back(RenditionEvent{rungs_[index].name, std::get<SegmentComplete>(event)});
    }
  }
  events.clear();
}

}  // namespace hawker::media::hls
