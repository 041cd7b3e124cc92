#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "core/result.h"
#include "media/packet.h"
#include "media/remux/timestamps.h"

struct AVFormatContext;
struct AVIOContext;

namespace hawker::media::remux {

/// One moof+mdat: a CMAF chunk that stands alone (default-base-is-moof), usable as an LL-HLS part.
struct Fragment {
  Bytes bytes;
  int64_t start_dts = 0;     ///< 90 kHz, first sample of the timing track
  int64_t first_pts = 0;     ///< 90 kHz, presentation time of that sample
  int64_t duration = 0;      ///< 90 kHz, sum of the timing track's sample durations
  bool independent = false;  ///< the first video sample is a keyframe (always true audio-only)
};

/// fMP4/CMAF muxer on libavformat's mp4 muxer writing into memory.
///
/// The timing track is video when there is one, else audio: fragment start and duration are
/// measured on it. Each track holds back its newest packet until the next one gives its duration,
/// so `write(p)` then `cut()` yields a fragment that ends exactly where `p` begins. Audio
/// timestamps are put on a sample-accurate grid (AAC frames of 1024 samples) and re-synced only
/// when the source drifts by more than two frames, so FLV's whole-millisecond timestamps do not
/// make audio durations jitter.
class Fmp4Muxer {
 public:
  /// The AVIOContext write callback's body; public only for the version-dependent C thunk.
  static int on_write_for_avio(void* opaque, const uint8_t* data, int size);

  /// Opens a muxer for these tracks (at most one video and one audio) and writes the init segment.
  static Result<std::unique_ptr<Fmp4Muxer>> open(std::span<const TrackConfig> tracks);

  ~Fmp4Muxer();
  Fmp4Muxer(const Fmp4Muxer&) = delete;
  Fmp4Muxer& operator=(const Fmp4Muxer&) = delete;

  /// ftyp+moov.
  const Bytes& init_segment() const { return init_; }

  /// Queues a packet; its track must be one of the configured ones and its dts must increase.
  Status write(const NormalisedPacket& packet);

  /// Emits every sample written so far except each track's held-back newest one as one
  /// moof+mdat. Returns an empty fragment when there was nothing to emit.
  Result<Fragment> cut();

  /// Flushes the held-back packets too (their duration estimated from the previous step) and
  /// returns them as the last fragment (possibly empty): the end of a stream.
  Result<Fragment> drain();

  /// Ends the mp4 output; call drain() first or held-back packets are dropped. The muxer accepts
  /// nothing afterwards. Not done by the destructor, so that its failure can be reported.
  Status finish();

  /// The timing track's held-back packet's dts, if any: where the next fragment will start.
  std::optional<int64_t> next_start() const;
  /// AAC frames left out because the source's audio clock stepped back over time already sent.
  int64_t overlapping_audio_frames() const { return overlapping_audio_frames_; }

 private:
  struct Track;
  Fmp4Muxer();
  Status send(Track& track, const NormalisedPacket& packet, int64_t duration);
  Result<Fragment> emit_fragment();

  struct FormatDeleter {
    void operator()(AVFormatContext* ctx) const;
  };
  struct IoDeleter {
    void operator()(AVIOContext* io) const;
  };

  std::unique_ptr<AVFormatContext, FormatDeleter> format_;
  std::unique_ptr<AVIOContext, IoDeleter> io_;
  std::vector<std::unique_ptr<Track>> tracks_;
  Track* timing_ = nullptr;
  Bytes init_;
  Bytes pending_output_;
  bool finished_ = false;

  // The fragment being built, measured on the timing track.
  bool fragment_has_samples_ = false;
  int64_t fragment_start_ = 0;
  int64_t fragment_first_pts_ = 0;
  int64_t fragment_duration_ = 0;
  bool fragment_independent_ = false;
  int64_t overlapping_audio_frames_ = 0;
};

}  // namespace hawker::media::remux
