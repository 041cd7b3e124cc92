#include "media/rtmp/server.h"

#include <doctest/doctest.h>

#include <map>

#include "core/loop.h"
#include "media/rtmp/session.h"
#include "test/unit/media/media_test_util.h"
#include "test/unit/media/rtmp_test_client.h"

using namespace hawker;
using namespace hawker::media;
using namespace hawker::media::rtmp;
using namespace hawker::media::test;

namespace {

struct Delegate : IngestDelegate {
  std::function<void(uint64_t, std::string, AuthorizeDone)> decide;
  std::vector<std::string> keys;
  std::vector<TrackConfig> configs;
  int packets = 0;
  std::vector<uint64_t> disconnected;

  void authorize(uint64_t conn_id, std::string_view, std::string_view, std::string_view key,
                 std::string_view, AuthorizeDone done) override {
    keys.emplace_back(key);
    decide(conn_id, std::string(key), std::move(done));
  }
  void on_track_config(uint64_t, const TrackConfig& c) override { configs.push_back(c); }
  void on_packet(uint64_t, Packet&&) override { ++packets; }
  void on_disconnect(uint64_t id) override { disconnected.push_back(id); }
};

/// A TCP client on the loop that writes `script` and records what it receives until EOF.
struct TestSocket {
  uv_tcp_t tcp;
  uv_connect_t connect_req;
  std::vector<uint8_t> script;
  std::vector<uint8_t> received;
  bool eof = false;
  std::function<void(TestSocket&)> on_data;

  void start(Loop& loop, int port) {
    uv_tcp_init(loop.uv(), &tcp);
    tcp.data = this;
    connect_req.data = this;
    sockaddr_in addr{};
    uv_ip4_addr("127.0.0.1", port, &addr);
    uv_tcp_connect(&connect_req, &tcp, reinterpret_cast<const sockaddr*>(&addr),
                   [](uv_connect_t* req, int status) {
                     auto* self = static_cast<TestSocket*>(req->data);
                     REQUIRE(status == 0);
                     self->send(std::move(self->script));
                     uv_read_start(
                         reinterpret_cast<uv_stream_t*>(&self->tcp),
                         [](uv_handle_t*, size_t size, uv_buf_t* buf) {
                           *buf = uv_buf_init(new char[size], static_cast<unsigned>(size));
                         },
                         [](uv_stream_t* s, ssize_t n, const uv_buf_t* buf) {
                           auto* me = static_cast<TestSocket*>(s->data);
                           if (n > 0) {
                             me->received.insert(me->received.end(), buf->base, buf->base + n);
                             if (me->on_data) me->on_data(*me);
                           } else if (n < 0) {
                             me->eof = true;
                             uv_close(reinterpret_cast<uv_handle_t*>(s), nullptr);
                           }
                           delete[] buf->base;
                         });
                   });
  }
  void send(std::vector<uint8_t> bytes) {
    if (bytes.empty() || eof) return;
    auto* copy = new std::vector<uint8_t>(std::move(bytes));
    auto* req = new uv_write_t;
    req->data = copy;
    uv_buf_t buf =
        uv_buf_init(reinterpret_cast<char*>(copy->data()), static_cast<unsigned>(copy->size()));
    uv_write(req, reinterpret_cast<uv_stream_t*>(&tcp), &buf, 1, [](uv_write_t* r, int) {
      delete static_cast<std::vector<uint8_t>*>(r->data);
      delete r;
    });
  }
};

/// The onStatus codes in what the server sent (after the handshake).
std::vector<std::string> status_codes(const std::vector<uint8_t>& received) {
  std::vector<std::string> codes;
  if (received.size() <= 1 + 2 * kHandshakeSize) return codes;
  ChunkReader reader;
  (void)reader.feed(std::span<const uint8_t>(received).subspan(1 + 2 * kHandshakeSize),
                    [&](Message&& m) {
                      if (m.type_id == message_type::kCommandAmf0) {
                        auto v = amf0::decode_all(m.payload);
                        if (v && v->size() > 3 && (*v)[0].string == "onStatus") {
                          codes.push_back((*v)[3].string_at("code"));
                        }
                      }
                      return ok_status();
                    });
  return codes;
}

std::vector<uint8_t> publish_script(RtmpTestClient& client, const std::string& key) {
  std::vector<uint8_t> s = client.c0c1();
  append(s, client.c2());
  append(s, client.connect("live"));
  append(s, client.release_stream(key));
  append(s, client.fc_publish(key));
  append(s, client.create_stream());
  append(s, client.publish(key));
  return s;
}

}  // namespace

