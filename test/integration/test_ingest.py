"""RTMP ingest against the real binary: real ffmpeg and GStreamer publishers, stream keys from the
CLI, /api/streams, takeover, reconnect grace, 20 publishers at once, garbage on the RTMP port and
brute-force slow-down."""
import json
import os
import re
import secrets
import shutil
import socket
import struct
import subprocess
import tempfile
import time
import unittest

from harness import Hawker, main, wait_for

FFMPEG = shutil.which("ffmpeg")
GST_LAUNCH = shutil.which("gst-launch-1.0")
PRE_FLV = None
PRE_FLV_BYTES_PER_SECOND = 0.0
_WORK = None


def setUpModule():
    """Encodes one short low-resolution H.264+AAC FLV that every passthrough publisher sends with
    `-c copy`, so 20 publishers cost almost no CPU."""
    global PRE_FLV, PRE_FLV_BYTES_PER_SECOND, _WORK
    if FFMPEG is None:
        raise unittest.SkipTest("ffmpeg is not installed")
    _WORK = tempfile.TemporaryDirectory(prefix="hawker-it-ingest-")
    PRE_FLV = os.path.join(_WORK.name, "pre.flv")
    seconds = 4
    subprocess.run(
        [FFMPEG, "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
         "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=30",
         "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100",
         "-t", str(seconds), "-c:v", "libx264", "-preset", "ultrafast", "-g", "30",
         "-pix_fmt", "yuv420p", "-b:v", "300k", "-c:a", "aac", "-b:a", "64k", "-f", "flv", PRE_FLV],
        check=True, timeout=60)
    PRE_FLV_BYTES_PER_SECOND = os.path.getsize(PRE_FLV) / seconds


def tearDownModule():
    if _WORK is not None:
        _WORK.cleanup()


# -- A minimal RTMP publisher, for the exact timing and status codes ffmpeg does not expose ------

def amf_string(s):
    b = s.encode()
    return b"\x02" + struct.pack(">H", len(b)) + b


def amf_number(n):
    return b"\x00" + struct.pack(">d", n)


def amf_object(props):
    out = b"\x03"
    for k, v in props.items():
        kb = k.encode()
        out += struct.pack(">H", len(kb)) + kb + amf_string(v)
    return out + b"\x00\x00\x09"


AMF_NULL = b"\x05"


def rtmp_message(csid, type_id, stream_id, payload, chunk_size=128):
    """One message as a type-0 chunk followed by type-3 continuation chunks."""
    out = bytes([csid]) + (0).to_bytes(3, "big") + len(payload).to_bytes(3, "big")
    out += bytes([type_id]) + struct.pack("<I", stream_id)
    for i in range(0, len(payload), chunk_size):
        if i > 0:
            out += bytes([0xC0 | csid])
        out += payload[i:i + chunk_size]
    return out


