// Glass-to-glass latency: hawker LL-HLS against nginx-rtmp HLS, same input, same run.
//
// Method. bench/latency/clock_source.py draws the wall clock (ms) into every frame as it makes
// it; ONE ffmpeg encodes that (x264 zerolatency, 1 s GOP, AAC) and sends the same FLV to both
// servers through the tee muxer. Two pages of the embedded /player.html (hls.js in headless
// Chromium) play hawker's /live/bench/index.m3u8 (lowLatencyMode) and nginx's HLS (ordinary
// mode). Every 250 ms each page draws the frame on screen into a canvas, reads the clock back
// and records Date.now() minus it: that figure includes capture, encoding, RTMP, packaging,
// delivery and the player's buffer. Error bars: +-33 ms (one frame at 30 fps; the frame on
// screen may be up to one frame old) plus the 250 ms sampler's timer jitter, which does not bias
// the figure. For hawker the page also records Date.now() - hls.playingDate. Program-date-time
// is the wall clock when the stream's first packet reached hawker plus media time, so that
// figure leaves out what the first packet took to arrive (the encoder's start-up included), not
// the steady-state encoder and RTMP delay. hls.js's own latency (its live edge, from the
// playlist's arrival, minus the playhead) is recorded too: the frame clock minus it is the
// encoder, RTMP, packaging and playlist delivery; it minus hls.js's target is the player's
// distance from its target.
//
// It also reads hawker_hls_part_ready_seconds from /metrics: from the RTMP packet that completes
// a part reaching the loop to the part being servable.
//
// Usage (through bench/latency/run): latency.mjs [--seconds 60] [--warmup 10] [--json FILE]
//        [--hawker-args "--hls-part-target 200ms"] [--no-nginx] [--config JSON]
//        [--samples]   (every 250 ms sample of the window in the JSON, not only the summaries)
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  addStreamer, launchBrowser, percentile, sleep, startHawker, stopAll, waitFor, waitForLive, FFMPEG,
} from '../../test/e2e/lib.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const CHANNEL = 'bench';

function parseArgs(argv) {
  const opts = {
    seconds: 60, warmup: 10, json: null, hawkerArgs: [], nginx: true, config: null, samples: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--seconds') opts.seconds = Number(next());
    else if (a === '--warmup') opts.warmup = Number(next());
    else if (a === '--json') opts.json = next();
    else if (a === '--hawker-args') opts.hawkerArgs = next().split(/\s+/).filter(Boolean);
    else if (a === '--no-nginx') opts.nginx = false;
    else if (a === '--config') opts.config = next();
    else if (a === '--samples') opts.samples = true;
    else throw new Error(`unknown argument ${a}`);
  }
  if (!(opts.seconds > 0) || !(opts.warmup >= 0)) throw new Error('--seconds and --warmup must be numbers');
  return opts;
}

const log = (msg) => console.error(`[bench-latency] ${msg}`);

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function spawnTracked(cmd, args, options, name) {
  const proc = spawn(cmd, args, options);
  let exited = false;
  proc.once('exit', () => { exited = true; });
  return {
    proc,
    get running() { return !exited; },
    async stop() {
      if (exited) return;
      proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), 5000);
      await new Promise((r) => proc.once('exit', r));
      clearTimeout(timer);
    },
    name,
  };
}

async function startNginx(workDir) {
  const rtmpPort = await freePort();
  const httpPort = await freePort();
  const hlsPath = path.join(workDir, 'hls');
  for (const d of ['hls', 'tmp']) fs.mkdirSync(path.join(workDir, d), { recursive: true });
  const conf = fs.readFileSync(path.join(HERE, 'nginx.conf'), 'utf8')
    .replaceAll('@RTMP_PORT@', String(rtmpPort))
    .replaceAll('@HTTP_PORT@', String(httpPort))
    .replaceAll('@HLS_PATH@', hlsPath);
  fs.writeFileSync(path.join(workDir, 'nginx.conf'), conf);
  const nginx = spawnTracked('nginx', ['-p', workDir, '-c', path.join(workDir, 'nginx.conf')],
    { stdio: ['ignore', 'ignore', 'inherit'] }, 'nginx');
  await waitFor(() => new Promise((resolve) => {
    const s = net.connect(rtmpPort, '127.0.0.1', () => { s.destroy(); resolve(true); });
    s.on('error', () => resolve(false));
  }), { timeoutMs: 10000, what: 'nginx-rtmp to listen' });
  return { nginx, rtmpUrl: `rtmp://127.0.0.1:${rtmpPort}/hls/bench`, hlsUrl: `http://127.0.0.1:${httpPort}/hls/bench.m3u8` };
}

