#include "media/rtmp/session.h"

#include <doctest/doctest.h>

#include "test/unit/media/media_test_util.h"
#include "test/unit/media/rtmp_test_client.h"

using namespace hawker;
using namespace hawker::media;
using namespace hawker::media::rtmp;
using namespace hawker::media::test;

namespace {

struct Recorder : SessionEvents {
  std::vector<std::string> publish_requests;  // "app|key|query"
  std::vector<TrackConfig> configs;
  std::vector<Packet> packets;
  std::vector<amf0::Value> metadata;
  int unpublished = 0;
  std::vector<Error> errors;
  std::function<void()> on_request;

  void on_publish_request(std::string_view app, std::string_view name,
                          std::string_view query) override {
    publish_requests.push_back(fmt::format("{}|{}|{}", app, name, query));
    if (on_request) on_request();
  }
  void on_track_config(const TrackConfig& c) override { configs.push_back(c); }
  void on_packet(Packet&& p) override { packets.push_back(std::move(p)); }
  void on_metadata(const amf0::Value& v) override { metadata.push_back(v); }
  void on_unpublish() override { ++unpublished; }
  void on_error(const Error& e) override { errors.push_back(e); }
};

/// What the server sent, parsed as a client would.
struct ServerOutput {
  std::vector<uint8_t> bytes;
  size_t parsed = 0;
  ChunkReader reader;
  std::vector<Message> messages;

  /// Parses everything new and returns the messages it held.
  std::vector<Message> take() {
    size_t start = parsed;
    if (start < 1 + 2 * kHandshakeSize) start = 1 + 2 * kHandshakeSize;
    std::vector<Message> out;
    if (start < bytes.size()) {
      Status st = reader.feed(std::span<const uint8_t>(bytes).subspan(start), [&](Message&& m) {
        out.push_back(std::move(m));
        return ok_status();
      });
      REQUIRE(st);
    }
    parsed = bytes.size();
    return out;
  }
};

std::vector<amf0::Value> decode(const Message& m) {
  auto v = amf0::decode_all(m.payload);
  REQUIRE(v);
  return *v;
}

/// The command name and, for onStatus, the status code of a message.
std::string describe(const Message& m) {
  if (m.type_id != message_type::kCommandAmf0) return fmt::format("type{}", m.type_id);
  auto v = decode(m);
  std::string out = v[0].string;
  if (v.size() > 3 && v[3].is_object_like()) out += ":" + v[3].string_at("code");
  return out;
}

struct Fixture {
  Recorder events;
  ServerOutput output;
  Session session{events, [this](std::vector<uint8_t>&& b) { append(output.bytes, b); }};
  RtmpTestClient client;

  void handshake_and_connect(const std::string& app = "live") {
    std::vector<uint8_t> in = client.c0c1();
    session.feed(in);
    REQUIRE(output.bytes.size() == 1 + 2 * kHandshakeSize);
    in = client.c2();
    append(in, client.connect(app));
    session.feed(in);
    REQUIRE(session.state() == Session::State::kConnected);
  }
  void request_publish(const std::string& name) {
    std::vector<uint8_t> in;
    append(in, client.release_stream(name));
    append(in, client.fc_publish(name));
    append(in, client.create_stream());
    append(in, client.publish(name));
    session.feed(in);
  }
};

}  // namespace

