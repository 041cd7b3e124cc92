#include "media/flv/tag.h"

#include <fmt/format.h>

#include <memory>
#include <string>
#include <vector>

namespace hawker::media::flv {

namespace {

constexpr int kMaxDimension = 16384;

Error malformed(std::string what) { return Error{ErrorCode::kProtocol, "flv: " + what}; }
Error unsupported(std::string what) {
  return Error{ErrorCode::kUnsupported, "flv: " + what + " is not supported (H.264 and AAC only)"};
}

/// Reads bits MSB first from an RBSP; every read past the end sets a sticky failure.
class BitReader {
 public:
  explicit BitReader(std::span<const uint8_t> bytes) : bytes_(bytes) {}

  uint32_t bits(int n) {
    uint32_t v = 0;
    for (int i = 0; i < n; ++i) v = v << 1 | bit();
    return v;
  }
  uint32_t bit() {
    if (pos_ >= bytes_.size() * 8) {
      failed_ = true;
      return 0;
    }
    uint32_t b = bytes_[pos_ / 8] >> (7 - pos_ % 8) & 1;
    ++pos_;
    return b;
  }
  /// Exp-Golomb ue(v); values past 2^32-2 mark the reader failed.
  uint32_t ue() {
    int zeros = 0;
    while (bit() == 0) {
      if (failed_ || ++zeros > 31) {
        failed_ = true;
        return 0;
      }
    }
    return static_cast<uint32_t>((uint64_t{1} << zeros) - 1 + bits(zeros));
  }
  int32_t se() {
    uint32_t k = ue();
    return (k & 1) ? static_cast<int32_t>((k + 1) / 2) : -static_cast<int32_t>(k / 2);
  }
  bool failed() const { return failed_; }

