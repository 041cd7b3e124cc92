#pragma once

#include <string>

#include "media/packet.h"

namespace hawker::media {

/// Receives the media of live channels from ingest, on the loop thread. The LL-HLS service
/// implements it; the app's ingest (stream keys, registry, takeovers) feeds it.
class ChannelSink {
 public:
  virtual ~ChannelSink() = default;
  /// A publisher starts: the first, one taking over, or one back within the grace period.
  virtual void publisher_started(const std::string& channel) = 0;
  virtual void track_config(const std::string& channel, const TrackConfig& config) = 0;
  virtual void packet(const std::string& channel, Packet&& packet) = 0;
  /// The publisher left; the channel may come back within the grace period.
  virtual void publisher_left(const std::string& channel) = 0;
  /// The grace period ran out: the stream is over.
  virtual void stream_ended(const std::string& channel) = 0;
};

}  // namespace hawker::media
