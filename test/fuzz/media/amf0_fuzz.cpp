// AMF0 decode on arbitrary bytes; whatever decodes must survive an encode/decode round trip.
#include <cstddef>
#include <cstdint>
#include <span>

#include "media/rtmp/amf0.h"

using namespace hawker::media::rtmp;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto values = amf0::decode_all(std::span<const uint8_t>(data, size));
  if (!values) return 0;
  auto bytes = amf0::encode_all(*values);
  auto again = amf0::decode_all(bytes, amf0::DecodeLimits{64, 1 << 20});
  if (!again || !(*again == *values)) __builtin_trap();
  return 0;
}
