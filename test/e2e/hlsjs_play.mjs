// hls.js in headless Chromium plays a live stream from hawker: ffmpeg publishes over RTMP, the
// embedded /player.html plays /live/e2e/index.m3u8 in low-latency mode, and for 15 s the
// playhead must advance with no stall and no fatal error, with a latency figure reported.
import assert from 'node:assert/strict';
import { addStreamer, finishPlayerTest, runTest, watchPage, fetchText, launchBrowser, publishFfmpeg, sleep, startHawker, waitFor, waitForLive } from './lib.mjs';

const CHANNEL = 'e2e';
const WATCH_S = 15;

async function main() {
  const hawker = await startHawker();
  const { publishUrl } = await addStreamer(hawker, CHANNEL);
  const ffmpeg = publishFfmpeg(publishUrl);
  await waitForLive(hawker, CHANNEL);

  const vendor = await fetchText(`${hawker.baseUrl}/vendor/hls.light.min.js`);
  assert.equal(vendor.status, 200, 'the embedded hls.js is served');
  assert.match(vendor.text, /lowLatencyMode/, 'the embedded hls.js is a real build');

  const browser = await launchBrowser();
  const page = await browser.newPage();
  const seen = watchPage(page);

  await page.goto(`${hawker.baseUrl}/player.html?channel=${CHANNEL}`);
  const codecs = await page.evaluate(() => MediaSource.isTypeSupported('video/mp4; codecs="avc1.64001e,mp4a.40.2"'));
  assert.ok(codecs, 'this Chromium decodes H.264/AAC in MSE');

  await waitFor(() => page.evaluate(() => window.hawkerPlayer?.started || window.hawkerPlayer?.fatal), {
    timeoutMs: 30000, intervalMs: 200, what: 'playback to start',
  });
  let stats = await page.evaluate(() => window.hawkerPlayer);
  assert.equal(stats.fatal, null, `no fatal error at start: ${JSON.stringify(stats.fatal)}`);
  console.log(`playing after ${stats.startMs} ms`);

  const t0 = stats.currentTime;
  const wall0 = Date.now();
  const positions = [];
  for (let i = 0; i < WATCH_S; i++) {
    await sleep(1000);
    stats = await page.evaluate(() => window.hawkerPlayer);
    positions.push(stats.currentTime);
    assert.ok(ffmpeg.running, `ffmpeg is still publishing: ${ffmpeg.log()}`);
  }
  const advanced = stats.currentTime - t0;
  const elapsed = (Date.now() - wall0) / 1000;
  const recent = stats.samples.filter((s) => s.t >= wall0);
  const pdt = recent.map((s) => s.pdtLatency).filter((v) => v !== null);
  const hlsLatency = recent.map((s) => s.latency).filter((v) => v !== null);
  const median = (v) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];
  console.log(JSON.stringify({
    advanced_s: +advanced.toFixed(2), elapsed_s: +elapsed.toFixed(2), stalls: stats.stalls,
    waiting: stats.waitingEvents, buffer_stalled: stats.bufferStalledErrors,
    pdt_latency_median_s: pdt.length ? +median(pdt).toFixed(3) : null,
    hls_latency_median_s: hlsLatency.length ? +median(hlsLatency).toFixed(3) : null,
    errors: stats.errors,
  }));

  assert.equal(stats.fatal, null, `no fatal error: ${JSON.stringify(stats.fatal)}`);
  for (let i = 1; i < positions.length; i++) {
    assert.ok(positions[i] > positions[i - 1], `currentTime advances every second: ${positions.join(', ')}`);
  }
  assert.ok(advanced >= elapsed - 1.5, `currentTime kept up with the clock: ${advanced} s in ${elapsed} s`);
  assert.equal(stats.stalls, 0, `no stall after playback started (${stats.waitingEvents} waiting, ${stats.bufferStalledErrors} buffer stalls)`);
  assert.ok(pdt.length >= WATCH_S * 2, `program-date-time latency is reported (${pdt.length} samples)`);
  assert.ok(hlsLatency.length > 0, 'hls.latency is reported');
  const m = median(pdt);
  assert.ok(m > 0 && m < 5, `latency behind program-date-time is plausible: ${m} s`);
  await finishPlayerTest(seen, { browser, ffmpeg, hawker });
}

await runTest(main, 'hls.js played the live stream');
