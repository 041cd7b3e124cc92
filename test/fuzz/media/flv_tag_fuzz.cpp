// The FLV tag parser on a run of tags: each is [kind byte][u16 length][body], the kind's low bit
// choosing audio or video, so sequence headers set up state for the frames after them.
#include <cstddef>
#include <cstdint>
#include <span>

#include "media/flv/tag.h"

using namespace hawker::media;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  flv::TagParser parser;
  std::span<const uint8_t> rest(data, size);
  uint32_t ts = 0;
  while (rest.size() >= 3) {
    bool audio = rest[0] & 1;
    size_t len = size_t{rest[1]} << 8 | rest[2];
    rest = rest.subspan(3);
    len = len < rest.size() ? len : rest.size();
    auto body = rest.subspan(0, len);
    rest = rest.subspan(len);
    auto content = audio ? parser.audio(ts, body) : parser.video(ts, body);
    ts += 33;
    if (!content) continue;
    if (auto* packet = std::get_if<Packet>(&*content)) {
      if (!packet->data || packet->data->empty()) __builtin_trap();
    } else if (auto* config = std::get_if<TrackConfig>(&*content)) {
      if (config->kind == TrackKind::kVideo && (config->width <= 0 || config->height <= 0)) {
        __builtin_trap();
      }
    }
  }
  return 0;
}
