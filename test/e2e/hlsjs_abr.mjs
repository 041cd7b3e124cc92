// hls.js in headless Chromium plays hawker's ladder: ffmpeg publishes 1280x720, hawker adds 480p
// and 360p, and the embedded /player.html plays the multivariant playlist in low-latency mode.
// First ABR alone: started on the lowest level, hls.js must climb by itself. Then forced
// switches (hls.nextLevel, the seamless kind a quality menu uses) to every level and back: each
// must land (LEVEL_SWITCHED, the picture's height follows) with the playhead advancing, no stall,
// no error and no failed request.
import assert from 'node:assert/strict';
import { addStreamer, finishPlayerTest, runTest, watchPage, fetchText, launchBrowser, makeClip, publishFfmpeg, sleep, startHawker, waitFor, waitForLive } from './lib.mjs';

const CHANNEL = 'abr';
// `--gop N`: the source's keyframe interval in frames (30 = 1 s). With a long one (150 = 5 s)
// the passthrough's segments are cut without keyframes and only the rungs have IDRs there.
const GOP = Number(process.argv[process.argv.indexOf('--gop') + 1] ?? 30) || 30;
const HEIGHTS = [360, 480, 720];

async function main() {
  const hawker = await startHawker();
  const { publishUrl } = await addStreamer(hawker, CHANNEL);
  // A pre-encoded 720p clip, looped: the cores go to hawker's ladder and Chromium's decoder.
  const ffmpeg = publishFfmpeg(publishUrl, { clip: makeClip(hawker.dataDir, { size: '1280x720', gop: GOP }) });
  await waitForLive(hawker, CHANNEL);
  await waitFor(async () => {
    const { status, text } = await fetchText(`${hawker.baseUrl}/live/${CHANNEL}/index.m3u8`);
    return status === 200 && (text.match(/#EXT-X-STREAM-INF/g) ?? []).length === 3;
  }, { timeoutMs: 30000, intervalMs: 250, what: 'three renditions in the multivariant playlist' });
  // Let every rung have a few parts so the player can start on any of them.
  await sleep(2000);

  const browser = await launchBrowser();
  const page = await browser.newPage();
  const seen = watchPage(page);

  // Start on the lowest level with a low first bandwidth guess: ABR has to climb on its own.
  const config = encodeURIComponent(JSON.stringify({ startLevel: 0, abrEwmaDefaultEstimate: 300000 }));
  await page.goto(`${hawker.baseUrl}/player.html?channel=${CHANNEL}&config=${config}`);
  await page.evaluate(() => {
    window.switches = [];
    window.trace = [];
    const video = document.getElementById('video');
    const note = (what) => { if (window.trace.length < 300) window.trace.push(`${Date.now() % 100000} ${what} t=${video.currentTime.toFixed(2)}`); };
    video.addEventListener('seeking', () => note('seeking'));
    video.addEventListener('waiting', () => note('waiting'));
    window.hawkerHls.on(window.Hls.Events.FRAG_CHANGED, (_e, d) => note(`frag ${d.frag.level}/${d.frag.sn} start=${d.frag.start.toFixed(2)}`));
    window.hawkerHls.on(window.Hls.Events.LEVEL_SWITCHING, (_e, d) => note(`switching ${d.level}`));
    window.hawkerHls.on(window.Hls.Events.LEVEL_SWITCHED, (_e, data) => {
      const level = window.hawkerHls.levels[data.level];
      window.switches.push({ level: data.level, height: level.height, auto: window.hawkerHls.autoLevelEnabled, t: Date.now() });
    });
  });
  await waitFor(() => page.evaluate(() => window.hawkerPlayer?.started || window.hawkerPlayer?.fatal), {
    timeoutMs: 30000, intervalMs: 200, what: 'playback to start',
  });
  let stats = await page.evaluate(() => window.hawkerPlayer);
  assert.equal(stats.fatal, null, `no fatal error at start: ${JSON.stringify(stats.fatal)}`);

  const levels = await page.evaluate(() => window.hawkerHls.levels.map((l) => ({ height: l.height, bitrate: l.bitrate, codecs: `${l.videoCodec},${l.audioCodec}` })));
  console.log(`levels: ${JSON.stringify(levels)}`);
  const dropped = hawker.logs().split('\n').filter((l) => l.includes('dropped')).join('\n');
  assert.deepEqual(levels.map((l) => l.height), HEIGHTS, `hls.js sees the source and both rungs\n${dropped}`);

  const positions = [];
  async function watch(seconds) {
    for (let i = 0; i < seconds; i++) {
      await sleep(1000);
      const s = await page.evaluate(() => window.hawkerPlayer.currentTime);
      positions.push(s);
      assert.ok(ffmpeg.running, `ffmpeg is still publishing: ${ffmpeg.log()}`);
    }
  }

  // ABR alone.
  await waitFor(() => page.evaluate(() => window.switches.some((s) => s.auto && s.level > 0) ||
    (window.hawkerHls.autoLevelEnabled && window.hawkerHls.currentLevel > 0)), {
    timeoutMs: 45000, intervalMs: 250, what: 'ABR to switch up from the lowest level',
  });
  await watch(4);
  const abr = await page.evaluate(() => window.switches);
  console.log(`ABR switches: ${JSON.stringify(abr.map((s) => s.height))}`);

  // What hls.js, the video element and hawker's ladder did, for the failure messages.
  async function traceText() {
    const ladderLog = hawker.logs().split('\n').filter((l) => /transcode|rendition=/.test(l)).slice(-20).join('\n');
    return `${(await page.evaluate(() => window.trace)).join('\n')}\nhawker:\n${ladderLog}`;
  }

  // Forced switches, as a quality menu does them: top, bottom, middle, top.
  for (const target of [2, 0, 1, 2]) {
    try {
      const since = Date.now();
      await page.evaluate((l) => { window.hawkerHls.nextLevel = l; }, target);
      await waitFor(() => page.evaluate(({ l, since }) => window.switches.some((s) => s.level === l && s.t >= since) ||
        (window.hawkerHls.currentLevel === l && window.switches.at(-1)?.level === l), { l: target, since }), {
        timeoutMs: 15000, intervalMs: 100, what: `the switch to level ${target} (${HEIGHTS[target]}p)`,
      });
      // The picture follows once the playhead reaches the new level's fragments.
      await waitFor(() => page.evaluate((h) => document.getElementById('video').videoHeight === h, HEIGHTS[target]), {
        timeoutMs: 15000, intervalMs: 100, what: `a ${HEIGHTS[target]}p picture`,
      });
      await watch(2);
      console.log(`forced switch to ${HEIGHTS[target]}p landed after ${Date.now() - since} ms`);
    } catch (err) {
      err.message += `\n${await traceText()}`;
      throw err;
    }
  }

  stats = await page.evaluate(() => window.hawkerPlayer);
  const trace = await traceText();
  const quality = await page.evaluate(() => {
    const q = document.getElementById('video').getVideoPlaybackQuality();
    return { total: q.totalVideoFrames, dropped: q.droppedVideoFrames };
  });
  console.log(JSON.stringify({ gop: GOP, frames: quality, stalls: stats.stalls, waiting: stats.waitingEvents, errors: stats.errors }));
  assert.equal(stats.fatal, null, `no fatal error: ${JSON.stringify(stats.fatal)}`);
  for (let i = 1; i < positions.length; i++) {
    assert.ok(positions[i] > positions[i - 1], `currentTime advances every second: ${positions.join(', ')}\n${trace}`);
  }
  assert.equal(stats.stalls, 0, `no stall (${stats.waitingEvents} waiting, ${stats.bufferStalledErrors} buffer stalls)\n${trace}`);
  assert.deepEqual(stats.errors, [], 'hls.js reported no error');
  await finishPlayerTest(seen, { browser, ffmpeg, hawker });
}

await runTest(main, 'hls.js switched between the renditions without a stall');
