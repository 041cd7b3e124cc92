#include "app/ingest.h"

#include <fmt/format.h>

#include "commerce/streamers.h"
#include "core/log.h"
#include "core/secret.h"

namespace hawker::app {
namespace {
constexpr const char* kLog = "ingest";
/// The RTMP application streamers publish to: rtmp://host:port/live with the key as stream name.
constexpr std::string_view kApp = "live";
}  // namespace

Ingest::Ingest(Loop& loop, storage::Store& store, Metrics& metrics, IngestOptions options,
               const Clock& clock)
    : loop_(loop),
      store_(store),
      clock_(clock),
      options_(options),
      registry_(options.reconnect_grace_ms),
      tick_timer_(loop),
      publish_ok_(
          metrics.counter("hawker_rtmp_publish_total", "Publish attempts by outcome", {"outcome"})
              .with({"accepted"})),
      publish_refused_(
          metrics.counter("hawker_rtmp_publish_total", "Publish attempts by outcome", {"outcome"})
              .with({"refused"})),
      takeovers_(metrics
                     .counter("hawker_rtmp_takeovers_total",
                              "Publishers that replaced a live publisher of the same channel")
                     .with({})),
      stream_bitrate_(
          metrics.gauge("hawker_stream_bitrate_bps", "Ingest bitrate by channel", {"channel"})),
      stream_fps_(metrics.gauge("hawker_stream_frame_rate", "Ingest video frame rate by channel",
                                {"channel"})),
      stream_keyframe_(metrics.gauge(
          "hawker_stream_keyframe_interval_seconds",
          "Measured keyframe interval by channel (above 2 s raises latency)", {"channel"})),
      stream_bytes_(metrics.counter("hawker_stream_received_bytes_total",
                                    "Media bytes received by channel", {"channel"})),
      live_streams_(
          metrics.gauge("hawker_live_streams", "Channels with a live publisher").with({})) {
  tick_timer_.start(1000, 1000, [this] { tick(); });
}

Ingest::~Ingest() { *alive_ = false; }

void Ingest::authorize(uint64_t conn_id, std::string_view remote_addr, std::string_view app,
                       std::string_view key, std::string_view, AuthorizeDone done) {
  std::string remote(remote_addr);
  if (app != kApp) {
    publish_refused_.inc();
    log::warn(kLog, "conn={} remote={} refused: application \"{}\" (publish to /{})", conn_id,
              remote, app, kApp);
    done(false,
         fmt::format("unknown application \"{}\": publish to rtmp://HOST:PORT/{}", app, kApp));
    return;
  }
  std::string host = AuthThrottle::host_of(remote);
  int64_t delay = throttle_.delay_ms(host, clock_.steady_ms());
  if (delay == 0) {
    check_key(conn_id, std::move(remote), std::string(key), std::move(done));
    return;
  }
  log::info(kLog, "conn={} remote={} slowed down {} ms after repeated wrong keys", conn_id, remote,
            delay);
  auto timer = std::make_unique<Timer>(loop_);
  Timer* t = timer.get();
  delayed_[conn_id] = std::move(timer);
  t->start(static_cast<uint64_t>(delay), 0,
           [this, conn_id, remote = std::move(remote), key = std::string(key),
            done = std::move(done)]() mutable {
             check_key(conn_id, std::move(remote), std::move(key), std::move(done));
             delayed_.erase(conn_id);
           });
}

void Ingest::check_key(uint64_t conn_id, std::string remote, std::string key, AuthorizeDone done) {
  auto secret = std::make_shared<Secret>(std::move(key));
  store_.read<std::optional<commerce::Streamer>>(
      [secret](storage::Database& db) { return commerce::find_streamer_by_key(db, *secret); },
      [this, alive = alive_, conn_id, remote, secret,
       done = std::move(done)](Result<std::optional<commerce::Streamer>> found) {
        if (!*alive) return;
        std::string host = AuthThrottle::host_of(remote);
        if (!found) {
          publish_refused_.inc();
          log::error(kLog, "conn={} remote={} refused: key lookup failed: {}", conn_id, remote,
                     found.error().message);
          done(false, "the server could not check the stream key; try again");
          return;
        }
        if (!found->has_value()) {
          publish_refused_.inc();
          throttle_.record_failure(host, clock_.steady_ms());
          log::warn(kLog, "conn={} remote={} refused: stream key unknown, revoked or rotated",
                    conn_id, remote);
          done(false, "stream key not recognised: check the key hawker sent you");
          return;
        }
        throttle_.record_success(host);
        commerce::Streamer streamer = **found;
        std::string key_hash = commerce::stream_key_hash(*secret);
        if (observer_ == nullptr) {
          publish_ok_.inc();
          start_publishing(conn_id, remote, streamer, std::move(key_hash));
          done(true, "");
          return;
        }
        observer_->admit(streamer,
                         [this, alive, conn_id, remote, streamer, key_hash = std::move(key_hash),
                          done](std::optional<std::string> refusal) mutable {
                           if (!*alive) return;
                           if (refusal) {
                             publish_refused_.inc();
                             log::warn(kLog, "channel={} conn={} remote={} refused: {}",
                                       streamer.channel, conn_id, remote, *refusal);
                             done(false, *refusal);
                             return;
                           }
                           publish_ok_.inc();
                           start_publishing(conn_id, remote, streamer, std::move(key_hash));
                           done(true, "");
                         });
      });
}

void Ingest::start_publishing(uint64_t conn_id, const std::string& remote,
                              const commerce::Streamer& streamer, std::string key_hash) {
  const std::string& channel = streamer.channel;
  auto previous = registry_.publish_started(channel, conn_id, remote, clock_.wall_ms());
  publishers_[conn_id] = Publisher{channel, std::move(key_hash)};
  if (previous) {
    takeovers_.inc();
    log::info(kLog, "channel={} conn={} remote={} takes over from conn={}", channel, conn_id,
              remote, *previous);
    publishers_.erase(*previous);
    if (server_ != nullptr) server_->close_connection(*previous);
  } else {
    log::info(kLog, "channel={} conn={} remote={} publishing", channel, conn_id, remote);
  }
  if (sink_ != nullptr) sink_->publisher_started(channel);
  if (observer_ != nullptr) observer_->channel_live(channel, streamer.id);
}

void Ingest::on_track_config(uint64_t conn_id, const media::TrackConfig& config) {
  registry_.on_track_config(conn_id, config);
  auto it = publishers_.find(conn_id);
  if (it == publishers_.end()) return;
  log::info(kLog, "channel={} conn={} {} {}", it->second.channel, conn_id, config.codec_string(),
            config.kind == media::TrackKind::kVideo
                ? fmt::format("{}x{}", config.width, config.height)
                : fmt::format("{} Hz {} ch", config.sample_rate, config.channels));
  if (sink_ != nullptr) sink_->track_config(it->second.channel, config);
}

void Ingest::on_packet(uint64_t conn_id, media::Packet&& packet) {
  auto it = publishers_.find(conn_id);
  if (it == publishers_.end()) return;
  size_t bytes = packet.data ? packet.data->size() : 0;
  registry_.on_packet(conn_id, packet, bytes, clock_.wall_ms());
  if (sink_ != nullptr) sink_->packet(it->second.channel, std::move(packet));
}

void Ingest::on_unpublish(uint64_t conn_id) { on_disconnect(conn_id); }

void Ingest::on_disconnect(uint64_t conn_id) {
  delayed_.erase(conn_id);
  auto it = publishers_.find(conn_id);
  if (it == publishers_.end()) return;
  publishers_.erase(it);
  if (auto channel = registry_.publisher_left(conn_id, clock_.wall_ms())) {
    log::info(kLog, "channel={} conn={} publisher left; reconnecting for up to {} ms", *channel,
              conn_id, options_.reconnect_grace_ms);
    if (sink_ != nullptr) sink_->publisher_left(*channel);
  }
}

void Ingest::tick() {
  for (const auto& channel : registry_.expire(clock_.wall_ms())) {
    log::info(kLog, "channel={} stream ended (no publisher for {} ms)", channel,
              options_.reconnect_grace_ms);
    stream_bitrate_.with({channel}).set(0);
    stream_fps_.with({channel}).set(0);
    if (sink_ != nullptr) sink_->stream_ended(channel);
    if (observer_ != nullptr) observer_->channel_ended(channel);
  }
  if (clock_.steady_ms() - last_recheck_ms_ >= options_.key_recheck_ms) {
    last_recheck_ms_ = clock_.steady_ms();
    recheck_keys();
  }
}

void Ingest::recheck_keys() {
  if (publishers_.empty()) return;
  std::vector<std::pair<uint64_t, Publisher>> live(publishers_.begin(), publishers_.end());
  store_.read<std::vector<uint64_t>>(
      [live](storage::Database& db) -> Result<std::vector<uint64_t>> {
        std::vector<uint64_t> stale;
        for (const auto& [conn, pub] : live) {
          auto stmt =
              db.cached("SELECT key_hash FROM streamers WHERE channel = ? AND status = 'active'");
          if (!stmt) return unexpected(std::move(stmt).error());
          (*stmt)->bind_text(1, pub.channel);
          auto step = (*stmt)->step();
          if (!step) return unexpected(std::move(step).error());
          bool same = *step == storage::Statement::Step::kRow && !(*stmt)->column_is_null(0) &&
                      constant_time_equal((*stmt)->column_text(0), pub.key_hash);
          if (!same) stale.push_back(conn);
        }
        return stale;
      },
      [this, alive = alive_](Result<std::vector<uint64_t>> stale) {
        if (!*alive || !stale) return;
        for (uint64_t conn : *stale) {
          auto it = publishers_.find(conn);
          if (it == publishers_.end()) continue;
          log::warn(kLog, "channel={} conn={} stopped: its stream key was revoked or rotated",
                    it->second.channel, conn);
          if (server_ != nullptr) server_->close_connection(conn);
        }
      });
}

void Ingest::collect_metrics() {
  live_streams_.set(static_cast<double>(registry_.live_count()));
  for (const auto* s : registry_.streams()) {
    stream_bitrate_.with({s->channel}).set(s->bitrate_bps);
    stream_fps_.with({s->channel}).set(s->frame_rate);
    stream_keyframe_.with({s->channel}).set(static_cast<double>(s->keyframe_interval_ms) / 1000.0);
    stream_bytes_.with({s->channel}).set_total(static_cast<double>(s->bytes_in));
  }
}

}  // namespace hawker::app
