"""The foundation against the real binary: health, metrics, CLI, limits, pipelining, slow
clients and graceful shutdown."""
import gzip
import json
import os
import re
import signal
import socket
import subprocess
import time
import unittest

from harness import HAWKER_BIN, Hawker, HawkerTestCase, main

SOURCE_ROOT = os.environ.get("HAWKER_SOURCE_ROOT", ".")


class ServeTest(HawkerTestCase):
    args = ("--http-max-header-bytes", "4KiB", "--http-max-body-bytes", "8KiB",
            "--http-header-timeout", "1s")

    def test_healthz_reports_ok_with_storage(self):
        status, body = self.hawker.get_json("/healthz")
        self.assertEqual(status, 200)
        self.assertEqual(body["status"], "ok")
        self.assertEqual(body["storage"]["status"], "ok")

    def test_metrics_are_prometheus_text(self):
        self.hawker.get_json("/healthz")
        status, headers, body = self.hawker.request("GET", "/metrics")
        self.assertEqual(status, 200)
        self.assertTrue(headers["content-type"].startswith("text/plain"))
        text = body.decode()
        self.assertIn('hawker_http_requests_total{route="/healthz",method="GET",status="200"}', text)
        self.assertIn("hawker_http_request_duration_seconds_bucket", text)
        self.assertIn("hawker_http_open_connections", text)
        self.assertIn("process_resident_memory_bytes", text)
        self.assertIn("hawker_storage_commits_total", text)

    def test_home_page_is_embedded_with_etag_and_gzip(self):
        status, headers, body = self.hawker.request("GET", "/")
        self.assertEqual(status, 200)
        self.assertIn("text/html", headers["content-type"])
        etag = headers["etag"]
        status, _, _ = self.hawker.request("GET", "/", headers={"If-None-Match": etag})
        self.assertEqual(status, 304)
        status, headers, body = self.hawker.request("GET", "/", headers={"Accept-Encoding": "gzip"})
        if headers.get("content-encoding") == "gzip":
            self.assertIn(b"hawker", gzip.decompress(body))

    def test_unknown_path_is_problem_json(self):
        status, headers, body = self.hawker.request("GET", "/api/nothing-here")
        self.assertEqual(status, 404)
        self.assertEqual(headers["content-type"], "application/problem+json")
        problem = json.loads(body)
        self.assertEqual(problem["status"], 404)
        self.assertTrue(problem["type"].startswith("/problems/"))

    def test_wrong_method_is_405_with_allow(self):
        status, headers, _ = self.hawker.request("POST", "/healthz", body="{}")
        self.assertEqual(status, 405)
        self.assertIn("GET", headers["allow"])

    def test_head_and_options(self):
        status, headers, body = self.hawker.request("HEAD", "/healthz")
        self.assertEqual(status, 200)
        self.assertEqual(body, b"")
        status, headers, _ = self.hawker.request(
            "OPTIONS", "/healthz",
            headers={"Origin": "https://shop.example", "Access-Control-Request-Method": "GET"})
        self.assertIn(status, (200, 204))
        self.assertIn("access-control-allow-origin", headers)

    def test_pipelined_requests_answer_in_order(self):
        payload = (b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
                   b"GET /nope-1 HTTP/1.1\r\nHost: x\r\n\r\n"
                   b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        answer = self.hawker.raw(payload)
        statuses = re.findall(rb"HTTP/1\.1 (\d{3}) ", answer)
        self.assertEqual(statuses, [b"200", b"404", b"200"])

    def test_oversize_header_is_431(self):
        big = b"X-Big: " + b"a" * 8000 + b"\r\n"
        answer = self.hawker.raw(b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + big + b"\r\n")
        self.assertTrue(answer.startswith(b"HTTP/1.1 431"), answer[:100])

    def test_oversize_body_is_413(self):
        answer = self.hawker.raw(b"POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n"
                                 + b"a" * 1000)
        self.assertTrue(answer.startswith(b"HTTP/1.1 413"), answer[:100])

    def test_malformed_request_is_400_and_server_goes_on(self):
        answer = self.hawker.raw(b"GARBAGE\x00\x01 / HTTP/9\r\n\r\n")
        self.assertTrue(answer.startswith(b"HTTP/1.1 400"), answer[:100])
        status, _ = self.hawker.get_json("/healthz")
        self.assertEqual(status, 200)

    def test_chunked_request_body_is_read(self):
        answer = self.hawker.raw(b"POST /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                                 b"Connection: close\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
#The body is read whole and the route answers(405 : / healthz takes no POST).
        self.assertTrue(answer.startswith(b"HTTP/1.1 405"), answer[:100])

    def test_header_timeout_closes_a_silent_client(self):
        s = socket.create_connection(("127.0.0.1", self.hawker.http_port), timeout=5)
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        start = time.monotonic()
        data = b""
        while True:
            b = s.recv(4096)
            if not b:
                break
            data += b
        s.close()
        self.assertLess(time.monotonic() - start, 4.5)
        if data:
            self.assertTrue(data.startswith(b"HTTP/1.1 408"), data[:100])

    def test_500_slow_clients_do_not_delay_a_normal_client(self):
        slow = []
        for _ in range(500):
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", self.hawker.http_port))
            slow.append(s)
        time.sleep(0.2)
        prefix = b"GET /healthz HTTP/1.1\r\nHost: slow\r\nX-Trickle: "
        for s in slow:
            try:
                s.send(prefix)
            except OSError:
                pass
        timings = []
        for i in range(20):
            for s in slow:
                try:
                    s.send(b"a")
                except OSError:
                    pass
            t0 = time.monotonic()
            status, body = self.hawker.get_json("/healthz")
            timings.append(time.monotonic() - t0)
            self.assertEqual(status, 200)
            time.sleep(0.02)
        for s in slow:
            s.close()
        timings.sort()
#A generous bound on the median : the point is that 500 trickling clients do not
#queue a normal client behind them.
        self.assertLess(timings[len(timings) // 2], 0.5, timings)


class CommandLineTest(unittest.TestCase):
    def run_hawker(self, *args, env=None):
        e = dict(os.environ)
        e.update(env or {})
        return subprocess.run([HAWKER_BIN, *args], capture_output=True, text=True, env=e, timeout=30)

    def test_version(self):
        r = self.run_hawker("version")
        self.assertEqual(r.returncode, 0)
        self.assertIn("hawker", r.stdout)
        self.assertIn("libavformat", r.stdout)

    def test_config_prints_effective_values_from_every_layer(self):
        with open(os.path.join(os.environ.get("TMPDIR", "/tmp"), f"hawker-it-{os.getpid()}.toml"), "w") as f:
            f.write('[http]\nlisten = "127.0.0.1:9001"\nidle-timeout = "5s"\n')
            path = f.name
        r = self.run_hawker("config", "--config", path, "--http-idle-timeout", "7s",
                            env={"HAWKER_HTTP_LISTEN": "127.0.0.1:9002"})
        os.remove(path)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn('listen = "127.0.0.1:9002"', r.stdout)
        self.assertIn('idle-timeout = "7s"', r.stdout)

    def test_bad_value_is_refused_naming_the_key(self):
        r = self.run_hawker("serve", "--rtmp-listen", "nowhere")
        self.assertEqual(r.returncode, 2)
        self.assertIn("rtmp.listen", r.stderr)
        self.assertIn("HOST:PORT", r.stderr)

    def test_every_key_is_documented(self):
        r = self.run_hawker("config", "--keys")
        self.assertEqual(r.returncode, 0)
        with open(os.path.join(SOURCE_ROOT, "docs", "configuration.md")) as f:
            doc = f.read()
        for line in r.stdout.splitlines()[2:]:
            key = line.split("`")[1]
            self.assertTrue(f"`{key}`" in doc, f"docs/configuration.md lacks {key}")


class ShutdownTest(unittest.TestCase):
    def test_sigterm_finishes_in_flight_request_and_exits_0(self):
        h = Hawker()
        h.start()
        try:
#A request whose body is still arriving is in flight when the signal lands.
            s = socket.create_connection(("127.0.0.1", h.http_port), timeout=10)
            s.sendall(b"POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
            time.sleep(0.2)
            h.send_signal(signal.SIGTERM)
            time.sleep(0.2)
            s.sendall(b"defghij")
            answer = s.recv(4096)
            s.close()
            self.assertTrue(answer.startswith(b"HTTP/1.1 405"), answer[:80])
            # The one signal is enough: hawker exits on its own once the request is answered.
            code = h.proc.wait(20)
            h.log.close()
            h.proc = None
            self.assertEqual(code, 0)
            self.assertFalse(os.path.exists(os.path.join(h.data_dir, "hawker.ready.json")))
        finally:
            h.close()

    def test_second_signal_exits_at_once(self):
        h = Hawker("--shutdown-deadline", "60s")
        h.start()
        try:
            s = socket.create_connection(("127.0.0.1", h.http_port), timeout=10)
            s.sendall(b"POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
            time.sleep(0.2)
            h.send_signal(signal.SIGTERM)
            time.sleep(0.3)
            self.assertIsNone(h.proc.poll(), "first signal waits for the request in flight")
            t0 = time.monotonic()
            h.send_signal(signal.SIGINT)
            h.proc.wait(5)
            self.assertLess(time.monotonic() - t0, 2.0)
            self.assertNotEqual(h.proc.returncode, 0)
            s.close()
            h.proc = None
            h.log.close()
        finally:
            h.close()

    def test_data_survives_restart(self):
        h = Hawker()
        h.start()
        self.assertEqual(h.stop(), 0)
        h.start()
        status, body = h.get_json("/healthz")
        self.assertEqual(body["storage"]["status"], "ok")
        self.assertEqual(h.stop(), 0)
        h.close()


if __name__ == "__main__":
    main()
