#include "media/transcode/ladder.h"

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavutil/dict.h>
#include <libavutil/error.h>
#include <libavutil/frame.h>
#include <libavutil/pixfmt.h>
#include <libswscale/swscale.h>
}

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <set>
#include <string_view>

#include "core/deleters.h"
#include "core/log.h"
#include "media/transcode/avc.h"

namespace hawker::media::transcode {

namespace {

using CodecPtr = std::unique_ptr<AVCodecContext, FnRefDeleter<avcodec_free_context>>;
using FramePtr = std::unique_ptr<AVFrame, FnRefDeleter<av_frame_free>>;
using PacketPtr = std::unique_ptr<AVPacket, FnRefDeleter<av_packet_free>>;
using ScalerPtr = std::unique_ptr<SwsContext, FnDeleter<sws_freeContext>>;
using DictPtr = std::unique_ptr<AVDictionary, FnRefDeleter<av_dict_free>>;

// x264's X264_KEYINT_MAX_INFINITE: keyframes come only where the ladder forces them.
constexpr int kKeyintInfinite = 1 << 30;
// Marks of frames the decoder never returns are dropped past this many.
constexpr size_t kMaxMarks = 512;

constexpr std::array<std::string_view, 10> kPresets = {
    "ultrafast", "superfast", "veryfast", "faster",   "fast",
    "medium",    "slow",      "slower",   "veryslow", "placebo"};

Error av_error(int code, std::string_view what) {
  char text[AV_ERROR_MAX_STRING_SIZE] = {};
  av_strerror(code, text, sizeof(text));
  return Error{ErrorCode::kInternal, fmt::format("{}: {}", what, text)};
}

int even(double value) { return std::max(2, static_cast<int>(std::lround(value / 2.0)) * 2); }

}  // namespace

Status LadderConfig::validate() const {
  if (rungs.empty() || rungs.size() > 8) {
    return unexpected(ErrorCode::kInvalidArgument, "a ladder has 1..8 rungs");
  }
  for (const RungConfig& rung : rungs) {
    if (rung.height < 64 || rung.height > 4320 || rung.height % 2 != 0) {
      return unexpected(ErrorCode::kInvalidArgument,
                        fmt::format("rung height {} must be even and 64..4320", rung.height));
    }
    if (rung.bitrate_bps < 50'000 || rung.bitrate_bps > 100'000'000) {
      return unexpected(ErrorCode::kInvalidArgument,
                        fmt::format("rung bitrate {} must be 50k..100M", rung.bitrate_bps));
    }
    if (rung.max_fps > 240) {
      return unexpected(ErrorCode::kInvalidArgument, "rung max frame rate must be <= 240");
    }
  }
  if (std::find(kPresets.begin(), kPresets.end(), preset) == kPresets.end()) {
    return unexpected(ErrorCode::kInvalidArgument, fmt::format("unknown x264 preset {}", preset));
  }
  if (encoder_threads < 1 || encoder_threads > 16 || decoder_threads < 1 || decoder_threads > 16) {
    return unexpected(ErrorCode::kInvalidArgument, "codec threads must be 1..16");
  }
  if (vbv_ms < 100 || vbv_ms > 10'000) {
    return unexpected(ErrorCode::kInvalidArgument, "VBV buffer must be 100..10000 ms");
  }
  if (realtime_window_ms < 1000 || !(realtime_budget > 0.0 && realtime_budget <= 1.0)) {
    return unexpected(ErrorCode::kInvalidArgument,
                      "realtime window must be >= 1000 ms and the budget in (0, 1]");
  }
  return ok_status();
}

std::vector<RungPlan> plan_rungs(const TrackConfig& source_video, const LadderConfig& config) {
  std::vector<RungPlan> plans;
  if (source_video.width <= 0 || source_video.height <= 0) {
    return plans;
  }
  for (const RungConfig& rung : config.rungs) {
    if (rung.height >= source_video.height) {
      continue;
    }
    RungPlan plan;
    plan.config = rung;
    plan.height = even(rung.height);
    plan.width = even(static_cast<double>(source_video.width) * rung.height / source_video.height);
    plans.push_back(plan);
  }
  std::stable_sort(plans.begin(), plans.end(),
                   [](const RungPlan& a, const RungPlan& b) { return a.height > b.height; });
  return plans;
}

struct Ladder::Codecs {
  CodecPtr decoder;
  PacketPtr packet;
  FramePtr frame;
};

struct Ladder::Rung {
  explicit Rung(const RungPlan& p, int64_t window_ticks)
      : plan(p), cap(p.config.max_fps), meter(window_ticks) {}
  RungPlan plan;
  size_t index = 0;
  TrackConfig track;
  CodecPtr encoder;
  /// Scales from the next larger rung's picture when that rung made one for this frame (the same
  /// frame-rate cap makes that the rule), else from the decoded frame.
  std::optional<size_t> parent;
  ScalerPtr scaler_from_parent;
  ScalerPtr scaler_from_source;
  bool pictured = false;  ///< `frame` holds the current source frame, scaled
  FramePtr frame;
  PacketPtr packet;
  FrameRateCap cap;
  RealtimeMeter meter;
  RungStats stats;
  bool enabled = true;
  bool waiting_for_idr = false;
  bool pending_discontinuity = false;
  std::set<int64_t> discontinuity_pts;  ///< frames inside the encoder that follow a jump
};

namespace {

Result<CodecPtr> open_decoder(const TrackConfig& source, const LadderConfig& config) {
  const AVCodec* codec = avcodec_find_decoder(AV_CODEC_ID_H264);
  if (codec == nullptr) {
    return unexpected(ErrorCode::kUnsupported, "libavcodec has no H.264 decoder");
  }
  CodecPtr ctx(avcodec_alloc_context3(codec));
  if (!ctx) {
    return unexpected(ErrorCode::kResourceExhausted, "cannot allocate the decoder");
  }
  ctx->extradata =
      static_cast<uint8_t*>(av_mallocz(source.extradata.size() + AV_INPUT_BUFFER_PADDING_SIZE));
  if (ctx->extradata == nullptr) {
    return unexpected(ErrorCode::kResourceExhausted, "cannot allocate the decoder's extradata");
  }
  std::memcpy(ctx->extradata, source.extradata.data(), source.extradata.size());
  ctx->extradata_size = static_cast<int>(source.extradata.size());
  ctx->thread_count = config.decoder_threads;
  ctx->thread_type = config.decoder_threads > 1 ? FF_THREAD_FRAME : 0;
  ctx->pkt_timebase = AVRational{1, static_cast<int>(remux::kTimebase)};
  const int rc = avcodec_open2(ctx.get(), codec, nullptr);
  if (rc < 0) {
    return av_error(rc, "open the H.264 decoder");
  }
  return ctx;
}

Result<CodecPtr> open_encoder(const RungPlan& plan, const LadderConfig& config) {
  const AVCodec* codec = avcodec_find_encoder_by_name("libx264");
  if (codec == nullptr) {
    return unexpected(ErrorCode::kUnsupported, "libavcodec was built without libx264");
  }
  CodecPtr ctx(avcodec_alloc_context3(codec));
  if (!ctx) {
    return unexpected(ErrorCode::kResourceExhausted, "cannot allocate an encoder");
  }
  ctx->width = plan.width;
  ctx->height = plan.height;
  ctx->pix_fmt = AV_PIX_FMT_YUV420P;
  ctx->time_base = AVRational{1, static_cast<int>(remux::kTimebase)};
  // An upper bound for level selection; rate control follows the real timestamps (x264 VFR).
  ctx->framerate = AVRational{plan.config.max_fps > 0 ? plan.config.max_fps : 60, 1};
  ctx->bit_rate = plan.config.bitrate_bps;
  ctx->rc_max_rate = plan.config.bitrate_bps;
  ctx->rc_buffer_size = static_cast<int>(plan.config.bitrate_bps * config.vbv_ms / 1000);
  ctx->gop_size = kKeyintInfinite;
  ctx->max_b_frames = 0;
  ctx->thread_count = config.encoder_threads;
  ctx->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
  AVDictionary* raw = nullptr;
  av_dict_set(&raw, "preset", config.preset.c_str(), 0);
  av_dict_set(&raw, "tune", "zerolatency", 0);
  av_dict_set(&raw, "forced-idr", "1", 0);
  av_dict_set(&raw, "x264-params", "scenecut=0:open-gop=0", 0);
  DictPtr options(raw);
  raw = options.release();
  const int rc = avcodec_open2(ctx.get(), codec, &raw);
  options.reset(raw);
  if (rc < 0) {
    return av_error(rc, fmt::format("open libx264 for {}p", plan.height));
  }
  return ctx;
}

Result<TrackConfig> track_from_encoder(const AVCodecContext& encoder) {
  if (encoder.extradata == nullptr || encoder.extradata_size <= 0) {
    return unexpected(ErrorCode::kInternal, "the encoder gave no global header");
  }
  auto record = avc_decoder_configuration(
      std::span<const uint8_t>(encoder.extradata, static_cast<size_t>(encoder.extradata_size)));
  if (!record) {
    return unexpected(std::move(record).error().with_context("encoder global header"));
  }
  TrackConfig track;
  track.kind = TrackKind::kVideo;
  track.codec = Codec::kH264;
  track.width = encoder.width;
  track.height = encoder.height;
  track.profile_idc = (*record)[1];
  track.constraint_flags = (*record)[2];
  track.level_idc = (*record)[3];
  track.extradata = std::move(*record);
  return track;
}

}  // namespace

Result<std::unique_ptr<Ladder>> Ladder::open(const TrackConfig& source_video, LadderConfig config,
                                             const Clock& clock) {
  HAWKER_TRY_STATUS(config.validate(), "ladder");
  if (source_video.kind != TrackKind::kVideo || source_video.codec != Codec::kH264 ||
      source_video.extradata.empty()) {
    return unexpected(ErrorCode::kUnsupported, "ladder: the source must be H.264 video with avcC");
  }
  if (auto record = avc_decoder_configuration(source_video.extradata); !record) {
    return unexpected(std::move(record).error().with_context("ladder: source"));
  }
  const std::vector<RungPlan> plans = plan_rungs(source_video, config);
  if (plans.empty()) {
    return unexpected(ErrorCode::kInvalidArgument,
                      fmt::format("ladder: no rung below the source's {}p", source_video.height));
  }
  std::unique_ptr<Ladder> ladder(new Ladder(std::move(config), clock));
  auto decoder = open_decoder(source_video, ladder->config_);
  if (!decoder) {
    return unexpected(std::move(decoder).error().with_context("ladder"));
  }
  ladder->codecs_->decoder = std::move(*decoder);
  ladder->codecs_->packet.reset(av_packet_alloc());
  ladder->codecs_->frame.reset(av_frame_alloc());
  if (!ladder->codecs_->packet || !ladder->codecs_->frame) {
    return unexpected(ErrorCode::kResourceExhausted, "ladder: cannot allocate decoder buffers");
  }
  const int64_t window_ticks = ladder->config_.realtime_window_ms * remux::kTicksPerMs;
  for (const RungPlan& plan : plans) {
    auto rung = std::make_unique<Rung>(plan, window_ticks);
    rung->index = ladder->rungs_.size();
    for (size_t j = ladder->rungs_.size(); j-- > 0;) {
      const Rung& larger = *ladder->rungs_[j];
      if (larger.plan.height > plan.height && larger.plan.config.max_fps == plan.config.max_fps) {
        rung->parent = j;
        break;
      }
    }
    auto encoder = open_encoder(plan, ladder->config_);
    if (!encoder) {
      return unexpected(std::move(encoder).error().with_context("ladder"));
    }
    rung->encoder = std::move(*encoder);
    auto track = track_from_encoder(*rung->encoder);
    if (!track) {
      return unexpected(std::move(track).error().with_context("ladder"));
    }
    rung->track = std::move(*track);
    rung->packet.reset(av_packet_alloc());
    rung->frame.reset(av_frame_alloc());
    if (!rung->packet || !rung->frame) {
      return unexpected(ErrorCode::kResourceExhausted, "ladder: cannot allocate encoder buffers");
    }
    rung->frame->width = plan.width;
    rung->frame->height = plan.height;
    rung->frame->format = AV_PIX_FMT_YUV420P;
    const int rc = av_frame_get_buffer(rung->frame.get(), 0);
    if (rc < 0) {
      return av_error(rc, "ladder: allocate a rung's picture");
    }
    ladder->rungs_.push_back(std::move(rung));
  }
  return ladder;
}

Ladder::Ladder(LadderConfig config, const Clock& clock)
    : config_(std::move(config)),
      clock_(clock),
      codecs_(std::make_unique<Codecs>()),
      decode_meter_(config_.realtime_window_ms * remux::kTicksPerMs) {}

Ladder::~Ladder() = default;

size_t Ladder::rung_count() const { return rungs_.size(); }
const RungPlan& Ladder::plan(size_t rung) const { return rungs_.at(rung)->plan; }
const TrackConfig& Ladder::track(size_t rung) const { return rungs_.at(rung)->track; }

Status Ladder::push(const remux::NormalisedPacket& video, bool force_keyframe_here,
                    std::vector<RungPacket>& out) {
  if (finished_) {
    return unexpected(ErrorCode::kInvalidArgument, "ladder: push after finish");
  }
  if (video.kind != TrackKind::kVideo || !video.data || video.data->empty()) {
    return unexpected(ErrorCode::kInvalidArgument, "ladder: only non-empty video packets");
  }
  ++stats_.packets_in;
  if (!started_) {
    // The decoder can begin only at a keyframe; the source's packager drops these too.
    if (!video.keyframe) {
      return ok_status();
    }
    started_ = true;
    dts_shift_ = video.pts - video.dts;
  }
  if (video.keyframe || force_keyframe_here || video.discontinuity) {
    Marks& marks = marks_[video.pts];
    marks.idr = marks.idr || video.keyframe || force_keyframe_here;
    marks.discontinuity = marks.discontinuity || video.discontinuity;
    if (marks_.size() > kMaxMarks) {
      marks_.erase(marks_.begin());
    }
  }
  AVPacket* packet = codecs_->packet.get();
  av_packet_unref(packet);
  int rc = av_new_packet(packet, static_cast<int>(video.data->size()));
  if (rc < 0) {
    return av_error(rc, "ladder: allocate a packet");
  }
  std::memcpy(packet->data, video.data->data(), video.data->size());
  packet->pts = video.pts;
  packet->dts = video.dts;
  if (video.keyframe) {
    packet->flags |= AV_PKT_FLAG_KEY;
  }
  Status status = decode(packet, out);
  av_packet_unref(packet);
  return status;
}

Status Ladder::decode(const AVPacket* packet, std::vector<RungPacket>& out) {
  AVCodecContext* decoder = codecs_->decoder.get();
  int64_t start = clock_.steady_ms();
  int rc = avcodec_send_packet(decoder, packet);
  decode_ms_pending_ += clock_.steady_ms() - start;
  if (rc < 0 && rc != AVERROR_EOF) {
    // A corrupt packet costs its frame (and those referring to it) until the next keyframe; the
    // stream goes on.
    ++stats_.decode_errors;
    return ok_status();
  }
  AVFrame* frame = codecs_->frame.get();
  while (true) {
    start = clock_.steady_ms();
    rc = avcodec_receive_frame(decoder, frame);
    decode_ms_pending_ += clock_.steady_ms() - start;
    if (rc == AVERROR(EAGAIN) || rc == AVERROR_EOF) {
      return ok_status();
    }
    if (rc < 0) {
      ++stats_.decode_errors;
      return ok_status();
    }
    Status status = on_frame(frame, out);
    av_frame_unref(frame);
    if (!status) {
      return status;
    }
  }
}

Status Ladder::on_frame(AVFrame* frame, std::vector<RungPacket>& out) {
  // The decoder returns each frame with its own packet's pts (reordered); the guess is a fallback.
  const int64_t pts = frame->pts != AV_NOPTS_VALUE ? frame->pts : frame->best_effort_timestamp;
  if (pts == AV_NOPTS_VALUE || (have_last_pts_ && pts <= last_pts_)) {
    ++stats_.frames_out_of_order;
    return ok_status();
  }
  const int64_t duration =
      have_last_pts_ ? std::min<int64_t>(pts - last_pts_, remux::kTimebase) : 0;
  have_last_pts_ = true;
  last_pts_ = pts;
  ++stats_.frames_decoded;
  decode_meter_.add(duration, decode_ms_pending_);
  decode_ms_pending_ = 0;

  // Marks at earlier pts belong to frames the decoder lost: the next frame carries them, so a
  // rung still restarts with an IDR as close as it can to the source's cut.
  Marks marks;
  while (!marks_.empty() && marks_.begin()->first <= pts) {
    marks.idr = marks.idr || marks_.begin()->second.idr;
    marks.discontinuity = marks.discontinuity || marks_.begin()->second.discontinuity;
    marks_.erase(marks_.begin());
  }

  for (auto& rung_ptr : rungs_) {
    rung_ptr->pictured = false;
  }
  for (auto& rung_ptr : rungs_) {
    Rung& rung = *rung_ptr;
    if (!rung.enabled) {
      continue;
    }
    rung.pending_discontinuity = rung.pending_discontinuity || marks.discontinuity;
    if (rung.waiting_for_idr) {
      if (!marks.idr) {
        continue;
      }
      rung.waiting_for_idr = false;
    }
    if (!rung.cap.admit(pts, marks.idr)) {
      ++rung.stats.frames_dropped_by_cap;
      rung.meter.add(duration, 0);
      continue;
    }
    const int64_t start = clock_.steady_ms();
    // Scaling from the next larger rung instead of the source reads fewer pixels per output pixel
    // (bench/transcode: about a third less scaling time for the default ladder).
    const bool chained = rung.parent && rungs_[*rung.parent]->pictured;
    const AVFrame* input = chained ? rungs_[*rung.parent]->frame.get() : frame;
    HAWKER_TRY_STATUS(encode(rung, input, chained, pts, marks.idr, out),
                      fmt::format("ladder {}p", rung.plan.height));
    rung.meter.add(duration, clock_.steady_ms() - start);
  }
  return ok_status();
}

Status Ladder::encode(Rung& rung, const AVFrame* frame, bool chained, int64_t pts, bool idr,
                      std::vector<RungPacket>& out) {
  AVFrame* picture = rung.frame.get();
  ScalerPtr& scaler_slot = chained ? rung.scaler_from_parent : rung.scaler_from_source;
  // A resolution change inside the stream gets a new scaler; the rung keeps its size.
  SwsContext* scaler = sws_getCachedContext(
      scaler_slot.release(), frame->width, frame->height, static_cast<AVPixelFormat>(frame->format),
      picture->width, picture->height, AV_PIX_FMT_YUV420P, SWS_BICUBIC, nullptr, nullptr, nullptr);
  scaler_slot.reset(scaler);
  if (scaler == nullptr) {
    return unexpected(ErrorCode::kUnsupported,
                      fmt::format("cannot scale {}x{} pixel format {}", frame->width, frame->height,
                                  frame->format));
  }
  int rc = av_frame_make_writable(picture);
  if (rc < 0) {
    return av_error(rc, "make the picture writable");
  }
  sws_scale(scaler, frame->data, frame->linesize, 0, frame->height, picture->data,
            picture->linesize);
  rung.pictured = true;
  picture->pts = pts;
  picture->pict_type = idr ? AV_PICTURE_TYPE_I : AV_PICTURE_TYPE_NONE;
  picture->key_frame = idr ? 1 : 0;
  if (rung.pending_discontinuity) {
    rung.discontinuity_pts.insert(pts);
    rung.pending_discontinuity = false;
  }
  rc = avcodec_send_frame(rung.encoder.get(), picture);
  if (rc < 0) {
    return av_error(rc, "encode");
  }
  return drain_encoder(rung, out);
}

Status Ladder::drain_encoder(Rung& rung, std::vector<RungPacket>& out) {
  AVPacket* packet = rung.packet.get();
  while (true) {
    int rc = avcodec_receive_packet(rung.encoder.get(), packet);
    if (rc == AVERROR(EAGAIN) || rc == AVERROR_EOF) {
      return ok_status();
    }
    if (rc < 0) {
      return av_error(rc, "encode");
    }
    auto avcc = annexb_to_avcc(std::span<const uint8_t>(packet->data, packet->size));
    if (!avcc) {
      av_packet_unref(packet);
      return unexpected(std::move(avcc).error().with_context("encoder output"));
    }
    RungPacket encoded;
    encoded.rung = rung.index;
    encoded.packet.kind = TrackKind::kVideo;
    encoded.packet.pts = packet->pts;
    encoded.packet.dts = packet->pts - dts_shift_;
    encoded.packet.keyframe = (packet->flags & AV_PKT_FLAG_KEY) != 0;
    while (!rung.discontinuity_pts.empty() && *rung.discontinuity_pts.begin() <= packet->pts) {
      encoded.packet.discontinuity = true;
      rung.discontinuity_pts.erase(rung.discontinuity_pts.begin());
    }
    ++rung.stats.frames_encoded;
    rung.stats.keyframes += encoded.packet.keyframe ? 1 : 0;
    rung.stats.bytes += static_cast<int64_t>(avcc->size());
    encoded.packet.data = std::make_shared<const Bytes>(std::move(*avcc));
    av_packet_unref(packet);
    out.push_back(std::move(encoded));
  }
}

Status Ladder::finish(std::vector<RungPacket>& out) {
  if (finished_) {
    return ok_status();
  }
  finished_ = true;
  if (!started_) {
    return ok_status();
  }
  HAWKER_TRY_STATUS(decode(nullptr, out), "ladder: drain the decoder");
  for (auto& rung : rungs_) {
    const int rc = avcodec_send_frame(rung->encoder.get(), nullptr);
    if (rc < 0 && rc != AVERROR_EOF) {
      return av_error(rc, "ladder: drain an encoder");
    }
    HAWKER_TRY_STATUS(drain_encoder(*rung, out), "ladder: drain an encoder");
  }
  return ok_status();
}

bool Ladder::keeping_up() const {
  if (decode_meter_.media_ticks() < config_.realtime_window_ms * remux::kTicksPerMs) {
    return true;
  }
  return stats().load <= config_.realtime_budget;
}

std::optional<size_t> Ladder::rung_to_shed() const {
  if (keeping_up()) {
    return std::nullopt;
  }
  std::optional<size_t> worst;
  for (size_t i = 0; i < rungs_.size(); ++i) {
    if (rungs_[i]->enabled && (!worst || rungs_[i]->meter.load() > rungs_[*worst]->meter.load())) {
      worst = i;
    }
  }
  return worst;
}

void Ladder::set_rung_enabled(size_t rung, bool enabled) {
  Rung& r = *rungs_.at(rung);
  if (r.enabled == enabled) {
    return;
  }
  r.enabled = enabled;
  r.meter.reset();
  r.waiting_for_idr = enabled;
}

bool Ladder::rung_enabled(size_t rung) const { return rungs_.at(rung)->enabled; }

RungStats Ladder::rung_stats(size_t rung) const {
  RungStats stats = rungs_.at(rung)->stats;
  stats.load = rungs_.at(rung)->meter.load();
  return stats;
}

LadderStats Ladder::stats() const {
  LadderStats stats = stats_;
  stats.decode_load = decode_meter_.load();
  stats.load = stats.decode_load;
  for (const auto& rung : rungs_) {
    if (rung->enabled) {
      stats.load += rung->meter.load();
    }
  }
  return stats;
}

}  // namespace hawker::media::transcode
