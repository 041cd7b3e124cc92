"""LL-HLS end to end against the real binary: ffmpeg publishes over RTMP, and the playlists,
parts and segments are read back over HTTP as hls.js and ffprobe would. Every media playlist is
checked with hawker's own validator (hawker_playlist_check)."""
import gzip
import http.client
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import unittest

from harness import Hawker, main, wait_for

FFMPEG = shutil.which("ffmpeg")
FFPROBE = shutil.which("ffprobe")
CHECK = os.environ.get("HAWKER_PLAYLIST_CHECK", "build/test/integration/hawker_playlist_check")
CHANNEL = "shop"
BASE = f"/live/{CHANNEL}"
PLAYLIST = f"{BASE}/source/playlist.m3u8"


def parse_hint(text):
    m = re.search(r'#EXT-X-PRELOAD-HINT:TYPE=PART,URI="part(\d+)\.(\d+)\.m4s"', text)
    return (int(m.group(1)), int(m.group(2))) if m else None


def media_sequence(text):
    return int(re.search(r"#EXT-X-MEDIA-SEQUENCE:(\d+)", text).group(1))


def listed_parts(text):
    return set(re.findall(r'URI="(part\d+\.\d+\.m4s)"', text)) - {
        f"part{m}.{i}.m4s" for m, i in [parse_hint(text) or (-1, -1)]}