/** clock_source.py | ffmpeg -> tee to every RTMP URL. */
function startPublisher(urls) {
  const source = spawnTracked('python3', [path.join(HERE, 'clock_source.py'), '--fps', '30'],
    { stdio: ['ignore', 'pipe', 'inherit'] }, 'clock_source');
  const tee = urls.map((u) => `[f=flv:onfail=ignore]${u}`).join('|');
  const ffmpeg = spawnTracked(FFMPEG, [
    '-hide_banner', '-loglevel', 'error', '-nostdin',
    '-f', 'rawvideo', '-pix_fmt', 'gray', '-s', '640x360', '-r', '30', '-i', 'pipe:0',
    '-re', '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000',
    '-map', '0:v', '-map', '1:a',
    '-c:v', 'libx264', '-preset', 'veryfast', '-tune', 'zerolatency', '-g', '30', '-bf', '0',
    '-pix_fmt', 'yuv420p', '-b:v', '1500k', '-c:a', 'aac', '-b:a', '96k',
    '-flags', '+global_header', '-f', 'tee', tee,
  ], { stdio: [source.proc.stdout, 'ignore', 'inherit'] }, 'ffmpeg');
  return [source, ffmpeg];
}

function summarise(samples, key) {
  const v = samples.map((s) => s[key]).filter((x) => x !== null && Number.isFinite(x));
  if (v.length === 0) return null;
  return {
    samples: v.length,
    median_s: +percentile(v, 50).toFixed(3),
    p95_s: +percentile(v, 95).toFixed(3),
    min_s: +Math.min(...v).toFixed(3),
    max_s: +Math.max(...v).toFixed(3),
  };
}

/** p-quantile upper bound from a Prometheus histogram's cumulative buckets. */
function histogramQuantile(metricsText, name, q) {
  const buckets = [];
  let count = 0;
  let sum = 0;
  for (const line of metricsText.split('\n')) {
    let m = line.match(new RegExp(`^${name}_bucket\\{.*le="([^"]+)".*\\}\\s+(\\S+)`));
    if (m) buckets.push([m[1] === '+Inf' ? Infinity : Number(m[1]), Number(m[2])]);
    m = line.match(new RegExp(`^${name}_count(?:\\{\\})?\\s+(\\S+)`));
    if (m) count = Number(m[1]);
    m = line.match(new RegExp(`^${name}_sum(?:\\{\\})?\\s+(\\S+)`));
    if (m) sum = Number(m[1]);
  }
  if (count === 0) return null;
  buckets.sort((a, b) => a[0] - b[0]);
  const bound = buckets.find(([, c]) => c >= q * count)?.[0] ?? Infinity;
  return { count, mean_ms: +((sum / count) * 1000).toFixed(3), [`p${Math.round(q * 100)}_le_ms`]: bound * 1000,
    buckets: Object.fromEntries(buckets.map(([le, c]) => [String(le), c])) };
}

