"""The shop against the real binary: seller auth, catalogue, the order race, idempotency, the
payment window, payments (test and hosted providers) and a kill -9 in the middle of a storm."""
import base64
import hashlib
import hmac
import http.client
import json
import os
import re
import subprocess
import tempfile
import threading
import time
import unittest
import uuid

from harness import Hawker, main, wait_for

FLASH = os.environ.get("HAWKER_BENCH_FLASH", "build/bench/orders/hawker_bench_flash")

PASSWORD = "correct horse battery staple"


def setup_admin(h):
    h.cli("admin", "init", "--password", PASSWORD)
    admin = json.loads(h.cli("admin", "token").stdout)["token"]
    support = json.loads(h.cli("admin", "token", "--role", "support").stdout)["token"]
    return admin, support


class Client:
    """One keep-alive connection, as a browser or a load generator would hold."""

    def __init__(self, port, timeout=30.0):
        self.c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)

    def call(self, method, path, body=None, headers=None):
        headers = dict(headers or {})
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
            headers.setdefault("Content-Type", "application/json")
        self.c.request(method, path, body=body, headers=headers)
        r = self.c.getresponse()
        data = r.read()
        hdrs = {k.lower(): v for k, v in r.getheaders()}
        return r.status, hdrs, (json.loads(data) if data and "json" in hdrs.get("content-type", "") else data)

    def close(self):
        self.c.close()


def order_body(product_id, quantity=1, email="buyer@example.com"):
    return {"product_id": product_id, "quantity": quantity, "email": email, "name": "Buyer",
            "shipping_address": {"line1": "1 Main St", "city": "Lyon", "country": "FR"}}


class ShopCase(unittest.TestCase):
    args = ()

    @classmethod
    def setUpClass(cls):
        cls.h = Hawker(*cls.args)
        cls.h.start()
        cls.admin, cls.support = setup_admin(cls.h)

    @classmethod
    def tearDownClass(cls):
        code = cls.h.stop()
        logs = cls.h.logs()
        cls.h.close()
        if code != 0:
            raise AssertionError(f"hawker exited with {code}:\n{logs[-4000:]}")

    def api(self, method, path, body=None, token=None, headers=None):
        c = Client(self.h.http_port)
        hdrs = dict(headers or {})
        if token:
            hdrs["Authorization"] = "Bearer " + token
        try:
            return c.call(method, path, body, hdrs)
        finally:
            c.close()

    def product(self, stock, **fields):
        body = {"title": "Mug", "price_minor": 1500, "currency": "EUR", "stock": stock, **fields}
        status, _, p = self.api("POST", "/api/admin/products", body, token=self.admin)
        self.assertEqual(status, 201, p)
        return p

    def ledger(self, pid):
        status, _, l = self.api("GET", f"/api/admin/products/{pid}/stock", token=self.admin)
        self.assertEqual(status, 200, l)
        return l

    def assert_invariant(self, pid, stocked):
        l = self.ledger(pid)
        self.assertEqual(l["stock"], l["movements_sum"], l)
        self.assertEqual(l["stock"] + l["reserved"] + l["sold"], stocked, l)
        self.assertEqual(l["stocked"], stocked, l)
        return l

    def order(self, pid, key=None, quantity=1, client=None):
        c = client or Client(self.h.http_port)
        try:
            return c.call("POST", "/api/orders", order_body(pid, quantity),
                          {"Idempotency-Key": key or str(uuid.uuid4())})
        finally:
            if client is None:
                c.close()


