#include "media/packet.h"

#include <fmt/format.h>

namespace hawker::media {

std::string TrackConfig::codec_string() const {
  if (codec == Codec::kH264) {
    return fmt::format("avc1.{:02x}{:02x}{:02x}", profile_idc, constraint_flags, level_idc);
  }
  return fmt::format("mp4a.40.{}", audio_object_type == 0 ? 2 : audio_object_type);
}

}  // namespace hawker::media