TEST_CASE("publish flow end to end on bytes") {
  Fixture f;
  f.handshake_and_connect("live/");
  auto connect_reply = f.output.take();
  REQUIRE(connect_reply.size() == 4);
  CHECK(connect_reply[0].type_id == message_type::kWindowAckSize);
  CHECK(connect_reply[1].type_id == message_type::kSetPeerBandwidth);
  CHECK(connect_reply[2].type_id == message_type::kSetChunkSize);
  CHECK(f.output.reader.chunk_size() == 4096);
  auto result = decode(connect_reply[3]);
  CHECK(result[0].string == "_result");
  CHECK(result[1].number == 1);
  CHECK(result[3].string_at("code") == "NetConnection.Connect.Success");
  CHECK(f.session.app() == "live");

  f.request_publish("secret-key?token=abc");
  REQUIRE(f.events.publish_requests.size() == 1);
  CHECK(f.events.publish_requests[0] == "live|secret-key|token=abc");
  CHECK(f.session.state() == Session::State::kPublishPending);
  auto replies = f.output.take();
  std::vector<std::string> names;
  for (const auto& m : replies) names.push_back(describe(m));
  CHECK(names == std::vector<std::string>{"_result", "onFCPublish:NetStream.Publish.Start",
                                          "_result", "_result"});
  auto create_result = decode(replies[3]);
  CHECK(create_result[1].number == 4);
  CHECK(create_result[3].number == 1);

  // The owner answers later (key validation is asynchronous).
  f.session.accept_publish();
  CHECK(f.session.publishing());
  replies = f.output.take();
  REQUIRE(replies.size() == 2);
  CHECK(replies[0].type_id == message_type::kUserControl);
  CHECK(replies[0].payload == std::vector<uint8_t>{0, 0, 0, 0, 0, 1});
  CHECK(describe(replies[1]) == "onStatus:NetStream.Publish.Start");
  CHECK(replies[1].stream_id == 1);

  std::vector<uint8_t> in;
  append(in, f.client.set_chunk_size(4096));
  append(in, f.client.metadata());
  append(in, f.client.video(0, avc_sequence_header_tag(make_avc_record(make_sps(SpsParams{})))));
  append(in, f.client.audio(0, aac_sequence_header_tag()));
  std::vector<uint8_t> big_nal(10000, 0x11);
  big_nal[0] = 0x65;
  append(in, f.client.video(0, avc_nalu_tag(true, 40, {big_nal})));
  append(in, f.client.audio(23, aac_raw_tag({1, 2, 3})));
  append(in, f.client.video(33, avc_nalu_tag(false, 0, {{0x41, 1}})));
  f.session.feed(in);
  CHECK(f.events.errors.empty());
  REQUIRE(f.events.metadata.size() == 1);
  CHECK(f.events.metadata[0].number_at("width") == 1280);
  REQUIRE(f.events.configs.size() == 2);
  CHECK(f.events.configs[0].width == 1280);
  CHECK(f.events.configs[1].sample_rate == 44100);
  REQUIRE(f.events.packets.size() == 3);
  CHECK(f.events.packets[0].keyframe);
  CHECK(f.events.packets[0].composition_ms == 40);
  CHECK(f.events.packets[0].data->size() == 10004);
  CHECK(f.events.packets[1].kind == TrackKind::kAudio);
  CHECK(f.events.packets[1].timestamp_ms == 23);
  CHECK(f.events.packets[2].timestamp_ms == 33);

  f.session.feed(f.client.delete_stream());
  CHECK(f.events.unpublished == 1);
  CHECK(f.session.state() == Session::State::kConnected);
}

TEST_CASE("a rejected publish gets NetStream.Publish.BadName and nothing more is processed") {
  Fixture f;
  f.handshake_and_connect();
  f.output.take();
  f.request_publish("wrong");
  f.output.take();
  f.session.reject_publish("Unknown stream key.");
  CHECK(f.session.state() == Session::State::kRejected);
  auto replies = f.output.take();
  REQUIRE(replies.size() == 1);
  auto status = decode(replies[0]);
  CHECK(status[0].string == "onStatus");
  CHECK(status[3].string_at("level") == "error");
  CHECK(status[3].string_at("code") == "NetStream.Publish.BadName");
  CHECK(status[3].string_at("description") == "Unknown stream key.");
  // Media sent anyway goes nowhere.
  f.session.feed(f.client.audio(0, aac_sequence_header_tag()));
  CHECK(f.events.configs.empty());
  CHECK(f.events.errors.empty());
}

TEST_CASE("accepting from inside on_publish_request works") {
  Fixture f;
  f.events.on_request = [&] { f.session.accept_publish(); };
  f.handshake_and_connect();
  f.request_publish("key");
  CHECK(f.session.publishing());
  auto replies = f.output.take();
  CHECK(describe(replies.back()) == "onStatus:NetStream.Publish.Start");
}

TEST_CASE("an empty stream key is refused without asking the owner") {
  Fixture f;
  f.handshake_and_connect();
  f.output.take();
  f.request_publish("?only=query");
  CHECK(f.events.publish_requests.empty());
  REQUIRE(f.events.errors.size() == 1);
  CHECK(f.session.state() == Session::State::kFailed);
  auto replies = f.output.take();
  CHECK(describe(replies.back()) == "onStatus:NetStream.Publish.BadName");
}

TEST_CASE("play is refused politely") {
  Fixture f;
  f.handshake_and_connect();
  f.output.take();
  std::vector<uint8_t> in = f.client.create_stream();
  append(in, f.client.command(8, 1,
                              {amf0::Value::make_string("play"), amf0::Value::make_number(0),
                               amf0::Value::make_null(), amf0::Value::make_string("key")}));
  f.session.feed(in);
  auto replies = f.output.take();
  CHECK(describe(replies.back()) == "onStatus:NetStream.Play.Failed");
  CHECK(f.events.errors.empty());
}