class AdminAndCatalogueTest(ShopCase):
    def test_admin_endpoints_refuse_anonymous_and_wrong_role(self):
        for method, path in [("GET", "/api/admin/products"), ("POST", "/api/admin/products"),
                             ("GET", "/api/admin/orders"), ("GET", "/api/streams")]:
            status, hdrs, body = self.api(method, path, {} if method == "POST" else None)
            self.assertEqual(status, 401, (path, body))
            self.assertEqual(hdrs["content-type"], "application/problem+json")
        status, _, _ = self.api("GET", "/api/admin/products", token="hwt_not-a-token")
        self.assertEqual(status, 401)
        status, _, body = self.api("POST", "/api/admin/products",
                                   {"title": "x", "price_minor": 1, "currency": "EUR"},
                                   token=self.support)
        self.assertEqual(status, 403, body)
        status, _, _ = self.api("GET", "/api/admin/products", token=self.support)
        self.assertEqual(status, 200)
        status, _, _ = self.api("GET", "/api/streams", token=self.admin)
        self.assertEqual(status, 200)

    def test_login_session_cookie_and_csrf(self):
        status, _, _ = self.api("POST", "/api/admin/login", {"password": "wrong password!!"})
        self.assertEqual(status, 401)
        c = Client(self.h.http_port)
        status, hdrs, body = c.call("POST", "/api/admin/login", {"password": PASSWORD})
        self.assertEqual(status, 200, body)
        cookie = hdrs["set-cookie"]
        self.assertIn("HttpOnly", cookie)
        self.assertIn("SameSite=Strict", cookie)
        session = cookie.split(";")[0]
        csrf = body["csrf_token"]
        status, _, _ = c.call("GET", "/api/admin/products", headers={"Cookie": session})
        self.assertEqual(status, 200)
        product = {"title": "Cap", "price_minor": 900, "currency": "EUR", "stock": 1}
        status, _, _ = c.call("POST", "/api/admin/products", product, {"Cookie": session})
        self.assertEqual(status, 403)
        status, _, _ = c.call("POST", "/api/admin/products", product,
                              {"Cookie": session, "X-CSRF-Token": csrf})
        self.assertEqual(status, 201)
        status, _, _ = c.call("POST", "/api/admin/logout", headers={"Cookie": session,
                                                                     "X-CSRF-Token": csrf})
        self.assertEqual(status, 204)
        status, _, _ = c.call("GET", "/api/admin/products", headers={"Cookie": session})
        self.assertEqual(status, 401)
        c.close()

    def test_login_attempts_are_rate_limited(self):
        # Its own server: the limit is per address, and every test here comes from 127.0.0.1.
        h = Hawker()
        h.start()
        try:
            h.cli("admin", "init", "--password", PASSWORD)
            statuses = []
            for _ in range(7):
                status, _, _ = h.request("POST", "/api/admin/login", {"password": "nope nope nope"})
                statuses.append(status)
            self.assertEqual(statuses[:5], [401] * 5)
            self.assertEqual(statuses[5:], [429, 429])
            status, hdrs, _ = h.request("POST", "/api/admin/login", {"password": PASSWORD})
            self.assertEqual(status, 429)
            self.assertIn("retry-after", hdrs)
        finally:
            h.stop()
            h.close()

    def test_product_crud_and_public_read(self):
        p = self.product(5, description="Blue")
        pid = p["id"]
        self.assertTrue(pid.startswith("prod_"))
        self.assertEqual(p["low_stock_threshold"], 10)
        status, _, body = self.api("POST", "/api/admin/products",
                                   {"title": "x", "price_minor": 1, "currency": "euro"},
                                   token=self.admin)
        self.assertEqual(status, 422)
        self.assertIn("currency", body["detail"])
        status, _, body = self.api("PATCH", f"/api/admin/products/{pid}",
                                   {"stock": 8, "stock_reason": "found a box", "price_minor": 1700},
                                   token=self.admin)
        self.assertEqual(status, 200, body)
        self.assertEqual(body["stock"], 8)
        status, hdrs, pub = self.api("GET", f"/api/products/{pid}")
        self.assertEqual(status, 200)
        self.assertEqual(pub["stock"], 8)
        self.assertEqual(pub["price_minor"], 1700)
        self.assertEqual(hdrs["cache-control"], "no-store")
        self.assert_invariant(pid, 8)
        status, _, listing = self.api("GET", "/api/admin/products", token=self.admin)
        self.assertIn(pid, [x["id"] for x in listing["products"]])
        status, _, _ = self.api("DELETE", f"/api/admin/products/{pid}", token=self.admin)
        self.assertEqual(status, 204)
        status, _, _ = self.api("GET", f"/api/products/{pid}")
        self.assertEqual(status, 404)
        status, _, body = self.order(pid)
        self.assertEqual(status, 404, body)

    def test_images_are_type_checked_and_cached(self):
        pid = self.product(1)["id"]
        png = b"\x89PNG\r\n\x1a\n" + b"\0" * 64
        status, _, body = self.api("POST", f"/api/admin/products/{pid}/images", png,
                                   token=self.admin, headers={"Content-Type": "image/png"})
        self.assertEqual(status, 201, body)
        status, _, _ = self.api("POST", f"/api/admin/products/{pid}/images", b"<svg/>",
                                token=self.admin, headers={"Content-Type": "image/png"})
        self.assertEqual(status, 415)
        status, hdrs, data = self.api("GET", body["url"])
        self.assertEqual(status, 200)
        self.assertEqual(data, png)
        self.assertEqual(hdrs["content-type"], "image/png")
        self.assertIn("immutable", hdrs["cache-control"])
        _, _, pub = self.api("GET", f"/api/products/{pid}")
        self.assertEqual(pub["images"], [body["url"]])


