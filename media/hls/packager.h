#pragma once

#include <cstdint>
#include <memory>
#include <variant>
#include <vector>

#include "core/result.h"
#include "media/hls/part.h"
#include "media/packet.h"
#include "media/remux/fmp4_muxer.h"
#include "media/remux/timestamps.h"

namespace hawker::media::hls {

/// Cut policy. See docs/llhls.md for why these defaults.
struct PackagerOptions {
  /// PART-TARGET. 250 ms gives a PART-HOLD-BACK of 0.75 s, which bench/latency measured at
  /// 0.83 s glass to glass with no stall; 200 ms (0.6 s) stalled on a busy machine, 334 ms
  /// (1.0 s) stays above a second. See docs/llhls.md.
  int64_t part_target_ms = 250;
  /// A segment closes at the first keyframe once it has lasted this long.
  int64_t segment_target_ms = 1000;
  /// No segment lasts longer: when no keyframe came by then, the segment is cut anyway and the
  /// next one starts without a keyframe. TARGETDURATION is derived from it, so it never changes.
  int64_t max_segment_ms = 4000;

  /// EXT-X-TARGETDURATION: whole seconds, at least every EXTINF.
  int target_duration_s() const { return static_cast<int>((max_segment_ms + 999) / 1000); }
  int64_t part_target_ticks() const { return part_target_ms * remux::kTicksPerMs; }
  Status validate() const;
};

using PackagerEvent = std::variant<std::shared_ptr<const Part>, SegmentComplete>;

/// Counters a stream's page and /metrics show.
struct PackagerStats {
  int64_t parts = 0;
  int64_t segments = 0;
  int64_t forced_cuts = 0;     ///< segments cut without a keyframe (keyframe interval too long)
  int64_t overlong_parts = 0;  ///< single frames longer than the part target (cannot be split)
  int64_t dropped_before_keyframe = 0;
};

/// Turns one stream's normalised packets into parts and segments. Runs on the stream's media
/// worker; the events it returns are immutable and go to the loop's SegmentStore.
///
/// Cuts are decided on the timing track (video, or audio when there is no video) before the
/// packet that would make the current part longer than the part target, so parts never exceed it.
class Packager {
 public:
  /// `first_msn` continues the rendition's media sequence (SegmentStore::next_msn()).
  /// `origin_wall_ms` is the wall clock at media time 0, so that program-date-time follows media
  /// time exactly.
  static Result<std::unique_ptr<Packager>> open(std::span<const TrackConfig> tracks,
                                                PackagerOptions options, int64_t first_msn,
                                                int64_t origin_wall_ms);

  const Bytes& init_segment() const { return muxer_->init_segment(); }
  const PackagerOptions& options() const { return options_; }
  const PackagerStats& stats() const { return stats_; }

  /// Feeds one packet; appends any finished parts and segments to `out`, in order.
  Status push(const remux::NormalisedPacket& packet, std::vector<PackagerEvent>& out);

  /// End of stream: emits the last part and completes the last segment, then ends the muxer.
  Status finish(std::vector<PackagerEvent>& out);

 private:
  Packager(PackagerOptions options, int64_t first_msn, int64_t origin_wall_ms, bool has_video,
           std::unique_ptr<remux::Fmp4Muxer> muxer);
  void emit_part(remux::Fragment fragment, std::vector<PackagerEvent>& out);
  void complete_segment(bool next_forced, std::vector<PackagerEvent>& out);

  PackagerOptions options_;
  int64_t msn_;
  int64_t origin_wall_ms_;
  bool has_video_;
  std::unique_ptr<remux::Fmp4Muxer> muxer_;
  PackagerStats stats_;

  bool started_ = false;
  bool finished_ = false;
  int64_t part_start_ = 0;     ///< 90 kHz, timing track
  int64_t segment_start_ = 0;  ///< 90 kHz
  int64_t last_timing_dts_ = 0;
  int64_t last_step_ = 0;
  int part_index_ = 0;
  int64_t segment_duration_ = 0;
  bool segment_independent_ = false;
  bool warned_long_gop_ = false;
};

}  // namespace hawker::media::hls
