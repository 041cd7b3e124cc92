#include "media/rtmp/chunk.h"

#include <doctest/doctest.h>

#include <numeric>

using namespace hawker;
using namespace hawker::media::rtmp;

namespace {

std::vector<uint8_t> pattern(size_t n, uint8_t seed) {
  std::vector<uint8_t> out(n);
  for (size_t i = 0; i < n; ++i) out[i] = static_cast<uint8_t>(seed + i * 7);
  return out;
}

struct Collector {
  std::vector<Message> messages;
  ChunkReader::MessageSink sink() {
    return [this](Message&& m) {
      messages.push_back(std::move(m));
      return ok_status();
    };
  }
};

void put(std::vector<uint8_t>& out, uint32_t v, int n) {
  for (int i = n; i-- > 0;) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
}

/// A raw chunk header: basic header (1-byte csid) plus the message header fields of `fmt`.
void header(std::vector<uint8_t>& out, int fmt, uint32_t csid, uint32_t ts, uint32_t length = 0,
            uint8_t type = 0, uint32_t stream = 0) {
  out.push_back(static_cast<uint8_t>(fmt << 6 | csid));
  if (fmt <= 2) put(out, ts, 3);
  if (fmt <= 1) {
    put(out, length, 3);
    out.push_back(type);
  }
  if (fmt == 0) {
    for (int i = 0; i < 4; ++i) out.push_back(static_cast<uint8_t>(stream >> (8 * i)));
  }
}

void append(std::vector<uint8_t>& out, const std::vector<uint8_t>& bytes, size_t from, size_t n) {
  out.insert(out.end(), bytes.begin() + static_cast<long>(from),
             bytes.begin() + static_cast<long>(from + n));
}

}  // namespace

TEST_CASE("writer and reader agree across chunk sizes and delivery patterns") {
  for (uint32_t chunk_size : {1u, 128u, 4096u, 60000u}) {
    CAPTURE(chunk_size);
    ChunkWriter writer;
    std::vector<uint8_t> wire;
    writer.write_set_chunk_size(chunk_size, wire);
    std::vector<Message> sent;
    for (size_t i = 0; i < 6; ++i) {
      Message m{static_cast<uint32_t>(3 + i % 3 * 100 + (i == 5 ? 400 : 0)),
                static_cast<uint8_t>(i % 2 ? 8 : 9), static_cast<uint32_t>(i % 2),
                static_cast<uint32_t>(i * 1000 + (i == 4 ? 0xfffffff0u : 0)),
                pattern(i * 997 % 9000, static_cast<uint8_t>(i))};
      writer.write(m, wire);
      sent.push_back(std::move(m));
    }
    for (size_t step : {size_t{1}, size_t{7}, wire.size()}) {
      CAPTURE(step);
      ChunkReader reader;
      Collector got;
      for (size_t at = 0; at < wire.size(); at += step) {
        size_t n = std::min(step, wire.size() - at);
        REQUIRE(reader.feed(std::span<const uint8_t>(wire).subspan(at, n), got.sink()));
      }
      CHECK(reader.chunk_size() == chunk_size);
      CHECK(reader.bytes_received() == wire.size());
      REQUIRE(got.messages.size() == sent.size() + 1);
      CHECK(got.messages[0].type_id == message_type::kSetChunkSize);
      for (size_t i = 0; i < sent.size(); ++i) {
        const Message& a = sent[i];
        const Message& b = got.messages[i + 1];
        CHECK(a.csid == b.csid);
        CHECK(a.type_id == b.type_id);
        CHECK(a.stream_id == b.stream_id);
        CHECK(a.timestamp == b.timestamp);
        CHECK(a.payload == b.payload);
      }
    }
  }
}

TEST_CASE("type 1, 2 and 3 headers reuse state and add timestamp deltas") {
  std::vector<uint8_t> wire;
  auto body = pattern(10, 1);
  header(wire, 0, 4, 1000, 10, 9, 1);
  append(wire, body, 0, 10);
  header(wire, 1, 4, 33, 4, 8);  // new length and type, delta 33
  append(wire, body, 0, 4);
  header(wire, 2, 4, 20);  // same length and type, delta 20
  append(wire, body, 0, 4);
  header(wire, 3, 4, 0);  // everything repeats: delta 20 again
  append(wire, body, 0, 4);
  ChunkReader reader;
  Collector got;
  REQUIRE(reader.feed(wire, got.sink()));
  REQUIRE(got.messages.size() == 4);
  CHECK(got.messages[0].timestamp == 1000);
  CHECK(got.messages[0].type_id == 9);
  CHECK(got.messages[1].timestamp == 1033);
  CHECK(got.messages[1].type_id == 8);
  CHECK(got.messages[1].payload.size() == 4);
  CHECK(got.messages[2].timestamp == 1053);
  CHECK(got.messages[3].timestamp == 1073);
  CHECK(got.messages[3].stream_id == 1);
}

