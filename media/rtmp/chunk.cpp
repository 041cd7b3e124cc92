#include "media/rtmp/chunk.h"

#include <fmt/format.h>

#include <algorithm>

namespace hawker::media::rtmp {

namespace {

constexpr uint32_t kExtendedTimestamp = 0xffffff;
constexpr uint32_t kMaxMessageLength = 0xffffff;
constexpr uint32_t kProtocolControlCsid = 2;

uint32_t be24(const uint8_t* p) { return uint32_t{p[0]} << 16 | uint32_t{p[1]} << 8 | p[2]; }
uint32_t be32(const uint8_t* p) { return uint32_t{p[0]} << 24 | be24(p + 1); }
uint32_t le32(const uint8_t* p) {
  return uint32_t{p[3]} << 24 | uint32_t{p[2]} << 16 | uint32_t{p[1]} << 8 | p[0];
}

void put_be(std::vector<uint8_t>& out, uint32_t v, int n) {
  for (int i = n; i-- > 0;) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
}

void put_basic_header(std::vector<uint8_t>& out, uint8_t fmt, uint32_t csid) {
  if (csid < 64) {
    out.push_back(static_cast<uint8_t>(fmt << 6 | csid));
  } else if (csid < 320) {
    out.push_back(static_cast<uint8_t>(fmt << 6));
    out.push_back(static_cast<uint8_t>(csid - 64));
  } else {
    out.push_back(static_cast<uint8_t>(fmt << 6 | 1));
    out.push_back(static_cast<uint8_t>((csid - 64) & 0xff));
    out.push_back(static_cast<uint8_t>((csid - 64) >> 8));
  }
}

Error chunk_error(std::string message) { return Error{ErrorCode::kProtocol, "chunk: " + message}; }

}  // namespace

Status ChunkReader::feed(std::span<const uint8_t> bytes, const MessageSink& sink) {
  if (failed_) return chunk_error("reader already failed");
  bytes_received_ += bytes.size();
  buffer_.insert(buffer_.end(), bytes.begin(), bytes.end());
  size_t pos = 0;
  Status status;
  while (status) {
    if (current_ != nullptr && chunk_remaining_ > 0) {
      size_t take = std::min(chunk_remaining_, buffer_.size() - pos);
      if (take == 0) break;
      current_->partial.insert(current_->partial.end(), buffer_.begin() + static_cast<long>(pos),
                               buffer_.begin() + static_cast<long>(pos + take));
      pos += take;
      chunk_remaining_ -= take;
      buffered_ += take;
      if (chunk_remaining_ > 0) break;
    }
    if (current_ != nullptr) {
      ChunkStream& cs = *current_;
      current_ = nullptr;
      if (cs.partial.size() < cs.length) continue;
      Message msg{current_csid_, cs.type_id, cs.stream_id, cs.timestamp, std::move(cs.partial)};
      cs.partial = {};
      cs.in_message = false;
      buffered_ -= msg.payload.size();
      status = apply_control(msg);
      if (status) status = sink(std::move(msg));
      continue;
    }
    auto used = parse_header_at(std::span<const uint8_t>(buffer_).subspan(pos));
    if (!used) {
      status = std::move(used).error();
      break;
    }
    if (*used == 0) break;
    pos += *used;
  }
  buffer_.erase(buffer_.begin(), buffer_.begin() + static_cast<long>(pos));
  if (!status) failed_ = true;
  return status;
}

Result<size_t> ChunkReader::parse_header_at(std::span<const uint8_t> in) {
  if (in.empty()) return size_t{0};
  uint8_t fmt = in[0] >> 6;
  uint32_t csid = in[0] & 0x3f;
  size_t at = 1;
  if (csid == 0) {
    if (in.size() < 2) return size_t{0};
    csid = in[1] + 64u;
    at = 2;
  } else if (csid == 1) {
    if (in.size() < 3) return size_t{0};
    csid = in[1] + in[2] * 256u + 64u;
    at = 3;
  }
  static constexpr size_t kMessageHeaderSize[4] = {11, 7, 3, 0};
  if (in.size() < at + kMessageHeaderSize[fmt]) return size_t{0};

  auto it = streams_.find(csid);
  if (it == streams_.end()) {
    if (fmt != 0) {
      return chunk_error(fmt::format("chunk stream {} starts with a type {} header", csid, fmt));
    }
    if (streams_.size() >= limits_.max_chunk_streams) {
      return Error{ErrorCode::kResourceExhausted,
                   fmt::format("chunk: more than {} chunk streams", limits_.max_chunk_streams)};
    }
  }
  const ChunkStream* prior = it == streams_.end() ? nullptr : &it->second;
  bool continuation = prior != nullptr && prior->in_message;
  if (continuation && fmt != 3) {
    return chunk_error(
        fmt::format("type {} header on chunk stream {} inside a message", fmt, csid));
  }

  const uint8_t* h = in.data() + at;
  uint32_t ts_field = fmt < 3 ? be24(h) : 0;
  bool extended = fmt < 3 ? ts_field == kExtendedTimestamp : prior->extended;
  size_t used = at + kMessageHeaderSize[fmt];
  uint32_t extended_value = 0;
  if (extended) {
    if (in.size() < used + 4) return size_t{0};
    uint32_t value = be32(in.data() + used);
    if (fmt == 3 && continuation && value != prior->delta) {
      // Some encoders omit the extended timestamp on continuation chunks; FFmpeg and librtmp
      // repeat it. Accept both: only bytes equal to the message's timestamp field are skipped.
      extended_value = prior->delta;
    } else {
      extended_value = value;
      used += 4;
    }
  }

  ChunkStream& cs = streams_[csid];
  if (fmt < 3) ts_field = extended ? extended_value : ts_field;
  switch (fmt) {
    case 0:
      cs.timestamp = ts_field;
      cs.delta = ts_field;
      cs.length = be24(h + 3);
      cs.type_id = h[6];
      cs.stream_id = le32(h + 7);
      break;
    case 1:
      cs.delta = ts_field;
      cs.timestamp += ts_field;
      cs.length = be24(h + 3);
      cs.type_id = h[6];
      break;
    case 2:
      cs.delta = ts_field;
      cs.timestamp += ts_field;
      break;
    default:
      if (!continuation) cs.timestamp += cs.delta;
      break;
  }
  if (fmt < 3) cs.extended = extended;

  if (!continuation) {
    if (cs.length > limits_.max_message_size) {
      return Error{ErrorCode::kResourceExhausted,
                   fmt::format("chunk: message of {} bytes exceeds the limit of {}", cs.length,
                               limits_.max_message_size)};
    }
    if (buffered_ + cs.length > limits_.max_buffered_bytes) {
      return Error{ErrorCode::kResourceExhausted, "chunk: too many bytes in partial messages"};
    }
    cs.in_message = true;
    cs.partial.clear();
  }
  current_ = &cs;
  current_csid_ = csid;
  chunk_remaining_ = std::min<size_t>(chunk_size_, cs.length - cs.partial.size());
  return used;
}

Status ChunkReader::apply_control(const Message& msg) {
  if (msg.type_id == message_type::kSetChunkSize) {
    if (msg.payload.size() < 4) return chunk_error("short Set Chunk Size");
    uint32_t size = be32(msg.payload.data());
    if (size == 0 || size > 0x7fffffff) {
      return chunk_error(fmt::format("invalid chunk size {}", size));
    }
    size = std::min(size, kMaxMessageLength);
    if (size > limits_.max_chunk_size) {
      return Error{ErrorCode::kResourceExhausted,
                   fmt::format("chunk: chunk size {} exceeds the limit of {}", size,
                               limits_.max_chunk_size)};
    }
    chunk_size_ = size;
  } else if (msg.type_id == message_type::kAbort) {
    if (msg.payload.size() < 4) return chunk_error("short Abort Message");
    auto it = streams_.find(be32(msg.payload.data()));
    if (it != streams_.end() && it->second.in_message) {
      buffered_ -= it->second.partial.size();
      it->second.partial = {};
      it->second.in_message = false;
    }
  }
  return ok_status();
}

void ChunkWriter::write(const Message& msg, std::vector<uint8_t>& out) const {
  bool extended = msg.timestamp >= kExtendedTimestamp;
  put_basic_header(out, 0, msg.csid);
  put_be(out, extended ? kExtendedTimestamp : msg.timestamp, 3);
  put_be(out, static_cast<uint32_t>(msg.payload.size()), 3);
  out.push_back(msg.type_id);
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<uint8_t>(msg.stream_id >> (8 * i)));
  if (extended) put_be(out, msg.timestamp, 4);
  size_t pos = 0;
  while (true) {
    size_t take = std::min<size_t>(chunk_size_, msg.payload.size() - pos);
    out.insert(out.end(), msg.payload.begin() + static_cast<long>(pos),
               msg.payload.begin() + static_cast<long>(pos + take));
    pos += take;
    if (pos >= msg.payload.size()) break;
    put_basic_header(out, 3, msg.csid);
    if (extended) put_be(out, msg.timestamp, 4);
  }
}

