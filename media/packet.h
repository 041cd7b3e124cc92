#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace hawker::media {

enum class TrackKind : uint8_t { kVideo, kAudio };

enum class Codec : uint8_t { kH264, kAac };

using Bytes = std::vector<uint8_t>;
/// Immutable bytes shared across threads without copies.
using SharedBytes = std::shared_ptr<const Bytes>;

/// A track's decoder configuration, from the FLV sequence header.
struct TrackConfig {
  TrackKind kind = TrackKind::kVideo;
  Codec codec = Codec::kH264;
  /// AVCDecoderConfigurationRecord (H.264) or AudioSpecificConfig (AAC), as carried in FLV and
  /// as libavformat wants it in `codecpar->extradata`.
  Bytes extradata;
  // Video (from the SPS).
  int width = 0;
  int height = 0;
  int profile_idc = 0;  ///< H.264 profile_idc (66 baseline, 77 main, 100 high)
  int constraint_flags = 0;
  int level_idc = 0;
  // Audio (from the AudioSpecificConfig).
  int sample_rate = 0;
  int channels = 0;
  int audio_object_type = 0;  ///< 2 for AAC-LC

  /// RFC 6381 codec string as HLS CODECS wants it: "avc1.64001f", "mp4a.40.2".
  std::string codec_string() const;
};

/// One coded frame as it arrives from RTMP/FLV: raw 32-bit millisecond timestamps, not yet
/// normalised (the media worker unwraps and rebases them).
struct Packet {
  TrackKind kind = TrackKind::kVideo;
  uint32_t timestamp_ms = 0;   ///< RTMP/FLV timestamp (DTS), wraps at 2^32
  int32_t composition_ms = 0;  ///< PTS - DTS for H.264 (FLV CompositionTime); 0 for audio
  bool keyframe = false;       ///< video: IDR / FLV key frame; audio: always true
  /// H.264: AVCC (4-byte length-prefixed NAL units). AAC: one raw access unit.
  SharedBytes data;
};

}  // namespace hawker::media
