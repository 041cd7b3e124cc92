#include "media/remux/fmp4_muxer.h"

extern "C" {
#include <libavformat/avformat.h>
#include <libavutil/channel_layout.h>
#include <libavutil/mathematics.h>
#include <libavutil/mem.h>
}

#include <fmt/format.h>

#include <cstdlib>
#include <cstring>

#include "core/deleters.h"

namespace hawker::media::remux {

namespace {

using PacketPtr = std::unique_ptr<AVPacket, FnRefDeleter<av_packet_free>>;
using DictPtr = std::unique_ptr<AVDictionary*, void (*)(AVDictionary**)>;

constexpr int kIoBufferSize = 64 * 1024;
constexpr int64_t kAacFrameSamples = 1024;
// Audio timestamps that stray from the sample grid by more than this many frames re-sync it.
constexpr int64_t kAudioResyncFrames = 2;

Error av_error(int code, std::string_view what) {
  char text[AV_ERROR_MAX_STRING_SIZE] = {};
  av_strerror(code, text, sizeof(text));
  return Error{ErrorCode::kInternal, fmt::format("{}: {}", what, text)};
}

bool copy_extradata(AVCodecParameters* par, const Bytes& extradata) {
  if (extradata.empty()) {
    return true;
  }
  par->extradata =
      static_cast<uint8_t*>(av_mallocz(extradata.size() + AV_INPUT_BUFFER_PADDING_SIZE));
  if (par->extradata == nullptr) {
    return false;
  }
  std::memcpy(par->extradata, extradata.data(), extradata.size());
  par->extradata_size = static_cast<int>(extradata.size());
  return true;
}

}  // namespace

struct Fmp4Muxer::Track {
  TrackKind kind = TrackKind::kVideo;
  AVStream* stream = nullptr;
  /// The unit this code counts the track's time in: 90 kHz for video, the sample rate for audio.
  AVRational unit{1, static_cast<int>(kTimebase)};
  bool timing = false;
  std::optional<NormalisedPacket> held;
  int64_t last_step = 0;  ///< 90 kHz
  int64_t next_sample = -1;
};

void Fmp4Muxer::FormatDeleter::operator()(AVFormatContext* ctx) const {
  avformat_free_context(ctx);
}

void Fmp4Muxer::IoDeleter::operator()(AVIOContext* io) const {
  av_freep(&io->buffer);
  avio_context_free(&io);
}

Fmp4Muxer::Fmp4Muxer() = default;
Fmp4Muxer::~Fmp4Muxer() = default;

#if LIBAVFORMAT_VERSION_MAJOR < 61
static int write_packet_thunk(void* opaque, uint8_t* data, int size) {
  return Fmp4Muxer::on_write_for_avio(opaque, data, size);
}
#else
static int write_packet_thunk(void* opaque, const uint8_t* data, int size) {
  return Fmp4Muxer::on_write_for_avio(opaque, data, size);
}
#endif

int Fmp4Muxer::on_write_for_avio(void* opaque, const uint8_t* data, int size) {
  auto* self = static_cast<Fmp4Muxer*>(opaque);
  self->pending_output_.insert(self->pending_output_.end(), data, data + size);
  return size;
}

Result<std::unique_ptr<Fmp4Muxer>> Fmp4Muxer::open(std::span<const TrackConfig> tracks) {
  if (tracks.empty() || tracks.size() > 2) {
    return unexpected(ErrorCode::kInvalidArgument, "fmp4 muxer: need one or two tracks");
  }
  std::unique_ptr<Fmp4Muxer> muxer(new Fmp4Muxer());

  AVFormatContext* raw = nullptr;
  int rc = avformat_alloc_output_context2(&raw, nullptr, "mp4", nullptr);
  if (rc < 0 || raw == nullptr) {
    return av_error(rc, "fmp4 muxer: allocate mp4 output");
  }
  muxer->format_.reset(raw);

  auto* buffer = static_cast<uint8_t*>(av_malloc(kIoBufferSize));
  if (buffer == nullptr) {
    return unexpected(ErrorCode::kResourceExhausted, "fmp4 muxer: allocate io buffer");
  }
  AVIOContext* io = avio_alloc_context(buffer, kIoBufferSize, 1, muxer.get(), nullptr,
                                       &write_packet_thunk, nullptr);
  if (io == nullptr) {
    av_free(buffer);
    return unexpected(ErrorCode::kResourceExhausted, "fmp4 muxer: allocate io context");
  }
  io->seekable = 0;
  muxer->io_.reset(io);
  raw->pb = io;
  raw->flags |= AVFMT_FLAG_CUSTOM_IO;

  bool have_video = false;
  bool have_audio = false;
  for (const TrackConfig& config : tracks) {
    auto track = std::make_unique<Track>();
    track->kind = config.kind;
    AVStream* stream = avformat_new_stream(raw, nullptr);
    if (stream == nullptr) {
      return unexpected(ErrorCode::kResourceExhausted, "fmp4 muxer: add stream");
    }
    AVCodecParameters* par = stream->codecpar;
    if (config.kind == TrackKind::kVideo) {
      if (have_video || config.codec != Codec::kH264 || config.extradata.empty() ||
          config.width <= 0 || config.height <= 0) {
        return unexpected(ErrorCode::kInvalidArgument,
                          "fmp4 muxer: video track needs H.264 with a config record and a size");
      }
      have_video = true;
      par->codec_type = AVMEDIA_TYPE_VIDEO;
      par->codec_id = AV_CODEC_ID_H264;
      par->width = config.width;
      par->height = config.height;
      track->unit = AVRational{1, static_cast<int>(kTimebase)};
    } else {
      if (have_audio || config.codec != Codec::kAac || config.extradata.empty() ||
          config.sample_rate <= 0 || config.channels <= 0) {
        return unexpected(ErrorCode::kInvalidArgument,
                          "fmp4 muxer: audio track needs AAC with a config and a sample rate");
      }
      have_audio = true;
      par->codec_type = AVMEDIA_TYPE_AUDIO;
      par->codec_id = AV_CODEC_ID_AAC;
      par->sample_rate = config.sample_rate;
      av_channel_layout_default(&par->ch_layout, config.channels);
      par->frame_size = kAacFrameSamples;
      track->unit = AVRational{1, config.sample_rate};
    }
    if (!copy_extradata(par, config.extradata)) {
      return unexpected(ErrorCode::kResourceExhausted, "fmp4 muxer: copy codec config");
    }
    stream->time_base = track->unit;
    track->stream = stream;
    muxer->tracks_.push_back(std::move(track));
  }
  for (auto& track : muxer->tracks_) {
    if (track->kind == TrackKind::kVideo || !have_video) {
      track->timing = true;
      muxer->timing_ = track.get();
    }
  }

  AVDictionary* options = nullptr;
  av_dict_set(&options, "movflags",
              "+frag_custom+empty_moov+default_base_moof+cmaf+skip_trailer+frag_discont", 0);
  rc = avformat_write_header(raw, &options);
  const int unused = av_dict_count(options);
  av_dict_free(&options);
  if (rc < 0) {
    return av_error(rc, "fmp4 muxer: write init segment");
  }
  if (unused != 0) {
    return unexpected(ErrorCode::kInternal, "fmp4 muxer: mp4 muxer ignored its options");
  }
  avio_flush(io);
  if (muxer->pending_output_.empty()) {
    return unexpected(ErrorCode::kInternal, "fmp4 muxer: no init segment was written");
  }
  muxer->init_ = std::move(muxer->pending_output_);
  muxer->pending_output_.clear();
  return muxer;
}

Status Fmp4Muxer::write(const NormalisedPacket& packet) {
  if (finished_) {
    return unexpected(ErrorCode::kInvalidArgument, "fmp4 muxer: write after finish");
  }
  Track* track = nullptr;
  for (auto& t : tracks_) {
    if (t->kind == packet.kind) {
      track = t.get();
    }
  }
  if (track == nullptr) {
    return unexpected(ErrorCode::kInvalidArgument, "fmp4 muxer: packet for an unknown track");
  }
  if (packet.data == nullptr || packet.data->empty()) {
    return unexpected(ErrorCode::kInvalidArgument, "fmp4 muxer: empty packet");
  }
  if (track->held) {
    if (packet.dts <= track->held->dts) {
      return unexpected(ErrorCode::kInvalidArgument, "fmp4 muxer: dts does not increase");
    }
    const int64_t step = packet.dts - track->held->dts;
    NormalisedPacket previous = std::move(*track->held);
    track->held.reset();
    HAWKER_TRY_STATUS(send(*track, previous, step), "fmp4 muxer");
    track->last_step = step;
  }
  if (track->timing || track->kind == TrackKind::kVideo) {
    track->held = packet;
    return ok_status();
  }
  return send(*track, packet, 0);
}

Status Fmp4Muxer::send(Track& track, const NormalisedPacket& packet, int64_t duration) {
  PacketPtr pkt(av_packet_alloc());
  if (pkt == nullptr || av_new_packet(pkt.get(), static_cast<int>(packet.data->size())) < 0) {
    return unexpected(ErrorCode::kResourceExhausted, "allocate packet");
  }
  std::memcpy(pkt->data, packet.data->data(), packet.data->size());
  pkt->stream_index = track.stream->index;

  int64_t start = 0;
  int64_t length = 0;
  if (track.kind == TrackKind::kAudio) {
    const int64_t ideal =
        av_rescale_q(packet.dts, AVRational{1, static_cast<int>(kTimebase)}, track.unit);
    const int64_t slack = kAudioResyncFrames * kAacFrameSamples;
    if (track.next_sample >= 0 && ideal + slack < track.next_sample) {
      // The source's audio clock stepped back a little (the join of a looped file, an encoder
      // resync): this frame's time is already covered by frames sent, so it is left out rather
      // than sent back in time, which the muxer refuses.
      ++overlapping_audio_frames_;
      return ok_status();
    }
    if (track.next_sample < 0 || ideal - track.next_sample > slack) {
      track.next_sample = ideal;  // a gap in the source's audio: re-sync to its clock
    }
    start = track.next_sample;
    length = kAacFrameSamples;
    track.next_sample += kAacFrameSamples;
    pkt->dts = start;
    pkt->pts = start;
    pkt->flags |= AV_PKT_FLAG_KEY;
  } else {
    start = packet.dts;
    length = duration;
    pkt->dts = packet.dts;
    pkt->pts = packet.pts;
    if (packet.keyframe) {
      pkt->flags |= AV_PKT_FLAG_KEY;
    }
  }
  pkt->duration = length;
  av_packet_rescale_ts(pkt.get(), track.unit, track.stream->time_base);

  if (track.timing) {
    if (!fragment_has_samples_) {
      fragment_has_samples_ = true;
      fragment_start_ = start;
      fragment_first_pts_ = track.kind == TrackKind::kVideo ? packet.pts : start;
      fragment_duration_ = 0;
      fragment_independent_ = track.kind == TrackKind::kAudio || packet.keyframe;
    }
    fragment_duration_ += length;
  }

  const int rc = av_write_frame(format_.get(), pkt.get());
  if (rc < 0) {
    return av_error(rc, "write sample");
  }
  return ok_status();
}

Result<Fragment> Fmp4Muxer::emit_fragment() {
  Fragment fragment;
  if (!fragment_has_samples_) {
    return fragment;
  }
  const int rc = av_write_frame(format_.get(), nullptr);
  if (rc < 0) {
    return av_error(rc, "fmp4 muxer: cut fragment");
  }
  avio_flush(io_.get());
  fragment.bytes = std::move(pending_output_);
  pending_output_.clear();

  const AVRational tick{1, static_cast<int>(kTimebase)};
  fragment.start_dts = av_rescale_q(fragment_start_, timing_->unit, tick);
  const int64_t end = av_rescale_q(fragment_start_ + fragment_duration_, timing_->unit, tick);
  fragment.duration = end - fragment.start_dts;
  fragment.first_pts =
      timing_->kind == TrackKind::kVideo ? fragment_first_pts_ : fragment.start_dts;
  fragment.independent = fragment_independent_;
  fragment_has_samples_ = false;
  fragment_duration_ = 0;
  return fragment;
}

Result<Fragment> Fmp4Muxer::cut() {
  if (finished_) {
    return unexpected(ErrorCode::kInvalidArgument, "fmp4 muxer: cut after finish");
  }
  return emit_fragment();
}

Result<Fragment> Fmp4Muxer::drain() {
  if (finished_) {
    return unexpected(ErrorCode::kInvalidArgument, "fmp4 muxer: drain after finish");
  }
  for (auto& track : tracks_) {
    if (!track->held) {
      continue;
    }
    NormalisedPacket last = std::move(*track->held);
    track->held.reset();
    const int64_t step = track->last_step > 0 ? track->last_step : kTimebase / 30;
    HAWKER_TRY_STATUS(send(*track, last, step), "fmp4 muxer: drain");
  }
  return emit_fragment();
}

Status Fmp4Muxer::finish() {
  if (finished_) {
    return ok_status();
  }
  finished_ = true;
  const int rc = av_write_trailer(format_.get());
  if (rc < 0) {
    return av_error(rc, "fmp4 muxer: finish");
  }
  return ok_status();
}

std::optional<int64_t> Fmp4Muxer::next_start() const {
  if (timing_ == nullptr || !timing_->held) {
    return std::nullopt;
  }
  return timing_->held->dts;
}

}  // namespace hawker::media::remux
