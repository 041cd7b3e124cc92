#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <vector>

#include "core/result.h"
#include "media/hls/part.h"
#include "media/hls/playlist.h"

namespace hawker::media::hls {

struct SegmentStoreOptions {
  int target_duration_s = 4;
  int64_t part_target = 250 * 90;  ///< 90 kHz
  /// Complete segments kept: at least this much media (so CAN-SKIP-UNTIL = 6 x TARGETDURATION
  /// has something to skip and a player that fell behind can catch up) ...
  int64_t window_ms = 30'000;
  /// ... and never more than this many.
  size_t max_segments = 60;
  /// Complete segments whose parts stay listed and servable, besides the open one: hls.js falls
  /// back to whole segments when parts go too early.
  size_t part_segments = 3;
  /// The media sequence number of the first segment. Parts and segments are cached as immutable
  /// by URL, so a channel that starts again after its store was dropped (or after a restart)
  /// must not reuse numbers: the service starts each new store at the wall clock in seconds.
  int64_t first_msn = 0;
  /// The init segment generation of the first begin_stream. A rendition whose store is replaced
  /// while its channel lives (a transcoded rung that restarts after being dropped) continues
  /// the old store's generations, so no init URL ever names two different init segments.
  int first_generation = 0;
};

/// One rendition's media in memory: init segments, a bounded window of segments and the parts of
/// the newest ones, and the playlist requests waiting for a part. Lives on the loop thread.
///
/// Media sequence numbers never go back: a republish continues them, marks the first new segment
/// with a discontinuity and gives it a new init segment generation.
class SegmentStore {
 public:
  using WaiterId = uint64_t;

  explicit SegmentStore(SegmentStoreOptions options);

  /// A publish (or republish) starts: new init segment. An open segment of the previous publish
  /// is closed with the parts it has.
  void begin_stream(Bytes init_segment);
  /// The publisher left: the open segment is closed with the parts it has. With `final`, the
  /// playlist ends (EXT-X-ENDLIST).
  void end_stream(bool final);

  /// The msn the packager of a new publish starts at.
  int64_t next_msn() const { return next_msn_; }

  /// Adds the next part. It must continue the open segment or start segment next_msn().
  Status append_part(std::shared_ptr<const Part> part);
  /// Closes the open segment `msn`.
  Status complete_segment(int64_t msn);

  std::shared_ptr<const Part> find_part(int64_t msn, int index) const;
  /// A complete segment's bytes (all its parts), while it is in the window.
  SharedSealedBytes find_segment(int64_t msn) const;
  SharedBytes find_init(int generation) const;
  /// The init segment generation of the current publish; first_generation - 1 before any.
  int generation() const { return generation_; }

  PlaylistPosition position() const;
  /// The playlist as of now; `reports` are the other renditions' positions.
  MediaPlaylist playlist(std::vector<RenditionReport> reports = {}) const;

  /// Calls `ready` once part (msn, part) exists (part < 0: once segment msn is complete). When it
  /// exists already, calls it before returning and returns 0. Callbacks run inside append_part
  /// or complete_segment.
  WaiterId wait_for(int64_t msn, int part, std::function<void()> ready);
  /// The client left. Returns false when the waiter already ran or never existed.
  bool cancel(WaiterId id);
  size_t waiter_count() const { return waiters_.size(); }

  /// Bytes of media held: init segments, parts and whole segments.
  size_t bytes_held() const { return bytes_held_; }
  size_t segment_count() const { return segments_.size(); }
  int64_t discontinuity_sequence() const { return discontinuity_sequence_; }
  /// Changes whenever the playlist may: every part, segment, publish and end of stream. The
  /// service renders a playlist once per version and shares it between the requests it answers.
  uint64_t version() const { return version_; }

 private:
  struct Segment {
    int64_t msn = 0;
    int generation = 0;
    bool discontinuity = false;
    bool complete = false;
    int64_t duration = 0;
    int64_t program_date_time_ms = 0;
    std::vector<std::shared_ptr<const Part>> parts;
    std::vector<PlaylistPart> part_list;  ///< kept while parts are
    SharedSealedBytes bytes;
  };
  struct Waiter {
    int64_t msn = 0;
    int part = -1;
    std::function<void()> ready;
  };

  Segment* open_segment();
  void close_open_segment();
  void trim();
  void wake_waiters();

  SegmentStoreOptions options_;
  std::deque<Segment> segments_;
  std::map<int, SharedBytes> inits_;
  int generation_ = -1;
  bool discontinuity_next_ = false;
  bool ended_ = false;
  int64_t next_msn_ = 0;
  int64_t discontinuity_sequence_ = 0;
  PlaylistPosition position_;
  size_t bytes_held_ = 0;
  std::map<WaiterId, Waiter> waiters_;
  WaiterId next_waiter_ = 1;
  uint64_t version_ = 0;
};

}  // namespace hawker::media::hls
