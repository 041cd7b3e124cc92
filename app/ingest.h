#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "app/auth_throttle.h"
#include "commerce/streamers.h"
#include "core/clock.h"
#include "core/loop.h"
#include "core/metrics.h"
#include "media/channel_sink.h"
#include "media/rtmp/server.h"
#include "media/stream_registry.h"
#include "storage/store.h"

namespace hawker::app {

struct IngestOptions {
  int64_t reconnect_grace_ms = 15'000;
  /// How often live publishers' keys are checked again, so a revoked or rotated key stops a
  /// stream that is already live.
  int64_t key_recheck_ms = 5'000;
};

/// Learns when channels go live and end, and may refuse a publish whose key is right (for
/// example outside its broadcast window). Loop thread only.
class IngestObserver {
 public:
  using AdmitDone = std::function<void(std::optional<std::string> refusal)>;
  virtual ~IngestObserver() = default;
  /// Called once a key matched: `done(std::nullopt)` accepts, a reason refuses (the publisher
  /// reads it in NetStream.Publish.BadName).
  virtual void admit(const commerce::Streamer& streamer, AdmitDone done) = 0;
  /// A publisher started on the channel: the first, one back within the grace period, or one
  /// taking over.
  virtual void channel_live(const std::string& channel, int64_t streamer_id) = 0;
  /// The grace period ran out with no publisher back: the stream is over.
  virtual void channel_ended(const std::string& channel) = 0;
};

/// The app's side of RTMP ingest: checks stream keys against SQLite (with brute-force
/// slow-down), keeps the stream registry, handles takeovers and the reconnect grace period,
/// and hands media to the channel sink. Loop thread only.
class Ingest final : public media::rtmp::IngestDelegate {
 public:
  Ingest(Loop& loop, storage::Store& store, Metrics& metrics, IngestOptions options,
         const Clock& clock = SystemClock::instance());
  ~Ingest() override;

  /// The server whose connections this ingest closes on takeover; set once before listening.
  void attach(media::rtmp::RtmpServer& server) { server_ = &server; }
  void set_sink(media::ChannelSink* sink) { sink_ = sink; }
  void set_observer(IngestObserver* observer) { observer_ = observer; }
  const media::StreamRegistry& registry() const { return registry_; }
  /// Refreshes the stream gauges in /metrics.
  void collect_metrics();

  void authorize(uint64_t conn_id, std::string_view remote_addr, std::string_view app,
                 std::string_view key, std::string_view query, AuthorizeDone done) override;
  void on_track_config(uint64_t conn_id, const media::TrackConfig& config) override;
  void on_packet(uint64_t conn_id, media::Packet&& packet) override;
  void on_unpublish(uint64_t conn_id) override;
  void on_disconnect(uint64_t conn_id) override;

 private:
  struct Publisher {
    std::string channel;
    std::string key_hash;
  };
  void check_key(uint64_t conn_id, std::string remote, std::string key, AuthorizeDone done);
  void start_publishing(uint64_t conn_id, const std::string& remote,
                        const commerce::Streamer& streamer, std::string key_hash);
  void tick();
  void recheck_keys();

  Loop& loop_;
  storage::Store& store_;
  const Clock& clock_;
  IngestOptions options_;
  media::rtmp::RtmpServer* server_ = nullptr;
  media::ChannelSink* sink_ = nullptr;
  IngestObserver* observer_ = nullptr;
  media::StreamRegistry registry_;
  AuthThrottle throttle_;
  std::map<uint64_t, Publisher> publishers_;
  std::map<uint64_t, std::unique_ptr<Timer>> delayed_;
  Timer tick_timer_;
  int64_t last_recheck_ms_ = 0;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);

  Counter& publish_ok_;
  Counter& publish_refused_;
  Counter& takeovers_;
  Family<Gauge>& stream_bitrate_;
  Family<Gauge>& stream_fps_;
  Family<Gauge>& stream_keyframe_;
  Family<Counter>& stream_bytes_;
  Gauge& live_streams_;
};

}  // namespace hawker::app
