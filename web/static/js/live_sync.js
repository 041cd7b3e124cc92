// Keeps an hls.js player at its target latency; shared by /player.html and the watch page.
//
// hls.js plays faster to catch up with its target latency (PART-HOLD-BACK) only while more than a
// second is buffered ahead of the playhead (hls.js 1.6, latency-controller.ts). A low-latency
// player held a second or less behind the live edge never has that much, so whatever put it
// behind stayed for the whole session: the start (the first frame shows 0.3-0.7 s after hls.js
// chose where to start) and every hiccup after it (a part a little late, a busy machine), each
// adding up to a part's duration for good. bench/latency measured 0.3-0.5 s above the target.
// So:
// - when the media can first play, the playhead moves towards hls.js's live sync position, as far
//   as leaves KEEP_AHEAD_S buffered ahead of it (before playing: no one sees a jump; a jump to
//   the end of the buffer would stall at once, and a stall raises hls.js's target for good);
// - while playing, it plays faster whenever it is more than BEHIND_S behind the target and more
//   than MIN_AHEAD_S is buffered, so it spends only the excess: hls.js's own rate curve (1.05x
//   at 0.1 s behind, 1.2x at 0.5 s, up to MAX_RATE far behind). Pages using this set hls.js's
//   maxLiveSyncPlaybackRate to 1, which leaves the rate to this code (hls.js would otherwise
//   reset it to 1 at every update).
'use strict';
(function () {
  const MIN_JUMP_S = 0.05;
  const KEEP_AHEAD_S = 0.3;
  const BEHIND_S = 0.05;
  const MIN_AHEAD_S = 0.25;
  const MAX_RATE = 1.5;

  function bufferedAhead(video) {
    const b = video.buffered;
    for (let i = 0; i < b.length; i++) {
      if (b.start(i) <= video.currentTime + 0.05 && video.currentTime < b.end(i)) {
        return b.end(i) - video.currentTime;
      }
    }
    return 0;
  }

  /// Moves the playhead forward towards hls.liveSyncPosition within what is buffered, keeping
  /// KEEP_AHEAD_S ahead of it; true if it moved.
  function jumpToLiveSync(hls, video) {
    const target = hls.liveSyncPosition;
    if (target === null || !Number.isFinite(target)) return false;
    const to = Math.min(target, video.currentTime + bufferedAhead(video) - KEEP_AHEAD_S);
    if (to - video.currentTime < MIN_JUMP_S) return false;
    video.currentTime = to;
    return true;
  }

  /// Plays faster while behind the target latency, for as long as the player lives.
  function followTarget(hls, video) {
    function adjust() {
      if (video.paused || video.seeking) return;
      const latency = hls.latency;
      const target = hls.targetLatency;
      if (!(latency > 0) || target === null || !Number.isFinite(target)) return;
      const behind = latency - target;
      let rate = 1;
      if (behind > BEHIND_S && bufferedAhead(video) > MIN_AHEAD_S) {
        const curve = Math.round((2 / (1 + Math.exp(-0.75 * behind))) * 20) / 20;
        rate = Math.min(MAX_RATE, Math.max(1.05, curve));
      }
      if (video.playbackRate !== rate) video.playbackRate = rate;
    }
    video.addEventListener('timeupdate', adjust);
    hls.on('hlsDestroying', () => {
      video.removeEventListener('timeupdate', adjust);
      video.playbackRate = 1;
    });
  }

  window.hawkerLiveSync = { jumpToLiveSync, followTarget, bufferedAhead };
})();