TEST_CASE("interleaved chunk streams reassemble independently") {
  // Two 200-byte messages at chunk size 128, their chunks alternating, on csids 4 and 70
  // (a two-byte basic header).
  auto a = pattern(200, 10);
  auto b = pattern(200, 99);
  std::vector<uint8_t> wire;
  header(wire, 0, 4, 5, 200, 9, 1);
  append(wire, a, 0, 128);
  wire.insert(wire.end(), {0x00, 70 - 64});
  put(wire, 6, 3);
  put(wire, 200, 3);
  wire.push_back(8);
  wire.insert(wire.end(), {1, 0, 0, 0});
  append(wire, b, 0, 128);
  header(wire, 3, 4, 0);
  append(wire, a, 128, 72);
  wire.push_back(0xc0);
  wire.push_back(70 - 64);
  append(wire, b, 128, 72);
  ChunkReader reader;
  Collector got;
  REQUIRE(reader.feed(wire, got.sink()));
  REQUIRE(got.messages.size() == 2);
  CHECK(got.messages[0].csid == 4);
  CHECK(got.messages[0].payload == a);
  CHECK(got.messages[1].csid == 70);
  CHECK(got.messages[1].payload == b);
  CHECK(got.messages[1].timestamp == 6);
}

TEST_CASE("three-byte basic header chunk stream ids") {
  ChunkWriter writer;
  std::vector<uint8_t> wire;
  writer.write(Message{65599, 20, 0, 7, pattern(300, 3)}, wire);
  CHECK((wire[0] & 0x3f) == 1);
  ChunkReader reader;
  Collector got;
  REQUIRE(reader.feed(wire, got.sink()));
  REQUIRE(got.messages.size() == 1);
  CHECK(got.messages[0].csid == 65599);
  CHECK(got.messages[0].payload.size() == 300);
}

TEST_CASE("extended timestamps, with and without repetition on continuation chunks") {
  auto body = pattern(200, 4);
  for (bool repeat : {true, false}) {
    CAPTURE(repeat);
    std::vector<uint8_t> wire;
    header(wire, 0, 6, 0xffffff, 200, 9, 1);
    put(wire, 0x12345678, 4);
    append(wire, body, 0, 128);
    header(wire, 3, 6, 0);
    if (repeat) put(wire, 0x12345678, 4);
    append(wire, body, 128, 72);
    // The next message is a type 3 header that starts a new message: it carries the extended
    // field too and adds it as a delta.
    header(wire, 3, 6, 0);
    put(wire, 0x12345678, 4);
    append(wire, body, 0, 128);
    header(wire, 3, 6, 0);
    if (repeat) put(wire, 0x12345678, 4);
    append(wire, body, 128, 72);
    ChunkReader reader;
    Collector got;
    REQUIRE(reader.feed(wire, got.sink()));
    REQUIRE(got.messages.size() == 2);
    CHECK(got.messages[0].timestamp == 0x12345678);
    CHECK(got.messages[0].payload == body);
    CHECK(got.messages[1].timestamp == 0x2468acf0);
    CHECK(got.messages[1].payload == body);
  }
}

TEST_CASE("the writer repeats extended timestamps on continuation chunks") {
  ChunkWriter writer;
  std::vector<uint8_t> wire;
  writer.write(Message{4, 9, 1, 0x01000000, pattern(130, 0)}, wire);
  // 12-byte header + 4 extended + 128 payload, then 1-byte header + 4 extended + 2 payload.
  REQUIRE(wire.size() == 12 + 4 + 128 + 1 + 4 + 2);
  CHECK(wire[144] == 0xc4);
  CHECK(std::vector<uint8_t>(wire.begin() + 145, wire.begin() + 149) ==
        std::vector<uint8_t>{1, 0, 0, 0});
}

TEST_CASE("Set Chunk Size from the peer changes parsing and is bounded") {
  std::vector<uint8_t> wire;
  header(wire, 0, 2, 0, 4, message_type::kSetChunkSize, 0);
  put(wire, 300, 4);
  auto body = pattern(300, 2);
  header(wire, 0, 4, 0, 300, 9, 1);
  append(wire, body, 0, 300);
  ChunkReader reader;
  Collector got;
  REQUIRE(reader.feed(wire, got.sink()));
  CHECK(reader.chunk_size() == 300);
  REQUIRE(got.messages.size() == 2);
  CHECK(got.messages[1].payload == body);

  auto set_size = [](uint32_t size, ChunkLimits limits) {
    std::vector<uint8_t> w;
    header(w, 0, 2, 0, 4, message_type::kSetChunkSize, 0);
    put(w, size, 4);
    ChunkReader r(limits);
    Collector c;
    Status st = r.feed(w, c.sink());
    return std::make_pair(st.ok(), r.chunk_size());
  };
  CHECK_FALSE(set_size(0, {}).first);
  CHECK_FALSE(set_size(0x80000000u, {}).first);
  CHECK(set_size(0x7fffffff, {}) == std::make_pair(true, 0xffffffu));
  ChunkLimits small;
  small.max_chunk_size = 65536;
  CHECK(set_size(65536, small) == std::make_pair(true, 65536u));
  CHECK_FALSE(set_size(65537, small).first);
}

