#include "media/hls/stream_pipeline.h"

#include <algorithm>
#include <utility>

#include "core/log.h"
#include "media/hls/playlist.h"

namespace hawker::media::hls {
namespace {

constexpr const char* kLog = "hls";

bool same_config(const TrackConfig& a, const TrackConfig& b) {
  return a.kind == b.kind && a.codec == b.codec && a.extradata == b.extradata;
}

/// Milliseconds from `a` to `b` on RTMP's wrapping 32-bit clock.
int64_t span_ms(uint32_t a, uint32_t b) { return static_cast<int32_t>(b - a); }

}  // namespace

StreamPipeline::StreamPipeline(std::string channel, StreamPipelineOptions options,
                               int64_t first_msn)
    : channel_(std::move(channel)), options_(std::move(options)), next_msn_(first_msn) {}

StreamPipeline::~StreamPipeline() = default;

bool StreamPipeline::has_config(TrackKind kind) const {
  return kind == TrackKind::kVideo ? video_.has_value() : audio_.has_value();
}

void StreamPipeline::begin_publish(std::vector<RenditionEvent>& out) {
  // A takeover starts a publish without the previous publisher having left.
  close_generation(out);
  video_.reset();
  audio_.reset();
  buffer_.clear();
  buffered_bytes_ = 0;
  normaliser_.reset();
  failed_ = false;
}

void StreamPipeline::track_config(const TrackConfig& config, std::vector<RenditionEvent>& out) {
  std::optional<TrackConfig>& slot = config.kind == TrackKind::kVideo ? video_ : audio_;
  if (slot && same_config(*slot, config)) {
    return;  // encoders repeat their sequence headers
  }
  slot = config;
  if (packager_ == nullptr) {
    return;
  }
  bool in_use = false;
  for (const TrackConfig& track : open_tracks_) {
    in_use = in_use || track.kind == config.kind;
  }
  log::info(kLog, "channel={} {} configuration {} while packaging: new init segment", channel_,
            config.kind == TrackKind::kVideo ? "video" : "audio", in_use ? "changed" : "arrived");
  close_generation(out);
  failed_ = false;
}

void StreamPipeline::packet(const Packet& packet, int64_t arrival_wall_ms,
                            std::vector<RenditionEvent>& out) {
  ++stats_.packets_in;
  if (failed_ || packet.data == nullptr) {
    return;
  }
  if (packager_ != nullptr) {
    push(packet, out);
    return;
  }
  buffer_.push_back(Buffered{packet, arrival_wall_ms});
  buffered_bytes_ += packet.data->size();
  while (buffer_.size() > options_.max_buffered_packets ||
         buffered_bytes_ > options_.max_buffered_bytes) {
    buffered_bytes_ -= buffer_.front().packet.data->size();
    buffer_.pop_front();
    ++stats_.dropped_buffer_full;
  }
  try_open(out);
}

void StreamPipeline::try_open(std::vector<RenditionEvent>& out) {
  if (buffer_.empty() || (!video_ && !audio_)) {
    return;
  }
  const bool both = video_ && audio_;
  const bool waited = span_ms(buffer_.front().packet.timestamp_ms,
                              buffer_.back().packet.timestamp_ms) >= options_.single_track_wait_ms;
  if (both || waited) {
    open(out);
  }
}

void StreamPipeline::open(std::vector<RenditionEvent>& out) {
  open_tracks_.clear();
  if (video_) {
    open_tracks_.push_back(*video_);
  }
  if (audio_) {
    open_tracks_.push_back(*audio_);
  }
  // Media time 0 is the first packet the normaliser sees; within a publish the timeline (and so
  // program-date-time) continues across generations.
  int64_t origin_wall_ms = buffer_.front().arrival_wall_ms;
  if (normaliser_ == nullptr) {
    normaliser_ = std::make_unique<remux::TimestampNormaliser>();
    origin_wall_ms_ = origin_wall_ms;
  }
  auto packager = Packager::open(open_tracks_, options_.packager, next_msn_, origin_wall_ms_);
  if (!packager) {
    fail(packager.error(), out);
    return;
  }
  packager_ = std::move(*packager);
  auto opened = std::make_shared<RenditionOpened>();
  opened->tracks = open_tracks_;
  opened->init_segment = packager_->init_segment();
  opened->first_msn = next_msn_;
  opened->origin_wall_ms = origin_wall_ms_;
  if (tap_) {
    SourceTapEvent tapped;
    tapped.kind = SourceTapEvent::Kind::kOpened;
    tapped.tracks = opened->tracks;
    tapped.first_msn = opened->first_msn;
    tapped.origin_wall_ms = opened->origin_wall_ms;
    tap_(std::move(tapped));
  }
  out.push_back(RenditionEvent{std::string(kSourceRendition), std::move(opened)});
  log::info(kLog, "channel={} packaging from msn {} ({} track(s), part {} ms, segment {} ms)",
            channel_, next_msn_, open_tracks_.size(), options_.packager.part_target_ms,
            options_.packager.segment_target_ms);

  std::deque<Buffered> buffered = std::exchange(buffer_, {});
  buffered_bytes_ = 0;
  for (const Buffered& b : buffered) {
    if (packager_ == nullptr) {
      break;
    }
    push(b.packet, out);
  }
}

void StreamPipeline::push(const Packet& packet, std::vector<RenditionEvent>& out) {
  bool configured = false;
  for (const TrackConfig& track : open_tracks_) {
    configured = configured || track.kind == packet.kind;
  }
  if (!configured) {
    ++stats_.dropped_no_config;
    return;
  }
  scratch_.clear();
  remux::NormalisedPacket normalised = normaliser_->normalise(packet);
  Status pushed = packager_->push(normalised, scratch_);
  bool segment_start = false;
  for (const PackagerEvent& event : scratch_) {
    segment_start = segment_start || std::holds_alternative<SegmentComplete>(event);
  }
  forward(scratch_, out);
  if (tap_ && pushed) {
    SourceTapEvent tapped;
    tapped.packet = std::move(normalised);
    tapped.segment_start = segment_start;
    tapped.msn = next_msn_;
    tap_(std::move(tapped));
  }
  if (!pushed) {
    fail(pushed.error(), out);
  }
}

void StreamPipeline::forward(std::vector<PackagerEvent>& events, std::vector<RenditionEvent>& out) {
  for (PackagerEvent& event : events) {
    if (auto* part = std::get_if<std::shared_ptr<const Part>>(&event)) {
      // The store closes a generation's open segment when it ends, so the next one starts after
      // the segment of the newest part even when the packager could not complete it.
      next_msn_ = std::max(next_msn_, (*part)->msn + 1);
      out.push_back(RenditionEvent{std::string(kSourceRendition), std::move(*part)});
    } else {
      const SegmentComplete& complete = std::get<SegmentComplete>(event);
      next_msn_ = complete.msn + 1;
      out.push_back(RenditionEvent{std::string(kSourceRendition), complete});
    }
  }
  events.clear();
}

void StreamPipeline::close_generation(std::vector<RenditionEvent>& out) {
  if (packager_ == nullptr) {
    return;
  }
  scratch_.clear();
  Status finished = packager_->finish(scratch_);
  forward(scratch_, out);
  if (!finished) {
    log::warn(kLog, "channel={} finishing the packager: {}", channel_, finished.error().message);
  }
  out.push_back(RenditionEvent{std::string(kSourceRendition), RenditionClosed{packager_->stats()}});
  packager_.reset();
  tap_closed();
}

void StreamPipeline::tap_closed() {
  if (tap_) {
    SourceTapEvent tapped;
    tapped.kind = SourceTapEvent::Kind::kClosed;
    tap_(std::move(tapped));
  }
}

void StreamPipeline::fail(const Error& error, std::vector<RenditionEvent>& out) {
  ++stats_.errors;
  log::error(kLog, "channel={} packaging stopped until the next publish: {}", channel_,
             error.message);
  if (packager_ != nullptr) {
    // Whatever it already emitted stays valid; end the generation without feeding it more.
    out.push_back(
        RenditionEvent{std::string(kSourceRendition), RenditionClosed{packager_->stats()}});
    packager_.reset();
    tap_closed();
  }
  buffer_.clear();
  buffered_bytes_ = 0;
  failed_ = true;
}

void StreamPipeline::end_publish(std::vector<RenditionEvent>& out) {
  close_generation(out);
  buffer_.clear();
  buffered_bytes_ = 0;
}

}  // namespace hawker::media::hls
