#pragma once

// The client side of an RTMP publish, built from the library's own ChunkWriter and AMF0 encoder,
// for session and server tests and the fuzz seed corpora.

#include <cstdint>
#include <string>
#include <vector>

#include "media/rtmp/amf0.h"
#include "media/rtmp/chunk.h"
#include "media/rtmp/handshake.h"

namespace hawker::media::test {

class RtmpTestClient {
 public:
  using Value = rtmp::amf0::Value;

  /// C0 + C1 of a simple handshake.
  std::vector<uint8_t> c0c1() const {
    std::vector<uint8_t> out(1 + rtmp::kHandshakeSize, 0);
    out[0] = 3;
    for (size_t i = 9; i < out.size(); ++i) out[i] = static_cast<uint8_t>(i * 5);
    return out;
  }
  std::vector<uint8_t> c2() const { return std::vector<uint8_t>(rtmp::kHandshakeSize, 0x42); }

  std::vector<uint8_t> set_chunk_size(uint32_t size) {
    std::vector<uint8_t> out;
    writer_.write_set_chunk_size(size, out);
    return out;
  }

  std::vector<uint8_t> command(uint32_t csid, uint32_t stream_id, std::vector<Value> values) {
    std::vector<uint8_t> out;
    writer_.write_command(csid, stream_id, values, out);
    return out;
  }

  std::vector<uint8_t> connect(const std::string& app) {
    return command(3, 0,
                   {Value::make_string("connect"), Value::make_number(1),
                    Value::make_object({{"app", Value::make_string(app)},
                                        {"type", Value::make_string("nonprivate")},
                                        {"flashVer", Value::make_string("FMLE/3.0")},
                                        {"tcUrl", Value::make_string("rtmp://127.0.0.1/" + app)},
                                        {"objectEncoding", Value::make_number(0)}})});
  }
  std::vector<uint8_t> release_stream(const std::string& key) {
    return command(3, 0,
                   {Value::make_string("releaseStream"), Value::make_number(2), Value::make_null(),
                    Value::make_string(key)});
  }
  std::vector<uint8_t> fc_publish(const std::string& key) {
    return command(3, 0,
                   {Value::make_string("FCPublish"), Value::make_number(3), Value::make_null(),
                    Value::make_string(key)});
  }
  std::vector<uint8_t> create_stream() {
    return command(3, 0,
                   {Value::make_string("createStream"), Value::make_number(4), Value::make_null()});
  }
  std::vector<uint8_t> publish(const std::string& name) {
    return command(4, 1,
                   {Value::make_string("publish"), Value::make_number(5), Value::make_null(),
                    Value::make_string(name), Value::make_string("live")});
  }
  std::vector<uint8_t> delete_stream() {
    return command(3, 0,
                   {Value::make_string("deleteStream"), Value::make_number(6), Value::make_null(),
                    Value::make_number(1)});
  }
  std::vector<uint8_t> metadata() {
    std::vector<Value> values{Value::make_string("@setDataFrame"), Value::make_string("onMetaData"),
                              Value::make_ecma_array({{"width", Value::make_number(1280)},
                                                      {"height", Value::make_number(720)},
                                                      {"encoder", Value::make_string("test")}})};
    std::vector<uint8_t> out;
    writer_.write(
        rtmp::Message{4, rtmp::message_type::kDataAmf0, 1, 0, rtmp::amf0::encode_all(values)}, out);
    return out;
  }
  std::vector<uint8_t> video(uint32_t ts, std::vector<uint8_t> body) {
    std::vector<uint8_t> out;
    writer_.write(rtmp::Message{6, rtmp::message_type::kVideo, 1, ts, std::move(body)}, out);
    return out;
  }
  std::vector<uint8_t> audio(uint32_t ts, std::vector<uint8_t> body) {
    std::vector<uint8_t> out;
    writer_.write(rtmp::Message{4, rtmp::message_type::kAudio, 1, ts, std::move(body)}, out);
    return out;
  }

 private:
  rtmp::ChunkWriter writer_;
};

inline void append(std::vector<uint8_t>& out, const std::vector<uint8_t>& more) {
  out.insert(out.end(), more.begin(), more.end());
}

}  // namespace hawker::media::test