TEST_CASE("ping requests are answered and acknowledgements follow the peer's window") {
  Fixture f;
  f.handshake_and_connect();
  f.output.take();
  ChunkWriter w;
  std::vector<uint8_t> in;
  w.write_window_ack_size(5000, in);
  Message ping{2, message_type::kUserControl, 0, 0, {0, 6, 0, 0, 0x12, 0x34}};
  w.write(ping, in);
  f.session.feed(in);
  auto replies = f.output.take();
  REQUIRE(replies.size() == 1);
  CHECK(replies[0].payload == std::vector<uint8_t>{0, 7, 0, 0, 0x12, 0x34});
  // Past the window, an Acknowledgement carries the bytes received so far.
  in.clear();
  w.write(Message{3, message_type::kCommandAmf0, 0, 0,
                  amf0::encode_all(std::vector<amf0::Value>{
                      amf0::Value::make_string("noop"), amf0::Value::make_number(0),
                      amf0::Value::make_string(std::string(6000, 'x'))})},
          in);
  f.session.feed(in);
  replies = f.output.take();
  REQUIRE(replies.size() == 1);
  CHECK(replies[0].type_id == message_type::kAcknowledgement);
  uint32_t seq = uint32_t{replies[0].payload[0]} << 24 | uint32_t{replies[0].payload[1]} << 16 |
                 uint32_t{replies[0].payload[2]} << 8 | replies[0].payload[3];
  CHECK(seq == f.session.bytes_received());
}

TEST_CASE("protocol errors are reported once and stop the session") {
  SUBCASE("wrong handshake version") {
    Fixture f;
    f.session.feed(std::vector<uint8_t>{'G', 'E', 'T', ' ', '/'});
    REQUIRE(f.events.errors.size() == 1);
    CHECK(f.session.state() == Session::State::kFailed);
    f.session.feed(f.client.c0c1());
    CHECK(f.events.errors.size() == 1);
  }
  SUBCASE("AMF garbage in a command") {
    Fixture f;
    f.handshake_and_connect();
    Message m{3, message_type::kCommandAmf0, 0, 0, {0x02, 0x00, 0x07, 'c', 'o'}};
    std::vector<uint8_t> in;
    ChunkWriter().write(m, in);
    f.session.feed(in);
    REQUIRE(f.events.errors.size() == 1);
    CHECK(f.events.errors[0].message.find("amf0") != std::string::npos);
  }
  SUBCASE("commands before connect") {
    Fixture f;
    std::vector<uint8_t> in = f.client.c0c1();
    append(in, f.client.c2());
    append(in, f.client.create_stream());
    f.session.feed(in);
    REQUIRE(f.events.errors.size() == 1);
  }
  SUBCASE("an HEVC stream is refused by name") {
    Fixture f;
    f.events.on_request = [&] { f.session.accept_publish(); };
    f.handshake_and_connect();
    f.request_publish("key");
    f.session.feed(f.client.video(0, {0x1c, 0, 0, 0, 0, 1, 2, 3}));
    REQUIRE(f.events.errors.size() == 1);
    CHECK(f.events.errors[0].code == ErrorCode::kUnsupported);
    CHECK(f.events.errors[0].message.find("HEVC") != std::string::npos);
  }
  SUBCASE("a second publish on the same connection") {
    Fixture f;
    f.events.on_request = [&] { f.session.accept_publish(); };
    f.handshake_and_connect();
    f.request_publish("key");
    f.session.feed(f.client.publish("key2"));
    CHECK(f.events.errors.size() == 1);
    CHECK(f.events.publish_requests.size() == 1);
  }
}

TEST_CASE("aggregate messages deliver their tags with rebased timestamps") {
  Fixture f;
  f.events.on_request = [&] { f.session.accept_publish(); };
  f.handshake_and_connect();
  f.request_publish("key");
  std::vector<uint8_t> body;
  auto tag = [&](uint8_t type, uint32_t ts, const std::vector<uint8_t>& data) {
    uint32_t n = static_cast<uint32_t>(data.size());
    body.insert(body.end(), {type, static_cast<uint8_t>(n >> 16), static_cast<uint8_t>(n >> 8),
                             static_cast<uint8_t>(n), static_cast<uint8_t>(ts >> 16),
                             static_cast<uint8_t>(ts >> 8), static_cast<uint8_t>(ts), 0, 0, 0, 0});
    body.insert(body.end(), data.begin(), data.end());
    uint32_t back = n + 11;
    body.insert(body.end(), {static_cast<uint8_t>(back >> 24), static_cast<uint8_t>(back >> 16),
                             static_cast<uint8_t>(back >> 8), static_cast<uint8_t>(back)});
  };
  tag(8, 5000, aac_sequence_header_tag());
  tag(8, 5023, aac_raw_tag({9, 9}));
  std::vector<uint8_t> in;
  ChunkWriter().write(Message{4, message_type::kAggregate, 1, 100, body}, in);
  f.session.feed(in);
  CHECK(f.events.errors.empty());
  REQUIRE(f.events.packets.size() == 1);
  CHECK(f.events.packets[0].timestamp_ms == 123);
}
