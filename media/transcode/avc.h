#pragma once

#include <cstdint>
#include <span>

#include "core/result.h"
#include "media/packet.h"

namespace hawker::media::transcode {

/// What the start of an H.264 sequence parameter set says, as far as hawker needs it.
struct SpsHead {
  int profile_idc = 0;
  int constraint_flags = 0;
  int level_idc = 0;
  int chroma_format_idc = 1;  ///< 1 = 4:2:0 (the default when the profile does not say)
  int bit_depth_luma = 8;
  int bit_depth_chroma = 8;
};

/// Reads profile, constraints, level, chroma format and bit depths from one SPS NAL unit (with its
/// one-byte NAL header, emulation prevention bytes still in).
Result<SpsHead> parse_sps_head(std::span<const uint8_t> sps);

/// Rewrites Annex B (start-code delimited) NAL units as AVCC (4-byte big-endian lengths), the form
/// FLV, MP4 and the packager carry. Fails on data that does not start with a start code.
Result<Bytes> annexb_to_avcc(std::span<const uint8_t> annexb);

/// Builds an AVCDecoderConfigurationRecord (ISO/IEC 14496-15 5.3.3.1) from the SPS and PPS found in
/// Annex B or AVCC parameter sets (an encoder's global header), with the high-profile extension
/// when the profile calls for it. Also accepts a record that already is one and returns it as is.
Result<Bytes> avc_decoder_configuration(std::span<const uint8_t> parameter_sets);

}  // namespace hawker::media::transcode
