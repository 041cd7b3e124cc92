#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <vector>

#include "media/packet.h"

namespace hawker::media {

/// Above this keyframe interval a stream is flagged: it is the most common cause of high
/// latency with OBS's default ("auto") keyframe setting.
inline constexpr int64_t kKeyframeIntervalWarnMs = 2000;

enum class StreamState { kLive, kReconnecting, kEnded };
const char* to_string(StreamState s);

/// What the registry knows about one channel's stream, for /api/streams, /metrics and the
/// dashboard. Rates are measured over the last few seconds.
struct StreamInfo {
  std::string channel;
  StreamState state = StreamState::kLive;
  uint64_t conn_id = 0;
  std::string remote_addr;
  int64_t live_since_ms = 0;       ///< wall clock when this stream first went live
  int64_t last_publish_ms = 0;     ///< wall clock of the current publisher's start
  int64_t disconnected_at_ms = 0;  ///< while reconnecting
  int reconnects = 0;              ///< publishers after the first (takeovers and reconnects)
  std::optional<TrackConfig> video;
  std::optional<TrackConfig> audio;
  uint64_t bytes_in = 0;
  uint64_t video_frames = 0;
  uint64_t audio_frames = 0;
  double bitrate_bps = 0;
  double frame_rate = 0;
  int64_t keyframe_interval_ms = 0;  ///< the last measured distance between keyframes
  bool keyframe_interval_warning() const { return keyframe_interval_ms > kKeyframeIntervalWarnMs; }
};

/// Which channels are live, on the loop thread. It decides takeovers and the reconnect grace
/// period; the app acts on its answers (closing the old connection, ending the HLS stream).
class StreamRegistry {
 public:
  explicit StreamRegistry(int64_t reconnect_grace_ms) : grace_ms_(reconnect_grace_ms) {}

  /// A publisher was authorised for `channel`. Returns the connection it takes over from, if
  /// the channel already had a live publisher (a half-open socket left by a network drop).
  std::optional<uint64_t> publish_started(const std::string& channel, uint64_t conn_id,
                                          const std::string& remote_addr, int64_t now_ms);
  /// The channel a publishing connection belongs to, if any.
  std::optional<std::string> channel_of(uint64_t conn_id) const;

  void on_track_config(uint64_t conn_id, const TrackConfig& config);
  /// Counts a packet of `wire_bytes` on the wire. Cheap: called for every packet.
  void on_packet(uint64_t conn_id, const Packet& packet, size_t wire_bytes, int64_t now_ms);
  /// The connection is gone. Returns the channel it published, which is now reconnecting.
  std::optional<std::string> publisher_left(uint64_t conn_id, int64_t now_ms);

  /// Ends streams whose grace period ran out; returns their channels.
  std::vector<std::string> expire(int64_t now_ms);

  const StreamInfo* find(const std::string& channel) const;
  std::vector<const StreamInfo*> streams() const;
  size_t live_count() const;
  int64_t grace_ms() const { return grace_ms_; }

 private:
  struct Window {
    int64_t second = 0;
    uint64_t bytes = 0;
    uint64_t frames = 0;
  };
  struct Entry {
    StreamInfo info;
    std::deque<Window> windows;
    std::optional<uint32_t> last_keyframe_ts;
  };
  void roll(Entry& e, int64_t now_ms);

  int64_t grace_ms_;
  std::map<std::string, Entry> streams_;
  std::map<uint64_t, std::string> by_conn_;
};

/// One stream as JSON (`/api/streams`).
nlohmann::json to_json(const StreamInfo& info);

}  // namespace hawker::media
