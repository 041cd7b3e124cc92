// ChunkReader on arbitrary bytes, delivered in two reads split where the first byte says, so the
// incremental paths run too.
#include <cstddef>
#include <cstdint>
#include <span>

#include "media/rtmp/chunk.h"

using namespace hawker;
using namespace hawker::media::rtmp;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  ChunkLimits limits;
  limits.max_message_size = 1 << 16;
  limits.max_buffered_bytes = 1 << 18;
  limits.max_chunk_streams = 16;
  ChunkReader reader(limits);
  std::span<const uint8_t> bytes(data + 1, size - 1);
  size_t split = bytes.empty() ? 0 : data[0] % (bytes.size() + 1);
  size_t total = 0;
  auto sink = [&](Message&& m) {
    total += m.payload.size();
    if (m.payload.size() > limits.max_message_size) __builtin_trap();
    return ok_status();
  };
  if (reader.feed(bytes.subspan(0, split), sink)) (void)reader.feed(bytes.subspan(split), sink);
  if (total > bytes.size() * 2 + 16) __builtin_trap();
  return 0;
}
