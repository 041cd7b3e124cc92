#include "media/hls/playlist_validator.h"

#include <fmt/format.h>

#include <cmath>
#include <cstdlib>
#include <map>
#include <optional>

#include "core/clock.h"

namespace hawker::media::hls {

namespace {

// Durations are printed with 5 decimals: each may be off by half of the last digit.
constexpr double kPrintedDurationSlack = 0.000005;
// PROGRAM-DATE-TIME is printed in whole milliseconds and derived from 90 kHz media time.
constexpr double kDateSlackMs = 2.0;
constexpr double kNoDate = -1e300;

std::vector<std::string_view> split_lines(std::string_view text) {
  std::vector<std::string_view> lines;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) {
      end = text.size();
    }
    std::string_view line = text.substr(start, end - start);
    if (!line.empty() && line.back() == '\r') {
      line.remove_suffix(1);
    }
    lines.push_back(line);
    start = end + 1;
  }
  return lines;
}

// Attribute lists (RFC 8216bis 4.2): NAME=value, NAME="quoted", separated by commas.
std::map<std::string, std::string> parse_attributes(std::string_view list) {
  std::map<std::string, std::string> out;
  size_t i = 0;
  while (i < list.size()) {
    const size_t eq = list.find('=', i);
    if (eq == std::string_view::npos) {
      break;
    }
    std::string name(list.substr(i, eq - i));
    std::string value;
    size_t j = eq + 1;
    if (j < list.size() && list[j] == '"') {
      const size_t close = list.find('"', j + 1);
      if (close == std::string_view::npos) {
        out[name] = std::string(list.substr(j + 1));
        break;
      }
      value = std::string(list.substr(j + 1, close - j - 1));
      j = close + 1;
    } else {
      const size_t comma = list.find(',', j);
      value = std::string(
          list.substr(j, comma == std::string_view::npos ? list.size() - j : comma - j));
      j = comma == std::string_view::npos ? list.size() : comma;
    }
    out[name] = value;
    i = j < list.size() && list[j] == ',' ? j + 1 : j;
  }
  return out;
}

std::optional<double> to_number(const std::string& text) {
  if (text.empty()) {
    return std::nullopt;
  }
  char* end = nullptr;
  const double value = std::strtod(text.c_str(), &end);
  if (end != text.c_str() + text.size() || !std::isfinite(value)) {
    return std::nullopt;
  }
  return value;
}

std::optional<int64_t> to_integer(std::string_view text) {
  if (text.empty() || text.size() > 18) {
    return std::nullopt;
  }
  int64_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') {
      return std::nullopt;
    }
    value = value * 10 + (c - '0');
  }
  return value;
}

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

// "part12.3.m4s" -> (12, 3); "seg12.m4s" -> (12, -1).
bool parse_media_uri(std::string_view uri, int64_t& msn, int& part) {
  if (starts_with(uri, "part") && uri.ends_with(".m4s")) {
    std::string_view body = uri.substr(4, uri.size() - 8);
    const size_t dot = body.find('.');
    if (dot == std::string_view::npos) {
      return false;
    }
    auto m = to_integer(body.substr(0, dot));
    auto p = to_integer(body.substr(dot + 1));
    if (!m || !p) {
      return false;
    }
    msn = *m;
    part = static_cast<int>(*p);
    return true;
  }
  if (starts_with(uri, "seg") && uri.ends_with(".m4s")) {
    auto m = to_integer(uri.substr(3, uri.size() - 7));
    if (!m) {
      return false;
    }
    msn = *m;
    part = -1;
    return true;
  }
  return false;
}

struct PendingSegment {
  std::vector<double> part_durations;
  std::optional<int64_t> pdt_ms;
  bool discontinuity = false;
};

}  // namespace

