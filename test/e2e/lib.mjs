// Helpers for hawker's browser tests and benchmarks: start the real binary on ephemeral ports
// (the same way test/integration/harness.py does), add streamers, publish with ffmpeg, and drive
// Debian's Chromium through playwright-core. Everything started here is registered and stopped
// by stopAll(), which also runs on exit and on SIGINT/SIGTERM.
import assert from 'node:assert/strict';
import { spawn, spawnSync, execFile } from 'node:child_process';
import { promisify } from 'node:util';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const execFileP = promisify(execFile);

export const SOURCE_ROOT =
  process.env.HAWKER_SOURCE_ROOT ?? path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const HAWKER_BIN = process.env.HAWKER_BIN ?? path.join(SOURCE_ROOT, 'build/app/hawker');
export const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
export const FFMPEG = process.env.FFMPEG ?? 'ffmpeg';

const running = new Set();  // objects with an async stop()

function track(thing) {
  running.add(thing);
  return thing;
}

/** Stops everything started by this module, newest first. Safe to call more than once. */
export async function stopAll() {
  const all = [...running].reverse();
  running.clear();
  for (const thing of all) {
    try {
      await thing.stop();
    } catch (err) {
      console.error(`stopAll: ${err.message}`);
    }
  }
}

let hooksInstalled = false;
function installExitHooks() {
  if (hooksInstalled) return;
  hooksInstalled = true;
  // On a normal exit only synchronous work runs: kill what is left so nothing outlives us.
  process.on('exit', () => {
    for (const thing of running) thing.killNow?.();
  });
  for (const sig of ['SIGINT', 'SIGTERM']) {
    process.on(sig, () => {
      stopAll().finally(() => process.exit(130));
    });
  }
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `predicate` (sync or async) until it returns a truthy value, which is returned. */
export async function waitFor(predicate, { timeoutMs = 10000, intervalMs = 50, what = 'condition' } = {}) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await predicate();
    if (value) return value;
    if (Date.now() >= deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(intervalMs);
  }
}

/** A child process whose stop() sends SIGTERM, then SIGKILL after `graceMs`. */
function childHandle(proc, name, graceMs) {
  const exited = new Promise((resolve) => {
    if (proc.exitCode !== null || proc.signalCode !== null) resolve({ code: proc.exitCode, signal: proc.signalCode });
    else proc.once('exit', (code, signal) => resolve({ code, signal }));
  });
  return {
    proc,
    exited,
    get running() {
      return proc.exitCode === null && proc.signalCode === null;
    },
    killNow() {
      if (this.running) proc.kill('SIGKILL');
    },
    async stop() {
      running.delete(this);
      if (this.running) {
        proc.kill('SIGTERM');
        const timer = setTimeout(() => {
          console.error(`${name} did not stop within ${graceMs} ms: SIGKILL`);
          proc.kill('SIGKILL');
        }, graceMs);
        const result = await exited;
        clearTimeout(timer);
        return result;
      }
      return exited;
    },
  };
}

/**
 * Starts `hawker serve` on 127.0.0.1 ephemeral HTTP and RTMP ports with a fresh data dir (unless
 * `dataDir` is given) and waits for hawker.ready.json. Returns
 * { httpPort, rtmpPort, baseUrl, rtmpUrl, dataDir, cli(...args), logs(), stop() }.
 * stop() sends SIGTERM and resolves to the exit code; the data dir is removed if it was made here.
 */