TEST_CASE("a client sending garbage is disconnected; the server goes on") {
  Loop loop;
  Delegate delegate;
  delegate.decide = [](uint64_t, std::string, IngestDelegate::AuthorizeDone done) {
    done(true, "");
  };
  RtmpServer server(loop, delegate);
  auto port = server.listen("127.0.0.1", 0);
  REQUIRE(port);

  TestSocket garbage;
  garbage.script = std::vector<uint8_t>(5000, 0xee);
  garbage.start(loop, *port);

  // A well-behaved client alongside: handshake bytes with a broken chunk stream after it.
  RtmpTestClient client;
  TestSocket bad_chunks;
  bad_chunks.script = client.c0c1();
  append(bad_chunks.script, client.c2());
  append(bad_chunks.script, std::vector<uint8_t>{0x44, 0, 0, 0, 0, 0, 1, 9});  // type 1 first

  bad_chunks.start(loop, *port);
  Timer guard(loop);
  guard.start(5000, 0, [&] { FAIL("connections were not closed"); });
  Timer poll(loop);
  poll.start(10, 10, [&] {
    if (garbage.eof && bad_chunks.eof) {
      CHECK(server.connection_count() == 0);
      server.shutdown();
      guard.stop();
      poll.stop();
    }
  });
  loop.run();
  CHECK(garbage.eof);
  CHECK(bad_chunks.eof);
  CHECK(garbage.received.empty());
  CHECK(bad_chunks.received.size() == 1 + 2 * kHandshakeSize);
  CHECK(delegate.disconnected.empty());
  CHECK(loop.close() == 0);
}

TEST_CASE("publish accepted asynchronously, media delivered, rejected key closed with BadName") {
  Loop loop;
  Delegate delegate;
  Timer auth_delay(loop);
  std::vector<std::pair<std::string, IngestDelegate::AuthorizeDone>> pending;
  delegate.decide = [&](uint64_t, std::string key, IngestDelegate::AuthorizeDone done) {
    pending.emplace_back(std::move(key), std::move(done));
    // Answer later, as a database lookup would.
    auth_delay.start(20, 0, [&] {
      for (auto& [k, d] : pending) d(k == "good", k == "good" ? "" : "Unknown stream key.");
      pending.clear();
    });
  };
  RtmpLimits limits;
  limits.reject_linger_ms = 300;
  RtmpServer server(loop, delegate, limits);
  auto port = server.listen("127.0.0.1", 0);
  REQUIRE(port);

  RtmpTestClient good_client;
  TestSocket good;
  good.script = publish_script(good_client, "good");
  bool sent_media = false;
  good.on_data = [&](TestSocket& s) {
    auto codes = status_codes(s.received);
    if (!sent_media && !codes.empty() && codes.back() == "NetStream.Publish.Start") {
      sent_media = true;
      std::vector<uint8_t> media =
          good_client.video(0, avc_sequence_header_tag(make_avc_record(make_sps(SpsParams{}))));
      append(media, good_client.video(0, avc_nalu_tag(true, 0, {{0x65, 1, 2, 3}})));
      s.send(media);
    }
  };
  good.start(loop, *port);

  RtmpTestClient bad_client;
  TestSocket bad;
  bad.script = publish_script(bad_client, "bad");
  bad.start(loop, *port);

  Timer guard(loop);
  guard.start(5000, 0, [&] { FAIL("timed out"); });
  Timer poll(loop);
  poll.start(10, 10, [&] {
    if (bad.eof && delegate.packets == 1) {
      auto infos = server.connections();
      REQUIRE(infos.size() == 1);
      CHECK(infos[0].publishing);
      CHECK(infos[0].app == "live");
      CHECK(infos[0].bytes_in > 2 * kHandshakeSize);
      CHECK(infos[0].bytes_out > 2 * kHandshakeSize);
      server.shutdown();
      poll.stop();
      guard.stop();
    }
  });
  loop.run();
  CHECK(status_codes(bad.received) == std::vector<std::string>{"NetStream.Publish.BadName"});
  CHECK(status_codes(good.received) == std::vector<std::string>{"NetStream.Publish.Start"});
  REQUIRE(delegate.configs.size() == 1);
  CHECK(delegate.configs[0].height == 720);
  CHECK(delegate.keys.size() == 2);
  CHECK(delegate.disconnected.size() == 2);
  CHECK(good.eof);
  CHECK(loop.close() == 0);
}

