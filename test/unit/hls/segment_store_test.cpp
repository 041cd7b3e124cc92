#include "media/hls/segment_store.h"

#include <doctest/doctest.h>

#include "media/hls/playlist_validator.h"

namespace hawker::media::hls {
namespace {

constexpr int64_t kPart = 30'000;  // 90 kHz: one third of a second
constexpr int64_t kWall = 1'700'000'000'000;

// Appends whole segments of `parts` parts each, `size` bytes per part.
class Feeder {
 public:
  explicit Feeder(SegmentStore& store) : store_(store) {}

  void part(size_t size = 1000) {
    auto p = std::make_shared<Part>();
    p->msn = msn_;
    p->index = index_++;
    p->start = start_;
    p->duration = kPart;
    p->independent = p->index == 0;
    p->program_date_time_ms = kWall + start_ / 90;
    p->bytes = SealedBytes::copy_of(Bytes(size, static_cast<uint8_t>(p->index)));
    start_ += kPart;
    open_ = true;
    REQUIRE(store_.append_part(std::move(p)));
  }
  void complete() {
    REQUIRE(store_.complete_segment(msn_));
    ++msn_;
    index_ = 0;
    open_ = false;
  }
  void segments(int count, int parts = 3, size_t size = 1000) {
    for (int s = 0; s < count; ++s) {
      for (int p = 0; p < parts; ++p) {
        part(size);
      }
      complete();
    }
  }
  // A republish: the store closes the open segment; the new packager starts at next_msn().
  void restart() {
    store_.begin_stream(Bytes(100, 0xEE));
    msn_ = store_.next_msn();
    index_ = 0;
    open_ = false;
  }

