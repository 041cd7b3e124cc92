#include "media/hls/service.h"

#include <doctest/doctest.h>

#include <atomic>
#include <functional>
#include <string>

#include "core/clock.h"
#include "core/loop.h"
#include "core/metrics.h"
#include "http/router.h"
#include "media/hls/playlist_validator.h"
#include "media/hls/stream_pipeline.h"
#include "media/workers.h"
#include "test/unit/hls/media_fixture.h"

namespace hawker::media::hls {
namespace {

constexpr int64_t kWall = 1'700'000'000'000;

// Applies a pipeline's events to a store, the way the service does on the loop.
void apply_events(const std::vector<RenditionEvent>& events, SegmentStore& store) {
  for (const RenditionEvent& event : events) {
    CHECK(event.rendition == kSourceRendition);
    if (auto* opened = std::get_if<std::shared_ptr<const RenditionOpened>>(&event.body)) {
      CHECK((*opened)->first_msn == store.next_msn());
      store.begin_stream((*opened)->init_segment);
    } else if (auto* part = std::get_if<std::shared_ptr<const Part>>(&event.body)) {
      REQUIRE(store.append_part(*part));
    } else if (auto* complete = std::get_if<SegmentComplete>(&event.body)) {
      REQUIRE(store.complete_segment(complete->msn));
    } else {
      store.end_stream(false);
    }
  }
}

const RenditionOpened* first_opened(const std::vector<RenditionEvent>& events) {
  for (const RenditionEvent& event : events) {
    if (auto* opened = std::get_if<std::shared_ptr<const RenditionOpened>>(&event.body)) {
      return opened->get();
    }
  }
  return nullptr;
}

size_t count_closed(const std::vector<RenditionEvent>& events) {
  size_t n = 0;
  for (const RenditionEvent& event : events) {
    n += std::holds_alternative<RenditionClosed>(event.body) ? 1 : 0;
  }
  return n;
}

void publish(StreamPipeline& pipeline, const test::EncodedStream& stream, int64_t wall,
             std::vector<RenditionEvent>& out) {
  pipeline.begin_publish(out);
  for (const TrackConfig& track : stream.tracks) {
    pipeline.track_config(track, out);
  }
  for (const Packet& packet : stream.packets) {
    pipeline.packet(packet, wall + packet.timestamp_ms, out);
  }
  pipeline.end_publish(out);
}

TEST_CASE("stream pipeline: a republish continues the msn with a discontinuity and new init") {
  const auto& stream = test::encoded_stream(4, 30);
  REQUIRE_MESSAGE(stream.error.empty(), stream.error);
  SegmentStoreOptions store_options;
  store_options.first_msn = 500;
  SegmentStore store(store_options);
  StreamPipeline pipeline("shop", {}, 500);

  std::vector<RenditionEvent> first;
  publish(pipeline, stream, kWall, first);
  const RenditionOpened* opened = first_opened(first);
  REQUIRE(opened != nullptr);
  CHECK(std::holds_alternative<std::shared_ptr<const RenditionOpened>>(first.front().body));
  CHECK(opened->first_msn == 500);
  CHECK(opened->tracks.size() == 2);
  CHECK(opened->origin_wall_ms == kWall + stream.packets.front().timestamp_ms);
  CHECK(std::holds_alternative<RenditionClosed>(first.back().body));
  apply_events(first, store);
  const int64_t after_first = pipeline.next_msn();
  CHECK(after_first >= 503);  // 4 s in segments of about 1 s
  CHECK(store.next_msn() == after_first);

  std::vector<RenditionEvent> second;
  publish(pipeline, stream, kWall + 60'000, second);
  opened = first_opened(second);
  REQUIRE(opened != nullptr);
  CHECK(opened->first_msn == after_first);
  apply_events(second, store);
  CHECK(store.next_msn() > after_first);

  std::string text = write_media_playlist(store.playlist());
  CHECK(text.find("#EXT-X-DISCONTINUITY\n") != std::string::npos);
  CHECK(text.find("init1.mp4") != std::string::npos);
  CHECK(text.find("#EXT-X-MEDIA-SEQUENCE:500") != std::string::npos);
  auto result = validate_media_playlist(text);
  for (const auto& error : result.errors) {
    FAIL_CHECK(error);
  }
}

TEST_CASE("stream pipeline: one track only opens after the wait, by media time") {
  const auto& stream = test::encoded_stream(4, 30);
  REQUIRE(stream.error.empty());
  StreamPipelineOptions options;
  options.single_track_wait_ms = 1000;
  StreamPipeline pipeline("video-only", options);
  std::vector<RenditionEvent> events;
  pipeline.begin_publish(events);
  pipeline.track_config(stream.tracks[0], events);
  uint32_t first_ts = 0;
  bool first = true;
  for (const Packet& packet : stream.packets) {
    if (packet.kind != TrackKind::kVideo) {
      continue;
    }
    if (first) {
      first_ts = packet.timestamp_ms;
      first = false;
    }
    pipeline.packet(packet, kWall, events);
    if (packet.timestamp_ms - first_ts < 1000) {
      CHECK(events.empty());
      CHECK_FALSE(pipeline.packaging());
    }
  }
  const RenditionOpened* opened = first_opened(events);
  REQUIRE(opened != nullptr);
  CHECK(opened->tracks.size() == 1);
  CHECK(pipeline.packaging());
  CHECK(pipeline.stats().dropped_no_config == 0);
}

TEST_CASE("stream pipeline: audio that arrives after packaging began starts a new generation") {
  const auto& stream = test::encoded_stream(4, 30);
  REQUIRE(stream.error.empty());
  SegmentStore store(SegmentStoreOptions{});
  StreamPipeline pipeline("late-audio", {});
  std::vector<RenditionEvent> events;
  pipeline.begin_publish(events);
  pipeline.track_config(stream.tracks[0], events);
  bool audio_configured = false;
  for (const Packet& packet : stream.packets) {
    if (!audio_configured && packet.timestamp_ms >= 2000) {
      pipeline.track_config(stream.tracks[1], events);
      audio_configured = true;
      CHECK(count_closed(events) == 1);
    }
    pipeline.packet(packet, kWall + packet.timestamp_ms, events);
  }
  pipeline.end_publish(events);
  CHECK(pipeline.stats().dropped_no_config > 0);  // audio before its configuration
  size_t opens = 0;
  for (const RenditionEvent& event : events) {
    if (auto* opened = std::get_if<std::shared_ptr<const RenditionOpened>>(&event.body)) {
      ++opens;
      CHECK((*opened)->tracks.size() == opens);
    }
  }
  CHECK(opens == 2);
  apply_events(events, store);
  auto result = validate_media_playlist(write_media_playlist(store.playlist()));
  for (const auto& error : result.errors) {
    FAIL_CHECK(error);
  }
}

TEST_CASE("stream pipeline: packets before any configuration are bounded") {
  const auto& stream = test::encoded_stream(4, 30);
  REQUIRE(stream.error.empty());
  StreamPipelineOptions options;
  options.max_buffered_packets = 10;
  StreamPipeline pipeline("no-config", options);
  std::vector<RenditionEvent> events;
  pipeline.begin_publish(events);
  for (size_t i = 0; i < 50; ++i) {
    pipeline.packet(stream.packets[i], kWall, events);
  }
  CHECK(events.empty());
  CHECK(pipeline.stats().dropped_buffer_full == 40);
  for (const TrackConfig& track : stream.tracks) {
    pipeline.track_config(track, events);
  }
  pipeline.packet(stream.packets[50], kWall, events);
  CHECK(first_opened(events) != nullptr);
}

// --- HlsService on a real loop, with synthetic HTTP exchanges (no sockets). ---

class Recorder final : public http::ExchangeSink {
 public:
  void exchange_updated(http::Exchange&) override {}
};

struct Harness {
  Loop loop;
  MediaWorkers workers{1};
  Metrics metrics;
  ManualClock clock{kWall};
  http::Router router;
  Recorder recorder;
  std::unique_ptr<HlsService> hls;

  explicit Harness(HlsServiceOptions options = {}) {
    hls = std::make_unique<HlsService>(loop, workers, metrics, std::move(options), clock);
    REQUIRE(hls->add_routes(router));
  }

  /// Runs the loop until `done` or ten seconds pass.
  bool run_until(const std::function<bool()>& done) {
    if (done()) {
      return true;
    }
    Timer poll(loop);
    int64_t ticks = 0;
    poll.start(2, 2, [&] {
      if (done() || ++ticks > 5000) {
        loop.stop();
      }
    });
    loop.run();
    poll.stop();
    return done();
  }

  http::ExchangePtr get(const std::string& target) {
    http::Request request;
    request.method = "GET";
    request.target = target;
    size_t q = target.find('?');
    request.raw_path = target.substr(0, q);
    request.path = request.raw_path;
    request.raw_query = q == std::string::npos ? "" : target.substr(q + 1);
    auto exchange = std::make_shared<http::Exchange>(&recorder, std::move(request));
    router.dispatch(exchange);
    return exchange;
  }

  const SegmentStore* store() const { return hls->store("shop"); }
};

std::string body_of(http::Response& response) { return std::string(response.body_view()); }

TEST_CASE(
    "hls service: packages on a worker, serves playlists and media, holds blocking "
    "requests, continues across a republish") {
  const auto& stream = test::encoded_stream(6, 30);
  REQUIRE(stream.error.empty());
  Harness h;
  const int64_t first_msn = kWall / 1000;

  auto waiting = h.get("/live/shop/index.m3u8");
  auto unknown = waiting->take_response();
  REQUIRE(unknown);
  CHECK(unknown->status == 404);

  h.hls->publisher_started("shop");
  // Live, but nothing packaged yet (events reach the store only when the loop runs).
  auto starting = h.get("/live/shop/index.m3u8")->take_response();
  REQUIRE(starting);
  CHECK(starting->status == 503);
  CHECK(starting->headers.get("Retry-After") == "1");
  CHECK(h.get("/live/shop/source/playlist.m3u8")->take_response()->status == 503);
  for (const TrackConfig& track : stream.tracks) {
    h.hls->track_config("shop", track);
  }
  size_t next_packet = 0;
  auto feed_until_ms = [&](uint32_t until) {
    while (next_packet < stream.packets.size() &&
           stream.packets[next_packet].timestamp_ms < until) {
      Packet copy = stream.packets[next_packet++];
      h.hls->packet("shop", std::move(copy));
    }
  };
  feed_until_ms(2500);
  REQUIRE(h.run_until([&] {
    return h.store() != nullptr && h.store()->position().last_complete_msn >= first_msn;
  }));

  SUBCASE("multivariant and media playlists") {
    auto r = h.get("/live/shop/index.m3u8")->take_response();
    REQUIRE(r);
    CHECK(r->status == 200);
    CHECK(r->headers.get("Content-Type") == "application/vnd.apple.mpegurl");
    std::string text = body_of(*r);
    CHECK(text.find("source/playlist.m3u8") != std::string::npos);
    CHECK(text.find("avc1.") != std::string::npos);
    CHECK(text.find("mp4a.40.2") != std::string::npos);

    r = h.get("/live/shop/source/playlist.m3u8")->take_response();
    REQUIRE(r);
    CHECK(r->status == 200);
    CHECK(r->headers.get("Cache-Control") == "public, max-age=1");
    auto result = validate_media_playlist(body_of(*r));
    for (const auto& error : result.errors) {
      FAIL_CHECK(error);
    }
    CHECK(result.segments >= 1);

    CHECK(h.get("/live/shop/other/playlist.m3u8")->take_response()->status == 404);
    CHECK(h.get("/live/shop/source/nothing.txt")->take_response()->status == 404);
    CHECK(h.get("/live/shop/source/seg-1.m4s")->take_response()->status == 404);
    CHECK(h.get("/live/shop/source/part1.m4s")->take_response()->status == 404);
  }

  SUBCASE("init, segment and part bytes, immutable") {
    auto r = h.get("/live/shop/source/init0.mp4")->take_response();
    REQUIRE(r);
    CHECK(r->status == 200);
    CHECK(r->headers.get("Content-Type") == "video/mp4");
    CHECK(r->headers.get("Cache-Control") == "public, max-age=31536000, immutable");
    CHECK(r->body_size() > 0);
    r = h.get(fmt::format("/live/shop/source/seg{}.m4s", first_msn))->take_response();
    REQUIRE(r);
    CHECK(r->status == 200);
    CHECK(r->headers.get("Content-Type") == "video/iso.segment");
    auto part = h.store()->find_part(h.store()->position().last_msn, 0);
    REQUIRE(part);
    r = h.get(fmt::format("/live/shop/source/part{}.0.m4s", part->msn))->take_response();
    REQUIRE(r);
    CHECK(r->status == 200);
    CHECK(r->body_view() == part->bytes->view());
    // The answer shares the part's sealed bytes (sent with sendfile), it does not copy them.
    CHECK(std::get<SharedSealedBytes>(r->body) == part->bytes);
    CHECK(h.get("/live/shop/source/init9.mp4")->take_response()->status == 404);
  }

  SUBCASE("bad blocking requests are 400") {
    const int64_t last = h.store()->position().last_msn;
    CHECK(h.get("/live/shop/source/playlist.m3u8?_HLS_part=1")->take_response()->status == 400);
    CHECK(h.get(fmt::format("/live/shop/source/playlist.m3u8?_HLS_msn={}", last + 3))
              ->take_response()
              ->status == 400);
    CHECK(h.get("/live/shop/source/playlist.m3u8?_HLS_msn=x")->take_response()->status == 400);
    CHECK(h.get("/live/shop/source/playlist.m3u8?_HLS_skip=NO")->take_response()->status == 400);
  }

  SUBCASE("a blocking playlist request and a preload-hint part request wait for the part") {
    const PlaylistPosition at = h.store()->position();
    auto playlist = h.get(fmt::format("/live/shop/source/playlist.m3u8?_HLS_msn={}&_HLS_part={}",
                                      at.last_msn, at.last_part + 1));
    auto same = h.get(fmt::format("/live/shop/source/playlist.m3u8?_HLS_msn={}&_HLS_part={}",
                                  at.last_msn, at.last_part + 1));
    auto before = h.get("/live/shop/source/playlist.m3u8")->take_response();
    REQUIRE(before);
    auto part =
        h.get(fmt::format("/live/shop/source/part{}.{}.m4s", at.last_msn, at.last_part + 1));
    auto gone = h.get(fmt::format("/live/shop/source/playlist.m3u8?_HLS_msn={}", at.last_msn + 1));
    CHECK(playlist->state() == http::Exchange::State::kWaiting);
    CHECK(part->state() == http::Exchange::State::kWaiting);
    CHECK(h.hls->held_requests() == 4);
    gone->abort();  // the client left: its waiter goes
    CHECK(h.hls->held_requests() == 3);

    feed_until_ms(3500);
    REQUIRE(h.run_until([&] { return h.hls->held_requests() == 0; }));
    auto r = playlist->take_response();
    REQUIRE(r);
    CHECK(r->status == 200);
    // Requests answered together share one rendering; a later state of the store is rendered anew.
    auto shared = same->take_response();
    REQUIRE(shared);
    REQUIRE(std::holds_alternative<http::SharedText>(r->body));
    CHECK(std::get<http::SharedText>(r->body) == std::get<http::SharedText>(shared->body));
    CHECK(body_of(*r) != body_of(*before));
    CHECK(r->headers.get("Cache-Control") == "public, max-age=4");
    auto result = validate_media_playlist(body_of(*r));
    for (const auto& error : result.errors) {
      FAIL_CHECK(error);
    }
    r = part->take_response();
    REQUIRE(r);
    // The hinted part exists unless the segment ended just before it; then it never will.
    CHECK((r->status == 200 || r->status == 404));
    CHECK(h.store()->waiter_count() == 0);
  }

  SUBCASE("a held request times out with 503") {
    // Let the worker finish what was fed (its events land in order) so that no part the
    // request waits for can still arrive.
    std::atomic<bool> drained{false};
    h.workers.post(0, [&] { drained = true; });
    REQUIRE(h.run_until([&] { return drained.load(); }));
    int ticks = 0;
    h.run_until([&] { return ++ticks > 10; });
    const PlaylistPosition at = h.store()->position();
    auto held = h.get(fmt::format("/live/shop/source/playlist.m3u8?_HLS_msn={}", at.last_msn + 1));
    CHECK(held->state() == http::Exchange::State::kWaiting);
    h.clock.advance_ms(12'001);  // 3 x TARGETDURATION
    REQUIRE(h.run_until([&] { return held->state() != http::Exchange::State::kWaiting; }));
    auto r = held->take_response();
    REQUIRE(r);
    CHECK(r->status == 503);
    CHECK(h.store()->waiter_count() == 0);
  }

  SUBCASE("republish continues the playlist; the end lingers, then the channel goes") {
    // Whatever is still queued on the worker lands before the new publish: events keep order.
    auto republished = [&] {
      for (const PlaylistSegment& segment : h.store()->playlist().segments) {
        if (segment.init_generation == 1 && segment.complete) {
          return true;
        }
      }
      return false;
    };
    h.hls->publisher_left("shop");
    h.hls->publisher_started("shop");
    for (const TrackConfig& track : stream.tracks) {
      h.hls->track_config("shop", track);
    }
    // The new publisher's clock starts again at 0.
    next_packet = 0;
    feed_until_ms(2500);
    REQUIRE(h.run_until(republished));
    auto r = h.get("/live/shop/source/playlist.m3u8")->take_response();
    REQUIRE(r);
    std::string text = body_of(*r);
    CHECK(text.find("#EXT-X-DISCONTINUITY\n") != std::string::npos);
    CHECK(text.find("init1.mp4") != std::string::npos);
    auto result = validate_media_playlist(text);  // msn contiguous across the discontinuity
    for (const auto& error : result.errors) {
      FAIL_CHECK(error);
    }

    auto held = h.get(fmt::format("/live/shop/source/playlist.m3u8?_HLS_msn={}",
                                  h.store()->position().last_msn + 1));
    h.hls->publisher_left("shop");
    h.hls->stream_ended("shop");
    auto ended = [&] {
      auto now = h.get("/live/shop/source/playlist.m3u8")->take_response();
      return held->state() != http::Exchange::State::kWaiting && now &&
             body_of(*now).find("#EXT-X-ENDLIST") != std::string::npos;
    };
    REQUIRE(h.run_until(ended));
    r = held->take_response();
    REQUIRE(r);
    CHECK(r->status == 200);
    CHECK(h.metrics.render().find("hawker_hls_bytes_held{channel=\"shop\"}") != std::string::npos);

    h.clock.advance_ms(60'001);
    REQUIRE(h.run_until([&] { return h.hls->channel_count() == 0; }));
    CHECK(h.get("/live/shop/source/playlist.m3u8")->take_response()->status == 404);
  }

  h.hls->shutdown();
  h.hls.reset();
  CHECK(h.loop.close() == 0);
}

TEST_CASE("hls service: shutdown answers held requests and joins the workers") {
  const auto& stream = test::encoded_stream(4, 30);
  REQUIRE(stream.error.empty());
  Harness h;
  h.hls->publisher_started("shop");
  for (const TrackConfig& track : stream.tracks) {
    h.hls->track_config("shop", track);
  }
  for (const Packet& packet : stream.packets) {
    if (packet.timestamp_ms < 1500) {
      Packet copy = packet;
      h.hls->packet("shop", std::move(copy));
    }
  }
  REQUIRE(h.run_until([&] { return h.store() && h.store()->position().last_msn >= 0; }));
  auto held = h.get(fmt::format("/live/shop/source/playlist.m3u8?_HLS_msn={}",
                                h.store()->position().last_msn + 1));
  CHECK(held->state() == http::Exchange::State::kWaiting);
  h.hls->shutdown();
  auto r = held->take_response();
  REQUIRE(r);
  CHECK(r->status == 503);
  h.hls->packet("shop", Packet(stream.packets.front()));  // ignored after shutdown
  h.hls.reset();
  CHECK(h.loop.close() == 0);
}

}  // namespace
}  // namespace hawker::media::hls