TEST_CASE("handshake timeout and connection limit") {
  Loop loop;
  Delegate delegate;
  delegate.decide = [](uint64_t, std::string, IngestDelegate::AuthorizeDone done) {
    done(true, "");
  };
  RtmpLimits limits;
  limits.handshake_timeout_ms = 50;
  limits.max_connections = 1;
  RtmpServer server(loop, delegate, limits);
  auto port = server.listen("127.0.0.1", 0);
  REQUIRE(port);
  TestSocket silent;
  silent.script = {3};  // starts a handshake and stops
  silent.start(loop, *port);
  TestSocket extra;
  extra.start(loop, *port);
  Timer guard(loop);
  guard.start(5000, 0, [&] { FAIL("timed out"); });
  Timer poll(loop);
  poll.start(10, 10, [&] {
    if (silent.eof && extra.eof) {
      server.shutdown();
      poll.stop();
      guard.stop();
    }
  });
  loop.run();
  CHECK(silent.eof);
  CHECK(extra.eof);
  CHECK(loop.close() == 0);
}

TEST_CASE("close_connection ends a publisher (takeover) and reports the disconnect") {
  Loop loop;
  Delegate delegate;
  RtmpServer* server_ptr = nullptr;
  std::map<std::string, uint64_t> live;
  delegate.decide = [&](uint64_t id, std::string key, IngestDelegate::AuthorizeDone done) {
    auto it = live.find(key);
    if (it != live.end()) server_ptr->close_connection(it->second);  // from inside a callback
    live[key] = id;
    done(true, "");
  };
  RtmpServer server(loop, delegate);
  server_ptr = &server;
  auto port = server.listen("127.0.0.1", 0);
  REQUIRE(port);
  RtmpTestClient c1, c2;
  TestSocket first, second;
  first.script = publish_script(c1, "same");
  bool second_started = false;
  first.on_data = [&](TestSocket& s) {
    auto codes = status_codes(s.received);
    if (!second_started && !codes.empty()) {
      second_started = true;
      second.script = publish_script(c2, "same");
      second.start(loop, *port);
    }
  };
  first.start(loop, *port);
  Timer guard(loop);
  guard.start(5000, 0, [&] { FAIL("timed out"); });
  Timer poll(loop);
  poll.start(10, 10, [&] {
    if (first.eof && !status_codes(second.received).empty()) {
      CHECK(server.connection_count() == 1);
      server.shutdown();
      poll.stop();
      guard.stop();
    }
  });
  loop.run();
  CHECK(delegate.disconnected.size() == 2);
  CHECK(delegate.disconnected[0] == live["same"] - 1);
  CHECK(loop.close() == 0);
}

TEST_CASE("a connection that sends no media is closed at the idle timeout") {
  Loop loop;
  Delegate delegate;
  delegate.decide = [](uint64_t, std::string, IngestDelegate::AuthorizeDone done) {
    done(true, "");
  };
  RtmpLimits limits;
  limits.idle_timeout_ms = 100;
  RtmpServer server(loop, delegate, limits);
  auto port = server.listen("127.0.0.1", 0);
  REQUIRE(port);
  RtmpTestClient client;
  TestSocket quiet;
  quiet.script = publish_script(client, "key");
  quiet.start(loop, *port);
  Timer guard(loop);
  guard.start(5000, 0, [&] { FAIL("timed out"); });
  Timer poll(loop);
  poll.start(10, 10, [&] {
    if (quiet.eof) {
      server.shutdown();
      poll.stop();
      guard.stop();
    }
  });
  loop.run();
  CHECK(status_codes(quiet.received) == std::vector<std::string>{"NetStream.Publish.Start"});
  CHECK(delegate.disconnected.size() == 1);
  CHECK(loop.close() == 0);
}
