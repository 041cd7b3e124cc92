#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/clock.h"
#include "core/loop.h"
#include "core/metrics.h"
#include "core/result.h"
#include "http/exchange.h"
#include "http/response.h"
#include "http/router.h"
#include "media/channel_sink.h"
#include "media/hls/ladder_pipeline.h"
#include "media/hls/packager.h"
#include "media/hls/segment_store.h"
#include "media/hls/stream_pipeline.h"
#include "media/workers.h"

namespace hawker::media::hls {

struct HlsServiceOptions {
  /// Part and segment targets for every channel ...
  PackagerOptions packager;
  /// ... unless the channel has its own.
  std::map<std::string, PackagerOptions> channel_packager;
  /// How long a blocking request is held before 503; 0 means 3 x TARGETDURATION (RFC 8216bis
  /// 6.2.5.2 guidance).
  int64_t hold_timeout_ms = 0;
  /// Held requests beyond this are answered 503 at once, so a flood cannot grow memory.
  size_t max_held_requests = 100'000;
  /// An ended stream's playlist (with EXT-X-ENDLIST) and media stay servable this long, so a
  /// player that is behind can finish; a publish within it continues the same playlist.
  int64_t linger_ms = 60'000;
  StreamPipelineOptions pipeline;
  /// Transcoded renditions beside the source (docs/transcode.md).
  bool transcode = true;
  transcode::LadderConfig ladder;
  /// Channels with their own rungs (none: the source only) instead of `ladder.rungs`.
  std::map<std::string, std::vector<transcode::RungConfig>> channel_rungs;
  /// A rung dropped for not keeping real time is tried again after this much media time.
  int64_t ladder_retry_ms = 60'000;
  /// Source media waiting for the ladder beyond this is left out (the ladder restarts its rungs
  /// at the next segment start and drops its costliest rung).
  int64_t ladder_queue_ms = 2'000;
  /// Threads that run the ladders, apart from the source's media workers; 0 = one per core
  /// beyond the loop's (MediaWorkers::default_count()).
  size_t transcode_workers = 0;
};

/// The LL-HLS side of hawker: receives live channels from ingest (as a ChannelSink, on the loop),
/// packages each on its pinned media worker, keeps every rendition's parts and segments in a
/// SegmentStore on the loop, and serves playlists, init segments, segments and parts from memory
/// under /live/{channel}/ (see docs/llhls.md), holding blocking playlist and preload-hint
/// requests until their part exists.
///
/// Threads: everything here runs on the loop except the StreamPipelines, which only ever run on
/// their worker; their events come back through a Mailbox as immutable shared pointers.
class HlsService final : public ChannelSink {
 public:
  HlsService(Loop& loop, MediaWorkers& workers, Metrics& metrics, HlsServiceOptions options,
             const Clock& clock = SystemClock::instance());
  ~HlsService() override;
  HlsService(const HlsService&) = delete;
  HlsService& operator=(const HlsService&) = delete;

  /// GET /live/{channel}/index.m3u8 and /live/{channel}/{rendition}/{file}.
  Status add_routes(http::Router& router);

  /// Server shutdown: answers every held request (503), stops taking media, stops the media
  /// workers (joined) and releases the loop handles. Idempotent; the destructor calls it.
  void shutdown();

  // media::ChannelSink, called by ingest on the loop.
  void publisher_started(const std::string& channel) override;
  void track_config(const std::string& channel, const TrackConfig& config) override;
  void packet(const std::string& channel, Packet&& packet) override;
  void publisher_left(const std::string& channel) override;
  void stream_ended(const std::string& channel) override;

  /// Refreshes the gauges in /metrics.
  void collect_metrics();

  /// The store of a channel's rendition, or null; for tests and the stream pages.
  const SegmentStore* store(const std::string& channel,
                            std::string_view rendition = kSourceRendition) const;
  /// Transcoded renditions of a channel left out of its multivariant playlist because they
  /// could not keep real time (until they are retried); for the dashboard.
  std::vector<std::string> dropped_renditions(const std::string& channel) const;
  size_t held_requests() const { return held_.size(); }
  size_t channel_count() const { return channels_.size(); }

