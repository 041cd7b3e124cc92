#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/loop.h"
#include "core/result.h"
#include "media/packet.h"
#include "media/rtmp/amf0.h"

namespace hawker::media::rtmp {

/// Limits every RTMP listener enforces; each one ends only the offending connection.
struct RtmpLimits {
  /// From accept to the end of the handshake.
  uint64_t handshake_timeout_ms = 10'000;
  /// With no audio or video arriving (including before and while waiting to publish).
  uint64_t idle_timeout_ms = 30'000;
  size_t max_connections = 64;
  /// Largest Set Chunk Size accepted from a peer.
  uint32_t max_chunk_size = 1 << 24;
  /// Largest single RTMP message.
  uint32_t max_message_size = 4 << 20;
  /// Bytes a connection may hold: partial messages in, unsent bytes out.
  size_t max_buffer_bytes = 8 << 20;
  /// How long a refused publisher has to read its NetStream.Publish.BadName before it is closed.
  uint64_t reject_linger_ms = 500;
};

/// The application side of ingest: decides who may publish and receives the media. Every call
/// arrives on the loop thread. media/ includes no storage: the app implements this with its
/// stream keys and stream registry.
class IngestDelegate {
 public:
  using AuthorizeDone = std::function<void(bool ok, std::string reason)>;
  virtual ~IngestDelegate() = default;

  /// A client wants to publish `key` (the stream name without its query) on `app`. Call `done`
  /// exactly once, now or later on the loop thread; a call after the connection is gone is
  /// ignored. `reason` reaches the client in NetStream.Publish.BadName.
  virtual void authorize(uint64_t conn_id, std::string_view remote_addr, std::string_view app,
                         std::string_view key, std::string_view query, AuthorizeDone done) = 0;
  virtual void on_track_config(uint64_t conn_id, const TrackConfig& config) = 0;
  virtual void on_packet(uint64_t conn_id, Packet&& packet) = 0;
  virtual void on_metadata(uint64_t conn_id, const amf0::Value& metadata) {
    (void)conn_id;
    (void)metadata;
  }
  /// The client stopped publishing but kept the connection (rare; on_disconnect follows later).
  virtual void on_unpublish(uint64_t conn_id) { (void)conn_id; }
  /// A connection that asked to publish is gone (closed by either side, after its handle is
  /// released). Not called for connections that never asked, nor after the server is destroyed.
  virtual void on_disconnect(uint64_t conn_id) = 0;
};

/// What the server knows about one connection, for metrics and the dashboard.
struct ConnectionInfo {
  uint64_t id = 0;
  std::string remote_addr;
  std::string app;
  bool publishing = false;
  uint64_t bytes_in = 0;
  uint64_t bytes_out = 0;
};

/// Accepts RTMP publishers on a TCP port and runs one rtmp::Session per connection.
class RtmpServer {
 public:
  RtmpServer(Loop& loop, IngestDelegate& delegate, RtmpLimits limits = {});
  ~RtmpServer();
  RtmpServer(const RtmpServer&) = delete;
  RtmpServer& operator=(const RtmpServer&) = delete;

  /// Binds and listens; returns the bound port (useful with port 0).
  Result<int> listen(const std::string& host, int port);
  /// Closes the listening socket; open connections go on.
  void stop_accepting();
  /// Closes one connection (for example when the same key publishes again elsewhere). Safe to call
  /// from inside a delegate callback, including for that same connection.
  void close_connection(uint64_t conn_id);
  /// Stops accepting and closes every connection.
  void shutdown();

  size_t connection_count() const { return connections_.size(); }
  std::vector<ConnectionInfo> connections() const;

  class Connection;

 private:
  friend class Connection;
  static void on_new_connection(uv_stream_t* server, int status);
  void sweep();
  void close(Connection& conn, std::string_view why);

  Loop& loop_;
  IngestDelegate& delegate_;
  RtmpLimits limits_;
  uv_tcp_t* listener_ = nullptr;
  Timer sweep_timer_;
  uint64_t next_id_ = 1;
  /// Open connections. A closing one moves to closing_ and frees itself in its close callback.
  std::map<uint64_t, Connection*> connections_;
  std::map<uint64_t, Connection*> closing_;
  std::shared_ptr<bool> alive_;
};

}  // namespace hawker::media::rtmp
