#include "media/hls/playlist.h"

#include <fmt/format.h>

#include <charconv>

#include "core/clock.h"
#include "media/remux/timestamps.h"

namespace hawker::media::hls {

namespace {

double seconds(int64_t ticks) { return static_cast<double>(ticks) / remux::kTimebase; }

// Durations in playlists carry five decimals: 10 µs, well under one 90 kHz tick's worth of
// drift per part, and short enough to keep playlists small.
std::string duration_text(int64_t ticks) { return fmt::format("{:.5f}", seconds(ticks)); }

// RFC 8216bis 4.2: decimal-integer, 0 to 2^64-1; we accept what fits an int64.
bool parse_decimal(std::string_view text, int64_t& out) {
  if (text.empty() || text.size() > 18) {
    return false;
  }
  for (char c : text) {
    if (c < '0' || c > '9') {
      return false;
    }
  }
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc{} && ptr == text.data() + text.size();
}

}  // namespace

std::string init_uri(int generation) { return fmt::format("init{}.mp4", generation); }
std::string segment_uri(int64_t msn) { return fmt::format("seg{}.m4s", msn); }
std::string part_uri(int64_t msn, int index) { return fmt::format("part{}.{}.m4s", msn, index); }

double can_skip_until_s(const MediaPlaylist& playlist) { return 6.0 * playlist.target_duration_s; }

double part_target_s(const MediaPlaylist& playlist) {
  // Rounded up to the millisecond: every part stays within the printed value.
  const int64_t ms = (playlist.part_target + remux::kTicksPerMs - 1) / remux::kTicksPerMs;
  return static_cast<double>(ms) / 1000.0;
}

double part_hold_back_s(const MediaPlaylist& playlist) {
  // Three times the printed PART-TARGET, so that a player checking the rule sees it kept.
  return 3.0 * part_target_s(playlist);
}

std::string write_media_playlist(const MediaPlaylist& playlist, bool delta_update) {
  std::string out;
  out.reserve(4096);
  auto line = [&out](std::string_view text) {
    out.append(text);
    out.push_back('\n');
  };

  line("#EXTM3U");
  line("#EXT-X-VERSION:9");
  line(fmt::format("#EXT-X-TARGETDURATION:{}", playlist.target_duration_s));
  line(fmt::format(
      "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL={:.1f},PART-HOLD-BACK={:.3f}",
      can_skip_until_s(playlist), part_hold_back_s(playlist)));
  line(fmt::format(
      "#EXT-X-PART-INF:PART-TARGET={:.3f}",
      static_cast<double>((playlist.part_target + remux::kTicksPerMs - 1) / remux::kTicksPerMs) /
          1000.0));
  const int64_t media_sequence =
      playlist.segments.empty() ? playlist.next_msn : playlist.segments.front().msn;
  line(fmt::format("#EXT-X-MEDIA-SEQUENCE:{}", media_sequence));
  line(fmt::format("#EXT-X-DISCONTINUITY-SEQUENCE:{}", playlist.discontinuity_sequence));

  // A delta update may leave out the complete segments that end more than CAN-SKIP-UNTIL before
  // the end of the playlist; it keeps at least the newest segment.
  size_t skipped = 0;
  if (delta_update) {
    int64_t total = 0;
    for (const PlaylistSegment& segment : playlist.segments) {
      total += segment.duration;
    }
    const auto boundary = static_cast<int64_t>(can_skip_until_s(playlist) * remux::kTimebase);
    int64_t end = 0;
    for (size_t i = 0; i + 1 < playlist.segments.size(); ++i) {
      const PlaylistSegment& segment = playlist.segments[i];
      end += segment.duration;
      if (!segment.complete || total - end < boundary) {
        break;
      }
      skipped = i + 1;
    }
    if (skipped > 0) {
      line(fmt::format("#EXT-X-SKIP:SKIPPED-SEGMENTS={}", skipped));
    }
  }

  int current_generation = -1;
  for (size_t i = skipped; i < playlist.segments.size(); ++i) {
    const PlaylistSegment& segment = playlist.segments[i];
    if (segment.discontinuity) {
      line("#EXT-X-DISCONTINUITY");
    }
    if (segment.init_generation != current_generation) {
      line(fmt::format("#EXT-X-MAP:URI=\"{}\"", init_uri(segment.init_generation)));
      current_generation = segment.init_generation;
    }
    line(fmt::format("#EXT-X-PROGRAM-DATE-TIME:{}",
                     format_rfc3339_ms(segment.program_date_time_ms)));
    for (size_t p = 0; p < segment.parts.size(); ++p) {
      const PlaylistPart& part = segment.parts[p];
      line(fmt::format("#EXT-X-PART:DURATION={},URI=\"{}\"{}", duration_text(part.duration),
                       part_uri(segment.msn, static_cast<int>(p)),
                       part.independent ? ",INDEPENDENT=YES" : ""));
    }
    if (segment.complete) {
      line(fmt::format("#EXTINF:{},", duration_text(segment.duration)));
      line(segment_uri(segment.msn));
    }
  }

  if (!playlist.ended) {
    int64_t hint_msn = playlist.next_msn;
    int hint_part = 0;
    if (!playlist.segments.empty() && !playlist.segments.back().complete) {
      hint_msn = playlist.segments.back().msn;
      hint_part = static_cast<int>(playlist.segments.back().parts.size());
    }
    line(fmt::format("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"{}\"", part_uri(hint_msn, hint_part)));
  }
  for (const RenditionReport& report : playlist.reports) {
    line(fmt::format("#EXT-X-RENDITION-REPORT:URI=\"../{}/playlist.m3u8\",LAST-MSN={},LAST-PART={}",
                     report.name, report.last_msn, report.last_part));
  }
  if (playlist.ended) {
    line("#EXT-X-ENDLIST");
  }
  return out;
}

std::string write_multivariant_playlist(std::span<const Variant> variants) {
  std::string out = "#EXTM3U\n#EXT-X-VERSION:9\n";
  for (const Variant& variant : variants) {
    std::string codecs;
    const TrackConfig* video = nullptr;
    for (const TrackConfig& track : variant.tracks) {
      if (!codecs.empty()) {
        codecs += ',';
      }
      codecs += track.codec_string();
      if (track.kind == TrackKind::kVideo) {
        video = &track;
      }
    }
    out += fmt::format("#EXT-X-STREAM-INF:BANDWIDTH={}", variant.bandwidth);
    if (variant.average_bandwidth > 0) {
      out += fmt::format(",AVERAGE-BANDWIDTH={}", variant.average_bandwidth);
    }
    out += fmt::format(",CODECS=\"{}\"", codecs);
    if (video != nullptr && video->width > 0 && video->height > 0) {
      out += fmt::format(",RESOLUTION={}x{}", video->width, video->height);
    }
    if (video != nullptr && variant.frame_rate > 0) {
      out += fmt::format(",FRAME-RATE={:.3f}", variant.frame_rate);
    }
    out += fmt::format("\n{}/playlist.m3u8\n", variant.name);
  }
  return out;
}

bool is_available(const PlaylistPosition& position, int64_t msn, int part) {
  if (part < 0) {
    return position.last_complete_msn >= msn;
  }
  return position.last_msn > msn || (position.last_msn == msn && position.last_part >= part);
}

BlockingDecision decide_blocking_request(const BlockingQuery& query,
                                         const PlaylistPosition& position) {
  BlockingDecision decision;
  auto bad = [&decision](std::string why) {
    decision.action = BlockingDecision::Action::kBadRequest;
    decision.error = std::move(why);
    return decision;
  };

  if (query.skip) {
    if (*query.skip == "YES" || *query.skip == "v2") {
      decision.delta_update = true;
    } else {
      return bad("_HLS_skip must be YES or v2");
    }
  }
  if (query.part && !query.msn) {
    return bad("_HLS_part requires _HLS_msn");
  }
  if (!query.msn) {
    return decision;
  }
  int64_t msn = 0;
  if (!parse_decimal(*query.msn, msn)) {
    return bad("_HLS_msn is not a decimal integer");
  }
  int64_t part = -1;
  if (query.part) {
    if (!parse_decimal(*query.part, part) || part > 1'000'000) {
      return bad("_HLS_part is not a decimal integer");
    }
  }
  if (msn > position.last_msn + 2) {
    return bad("_HLS_msn is more than two segments beyond the last one");
  }
  decision.msn = msn;
  decision.part = static_cast<int>(part);
  decision.action = is_available(position, msn, decision.part)
                        ? BlockingDecision::Action::kAnswerNow
                        : BlockingDecision::Action::kHold;
  return decision;
}

}  // namespace hawker::media::hls
