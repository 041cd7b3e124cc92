#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "media/hls/packager.h"
#include "media/hls/part.h"
#include "media/packet.h"
#include "media/remux/timestamps.h"

namespace hawker::media::hls {

struct StreamPipelineOptions {
  PackagerOptions packager;
  /// When only one track's configuration is known, the packager opens once this much media
  /// (by the packets' own timestamps) is buffered: a publisher with no audio (or no video) must
  /// not wait forever, and one whose second sequence header comes a little late is not split in
  /// two publish generations.
  int64_t single_track_wait_ms = 1000;
  /// Packets held before the packager opens; the oldest go beyond either bound.
  size_t max_buffered_packets = 1024;
  size_t max_buffered_bytes = 16 * 1024 * 1024;
};

/// A rendition starts a publish generation: its init segment and the msn its parts start at.
struct RenditionOpened {
  std::vector<TrackConfig> tracks;
  Bytes init_segment;
  int64_t first_msn = 0;
  /// Wall clock at media time 0 (EXT-X-PROGRAM-DATE-TIME).
  int64_t origin_wall_ms = 0;
};

/// The rendition's publish generation ended: every part and segment of it was sent before.
struct RenditionClosed {
  PackagerStats stats;
};

/// What a stream's pipeline tells the loop, in order, per rendition. Everything in it is
/// immutable once made, so it crosses threads without copies.
struct RenditionEvent {
  std::string rendition;
  std::variant<std::shared_ptr<const RenditionOpened>, std::shared_ptr<const Part>, SegmentComplete,
               RenditionClosed>
      body;
};

/// What the source rendition's packager did, for a transcoding ladder fed beside it: the same
/// normalised packets, each marked when it starts a source segment, so the ladder's rungs cut at
/// the same times (see docs/transcode.md).
struct SourceTapEvent {
  enum class Kind { kOpened, kPacket, kClosed };
  Kind kind = Kind::kPacket;
  /// kOpened: the source generation's tracks, first msn and wall clock at media time 0.
  std::vector<TrackConfig> tracks;
  int64_t first_msn = 0;
  int64_t origin_wall_ms = 0;
  /// kPacket: the packet as the source's packager got it ...
  remux::NormalisedPacket packet;
  /// ... and whether it starts source segment `msn` (the packager cut before it).
  bool segment_start = false;
  int64_t msn = 0;
};
using SourceTap = std::function<void(SourceTapEvent)>;

/// Counters of one stream's pipeline, for logs and /metrics.
struct StreamPipelineStats {
  int64_t packets_in = 0;
  int64_t dropped_buffer_full = 0;  ///< buffered packets dropped before the packager opened
  int64_t dropped_no_config = 0;    ///< packets of a track whose configuration never came
  int64_t errors = 0;               ///< publishes whose packaging stopped on bad media
};

/// One live stream's media state on its media worker: the timestamp normaliser and the source
/// rendition's packager, across the publishes (and republishes) of one channel. Not thread-safe:
/// it lives on one worker, and the loop only ever posts to it.
///
/// Open rule: the packager opens at the first packet once both a video and an audio
/// configuration are known, or once `single_track_wait_ms` of media is buffered with only one of
/// them. Packets before that are buffered (bounded). A configuration that changes while the
/// packager runs (new SPS, audio added late) ends the generation and starts a new one, so the
/// playlist gets a discontinuity and a new init segment instead of corrupt media.
class StreamPipeline {
 public:
  /// `first_msn`: the media sequence number of the channel's first segment.
  StreamPipeline(std::string channel, StreamPipelineOptions options, int64_t first_msn = 0);
  ~StreamPipeline();
  StreamPipeline(const StreamPipeline&) = delete;
  StreamPipeline& operator=(const StreamPipeline&) = delete;

  /// A publisher starts (first one, back after leaving, or taking over from one that is still
  /// connected): new timeline and configurations. The media sequence continues.
  void begin_publish(std::vector<RenditionEvent>& out);
  void track_config(const TrackConfig& config, std::vector<RenditionEvent>& out);
  /// `arrival_wall_ms`: wall clock when ingest received it; the first packet's becomes the
  /// program-date-time of media time 0.
  void packet(const Packet& packet, int64_t arrival_wall_ms, std::vector<RenditionEvent>& out);
  /// The publisher left: the last part is emitted and the open segment completed.
  void end_publish(std::vector<RenditionEvent>& out);

  /// Receives every source generation's opening, packets and end, on this pipeline's worker.
  void set_tap(SourceTap tap) { tap_ = std::move(tap); }

  /// The msn the next segment will have.
  int64_t next_msn() const { return next_msn_; }
  bool packaging() const { return packager_ != nullptr; }
  const StreamPipelineStats& stats() const { return stats_; }

 private:
  struct Buffered {
    Packet packet;
    int64_t arrival_wall_ms = 0;
  };
  void try_open(std::vector<RenditionEvent>& out);
  void open(std::vector<RenditionEvent>& out);
  void push(const Packet& packet, std::vector<RenditionEvent>& out);
  void close_generation(std::vector<RenditionEvent>& out);
  void forward(std::vector<PackagerEvent>& events, std::vector<RenditionEvent>& out);
  void fail(const Error& error, std::vector<RenditionEvent>& out);
  void tap_closed();
  bool has_config(TrackKind kind) const;

  std::string channel_;
  StreamPipelineOptions options_;
  std::optional<TrackConfig> video_;
  std::optional<TrackConfig> audio_;
  std::deque<Buffered> buffer_;
  size_t buffered_bytes_ = 0;
  std::unique_ptr<remux::TimestampNormaliser> normaliser_;
  std::unique_ptr<Packager> packager_;
  std::vector<TrackConfig> open_tracks_;
  bool failed_ = false;
  int64_t origin_wall_ms_ = 0;
  int64_t next_msn_ = 0;
  StreamPipelineStats stats_;
  std::vector<PackagerEvent> scratch_;
  SourceTap tap_;
};

}  // namespace hawker::media::hls
