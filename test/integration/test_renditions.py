"""Transcoded renditions end to end. ffmpeg publishes 1920x1080 over RTMP and hawker's ladder
adds 720p, 480p and 360p beside the passthrough source: the multivariant playlist, segment
boundaries (EXTINF and program-date-time) matching across renditions to the millisecond, CODECS
against ffprobe's view of the bytes, clean decodes. A 360p source gets only the source; a
republish at another resolution gets the ladder that resolution calls for; many publish and
unpublish cycles leave memory where it was; a rung that cannot keep real time is dropped from
the playlists (shown to the seller), retried, and never reuses a URL for other bytes."""
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import unittest

from harness import Hawker, main, wait_for

FFMPEG = shutil.which("ffmpeg")
FFPROBE = shutil.which("ffprobe")
PROFILE_IDC = {"Baseline": 66, "Constrained Baseline": 66, "Main": 77, "High": 100}


def make_clip(folder, size, seconds=10):
    """An H.264/AAC FLV clip (1 s keyframes, no B-frames) that publishers loop with -c copy, so
    the test's CPU goes to hawker's ladder rather than to encoding the source live."""
    path = os.path.join(folder, f"{size}.flv")
    subprocess.run(
        [FFMPEG, "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
         "-f", "lavfi", "-i", f"testsrc2=size={size}:rate=30:duration={seconds}",
         "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}",
         "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "30",
         "-bf", "0", "-pix_fmt", "yuv420p", "-c:a", "aac", "-f", "flv", path],
        check=True, timeout=120, stdin=subprocess.DEVNULL, capture_output=True)
    return path


def publisher(h, key, clip):
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen(
        [FFMPEG, "-hide_banner", "-loglevel", "error", "-nostdin", "-re", "-stream_loop", "-1",
         "-i", clip, "-c", "copy", "-f", "flv", f"rtmp://127.0.0.1:{h.rtmp_port}/live/{key}"],
        stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    return proc, log


def stop(proc):
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def variants(text):
    """{uri folder: attributes} of a multivariant playlist."""
    out = {}
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("#EXT-X-STREAM-INF:"):
            attrs = dict(re.findall(r'([A-Z-]+)=("[^"]*"|[^,]*)', line[len("#EXT-X-STREAM-INF:"):]))
            out[lines[i + 1].split("/")[0]] = {k: v.strip('"') for k, v in attrs.items()}
    return out


def segments(text):
    """{msn: (extinf, program-date-time)} of the complete segments of a media playlist."""
    msn = int(re.search(r"#EXT-X-MEDIA-SEQUENCE:(\d+)", text).group(1))
    out = {}
    pdt = None
    extinf = None
    for line in text.splitlines():
        if line.startswith("#EXT-X-PROGRAM-DATE-TIME:"):
            pdt = line.split(":", 1)[1]
        elif line.startswith("#EXTINF:"):
            extinf = line[len("#EXTINF:"):].rstrip(",")
        elif line and not line.startswith("#"):
            out[msn] = (extinf, pdt)
            pdt = None
            msn += 1
    return out


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"^VmRSS:\s+(\d+) kB", f.read(), re.M).group(1))


def api_headers(h):
    # Once seller accounts exist /api/streams wants an admin token; until then it answers on
    # the local interface without one.
    token = h.cli("admin", "token", check=False)
    if token.returncode == 0:
        return {"Authorization": "Bearer " + json.loads(token.stdout)["token"]}
    return {}


class RenditionsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if FFMPEG is None or FFPROBE is None:
            raise unittest.SkipTest("ffmpeg/ffprobe are not installed")
        cls.clips_dir = tempfile.TemporaryDirectory(prefix="hawker-clips-")
        cls.clips = {size: make_clip(cls.clips_dir.name, size)
                     for size in ("1920x1080", "1280x720", "640x360")}
        # One channel with a ladder of its own: a 240p rung capped at 15 fps.
        cls.config = os.path.join(cls.clips_dir.name, "hawker.toml")
        with open(cls.config, "w") as f:
            f.write('[hls.channels.custom]\nladder = "240:300:15"\n')
        cls.h = Hawker("--config", cls.config)
        cls.h.start()
        cls.keys = {}
        for channel in ("hd", "small", "changes", "cycles", "custom"):
            res = cls.h.cli("streamer", "add", f"{channel}@example.com", "--name", channel)
            cls.keys[channel] = json.loads(res.stdout)["stream_key"]

    @classmethod
    def tearDownClass(cls):
        code = cls.h.stop()
        logs = cls.h.logs()
        cls.h.close()
        cls.clips_dir.cleanup()
        if code != 0:
            raise AssertionError(f"hawker exited with {code}:\n{logs[-4000:]}")

    def get(self, path, h=None):
        status, _, body = (h or self.h).request("GET", path, timeout=20)
        return status, body

    def text(self, path, h=None):
        status, body = self.get(path, h)
        self.assertEqual(status, 200, path)
        return body.decode()

    def wait_variants(self, channel, names, settle_segments, h=None, timeout=60):
        def ready():
            status, body = self.get(f"/live/{channel}/index.m3u8", h)
            if status != 200 or set(variants(body.decode())) != names:
                return False
            for name in names:
                status, body = self.get(f"/live/{channel}/{name}/playlist.m3u8", h)
                if status != 200 or len(segments(body.decode())) < settle_segments:
                    return False
            return True
        wait_for(ready, timeout, interval=0.5, what=f"renditions {sorted(names)} on {channel}")

    def test_a_1080p_source_gets_720p_480p_and_360p_aligned(self):
        proc, log = publisher(self.h, self.keys["hd"], self.clips["1920x1080"])
        try:
            names = {"source", "720p", "480p", "360p"}
            self.wait_variants("hd", names, 4)
            time.sleep(2)
            master = variants(self.text("/live/hd/index.m3u8"))
            self.assertEqual(set(master), names)
            self.assertEqual(master["source"]["RESOLUTION"], "1920x1080")
            self.assertEqual(master["720p"]["RESOLUTION"], "1280x720")
            self.assertEqual(master["480p"]["RESOLUTION"], "854x480")
            self.assertEqual(master["360p"]["RESOLUTION"], "640x360")
            for name, attrs in master.items():
                self.assertIn("AVERAGE-BANDWIDTH", attrs, name)
                self.assertGreaterEqual(int(attrs["BANDWIDTH"]), int(attrs["AVERAGE-BANDWIDTH"]))
                self.assertAlmostEqual(float(attrs["FRAME-RATE"]), 30, delta=0.5)
                self.assertIn("mp4a.40.2", attrs["CODECS"], name)
            # Each rung spends fewer bits than the one above it.
            for low, high in (("360p", "480p"), ("480p", "720p")):
                self.assertLess(int(master[low]["AVERAGE-BANDWIDTH"]),
                                int(master[high]["AVERAGE-BANDWIDTH"]), (low, high))

            playlists = {n: self.text(f"/live/hd/{n}/playlist.m3u8") for n in names}
            found = {n: segments(t) for n, t in playlists.items()}
            common = set.intersection(*(set(s) for s in found.values()))
            self.assertGreaterEqual(len(common), 3, found)
            for msn in sorted(common):
                # EXTINF is printed to the millisecond: equal strings are equal boundaries.
                extinfs = {n: found[n][msn][0] for n in names}
                self.assertEqual(len(set(extinfs.values())), 1, f"msn {msn}: {extinfs}")
                pdts = {n: found[n][msn][1] for n in names if found[n][msn][1]}
                self.assertLessEqual(len(set(pdts.values())), 1, f"msn {msn}: {pdts}")
            for n, t in playlists.items():
                reported = set(re.findall(r'#EXT-X-RENDITION-REPORT:URI="\.\./([^/]+)/', t))
                self.assertEqual(reported, names - {n}, t)

            for n in names:
                self.check_bytes("hd", n, master[n], sorted(common)[-2:], playlists[n])
        finally:
            stop(proc)
            log.close()

    def check_bytes(self, channel, name, attrs, msns, playlist):
        # The newest segments belong to the newest init segment (a republish adds one).
        init = re.findall(r'#EXT-X-MAP:URI="([^"]+)"', playlist)[-1]
        data = b""
        for uri in [init] + [f"seg{m}.m4s" for m in msns]:
            status, body = self.get(f"/live/{channel}/{name}/{uri}")
            self.assertEqual(status, 200, uri)
            data += body
        with tempfile.NamedTemporaryFile(suffix=".mp4") as f:
            f.write(data)
            f.flush()
            probe = json.loads(subprocess.run(
                [FFPROBE, "-v", "error", "-show_streams", "-of", "json", f.name],
                capture_output=True, text=True, timeout=30, check=True).stdout)
            video = [s for s in probe["streams"] if s["codec_type"] == "video"][0]
            avc1 = re.search(r"avc1\.([0-9a-fA-F]{6})", attrs["CODECS"]).group(1)
            self.assertEqual(int(avc1[0:2], 16), PROFILE_IDC[video["profile"]], (name, attrs))
            self.assertEqual(int(avc1[4:6], 16), int(video["level"]), (name, attrs))
            self.assertEqual(f'{video["width"]}x{video["height"]}', attrs["RESOLUTION"], name)
            decoded = subprocess.run(
                [FFMPEG, "-v", "error", "-nostdin", "-i", f.name, "-f", "null", "-"],
                capture_output=True, text=True, timeout=60)
            self.assertEqual(decoded.returncode, 0, decoded.stderr)
            self.assertEqual(decoded.stderr.strip(), "", f"{name}: decode errors")

    def test_b_360p_source_gets_only_the_source(self):
        proc, log = publisher(self.h, self.keys["small"], self.clips["640x360"])
        try:
            self.wait_variants("small", {"source"}, 3)
            self.assertEqual(set(variants(self.text("/live/small/index.m3u8"))), {"source"})
            status, _ = self.get("/live/small/360p/playlist.m3u8")
            self.assertEqual(status, 404)
        finally:
            stop(proc)
            log.close()

    def test_b_a_channel_with_its_own_ladder_gets_its_rungs(self):
        proc, log = publisher(self.h, self.keys["custom"], self.clips["640x360"])
        try:
            self.wait_variants("custom", {"source", "240p"}, 2)
            master = variants(self.text("/live/custom/index.m3u8"))
            self.assertEqual(master["240p"]["RESOLUTION"], "426x240")
            self.assertAlmostEqual(float(master["240p"]["FRAME-RATE"]), 15, delta=0.5)
            self.assertAlmostEqual(float(master["source"]["FRAME-RATE"]), 30, delta=0.5)
        finally:
            stop(proc)
            log.close()

    def test_c_a_republish_at_another_resolution_gets_its_ladder(self):
        proc, log = publisher(self.h, self.keys["changes"], self.clips["640x360"])
        try:
            self.wait_variants("changes", {"source"}, 2)
            before = segments(self.text("/live/changes/source/playlist.m3u8"))
        finally:
            stop(proc)
            log.close()
        # Within the reconnect grace the same playlist continues, now at 720p with its rungs.
        proc, log = publisher(self.h, self.keys["changes"], self.clips["1280x720"])
        try:
            self.wait_variants("changes", {"source", "480p", "360p"}, 2)
            master = variants(self.text("/live/changes/index.m3u8"))
            self.assertEqual(master["source"]["RESOLUTION"], "1280x720")
            self.assertEqual(master["480p"]["RESOLUTION"], "854x480")
            text = self.text("/live/changes/source/playlist.m3u8")
            after = segments(text)
            self.assertGreater(max(after), max(before), "media sequence numbers go on")
            self.assertIn("#EXT-X-DISCONTINUITY", text)
            self.assertGreaterEqual(len(set(re.findall(r'#EXT-X-MAP:URI="([^"]+)"', text))), 1)
            for n in ("source", "480p"):
                t = self.text(f"/live/changes/{n}/playlist.m3u8")
                newest = sorted(segments(t))[-2:]
                self.check_bytes("changes", n, master[n], newest, t)
        finally:
            stop(proc)
            log.close()
        # And back down: a 360p republish leaves the rungs out again.
        proc, log = publisher(self.h, self.keys["changes"], self.clips["640x360"])
        try:
            def source_only():
                status, body = self.get("/live/changes/index.m3u8")
                return status == 200 and set(variants(body.decode())) == {"source"}
            wait_for(source_only, 30, interval=0.5, what="the ladder leaves with the 720p source")
            master = variants(self.text("/live/changes/index.m3u8"))
            self.assertEqual(master["source"]["RESOLUTION"], "640x360")
            # Players still on a rung that left get 404 and switch to a rendition that exists.
            status, _ = self.get("/live/changes/480p/playlist.m3u8")
            self.assertEqual(status, 404)
            # Nor does the source's playlist report them any more.
            text = self.text("/live/changes/source/playlist.m3u8")
            self.assertNotIn("#EXT-X-RENDITION-REPORT", text)
        finally:
            stop(proc)
            log.close()

    def test_d_publish_unpublish_cycles_keep_memory_bounded(self):
        pid = self.h.proc.pid
        samples = []
        cycles = 10
        for cycle in range(cycles):
            status, body = self.get("/live/cycles/360p/playlist.m3u8")
            before = max(segments(body.decode()), default=-1) if status == 200 else -1
            proc, log = publisher(self.h, self.keys["cycles"], self.clips["1280x720"])
            try:
                def rungs_on_air():
                    status, body = self.get("/live/cycles/360p/playlist.m3u8")
                    # This publish's ladder has completed segments in the lowest rung.
                    return status == 200 and max(segments(body.decode()), default=-1) > before + 1
                wait_for(rungs_on_air, 60, interval=0.25, what=f"the ladder in cycle {cycle}")
            finally:
                stop(proc)
                log.close()
            time.sleep(0.5)
            # Media in the stores' windows grows until the window is full; what is left beyond
            # it is the process's own: codec state, buffers, connections.
            samples.append(rss_kib(pid) - self.bytes_held("cycles") // 1024)
        # The first cycles warm the allocator and the codec tables; after that a cycle that
        # leaks its decoder, scalers or encoders (tens of MiB at 720p) shows.
        settled = max(samples[2:4])
        growth_mib = (samples[-1] - settled) / 1024
        self.assertLess(growth_mib, 24, f"RSS less media held, per cycle (KiB): {samples}")
        print(f"RSS less media held after each cycle (MiB): {[round(s / 1024) for s in samples]}")

    def bytes_held(self, channel):
        status, _, metrics = self.h.request("GET", "/metrics")
        self.assertEqual(status, 200)
        m = re.search(rb'^hawker_hls_bytes_held\{channel="%s"\} (\S+)$' % channel.encode(),
                      metrics, re.M)
        self.assertIsNotNone(m, "hawker_hls_bytes_held is reported")
        return int(float(m.group(1)))


class SheddingTest(unittest.TestCase):
    """A machine that cannot encode a rung in real time: here made so by a 1% budget."""

    def test_rungs_that_cannot_keep_real_time_are_dropped_retried_and_shown(self):
        if FFMPEG is None or FFPROBE is None:
            raise unittest.SkipTest("ffmpeg/ffprobe are not installed")
        clips = tempfile.TemporaryDirectory(prefix="hawker-clips-")
        h = Hawker("--transcode-realtime-budget", "1", "--transcode-retry-after", "2s")
        h.start()
        proc = log = None
        try:
            key = json.loads(h.cli("streamer", "add", "slow@example.com", "--name", "slow")
                             .stdout)["stream_key"]
            headers = api_headers(h)
            proc, log = publisher(h, key, make_clip(clips.name, "1280x720"))

            def dropped():
                status, body = h.get_json("/api/streams", headers=headers)
                self.assertEqual(status, 200, body)
                s = [s for s in body["streams"] if s["channel"] == "slow"]
                return s and s[0]["renditions_dropped"]
            first = wait_for(dropped, 60, interval=0.25, what="a rung dropped")[0]
            # Its URLs answer 404 so a player on it switches away (unless retried meanwhile).
            status, _ = self.get(f"/live/slow/{first}/playlist.m3u8", h)
            if status != 404:
                self.assertNotIn(first, dropped() or [], f"{first} answers {status} while dropped")
            status, body = self.get("/live/slow/index.m3u8", h)
            self.assertEqual(status, 200)
            listed = set(variants(body.decode()))
            self.assertIn("source", listed)
            self.assertTrue(listed < {"source", "480p", "360p"}, listed)

            # For a while, every rendition's URLs keep naming the same bytes across drops and
            # retries, and its media sequence never goes back.
            inits = {}
            last_msn = {}
            deadline = time.time() + 15
            while time.time() < deadline:
                for n in ("480p", "360p"):
                    status, body = self.get(f"/live/slow/{n}/playlist.m3u8", h)
                    if status != 200:
                        continue
                    text = body.decode()
                    found = segments(text)
                    if found:
                        self.assertGreaterEqual(max(found), last_msn.get(n, 0), n)
                        last_msn[n] = max(found)
                    for uri in set(re.findall(r'#EXT-X-MAP:URI="([^"]+)"', text)):
                        status, init = self.get(f"/live/slow/{n}/{uri}", h)
                        if status != 200:
                            continue
                        digest = hashlib.sha256(init).hexdigest()
                        key_ = (n, uri)
                        self.assertEqual(inits.setdefault(key_, digest), digest,
                                         f"{n}/{uri} named other bytes")
                time.sleep(0.3)
            self.assertTrue(last_msn, "the rungs were on air between drops")
            _, _, metrics = h.request("GET", "/metrics")
            drops = [float(v) for v in re.findall(
                rb'^hawker_transcode_rung_dropped_total\{[^}]*channel="slow"[^}]*\} (\S+)$',
                metrics, re.M)]
            self.assertGreaterEqual(sum(drops), 2, metrics.decode()[-2000:])
            logs = h.logs()
            self.assertIn("dropped: encoding cannot keep real time", logs)
            self.assertIn("retried from msn", logs)
        finally:
            if proc is not None:
                stop(proc)
                log.close()
            code = h.stop()
            logs = h.logs()
            h.close()
            clips.cleanup()
            self.assertEqual(code, 0, logs[-4000:])

    def get(self, path, h):
        status, _, body = h.request("GET", path, timeout=20)
        return status, body


if __name__ == "__main__":
    main()
