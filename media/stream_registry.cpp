#include "media/stream_registry.h"

#include <nlohmann/json.hpp>

#include "core/clock.h"

namespace hawker::media {
namespace {
/// Rates are averaged over this many whole seconds, the current partial one excluded.
constexpr int64_t kRateWindowSeconds = 5;
}  // namespace

const char* to_string(StreamState s) {
  switch (s) {
    case StreamState::kLive:
      return "live";
    case StreamState::kReconnecting:
      return "reconnecting";
    case StreamState::kEnded:
      return "ended";
  }
  return "ended";
}

std::optional<uint64_t> StreamRegistry::publish_started(const std::string& channel,
                                                        uint64_t conn_id,
                                                        const std::string& remote_addr,
                                                        int64_t now_ms) {
  std::optional<uint64_t> taken_over;
  auto it = streams_.find(channel);
  if (it == streams_.end()) {
    Entry e;
    e.info.channel = channel;
    e.info.live_since_ms = now_ms;
    it = streams_.emplace(channel, std::move(e)).first;
  } else {
    StreamInfo& info = it->second.info;
    if (info.state == StreamState::kLive && info.conn_id != 0 && info.conn_id != conn_id) {
      taken_over = info.conn_id;
      by_conn_.erase(info.conn_id);
    }
    ++info.reconnects;
    it->second.last_keyframe_ts.reset();
    it->second.windows.clear();
  }
  StreamInfo& info = it->second.info;
  info.state = StreamState::kLive;
  info.conn_id = conn_id;
  info.remote_addr = remote_addr;
  info.last_publish_ms = now_ms;
  info.disconnected_at_ms = 0;
  info.bitrate_bps = 0;
  info.frame_rate = 0;
  by_conn_[conn_id] = channel;
  return taken_over;
}

std::optional<std::string> StreamRegistry::channel_of(uint64_t conn_id) const {
  auto it = by_conn_.find(conn_id);
  if (it == by_conn_.end()) return std::nullopt;
  return it->second;
}

void StreamRegistry::on_track_config(uint64_t conn_id, const TrackConfig& config) {
  auto channel = channel_of(conn_id);
  if (!channel) return;
  StreamInfo& info = streams_.at(*channel).info;
  (config.kind == TrackKind::kVideo ? info.video : info.audio) = config;
}

void StreamRegistry::roll(Entry& e, int64_t now_ms) {
  int64_t second = now_ms / 1000;
  if (e.windows.empty() || e.windows.back().second != second) {
    e.windows.push_back(Window{second, 0, 0});
    while (!e.windows.empty() && e.windows.front().second < second - kRateWindowSeconds) {
      e.windows.pop_front();
    }
    uint64_t bytes = 0, frames = 0;
    int64_t full = 0;
    for (const auto& w : e.windows) {
      if (w.second == second) continue;
      bytes += w.bytes;
      frames += w.frames;
      ++full;
    }
    if (full > 0) {
      e.info.bitrate_bps = static_cast<double>(bytes) * 8.0 / static_cast<double>(full);
      e.info.frame_rate = static_cast<double>(frames) / static_cast<double>(full);
    }
  }
}

void StreamRegistry::on_packet(uint64_t conn_id, const Packet& packet, size_t wire_bytes,
                               int64_t now_ms) {
  auto it = by_conn_.find(conn_id);
  if (it == by_conn_.end()) return;
  Entry& e = streams_.at(it->second);
  roll(e, now_ms);
  e.info.bytes_in += wire_bytes;
  e.windows.back().bytes += wire_bytes;
  if (packet.kind == TrackKind::kVideo) {
    ++e.info.video_frames;
    ++e.windows.back().frames;
    if (packet.keyframe) {
      if (e.last_keyframe_ts) {
        // Unsigned subtraction measures across the 32-bit timestamp wrap.
        e.info.keyframe_interval_ms =
            static_cast<uint32_t>(packet.timestamp_ms - *e.last_keyframe_ts);
      }
      e.last_keyframe_ts = packet.timestamp_ms;
    }
  } else {
    ++e.info.audio_frames;
  }
}

std::optional<std::string> StreamRegistry::publisher_left(uint64_t conn_id, int64_t now_ms) {
  auto it = by_conn_.find(conn_id);
  if (it == by_conn_.end()) return std::nullopt;
  std::string channel = it->second;
  by_conn_.erase(it);
  StreamInfo& info = streams_.at(channel).info;
  info.state = StreamState::kReconnecting;
  info.conn_id = 0;
  info.disconnected_at_ms = now_ms;
  info.bitrate_bps = 0;
  info.frame_rate = 0;
  return channel;
}

std::vector<std::string> StreamRegistry::expire(int64_t now_ms) {
  std::vector<std::string> ended;
  for (auto it = streams_.begin(); it != streams_.end();) {
    const StreamInfo& info = it->second.info;
    if (info.state == StreamState::kReconnecting && now_ms - info.disconnected_at_ms >= grace_ms_) {
      ended.push_back(it->first);
      it = streams_.erase(it);
    } else {
      ++it;
    }
  }
  return ended;
}

const StreamInfo* StreamRegistry::find(const std::string& channel) const {
  auto it = streams_.find(channel);
  return it == streams_.end() ? nullptr : &it->second.info;
}

std::vector<const StreamInfo*> StreamRegistry::streams() const {
  std::vector<const StreamInfo*> out;
  for (const auto& [_, e] : streams_) out.push_back(&e.info);
  return out;
}

size_t StreamRegistry::live_count() const {
  size_t n = 0;
  for (const auto& [_, e] : streams_) n += e.info.state == StreamState::kLive;
  return n;
}

nlohmann::json to_json(const StreamInfo& info) {
  nlohmann::json j = {
      {"channel", info.channel},
      {"state", to_string(info.state)},
      {"live_since", format_rfc3339_ms(info.live_since_ms)},
      {"publisher_since", format_rfc3339_ms(info.last_publish_ms)},
      {"remote_addr", info.remote_addr},
      {"reconnects", info.reconnects},
      {"bytes_in", info.bytes_in},
      {"bitrate_bps", static_cast<int64_t>(info.bitrate_bps)},
      {"frame_rate", info.frame_rate},
      {"keyframe_interval_ms", info.keyframe_interval_ms},
      {"keyframe_interval_warning", info.keyframe_interval_warning()},
      {"video", nullptr},
      {"audio", nullptr},
  };
  if (info.keyframe_interval_warning()) {
    j["warnings"] = nlohmann::json::array(
        {"keyframe interval above 2 s: in OBS set Settings > Output > Keyframe Interval to 1 s"});
  } else {
    j["warnings"] = nlohmann::json::array();
  }
  if (info.state == StreamState::kReconnecting) {
    j["disconnected_at"] = format_rfc3339_ms(info.disconnected_at_ms);
  }
  if (info.video) {
    static const std::map<int, const char*> kProfiles = {
        {66, "Baseline"}, {77, "Main"},        {88, "Extended"},   {100, "High"},
        {110, "High 10"}, {122, "High 4:2:2"}, {244, "High 4:4:4"}};
    auto p = kProfiles.find(info.video->profile_idc);
    j["video"] = {{"codec", "h264"},
                  {"codecs", info.video->codec_string()},
                  {"profile", p == kProfiles.end() ? "unknown" : p->second},
                  {"level", info.video->level_idc / 10.0},
                  {"width", info.video->width},
                  {"height", info.video->height}};
  }
  if (info.audio) {
    j["audio"] = {{"codec", "aac"},
                  {"codecs", info.audio->codec_string()},
                  {"sample_rate", info.audio->sample_rate},
                  {"channels", info.audio->channels}};
  }
  return j;
}

}  // namespace hawker::media
