"""Broadcasts against the real binary: a seller schedules a show, the streamer's email arrives at a
real SMTP server on loopback (aiosmtpd), the key taken from it publishes with ffmpeg, the show
turns live in GET /api/broadcasts and over SSE, and ends after the reconnect grace period. Also:
an SMTP server that is down at first still gets the mail later, key windows refuse a publish
outside them with a clear reason, and with no SMTP the mail is an .eml file."""
import email
import email.policy
import glob
import json
import os
import re
import shutil
import socket
import subprocess
import time
import unittest
from datetime import datetime, timedelta, timezone

from harness import free_port, Hawker, main, wait_for
from test_ingest import amf_number, amf_object, amf_string, AMF_NULL, rtmp_handshake, rtmp_message

try:
    from aiosmtpd.controller import Controller
except ImportError:  # pragma: no cover
    Controller = None

FFMPEG = shutil.which("ffmpeg")
KEY_RE = re.compile(r"hwk_[A-Za-z0-9_-]{32}")


def rfc3339(dt):
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class Mailbox:
    """An aiosmtpd handler that keeps every message it receives."""

    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 Message accepted"


def parse_mail(raw):
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    text = msg.get_body(preferencelist=("plain",)).get_content()
    html = msg.get_body(preferencelist=("html",)).get_content()
    return msg, text, html


def publish_status(port, key, timeout=10.0):
    """Publishes `key` with a minimal RTMP client; returns the NetStream.Publish status and its
    description."""
    s = rtmp_handshake(port)
    tc_url = f"rtmp://127.0.0.1:{port}/live"
    cmds = rtmp_message(3, 20, 0, amf_string("connect") + amf_number(1) + amf_object(
        {"app": "live", "type": "nonprivate", "flashVer": "FMLE/3.0", "tcUrl": tc_url}))
    cmds += rtmp_message(3, 20, 0, amf_string("createStream") + amf_number(2) + AMF_NULL)
    cmds += rtmp_message(4, 20, 1, amf_string("publish") + amf_number(3) + AMF_NULL +
                         amf_string(key) + amf_string("live"))
    s.sendall(cmds)
    s.settimeout(0.2)
    data = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            b = s.recv(65536)
        except socket.timeout:
            continue
        except ConnectionResetError:
            break
        if not b:
            break
        data += b
        if re.search(rb"NetStream\.Publish\.(BadName|Start).{0,400}?description", data, re.S) and \
                len(data) > 200:
            time.sleep(0.2)
            try:
                data += s.recv(65536)
            except (socket.timeout, ConnectionResetError):
                pass
            break
    s.close()
    m = re.search(rb"NetStream\.Publish\.(BadName|Start)", data)
    return (m.group(0).decode() if m else None), data.decode("latin-1")