def rtmp_handshake(port, timeout=5.0):
    """Connects and completes a plain handshake; returns the socket."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    c1 = b"\x00" * 8 + secrets.token_bytes(1528)
    s.sendall(b"\x03" + c1)
    need = 1 + 1536 + 1536
    got = b""
    while len(got) < need:
        b = s.recv(need - len(got))
        if not b:
            raise AssertionError("server closed the connection during the handshake")
        got += b
    s.sendall(got[1:1537])  # C2 echoes S1
    return s


def read_until_closed(s, timeout):
    """Everything the server sends until it closes; returns (bytes, seconds, closed)."""
    s.settimeout(0.2)
    data = b""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        try:
            b = s.recv(65536)
        except socket.timeout:
            continue
        except ConnectionResetError:
            return data, time.monotonic() - start, True
        if not b:
            return data, time.monotonic() - start, True
        data += b
    return data, time.monotonic() - start, False


def publish_attempt(port, key, timeout=40.0):
    """Handshake, connect, createStream and publish `key`. Returns (status code seen, seconds from
    the publish command to that status, seconds from the status to the server closing)."""
    s = rtmp_handshake(port)
    tc_url = f"rtmp://127.0.0.1:{port}/live"
    cmds = rtmp_message(3, 20, 0, amf_string("connect") + amf_number(1) + amf_object(
        {"app": "live", "type": "nonprivate", "flashVer": "FMLE/3.0", "tcUrl": tc_url}))
    cmds += rtmp_message(3, 20, 0, amf_string("createStream") + amf_number(2) + AMF_NULL)
    s.sendall(cmds)
    t0 = time.monotonic()
    s.sendall(rtmp_message(4, 20, 1, amf_string("publish") + amf_number(3) + AMF_NULL +
                           amf_string(key) + amf_string("live")))
    s.settimeout(0.2)
    data = b""
    status, status_at = None, None
    while time.monotonic() - t0 < timeout:
        try:
            b = s.recv(65536)
        except socket.timeout:
            continue
        except ConnectionResetError:
            break
        if not b:
            break
        data += b
        m = re.search(rb"NetStream\.Publish\.(BadName|Start)", data)
        if m:
            status, status_at = m.group(0).decode(), time.monotonic()
            break
    if status is None:
        s.close()
        return None, time.monotonic() - t0, None
    if status.endswith("Start"):
        s.close()
        return status, status_at - t0, None
    _, closed_after, closed = read_until_closed(s, 5.0)
    s.close()
    return status, status_at - t0, closed_after if closed else None


# -- The test cases ---------------------------------------------------------------------------

class IngestCase(unittest.TestCase):
    """Shared helpers: one hawker, publishers killed in tearDown, /api/streams by channel."""

    hawker_args = ()

    def start_hawker(self, *args):
        h = Hawker(*self.hawker_args, *args)
        h.start()
        h.issued_keys = []
        # Once seller accounts exist /api/streams wants an admin token; until then it answers on
        # the local interface without one.
        token = h.cli("admin", "token", check=False)
        h.api_headers = {}
        if token.returncode == 0:
            h.api_headers = {"Authorization": "Bearer " + json.loads(token.stdout)["token"]}
        return h

    def setUp(self):
        self.procs = []

    def tearDown(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
            p.wait()
            p.output.close()

    def add_streamer(self, h, channel):
        res = h.cli("streamer", "add", f"{channel}@example.com", "--name", channel)
        key = json.loads(res.stdout)["stream_key"]
        h.issued_keys.append(key)
        return key

    def streams(self, h):
        status, body = h.get_json("/api/streams", headers=h.api_headers)
        self.assertEqual(status, 200, body)
        return {s["channel"]: s for s in body["streams"]}

    def stream(self, h, channel):
        return self.streams(h).get(channel)

    def wait_live(self, h, channel, timeout=15.0, need=lambda s: True):
        def ready():
            s = self.stream(h, channel)
            return s if s and s["state"] == "live" and need(s) else None
        return wait_for(ready, timeout, interval=0.2, what=f"{channel} live")

    def spawn(self, cmd):
        log = tempfile.TemporaryFile()
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        p.output = log
        self.procs.append(p)
        return p

    def output_of(self, p):
        p.output.seek(0)
        return p.output.read().decode(errors="replace")

    def url(self, h, key):
        return f"rtmp://127.0.0.1:{h.rtmp_port}/live/{key}"

    def publish_encoded(self, h, key, size="1280x720", gop=30):
        return self.spawn([
            FFMPEG, "-hide_banner", "-loglevel", "error", "-nostdin", "-re",
            "-f", "lavfi", "-i", f"testsrc2=size={size}:rate=30", "-f", "lavfi", "-i", "sine",
            "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", str(gop),
            "-c:a", "aac", "-f", "flv", self.url(h, key)])

    def publish_copy(self, h, key):
        return self.spawn([
            FFMPEG, "-hide_banner", "-loglevel", "error", "-nostdin", "-re", "-stream_loop", "-1",
            "-i", PRE_FLV, "-c", "copy", "-f", "flv", self.url(h, key)])

    def assert_exits(self, p, timeout, what):
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            self.fail(f"{what}: publisher still running after {timeout}s")


H264_PROFILES = {0x42: ("Baseline",), 0x4D: ("Main",), 0x64: ("High",), 0xF4: ("High 4:4:4",)}


class PublishTest(IngestCase):
    """Publishers with good keys on one hawker (a 2 s reconnect grace)."""

    hawker_args = ("--rtmp-reconnect-grace", "2s")

    @classmethod
    def setUpClass(cls):
        cls.h = IngestCase.start_hawker(cls)

    @classmethod
    def tearDownClass(cls):
        code = cls.h.stop()
        logs = cls.h.logs()
        keys = cls.h.issued_keys
        cls.h.close()
        for key in keys:
            if key in logs:
                raise AssertionError("a stream key reached the log")
        if code != 0:
            raise AssertionError(f"hawker exited with {code}:\n{logs[-4000:]}")

    def assert_h264(self, video, width, height):
        m = re.fullmatch(r"avc1\.([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})", video["codecs"])
        self.assertIsNotNone(m, video["codecs"])
        self.assertEqual(video["codec"], "h264")
        profile = int(m.group(1), 16)
        if profile in H264_PROFILES:
            self.assertIn(video["profile"], H264_PROFILES[profile])
        self.assertAlmostEqual(video["level"], int(m.group(3), 16) / 10.0)
        self.assertEqual((video["width"], video["height"]), (width, height))

    def test_ffmpeg_publish_shows_codec_facts_and_flags_long_keyframe_interval(self):
        short_key = self.add_streamer(self.h, "ff-gop1s")
        long_key = self.add_streamer(self.h, "ff-gop5s")
        short = self.publish_encoded(self.h, short_key, gop=30)
        long = self.publish_encoded(self.h, long_key, gop=150)

        s = self.wait_live(self.h, "ff-gop1s", need=lambda s: s["video"] and s["audio"] and
                           s["keyframe_interval_ms"] > 0)
        self.assert_h264(s["video"], 1280, 720)
        self.assertEqual(s["audio"]["codec"], "aac")
        self.assertEqual(s["audio"]["codecs"], "mp4a.40.2")
        self.assertEqual(s["audio"]["sample_rate"], 44100)  # lavfi sine's rate
        self.assertEqual(s["audio"]["channels"], 1)
        self.assertTrue(900 <= s["keyframe_interval_ms"] <= 1100, s["keyframe_interval_ms"])
        self.assertFalse(s["keyframe_interval_warning"])
        self.assertEqual(s["warnings"], [])
        self.assertEqual(s["reconnects"], 0)
        self.assertTrue(s["remote_addr"].startswith("127.0.0.1:"), s["remote_addr"])
        self.assertTrue(s["playback_url"].endswith("/live/ff-gop1s/index.m3u8"))

        # A 5 s keyframe interval is measured once the second keyframe arrives.
        s = self.wait_live(self.h, "ff-gop5s", timeout=20,
                           need=lambda s: s["keyframe_interval_ms"] > 0)
        self.assertTrue(4500 <= s["keyframe_interval_ms"] <= 5500, s["keyframe_interval_ms"])
        self.assertTrue(s["keyframe_interval_warning"])
        self.assertEqual(len(s["warnings"]), 1)
        self.assertIn("Keyframe Interval", s["warnings"][0])

        # By now the 1 s stream has run for several seconds: its rates are measured.
        s = self.stream(self.h, "ff-gop1s")
        self.assertGreater(s["bitrate_bps"], 100_000)
        self.assertGreater(s["frame_rate"], 15)
        self.assertLessEqual(s["frame_rate"], 32)
        self.assertIsNone(short.poll(), self.output_of(short))
        self.assertIsNone(long.poll(), self.output_of(long))

    def test_gstreamer_publish_shows_codec_facts(self):
        if GST_LAUNCH is None:
            self.skipTest("gst-launch-1.0 is not installed")
        aac = next((e for e in ("avenc_aac", "voaacenc", "fdkaacenc")
                    if subprocess.run(["gst-inspect-1.0", "--exists", e]).returncode == 0), None)
        if aac is None:
            self.skipTest("no GStreamer AAC encoder (gstreamer1.0-libav)")
        key = self.add_streamer(self.h, "gst")
        p = self.spawn([
            GST_LAUNCH, "-q",
            "videotestsrc", "is-live=true", "num-buffers=600", "!",
            "video/x-raw,format=I420,width=640,height=360,framerate=30/1", "!",
            "x264enc", "tune=zerolatency", "speed-preset=ultrafast", "key-int-max=30", "!",
            "h264parse", "!", "flvmux", "name=m", "streamable=true", "!",
            "rtmp2sink", f"location={self.url(self.h, key)}",
            "audiotestsrc", "is-live=true", "!", "audioconvert", "!", "audioresample", "!",
            "audio/x-raw,rate=48000,channels=2", "!", aac, "!", "aacparse", "!", "m."])
        s = self.wait_live(self.h, "gst", need=lambda s: s["video"] and s["audio"] and
                           s["keyframe_interval_ms"] > 0)
        self.assert_h264(s["video"], 640, 360)
        self.assertEqual(s["audio"]["codecs"], "mp4a.40.2")
        self.assertEqual(s["audio"]["sample_rate"], 48000)
        self.assertEqual(s["audio"]["channels"], 2)
        self.assertTrue(900 <= s["keyframe_interval_ms"] <= 1100, s["keyframe_interval_ms"])
        self.assertFalse(s["keyframe_interval_warning"])
        first = s["bytes_in"]
        time.sleep(1.5)
        self.assertGreater(self.stream(self.h, "gst")["bytes_in"], first)
        self.assertIsNone(p.poll(), self.output_of(p))

    def test_second_publisher_with_the_same_key_takes_over(self):
        key = self.add_streamer(self.h, "takeover")
        first = self.publish_copy(self.h, key)
        s = self.wait_live(self.h, "takeover", need=lambda s: s["bytes_in"] > 0)
        first_remote = s["remote_addr"]
        second = self.publish_copy(self.h, key)
        s = self.wait_live(self.h, "takeover", need=lambda s: s["remote_addr"] != first_remote)
        self.assertGreaterEqual(s["reconnects"], 1)
        self.assert_exits(first, 10, "the replaced publisher")
        self.assertNotEqual(first.returncode, 0)
        before = self.stream(self.h, "takeover")["bytes_in"]
        time.sleep(1.5)
        s = self.stream(self.h, "takeover")
        self.assertEqual(s["state"], "live")
        self.assertGreater(s["bytes_in"], before)
        self.assertIsNone(second.poll(), self.output_of(second))
        self.assertIn("takes over", self.h.logs())

    def test_dropped_publisher_is_reconnecting_then_ends_after_grace(self):
        key = self.add_streamer(self.h, "dropper")
        p = self.publish_copy(self.h, key)
        self.wait_live(self.h, "dropper", need=lambda s: s["bytes_in"] > 0)
        p.kill()
        p.wait()
        dropped_at = time.monotonic()
        s = wait_for(lambda: (lambda s: s if s and s["state"] == "reconnecting" else None)(
            self.stream(self.h, "dropper")), 5, interval=0.1, what="reconnecting")
        self.assertIn("disconnected_at", s)
        wait_for(lambda: self.stream(self.h, "dropper") is None, 8, interval=0.1,
                 what="stream to end after the grace period")
        ended_after = time.monotonic() - dropped_at
        self.assertGreaterEqual(ended_after, 1.8, "the stream ended before its 2 s grace period")

    def test_publisher_back_within_grace_continues_the_stream(self):
        key = self.add_streamer(self.h, "comeback")
        p = self.publish_copy(self.h, key)
        s = self.wait_live(self.h, "comeback", need=lambda s: s["bytes_in"] > 0)
        live_since = s["live_since"]
        p.kill()
        p.wait()
        wait_for(lambda: (self.stream(self.h, "comeback") or {}).get("state") == "reconnecting",
                 5, interval=0.1, what="reconnecting")
        self.publish_copy(self.h, key)
        s = self.wait_live(self.h, "comeback", timeout=5)
        self.assertEqual(s["live_since"], live_since, "the stream restarted instead of continuing")
        self.assertEqual(s["reconnects"], 1)
        time.sleep(2.5)  # longer than the grace period: the stream must not be ended under it
        self.assertEqual(self.stream(self.h, "comeback")["state"], "live")

    def test_twenty_publishers_at_once_stay_live(self):
        n = 20
        keys = {f"many-{i:02d}": self.add_streamer(self.h, f"many-{i:02d}") for i in range(n)}
        for key in keys.values():
            self.publish_copy(self.h, key)

        def all_live():
            streams = self.streams(self.h)
            live = [c for c in keys if c in streams and streams[c]["state"] == "live" and
                    streams[c]["bytes_in"] > 0]
            return streams if len(live) == n else None
        first = wait_for(all_live, 30, interval=0.5, what=f"{n} publishers live")
        t0 = time.monotonic()
        time.sleep(10)
        last = self.streams(self.h)
        elapsed = time.monotonic() - t0
        expected = PRE_FLV_BYTES_PER_SECOND * elapsed
        for channel in keys:
            s = last.get(channel)
            self.assertIsNotNone(s, f"{channel} disappeared")
            self.assertEqual(s["state"], "live", channel)
            self.assertEqual(s["reconnects"], 0, channel)
            grown = s["bytes_in"] - first[channel]["bytes_in"]
            # -re paces each publisher at the file's rate; a starved publisher may lag a little.
            self.assertGreater(grown, 0.6 * expected, f"{channel}: {grown} of ~{expected:.0f} bytes")
            self.assertLess(grown, 1.5 * expected, f"{channel}: {grown} of ~{expected:.0f} bytes")
        for p in self.procs:
            self.assertIsNone(p.poll(), self.output_of(p))

    def test_garbage_on_the_rtmp_port_does_not_disturb_a_live_publisher(self):
        key = self.add_streamer(self.h, "steady")
        p = self.publish_copy(self.h, key)
        self.wait_live(self.h, "steady", need=lambda s: s["bytes_in"] > 0)
        port = self.h.rtmp_port
        before = self.stream(self.h, "steady")["bytes_in"]

        # Random bytes: the first byte is not version 3 (or its digest is wrong), so it ends.
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(b"\x07" + secrets.token_bytes(8191))
        _, _, closed = read_until_closed(s, 5)
        s.close()
        self.assertTrue(closed, "random bytes: connection not closed")

        # A truncated handshake followed by the client hanging up.
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(b"\x03" + secrets.token_bytes(700))
        s.close()

        # A valid handshake, then a chunk whose message is larger than any RTMP message allowed.
        s = rtmp_handshake(port)
        s.sendall(b"\x03" + b"\x00\x00\x00" + b"\xff\xff\xff" + b"\x14" + b"\x00\x00\x00\x00" +
                  secrets.token_bytes(128))
        _, _, closed = read_until_closed(s, 5)
        s.close()
        self.assertTrue(closed, "oversized message: connection not closed")

        # A valid handshake, then a continuation chunk on a chunk stream never opened.
        s = rtmp_handshake(port)
        s.sendall(b"\xc5" + secrets.token_bytes(200))
        _, _, closed = read_until_closed(s, 5)
        s.close()
        self.assertTrue(closed, "headerless chunk: connection not closed")

        # A valid handshake, then an AMF0 command that is garbage.
        s = rtmp_handshake(port)
        s.sendall(rtmp_message(3, 20, 0, b"\x02\xff\xff" + b"abc" + b"\x11\x42" * 20))
        _, _, closed = read_until_closed(s, 5)
        s.close()
        self.assertTrue(closed, "AMF garbage: connection not closed")

        time.sleep(1.0)
        s = self.stream(self.h, "steady")
        self.assertEqual(s["state"], "live")
        self.assertEqual(s["reconnects"], 0)
        self.assertGreater(s["bytes_in"], before)
        self.assertIsNone(p.poll(), self.output_of(p))
        self.assertIsNone(self.h.proc.poll(), "hawker died")
        status, body = self.h.get_json("/healthz")
        self.assertEqual(status, 200)
        # A second stream can still start.
        key2 = self.add_streamer(self.h, "after-garbage")
        self.publish_copy(self.h, key2)
        self.wait_live(self.h, "after-garbage", need=lambda s: s["bytes_in"] > 0)


class StreamKeyTest(IngestCase):
    """Refusals, revocation, rotation and brute force; one hawker per test so the slow-down one
    address earns in one test does not leak into the next."""

    def setUp(self):
        super().setUp()
        self.h = self.start_hawker()
        self.secret_keys = []

    def tearDown(self):
        super().tearDown()
        code = self.h.stop()
        logs = self.h.logs()
        self.h.close()
        for key in self.secret_keys + self.h.issued_keys:
            self.assertNotIn(key, logs, "a stream key reached the log")
        self.assertEqual(code, 0, logs[-4000:])

    def new_streamer(self, channel):
        key = self.add_streamer(self.h, channel)
        self.secret_keys.append(key)
        return key

    def test_wrong_key_is_refused_with_a_reason_in_the_log(self):
        self.new_streamer("honest")
        wrong = "hwk_" + secrets.token_urlsafe(24)
        self.secret_keys.append(wrong)
        t0 = time.monotonic()
        p = self.publish_copy(self.h, wrong)
        self.assert_exits(p, 5, "a publisher with a wrong key")
        self.assertNotEqual(p.returncode, 0)
        self.assertLess(time.monotonic() - t0, 5)
        self.assertIn("stream key not recognised", self.output_of(p))

        status, _, closed_after = publish_attempt(self.h.rtmp_port, wrong)
        self.assertEqual(status, "NetStream.Publish.BadName")
        self.assertIsNotNone(closed_after, "the refused connection was left open")
        self.assertLess(closed_after, 1.5)
        self.assertIn("refused: stream key unknown, revoked or rotated", self.h.logs())
        self.assertEqual(self.streams(self.h), {})

    def test_revoked_key_is_refused_and_its_live_publisher_cut(self):
        key = self.new_streamer("revoked")
        other_key = self.new_streamer("bystander")
        p = self.publish_copy(self.h, key)
        bystander = self.publish_copy(self.h, other_key)
        self.wait_live(self.h, "revoked", need=lambda s: s["bytes_in"] > 0)
        self.wait_live(self.h, "bystander", need=lambda s: s["bytes_in"] > 0)

        self.h.cli("streamer", "revoke", "revoked")
        revoked_at = time.monotonic()
        # Keys are checked again every 5 s.
        self.assert_exits(p, 8, "the publisher of a revoked key")
        self.assertLess(time.monotonic() - revoked_at, 7.5)
        self.assertIn("stopped: its stream key was revoked or rotated", self.h.logs())

        status, _, _ = publish_attempt(self.h.rtmp_port, key)
        self.assertEqual(status, "NetStream.Publish.BadName")
        self.assertIsNone(bystander.poll(), "a revocation cut another channel")
        self.assertEqual(self.stream(self.h, "bystander")["state"], "live")

    def test_rotated_key_stops_working_and_the_new_one_works(self):
        old = self.new_streamer("rotated")
        live_old = self.publish_copy(self.h, old)
        self.wait_live(self.h, "rotated", need=lambda s: s["bytes_in"] > 0)

        res = self.h.cli("streamer", "rotate", "rotated")
        new = json.loads(res.stdout)["stream_key"]
        self.secret_keys.append(new)
        self.assertNotEqual(new, old)
        self.assert_exits(live_old, 8, "the publisher of a rotated key")

        status, _, _ = publish_attempt(self.h.rtmp_port, old)
        self.assertEqual(status, "NetStream.Publish.BadName")
        p = self.publish_copy(self.h, new)
        s = self.wait_live(self.h, "rotated",
                           need=lambda s: s["remote_addr"] and s["bytes_in"] > 0 and
                           s["state"] == "live")
        self.assertIsNone(p.poll(), self.output_of(p))
        self.assertEqual(s["state"], "live")

    def test_repeated_wrong_keys_from_one_address_are_slowed_down(self):
        good = self.new_streamer("patient")
        timings = []
        for i in range(5):
            wrong = "hwk_" + secrets.token_urlsafe(24)
            self.secret_keys.append(wrong)
            status, seconds, _ = publish_attempt(self.h.rtmp_port, wrong)
            self.assertEqual(status, "NetStream.Publish.BadName", f"attempt {i + 1}")
            timings.append(seconds)
        self.assertLess(timings[0], 0.5, timings)
        # Three free failures, then 1 s, then 2 s.
        self.assertGreater(timings[3], 0.8, timings)
        self.assertGreater(timings[4], timings[0] + 1.5, timings)
        self.assertIn("slowed down", self.h.logs())
        # The streamer with the right key still gets in (after the same wait), and that clears
        # the slow-down for the address.
        status, _, _ = publish_attempt(self.h.rtmp_port, good)
        self.assertEqual(status, "NetStream.Publish.Start")
        wrong = "hwk_" + secrets.token_urlsafe(24)
        self.secret_keys.append(wrong)
        status, seconds, _ = publish_attempt(self.h.rtmp_port, wrong)
        self.assertEqual(status, "NetStream.Publish.BadName")
        self.assertLess(seconds, 0.5)


if __name__ == "__main__":
    main()