async function openPlayer(browser, url, name) {
  const page = await browser.newPage();
  page.on('pageerror', (err) => log(`${name} page error: ${err}`));
  await page.goto(url);
  await waitFor(() => page.evaluate(() => window.hawkerPlayer?.started || window.hawkerPlayer?.fatal),
    { timeoutMs: 40000, intervalMs: 200, what: `${name} to start playing` });
  const fatal = await page.evaluate(() => window.hawkerPlayer.fatal);
  if (fatal) throw new Error(`${name}: ${JSON.stringify(fatal)}`);
  return page;
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'hawker-bench-latency-'));
  const hawker = await startHawker({ args: opts.hawkerArgs });
  const { publishUrl } = await addStreamer(hawker, CHANNEL);
  let nginx = null;
  if (opts.nginx) nginx = await startNginx(workDir);
  const urls = [publishUrl, ...(nginx ? [nginx.rtmpUrl] : [])];
  const procs = startPublisher(urls);
  const stopProcs = async () => {
    for (const p of [...procs].reverse()) await p.stop();
    if (nginx) await nginx.nginx.stop();
  };
  try {
    await waitForLive(hawker, CHANNEL);
    if (nginx) {
      await waitFor(async () => {
        try { return (await fetch(nginx.hlsUrl)).status === 200; } catch { return false; }
      }, { timeoutMs: 30000, intervalMs: 250, what: 'nginx-rtmp HLS playlist' });
    }
    const browser = await launchBrowser({ extraArgs: [
      '--disable-background-timer-throttling', '--disable-renderer-backgrounding',
      '--disable-backgrounding-occluded-windows'] });
    const cfg = opts.config ? `&config=${encodeURIComponent(opts.config)}` : '';
    const pages = { hawker: await openPlayer(browser, `${hawker.baseUrl}/player.html?channel=${CHANNEL}&clock=1${cfg}`, 'hawker') };
    if (nginx) {
      pages.nginx = await openPlayer(browser,
        `${hawker.baseUrl}/player.html?src=${encodeURIComponent(nginx.hlsUrl)}&ll=0&clock=1`, 'nginx-rtmp');
    }
    log(`playing; warm-up ${opts.warmup} s, then measuring ${opts.seconds} s`);
    await sleep(opts.warmup * 1000);
    const before = {};
    for (const [name, page] of Object.entries(pages)) before[name] = await page.evaluate(() => ({ stalls: window.hawkerPlayer.stalls, t: Date.now() }));
    const metricsBefore = await (await fetch(`${hawker.baseUrl}/metrics`)).text();
    await sleep(opts.seconds * 1000);
    const results = {
      machine: { cpus: os.cpus().length, cpu: os.cpus()[0]?.model, loadavg: os.loadavg().map((x) => +x.toFixed(2)) },
      seconds: opts.seconds, warmup: opts.warmup, hawker_args: opts.hawkerArgs, servers: {},
    };
    for (const [name, page] of Object.entries(pages)) {
      const st = await page.evaluate(() => window.hawkerPlayer);
      const window_ = st.samples.filter((s) => s.t >= before[name].t);
      results.servers[name] = {
        start_ms: st.startMs,
        start_jump_s: st.startJumpS,
        stalls_total: st.stalls,
        stalls_in_window: st.stalls - before[name].stalls,
        stalled_ms_total: Math.round(st.stalledMs),
        fatal: st.fatal,
        errors: st.errors.map((e) => e.details),
        frame_clock: summarise(window_, 'clockLatency'),
        program_date_time: name === 'hawker' ? summarise(window_, 'pdtLatency') : null,
        hlsjs_latency: summarise(window_, 'latency'),
        hlsjs_target_latency_s: st.targetLatency,
        ...(opts.samples ? { samples: window_ } : {}),
      };
    }
    const metricsAfter = await (await fetch(`${hawker.baseUrl}/metrics`)).text();
    results.hawker_part_ready = {
      whole_run: histogramQuantile(metricsAfter, 'hawker_hls_part_ready_seconds', 0.99),
      before_window: histogramQuantile(metricsBefore, 'hawker_hls_part_ready_seconds', 0.99),
    };
    await browser.stop();
    console.log(JSON.stringify(results, null, 2));
    if (opts.json) fs.writeFileSync(opts.json, JSON.stringify(results, null, 2) + '\n');
  } finally {
    await stopProcs();
    await stopAll();
    fs.rmSync(workDir, { recursive: true, force: true });
  }
}

try {
  await main();
} catch (err) {
  console.error(`bench/latency: ${err.stack ?? err}`);
  process.exitCode = 1;
  await stopAll();
}