class BroadcastCase(unittest.TestCase):
    def setUp(self):
        if FFMPEG is None:
            self.skipTest("ffmpeg is not installed")
        if Controller is None:
            self.skipTest("python3-aiosmtpd is not installed")
        self.hawkers = []
        self.procs = []
        self.smtp = []

    def tearDown(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        for c in self.smtp:
            c.stop()
        for h in self.hawkers:
            code = h.stop()
            logs = h.logs()
            h.close()
            self.assertEqual(code, 0, logs[-3000:])

    def start(self, *args):
        h = Hawker(*args)
        h.start()
        h.token = json.loads(h.cli("admin", "token").stdout)["token"]
        self.hawkers.append(h)
        return h

    def api(self, h, method, path, body=None):
        status, _, data = h.request(method, path, body,
                                    headers={"Authorization": "Bearer " + h.token})
        return status, json.loads(data) if data else None

    def product(self, h, stock=5):
        status, p = self.api(h, "POST", "/api/admin/products",
                             {"title": "Blue mug", "price_minor": 1500, "currency": "EUR",
                              "stock": stock})
        self.assertEqual(status, 201, p)
        return p["id"]

    def start_smtp(self, port, mailbox):
        c = Controller(mailbox, hostname="127.0.0.1", port=port)
        c.start()
        self.smtp.append(c)
        return c

    def publish(self, h, key):
        p = subprocess.Popen(
            [FFMPEG, "-hide_banner", "-loglevel", "error", "-nostdin", "-re",
             "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=30",
             "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100", "-t", "60",
             "-c:v", "libx264", "-preset", "ultrafast", "-g", "30", "-pix_fmt", "yuv420p",
             "-c:a", "aac", "-f", "flv", f"rtmp://127.0.0.1:{h.rtmp_port}/live/{key}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.procs.append(p)
        return p

    def public(self, h):
        status, body = h.get_json("/api/broadcasts")
        self.assertEqual(status, 200)
        return {b["id"]: b for b in body["broadcasts"]}

    def sse_open(self, h, path):
        s = socket.create_connection(("127.0.0.1", h.http_port), timeout=10)
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        return s

    def sse_until(self, s, buf, predicate, timeout=15):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            events = [(n, json.loads(d)) for n, d in
                      re.findall(r"event: (\w+)\ndata: (.*)\n", buf[0].decode(errors="replace"))]
            if predicate(events):
                return events
            s.settimeout(max(0.1, deadline - time.monotonic()))
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            buf[0] += chunk
        raise AssertionError(f"SSE: condition not met; got {buf[0][-2000:]!r}")

    def test_schedule_email_publish_live_and_end_with_smtp_down_at_first(self):
        smtp_port = free_port()
        h = self.start("--smtp-url", f"smtp://127.0.0.1:{smtp_port}",
                       "--smtp-from", "shop@example.com", "--smtp-retry-initial", "300ms",
                       "--smtp-retry-max", "1s", "--rtmp-reconnect-grace", "2s")
        pid = self.product(h)
        now = datetime.now(timezone.utc)
        status, b = self.api(h, "POST", "/api/admin/broadcasts", {
            "title": "Mugs\r\nBcc: victim@example.com", "starts_at": rfc3339(now),
            "ends_at": rfc3339(now + timedelta(hours=1)),
            "streamer_email": "ana.lopez@example.com", "product_ids": [pid]})
        self.assertEqual(status, 201, b)
        self.assertEqual(b["status"], "scheduled")
        self.assertEqual(b["channel"], "ana-lopez")
        self.assertTrue(b["streamer_created"])
        created_key = b["stream_key"]
        self.assertRegex(created_key, KEY_RE)
        self.assertNotIn(created_key, b["playback_url"])

        # The SMTP server is down: nothing is lost, the outbox retries.
        time.sleep(1.5)
        self.assertIn("attempt", h.logs())
        mailbox = Mailbox()
        self.start_smtp(smtp_port, mailbox)
        wait_for(lambda: mailbox.messages, timeout=15, what="the streamer's email")
        mail_from, rcpt, raw = mailbox.messages[0]
        self.assertEqual(mail_from, "shop@example.com")
        self.assertEqual(rcpt, ["ana.lopez@example.com"])
        msg, text, html = parse_mail(raw)
        for header in ("Date", "Message-ID", "From", "To", "Subject", "MIME-Version"):
            self.assertIn(header, msg)
        self.assertIsNone(msg["Bcc"])  # the CR/LF in the title did not make a header
        self.assertTrue(msg.is_multipart())
        self.assertEqual(msg.get_content_type(), "multipart/alternative")
        key = KEY_RE.search(text).group(0)
        self.assertEqual(key, created_key)
        self.assertIn(key, html)
        rtmp_url = f"rtmp://127.0.0.1:{h.rtmp_port}/live"
        self.assertIn(rtmp_url, text)
        self.assertIn("Keyframe Interval: 1 s", text)
        self.assertIn("CBR", text)

        # The key is nowhere else: public and admin listings.
        status, admin_list = self.api(h, "GET", "/api/admin/broadcasts")
        self.assertNotIn(key, json.dumps(admin_list))
        self.assertNotIn(key, json.dumps(self.public(h)))

        listing = self.public(h)[b["id"]]
        self.assertEqual(listing["status"], "scheduled")
        self.assertTrue(listing["playback_url"].endswith("/live/ana-lopez/index.m3u8"))
        self.assertTrue(listing["watch_url"].endswith("/watch/ana-lopez"))
        self.assertEqual(listing["products"][0]["stock"], 5)

        one = self.sse_open(h, f"/api/broadcasts/{b['id']}/events")
        everyone = self.sse_open(h, "/api/broadcasts/events")
        one_buf, all_buf = [b""], [b""]
        self.sse_until(one, one_buf, lambda ev: any(n == "broadcast" for n, _ in ev))
        self.sse_until(everyone, all_buf, lambda ev: b"hello" in all_buf[0])

        status, pinned = self.api(h, "POST", f"/api/admin/broadcasts/{b['id']}/pin",
                                  {"product_id": pid})
        self.assertEqual(status, 200, pinned)
        self.sse_until(one, one_buf, lambda ev: any(n == "pinned" for n, _ in ev))
        self.assertEqual(self.public(h)[b["id"]]["pinned_product"]["id"], pid)

        ff = self.publish(h, key)
        wait_for(lambda: self.public(h)[b["id"]]["status"] == "live", timeout=20,
                 what="the broadcast to go live")
        events = self.sse_until(one, one_buf, lambda ev: any(n == "live" for n, _ in ev))
        live = next(d for n, d in events if n == "live")
        self.assertEqual(live["channel"], "ana-lopez")
        self.sse_until(everyone, all_buf,
                       lambda ev: any(n == "live" and d["broadcast_id"] == b["id"] for n, d in ev))
        status, cancel = self.api(h, "POST", f"/api/admin/broadcasts/{b['id']}/cancel")
        self.assertEqual(status, 409, cancel)  # a live show ends, it is not cancelled

        ff.kill()
        ff.wait()
        self.sse_until(one, one_buf, lambda ev: any(n == "ended" for n, _ in ev), timeout=20)
        self.sse_until(everyone, all_buf, lambda ev: any(n == "ended" for n, _ in ev))
        self.assertNotIn(b["id"], self.public(h))
        status, got = self.api(h, "GET", f"/api/admin/broadcasts/{b['id']}")
        self.assertEqual(got["status"], "ended")
        one.close()
        everyone.close()
        self.assertNotIn(key, h.logs())

    def test_bad_bodies_are_refused_naming_the_field(self):
        h = self.start()
        later = datetime.now(timezone.utc) + timedelta(hours=3)
        status, problem = self.api(h, "POST", "/api/admin/broadcasts", {
            "starts_at": rfc3339(later), "ends_at": rfc3339(later + timedelta(hours=1)),
            "streamer_email": "nobody@example.com"})
        self.assertEqual(status, 422, problem)
        self.assertEqual(problem["errors"][0]["field"], "title")
        status, _, _ = h.request("POST", "/api/admin/broadcasts", "{not json",
                                 headers={"Authorization": "Bearer " + h.token,
                                          "Content-Type": "application/json"})
        self.assertEqual(status, 400)
        status, b = self.api(h, "POST", "/api/admin/broadcasts", {
            "title": "Show", "starts_at": rfc3339(later),
            "ends_at": rfc3339(later + timedelta(hours=1)), "streamer_email": "ok@example.com"})
        self.assertEqual(status, 201, b)
        status, problem = self.api(h, "PATCH", f"/api/admin/broadcasts/{b['id']}",
                                   {"starts_at": "tomorrow"})
        self.assertEqual(status, 422, problem)
        self.assertEqual(problem["errors"][0]["field"], "starts_at")

    def test_key_outside_its_window_is_refused_with_a_reason(self):
        h = self.start("--broadcasts-key-window", "true", "--broadcasts-early", "10m",
                       "--broadcasts-late", "10m")
        later = datetime.now(timezone.utc) + timedelta(hours=3)
        status, b = self.api(h, "POST", "/api/admin/broadcasts", {
            "title": "Evening show", "starts_at": rfc3339(later),
            "ends_at": rfc3339(later + timedelta(hours=1)),
            "streamer_email": "late@example.com"})
        self.assertEqual(status, 201, b)
        status, data = publish_status(h.rtmp_port, b["stream_key"])
        self.assertEqual(status, "NetStream.Publish.BadName", data)
        self.assertIn("too early", data)
        self.assertIn("too early", h.logs())
        self.assertEqual(self.public(h)[b["id"]]["status"], "scheduled")

        # Moved to now, the same key publishes and the show goes live.
        now = datetime.now(timezone.utc)
        status, _ = self.api(h, "PATCH", f"/api/admin/broadcasts/{b['id']}",
                             {"starts_at": rfc3339(now), "ends_at": rfc3339(now + timedelta(hours=1))})
        self.assertEqual(status, 200)
        status, data = publish_status(h.rtmp_port, b["stream_key"])
        self.assertEqual(status, "NetStream.Publish.Start", data)
        wait_for(lambda: self.public(h)[b["id"]]["status"] == "live", timeout=10,
                 what="the broadcast to go live")
        self.assertNotIn(b["stream_key"], h.logs())

    def test_without_smtp_each_email_is_an_eml_file_and_rotation_mails_the_new_key(self):
        h = self.start()
        now = datetime.now(timezone.utc)
        status, b = self.api(h, "POST", "/api/admin/broadcasts", {
            "title": "Morning show", "starts_at": rfc3339(now + timedelta(hours=1)),
            "ends_at": rfc3339(now + timedelta(hours=2)), "streamer_email": "eml@example.com"})
        self.assertEqual(status, 201, b)
        pattern = os.path.join(h.data_dir, "mail", "*.eml")
        files = wait_for(lambda: glob.glob(pattern), timeout=10, what="an .eml file")
        with open(files[0], "rb") as f:
            _, text, _ = parse_mail(f.read())
        self.assertIn(b["stream_key"], text)
        self.assertIn("Morning show", text)
        self.assertEqual(os.stat(files[0]).st_mode & 0o077, 0)
        self.assertIn(files[0], h.logs())

        # A second broadcast for the same streamer: no key in the answer, the email names it.
        status, b2 = self.api(h, "POST", "/api/admin/broadcasts", {
            "title": "Second show", "starts_at": rfc3339(now + timedelta(hours=3)),
            "ends_at": rfc3339(now + timedelta(hours=4)), "streamer_email": "eml@example.com"})
        self.assertEqual(status, 201, b2)
        self.assertNotIn("stream_key", b2)
        wait_for(lambda: len(glob.glob(pattern)) == 2, timeout=10, what="a second .eml file")

        # Rotation by the CLI queues and sends the new key at once.
        out = json.loads(h.cli("streamer", "rotate", b["channel"]).stdout)
        self.assertTrue(out["email_sent"])
        files = wait_for(lambda: len(glob.glob(pattern)) == 3 and glob.glob(pattern),
                         timeout=10, what="the rotation email")
        newest = max(files, key=os.path.getmtime)
        with open(newest, "rb") as f:
            msg, text, _ = parse_mail(f.read())
        self.assertIn(out["stream_key"], text)
        self.assertIn("new stream key", msg["Subject"])
        # The old key no longer publishes.
        status, _ = publish_status(h.rtmp_port, b["stream_key"])
        self.assertEqual(status, "NetStream.Publish.BadName")

        # The next show within the lookahead goes live early when its key publishes.
        status, data = publish_status(h.rtmp_port, out["stream_key"])
        self.assertEqual(status, "NetStream.Publish.Start", data)
        wait_for(lambda: self.public(h)[b["id"]]["status"] == "live", timeout=10,
                 what="the next show to go live")
        self.assertEqual(self.public(h)[b2["id"]]["status"], "scheduled")


if __name__ == "__main__":
    main()
