#include "media/hls/service.h"

#include <algorithm>
#include <atomic>
#include <charconv>
#include <utility>

#include "core/log.h"
#include "media/hls/playlist.h"

namespace hawker::media::hls {
namespace {

constexpr const char* kLog = "hls";
constexpr uint64_t kTickMs = 100;
constexpr const char* kPlaylistType = "application/vnd.apple.mpegurl";
constexpr const char* kInitType = "video/mp4";
constexpr const char* kMediaType = "video/iso.segment";
/// Parts, segments and init segments never change under their URL: media sequence numbers and
/// init generations are never reused (see SegmentStoreOptions::first_msn).
constexpr const char* kImmutable = "public, max-age=31536000, immutable";

template <typename... Fs>
struct Overloaded : Fs... {
  using Fs::operator()...;
};
template <typename... Fs>
Overloaded(Fs...) -> Overloaded<Fs...>;

/// A non-negative decimal integer, digits only.
bool parse_number(std::string_view text, int64_t& out) {
  if (text.empty() || text.size() > 18) {
    return false;
  }
  for (char c : text) {
    if (c < '0' || c > '9') {
      return false;
    }
  }
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && end == text.data() + text.size();
}

bool strip(std::string_view& text, std::string_view prefix, std::string_view suffix) {
  if (text.size() < prefix.size() + suffix.size() || !text.starts_with(prefix) ||
      !text.ends_with(suffix)) {
    return false;
  }
  text = text.substr(prefix.size(), text.size() - prefix.size() - suffix.size());
  return true;
}

/// A rung dropped for not keeping real time, or one the source's resolution no longer calls
/// for: hls.js takes a 404 on a level's playlist or media as a reason to switch level, where a
/// playlist that stopped growing would leave it waiting at the live edge.
constexpr std::string_view kRenditionGone = "this rendition is not being encoded now";

http::Response not_found(std::string_view detail) {
  auto r = http::Response::problem(404, "not-found", "Not Found", detail);
  // Short, so that a CDN does not hold a 404 for a part that is about to exist.
  r.headers.set("Cache-Control", "no-cache");
  return r;
}

http::Response unavailable(std::string_view detail, int retry_after_s) {
  auto r = http::Response::problem(503, "stream-unavailable", "Stream Unavailable", detail);
  r.headers.set("Cache-Control", "no-store");
  r.headers.set("Retry-After", std::to_string(retry_after_s));
  return r;
}

/// Media shared with the store, never copied: an init segment (SharedBytes), or a part or a
/// segment (SharedSealedBytes, which the server sends with sendfile).
template <typename Body>
http::Response media_response(Body bytes, const char* type) {
  http::Response r;
  r.headers.add("Content-Type", type);
  r.headers.add("Cache-Control", kImmutable);
  r.body = std::move(bytes);
  return r;
}

SegmentStoreOptions store_options(const PackagerOptions& packager, int64_t first_msn) {
  SegmentStoreOptions o;
  o.target_duration_s = packager.target_duration_s();
  o.part_target = packager.part_target_ticks();
  o.first_msn = first_msn;
  return o;
}

}  // namespace

struct HlsService::Rendition {
  Rendition(std::string rendition_name, SegmentStoreOptions options)
      : name(std::move(rendition_name)), store(options) {}
  std::string name;
  SegmentStore store;
  std::vector<TrackConfig> tracks;  ///< of the current publish generation
  /// A transcoded rung dropped for not keeping real time: out of the multivariant playlist and
  /// the rendition reports, its URLs answer 404 until it is retried.
  bool dropped = false;
  /// A transcoded rung the source's current resolution does not call for (a republish at a
  /// lower resolution): out of the playlists, its URLs answer 404 so players switch away.
  bool retired = false;
  int max_fps = 0;  ///< a rung's frame-rate cap; 0 for the source
  /// Whether players are offered it: in the multivariant playlist and in the other
  /// renditions' reports.
  bool offered() const { return !tracks.empty() && !dropped && !retired; }
  /// The media playlist as last rendered (index 1: the delta update), with the state of the
  /// channel's renditions it was rendered from (see HlsService::serve_playlist).
  struct Rendered {
    std::vector<uint64_t> key;
    http::SharedText text;
  };
  Rendered rendered[2];
};

/// The bound on a channel's ladder queue. `queued_pts` belongs to the source's worker,
/// `done_pts` is written by the transcode worker.
struct LadderFeed {
  std::atomic<int64_t> done_pts{0};
  int64_t queued_pts = 0;
  bool skipping = false;
};

struct HlsService::Channel {
  enum class State { kLive, kLeft, kEnded };
  std::string name;
  uint64_t instance = 0;
  size_t worker = 0;
  std::shared_ptr<StreamPipeline> pipeline;
  PackagerOptions packager;
  int64_t first_msn = 0;
  std::map<std::string, std::unique_ptr<Rendition>, std::less<>> renditions;
  State state = State::kLive;
  int64_t ended_at_ms = 0;
  size_t ladder_worker = 0;
  std::shared_ptr<LadderPipeline> ladder;
  /// Source frame rate, measured from the video packets' timestamps (milliseconds).
  int64_t video_packets = 0;
  uint32_t first_video_ms = 0;
  uint32_t last_video_ms = 0;
  double frame_rate() const {
    const int64_t span = static_cast<int32_t>(last_video_ms - first_video_ms);
    return video_packets > 1 && span > 0
               ? 1000.0 * static_cast<double>(video_packets - 1) / static_cast<double>(span)
               : 0.0;
  }
};

HlsService::HlsService(Loop& loop, MediaWorkers& workers, Metrics& metrics,
                       HlsServiceOptions options, const Clock& clock)
    : workers_(workers),
      options_(std::move(options)),
      clock_(clock),
      mailbox_(loop),
      tick_timer_(loop),
      bytes_held_(metrics.gauge("hawker_hls_bytes_held",
                                "Bytes of LL-HLS media held in memory (init segments, parts, "
                                "segments)",
                                {"channel"})),
      parts_(metrics.counter("hawker_hls_parts_total", "LL-HLS parts packaged", {"channel"})),
      segments_(
          metrics.counter("hawker_hls_segments_total", "LL-HLS segments completed", {"channel"})),
      forced_cuts_(metrics.counter("hawker_hls_forced_cuts_total",
                                   "Segments cut without a keyframe because the encoder's keyframe "
                                   "interval is longer than the maximum segment",
                                   {"channel"})),
      generations_(metrics.counter("hawker_hls_publish_generations_total",
                                   "Init segments started (publishes, republishes, codec changes)",
                                   {"channel"})),
      held_gauge_(metrics
                      .gauge("hawker_hls_blocking_requests_held",
                             "Playlist and part requests waiting for a part to exist")
                      .with({})),
      hold_timeouts_(metrics
                         .counter("hawker_hls_blocking_timeouts_total",
                                  "Held requests answered 503 because their part did not come in "
                                  "time")
                         .with({})),
      hold_refused_(metrics
                        .counter("hawker_hls_blocking_refused_total",
                                 "Requests answered 503 because too many were held")
                        .with({})),
      store_errors_(metrics
                        .counter("hawker_hls_store_errors_total",
                                 "Parts or segments the store refused (out of order)")
                        .with({})),
      part_ready_(metrics
                      .histogram("hawker_hls_part_ready_seconds",
                                 "From the packet that completes a part reaching the loop to the "
                                 "part being servable from the store",
                                 {}, {0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1})
                      .with({})),
      rungs_dropped_(metrics.counter("hawker_transcode_rung_dropped_total",
                                     "Transcoded renditions dropped because they could not be "
                                     "encoded in real time (retried later)",
                                     {"channel", "rendition"})) {
  if (options_.transcode) {
    transcode_workers_ = std::make_unique<MediaWorkers>(options_.transcode_workers > 0
                                                            ? options_.transcode_workers
                                                            : MediaWorkers::default_count());
  }
  tick_timer_.start(kTickMs, kTickMs, [this] { tick(); });
}

HlsService::~HlsService() { shutdown(); }

void HlsService::shutdown() {
  if (shut_down_) {
    return;
  }
  shut_down_ = true;
  tick_timer_.stop();
  auto held = std::exchange(held_, {});
  for (auto& [id, request] : held) {
    request.exchange->on_abort(nullptr);
    request.exchange->respond(unavailable("the server is shutting down", 5));
  }
  held_gauge_.set(0);
  // The pipelines die on their workers as the queued work drains; after this no thread can
  // touch the mailbox.
  for (auto& [name, channel] : channels_) {
    workers_.post(channel->worker,
                  [pipeline = std::move(channel->pipeline)]() mutable { pipeline.reset(); });
    if (channel->ladder != nullptr) {
      transcode_workers_->post(channel->ladder_worker,
                               [ladder = std::move(channel->ladder)]() mutable { ladder.reset(); });
    }
  }
  // The source workers post to the transcode workers, so they stop first.
  workers_.stop();
  if (transcode_workers_ != nullptr) {
    transcode_workers_->stop();
  }
  mailbox_.close();
}

const PackagerOptions& HlsService::packager_options(const std::string& channel) const {
  auto it = options_.channel_packager.find(channel);
  return it == options_.channel_packager.end() ? options_.packager : it->second;
}

HlsService::Channel* HlsService::find_channel(std::string_view name) {
  auto it = channels_.find(name);
  return it == channels_.end() ? nullptr : it->second.get();
}

const SegmentStore* HlsService::store(const std::string& channel,
                                      std::string_view rendition) const {
  auto it = channels_.find(channel);
  if (it == channels_.end()) {
    return nullptr;
  }
  auto r = it->second->renditions.find(rendition);
  return r == it->second->renditions.end() ? nullptr : &r->second->store;
}

const std::vector<transcode::RungConfig>& HlsService::rungs(const std::string& channel) const {
  auto it = options_.channel_rungs.find(channel);
  return it != options_.channel_rungs.end() ? it->second : options_.ladder.rungs;
}

std::vector<std::string> HlsService::dropped_renditions(const std::string& channel) const {
  std::vector<std::string> out;
  auto it = channels_.find(channel);
  if (it != channels_.end()) {
    for (const auto& [name, r] : it->second->renditions) {
      if (r->dropped) {
        out.push_back(name);
      }
    }
  }
  return out;
}

HlsService::Rendition& HlsService::rendition(Channel& channel, const std::string& name) {
  auto it = channel.renditions.find(name);
  if (it != channel.renditions.end()) {
    return *it->second;
  }
  auto created =
      std::make_unique<Rendition>(name, store_options(channel.packager, channel.first_msn));
  Rendition& r = *created;
  channel.renditions.emplace(name, std::move(created));
  return r;
}

HlsService::Channel& HlsService::channel_for_publish(const std::string& name) {
  if (Channel* existing = find_channel(name)) {
    return *existing;
  }
  auto channel = std::make_unique<Channel>();
  channel->name = name;
  channel->instance = next_instance_++;
  channel->worker = workers_.pick();
  channel->packager = packager_options(name);
  // Numbers never used before on this channel's URLs, even across restarts (segments last a
  // second or more, so msn grows no faster than the clock).
  channel->first_msn = clock_.wall_ms() / 1000;
  StreamPipelineOptions pipeline = options_.pipeline;
  pipeline.packager = channel->packager;
  channel->pipeline = std::make_shared<StreamPipeline>(name, pipeline, channel->first_msn);
  Channel& c = *channel;
  rendition(c, std::string(kSourceRendition));
  if (transcode_workers_ != nullptr && !rungs(name).empty()) {
    start_ladder(c);
  }
  channels_.emplace(name, std::move(channel));
  return c;
}

void HlsService::start_ladder(Channel& channel) {
  LadderPipelineOptions options;
  options.ladder = options_.ladder;
  options.ladder.rungs = rungs(channel.name);
  // The rate control's buffer is one part of the channel's own targets (docs/transcode.md).
  options.ladder.vbv_ms = channel.packager.part_target_ms;
  options.packager = channel.packager;
  options.retry_after_ms = options_.ladder_retry_ms;
  channel.ladder_worker = transcode_workers_->pick();
  channel.ladder = std::make_shared<LadderPipeline>(channel.name, std::move(options), clock_);
  auto feed = std::make_shared<LadderFeed>();
  const int64_t bound = options_.ladder_queue_ms * remux::kTicksPerMs;
  // Runs on the source's worker: it only posts, so the source never waits for the ladder.
  auto post = [this, worker = channel.ladder_worker, ladder = channel.ladder, feed,
               name = channel.name, instance = channel.instance](
                  std::function<void(LadderPipeline&, LadderOutput&)> work) {
    transcode_workers_->post(worker, [this, ladder, feed, name, instance, work = std::move(work)] {
      LadderOutput output;
      work(*ladder, output);
      feed->done_pts.store(ladder->last_video_pts(), std::memory_order_relaxed);
      if (output.events.empty() && output.dropped.empty() && !output.rungs) {
        return;
      }
      mailbox_.post([this, name, instance, output = std::move(output)]() mutable {
        apply_ladder(name, instance, std::move(output));
      });
    });
  };
  channel.pipeline->set_tap([feed, bound, post](SourceTapEvent event) {
    if (event.kind == SourceTapEvent::Kind::kPacket && event.packet.kind == TrackKind::kVideo) {
      if (feed->skipping && !event.packet.keyframe) {
        return;
      }
      feed->skipping = false;
      if (event.packet.pts - feed->done_pts.load(std::memory_order_relaxed) > bound) {
        // The decoder needs a keyframe to start again: leave out everything up to one.
        feed->skipping = !event.packet.keyframe;
        post([](LadderPipeline& ladder, LadderOutput& out) { ladder.input_lost(out); });
        if (feed->skipping) {
          return;
        }
      }
      feed->queued_pts = event.packet.pts;
    } else if (event.kind != SourceTapEvent::Kind::kPacket) {
      feed->skipping = false;
    }
    post([event = std::move(event)](LadderPipeline& ladder, LadderOutput& out) {
      ladder.handle(event, out);
    });
  });
}

void HlsService::apply_ladder(const std::string& name, uint64_t instance, LadderOutput output) {
  Channel* channel = find_channel(name);
  if (channel == nullptr || channel->instance != instance) {
    return;
  }
  for (const std::string& dropped : output.dropped) {
    Rendition& r = rendition(*channel, dropped);
    r.dropped = true;
    answer_held(name, dropped, true);
    rungs_dropped_.with({name, dropped}).inc();
    log::warn(kLog, "channel={} rendition={} left out of the multivariant playlist", name, dropped);
  }
  apply(name, instance, std::move(output.events), false, {});
  if (output.rungs) {
    for (auto& [rn, r] : channel->renditions) {
      if (rn == kSourceRendition || r->retired ||
          std::find(output.rungs->begin(), output.rungs->end(), rn) != output.rungs->end()) {
        continue;
      }
      answer_held(name, rn, true);
      r->retired = true;
      r->dropped = false;
      log::info(kLog, "channel={} rendition={} is not in the new source's ladder: retired", name,
                rn);
    }
  }
}

void HlsService::answer_held(const std::string& channel, const std::string& rendition, bool gone) {
  std::vector<uint64_t> ids;
  for (const auto& [id, request] : held_) {
    if (request.channel == channel && request.rendition == rendition) {
      ids.push_back(id);
    }
  }
  for (uint64_t id : ids) {
    HeldRequest request = std::move(held_[id]);
    held_.erase(id);
    request.exchange->on_abort(nullptr);
    request.exchange->respond(gone ? not_found(kRenditionGone)
                                   : unavailable("the rendition restarted", 1));
  }
  held_gauge_.set(static_cast<double>(held_.size()));
}

void HlsService::run_on_worker(
    Channel& channel, std::function<void(StreamPipeline&, std::vector<RenditionEvent>&)> work,
    bool end_of_stream, std::chrono::steady_clock::time_point received) {
  if (shut_down_ || channel.pipeline == nullptr) {
    return;
  }
  workers_.post(channel.worker,
                [this, pipeline = channel.pipeline, name = channel.name,
                 instance = channel.instance, work = std::move(work), end_of_stream, received] {
                  std::vector<RenditionEvent> events;
                  work(*pipeline, events);
                  if (events.empty() && !end_of_stream) {
                    return;
                  }
                  mailbox_.post([this, name, instance, events = std::move(events), end_of_stream,
                                 received]() mutable {
                    apply(name, instance, std::move(events), end_of_stream, received);
                  });
                });
}

void HlsService::publisher_started(const std::string& name) {
  if (shut_down_) {
    return;
  }
  Channel& channel = channel_for_publish(name);
  channel.state = Channel::State::kLive;
  channel.video_packets = 0;
  run_on_worker(channel,
                [](StreamPipeline& p, std::vector<RenditionEvent>& out) { p.begin_publish(out); });
}

void HlsService::track_config(const std::string& name, const TrackConfig& config) {
  Channel* channel = find_channel(name);
  if (channel == nullptr) {
    return;
  }
  run_on_worker(*channel, [config](StreamPipeline& p, std::vector<RenditionEvent>& out) {
    p.track_config(config, out);
  });
}

void HlsService::packet(const std::string& name, Packet&& packet) {
  Channel* channel = find_channel(name);
  if (channel == nullptr) {
    return;
  }
  if (packet.kind == TrackKind::kVideo) {
    if (channel->video_packets == 0) {
      channel->first_video_ms = packet.timestamp_ms;
    }
    ++channel->video_packets;
    channel->last_video_ms = packet.timestamp_ms;
  }
  // std::chrono rather than clock_: the part-ready figure needs sub-millisecond resolution and
  // is only observed, never acted on.
  run_on_worker(
      *channel,
      [packet = std::move(packet), wall = clock_.wall_ms()](
          StreamPipeline& p, std::vector<RenditionEvent>& out) { p.packet(packet, wall, out); },
      false, std::chrono::steady_clock::now());
}

void HlsService::publisher_left(const std::string& name) {
  Channel* channel = find_channel(name);
  if (channel == nullptr) {
    return;
  }
  channel->state = Channel::State::kLeft;
  run_on_worker(*channel,
                [](StreamPipeline& p, std::vector<RenditionEvent>& out) { p.end_publish(out); });
}

void HlsService::stream_ended(const std::string& name) {
  Channel* channel = find_channel(name);
  if (channel == nullptr) {
    return;
  }
  channel->state = Channel::State::kEnded;
  channel->ended_at_ms = clock_.steady_ms();
  run_on_worker(
      *channel, [](StreamPipeline& p, std::vector<RenditionEvent>& out) { p.end_publish(out); },
      true);
}

void HlsService::apply(const std::string& name, uint64_t instance,
                       std::vector<RenditionEvent> events, bool end_of_stream,
                       std::chrono::steady_clock::time_point received) {
  Channel* channel = find_channel(name);
  if (channel == nullptr || channel->instance != instance) {
    return;  // the channel was dropped (and maybe started again) since
  }
  for (RenditionEvent& event : events) {
    if (auto* opened = std::get_if<std::shared_ptr<const RenditionOpened>>(&event.body);
        opened != nullptr && event.rendition != kSourceRendition) {
      auto it = channel->renditions.find(event.rendition);
      if (it == channel->renditions.end() || (*opened)->first_msn != it->second->store.next_msn()) {
        // A rung starts at the source's current msn. One that was dropped (or lost frames)
        // restarts there in a fresh store, since a store's media sequence has no gaps, and
        // continues the old store's init generations: init, part and segment URLs are cached
        // as immutable, so none may come to name other bytes.
        SegmentStoreOptions fresh = store_options(channel->packager, (*opened)->first_msn);
        if (it != channel->renditions.end()) {
          fresh.first_generation = it->second->store.generation() + 1;
          answer_held(name, event.rendition);
          channel->renditions.erase(it);
        }
        channel->renditions.emplace(event.rendition,
                                    std::make_unique<Rendition>(event.rendition, fresh));
      }
      Rendition& r = rendition(*channel, event.rendition);
      r.dropped = false;
      r.retired = false;
      for (const transcode::RungConfig& rung : rungs(name)) {
        if (fmt::format("{}p", rung.height) == event.rendition) {
          r.max_fps = rung.max_fps;
        }
      }
    }
    Rendition& r = rendition(*channel, event.rendition);
    std::visit(
        Overloaded{
            [&](const std::shared_ptr<const RenditionOpened>& opened) {
              if (opened->first_msn != r.store.next_msn()) {
                log::warn(kLog, "channel={} rendition={} starts at msn {}, store expects {}", name,
                          r.name, opened->first_msn, r.store.next_msn());
              }
              r.tracks = opened->tracks;
              r.store.begin_stream(opened->init_segment);
              generations_.with({name}).inc();
            },
            [&](const std::shared_ptr<const Part>& part) {
              if (auto s = r.store.append_part(part); !s) {
                store_errors_.inc();
                log::warn(kLog, "channel={} rendition={} {}", name, r.name, s.error().message);
                return;
              }
              parts_.with({name}).inc();
              if (received != std::chrono::steady_clock::time_point{}) {
                part_ready_.observe(
                    std::chrono::duration<double>(std::chrono::steady_clock::now() - received)
                        .count());
              }
            },
            [&](const SegmentComplete& complete) {
              if (auto s = r.store.complete_segment(complete.msn); !s) {
                store_errors_.inc();
                log::warn(kLog, "channel={} rendition={} {}", name, r.name, s.error().message);
                return;
              }
              segments_.with({name}).inc();
              if (complete.forced_cut) {
                forced_cuts_.with({name}).inc();
              }
            },
            [&](const RenditionClosed& closed) {
              r.store.end_stream(false);
              log::info(kLog,
                        "channel={} rendition={} publish ended: {} parts, {} segments, {} forced "
                        "cuts",
                        name, r.name, closed.stats.parts, closed.stats.segments,
                        closed.stats.forced_cuts);
            },
        },
        event.body);
  }
  // A publisher that came back after the stream was declared over keeps the playlist going.
  if (end_of_stream && channel->state == Channel::State::kEnded) {
    for (auto& [rendition_name, r] : channel->renditions) {
      r->store.end_stream(true);
    }
  }
  size_t bytes = 0;
  for (const auto& [rendition_name, r] : channel->renditions) {
    bytes += r->store.bytes_held();
  }
  bytes_held_.with({name}).set(static_cast<double>(bytes));
}

void HlsService::tick() {
  const int64_t now = clock_.steady_ms();
  std::vector<uint64_t> expired;
  for (const auto& [id, request] : held_) {
    if (request.deadline_ms <= now) {
      expired.push_back(id);
    }
  }
  for (uint64_t id : expired) {
    auto it = held_.find(id);
    if (it == held_.end()) {
      continue;
    }
    HeldRequest request = std::move(it->second);
    held_.erase(it);
    if (Channel* channel = find_channel(request.channel)) {
      auto r = channel->renditions.find(request.rendition);
      if (r != channel->renditions.end()) {
        r->second->store.cancel(request.waiter);
      }
    }
    hold_timeouts_.inc();
    request.exchange->on_abort(nullptr);
    request.exchange->respond(
        unavailable("the requested part did not become available in time", 1));
  }
  held_gauge_.set(static_cast<double>(held_.size()));

  std::vector<std::string> over;
  for (const auto& [name, channel] : channels_) {
    if (channel->state == Channel::State::kEnded &&
        now - channel->ended_at_ms >= options_.linger_ms) {
      over.push_back(name);
    }
  }
  for (const auto& name : over) {
    drop_channel(name);
  }
}

void HlsService::drop_channel(const std::string& name) {
  auto it = channels_.find(name);
  if (it == channels_.end()) {
    return;
  }
  Channel& channel = *it->second;
  std::vector<uint64_t> orphans;
  for (const auto& [id, request] : held_) {
    if (request.channel == name) {
      orphans.push_back(id);
    }
  }
  for (uint64_t id : orphans) {
    HeldRequest request = std::move(held_[id]);
    held_.erase(id);
    request.exchange->on_abort(nullptr);
    request.exchange->respond(not_found("the stream is over"));
  }
  // libav state is freed on the worker that owns it, after whatever is still queued there.
  workers_.post(channel.worker,
                [pipeline = std::move(channel.pipeline)]() mutable { pipeline.reset(); });
  workers_.release(channel.worker);
  if (channel.ladder != nullptr) {
    transcode_workers_->post(channel.ladder_worker,
                             [ladder = std::move(channel.ladder)]() mutable { ladder.reset(); });
    transcode_workers_->release(channel.ladder_worker);
  }
  bytes_held_.with({name}).set(0);
  log::info(kLog, "channel={} dropped from memory", name);
  channels_.erase(it);
}

int64_t HlsService::hold_timeout_ms(const Channel& channel) const {
  if (options_.hold_timeout_ms > 0) {
    return options_.hold_timeout_ms;
  }
  return 3 * 1000 * static_cast<int64_t>(channel.packager.target_duration_s());
}

// HTTP ---------------------------------------------------------------------------------------

Status HlsService::add_routes(http::Router& router) {
  HAWKER_TRY_STATUS(router.add("GET", "/live/{channel}/index.m3u8",
                               [this](const http::Request& req, http::ExchangePtr ex) {
                                 serve_multivariant(req, ex);
                               }),
                    "route /live/{channel}/index.m3u8");
  HAWKER_TRY_STATUS(router.add("GET", "/live/{channel}/{rendition}/{file}",
                               [this](const http::Request& req, http::ExchangePtr ex) {
                                 serve_rendition_file(req, ex);
                               }),
                    "route /live/{channel}/{rendition}/{file}");
  return ok_status();
}

void HlsService::serve_multivariant(const http::Request& request,
                                    const http::ExchangePtr& exchange) {
  Channel* channel = find_channel(request.param("channel"));
  if (channel == nullptr) {
    exchange->respond(not_found("no live stream on this channel"));
    return;
  }
  std::vector<Variant> variants;
  const double source_fps = channel->frame_rate();
  for (const auto& [name, r] : channel->renditions) {
    if (!r->offered()) {
      continue;
    }
    Variant variant;
    variant.name = name;
    variant.tracks = r->tracks;
    variant.frame_rate =
        r->max_fps > 0 ? std::min(source_fps, static_cast<double>(r->max_fps)) : source_fps;
    // Bit rates measured on the segments in memory: peak over single segments, average over all.
    MediaPlaylist playlist = r->store.playlist();
    int64_t total_bytes = 0;
    int64_t total_ticks = 0;
    int64_t peak = 0;
    for (const PlaylistSegment& segment : playlist.segments) {
      if (!segment.complete || segment.duration <= 0) {
        continue;
      }
      SharedSealedBytes bytes = r->store.find_segment(segment.msn);
      if (bytes == nullptr) {
        continue;
      }
      const int64_t size = static_cast<int64_t>(bytes->size());
      total_bytes += size;
      total_ticks += segment.duration;
      peak = std::max(peak, size * 8 * remux::kTimebase / segment.duration);
    }
    if (total_ticks > 0) {
      variant.average_bandwidth = total_bytes * 8 * remux::kTimebase / total_ticks;
      variant.bandwidth = std::max(peak, variant.average_bandwidth);
    } else {
      // No whole segment yet: a figure players treat as "one rendition, play it".
      variant.bandwidth = 2'000'000;
    }
    variants.push_back(std::move(variant));
  }
  if (variants.empty()) {
    exchange->respond(unavailable("the stream is starting: no media yet", 1));
    return;
  }
  auto r = http::Response::text(200, write_multivariant_playlist(variants), kPlaylistType);
  r.headers.set("Cache-Control", "public, max-age=2");
  exchange->respond(std::move(r));
}

void HlsService::serve_rendition_file(const http::Request& request,
                                      const http::ExchangePtr& exchange) {
  Channel* channel = find_channel(request.param("channel"));
  if (channel == nullptr) {
    exchange->respond(not_found("no live stream on this channel"));
    return;
  }
  auto rit = channel->renditions.find(request.param("rendition"));
  if (rit == channel->renditions.end()) {
    exchange->respond(not_found("no such rendition"));
    return;
  }
  if (rit->second->retired || rit->second->dropped) {
    exchange->respond(not_found(kRenditionGone));
    return;
  }
  Rendition& r = *rit->second;
  std::string_view file = request.param("file");
  if (file == "playlist.m3u8") {
    serve_playlist(*channel, r, request, exchange);
    return;
  }
  int64_t a = 0;
  int64_t b = 0;
  std::string_view rest = file;
  if (strip(rest, "init", ".mp4") && parse_number(rest, a)) {
    SharedBytes init = a <= 1'000'000 ? r.store.find_init(static_cast<int>(a)) : nullptr;
    exchange->respond(init ? media_response(std::move(init), kInitType)
                           : not_found("no such init segment"));
    return;
  }
  rest = file;
  if (strip(rest, "seg", ".m4s") && parse_number(rest, a)) {
    serve_segment(*channel, r, a, exchange);
    return;
  }
  rest = file;
  if (strip(rest, "part", ".m4s")) {
    size_t dot = rest.find('.');
    if (dot != std::string_view::npos && parse_number(rest.substr(0, dot), a) &&
        parse_number(rest.substr(dot + 1), b) && b < 100'000) {
      serve_part(*channel, r, a, static_cast<int>(b), exchange);
      return;
    }
  }
  exchange->respond(not_found("no such file in a rendition"));
}

void HlsService::serve_playlist(Channel& channel, Rendition& r, const http::Request& request,
                                const http::ExchangePtr& exchange) {
  if (r.tracks.empty()) {
    exchange->respond(unavailable("the stream is starting: no media yet", 1));
    return;
  }
  std::optional<std::string> msn = request.query("_HLS_msn");
  std::optional<std::string> part = request.query("_HLS_part");
  std::optional<std::string> skip = request.query("_HLS_skip");
  BlockingQuery query;
  if (msn) {
    query.msn = *msn;
  }
  if (part) {
    query.part = *part;
  }
  if (skip) {
    query.skip = *skip;
  }
  BlockingDecision decision = decide_blocking_request(query, r.store.position());
  if (decision.action == BlockingDecision::Action::kBadRequest) {
    auto bad = http::Response::problem(400, "bad-playlist-request", "Bad Playlist Request",
                                       decision.error);
    bad.headers.set("Cache-Control", "no-store");
    exchange->respond(std::move(bad));
    return;
  }
  const bool blocking = msn.has_value();
  const int max_age = channel.packager.target_duration_s();
  auto answer = [this, name = channel.name, rendition = r.name, delta = decision.delta_update,
                 blocking, max_age]() -> http::Response {
    Channel* c = find_channel(name);
    auto self = c != nullptr ? c->renditions.find(rendition) : decltype(c->renditions.end()){};
    if (c == nullptr || self == c->renditions.end()) {
      return not_found("the stream is over");
    }
    // Every request held for a part is answered the moment it exists, thousands at once, with the
    // same playlist: it is rendered once for each state of the channel's renditions (their
    // stores, and which of them the rendition reports name) and shared.
    std::vector<uint64_t> key;
    key.reserve(c->renditions.size());
    for (const auto& [other_name, other] : c->renditions) {
      key.push_back(other->store.version() * 2 + (other->offered() ? 1 : 0));
    }
    Rendition::Rendered& rendered = self->second->rendered[delta ? 1 : 0];
    if (rendered.text == nullptr || rendered.key != key) {
      std::vector<RenditionReport> reports;
      for (const auto& [other_name, other] : c->renditions) {
        const PlaylistPosition position = other->store.position();
        if (other_name == rendition || !other->offered() || position.last_msn < 0) {
          continue;
        }
        reports.push_back(RenditionReport{other_name, position.last_msn, position.last_part});
      }
      rendered.key = std::move(key);
      rendered.text = std::make_shared<const std::string>(
          write_media_playlist(self->second->store.playlist(std::move(reports)), delta));
    }
    auto response = http::Response::shared_text(200, rendered.text, kPlaylistType);
    // A blocking response names a part that exists for good, so a cache may keep it a while; a
    // plain reload must see the newest playlist.
    response.headers.set("Cache-Control", blocking ? fmt::format("public, max-age={}", max_age)
                                                   : std::string("public, max-age=1"));
    return response;
  };
  if (decision.action == BlockingDecision::Action::kAnswerNow) {
    exchange->respond(answer());
    return;
  }
  hold(channel, r, decision.msn, decision.part, exchange, std::move(answer));
}

void HlsService::serve_part(Channel& channel, Rendition& r, int64_t msn, int index,
                            const http::ExchangePtr& exchange) {
  // The common case first, and without building the deferred answer below.
  if (std::shared_ptr<const Part> part = r.store.find_part(msn, index)) {
    exchange->respond(media_response(part->bytes, kMediaType));
    return;
  }
  auto answer = [this, name = channel.name, rendition = r.name, msn, index]() {
    const SegmentStore* store = this->store(name, rendition);
    std::shared_ptr<const Part> part = store ? store->find_part(msn, index) : nullptr;
    if (part == nullptr) {
      return not_found("no such part (it left the window, or its segment ended before it)");
    }
    return media_response(part->bytes, kMediaType);
  };
  // The preload-hinted part (or one just after it) is held until it exists, as the spec asks
  // for EXT-X-PRELOAD-HINT resources; anything older is gone.
  const PlaylistPosition position = r.store.position();
  if (!is_available(position, msn, index) && msn >= position.last_msn &&
      msn <= position.last_msn + 1 && channel.state != Channel::State::kEnded) {
    hold(channel, r, msn, index, exchange, std::move(answer));
    return;
  }
  exchange->respond(answer());
}

void HlsService::serve_segment(Channel& channel, Rendition& r, int64_t msn,
                               const http::ExchangePtr& exchange) {
  if (SharedSealedBytes bytes = r.store.find_segment(msn)) {
    exchange->respond(media_response(std::move(bytes), kMediaType));
    return;
  }
  auto answer = [this, name = channel.name, rendition = r.name, msn]() {
    const SegmentStore* store = this->store(name, rendition);
    SharedSealedBytes bytes = store ? store->find_segment(msn) : nullptr;
    if (bytes == nullptr) {
      return not_found("no such segment (it left the window)");
    }
    return media_response(std::move(bytes), kMediaType);
  };
  const PlaylistPosition position = r.store.position();
  if (!is_available(position, msn, -1) && msn >= position.last_msn &&
      msn <= position.last_msn + 1 && channel.state != Channel::State::kEnded) {
    hold(channel, r, msn, -1, exchange, std::move(answer));
    return;
  }
  exchange->respond(answer());
}

void HlsService::hold(Channel& channel, Rendition& r, int64_t msn, int part,
                      const http::ExchangePtr& exchange, std::function<http::Response()> answer) {
  if (shut_down_) {
    exchange->respond(unavailable("the server is shutting down", 5));
    return;
  }
  if (held_.size() >= options_.max_held_requests) {
    hold_refused_.inc();
    exchange->respond(unavailable("too many requests waiting for parts", 1));
    return;
  }
  const uint64_t id = next_held_++;
  held_.emplace(id,
                HeldRequest{channel.name, r.name, 0, clock_.steady_ms() + hold_timeout_ms(channel),
                            exchange, std::move(answer)});
  exchange->on_abort([this, id] { abandon(id); });
  // wait_for may call back at once (the stream ended meanwhile): release() then finds the
  // request and answers it before this returns.
  SegmentStore::WaiterId waiter = r.store.wait_for(msn, part, [this, id] { release(id); });
  auto it = held_.find(id);
  if (it != held_.end()) {
    it->second.waiter = waiter;
  }
  held_gauge_.set(static_cast<double>(held_.size()));
}

void HlsService::release(uint64_t held_id) {
  auto it = held_.find(held_id);
  if (it == held_.end()) {
    return;
  }
  HeldRequest request = std::move(it->second);
  held_.erase(it);
  held_gauge_.set(static_cast<double>(held_.size()));
  request.exchange->on_abort(nullptr);
  request.exchange->respond(request.answer());
}

void HlsService::abandon(uint64_t held_id) {
  auto it = held_.find(held_id);
  if (it == held_.end()) {
    return;
  }
  if (Channel* channel = find_channel(it->second.channel)) {
    auto r = channel->renditions.find(it->second.rendition);
    if (r != channel->renditions.end()) {
      r->second->store.cancel(it->second.waiter);
    }
  }
  held_.erase(it);
  held_gauge_.set(static_cast<double>(held_.size()));
}

void HlsService::collect_metrics() { held_gauge_.set(static_cast<double>(held_.size())); }

}  // namespace hawker::media::hls