class OrdersTest(ShopCase):
    def test_500_clients_race_for_100_units(self):
        pid = self.product(100)["id"]
        results = []
        lock = threading.Lock()
        start = threading.Barrier(500)

        def buyer():
            c = Client(self.h.http_port, timeout=60)
            start.wait()
            try:
                status, _, body = self.order(pid, client=c)
            except Exception as e:  # noqa: BLE001 - recorded and asserted below
                status, body = -1, repr(e)
            c.close()
            with lock:
                results.append((status, body))

        threads = [threading.Thread(target=buyer) for _ in range(500)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        statuses = [s for s, _ in results]
        self.assertEqual(set(statuses) - {201, 409}, set(), [r for r in results if r[0] not in (201, 409)][:3])
        self.assertEqual(statuses.count(201), 100)
        self.assertEqual(len({b["id"] for s, b in results if s == 201}), 100)
        slugs = {b["type"] for s, b in results if s == 409}
        self.assertEqual(slugs, {"/problems/sold-out"})
        l = self.assert_invariant(pid, 100)
        self.assertEqual(l["stock"], 0)
        self.assertEqual(l["reserved"], 100)
        _, _, pub = self.api("GET", f"/api/products/{pid}")
        self.assertTrue(pub["sold_out"])
        # Orders that queued together were reserved together (docs/commerce.md), and none of
        # those runs had to fall back to one order at a time.
        _, _, text = self.api("GET", "/metrics")
        metric = lambda name: float(re.search(rf"^{name} (\S+)$", text.decode(), re.M).group(1))
        self.assertGreater(metric("hawker_storage_group_runs_total"), 0)
        self.assertGreater(metric("hawker_storage_group_jobs_total"),
                           2 * metric("hawker_storage_group_runs_total") - 1)
        self.assertEqual(metric("hawker_storage_group_fallbacks_total"), 0)
        # Every batch was timed: the writer records a batch just after its commit is counted,
        # so at most the one it is finishing can be missing from the histogram.
        self.assertGreaterEqual(metric("hawker_storage_batch_seconds_count"),
                                metric("hawker_storage_commits_total") - 1)
        self.assertGreater(metric("hawker_storage_batch_seconds_sum"), 0)
        self.assertIn('hawker_storage_batch_seconds_bucket{le="+Inf"}', text.decode())
        # The writer finishes a checkpoint only after a checkpointer round (docs/storage.md).
        self.assertGreaterEqual(metric("hawker_storage_background_checkpoint_seconds_count"),
                                metric("hawker_storage_checkpoints_total"))

    def test_idempotency_keys(self):
        pid = self.product(10)["id"]
        status, _, body = self.api("POST", "/api/orders", order_body(pid))
        self.assertEqual(status, 400)
        self.assertIn("Idempotency-Key", body["title"])
        key = str(uuid.uuid4())
        s1, _, first = self.order(pid, key=key, quantity=2)
        s2, h2, again = self.order(pid, key=key, quantity=2)
        self.assertEqual((s1, s2), (201, 201))
        self.assertEqual(first, again)
        self.assertEqual(h2.get("idempotent-replayed"), "true")
        s3, _, other = self.order(pid, key=key, quantity=3)
        self.assertEqual(s3, 422)
        self.assertEqual(other["type"], "/problems/idempotency-key-reused")
        self.assertEqual(self.ledger(pid)["reserved"], 2)
        status, _, bad = self.api("POST", "/api/orders", {**order_body(pid), "quantity": 0},
                                  headers={"Idempotency-Key": "q0"})
        self.assertEqual(status, 422)
        self.assertIn("quantity", bad["detail"])
        status, _, bad = self.api("POST", "/api/orders", "{not json",
                                  headers={"Idempotency-Key": "q1",
                                           "Content-Type": "application/json"})
        self.assertEqual(status, 400)

    def test_buyer_view_pay_ship_refund(self):
        pid = self.product(3)["id"]
        _, _, o = self.order(pid)
        token = o["token"]
        self.assertTrue(o["payment_url"].endswith(f"/api/orders/{token}/pay"))
        status, _, view = self.api("GET", f"/api/orders/{token}")
        self.assertEqual((status, view["status"]), (200, "reserved"))
        status, _, _ = self.api("GET", "/api/orders/otk_guess")
        self.assertEqual(status, 404)
        status, _, paid = self.api("POST", f"/api/orders/{token}/pay")
        self.assertEqual((status, paid["status"]), (200, "paid"), paid)
        status, _, again = self.api("POST", f"/api/orders/{token}/pay")
        self.assertEqual((status, again["status"]), (200, "paid"))
        status, _, _ = self.api("POST", f"/api/orders/{token}/cancel")
        self.assertEqual(status, 409)
        oid = o["id"]
        status, _, listed = self.api("GET", f"/api/admin/orders?status=paid&product_id={pid}",
                                     token=self.support)
        self.assertEqual([x["id"] for x in listed["orders"]], [oid])
        self.assertNotIn("token", listed["orders"][0])
        status, _, _ = self.api("POST", f"/api/admin/orders/{oid}/ship", token=self.support)
        self.assertEqual(status, 403)
        status, _, shipped = self.api("POST", f"/api/admin/orders/{oid}/ship", token=self.admin)
        self.assertEqual(shipped["status"], "shipped")
        status, _, refunded = self.api("POST", f"/api/admin/orders/{oid}/refund",
                                       {"restock": True}, token=self.admin)
        self.assertEqual((status, refunded["status"]), (200, "refunded"))
        self.assertEqual(self.ledger(pid)["stock"], 3)
        # Buyer cancel while reserved returns the stock.
        _, _, o2 = self.order(pid, quantity=2)
        self.assertEqual(self.ledger(pid)["stock"], 1)
        status, _, c = self.api("POST", f"/api/orders/{o2['token']}/cancel")
        self.assertEqual((status, c["status"]), (200, "cancelled"))
        self.assert_invariant(pid, 3)
        self.assertEqual(self.ledger(pid)["stock"], 3)

    def test_metrics_report_orders(self):
        pid = self.product(1)["id"]
        self.order(pid)
        self.order(pid)
        _, _, text = self.api("GET", "/metrics")
        text = text.decode()
        self.assertIn('hawker_orders_total{outcome="reserved"}', text)
        self.assertIn('hawker_orders_total{outcome="sold_out"}', text)
        self.assertIn("hawker_order_reservation_seconds_bucket", text)


class FlashClientTest(ShopCase):
    """bench/orders' client, whose figures docs/benchmarks.md quotes, in both its loops."""

    def flash(self, pid, *args):
        with tempfile.TemporaryDirectory() as tmp:
            dump = os.path.join(tmp, "dump")
            out = subprocess.run([FLASH, "--port", str(self.h.http_port), "--product", pid,
                                  "--prefix", uuid.uuid4().hex, "--dump", dump, *args],
                                 capture_output=True, text=True, timeout=60)
            self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
            result = json.loads(re.search(r"^RESULT (\{.*\})$", out.stdout, re.M).group(1))
            with open(dump) as f:
                answers = [tuple(int(v) for v in line.split()) for line in f]
        self.assertEqual(len(answers), result["answered"])
        return result, answers

    def test_closed_loop_sells_the_stock_and_no_more(self):
        pid = self.product(100)["id"]
        result, answers = self.flash(pid, "--attempts", "150", "--connections", "30")
        self.assertEqual((result["answered"], result["created"], result["refused"],
                          result["other"], result["socket_errors"]), (150, 100, 50, 0, 0))
        self.assertEqual(sorted({status for _, _, status in answers}), [201, 409])
        self.assert_invariant(pid, 100)

    def test_open_loop_keeps_its_schedule_and_times_from_it(self):
        pid = self.product(100)["id"]
        result, answers = self.flash(pid, "--attempts", "100", "--connections", "20",
                                     "--rate", "1000")
        self.assertEqual((result["created"], result["socket_errors"]), (100, 0))
        # Attempt k is due k ms after the first, and each latency counts from its due time,
        # whenever it went out; the run cannot end before the last one is due.
        self.assertEqual(sorted(start for start, _, _ in answers), [k * 1000 for k in range(100)])
        self.assertGreaterEqual(result["duration_us"], 99 * 1000)
        self.assertEqual(result["max_us"], max(latency for _, latency, _ in answers))
        self.assert_invariant(pid, 100)


class ExpiryTest(ShopCase):
    args = ("--orders-payment-window", "2s")

    def test_expiry_returns_stock_and_survives_restart(self):
        pid = self.product(5)["id"]
        _, _, o = self.order(pid, quantity=3)
        self.assertEqual(self.ledger(pid)["stock"], 2)
        wait_for(lambda: self.ledger(pid)["stock"] == 5, timeout=6, what="stock back")
        status, _, view = self.api("GET", f"/api/orders/{o['token']}")
        self.assertEqual(view["status"], "expired")
        status, _, _ = self.api("POST", f"/api/orders/{o['token']}/cancel")
        self.assertEqual(status, 409)
        self.assert_invariant(pid, 5)
        # A late test payment re-reserves while stock remains.
        status, _, late = self.api("POST", f"/api/orders/{o['token']}/pay")
        self.assertEqual((status, late["status"]), (200, "paid"))
        self.assertEqual(self.ledger(pid)["stock"], 2)
        # Reservations that run out while hawker is down expire at start.
        _, _, o2 = self.order(pid, quantity=2)
        self.h.stop()
        time.sleep(2.2)
        self.h.start()
        wait_for(lambda: self.ledger(pid)["stock"] == 2, timeout=5, what="expiry at start")
        l = self.assert_invariant(pid, 5)
        self.assertEqual((l["reserved"], l["sold"]), (0, 3))


SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()


class HostedPaymentsTest(ShopCase):
    args = ("--payments-provider", "hosted",
            "--payments-hosted-checkout-url", "https://pay.example/checkout",
            "--payments-hosted-secret", SECRET)

    def send(self, payload, secret=SECRET, ts=None, msg_id=None):
        body = json.dumps(payload)
        msg_id = msg_id or "msg_" + uuid.uuid4().hex
        ts = str(int(time.time()) if ts is None else ts)
        key = base64.b64decode(secret[len("whsec_"):])
        sig = base64.b64encode(hmac.new(key, f"{msg_id}.{ts}.{body}".encode(),
                                        hashlib.sha256).digest()).decode()
        return self.api("POST", "/api/payments/hosted/webhook", body,
                        headers={"webhook-id": msg_id, "webhook-timestamp": ts,
                                 "webhook-signature": "v1," + sig,
                                 "Content-Type": "application/json"})

    def test_signed_webhooks_pay_and_bad_ones_are_refused(self):
        pid = self.product(2)["id"]
        _, _, o = self.order(pid)
        self.assertTrue(o["payment_url"].startswith("https://pay.example/checkout?reference=" + o["id"]))
        status, _, _ = self.api("POST", f"/api/orders/{o['token']}/pay")
        self.assertEqual(status, 403)
        good = {"type": "payment.succeeded", "order_id": o["id"], "payment_id": "pi_1",
                "amount_minor": 1500, "currency": "EUR"}
        other_secret = "whsec_" + base64.b64encode(b"x" * 32).decode()
        self.assertEqual(self.send(good, secret=other_secret)[0], 401)
        self.assertEqual(self.send(good, ts=int(time.time()) - 3600)[0], 401)
        self.assertEqual(self.send({**good, "amount_minor": 1}, )[0], 422)
        status, _, body = self.send(good)
        self.assertEqual((status, body["status"], body["duplicate"]), (200, "paid", False), body)
        status, _, body = self.send(good)
        self.assertEqual((status, body["duplicate"]), (200, True))
        _, _, view = self.api("GET", f"/api/orders/{o['token']}")
        self.assertEqual(view["status"], "paid")
        self.assert_invariant(pid, 2)


class CrashTest(unittest.TestCase):
    def test_kill_9_in_a_storm_loses_no_acknowledged_order(self):
        h = Hawker()
        h.start()
        try:
            admin, _ = setup_admin(h)
            c = Client(h.http_port)
            _, _, p = c.call("POST", "/api/admin/products",
                             {"title": "Drop", "price_minor": 100, "currency": "EUR",
                              "stock": 300}, {"Authorization": "Bearer " + admin})
            c.close()
            pid = p["id"]
            acked = []
            lock = threading.Lock()
            stop = threading.Event()

            def buyer():
                cl = Client(h.http_port, timeout=10)
                while not stop.is_set():
                    try:
                        status, _, body = cl.call("POST", "/api/orders", order_body(pid),
                                                  {"Idempotency-Key": str(uuid.uuid4())})
                    except Exception:  # noqa: BLE001 - the server died under us, as intended
                        return
                    if status == 201:
                        with lock:
                            acked.append(body["id"])

            threads = [threading.Thread(target=buyer) for _ in range(40)]
            for t in threads:
                t.start()
            wait_for(lambda: len(acked) >= 50, timeout=20, what="orders before the kill")
            h.kill9()
            stop.set()
            for t in threads:
                t.join()
            h.start()
            cl = Client(h.http_port)
            auth = {"Authorization": "Bearer " + admin}
            _, _, listed = cl.call("GET", f"/api/admin/orders?product_id={pid}&limit=1000",
                                   headers=auth)
            ids = [o["id"] for o in listed["orders"]]
            self.assertEqual(len(ids), len(set(ids)))
            self.assertEqual(set(acked) - set(ids), set())
            _, _, l = cl.call("GET", f"/api/admin/products/{pid}/stock", headers=auth)
            self.assertEqual(l["stock"], l["movements_sum"], l)
            self.assertEqual(l["stock"] + l["reserved"] + l["sold"], 300, l)
            self.assertEqual(l["reserved"], len(ids))
            cl.close()
        finally:
            h.stop()
            h.close()


if __name__ == "__main__":
    main()
