#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <unordered_map>
#include <vector>

#include "core/result.h"
#include "media/rtmp/amf0.h"

namespace hawker::media::rtmp {

/// RTMP message type ids (RTMP specification 1.0, sections 5.4 and 7.1).
namespace message_type {
inline constexpr uint8_t kSetChunkSize = 1;
inline constexpr uint8_t kAbort = 2;
inline constexpr uint8_t kAcknowledgement = 3;
inline constexpr uint8_t kUserControl = 4;
inline constexpr uint8_t kWindowAckSize = 5;
inline constexpr uint8_t kSetPeerBandwidth = 6;
inline constexpr uint8_t kAudio = 8;
inline constexpr uint8_t kVideo = 9;
inline constexpr uint8_t kDataAmf3 = 15;
inline constexpr uint8_t kSharedObjectAmf3 = 16;
inline constexpr uint8_t kCommandAmf3 = 17;
inline constexpr uint8_t kDataAmf0 = 18;
inline constexpr uint8_t kSharedObjectAmf0 = 19;
inline constexpr uint8_t kCommandAmf0 = 20;
inline constexpr uint8_t kAggregate = 22;
}  // namespace message_type

/// User Control Message event types (section 7.1.7).
enum class UserControlEvent : uint16_t {
  kStreamBegin = 0,
  kStreamEof = 1,
  kStreamDry = 2,
  kSetBufferLength = 3,
  kStreamIsRecorded = 4,
  kPingRequest = 6,
  kPingResponse = 7,
};

/// One complete RTMP message.
struct Message {
  uint32_t csid = 0;
  uint8_t type_id = 0;
  uint32_t stream_id = 0;
  uint32_t timestamp = 0;  ///< absolute, milliseconds, wraps at 2^32
  std::vector<uint8_t> payload;
};

struct ChunkLimits {
  /// Largest Set Chunk Size accepted from the peer. Any size from 2^24 up behaves the same (no
  /// message is longer than 2^24-1 bytes), so such sizes are capped rather than refused.
  uint32_t max_chunk_size = 1 << 24;
  /// Largest message; a header announcing a longer one is an error.
  uint32_t max_message_size = 4 << 20;
  /// Distinct chunk stream ids one peer may use.
  size_t max_chunk_streams = 64;
  /// Bytes held in all partially received messages together.
  size_t max_buffered_bytes = 8 << 20;
};

/// Reassembles messages from the peer's chunk stream. Applies Set Chunk Size and Abort itself
/// (they change how the following bytes parse) and still reports them to the caller.
class ChunkReader {
 public:
  using MessageSink = std::function<Status(Message&&)>;

  explicit ChunkReader(ChunkLimits limits = {}) : limits_(limits) {}

  /// Parses `bytes`, calling `sink` for each complete message in order. Stops at the first error
  /// (from the stream or from `sink`); the reader is then unusable.
  Status feed(std::span<const uint8_t> bytes, const MessageSink& sink);

  uint32_t chunk_size() const { return chunk_size_; }
  /// Bytes fed so far (for Acknowledgement), modulo 2^64.
  uint64_t bytes_received() const { return bytes_received_; }

 private:
  struct ChunkStream {
    uint32_t timestamp = 0;  ///< absolute timestamp of the current/last message
    uint32_t delta = 0;      ///< timestamp field of the last header (type 3 reuses it)
    uint32_t length = 0;
    uint8_t type_id = 0;
    uint32_t stream_id = 0;
    bool extended = false;  ///< the last header carried an extended timestamp
    bool has_header = false;
    std::vector<uint8_t> partial;
    bool in_message = false;
  };

  /// Parses one chunk header at the front of `in`; 0 when more bytes are needed.
  Result<size_t> parse_header_at(std::span<const uint8_t> in);
  Status apply_control(const Message& msg);

  ChunkLimits limits_;
  uint32_t chunk_size_ = 128;
  uint64_t bytes_received_ = 0;
  size_t buffered_ = 0;
  bool failed_ = false;
  std::vector<uint8_t> buffer_;
  std::unordered_map<uint32_t, ChunkStream> streams_;
  /// The chunk stream whose payload bytes are being read, and how many remain in this chunk.
  ChunkStream* current_ = nullptr;
  uint32_t current_csid_ = 0;
  size_t chunk_remaining_ = 0;
};

/// Serialises outgoing messages into chunks of our own chunk size.
class ChunkWriter {
 public:
  /// Appends `msg` as chunks to `out`: a type 0 header, then type 3 continuations (each repeating
  /// the extended timestamp when one is used, as FFmpeg and librtmp expect).
  void write(const Message& msg, std::vector<uint8_t>& out) const;

  /// Sends Set Chunk Size and uses the new size from the next message on.
  void write_set_chunk_size(uint32_t size, std::vector<uint8_t>& out);
  void write_window_ack_size(uint32_t size, std::vector<uint8_t>& out) const;
  /// `limit_type`: 0 hard, 1 soft, 2 dynamic.
  void write_set_peer_bandwidth(uint32_t size, uint8_t limit_type, std::vector<uint8_t>& out) const;
  void write_acknowledgement(uint32_t sequence, std::vector<uint8_t>& out) const;
  void write_user_control(UserControlEvent event, uint32_t value, std::vector<uint8_t>& out) const;
  /// An AMF0 command message (type 20).
  void write_command(uint32_t csid, uint32_t stream_id, std::span<const amf0::Value> values,
                     std::vector<uint8_t>& out) const;

  uint32_t chunk_size() const { return chunk_size_; }

 private:
  uint32_t chunk_size_ = 128;
};

}  // namespace hawker::media::rtmp
