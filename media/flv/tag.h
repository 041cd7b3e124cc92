#pragma once

#include <cstdint>
#include <span>
#include <variant>

#include "core/result.h"
#include "media/packet.h"

namespace hawker::media::flv {

/// What the H.264 SPS says about the picture.
struct SpsInfo {
  int profile_idc = 0;
  int constraint_flags = 0;
  int level_idc = 0;
  int chroma_format_idc = 1;  ///< 1 = 4:2:0 (the default when the profile does not say)
  int bit_depth_luma = 8;
  int bit_depth_chroma = 8;
  int width = 0;
  int height = 0;
};

/// Whether an SPS of this profile carries chroma format and bit depth (the "high" profiles),
/// which an AVCDecoderConfigurationRecord then repeats in its extension.
bool sps_has_chroma_info(int profile_idc);

/// Parses an H.264 sequence parameter set NAL unit (with its one-byte NAL header, emulation
/// prevention bytes still in place).
Result<SpsInfo> parse_sps(std::span<const uint8_t> nal);

/// Parses an AVCDecoderConfigurationRecord (ISO 14496-15 5.2.4.1) into a video TrackConfig whose
/// extradata is the record itself.
Result<TrackConfig> parse_avc_config(std::span<const uint8_t> record);

/// Parses an AudioSpecificConfig (ISO 14496-3 1.6.2.1) into an audio TrackConfig.
Result<TrackConfig> parse_audio_specific_config(std::span<const uint8_t> asc);

/// A tag that carried nothing to forward (an end of sequence, a video info frame, a frame before
/// its sequence header).
struct Nothing {};

/// What one FLV audio or video tag body turns into.
using TagContent = std::variant<Nothing, TrackConfig, Packet>;

/// Turns FLV audio/video tag bodies (the payload of RTMP audio and video messages) into track
/// configs and packets. Holds the per-connection state the bodies depend on: the NAL unit length
/// size from the AVC sequence header and whether each track has been configured.
///
/// Only H.264 video and AAC audio are accepted; any other codec and Enhanced RTMP (FourCC) tags
/// are refused with ErrorCode::kUnsupported naming the codec.
class TagParser {
 public:
  Result<TagContent> video(uint32_t timestamp_ms, std::span<const uint8_t> body);
  Result<TagContent> audio(uint32_t timestamp_ms, std::span<const uint8_t> body);

 private:
  int nal_length_size_ = 0;  ///< 0 until an AVC sequence header arrives
  bool audio_configured_ = false;
};

}  // namespace hawker::media::flv