void ChunkWriter::write_set_chunk_size(uint32_t size, std::vector<uint8_t>& out) {
  Message msg{kProtocolControlCsid, message_type::kSetChunkSize, 0, 0, {}};
  put_be(msg.payload, size & 0x7fffffff, 4);
  write(msg, out);
  chunk_size_ = size;
}

void ChunkWriter::write_window_ack_size(uint32_t size, std::vector<uint8_t>& out) const {
  Message msg{kProtocolControlCsid, message_type::kWindowAckSize, 0, 0, {}};
  put_be(msg.payload, size, 4);
  write(msg, out);
}

void ChunkWriter::write_set_peer_bandwidth(uint32_t size, uint8_t limit_type,
                                           std::vector<uint8_t>& out) const {
  Message msg{kProtocolControlCsid, message_type::kSetPeerBandwidth, 0, 0, {}};
  put_be(msg.payload, size, 4);
  msg.payload.push_back(limit_type);
  write(msg, out);
}

void ChunkWriter::write_acknowledgement(uint32_t sequence, std::vector<uint8_t>& out) const {
  Message msg{kProtocolControlCsid, message_type::kAcknowledgement, 0, 0, {}};
  put_be(msg.payload, sequence, 4);
  write(msg, out);
}

void ChunkWriter::write_user_control(UserControlEvent event, uint32_t value,
                                     std::vector<uint8_t>& out) const {
  Message msg{kProtocolControlCsid, message_type::kUserControl, 0, 0, {}};
  put_be(msg.payload, static_cast<uint16_t>(event), 2);
  put_be(msg.payload, value, 4);
  write(msg, out);
}

void ChunkWriter::write_command(uint32_t csid, uint32_t stream_id,
                                std::span<const amf0::Value> values,
                                std::vector<uint8_t>& out) const {
  Message msg{csid, message_type::kCommandAmf0, stream_id, 0, amf0::encode_all(values)};
  write(msg, out);
}

}  // namespace hawker::media::rtmp