export async function startHawker({ args = [], env = {}, dataDir, bin = HAWKER_BIN, timeoutMs = 15000 } = {}) {
  installExitHooks();
  const ownDir = dataDir === undefined;
  dataDir ??= fs.mkdtempSync(path.join(os.tmpdir(), 'hawker-e2e-'));
  const ready = path.join(dataDir, 'hawker.ready.json');
  fs.rmSync(ready, { force: true });
  const logPath = path.join(dataDir, 'test-stderr.log');
  const logFd = fs.openSync(logPath, 'a');
  const fullEnv = { ...process.env, ...env };
  const proc = spawn(
    bin,
    ['serve', '--data-dir', dataDir, '--http-listen', '127.0.0.1:0', '--rtmp-listen', '127.0.0.1:0', ...args],
    { stdio: ['ignore', logFd, logFd], env: fullEnv },
  );
  fs.closeSync(logFd);
  const child = childHandle(proc, 'hawker', 20000);
  const logs = () => fs.readFileSync(logPath, 'utf8');
  const hawker = {
    dataDir,
    logPath,
    logs,
    proc,
    killNow: () => child.killNow(),
    async cli(...cliArgs) {
      const { stdout } = await execFileP(bin, [...cliArgs, '--data-dir', dataDir], { env: fullEnv, timeout: 60000 });
      return stdout;
    },
    async stop() {
      running.delete(hawker);
      const { code, signal } = await child.stop();
      if (ownDir && !process.env.HAWKER_KEEP_DATA) fs.rmSync(dataDir, { recursive: true, force: true });
      return signal ? 128 + os.constants.signals[signal] : code;
    },
  };
  track(hawker);
  const info = await waitFor(
    () => {
      if (!child.running) throw new Error(`hawker exited early (${proc.exitCode}):\n${logs().slice(-4000)}`);
      try {
        return JSON.parse(fs.readFileSync(ready, 'utf8'));
      } catch {
        return null;
      }
    },
    { timeoutMs, intervalMs: 20, what: 'hawker.ready.json' },
  );
  hawker.ready = info;
  hawker.httpPort = Number(info.http.split(':').pop());
  hawker.rtmpPort = info.rtmp ? Number(info.rtmp.split(':').pop()) : null;
  hawker.baseUrl = `http://127.0.0.1:${hawker.httpPort}`;
  hawker.rtmpUrl = hawker.rtmpPort ? `rtmp://127.0.0.1:${hawker.rtmpPort}/live` : null;
  return hawker;
}

/** Adds a streamer for `channel` through the CLI and returns { channel, key, publishUrl }. */
export async function addStreamer(hawker, channel, { email = `${channel}@example.com` } = {}) {
  const out = await hawker.cli('streamer', 'add', email, '--name', channel);
  const key = JSON.parse(out).stream_key;
  if (!key) throw new Error(`streamer add printed no stream_key: ${out}`);
  return { channel, key, publishUrl: `${hawker.rtmpUrl}/${key}` };
}

/** Encodes `seconds` of test pattern and tone to an FLV file in `dir` for publishFfmpeg's `clip`. */
export function makeClip(dir, { size = '1280x720', rate = 30, gop = 30, seconds = 10 } = {}) {
  const file = path.join(dir, `clip-${size}.flv`);
  const res = spawnSync(FFMPEG, [
    '-hide_banner', '-loglevel', 'error', '-nostdin', '-y',
    '-f', 'lavfi', '-i', `testsrc2=size=${size}:rate=${rate}:duration=${seconds}`,
    '-f', 'lavfi', '-i', `sine=frequency=440:sample_rate=48000:duration=${seconds}`,
    '-c:v', 'libx264', '-preset', 'ultrafast', '-tune', 'zerolatency', '-g', String(gop), '-bf', '0',
    '-pix_fmt', 'yuv420p', '-c:a', 'aac', '-b:a', '96k', '-f', 'flv', file,
  ], { encoding: 'utf8', timeout: 120000 });
  if (res.status !== 0) throw new Error(`ffmpeg could not make a clip: ${res.stderr}`);
  return file;
}

/**
 * Publishes a live test stream with ffmpeg: by default testsrc2 640x360@30 with a 440 Hz tone,
 * x264 zerolatency, keyframe every `gop` frames, AAC, real time (-re). `input` replaces the
 * input arguments; `clip` (a makeClip file) is looped and copied instead of encoding; `extraArgs`
 * go before the output. Returns a handle with stop(), exited,
 * running and log().
 */