TEST_CASE("Abort discards a partial message") {
  auto body = pattern(200, 8);
  std::vector<uint8_t> wire;
  header(wire, 0, 4, 0, 200, 9, 1);
  append(wire, body, 0, 128);
  header(wire, 0, 2, 0, 4, message_type::kAbort, 0);
  put(wire, 4, 4);
  // csid 4 starts over with a fresh type 0 header.
  header(wire, 0, 4, 40, 3, 8, 1);
  append(wire, body, 0, 3);
  ChunkReader reader;
  Collector got;
  REQUIRE(reader.feed(wire, got.sink()));
  REQUIRE(got.messages.size() == 2);
  CHECK(got.messages[0].type_id == message_type::kAbort);
  CHECK(got.messages[1].payload.size() == 3);
  CHECK(got.messages[1].timestamp == 40);
}

TEST_CASE("chunk stream errors end the reader") {
  SUBCASE("message longer than the limit") {
    ChunkLimits limits;
    limits.max_message_size = 1000;
    std::vector<uint8_t> wire;
    header(wire, 0, 4, 0, 1001, 9, 1);
    ChunkReader reader(limits);
    Collector got;
    Status st = reader.feed(wire, got.sink());
    REQUIRE_FALSE(st);
    CHECK(st.error().code == ErrorCode::kResourceExhausted);
    CHECK_FALSE(reader.feed(wire, got.sink()));
  }
  SUBCASE("a chunk stream that starts with a type 1 header") {
    std::vector<uint8_t> wire;
    header(wire, 1, 4, 0, 10, 9);
    ChunkReader reader;
    Collector got;
    CHECK_FALSE(reader.feed(wire, got.sink()));
  }
  SUBCASE("a type 0 header in the middle of a message") {
    std::vector<uint8_t> wire;
    header(wire, 0, 4, 0, 200, 9, 1);
    wire.resize(wire.size() + 128);
    header(wire, 0, 4, 0, 200, 9, 1);
    ChunkReader reader;
    Collector got;
    CHECK_FALSE(reader.feed(wire, got.sink()));
  }
  SUBCASE("too many chunk streams") {
    ChunkLimits limits;
    limits.max_chunk_streams = 3;
    std::vector<uint8_t> wire;
    for (uint32_t csid = 3; csid < 8; ++csid) header(wire, 0, csid, 0, 0, 9, 1);
    ChunkReader reader(limits);
    Collector got;
    CHECK_FALSE(reader.feed(wire, got.sink()));
    CHECK(got.messages.size() == 3);
  }
  SUBCASE("a sink error stops parsing") {
    std::vector<uint8_t> wire;
    header(wire, 0, 4, 0, 0, 9, 1);
    header(wire, 0, 4, 0, 0, 9, 1);
    ChunkReader reader;
    int calls = 0;
    Status st = reader.feed(wire, [&](Message&&) -> Status {
      ++calls;
      return Error{ErrorCode::kProtocol, "stop"};
    });
    CHECK_FALSE(st);
    CHECK(calls == 1);
  }
}

TEST_CASE("control message writers produce the specified payloads") {
  ChunkWriter writer;
  std::vector<uint8_t> wire;
  writer.write_window_ack_size(2500000, wire);
  writer.write_set_peer_bandwidth(2500000, 2, wire);
  writer.write_acknowledgement(12345, wire);
  writer.write_user_control(UserControlEvent::kStreamBegin, 1, wire);
  writer.write_set_chunk_size(4096, wire);
  CHECK(writer.chunk_size() == 4096);
  ChunkReader reader;
  Collector got;
  REQUIRE(reader.feed(wire, got.sink()));
  REQUIRE(got.messages.size() == 5);
  CHECK(got.messages[0].type_id == message_type::kWindowAckSize);
  CHECK(got.messages[0].payload == std::vector<uint8_t>{0x00, 0x26, 0x25, 0xa0});
  CHECK(got.messages[1].payload == std::vector<uint8_t>{0x00, 0x26, 0x25, 0xa0, 2});
  CHECK(got.messages[2].payload == std::vector<uint8_t>{0, 0, 0x30, 0x39});
  CHECK(got.messages[3].payload == std::vector<uint8_t>{0, 0, 0, 0, 0, 1});
  CHECK(got.messages[4].payload == std::vector<uint8_t>{0, 0, 0x10, 0});
  for (const auto& m : got.messages) CHECK(m.csid == 2);
}