 private:
  SegmentStore& store_;
  int64_t msn_ = 0;
  int index_ = 0;
  int64_t start_ = 0;
  bool open_ = false;
};

SegmentStoreOptions small_window() {
  SegmentStoreOptions options;
  options.target_duration_s = 2;
  options.part_target = kPart;
  options.window_ms = 5000;  // five segments of one second
  options.part_segments = 2;
  return options;
}

TEST_CASE("the window keeps enough segments and drops older ones with their bytes") {
  SegmentStore store(small_window());
  store.begin_stream(Bytes(100, 1));
  Feeder feed(store);
  feed.segments(3);
  CHECK(store.segment_count() == 3);
  // init + the parts of the newest two segments + 3 whole segments
  CHECK(store.bytes_held() == 100 + 6 * 1000 + 3 * 3000);

  feed.segments(20);
  // The oldest segment goes once the others cover the 5 s window: five segments of 1 s remain.
  CHECK(store.segment_count() == 5);
  const MediaPlaylist playlist = store.playlist();
  CHECK(playlist.segments.front().msn == 18);
  CHECK(playlist.segments.back().msn == 22);
  // Parts stay only for the newest two segments.
  CHECK(store.bytes_held() == 100 + 2 * 3 * 1000 + 5 * 3000);
  CHECK(store.find_part(22, 2) != nullptr);
  CHECK(store.find_part(21, 0) != nullptr);
  CHECK(store.find_part(20, 0) == nullptr);
  CHECK(store.find_segment(18) != nullptr);
  CHECK(store.find_segment(18)->size() == 3000);
  // A segment is its parts end to end, sealed in a memfd the server can sendfile from.
  CHECK(store.find_segment(18)->fd() >= 0);
  CHECK(store.find_segment(18)->data()[1000] == 1);
  CHECK(store.find_segment(17) == nullptr);
  CHECK(playlist.segments[2].parts.empty());
  CHECK(playlist.segments[3].parts.size() == 3);
}

TEST_CASE("parts must arrive in order") {
  SegmentStore store(small_window());
  auto part = std::make_shared<Part>();
  part->bytes = SealedBytes::copy_of(Bytes{1});
  CHECK_FALSE(store.append_part(part));  // before begin_stream
  store.begin_stream(Bytes(10, 1));
  part->msn = 1;
  CHECK_FALSE(store.append_part(part));  // next_msn is 0
  part->msn = 0;
  CHECK(store.append_part(part));
  CHECK_FALSE(store.append_part(part));  // index 0 again
  CHECK_FALSE(store.complete_segment(1));
  CHECK(store.complete_segment(0));
  CHECK_FALSE(store.complete_segment(0));
  CHECK_FALSE(store.append_part(nullptr));
}

TEST_CASE("a republish continues the media sequence and marks a discontinuity") {
  SegmentStore store(small_window());
  store.begin_stream(Bytes(100, 1));
  Feeder feed(store);
  feed.segments(2);
  feed.part();  // an open segment when the publisher drops
  feed.restart();
  CHECK(store.next_msn() == 3);
  feed.segments(2);

  MediaPlaylist playlist = store.playlist();
  REQUIRE(playlist.segments.size() == 5);
  CHECK(playlist.segments[2].complete);
  CHECK(playlist.segments[2].duration == kPart);
  CHECK_FALSE(playlist.segments[2].discontinuity);
  CHECK(playlist.segments[3].discontinuity);
  CHECK(playlist.segments[3].init_generation == 1);
  CHECK(playlist.segments[2].init_generation == 0);
  CHECK(store.find_init(0) != nullptr);
  CHECK(store.find_init(1) != nullptr);
  CHECK(store.discontinuity_sequence() == 0);

  // Once the discontinuity rolls out, the sequence counts it and the old init goes.
  feed.segments(8);
  CHECK(store.discontinuity_sequence() == 1);
  CHECK(store.find_init(0) == nullptr);
  CHECK(store.find_init(1) != nullptr);
  CHECK(store.playlist().segments.front().msn > 3);
}

TEST_CASE("waiters are woken when their part appears, and can be cancelled") {
  SegmentStore store(small_window());
  store.begin_stream(Bytes(100, 1));
  Feeder feed(store);
  feed.segments(1);

  int woke_part = 0;
  int woke_segment = 0;
  int woke_cancelled = 0;
  int woke_now = 0;
  const auto part_waiter = store.wait_for(1, 1, [&] { ++woke_part; });
  const auto segment_waiter = store.wait_for(1, -1, [&] { ++woke_segment; });
  const auto cancelled = store.wait_for(1, 2, [&] { ++woke_cancelled; });
  CHECK(part_waiter != 0);
  CHECK(segment_waiter != 0);
  CHECK(store.wait_for(0, 2, [&] { ++woke_now; }) == 0);
  CHECK(woke_now == 1);
  CHECK(store.waiter_count() == 3);

  feed.part();
  CHECK(woke_part == 0);
  CHECK(store.cancel(cancelled));
  CHECK_FALSE(store.cancel(cancelled));
  feed.part();
  CHECK(woke_part == 1);
  CHECK(woke_segment == 0);
  feed.part();
  feed.complete();
  CHECK(woke_segment == 1);
  CHECK(woke_cancelled == 0);
  CHECK(store.waiter_count() == 0);
  CHECK_FALSE(store.cancel(part_waiter));
}

TEST_CASE("a waiter for a part past the end of its segment wakes on the next segment's first") {
  SegmentStore store(small_window());
  store.begin_stream(Bytes(100, 1));
  Feeder feed(store);
  feed.segments(1);
  int woke = 0;
  store.wait_for(0, 5, [&] { ++woke; });
  CHECK(woke == 0);
  feed.part();
  CHECK(woke == 1);
}

TEST_CASE("a waiter callback may register another waiter") {
  SegmentStore store(small_window());
  store.begin_stream(Bytes(100, 1));
  Feeder feed(store);
  int second = 0;
  store.wait_for(0, 0, [&] { store.wait_for(0, 1, [&] { ++second; }); });
  feed.part();
  CHECK(second == 0);
  CHECK(store.waiter_count() == 1);
  feed.part();
  CHECK(second == 1);
}

TEST_CASE("the end of a broadcast releases every waiter and ends the playlist") {
  SegmentStore store(small_window());
  store.begin_stream(Bytes(100, 1));
  Feeder feed(store);
  feed.segments(1);
  feed.part();
  int woke = 0;
  store.wait_for(5, 0, [&] { ++woke; });
  store.end_stream(true);
  CHECK(woke == 1);
  const std::string text = write_media_playlist(store.playlist());
  CHECK(text.ends_with("#EXT-X-ENDLIST\n"));
  CHECK(text.find("PRELOAD-HINT") == std::string::npos);
  CHECK(validate_media_playlist(text).ok());
}

TEST_CASE("the store's playlists pass the validator at every step") {
  SegmentStore store(small_window());
  store.begin_stream(Bytes(100, 1));
  Feeder feed(store);
  for (int s = 0; s < 12; ++s) {
    for (int p = 0; p < 3; ++p) {
      feed.part();
      const std::string text = write_media_playlist(store.playlist());
      const ValidationResult result = validate_media_playlist(text);
      for (const auto& error : result.errors) {
        FAIL_CHECK(error << "\n" << text);
      }
    }
    feed.complete();
    if (s == 6) {
      feed.restart();
    }
  }
}

TEST_CASE("a store that replaces another starts at its first msn and init generation") {
  SegmentStoreOptions options = small_window();
  options.first_msn = 40;
  options.first_generation = 3;
  SegmentStore store(options);
  CHECK(store.generation() == 2);
  auto part = std::make_shared<Part>();
  part->msn = 40;
  part->bytes = SealedBytes::copy_of(Bytes{1});
  CHECK_FALSE(store.append_part(part));  // before begin_stream
  store.begin_stream(Bytes(10, 7));
  CHECK(store.generation() == 3);
  CHECK(store.append_part(part));
  CHECK(store.complete_segment(40));
  CHECK(store.find_init(0) == nullptr);
  REQUIRE(store.find_init(3) != nullptr);
  CHECK(store.find_init(3)->front() == 7);
  MediaPlaylist playlist = store.playlist();
  REQUIRE(playlist.segments.size() == 1);
  CHECK(playlist.segments[0].msn == 40);
  CHECK(playlist.segments[0].init_generation == 3);
  CHECK_FALSE(playlist.segments[0].discontinuity);
}

}  // namespace
}  // namespace hawker::media::hls