export function publishFfmpeg(url, { size = '640x360', rate = 30, gop = 30, input, clip, extraArgs = [], stdin = 'ignore' } = {}) {
  installExitHooks();
  const encode = [
    '-c:v', 'libx264', '-preset', 'veryfast', '-tune', 'zerolatency', '-g', String(gop), '-bf', '0',
    '-pix_fmt', 'yuv420p', '-c:a', 'aac', '-b:a', '96k',
  ];
  // A clip (makeClip) is looped as it is: the machine's CPU goes to hawker, not to encoding.
  const inputArgs = clip ? ['-re', '-stream_loop', '-1', '-i', clip] : input ?? [
    '-re', '-f', 'lavfi', '-i', `testsrc2=size=${size}:rate=${rate}`,
    '-re', '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000',
  ];
  const args = [
    '-hide_banner', '-loglevel', 'error', '-nostdin', ...inputArgs,
    ...(clip ? ['-c', 'copy'] : encode), ...extraArgs, '-f', 'flv', url,
  ];
  let log = '';
  const proc = spawn(FFMPEG, args, { stdio: [stdin, 'ignore', 'pipe'] });
  proc.stderr.on('data', (d) => {
    log = (log + d.toString()).slice(-20000);
  });
  const child = childHandle(proc, 'ffmpeg', 5000);
  const handle = {
    ...child,
    get running() {
      return child.running;
    },
    log: () => log,
    async stop() {
      running.delete(handle);
      return child.stop();
    },
  };
  return track(handle);
}

/** Arguments for Debian's Chromium: headless, no network chatter, no QUIC, no GPU. */
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-quic',
  '--no-first-run',
  '--disable-component-update',
  '--disable-sync',
  '--autoplay-policy=no-user-gesture-required',
];

/**
 * Launches /usr/bin/chromium with a fresh user data dir (removed on stop). Returns
 * { context, newPage(), stop() }; `context` is a playwright BrowserContext.
 */
export async function launchBrowser({ extraArgs = [], executablePath = CHROMIUM } = {}) {
  installExitHooks();
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'hawker-chromium-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath,
    headless: true,
    args: [...CHROMIUM_ARGS, ...extraArgs],
    timeout: 30000,
  });
  const browser = {
    context,
    userDataDir,
    newPage: () => context.newPage(),
    async stop() {
      running.delete(browser);
      try {
        await context.close();
      } finally {
        fs.rmSync(userDataDir, { recursive: true, force: true });
      }
    },
  };
  return track(browser);
}

/** GET `url` and return { status, headers, text }. */
export async function fetchText(url, options = {}) {
  const res = await fetch(url, options);
  return { status: res.status, headers: res.headers, text: await res.text() };
}

/** Waits until `channel` has a media playlist with at least one complete segment. */
export async function waitForLive(hawker, channel, { timeoutMs = 30000 } = {}) {
  const url = `${hawker.baseUrl}/live/${channel}/source/playlist.m3u8`;
  await waitFor(
    async () => {
      try {
        const { status, text } = await fetchText(url);
        return status === 200 && text.includes('#EXTINF');
      } catch {
        return false;
      }
    },
    { timeoutMs, intervalMs: 200, what: `a first segment of ${channel}` },
  );
}

/** Nearest-rank percentile of a list of numbers (p in 0..100). */
export function percentile(values, p) {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank];
}

/**
 * Records what goes wrong on a page: console errors and uncaught exceptions (`errors`) and
 * responses of 400 and above (`failedRequests`; the browser's own /favicon.ico probe aside).
 */
export function watchPage(page) {
  const seen = { errors: [], failedRequests: [] };
  // Failed requests are checked by URL (failedRequests), not by their console line.
  page.on('console', (msg) => {
    if (msg.type() === 'error' && !msg.text().startsWith('Failed to load resource')) seen.errors.push(msg.text());
  });
  page.on('response', (res) => {
    if (res.status() >= 400 && !res.url().endsWith('/favicon.ico')) seen.failedRequests.push(`${res.status()} ${res.url()}`);
  });
  page.on('pageerror', (err) => seen.errors.push(String(err)));
  return seen;
}

/** The end of a player test: nothing went wrong on the page, then browser, publisher and
 * hawker stop in that order and hawker exits 0. */
export async function finishPlayerTest(seen, { browser, ffmpeg, hawker }) {
  assert.deepEqual(seen.errors, [], 'the page logs no errors');
  assert.deepEqual(seen.failedRequests, [], 'every request the player made succeeded');
  await browser.stop();
  await ffmpeg.stop();
  const code = await hawker.stop();
  assert.equal(code, 0, `hawker exits cleanly (${code})`);
}

/** Runs a test's main(): prints `ok: <what>` or FAIL with the stack, and always stops everything. */
export async function runTest(main, what) {
  try {
    await main();
    console.log(`ok: ${what}`);
  } catch (err) {
    console.error(`FAIL: ${err.stack ?? err}`);
    process.exitCode = 1;
  } finally {
    await stopAll();
  }
}
