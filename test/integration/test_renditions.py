"""Transcoded renditions end to end: ffmpeg publishes 1280x720 over RTMP and hawker's ladder adds
480p and 360p beside the passthrough source. Checks the multivariant playlist, segment boundaries
(EXTINF and program-date-time) matching across renditions to the millisecond, CODECS against
ffprobe's view of the bytes, clean decodes, and that a 360p source gets only the source."""
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


def publisher(h, key, size):
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen(
        [FFMPEG, "-hide_banner", "-loglevel", "error", "-nostdin", "-re",
         "-f", "lavfi", "-i", f"testsrc2=size={size}:rate=30",
         "-f", "lavfi", "-i", "sine=frequency=440",
         "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "30",
         "-bf", "0", "-c:a", "aac", "-f", "flv", f"rtmp://127.0.0.1:{h.rtmp_port}/live/{key}"],
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


class RenditionsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if FFMPEG is None or FFPROBE is None:
            raise unittest.SkipTest("ffmpeg/ffprobe are not installed")
        cls.h = Hawker()
        cls.h.start()
        cls.keys = {}
        for channel in ("hd", "small"):
            res = cls.h.cli("streamer", "add", f"{channel}@example.com", "--name", channel)
            cls.keys[channel] = json.loads(res.stdout)["stream_key"]

    @classmethod
    def tearDownClass(cls):
        code = cls.h.stop()
        logs = cls.h.logs()
        cls.h.close()
        if code != 0:
            raise AssertionError(f"hawker exited with {code}:\n{logs[-4000:]}")

    def get(self, path):
        status, _, body = self.h.request("GET", path, timeout=20)
        return status, body

    def text(self, path):
        status, body = self.get(path)
        self.assertEqual(status, 200, path)
        return body.decode()

    def wait_variants(self, channel, names, settle_segments):
        def ready():
            status, body = self.get(f"/live/{channel}/index.m3u8")
            if status != 200 or set(variants(body.decode())) != names:
                return False
            for name in names:
                status, body = self.get(f"/live/{channel}/{name}/playlist.m3u8")
                if status != 200 or len(segments(body.decode())) < settle_segments:
                    return False
            return True
        wait_for(ready, 60, interval=0.5, what=f"renditions {sorted(names)} on {channel}")

    def test_a_720p_source_gets_480p_and_360p_aligned(self):
        proc, log = publisher(self.h, self.keys["hd"], "1280x720")
        try:
            names = {"source", "480p", "360p"}
            self.wait_variants("hd", names, 4)
            time.sleep(2)
            master = variants(self.text("/live/hd/index.m3u8"))
            self.assertEqual(master["source"]["RESOLUTION"], "1280x720")
            self.assertEqual(master["480p"]["RESOLUTION"], "854x480")
            self.assertEqual(master["360p"]["RESOLUTION"], "640x360")
            for name, attrs in master.items():
                self.assertIn("AVERAGE-BANDWIDTH", attrs, name)
                self.assertGreaterEqual(int(attrs["BANDWIDTH"]), int(attrs["AVERAGE-BANDWIDTH"]))
                self.assertAlmostEqual(float(attrs["FRAME-RATE"]), 30, delta=0.5)
                self.assertIn("mp4a.40.2", attrs["CODECS"], name)
            # The rungs spend fewer bits than the 720p passthrough's rung above them.
            self.assertLess(int(master["360p"]["AVERAGE-BANDWIDTH"]),
                            int(master["480p"]["AVERAGE-BANDWIDTH"]))

            playlists = {n: self.text(f"/live/hd/{n}/playlist.m3u8") for n in names}
            found = {n: segments(t) for n, t in playlists.items()}
            common = set.intersection(*(set(s) for s in found.values()))
            self.assertGreaterEqual(len(common), 3, found)
            for msn in sorted(common):
                extinfs = {n: found[n][msn][0] for n in names}
                self.assertEqual(len(set(extinfs.values())), 1, f"msn {msn}: {extinfs}")
                pdts = {n: found[n][msn][1] for n in names if found[n][msn][1]}
                self.assertLessEqual(len(set(pdts.values())), 1, f"msn {msn}: {pdts}")
            for n, t in playlists.items():
                reported = set(re.findall(r'#EXT-X-RENDITION-REPORT:URI="\.\./([^/]+)/', t))
                self.assertEqual(reported, names - {n}, t)

            for n in names:
                self.check_bytes(n, master[n]["CODECS"], sorted(common)[-2:], playlists[n])
        finally:
            stop(proc)
            log.close()

    def check_bytes(self, name, codecs, msns, playlist):
        init = re.search(r'#EXT-X-MAP:URI="([^"]+)"', playlist).group(1)
        data = b""
        for uri in [init] + [f"seg{m}.m4s" for m in msns]:
            status, body = self.get(f"/live/hd/{name}/{uri}")
            self.assertEqual(status, 200, uri)
            data += body
        with tempfile.NamedTemporaryFile(suffix=".mp4") as f:
            f.write(data)
            f.flush()
            probe = json.loads(subprocess.run(
                [FFPROBE, "-v", "error", "-show_streams", "-of", "json", f.name],
                capture_output=True, text=True, timeout=30, check=True).stdout)
            video = [s for s in probe["streams"] if s["codec_type"] == "video"][0]
            avc1 = re.search(r"avc1\.([0-9a-fA-F]{6})", codecs).group(1)
            self.assertEqual(int(avc1[0:2], 16), PROFILE_IDC[video["profile"]], (name, codecs))
            self.assertEqual(int(avc1[4:6], 16), int(video["level"]), (name, codecs))
            decoded = subprocess.run(
                [FFMPEG, "-v", "error", "-nostdin", "-i", f.name, "-f", "null", "-"],
                capture_output=True, text=True, timeout=60)
            self.assertEqual(decoded.returncode, 0, decoded.stderr)
            self.assertEqual(decoded.stderr.strip(), "", f"{name}: decode errors")

    def test_b_360p_source_gets_only_the_source(self):
        proc, log = publisher(self.h, self.keys["small"], "640x360")
        try:
            self.wait_variants("small", {"source"}, 3)
            self.assertEqual(set(variants(self.text("/live/small/index.m3u8"))), {"source"})
            status, _ = self.get("/live/small/360p/playlist.m3u8")
            self.assertEqual(status, 404)
        finally:
            stop(proc)
            log.close()


if __name__ == "__main__":
    main()
