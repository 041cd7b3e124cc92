#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/clock.h"
#include "core/result.h"
#include "media/packet.h"
#include "media/remux/timestamps.h"
#include "media/transcode/pacing.h"

struct AVFrame;
struct AVPacket;

namespace hawker::media::transcode {

/// One rendition below the source.
struct RungConfig {
  int height = 0;           ///< output height; the width follows the source's aspect
  int64_t bitrate_bps = 0;  ///< target video bitrate, also the VBV max rate
  int max_fps = 30;         ///< frames above this rate are dropped; <= 0 for no cap
};

/// What a ladder encodes and how. See docs/transcode.md for why these defaults.
struct LadderConfig {
  /// Highest first. Rungs at or above the source's height are skipped.
  std::vector<RungConfig> rungs = {
      {720, 3'000'000, 30},
      {480, 1'400'000, 30},
      {360, 800'000, 30},
  };
  /// x264 preset, chosen by measurement (bench/transcode).
  std::string preset = "superfast";
  /// x264 threads per rung. zerolatency makes them slice threads, so they add no delay.
  int encoder_threads = 1;
  /// H.264 decoder threads; above 1 they are frame threads, each adding a frame of delay.
  int decoder_threads = 1;
  /// VBV buffer in milliseconds of the rung's bitrate: one LL-HLS part target, so a part is never
  /// much larger than its share of the bitrate and downloads within its own duration.
  int64_t vbv_ms = 334;
  /// Window of media time over which encode time is compared with media time.
  int64_t realtime_window_ms = 4000;
  /// The ladder keeps up while decode + every enabled rung take at most this share of real time
  /// (the rest is head room for the worker's other streams and scheduling jitter).
  double realtime_budget = 0.9;

  Status validate() const;
};

/// A rung as it will be encoded for a given source.
struct RungPlan {
  RungConfig config;
  int width = 0;
  int height = 0;
};

/// The rungs `config` yields for `source_video`: those below the source's height, with even
/// dimensions that keep the source's aspect ratio. Empty when the source is at or below every rung.
std::vector<RungPlan> plan_rungs(const TrackConfig& source_video, const LadderConfig& config);

/// One encoded frame of one rung: AVCC, on the source's 90 kHz timeline.
struct RungPacket {
  size_t rung = 0;
  remux::NormalisedPacket packet;
};

struct RungStats {
  int64_t frames_encoded = 0;
  int64_t frames_dropped_by_cap = 0;  ///< frames above max_fps
  int64_t keyframes = 0;
  int64_t bytes = 0;
  /// Scale + encode wall time per media time over the realtime window.
  double load = 0.0;
};

struct LadderStats {
  int64_t packets_in = 0;
  int64_t frames_decoded = 0;
  int64_t decode_errors = 0;  ///< packets the decoder rejected (the stream goes on)
  int64_t frames_out_of_order = 0;
  double decode_load = 0.0;
  /// Decode + every enabled rung, per media time, over the realtime window.
  double load = 0.0;
};

/// Decodes one H.264 source, scales it once per rung and encodes each rung with libx264 (through
/// libavcodec), for latency: zerolatency, no B-frames, no lookahead, capped-VBR with a part-sized
/// VBV, and keyframes only where forced.
///
/// Alignment: every rung puts an IDR on every source keyframe and on every frame the caller marks
/// (`force_keyframe_here`: where the source's packager cut a segment without a keyframe), at the
/// same pts, so a packager per rung with the source's options cuts segments at the same times as
/// the source's. Output pts are the source frames' pts; dts = pts - the source's composition offset
/// at its first keyframe, so a source with B-frames and its rungs also share keyframe dts.
///
/// Runs on one media worker thread; not thread-safe. Frees every codec object when destroyed.
class Ladder {
 public:
  /// `clock` measures encode time for the realtime check; it must outlive the ladder.
  static Result<std::unique_ptr<Ladder>> open(const TrackConfig& source_video, LadderConfig config,
                                              const Clock& clock = SystemClock::instance());
  ~Ladder();
  Ladder(const Ladder&) = delete;
  Ladder& operator=(const Ladder&) = delete;

  size_t rung_count() const;
  const RungPlan& plan(size_t rung) const;
  /// The rung's track for its packager: avcC from the encoder's global header, dimensions and
  /// profile/constraints/level from its SPS (so codec_string() names the real bitstream).
  const TrackConfig& track(size_t rung) const;

  /// Decodes one source video packet and appends what the rungs encoded to `out` (zerolatency
  /// x264 returns each frame's packet at once; a multi-threaded decoder delays frames). Packets
  /// before the first keyframe are skipped; packets the decoder rejects are counted and skipped.
  Status push(const remux::NormalisedPacket& video, bool force_keyframe_here,
              std::vector<RungPacket>& out);

  /// End of stream: drains the decoder and every encoder into `out`. push() fails afterwards.
  Status finish(std::vector<RungPacket>& out);

  /// Whether decode + the enabled rungs keep real time over the window (true until the window has
  /// filled once).
  bool keeping_up() const;
  /// When the ladder is not keeping up: the enabled rung that costs most, for the caller to drop.
  std::optional<size_t> rung_to_shed() const;
  /// A disabled rung is neither scaled nor encoded. Re-enabled, it resumes at the next source
  /// keyframe or forced cut, with an IDR, so its packager can start a segment there.
  void set_rung_enabled(size_t rung, bool enabled);
  bool rung_enabled(size_t rung) const;

  RungStats rung_stats(size_t rung) const;
  LadderStats stats() const;

 private:
  struct Rung;
  struct Codecs;
  Ladder(LadderConfig config, const Clock& clock);
  Status decode(const AVPacket* packet, std::vector<RungPacket>& out);
  Status on_frame(AVFrame* frame, std::vector<RungPacket>& out);
  Status encode(Rung& rung, const AVFrame* frame, bool chained, int64_t pts, bool idr,
                std::vector<RungPacket>& out);
  Status drain_encoder(Rung& rung, std::vector<RungPacket>& out);

  LadderConfig config_;
  const Clock& clock_;
  std::unique_ptr<Codecs> codecs_;
  std::vector<std::unique_ptr<Rung>> rungs_;
  RealtimeMeter decode_meter_;
  LadderStats stats_;

  bool started_ = false;
  bool finished_ = false;
  int64_t dts_shift_ = 0;  ///< source pts - dts at its first keyframe
  int64_t last_pts_ = 0;
  bool have_last_pts_ = false;
  /// Per source pts still inside the decoder: must be an IDR, follows a discontinuity.
  struct Marks {
    bool idr = false;
    bool discontinuity = false;
  };
  std::map<int64_t, Marks> marks_;
  int64_t decode_ms_pending_ = 0;  ///< decoder wall time not yet matched with a frame
};

}  // namespace hawker::media::transcode
