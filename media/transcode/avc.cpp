#include "media/transcode/avc.h"

#include <optional>
#include <vector>

namespace hawker::media::transcode {

namespace {

constexpr int kNalSps = 7;
constexpr int kNalPps = 8;

// Splits Annex B into NAL units (without start codes or trailing zero bytes).
std::optional<std::vector<std::span<const uint8_t>>> split_annexb(std::span<const uint8_t> in) {
  std::vector<std::span<const uint8_t>> nals;
  size_t i = 0;
  auto start_code_at = [&](size_t at) {
    return at + 2 < in.size() && in[at] == 0 && in[at + 1] == 0 && in[at + 2] == 1;
  };
  while (i < in.size() && in[i] == 0 && !start_code_at(i)) {
    ++i;
  }
  if (!start_code_at(i)) {
    return std::nullopt;
  }
  while (i < in.size()) {
    i += 3;  // at a start code
    size_t end = i;
    while (end < in.size() && !start_code_at(end)) {
      ++end;
    }
    size_t next = end;
    while (end > i && in[end - 1] == 0) {
      --end;
    }
    if (end > i) {
      nals.push_back(in.subspan(i, end - i));
    }
    i = next;
  }
  return nals;
}

// Splits AVCC (4-byte lengths) into NAL units.
std::optional<std::vector<std::span<const uint8_t>>> split_avcc(std::span<const uint8_t> in) {
  std::vector<std::span<const uint8_t>> nals;
  size_t i = 0;
  while (i < in.size()) {
    if (in.size() - i < 4) {
      return std::nullopt;
    }
    const size_t length = (size_t{in[i]} << 24) | (size_t{in[i + 1]} << 16) |
                          (size_t{in[i + 2]} << 8) | size_t{in[i + 3]};
    i += 4;
    if (length == 0 || length > in.size() - i) {
      return std::nullopt;
    }
    nals.push_back(in.subspan(i, length));
    i += length;
  }
  return nals;
}

void put16(Bytes& out, size_t value) {
  out.push_back(static_cast<uint8_t>(value >> 8));
  out.push_back(static_cast<uint8_t>(value));
}

}  // namespace

Result<Bytes> annexb_to_avcc(std::span<const uint8_t> annexb) {
  auto nals = split_annexb(annexb);
  if (!nals) {
    return unexpected(ErrorCode::kProtocol, "H.264 data does not start with a start code");
  }
  Bytes out;
  out.reserve(annexb.size() + 4 * nals->size());
  for (auto nal : *nals) {
    const size_t n = nal.size();
    out.push_back(static_cast<uint8_t>(n >> 24));
    out.push_back(static_cast<uint8_t>(n >> 16));
    out.push_back(static_cast<uint8_t>(n >> 8));
    out.push_back(static_cast<uint8_t>(n));
    out.insert(out.end(), nal.begin(), nal.end());
  }
  return out;
}

Result<Bytes> avc_decoder_configuration(std::span<const uint8_t> parameter_sets) {
  if (!parameter_sets.empty() && parameter_sets[0] == 1) {
    // configurationVersion 1: already a record (no NAL unit or start code begins with 0x01).
    const size_t sps_size =
        parameter_sets.size() >= 8 ? (size_t{parameter_sets[6]} << 8) | parameter_sets[7] : 0;
    if (parameter_sets.size() < 8 || (parameter_sets[5] & 0x1F) == 0 ||
        parameter_sets.size() < 8 + sps_size) {
      return unexpected(ErrorCode::kProtocol, "truncated AVCDecoderConfigurationRecord");
    }
    auto head = flv::parse_sps(parameter_sets.subspan(8, sps_size));
    if (!head) {
      return unexpected(std::move(head).error().with_context("avcC"));
    }
    return Bytes(parameter_sets.begin(), parameter_sets.end());
  }
  auto nals = split_annexb(parameter_sets);
  if (!nals) {
    nals = split_avcc(parameter_sets);
  }
  if (!nals) {
    return unexpected(ErrorCode::kProtocol, "parameter sets are neither Annex B nor AVCC");
  }
  std::vector<std::span<const uint8_t>> sps_list;
  std::vector<std::span<const uint8_t>> pps_list;
  for (auto nal : *nals) {
    const int type = nal[0] & 0x1F;
    if (type == kNalSps) {
      sps_list.push_back(nal);
    } else if (type == kNalPps) {
      pps_list.push_back(nal);
    }
  }
  if (sps_list.empty() || pps_list.empty() || sps_list.size() > 31 || pps_list.size() > 255) {
    return unexpected(ErrorCode::kProtocol, "parameter sets need one SPS and one PPS");
  }
  auto head = flv::parse_sps(sps_list.front());
  if (!head) {
    return unexpected(std::move(head).error().with_context("avcC"));
  }
  Bytes out;
  out.push_back(1);
  out.push_back(static_cast<uint8_t>(head->profile_idc));
  out.push_back(static_cast<uint8_t>(head->constraint_flags));
  out.push_back(static_cast<uint8_t>(head->level_idc));
  out.push_back(0xFF);  // lengthSizeMinusOne = 3
  out.push_back(static_cast<uint8_t>(0xE0 | sps_list.size()));
  for (auto sps : sps_list) {
    if (sps.size() > 0xFFFF) {
      return unexpected(ErrorCode::kProtocol, "SPS too large");
    }
    put16(out, sps.size());
    out.insert(out.end(), sps.begin(), sps.end());
  }
  out.push_back(static_cast<uint8_t>(pps_list.size()));
  for (auto pps : pps_list) {
    if (pps.size() > 0xFFFF) {
      return unexpected(ErrorCode::kProtocol, "PPS too large");
    }
    put16(out, pps.size());
    out.insert(out.end(), pps.begin(), pps.end());
  }
  if (flv::sps_has_chroma_info(head->profile_idc)) {
    out.push_back(static_cast<uint8_t>(0xFC | head->chroma_format_idc));
    out.push_back(static_cast<uint8_t>(0xF8 | (head->bit_depth_luma - 8)));
    out.push_back(static_cast<uint8_t>(0xF8 | (head->bit_depth_chroma - 8)));
    out.push_back(0);  // numOfSequenceParameterSetExt
  }
  return out;
}

}  // namespace hawker::media::transcode
