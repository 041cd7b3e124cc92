#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/clock.h"
#include "media/hls/packager.h"
#include "media/hls/stream_pipeline.h"
#include "media/transcode/ladder.h"

namespace hawker::media::hls {

struct LadderPipelineOptions {
  transcode::LadderConfig ladder;
  /// The source's packager options: the rungs cut by the same rules, on the same keyframes.
  PackagerOptions packager;
  /// A rung dropped for not keeping real time is tried again after this much media time.
  int64_t retry_after_ms = 60'000;
};

/// What a ladder pipeline tells the loop besides its renditions' events.
struct LadderOutput {
  std::vector<RenditionEvent> events;
  /// Renditions dropped now because the machine could not encode them in real time.
  std::vector<std::string> dropped;
  /// Set when the source opens a generation: the renditions of its ladder (none for a source
  /// with no rung below it). Renditions of an earlier ladder that are not here leave the stream.
  std::optional<std::vector<std::string>> rungs;
};

/// The transcoded renditions of one live stream: a transcode::Ladder fed with the source's
/// normalised packets (through StreamPipeline's tap) and one Packager per rung, each muxing the
/// rung's video with the source's AAC track (audio is passed through, not re-encoded). Runs on
/// one transcode worker, never on the source's, so the passthrough never waits for a rung.
///
/// A rung that cannot keep real time (Ladder::rung_to_shed) is dropped: its generation ends and
/// the service removes it from the multivariant playlist. After `retry_after_ms` it is enabled
/// again at the next source segment start, as a new generation starting at that segment's msn.
class LadderPipeline {
 public:
  /// Rendition folder of a rung: its height and "p" ("720p").
  static std::string rendition_name(const transcode::RungPlan& plan);

  LadderPipeline(std::string channel, LadderPipelineOptions options,
                 const Clock& clock = SystemClock::instance());
  ~LadderPipeline();
  LadderPipeline(const LadderPipeline&) = delete;
  LadderPipeline& operator=(const LadderPipeline&) = delete;

  void handle(const SourceTapEvent& event, LadderOutput& out);
  /// Source packets were left out because the ladder fell too far behind (its queue is bounded):
  /// the costliest rung is dropped and the others restart at the next source segment start.
  void input_lost(LadderOutput& out);

  /// Media time (90 kHz pts) of the newest source video packet handled; for the queue bound.
  int64_t last_video_pts() const { return last_video_pts_; }
  size_t rung_count() const { return rungs_.size(); }

 private:
  struct Rung {
    std::string name;
    std::vector<TrackConfig> tracks;
    std::unique_ptr<Packager> packager;
    bool dropped = false;
    int64_t dropped_at = 0;  ///< 90 kHz
    bool restart = false;    ///< open a new generation at the next segment start
  };
  void open(const SourceTapEvent& event, LadderOutput& out);
  void close(LadderOutput& out);
  void packet(const SourceTapEvent& event, LadderOutput& out);
  void start_generation(size_t index, int64_t msn, LadderOutput& out);
  void end_generation(size_t index, LadderOutput& out);
  void drop(size_t index, int64_t pts, const char* why, LadderOutput& out);
  void push(size_t index, const remux::NormalisedPacket& packet, LadderOutput& out);
  void forward(size_t index, std::vector<PackagerEvent>& events, LadderOutput& out);

  std::string channel_;
  LadderPipelineOptions options_;
  const Clock& clock_;
  std::unique_ptr<transcode::Ladder> ladder_;
  std::vector<Rung> rungs_;
  std::optional<TrackConfig> audio_;
  int64_t origin_wall_ms_ = 0;
  int64_t last_video_pts_ = 0;
  std::vector<transcode::RungPacket> encoded_;
  std::vector<PackagerEvent> scratch_;
};

}  // namespace hawker::media::hls
