#pragma once

// Builders for the media tests and the fuzz seed corpora: H.264 SPS, FLV tag bodies, and the
// client side of an RTMP publish.

#include <cstdint>
#include <string>
#include <vector>

namespace hawker::media::test {

/// Writes bits MSB first, with Exp-Golomb codes.
class BitWriter {
 public:
  void bits(uint32_t value, int n) {
    for (int i = n - 1; i >= 0; --i) bit((value >> i) & 1);
  }
  void bit(uint32_t b) {
    if (count_ % 8 == 0) bytes_.push_back(0);
    if (b) bytes_.back() |= static_cast<uint8_t>(0x80 >> (count_ % 8));
    ++count_;
  }
  void ue(uint32_t v) {
    uint64_t x = uint64_t{v} + 1;
    int len = 0;
    while ((x >> len) > 1) ++len;
    bits(0, len);
    bits(static_cast<uint32_t>(x), len + 1);
  }
  void se(int32_t v) {
    ue(v > 0 ? static_cast<uint32_t>(2 * v - 1) : static_cast<uint32_t>(-2 * v));
  }
  /// rbsp_trailing_bits, then emulation prevention.
  std::vector<uint8_t> finish_nal(uint8_t nal_header) {
    bit(1);
    while (count_ % 8 != 0) bit(0);
    std::vector<uint8_t> out{nal_header};
    int zeros = 0;
    for (uint8_t b : bytes_) {
      if (zeros >= 2 && b <= 3) {
        out.push_back(3);
        zeros = 0;
      }
      zeros = b == 0 ? zeros + 1 : 0;
      out.push_back(b);
    }
    return out;
  }

 private:
  std::vector<uint8_t> bytes_;
  size_t count_ = 0;
};

struct SpsParams {
  uint8_t profile_idc = 100;
  uint8_t constraints = 0;
  uint8_t level_idc = 31;
  uint32_t chroma_format_idc = 1;
  uint32_t width_mbs = 80;
  uint32_t height_map_units = 45;
  bool frame_mbs_only = true;
  uint32_t crop_left = 0, crop_right = 0, crop_top = 0, crop_bottom = 0;
  bool scaling_matrix = false;
  uint32_t poc_type = 0;
};

inline std::vector<uint8_t> make_sps(const SpsParams& p) {
  BitWriter w;
  w.bits(p.profile_idc, 8);
  w.bits(p.constraints, 8);
  w.bits(p.level_idc, 8);
  w.ue(0);  // seq_parameter_set_id
  if (p.profile_idc == 100 || p.profile_idc == 110 || p.profile_idc == 122 ||
      p.profile_idc == 244) {
    w.ue(p.chroma_format_idc);
    if (p.chroma_format_idc == 3) w.bit(0);
    w.ue(0);  // bit_depth_luma_minus8
    w.ue(0);  // bit_depth_chroma_minus8
    w.bit(0);
    w.bit(p.scaling_matrix ? 1 : 0);
    if (p.scaling_matrix) {
      for (int i = 0; i < 8; ++i) {
        w.bit(i == 0 ? 1 : 0);
        if (i == 0) {
          for (int j = 0; j < 16; ++j) w.se(j == 0 ? 8 : 0);
        }
      }
    }
  }
  w.ue(0);  // log2_max_frame_num_minus4
  w.ue(p.poc_type);
  if (p.poc_type == 0) {
    w.ue(2);
  } else if (p.poc_type == 1) {
    w.bit(0);
    w.se(-1);
    w.se(2);
    w.ue(2);
    w.se(5);
    w.se(-5);
  }
  w.ue(4);  // max_num_ref_frames
  w.bit(0);
  w.ue(p.width_mbs - 1);
  w.ue(p.height_map_units - 1);
  w.bit(p.frame_mbs_only ? 1 : 0);
  if (!p.frame_mbs_only) w.bit(0);
  w.bit(1);  // direct_8x8_inference_flag
  bool crop = p.crop_left || p.crop_right || p.crop_top || p.crop_bottom;
  w.bit(crop ? 1 : 0);
  if (crop) {
    w.ue(p.crop_left);
    w.ue(p.crop_right);
    w.ue(p.crop_top);
    w.ue(p.crop_bottom);
  }
  w.bit(0);  // vui_parameters_present_flag
  return w.finish_nal(0x67);
}

inline std::vector<uint8_t> make_avc_record(const std::vector<uint8_t>& sps) {
  std::vector<uint8_t> pps{0x68, 0xeb, 0xe3, 0xcb, 0x22, 0xc0};
  std::vector<uint8_t> out{1, sps[1], sps[2], sps[3], 0xff, 0xe1};
  out.push_back(static_cast<uint8_t>(sps.size() >> 8));
  out.push_back(static_cast<uint8_t>(sps.size()));
  out.insert(out.end(), sps.begin(), sps.end());
  out.push_back(1);
  out.push_back(static_cast<uint8_t>(pps.size() >> 8));
  out.push_back(static_cast<uint8_t>(pps.size()));
  out.insert(out.end(), pps.begin(), pps.end());
  return out;
}

/// FLV video tag body: AVC sequence header.
inline std::vector<uint8_t> avc_sequence_header_tag(const std::vector<uint8_t>& record) {
  std::vector<uint8_t> out{0x17, 0, 0, 0, 0};
  out.insert(out.end(), record.begin(), record.end());
  return out;
}

/// FLV video tag body: one AVC NALU packet holding `nals` (4-byte lengths).
inline std::vector<uint8_t> avc_nalu_tag(bool key, int32_t composition,
                                         const std::vector<std::vector<uint8_t>>& nals) {
  uint32_t ct = static_cast<uint32_t>(composition) & 0xffffff;
  std::vector<uint8_t> out{static_cast<uint8_t>(key ? 0x17 : 0x27), 1,
                           static_cast<uint8_t>(ct >> 16), static_cast<uint8_t>(ct >> 8),
                           static_cast<uint8_t>(ct)};
  for (const auto& nal : nals) {
    uint32_t n = static_cast<uint32_t>(nal.size());
    out.insert(out.end(), {static_cast<uint8_t>(n >> 24), static_cast<uint8_t>(n >> 16),
                           static_cast<uint8_t>(n >> 8), static_cast<uint8_t>(n)});
    out.insert(out.end(), nal.begin(), nal.end());
  }
  return out;
}

/// FLV audio tag body: AAC sequence header (AAC-LC, 44.1 kHz, stereo).
inline std::vector<uint8_t> aac_sequence_header_tag() { return {0xaf, 0x00, 0x12, 0x10}; }

inline std::vector<uint8_t> aac_raw_tag(std::vector<uint8_t> frame) {
  std::vector<uint8_t> out{0xaf, 0x01};
  out.insert(out.end(), frame.begin(), frame.end());
  return out;
}

}  // namespace hawker::media::test