ValidationResult validate_media_playlist(std::string_view text, const ValidationOptions& options) {
  ValidationResult result;
  auto fail = [&result](std::string message) { result.errors.push_back(std::move(message)); };

  const auto lines = split_lines(text);
  if (lines.empty() || lines.front() != "#EXTM3U") {
    fail("first line is not #EXTM3U");
    return result;
  }

  std::optional<int64_t> version;
  std::optional<int64_t> target_duration;
  std::optional<double> part_target;
  std::optional<double> part_hold_back;
  std::optional<double> can_skip_until;
  bool can_block_reload = false;
  std::optional<int64_t> media_sequence;
  std::optional<int64_t> discontinuity_sequence;
  bool have_map = false;
  bool have_hint = false;
  bool ended = false;
  bool saw_discontinuity = false;
  std::optional<std::string> hint_uri;

  // Where the next segment and part are expected.
  int64_t expected_msn = 0;
  int expected_part = 0;
  bool media_started = false;
  PendingSegment current;
  // -1 when no EXTINF is waiting for its URI (an optional<double> here trips g++ 12's
  // -Wmaybe-uninitialized).
  double pending_extinf = -1;
  // End of the previous segment on the date timeline, when it is known and continuous.
  double previous_end_ms = kNoDate;

  auto header_done = [&]() {
    if (!media_started) {
      media_started = true;
      expected_msn = media_sequence.value_or(0);
    }
  };

  for (size_t i = 1; i < lines.size(); ++i) {
    const std::string_view line = lines[i];
    if (line.empty()) {
      continue;
    }
    const size_t colon = line.find(':');
    const std::string_view tag = line.substr(0, colon);
    const std::string_view value =
        colon == std::string_view::npos ? std::string_view{} : line.substr(colon + 1);

    if (tag == "#EXT-X-VERSION") {
      version = to_integer(value);
    } else if (tag == "#EXT-X-TARGETDURATION") {
      target_duration = to_integer(value);
      if (!target_duration) {
        fail("EXT-X-TARGETDURATION is not an integer");
      }
    } else if (tag == "#EXT-X-PART-INF") {
      auto attrs = parse_attributes(value);
      part_target = to_number(attrs["PART-TARGET"]);
      if (!part_target || *part_target <= 0) {
        fail("EXT-X-PART-INF has no valid PART-TARGET");
      }
    } else if (tag == "#EXT-X-SERVER-CONTROL") {
      auto attrs = parse_attributes(value);
      can_block_reload = attrs["CAN-BLOCK-RELOAD"] == "YES";
      if (attrs.count("PART-HOLD-BACK") != 0) {
        part_hold_back = to_number(attrs["PART-HOLD-BACK"]);
      }
      if (attrs.count("CAN-SKIP-UNTIL") != 0) {
        can_skip_until = to_number(attrs["CAN-SKIP-UNTIL"]);
      }
    } else if (tag == "#EXT-X-MEDIA-SEQUENCE") {
      media_sequence = to_integer(value);
      if (!media_sequence) {
        fail("EXT-X-MEDIA-SEQUENCE is not an integer");
      }
    } else if (tag == "#EXT-X-DISCONTINUITY-SEQUENCE") {
      discontinuity_sequence = to_integer(value);
      if (!discontinuity_sequence) {
        fail("EXT-X-DISCONTINUITY-SEQUENCE is not an integer");
      }
    } else if (tag == "#EXT-X-SKIP") {
      header_done();
      auto attrs = parse_attributes(value);
      auto skipped = to_integer(attrs["SKIPPED-SEGMENTS"]);
      if (!skipped) {
        fail("EXT-X-SKIP without SKIPPED-SEGMENTS");
      } else {
        if (!can_skip_until) {
          fail("EXT-X-SKIP in a playlist without CAN-SKIP-UNTIL");
        }
        result.skipped = static_cast<int>(*skipped);
        expected_msn += *skipped;
      }
    } else if (tag == "#EXT-X-DISCONTINUITY") {
      header_done();
      current.discontinuity = true;
      saw_discontinuity = true;
      previous_end_ms = kNoDate;
    } else if (tag == "#EXT-X-MAP") {
      header_done();
      if (parse_attributes(value)["URI"].empty()) {
        fail("EXT-X-MAP without URI");
      }
      have_map = true;
    } else if (tag == "#EXT-X-PROGRAM-DATE-TIME") {
      header_done();
      int64_t ms = 0;
      if (!parse_rfc3339(std::string(value), ms)) {
        fail(fmt::format("bad EXT-X-PROGRAM-DATE-TIME {}", value));
      } else {
        current.pdt_ms = ms;
        if (previous_end_ms != kNoDate &&
            std::fabs(static_cast<double>(ms) - previous_end_ms) > kDateSlackMs) {
          fail(
              fmt::format("segment {}: PROGRAM-DATE-TIME is {:.0f} ms off the previous segment's "
                          "end",
                          expected_msn, static_cast<double>(ms) - previous_end_ms));
        }
      }
    } else if (tag == "#EXT-X-PART") {
      header_done();
      if (!have_map) {
        fail("part before EXT-X-MAP");
      }
      auto attrs = parse_attributes(value);
      auto duration = to_number(attrs["DURATION"]);
      int64_t msn = 0;
      int part = 0;
      if (!duration) {
        fail("EXT-X-PART without a valid DURATION");
        continue;
      }
      if (!parse_media_uri(attrs["URI"], msn, part) || part < 0) {
        fail(fmt::format("EXT-X-PART URI {} is not a part URI", attrs["URI"]));
        continue;
      }
      if (msn != expected_msn || part != expected_part) {
        fail(fmt::format("part {}.{} where {}.{} was expected", msn, part, expected_msn,
                         expected_part));
      }
      if (!part_target) {
        fail("EXT-X-PART without EXT-X-PART-INF");
      } else if (*duration > *part_target + 1e-9) {
        fail(fmt::format("part {}.{} lasts {:.5f} s, more than PART-TARGET {:.3f}", msn, part,
                         *duration, *part_target));
      }
      if (attrs["INDEPENDENT"] == "YES" && options.part_starts_with_keyframe &&
          !options.part_starts_with_keyframe(msn, part)) {
        fail(fmt::format("part {}.{} is INDEPENDENT=YES but does not start with a keyframe", msn,
                         part));
      }
      current.part_durations.push_back(*duration);
      expected_part = part + 1;
      ++result.parts;
    } else if (tag == "#EXTINF") {
      header_done();
      const size_t comma = value.find(',');
      auto duration = to_number(std::string(value.substr(0, comma)));
      if (!duration) {
        fail("EXTINF without a valid duration");
        continue;
      }
      if (*duration < 0) {
        fail("EXTINF is negative");
        continue;
      }
      pending_extinf = *duration;
    } else if (tag == "#EXT-X-PRELOAD-HINT") {
      auto attrs = parse_attributes(value);
      if (attrs["TYPE"] != "PART") {
        fail("EXT-X-PRELOAD-HINT is not TYPE=PART");
      }
      have_hint = true;
      hint_uri = attrs["URI"];
    } else if (tag == "#EXT-X-RENDITION-REPORT") {
      auto attrs = parse_attributes(value);
      if (attrs["URI"].empty() || !to_integer(attrs["LAST-MSN"])) {
        fail("EXT-X-RENDITION-REPORT needs URI and LAST-MSN");
      }
      if (part_target && !to_integer(attrs["LAST-PART"])) {
        fail("EXT-X-RENDITION-REPORT needs LAST-PART in a playlist with parts");
      }
    } else if (tag == "#EXT-X-ENDLIST") {
      ended = true;
    } else if (!line.starts_with("#")) {
      // A segment URI closes the segment.
      header_done();
      int64_t msn = 0;
      int part = 0;
      if (!parse_media_uri(line, msn, part) || part != -1) {
        fail(fmt::format("{} is not a segment URI", line));
      } else if (msn != expected_msn) {
        fail(fmt::format("segment {} where {} was expected", msn, expected_msn));
      }
      if (!have_map) {
        fail("segment before EXT-X-MAP");
      }
      if (pending_extinf < 0) {
        fail(fmt::format("segment {} has no EXTINF", msn));
      } else {
        const double extinf = pending_extinf;
        if (target_duration && std::lround(extinf) > *target_duration) {
          fail(fmt::format("segment {}: EXTINF {:.5f} rounds above TARGETDURATION {}", msn, extinf,
                           *target_duration));
        }
        if (!current.part_durations.empty()) {
          double sum = 0;
          for (double d : current.part_durations) {
            sum += d;
          }
          const double slack =
              kPrintedDurationSlack * static_cast<double>(current.part_durations.size() + 1);
          if (std::fabs(sum - extinf) > slack) {
            fail(fmt::format("segment {}: parts add up to {:.5f} s, EXTINF says {:.5f}", msn, sum,
                             extinf));
          }
        }
        previous_end_ms = kNoDate;
        if (current.pdt_ms) {
          previous_end_ms = static_cast<double>(*current.pdt_ms) + extinf * 1000.0;
        }
      }
      ++result.segments;
      expected_msn = msn + 1;
      expected_part = 0;
      pending_extinf = -1;
      current = PendingSegment{};
    }
  }

  header_done();
  if (!target_duration) {
    fail("no EXT-X-TARGETDURATION");
  }
  if (!media_sequence) {
    fail("no EXT-X-MEDIA-SEQUENCE");
  }
  if (part_target) {
    if (!version || *version < 9) {
      fail("LL-HLS tags need EXT-X-VERSION 9 or more");
    }
    if (!can_block_reload) {
      fail("EXT-X-SERVER-CONTROL lacks CAN-BLOCK-RELOAD=YES");
    }
    if (!part_hold_back) {
      fail("EXT-X-SERVER-CONTROL lacks PART-HOLD-BACK");
    } else if (*part_hold_back + 1e-9 < 3 * *part_target) {
      fail(fmt::format("PART-HOLD-BACK {:.3f} is less than 3 x PART-TARGET {:.3f}", *part_hold_back,
                       *part_target));
    }
    if (!ended && !have_hint) {
      fail("no EXT-X-PRELOAD-HINT");
    }
    if (hint_uri) {
      int64_t msn = 0;
      int part = 0;
      if (!parse_media_uri(*hint_uri, msn, part) || msn != expected_msn || part != expected_part) {
        fail(fmt::format("preload hint {} is not the next part {}.{}", *hint_uri, expected_msn,
                         expected_part));
      }
    }
  }
  if (can_skip_until && target_duration &&
      *can_skip_until + 1e-9 < 6.0 * static_cast<double>(*target_duration)) {
    fail(fmt::format("CAN-SKIP-UNTIL {:.1f} is less than 6 x TARGETDURATION", *can_skip_until));
  }
  if (pending_extinf >= 0) {
    fail("EXTINF without a segment URI");
  }
  if (saw_discontinuity && !discontinuity_sequence) {
    fail("EXT-X-DISCONTINUITY without EXT-X-DISCONTINUITY-SEQUENCE");
  }
  return result;
}

}  // namespace hawker::media::hls