 private:
  std::span<const uint8_t> bytes_;
  size_t pos_ = 0;
  bool failed_ = false;
};

/// Removes emulation prevention bytes (00 00 03 -> 00 00).
std::vector<uint8_t> to_rbsp(std::span<const uint8_t> nal) {
  std::vector<uint8_t> out;
  out.reserve(nal.size());
  int zeros = 0;
  for (uint8_t b : nal) {
    if (zeros >= 2 && b == 3) {
      zeros = 0;
      continue;
    }
    zeros = b == 0 ? zeros + 1 : 0;
    out.push_back(b);
  }
  return out;
}

}  // namespace

bool sps_has_chroma_info(int profile_idc) {
  switch (profile_idc) {
    case 100:
    case 110:
    case 122:
    case 244:
    case 44:
    case 83:
    case 86:
    case 118:
    case 128:
    case 138:
    case 139:
    case 134:
    case 135:
      return true;
    default:
      return false;
  }
}

namespace {

void skip_scaling_list(BitReader& r, int size) {
  int last = 8;
  int next = 8;
  for (int j = 0; j < size && !r.failed(); ++j) {
    if (next != 0) next = (last + r.se() + 256) % 256;
    last = next == 0 ? last : next;
  }
}

const char* video_codec_name(int codec_id) {
  switch (codec_id) {
    case 2:
      return "Sorenson H.263";
    case 3:
      return "Screen video";
    case 4:
      return "On2 VP6";
    case 5:
      return "On2 VP6 with alpha";
    case 6:
      return "Screen video v2";
    case 12:
      return "HEVC";
    case 13:
      return "AV1";
    default:
      return nullptr;
  }
}

const char* audio_codec_name(int format) {
  switch (format) {
    case 0:
      return "Linear PCM (platform endian)";
    case 1:
      return "ADPCM";
    case 2:
      return "MP3";
    case 3:
      return "Linear PCM (little endian)";
    case 4:
    case 5:
    case 6:
      return "Nellymoser";
    case 7:
      return "G.711 A-law";
    case 8:
      return "G.711 mu-law";
    case 11:
      return "Speex";
    case 13:
      return "Opus";
    case 14:
      return "MP3 8 kHz";
    case 15:
      return "Device-specific sound";
    default:
      return nullptr;
  }
}

std::string fourcc(std::span<const uint8_t> body) {
  std::string out;
  for (size_t i = 1; i < 5 && i < body.size(); ++i) {
    char c = static_cast<char>(body[i]);
    out += (c >= 0x20 && c < 0x7f) ? c : '?';
  }
  return out;
}

Bytes copy_bytes(std::span<const uint8_t> s) { return Bytes(s.begin(), s.end()); }

}  // namespace

Result<SpsInfo> parse_sps(std::span<const uint8_t> nal) {
  if (nal.size() < 4) return malformed("SPS too short");
  if ((nal[0] & 0x1f) != 7)
    return malformed(fmt::format("NAL type {} is not an SPS", nal[0] & 0x1f));
  std::vector<uint8_t> rbsp = to_rbsp(nal.subspan(1));
  BitReader r(rbsp);
  SpsInfo info;
  info.profile_idc = static_cast<int>(r.bits(8));
  info.constraint_flags = static_cast<int>(r.bits(8));
  info.level_idc = static_cast<int>(r.bits(8));
  if (r.ue() > 31) return malformed("SPS id out of range");
  bool separate_colour_planes = false;
  if (sps_has_chroma_info(info.profile_idc)) {
    uint32_t chroma = r.ue();
    if (chroma > 3) return malformed("SPS chroma_format_idc out of range");
    info.chroma_format_idc = static_cast<int>(chroma);
    if (chroma == 3) separate_colour_planes = r.bit() != 0;
    uint32_t luma_depth = r.ue();
    uint32_t chroma_depth = r.ue();
    if (luma_depth > 6 || chroma_depth > 6) return malformed("SPS bit depth out of range");
    info.bit_depth_luma = 8 + static_cast<int>(luma_depth);
    info.bit_depth_chroma = 8 + static_cast<int>(chroma_depth);
    r.bit();  // qpprime_y_zero_transform_bypass_flag
    if (r.bit() != 0) {
      int lists = chroma == 3 ? 12 : 8;
      for (int i = 0; i < lists && !r.failed(); ++i) {
        if (r.bit() != 0) skip_scaling_list(r, i < 6 ? 16 : 64);
      }
    }
  }
  if (r.ue() > 12) return malformed("SPS log2_max_frame_num out of range");
  uint32_t poc_type = r.ue();
  if (poc_type == 0) {
    if (r.ue() > 12) return malformed("SPS log2_max_pic_order_cnt_lsb out of range");
  } else if (poc_type == 1) {
    r.bit();
    r.se();
    r.se();
    uint32_t cycle = r.ue();
    if (cycle > 255) return malformed("SPS num_ref_frames_in_pic_order_cnt_cycle out of range");
    for (uint32_t i = 0; i < cycle && !r.failed(); ++i) r.se();
  } else if (poc_type != 2) {
    return malformed("SPS pic_order_cnt_type out of range");
  }
  r.ue();   // max_num_ref_frames
  r.bit();  // gaps_in_frame_num_value_allowed_flag
  uint64_t width_mbs = uint64_t{r.ue()} + 1;
  uint64_t height_map_units = uint64_t{r.ue()} + 1;
  bool frame_mbs_only = r.bit() != 0;
  if (!frame_mbs_only) r.bit();  // mb_adaptive_frame_field_flag
  r.bit();                       // direct_8x8_inference_flag
  uint64_t crop_left = 0, crop_right = 0, crop_top = 0, crop_bottom = 0;
  if (r.bit() != 0) {
    crop_left = r.ue();
    crop_right = r.ue();
    crop_top = r.ue();
    crop_bottom = r.ue();
  }
  if (r.failed()) return malformed("SPS truncated");

  uint64_t crop_unit_x = 1;
  uint64_t crop_unit_y = frame_mbs_only ? 1 : 2;
  int chroma_array_type = separate_colour_planes ? 0 : info.chroma_format_idc;
  if (chroma_array_type != 0) {
    uint64_t sub_width = chroma_array_type == 3 ? 1 : 2;
    uint64_t sub_height = chroma_array_type == 1 ? 2 : 1;
    crop_unit_x = sub_width;
    crop_unit_y = sub_height * (frame_mbs_only ? 1 : 2);
  }
  uint64_t width = width_mbs * 16;
  uint64_t height = height_map_units * 16 * (frame_mbs_only ? 1 : 2);
  uint64_t crop_x = crop_unit_x * (crop_left + crop_right);
  uint64_t crop_y = crop_unit_y * (crop_top + crop_bottom);
  if (width > kMaxDimension || height > kMaxDimension || crop_x >= width || crop_y >= height) {
    return malformed(fmt::format("SPS picture size {}x{} (crop {}x{}) out of range", width, height,
                                 crop_x, crop_y));
  }
  info.width = static_cast<int>(width - crop_x);
  info.height = static_cast<int>(height - crop_y);
  return info;
}

Result<TrackConfig> parse_avc_config(std::span<const uint8_t> record) {
  if (record.size() < 7) return malformed("AVC sequence header too short");
  if (record[0] != 1) {
    return malformed(fmt::format("AVC configuration version {} (expected 1)", record[0]));
  }
  size_t pos = 5;
  int sps_count = record[pos++] & 0x1f;
  if (sps_count == 0) return malformed("AVC sequence header without SPS");
  std::span<const uint8_t> first_sps;
  for (int i = 0; i < sps_count; ++i) {
    if (record.size() - pos < 2) return malformed("AVC sequence header truncated in SPS");
    size_t len = size_t{record[pos]} << 8 | record[pos + 1];
    pos += 2;
    if (record.size() - pos < len) return malformed("AVC sequence header truncated in SPS");
    if (i == 0) first_sps = record.subspan(pos, len);
    pos += len;
  }
  if (record.size() - pos < 1) return malformed("AVC sequence header truncated before PPS");
  int pps_count = record[pos++];
  if (pps_count == 0) return malformed("AVC sequence header without PPS");
  for (int i = 0; i < pps_count; ++i) {
    if (record.size() - pos < 2) return malformed("AVC sequence header truncated in PPS");
    size_t len = size_t{record[pos]} << 8 | record[pos + 1];
    pos += 2;
    if (record.size() - pos < len) return malformed("AVC sequence header truncated in PPS");
    pos += len;
  }
  auto sps = parse_sps(first_sps);
  if (!sps) return std::move(sps).error().with_context("AVC sequence header");
  TrackConfig config;
  config.kind = TrackKind::kVideo;
  config.codec = Codec::kH264;
  config.extradata = copy_bytes(record);
  config.width = sps->width;
  config.height = sps->height;
  config.profile_idc = sps->profile_idc;
  config.constraint_flags = sps->constraint_flags;
  config.level_idc = sps->level_idc;
  return config;
}

Result<TrackConfig> parse_audio_specific_config(std::span<const uint8_t> asc) {
  static constexpr int kSampleRates[13] = {96000, 88200, 64000, 48000, 44100, 32000, 24000,
                                           22050, 16000, 12000, 11025, 8000,  7350};
  BitReader r(asc);
  uint32_t object_type = r.bits(5);
  if (object_type == 31) object_type = 32 + r.bits(6);
  uint32_t rate_index = r.bits(4);
  uint32_t sample_rate = 0;
  if (rate_index == 15) {
    sample_rate = r.bits(24);
  } else if (rate_index < 13) {
    sample_rate = static_cast<uint32_t>(kSampleRates[rate_index]);
  } else {
    return malformed(fmt::format("AAC sampling frequency index {} is reserved", rate_index));
  }
  uint32_t channels = r.bits(4);
  if (r.failed()) return malformed("AudioSpecificConfig truncated");
  if (object_type == 0) return malformed("AAC audio object type 0");
  if (sample_rate == 0 || sample_rate > 192000) {
    return malformed(fmt::format("AAC sample rate {} out of range", sample_rate));
  }
  if (channels == 0) return unsupported("AAC with channel layout in a program config element");
  if (channels > 7) return malformed(fmt::format("AAC channel configuration {}", channels));
  TrackConfig config;
  config.kind = TrackKind::kAudio;
  config.codec = Codec::kAac;
  config.extradata = copy_bytes(asc);
  config.sample_rate = static_cast<int>(sample_rate);
  config.channels = channels == 7 ? 8 : static_cast<int>(channels);
  config.audio_object_type = static_cast<int>(object_type);
  return config;
}

Result<TagContent> TagParser::video(uint32_t timestamp_ms, std::span<const uint8_t> body) {
  if (body.empty()) return malformed("empty video tag");
  if (body[0] & 0x80) {
    return unsupported(fmt::format("Enhanced RTMP video (FourCC '{}')", fourcc(body)));
  }
  int frame_type = body[0] >> 4;
  int codec_id = body[0] & 0x0f;
  if (codec_id != 7) {
    const char* name = video_codec_name(codec_id);
    if (name == nullptr) return malformed(fmt::format("unknown video codec id {}", codec_id));
    return unsupported(fmt::format("video codec {}", name));
  }
  if (frame_type == 5) return TagContent{Nothing{}};  // video info / command frame
  if (frame_type < 1 || frame_type > 4) {
    return malformed(fmt::format("video frame type {}", frame_type));
  }
  if (body.size() < 5) return malformed("AVC video tag shorter than its header");
  int packet_type = body[1];
  // SI24 composition time: sign-extend from 24 bits.
  int32_t composition = static_cast<int32_t>((uint32_t{body[2]} << 24 | uint32_t{body[3]} << 16 |
                                              uint32_t{body[4]} << 8)) >>
                        8;
  std::span<const uint8_t> data = body.subspan(5);
  switch (packet_type) {
    case 0: {
      auto config = parse_avc_config(data);
      if (!config) return std::move(config).error();
      nal_length_size_ = (data[4] & 0x03) + 1;
      if (nal_length_size_ == 3) return malformed("AVC NAL length size 3 is not allowed");
      return TagContent{std::move(*config)};
    }
    case 1: {
      if (nal_length_size_ == 0) return TagContent{Nothing{}};
      if (data.empty()) return TagContent{Nothing{}};
      auto out = std::make_shared<Bytes>();
      out->reserve(data.size() + 16);
      size_t pos = 0;
      while (pos < data.size()) {
        if (data.size() - pos < static_cast<size_t>(nal_length_size_)) {
          return malformed("AVC NAL unit length truncated");
        }
        size_t len = 0;
        for (int i = 0; i < nal_length_size_; ++i) len = len << 8 | data[pos + i];
        pos += static_cast<size_t>(nal_length_size_);
        if (len == 0 || data.size() - pos < len) {
          return malformed(
              fmt::format("AVC NAL unit of {} bytes with {} left", len, data.size() - pos));
        }
        for (int i = 3; i >= 0; --i) out->push_back(static_cast<uint8_t>(len >> (8 * i)));
        out->insert(out->end(), data.begin() + static_cast<long>(pos),
                    data.begin() + static_cast<long>(pos + len));
        pos += len;
      }
      Packet packet;
      packet.kind = TrackKind::kVideo;
      packet.timestamp_ms = timestamp_ms;
      packet.composition_ms = composition;
      packet.keyframe = frame_type == 1;
      packet.data = std::move(out);
      return TagContent{std::move(packet)};
    }
    case 2:
      return TagContent{Nothing{}};
    default:
      return malformed(fmt::format("AVC packet type {}", packet_type));
  }
}

Result<TagContent> TagParser::audio(uint32_t timestamp_ms, std::span<const uint8_t> body) {
  if (body.empty()) return malformed("empty audio tag");
  int format = body[0] >> 4;
  if (format == 9) {
    return unsupported(fmt::format("Enhanced RTMP audio (FourCC '{}')", fourcc(body)));
  }
  if (format != 10) {
    const char* name = audio_codec_name(format);
    if (name == nullptr) return malformed(fmt::format("unknown audio format {}", format));
    return unsupported(fmt::format("audio codec {}", name));
  }
  if (body.size() < 2) return malformed("AAC audio tag shorter than its header");
  std::span<const uint8_t> data = body.subspan(2);
  if (body[1] == 0) {
    auto config = parse_audio_specific_config(data);
    if (!config) return std::move(config).error();
    audio_configured_ = true;
    return TagContent{std::move(*config)};
  }
  if (body[1] != 1) return malformed(fmt::format("AAC packet type {}", body[1]));
  if (!audio_configured_ || data.empty()) return TagContent{Nothing{}};
  Packet packet;
  packet.kind = TrackKind::kAudio;
  packet.timestamp_ms = timestamp_ms;
  packet.keyframe = true;
  packet.data = std::make_shared<const Bytes>(data.begin(), data.end());
  return TagContent{std::move(packet)};
}

}  // namespace hawker::media::flv
