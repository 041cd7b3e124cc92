#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "media/packet.h"

namespace hawker::media::hls {

// URL scheme, relative to /live/{channel}/ (see docs/llhls.md):
//   index.m3u8                     multivariant playlist
//   {rendition}/playlist.m3u8      media playlist
//   {rendition}/init{gen}.mp4      init segment of publish generation {gen}
//   {rendition}/seg{msn}.m4s       whole segment
//   {rendition}/part{msn}.{i}.m4s  partial segment
// Media playlists name the others relative to their own folder.
std::string init_uri(int generation);
std::string segment_uri(int64_t msn);
std::string part_uri(int64_t msn, int index);

/// Name of the rendition that passes the publisher's encoding through.
inline constexpr std::string_view kSourceRendition = "source";

struct PlaylistPart {
  int64_t duration = 0;  ///< 90 kHz
  bool independent = false;
};

struct PlaylistSegment {
  int64_t msn = 0;
  int64_t duration = 0;  ///< 90 kHz; for an open segment, the sum of its parts so far
  bool complete = false;
  bool discontinuity = false;  ///< first segment of a new publish (EXT-X-DISCONTINUITY)
  int init_generation = 0;
  int64_t program_date_time_ms = 0;
  /// Parts are listed for the last few segments only; older segments are whole segments.
  std::vector<PlaylistPart> parts;
};

/// Where another rendition is, for EXT-X-RENDITION-REPORT.
struct RenditionReport {
  std::string name;
  int64_t last_msn = 0;
  int last_part = 0;
};

/// Everything a media playlist says, as the store knows it.
struct MediaPlaylist {
  int target_duration_s = 4;
  int64_t part_target = 0;  ///< 90 kHz
  int64_t discontinuity_sequence = 0;
  /// The msn the next segment will have; the media sequence when there are no segments yet.
  int64_t next_msn = 0;
  std::vector<PlaylistSegment> segments;
  bool ended = false;
  std::vector<RenditionReport> reports;
};

/// Writes an RFC 8216bis / Apple LL-HLS media playlist. With `delta_update`, the segments
/// further than CAN-SKIP-UNTIL from the end are replaced by EXT-X-SKIP.
std::string write_media_playlist(const MediaPlaylist& playlist, bool delta_update = false);

/// Seconds of PART-TARGET, CAN-SKIP-UNTIL and PART-HOLD-BACK advertised for these settings.
double part_target_s(const MediaPlaylist& playlist);
double can_skip_until_s(const MediaPlaylist& playlist);
double part_hold_back_s(const MediaPlaylist& playlist);

/// One entry of the multivariant playlist.
struct Variant {
  std::string name;       ///< rendition folder
  int64_t bandwidth = 0;  ///< peak bits per second
  int64_t average_bandwidth = 0;
  double frame_rate = 0;
  std::vector<TrackConfig> tracks;
};

std::string write_multivariant_playlist(std::span<const Variant> variants);

/// How far a rendition has got, for blocking reloads and rendition reports.
struct PlaylistPosition {
  int64_t last_msn = -1;  ///< msn of the newest segment that has a part, -1 when none
  int last_part = -1;     ///< index of its newest part
  int64_t last_complete_msn = -1;
};

/// Whether a playlist at `position` holds part `part` of segment `msn` (or, with part < 0, the
/// whole segment). A part index past the end of a completed segment means the next segment's
/// first part, as RFC 8216bis asks.
bool is_available(const PlaylistPosition& position, int64_t msn, int part);

/// The query of a playlist request (`_HLS_msn`, `_HLS_part`, `_HLS_skip`), raw as received.
struct BlockingQuery {
  std::optional<std::string_view> msn;
  std::optional<std::string_view> part;
  std::optional<std::string_view> skip;
};

struct BlockingDecision {
  enum class Action { kAnswerNow, kHold, kBadRequest };
  Action action = Action::kAnswerNow;
  int64_t msn = 0;  ///< with kHold: wait until this is available
  int part = -1;
  bool delta_update = false;
  std::string error;  ///< with kBadRequest
};

/// Decides a playlist request per RFC 8216bis 6.2.5: answer now, hold until (msn, part) exists,
/// or 400 (malformed numbers, `_HLS_part` without `_HLS_msn`, msn more than two segments past
/// the last one, an unknown `_HLS_skip`).
BlockingDecision decide_blocking_request(const BlockingQuery& query,
                                         const PlaylistPosition& position);

}  // namespace hawker::media::hls
