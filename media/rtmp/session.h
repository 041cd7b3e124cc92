#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "media/flv/tag.h"
#include "media/packet.h"
#include "media/rtmp/amf0.h"
#include "media/rtmp/chunk.h"
#include "media/rtmp/handshake.h"

namespace hawker::media::rtmp {

/// What a Session tells its owner. Calls arrive from inside Session::feed() (or accept/reject);
/// the owner must not destroy the Session from inside them.
class SessionEvents {
 public:
  virtual ~SessionEvents() = default;
  /// A client asked to publish. `stream_name` is the stream key without its query; answer later
  /// (possibly asynchronously) with Session::accept_publish() or Session::reject_publish().
  virtual void on_publish_request(std::string_view app, std::string_view stream_name,
                                  std::string_view query) = 0;
  virtual void on_track_config(const TrackConfig& config) = 0;
  virtual void on_packet(Packet&& packet) = 0;
  /// The onMetaData object (an object or ECMA array) the encoder sent.
  virtual void on_metadata(const amf0::Value& metadata) = 0;
  /// The client stopped publishing (FCUnpublish/deleteStream/closeStream) on a live connection.
  virtual void on_unpublish() = 0;
  /// The peer broke the protocol or sent something refused; the owner closes the connection.
  virtual void on_error(const Error& error) = 0;
};

struct SessionLimits {
  ChunkLimits chunk;
  amf0::DecodeLimits amf0;
  /// Our outgoing chunk size, announced right after connect.
  uint32_t out_chunk_size = 4096;
  /// The acknowledgement window we ask of the peer and the bandwidth we grant it.
  uint32_t window_ack_size = 2'500'000;
};

/// One RTMP publishing connection's protocol state: handshake, chunking, the NetConnection and
/// NetStream commands, and FLV media. Bytes come in through feed(); bytes to send go out through
/// `send`; everything else is reported through SessionEvents.
class Session {
 public:
  enum class State {
    kHandshake,       ///< waiting for C0/C1, then C2
    kAwaitConnect,    ///< handshake done, no connect yet
    kConnected,       ///< connect answered; streams may be created
    kPublishPending,  ///< publish asked; the owner has not answered yet
    kPublishing,      ///< media flows
    kRejected,        ///< publish refused; waiting to be closed
    kFailed,          ///< protocol error reported; waiting to be closed
  };

  using SendFn = std::function<void(std::vector<uint8_t>&&)>;

  Session(SessionEvents& events, SendFn send, SessionLimits limits = {},
          ServerHandshake::RandomSource random = {});
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  /// Feeds bytes received from the peer. After an error (reported through on_error) further
  /// bytes are ignored.
  void feed(std::span<const uint8_t> bytes);

  /// Answers a pending publish request: StreamBegin and NetStream.Publish.Start.
  void accept_publish();
  /// Refuses a pending publish request with NetStream.Publish.BadName and `reason`; the owner
  /// then closes the connection after the bytes are flushed.
  void reject_publish(std::string_view reason);

  State state() const { return state_; }
  bool publishing() const { return state_ == State::kPublishing; }
  const std::string& app() const { return app_; }
  const std::string& stream_name() const { return stream_name_; }
  uint64_t bytes_received() const { return bytes_received_; }

 private:
  Status on_message(Message&& msg);
  Status on_command(const Message& msg, std::span<const uint8_t> body);
  Status on_data(const Message& msg, std::span<const uint8_t> body);
  Status on_media(const Message& msg);
  Status on_user_control(const Message& msg);
  Status handle_connect(double txid, const std::vector<amf0::Value>& args);
  Status handle_publish(double txid, const Message& msg, const std::vector<amf0::Value>& args);
  void stop_publishing();
  void send_result(uint32_t stream_id, double txid, std::vector<amf0::Value> values);
  void send_status(uint32_t stream_id, std::string_view level, std::string_view code,
                   std::string_view description);
  void maybe_acknowledge();
  void fail(Error error);
  void flush();

  SessionEvents& events_;
  SendFn send_;
  SessionLimits limits_;
  State state_ = State::kHandshake;
  ServerHandshake handshake_;
  ChunkReader reader_;
  ChunkWriter writer_;
  flv::TagParser tags_;
  std::vector<uint8_t> out_;

  std::string app_;
  std::string stream_name_;
  uint32_t next_stream_id_ = 1;
  uint32_t publish_stream_id_ = 0;
  uint64_t bytes_received_ = 0;
  uint32_t peer_window_ = 0;  ///< 0 until the peer sends Window Acknowledgement Size
  uint64_t acked_at_ = 0;
};

const char* to_string(Session::State state);

}  // namespace hawker::media::rtmp