class LlHlsTest(unittest.TestCase):
    """One hawker and one publisher for the class; the republish test runs last."""

    @classmethod
    def setUpClass(cls):
        if FFMPEG is None or FFPROBE is None:
            raise unittest.SkipTest("ffmpeg/ffprobe are not installed")
        # A 2 s maximum segment keeps TARGETDURATION at 2, so CAN-SKIP-UNTIL is 12 s and delta
        # updates show up within the test's time.
        cls.h = Hawker("--hls-max-segment", "2s")
        cls.h.start()
        res = cls.h.cli("streamer", "add", f"{CHANNEL}@example.com", "--name", CHANNEL)
        cls.key = json.loads(res.stdout)["stream_key"]
        cls.publisher = None
        cls.start_publisher()
        wait_for(lambda: cls.fetch(PLAYLIST)[0] == 200 and "#EXTINF" in cls.fetch(PLAYLIST)[2],
                 30, interval=0.2, what="a first segment")

    @classmethod
    def tearDownClass(cls):
        cls.stop_publisher()
        code = cls.h.stop()
        logs = cls.h.logs()
        cls.h.close()
        if code != 0:
            raise AssertionError(f"hawker exited with {code}:\n{logs[-4000:]}")

    @classmethod
    def start_publisher(cls):
        cls.publisher_log = tempfile.TemporaryFile()
        cls.publisher = subprocess.Popen(
            [FFMPEG, "-hide_banner", "-loglevel", "error", "-nostdin", "-re",
             "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30",
             "-f", "lavfi", "-i", "sine=frequency=440",
             "-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency", "-g", "30",
             "-bf", "0", "-c:a", "aac", "-f", "flv",
             f"rtmp://127.0.0.1:{cls.h.rtmp_port}/live/{cls.key}"],
            stdin=subprocess.DEVNULL, stdout=cls.publisher_log, stderr=cls.publisher_log)

    @classmethod
    def stop_publisher(cls):
        if cls.publisher is not None and cls.publisher.poll() is None:
            cls.publisher.terminate()
            try:
                cls.publisher.wait(10)
            except subprocess.TimeoutExpired:
                cls.publisher.kill()
                cls.publisher.wait()
            cls.publisher_log.close()
        cls.publisher = None

    @classmethod
    def fetch(cls, path, headers=None, timeout=20.0):
        """(status, headers, text) for a playlist."""
        status, hdrs, body = cls.h.request("GET", path, headers=headers, timeout=timeout)
        return status, hdrs, body.decode(errors="replace")

    def check_playlist(self, text):
        res = subprocess.run([CHECK], input=text, capture_output=True, text=True, timeout=10)
        self.assertEqual(res.returncode, 0, f"invalid playlist:\n{res.stdout}\n{text}")
        return res.stdout

    # -- Tests, in name order ------------------------------------------------------------------

    def test_a_playlists_are_valid_llhls(self):
        status, hdrs, text = self.fetch(f"{BASE}/index.m3u8")
        self.assertEqual(status, 200)
        self.assertEqual(hdrs["content-type"], "application/vnd.apple.mpegurl")
        self.assertIn("source/playlist.m3u8", text)
        self.assertRegex(text, r'CODECS="avc1\.[0-9a-f]{6},mp4a\.40\.2"')
        self.assertIn("RESOLUTION=640x360", text)
        for _ in range(5):
            status, hdrs, text = self.fetch(PLAYLIST)
            self.assertEqual(status, 200)
            self.assertEqual(hdrs["content-type"], "application/vnd.apple.mpegurl")
            self.assertIn("#EXT-X-TARGETDURATION:2", text)
            self.assertIn("CAN-BLOCK-RELOAD=YES", text)
            self.assertIn("#EXT-X-PROGRAM-DATE-TIME:", text)
            self.assertIsNotNone(parse_hint(text))
            self.check_playlist(text)
            time.sleep(0.3)

    def test_b_media_is_served_with_cache_headers(self):
        _, _, text = self.fetch(PLAYLIST)
        init = re.search(r'#EXT-X-MAP:URI="([^"]+)"', text).group(1)
        seg = re.findall(r"^(seg\d+\.m4s)$", text, re.M)[-1]
        part = sorted(listed_parts(text))[0]
        for name, ctype in ((init, "video/mp4"), (seg, "video/iso.segment"),
                            (part, "video/iso.segment")):
            status, hdrs, body = self.h.request("GET", f"{BASE}/source/{name}",
                                                headers={"Origin": "https://shop.example"})
            self.assertEqual(status, 200, name)
            self.assertEqual(hdrs["content-type"], ctype, name)
            self.assertEqual(hdrs["cache-control"], "public, max-age=31536000, immutable")
            self.assertIn("access-control-allow-origin", hdrs)
            self.assertGreater(len(body), 0)
        status, hdrs, _ = self.h.request("GET", f"{BASE}/source/seg1.m4s")
        self.assertEqual(status, 404)
        self.assertEqual(hdrs["content-type"], "application/problem+json")
        status, _, _ = self.h.request("GET", "/live/nobody/index.m3u8")
        self.assertEqual(status, 404)
        status, _, _ = self.h.request("GET", f"{BASE}/hd/playlist.m3u8")
        self.assertEqual(status, 404)

    def test_c_playlists_gzip_cors_and_short_cache(self):
        status, hdrs, body = self.h.request(
            "GET", PLAYLIST, headers={"Accept-Encoding": "gzip", "Origin": "https://shop.example"})
        self.assertEqual(status, 200)
        self.assertEqual(hdrs.get("content-encoding"), "gzip")
        self.assertEqual(hdrs["cache-control"], "public, max-age=1")
        self.assertIn("access-control-allow-origin", hdrs)
        self.check_playlist(gzip.decompress(body).decode())
        status, hdrs, _ = self.h.request(
            "OPTIONS", PLAYLIST,
            headers={"Origin": "https://shop.example", "Access-Control-Request-Method": "GET"})
        self.assertIn(status, (200, 204))
        self.assertIn("access-control-allow-origin", hdrs)

    def test_d_bad_blocking_requests_are_400(self):
        _, _, text = self.fetch(PLAYLIST)
        msn, _ = parse_hint(text)
        for query in ("_HLS_part=1", f"_HLS_msn={msn + 10}", "_HLS_msn=abc",
                      f"_HLS_msn={msn}&_HLS_part=-1", "_HLS_skip=maybe"):
            status, hdrs, body = self.fetch(f"{PLAYLIST}?{query}")
            self.assertEqual(status, 400, query)
            self.assertEqual(hdrs["content-type"], "application/problem+json")

    def test_e_blocking_reload_answers_when_the_part_appears(self):
        """Each blocking request for the next part is answered within a few ms of that part
        becoming visible to a client polling the plain playlist every 5 ms."""
        seen = {}
        stop = threading.Event()

        def poll():
            conn = http.client.HTTPConnection("127.0.0.1", self.h.http_port, timeout=10)
            while not stop.is_set():
                conn.request("GET", PLAYLIST)
                text = conn.getresponse().read().decode()
                now = time.monotonic()
                for part in listed_parts(text):
                    seen.setdefault(part, now)
                time.sleep(0.005)
            conn.close()

        poller = threading.Thread(target=poll, daemon=True)
        poller.start()
        time.sleep(0.5)
        deltas, held = [], []
        conn = http.client.HTTPConnection("127.0.0.1", self.h.http_port, timeout=10)
        try:
            for _ in range(12):
                conn.request("GET", PLAYLIST)
                msn, part = parse_hint(conn.getresponse().read().decode())
                asked = time.monotonic()
                conn.request("GET", f"{PLAYLIST}?_HLS_msn={msn}&_HLS_part={part}")
                r = conn.getresponse()
                text = r.read().decode()
                answered = time.monotonic()
                self.assertEqual(r.status, 200)
                self.assertEqual(r.getheader("Cache-Control"), "public, max-age=2")
                name = f"part{msn}.{part}.m4s"
                if name not in text:
                    # The segment ended before that part: the answer holds the next one.
                    self.assertIn(f"part{msn + 1}.0.m4s", text)
                    name = f"part{msn + 1}.0.m4s"
                self.check_playlist(text)
                held.append(answered - asked)
                time.sleep(0.05)  # let the poller see it too
                if name in seen:
                    deltas.append(answered - seen[name])
        finally:
            stop.set()
            conn.close()
            poller.join(5)
        print(f"\n  blocking answer - poller first sight: median {statistics.median(deltas) * 1000:.1f} ms,"
              f" max {max(deltas) * 1000:.1f} ms; held median {statistics.median(held) * 1000:.0f} ms",
              file=sys.stderr)
        self.assertGreaterEqual(len(deltas), 8)
        # The request was really held (answered when the part came, not at once) ...
        self.assertGreater(statistics.median(held), 0.02)
        # ... and answered no later than a poller every 5 ms saw the part.
        self.assertLess(statistics.median(deltas), 0.1, deltas)

    def test_f_preload_hint_part_is_held_until_it_exists(self):
        _, _, text = self.fetch(PLAYLIST)
        msn, part = parse_hint(text)
        start = time.monotonic()
        status, hdrs, body = self.h.request("GET", f"{BASE}/source/part{msn}.{part}.m4s")
        self.assertIn(status, (200, 404))  # 404 only when the segment ended before that part
        if status == 200:
            self.assertGreater(len(body), 0)
            self.assertEqual(hdrs["cache-control"], "public, max-age=31536000, immutable")
        self.assertLess(time.monotonic() - start, 2.0)

    def test_g_ffprobe_and_ffmpeg_read_the_live_stream(self):
        url = f"http://127.0.0.1:{self.h.http_port}{BASE}/index.m3u8"
        res = subprocess.run([FFPROBE, "-v", "error", "-show_entries", "stream=codec_type,codec_name",
                              "-of", "json", url], capture_output=True, text=True, timeout=60)
        self.assertEqual(res.returncode, 0, res.stderr)
        kinds = {s["codec_type"]: s["codec_name"] for s in json.loads(res.stdout)["streams"]}
        self.assertEqual(kinds.get("video"), "h264")
        self.assertEqual(kinds.get("audio"), "aac")
        res = subprocess.run([FFMPEG, "-hide_banner", "-v", "error", "-nostdin", "-i", url,
                              "-t", "2", "-f", "null", "-"], capture_output=True, text=True,
                             timeout=60)
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertEqual(res.stderr.strip(), "", "decode errors")

    def test_h_delta_update_skips_old_segments(self):
        def skipped():
            status, _, text = self.fetch(f"{PLAYLIST}?_HLS_skip=YES")
            return text if status == 200 and "#EXT-X-SKIP:SKIPPED-SEGMENTS=" in text else None
        text = wait_for(skipped, 30, interval=0.5, what="a delta update with EXT-X-SKIP")
        self.check_playlist(text)
        _, _, full = self.fetch(PLAYLIST)
        self.assertGreater(len(full), len(text))

    def test_i_metrics(self):
        _, _, text = self.fetch("/metrics")
        self.assertRegex(text, r'hawker_hls_bytes_held\{channel="shop"\} [1-9]')
        self.assertRegex(text, r'hawker_hls_parts_total\{channel="shop"\} [1-9]')
        self.assertIn("hawker_hls_blocking_requests_held", text)

    def test_z_republish_continues_with_discontinuity(self):
        _, _, before = self.fetch(PLAYLIST)
        self.stop_publisher()

        def settled():
            _, _, text = self.fetch(PLAYLIST)
            return text if parse_hint(text) and parse_hint(text)[1] == 0 else None
        text = wait_for(settled, 10, what="the open segment closed")
        last_msn = parse_hint(text)[0] - 1
        # A blocking request while nobody publishes times out with 503 (3 x TARGETDURATION).
        start = time.monotonic()
        status, hdrs, _ = self.fetch(f"{PLAYLIST}?_HLS_msn={last_msn + 2}")
        self.assertEqual(status, 503)
        self.assertIn("retry-after", hdrs)
        self.assertGreater(time.monotonic() - start, 4.0)

        self.start_publisher()

        def continued():
            _, _, t = self.fetch(PLAYLIST)
            return t if "init1.mp4" in t and re.search(
                r"#EXT-X-DISCONTINUITY\n(.*\n)*?seg\d+\.m4s", t) else None
        text = wait_for(continued, 30, interval=0.2, what="the republished stream's first segment")
        self.check_playlist(text)
        self.assertGreaterEqual(media_sequence(text), media_sequence(before))
        after = text.split("#EXT-X-DISCONTINUITY\n", 1)[1]
        first_new = int(re.search(r"(?:seg|part)(\d+)", after).group(1))
        self.assertEqual(first_new, last_msn + 1)
        self.assertIn('#EXT-X-MAP:URI="init1.mp4"', after)


if __name__ == "__main__":
    main()
