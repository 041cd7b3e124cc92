// A whole rtmp::Session fed a valid simple handshake and then arbitrary bytes, with an owner that
// accepts every publish, so commands, metadata and media all reach their parsers.
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "media/rtmp/session.h"

using namespace hawker;
using namespace hawker::media;
using namespace hawker::media::rtmp;

namespace {

struct AcceptAll : SessionEvents {
  Session* session = nullptr;
  int errors = 0;
  void on_publish_request(std::string_view, std::string_view, std::string_view) override {
    session->accept_publish();
  }
  void on_track_config(const TrackConfig&) override {}
  void on_packet(Packet&& p) override {
    if (!p.data) __builtin_trap();
  }
  void on_metadata(const amf0::Value&) override {}
  void on_unpublish() override {}
  void on_error(const Error&) override { ++errors; }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  AcceptAll events;
  size_t sent = 0;
  SessionLimits limits;
  limits.chunk.max_message_size = 1 << 16;
  limits.chunk.max_buffered_bytes = 1 << 18;
  Session session(
      events, [&](std::vector<uint8_t>&& b) { sent += b.size(); }, limits,
      [](std::span<uint8_t> out) {
        for (auto& b : out) b = 0x11;
      });
  events.session = &session;
  std::vector<uint8_t> handshake(1 + 2 * kHandshakeSize, 0);
  handshake[0] = 3;
  session.feed(handshake);
  session.feed(std::span<const uint8_t>(data, size));
  if (events.errors > 1) __builtin_trap();
  return 0;
}
