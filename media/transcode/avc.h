#pragma once

#include <cstdint>
#include <span>

#include "core/result.h"
#include "media/flv/tag.h"
#include "media/packet.h"

namespace hawker::media::transcode {

/// Rewrites Annex B (start-code delimited) NAL units as AVCC (4-byte big-endian lengths), the form
/// FLV, MP4 and the packager carry. Fails on data that does not start with a start code.
Result<Bytes> annexb_to_avcc(std::span<const uint8_t> annexb);

/// Builds an AVCDecoderConfigurationRecord (ISO/IEC 14496-15 5.3.3.1) from the SPS and PPS found in
/// Annex B or AVCC parameter sets (an encoder's global header), with the high-profile extension
/// when the profile calls for it. Also accepts a record that already is one and returns it as is.
Result<Bytes> avc_decoder_configuration(std::span<const uint8_t> parameter_sets);

}  // namespace hawker::media::transcode
