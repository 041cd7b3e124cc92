"""Webhooks and viewer events against the real binary: signed Standard Webhooks deliveries to a
receiver on loopback (down at first, then up), 410 disabling an endpoint, replay, the SSRF guard,
and the SSE stream a product page listens to, resumed with Last-Event-ID."""
import base64
import hashlib
import hmac
import json
import re
import socket
import threading
import time
import unittest
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from harness import free_port, Hawker, wait_for

FAST_SCHEDULE = "0,300ms,300ms,300ms,300ms,300ms,300ms,300ms,300ms,300ms"


class Receiver:
    """A webhook receiver on loopback: /hook answers 204, /gone answers 410."""

    def __init__(self, port):
        self.received = []
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with outer.lock:
                    outer.received.append((self.path, dict(self.headers.items()), body))
                self.send_response(410 if self.path == "/gone" else 204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def on(self, path):
        with self.lock:
            return [r for r in self.received if r[0] == path]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def verify(secret, headers, body):
    """The receiver side of Standard Webhooks, as docs/webhooks.md tells sellers to write it."""
    h = {k.lower(): v for k, v in headers.items()}
    msg_id, ts, sigs = h["webhook-id"], h["webhook-timestamp"], h["webhook-signature"]
    assert abs(time.time() - int(ts)) < 300, "timestamp outside tolerance"
    key = base64.b64decode(secret[len("whsec_"):])
    expected = base64.b64encode(
        hmac.new(key, f"{msg_id}.{ts}.".encode() + body, hashlib.sha256).digest()).decode()
    return any(hmac.compare_digest(s.split(",", 1)[1], expected)
               for s in sigs.split(" ") if s.startswith("v1,"))


class WebhooksTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.hawker = Hawker("--webhooks-allow-private", "true",
                            "--webhooks-retry-schedule", FAST_SCHEDULE,
                            "--webhooks-poll-interval", "200ms",
                            "--sse-coalesce-interval", "100ms")
        cls.hawker.cli("admin", "init", "--password", "correct horse battery staple")
        out = cls.hawker.cli("admin", "token").stdout
        cls.token = json.loads(out)["token"]
        cls.hawker.start()

    @classmethod
    def tearDownClass(cls):
        code = cls.hawker.stop()
        logs = cls.hawker.logs()
        cls.hawker.close()
        if code != 0:
            raise AssertionError(f"hawker exited with {code}:\n{logs[-4000:]}")

    def admin(self, method, path, body=None):
        status, _, data = self.hawker.request(method, path, body=body,
                                              headers={"Authorization": f"Bearer {self.token}"})
        return status, json.loads(data) if data else None

    def product(self, stock):
        status, p = self.admin("POST", "/api/admin/products",
                               {"title": "Mug", "price_minor": 1500, "currency": "EUR",
                                "stock": stock, "low_stock_threshold": 2})
        self.assertEqual(status, 201, p)
        return p["id"]

    def order(self, product_id, quantity=1):
        status, _, data = self.hawker.request(
            "POST", "/api/orders",
            body={"product_id": product_id, "quantity": quantity, "email": "b@example.com",
                  "name": "Buyer", "shipping_address": "1 Main St"},
            headers={"Idempotency-Key": str(uuid.uuid4())})
        self.assertEqual(status, 201, data)
        return json.loads(data)

    def deliveries(self, endpoint_id):
        status, d = self.admin("GET", f"/api/admin/webhooks/{endpoint_id}/deliveries")
        self.assertEqual(status, 200, d)
        return d["deliveries"]

    def test_admin_endpoints_refuse_anonymous_callers(self):
        status, _, _ = self.hawker.request("GET", "/api/admin/webhooks")
        self.assertEqual(status, 401)
        status, _, _ = self.hawker.request("POST", "/api/admin/webhooks",
                                           body={"url": "http://127.0.0.1:9/x"})
        self.assertEqual(status, 401)

    def test_bad_endpoints_are_refused(self):
        status, p = self.admin("POST", "/api/admin/webhooks", {"url": "ftp://example.com/x"})
        self.assertEqual(status, 422, p)
        self.assertIn("url", p["detail"])
        status, p = self.admin("POST", "/api/admin/webhooks",
                               {"url": "http://127.0.0.1:9/x", "events": ["order.bogus"]})
        self.assertEqual(status, 422, p)
        self.assertIn("events", p["detail"])

    def test_signed_events_arrive_after_the_receiver_was_down_and_can_be_replayed(self):
        port = free_port()
        status, ep = self.admin("POST", "/api/admin/webhooks",
                                {"url": f"http://127.0.0.1:{port}/hook",
                                 "events": ["order.*"], "description": "shop backend"})
        self.assertEqual(status, 201, ep)
        secret = ep["secret"]
        self.assertTrue(secret.startswith("whsec_"))
        self.assertGreaterEqual(len(base64.b64decode(secret[6:])), 24)
        status, listed = self.admin("GET", "/api/admin/webhooks")
        self.assertEqual(status, 200)
        self.assertNotIn(secret, json.dumps(listed))
        self.assertNotIn("secret", next(w for w in listed["webhooks"] if w["id"] == ep["id"]))

        pid = self.product(5)
        order = self.order(pid)

        # Nobody listens yet: attempts fail with connection refused and stay pending.
        def refused():
            d = self.deliveries(ep["id"])
            return d and d[0]["attempts"] >= 2 and d[0]["status"] == "pending" and d
        d = wait_for(refused, timeout=15, what="failed attempts")
        self.assertEqual(d[0]["event_type"], "order.created")
        self.assertIsNone(d[0]["attempt_log"][0]["status_code"])
        self.assertTrue(d[0]["attempt_log"][0]["error"])

        receiver = Receiver(port)
        try:
            got = wait_for(lambda: receiver.on("/hook"), timeout=15, what="delivery after retry")
            path, headers, body = got[0]
            self.assertTrue(verify(secret, headers, body), "signature does not verify")
            self.assertFalse(verify("whsec_" + base64.b64encode(b"x" * 32).decode(), headers, body))
            event = json.loads(body)
            self.assertEqual(event["type"], "order.created")
            self.assertEqual(headers["webhook-id"], event["id"])
            self.assertEqual(event["data"]["order_id"], order["id"])
            # The filter holds: stock.* events for this order were not sent here.
            self.assertTrue(all(json.loads(b)["type"].startswith("order.")
                                for _, _, b in receiver.on("/hook")))

            done = wait_for(lambda: [x for x in self.deliveries(ep["id"])
                                     if x["status"] == "succeeded"], what="succeeded delivery")
            self.assertEqual(done[0]["attempt_log"][-1]["status_code"], 204)
            self.assertGreaterEqual(len(done[0]["attempt_log"]), 3)

            # Replay sends the same event (same webhook-id) again, freshly signed.
            status, replayed = self.admin(
                "POST", f"/api/admin/webhooks/deliveries/{done[0]['id']}/replay")
            self.assertEqual(status, 202, replayed)
            wait_for(lambda: len(receiver.on("/hook")) >= 2, what="replayed delivery")
            _, h2, b2 = receiver.on("/hook")[1]
            self.assertEqual(h2["webhook-id"], headers["webhook-id"])
            self.assertTrue(verify(secret, h2, b2))
            status, _ = self.admin("POST", "/api/admin/webhooks/deliveries/whd_nope/replay")
            self.assertEqual(status, 404)
        finally:
            receiver.close()

        status, _ = self.admin("DELETE", f"/api/admin/webhooks/{ep['id']}")
        self.assertEqual(status, 204)
        status, _ = self.admin("GET", f"/api/admin/webhooks/{ep['id']}")
        self.assertEqual(status, 404)

    def test_410_disables_the_endpoint(self):
        port = free_port()
        receiver = Receiver(port)
        try:
            status, ep = self.admin("POST", "/api/admin/webhooks",
                                    {"url": f"http://127.0.0.1:{port}/gone", "events": ["*"]})
            self.assertEqual(status, 201)
            self.order(self.product(3))

            def disabled():
                s, w = self.admin("GET", f"/api/admin/webhooks/{ep['id']}")
                return not w["enabled"] and w
            w = wait_for(disabled, timeout=15, what="endpoint disabled after 410")
            self.assertIn("410", w["disabled_reason"])
            # Deliveries already on the wire when the 410 came back may still
            # land (the dispatcher sends several at once); once the endpoint
            # is disabled, nothing more is sent there.
            time.sleep(0.5)
            seen = len(receiver.on("/gone"))
            self.assertGreaterEqual(seen, 1)
            time.sleep(1.5)
            self.assertEqual(len(receiver.on("/gone")), seen)
            _, _, metrics = self.hawker.request("GET", "/metrics")
            m = re.search(rb"^hawker_webhook_endpoints_disabled (\S+)$", metrics, re.M)
            self.assertIsNotNone(m)
            self.assertGreaterEqual(float(m.group(1)), 1)
            self.assertIn(b'hawker_webhook_deliveries_total{outcome="gone"}', metrics)
            status, w = self.admin("POST", f"/api/admin/webhooks/{ep['id']}/enable")
            self.assertEqual(status, 200)
            self.assertTrue(w["enabled"])
        finally:
            receiver.close()
            self.admin("DELETE", f"/api/admin/webhooks/{ep['id']}")

    def sse_open(self, product_id, last_id=None):
        s = socket.create_connection(("127.0.0.1", self.hawker.http_port), timeout=10)
        extra = f"Last-Event-ID: {last_id}\r\n" if last_id is not None else ""
        s.sendall(f"GET /api/products/{product_id}/events HTTP/1.1\r\nHost: x\r\n{extra}\r\n"
                  .encode())
        return s

    def sse_until(self, s, buf, predicate, timeout=10):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            events = [(int(i), n, json.loads(d)) for i, n, d in
                      re.findall(r"id: (\d+)\nevent: (\w+)\ndata: (.*)\n", buf[0].decode())]
            if predicate(events):
                return events
            s.settimeout(max(0.1, deadline - time.monotonic()))
            chunk = s.recv(65536)
            if not chunk:
                break
            buf[0] += chunk
        raise AssertionError(f"SSE: condition not met; got {buf[0][-2000:]!r}")

    def test_viewers_see_stock_and_purchases_and_resume_with_last_event_id(self):
        pid = self.product(4)
        s = self.sse_open(pid)
        buf = [b""]
        events = self.sse_until(s, buf, lambda ev: any(n == "stock" for _, n, _ in ev))
        self.assertIn(b"text/event-stream", buf[0])
        self.assertEqual([d["stock"] for _, n, d in events if n == "stock"], [4])

        self.order(pid, 2)
        events = self.sse_until(s, buf, lambda ev: any(n == "low_stock" for _, n, _ in ev))
        names = [n for _, n, _ in events]
        self.assertIn("purchase", names)
        purchase = next(d for _, n, d in events if n == "purchase")
        self.assertEqual(purchase["quantity"], 2)
        self.assertEqual(set(purchase), {"product_id", "quantity", "orders"})
        self.assertEqual([d["stock"] for _, n, d in events if n == "stock"][-1], 2)
        ids = [i for i, _, _ in events]
        self.assertEqual(ids, sorted(ids))
        last_id = ids[-1]
        s.close()

        # Missed while away: the sale of the last two units.
        self.order(pid, 2)
        s = self.sse_open(pid, last_id)
        buf = [b""]
        events = self.sse_until(s, buf, lambda ev: any(n == "sold_out" for _, n, _ in ev))
        s.close()
        self.assertTrue(all(i > last_id for i, _, _ in events), events)
        self.assertIn("purchase", [n for _, n, _ in events])
        self.assertEqual([d["stock"] for _, n, d in events if n == "stock"][-1], 0)

        status, _, _ = self.hawker.request("GET", "/api/products/prod_missing/events")
        self.assertEqual(status, 404)


class PrivateAddressesTest(unittest.TestCase):
    def test_private_receivers_are_refused_unless_allowed(self):
        h = Hawker()
        try:
            h.cli("admin", "init", "--password", "correct horse battery staple")
            token = json.loads(h.cli("admin", "token").stdout)["token"]
            h.start()
            for url in ("http://127.0.0.1:8080/x", "http://[::1]/x", "http://10.0.0.8/x",
                        "http://169.254.169.254/latest", "http://localhost/x"):
                status, _, data = h.request("POST", "/api/admin/webhooks", body={"url": url},
                                            headers={"Authorization": f"Bearer {token}"})
                self.assertEqual(status, 422, (url, data))
        finally:
            h.stop()
            h.close()


if __name__ == "__main__":
    unittest.main(verbosity=2)
