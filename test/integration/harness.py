"""Starts the real hawker binary on ephemeral ports with a temporary data dir, and talks to it
as a client would. Used by every integration test (run through `meson test`)."""
import http.client
import json
import os
import signal
import socket
import subprocess
import tempfile
import time
import unittest

HAWKER_BIN = os.environ.get("HAWKER_BIN", "build/app/hawker")


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on now (for a test's own servers)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_for(predicate, timeout=10.0, interval=0.02, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class Hawker:
    """One `hawker serve` process. Its stderr goes to a log file the tests can read."""

    def __init__(self, *args, env=None, data_dir=None):
        self.tmp = None
        if data_dir is None:
            self.tmp = tempfile.TemporaryDirectory(prefix="hawker-it-")
            data_dir = self.tmp.name
        self.data_dir = data_dir
        self.args = list(args)
        self.env = dict(os.environ)
        self.env.update(env or {})
        self.proc = None
        self.log_path = os.path.join(self.data_dir, "test-stderr.log")

    def cli(self, *args, check=True, input=None):
        """Runs another hawker subcommand against the same data dir."""
        cmd = [HAWKER_BIN, *args, "--data-dir", self.data_dir]
        res = subprocess.run(cmd, capture_output=True, text=True, env=self.env, input=input,
                             timeout=60)
        if check and res.returncode != 0:
            raise AssertionError(f"{cmd} failed ({res.returncode}): {res.stderr}")
        return res

    def start(self, timeout=15.0):
        ready = os.path.join(self.data_dir, "hawker.ready.json")
        if os.path.exists(ready):
            os.remove(ready)
        cmd = [HAWKER_BIN, "serve", "--data-dir", self.data_dir,
               "--http-listen", "127.0.0.1:0", "--rtmp-listen", "127.0.0.1:0", *self.args]
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=self.log, env=self.env)

        def is_ready():
            if self.proc.poll() is not None:
                raise AssertionError(f"hawker exited early ({self.proc.returncode}):\n{self.logs()}")
            try:
                with open(ready) as f:
                    return json.load(f)
            except (FileNotFoundError, json.JSONDecodeError):
                return None

        self.ready = wait_for(is_ready, timeout, what="hawker.ready.json")
        self.http_port = int(self.ready["http"].rsplit(":", 1)[1])
        self.rtmp_port = int(self.ready["rtmp"].rsplit(":", 1)[1]) if self.ready.get("rtmp") else None
        return self

    def logs(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def send_signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, sig=signal.SIGTERM, timeout=20.0):
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("hawker did not stop within its deadline")
        self.log.close()
        code = self.proc.returncode
        self.proc = None
        return code

    def kill9(self):
        self.proc.kill()
        self.proc.wait()
        self.log.close()
        self.proc = None

    def close(self):
        if self.proc is not None:
            self.stop()
        if self.tmp is not None:
            self.tmp.cleanup()

    # -- HTTP helpers --------------------------------------------------------------------------
    def conn(self, timeout=10.0):
        return http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=timeout)

    def request(self, method, path, body=None, headers=None, timeout=10.0):
        c = self.conn(timeout)
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
            headers = {"Content-Type": "application/json", **(headers or {})}
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        data = r.read()
        c.close()
        return r.status, dict((k.lower(), v) for k, v in r.getheaders()), data

    def get_json(self, path, headers=None):
        status, hdrs, data = self.request("GET", path, headers=headers)
        return status, json.loads(data) if data else None

    def raw(self, payload, timeout=5.0, read_until_close=True):
        """Sends raw bytes and returns everything the server answers until it closes (or times out)."""
        s = socket.create_connection(("127.0.0.1", self.http_port), timeout=timeout)
        s.sendall(payload)
        chunks = []
        try:
            while True:
                b = s.recv(65536)
                if not b:
                    break
                chunks.append(b)
                if not read_until_close:
                    break
        except socket.timeout:
            pass
        s.close()
        return b"".join(chunks)


class HawkerTestCase(unittest.TestCase):
    """Starts one hawker for the whole class; subclasses set `args`/`env`."""

    args = ()
    env = None

    @classmethod
    def setUpClass(cls):
        cls.hawker = Hawker(*cls.args, env=cls.env)
        cls.hawker.start()

    @classmethod
    def tearDownClass(cls):
        code = cls.hawker.stop()
        logs = cls.hawker.logs()
        cls.hawker.close()
        if code != 0:
            raise AssertionError(f"hawker exited with {code}:\n{logs[-4000:]}")


def main():
    unittest.main(verbosity=2)