  /// The packager options a channel gets.
  const PackagerOptions& packager_options(const std::string& channel) const;
  /// The ladder's rungs a channel gets.
  const std::vector<transcode::RungConfig>& rungs(const std::string& channel) const;

 private:
  struct Rendition;
  struct Channel;
  struct HeldRequest {
    std::string channel;
    std::string rendition;
    SegmentStore::WaiterId waiter = 0;
    int64_t deadline_ms = 0;
    http::ExchangePtr exchange;
    /// Builds the answer once the awaited part exists (or the stream ended).
    std::function<http::Response()> answer;
  };

  Channel& channel_for_publish(const std::string& name);
  Channel* find_channel(std::string_view name);
  Rendition& rendition(Channel& channel, const std::string& name);
  /// Runs `work` on the channel's worker; the events it makes are applied on the loop in order.
  /// `received`, when set, is when the packet behind `work` reached the loop: parts it completes
  /// are timed from there into hawker_hls_part_ready_seconds.
  void run_on_worker(Channel& channel,
                     std::function<void(StreamPipeline&, std::vector<RenditionEvent>&)> work,
                     bool end_of_stream = false,
                     std::chrono::steady_clock::time_point received = {});
  void apply(const std::string& name, uint64_t instance, std::vector<RenditionEvent> events,
             bool end_of_stream, std::chrono::steady_clock::time_point received);
  void apply_ladder(const std::string& name, uint64_t instance, LadderOutput output);
  /// Wires the channel's source pipeline to a LadderPipeline on a transcode worker.
  void start_ladder(Channel& channel);
  /// Answers the held requests of one rendition: 503 when its store is about to be replaced,
  /// 404 when it leaves the stream (`gone`), so players switch to another.
  void answer_held(const std::string& channel, const std::string& rendition, bool gone = false);
  void tick();
  void drop_channel(const std::string& name);

  void serve_multivariant(const http::Request& request, const http::ExchangePtr& exchange);
  void serve_rendition_file(const http::Request& request, const http::ExchangePtr& exchange);
  void serve_playlist(Channel& channel, Rendition& rendition, const http::Request& request,
                      const http::ExchangePtr& exchange);
  void serve_part(Channel& channel, Rendition& rendition, int64_t msn, int index,
                  const http::ExchangePtr& exchange);
  void serve_segment(Channel& channel, Rendition& rendition, int64_t msn,
                     const http::ExchangePtr& exchange);
  /// Holds the exchange until (msn, part) is available in the rendition, then answers it.
  void hold(Channel& channel, Rendition& rendition, int64_t msn, int part,
            const http::ExchangePtr& exchange, std::function<http::Response()> answer);
  void release(uint64_t held_id);
  void abandon(uint64_t held_id);
  int64_t hold_timeout_ms(const Channel& channel) const;

  MediaWorkers& workers_;
  HlsServiceOptions options_;
  std::unique_ptr<MediaWorkers> transcode_workers_;
  const Clock& clock_;
  Mailbox mailbox_;
  Timer tick_timer_;
  std::map<std::string, std::unique_ptr<Channel>, std::less<>> channels_;
  uint64_t next_instance_ = 1;
  std::map<uint64_t, HeldRequest> held_;
  uint64_t next_held_ = 1;
  bool shut_down_ = false;

  Family<Gauge>& bytes_held_;
  Family<Counter>& parts_;
  Family<Counter>& segments_;
  Family<Counter>& forced_cuts_;
  Family<Counter>& generations_;
  Gauge& held_gauge_;
  Counter& hold_timeouts_;
  Counter& hold_refused_;
  Counter& store_errors_;
  Histogram& part_ready_;
  Family<Counter>& rungs_dropped_;
};

}  // namespace hawker::media::hls
