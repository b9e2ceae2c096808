"""Misbehaving HTTP clients against a running `replywatch run`, over raw sockets.

Each bad request must get its documented status (or, for a stalling client, be cut off
within a bounded time), and the daemon must keep serving: /healthz answers after each.
"""
import os
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import helpers as h  # noqa: E402

HORIZON = h.DAY
# HttpLimits::request_timeout is 10 s (whole request, from its first byte); allow for
# scheduling on a loaded machine.
SLOW_CLIENT_BOUND = 16.0


def connect(port, timeout=10):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def read_response(s, timeout=10):
    """Reads one response → (status, headers dict, body bytes); status None if the
    server closed without answering."""
    s.settimeout(timeout)
    buf = b""
    while b"\r\n\r\n" not in buf:
        try:
            chunk = s.recv(65536)
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            if not buf:
                return None, {}, b""
            raise AssertionError(f"connection closed inside the response head: {buf!r}")
        buf += chunk
    head, _, body = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    assert parts[0].startswith("HTTP/1."), lines[0]
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = s.recv(65536)
        if not chunk:
            break
        body += chunk
    return int(parts[1]), headers, body[:length]


def request(port, data, timeout=10):
    """Sends raw bytes on a fresh connection and reads one response."""
    with connect(port, timeout) as s:
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may answer and close before taking everything
        return read_response(s, timeout)


def get(path, extra=b""):
    return b"GET " + path.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n" + extra + b"\r\n"


def closed_by_peer(s, timeout):
    """True if the server closes `s` (EOF or reset) within `timeout` seconds."""
    s.settimeout(timeout)
    try:
        while s.recv(65536):
            pass
        return True
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


class Http(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = h.TempDir("rw-e2e-http-")
        cls.addClassCleanup(cls.tmp.cleanup)
        root = cls.tmp.path
        specs = [h.AgencySpec(1, "akimat", "Asia/Almaty")]
        exports = os.path.join(root, "exports")
        fx = h.make_fixture(exports, specs, int(time.time()), 2 * h.DAY, HORIZON,
                            posts_per_chat=15, seed=5)
        data = os.path.join(root, "data")
        config = h.write_config(os.path.join(root, "config.yaml"), specs, HORIZON,
                                daemon=h.daemon_section(data),
                                connectors=[h.export_connector(exports)])
        cls.daemon = h.Daemon(config, data)
        cls.addClassCleanup(cls.daemon.kill)
        cls.daemon.start()
        cls.daemon.wait_ingested(fx.events, timeout=120)
        cls.port = cls.daemon.port

    def tearDown(self):
        # Whatever the test did, the daemon is alive and healthy.
        self.assertTrue(self.daemon.alive(), self.daemon.stderr())
        status, body = h.http_get(self.port, "/healthz", timeout=10)
        self.assertEqual((status, body), (200, "ok\n"))

    def assert_status(self, data, want):
        status, headers, body = request(self.port, data)
        self.assertEqual(status, want, f"{data[:80]!r}: {body[:200]!r}")
        return headers, body

    # -- the server's own limits

    def test_oversized_header_is_431(self):
        self.assert_status(get("/healthz", b"X-Big: " + b"a" * 9000 + b"\r\n"), 431)
        # Many small headers over the limit as well.
        many = b"".join(b"X-H%d: %s\r\n" % (i, b"b" * 100) for i in range(100))
        self.assert_status(get("/healthz", many), 431)
        # A long request line counts too.
        self.assert_status(get("/api/v1/appeals?agency=" + "x" * 9000), 431)

    def test_header_just_under_the_limit_is_served(self):
        self.assert_status(get("/healthz", b"X-Pad: " + b"a" * 6000 + b"\r\n"), 200)

    def test_malformed_request_line_is_400(self):
        for data in (b"this is not http\r\n\r\n",
                     b"GET\r\n\r\n",
                     b"GET /healthz HTTP/1.1 extra\r\nHost: x\r\n\r\n",
                     b"GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n",
                     b"GET /he\x00althz HTTP/1.1\r\nHost: x\r\n\r\n",
                     b"GET /healthz HTTP/1.1\r\nBad Header Line\r\n\r\n",
                     b"GET /api/v1/appeals?agency=%zz HTTP/1.1\r\nHost: x\r\n\r\n"):
            with self.subTest(data=data):
                self.assert_status(data, 400)

    def test_slow_client_is_disconnected(self):
        # One byte every 200 ms: the full request would take ~50 s.
        data = get("/healthz", b"X-Pad: " + b"a" * 200 + b"\r\n")
        started = time.monotonic()
        with connect(self.port) as s:
            sent = 0
            closed = False
            for byte in data:
                if time.monotonic() - started > SLOW_CLIENT_BOUND:
                    break
                try:
                    s.sendall(bytes([byte]))
                    sent += 1
                except (BrokenPipeError, ConnectionResetError):
                    closed = True
                    break
                s.settimeout(0.2)
                try:
                    chunk = s.recv(65536)
                except socket.timeout:
                    continue
                except ConnectionResetError:
                    closed = True
                    break
                # The server answered (408) or closed: read to the end.
                s.settimeout(5)
                if chunk:
                    self.assertTrue(chunk.startswith(b"HTTP/1.1 408"), chunk[:100])
                closed = not chunk or closed_by_peer(s, 5)
                break
            elapsed = time.monotonic() - started
        self.assertTrue(closed, f"still connected after {elapsed:.1f}s, {sent} bytes sent")
        self.assertLess(elapsed, SLOW_CLIENT_BOUND)
        self.assertLess(sent, len(data), "the whole request went through")

    def test_silent_connection_is_closed(self):
        # Connects and sends nothing: the first request's timeout runs from accept.
        started = time.monotonic()
        with connect(self.port) as s:
            self.assertTrue(closed_by_peer(s, SLOW_CLIENT_BOUND),
                            "an idle connection was kept open")
        self.assertLess(time.monotonic() - started, SLOW_CLIENT_BOUND)

    # -- routing and parameters

    def test_unknown_path_is_404(self):
        for path in ("/", "/nope", "/metrics/x", "/api/v1/ranking/x", "/API/V1/RANKING"):
            with self.subTest(path=path):
                self.assert_status(get(path), 404)

    def test_other_methods_are_405(self):
        for method in (b"POST", b"PUT", b"DELETE", b"PATCH"):
            with self.subTest(method=method):
                headers, _ = self.assert_status(
                    method + b" /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}", 405)
                self.assertIn("GET", headers.get("allow", ""))

    def test_head_is_served_without_body(self):
        with connect(self.port) as s:
            s.sendall(b"HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n" + get("/healthz"))
            # Pipelined: the HEAD response has no body, so the GET's answer follows at once.
            status, headers, _ = read_response_head_only(s)
            self.assertEqual(status, 200)
            status, _, body = read_response(s)
            self.assertEqual((status, body), (200, b"ok\n"))

    def test_bad_ranking_parameters_are_400(self):
        for query in ("window=2y", "window=", "window=30D", "by=nobody", "by=", "format=xml",
                      "window=30d&by=citizen"):
            with self.subTest(query=query):
                _, body = self.assert_status(get("/api/v1/ranking?" + query), 400)
                self.assertIn(b"error", body)

    def test_good_ranking_parameters_are_200(self):
        for query in ("", "window=1h", "window=24h&by=responder", "window=7d&by=branch&format=csv",
                      "window=30d&by=agency&format=json"):
            with self.subTest(query=query):
                self.assert_status(get("/api/v1/ranking?" + query), 200)

    def test_bad_appeals_parameters_are_400(self):
        for query in ("limit=0", "limit=abc", "limit=", "limit=-1", "limit=1001", "limit=7x",
                      "limit=99999999999999999999", "cursor=garbage", "cursor=1_2",
                      "cursor=1_2_3x", "cursor=_1_2", "cursor=1__2_3", "status=closed"):
            with self.subTest(query=query):
                _, body = self.assert_status(get("/api/v1/appeals?" + query), 400)
                self.assertIn(b"error", body)

    def test_unknown_agency_is_404(self):
        for query in ("agency=unknown", "agency=AKIMAT", "agency=akimat%20"):
            with self.subTest(query=query):
                self.assert_status(get("/api/v1/appeals?" + query), 404)
        self.assert_status(get("/api/v1/appeals?agency=akimat&limit=3"), 200)

    def test_connection_limit(self):
        # Past max_connections (256) a connection gets 503 and is closed; the others, and
        # new ones once they are gone, are served.
        socks = []
        try:
            for _ in range(256):
                socks.append(connect(self.port))
            time.sleep(0.5)  # let the server accept them all
            status, _, _ = request(self.port, get("/healthz"))
            self.assertEqual(status, 503)
            socks[0].sendall(get("/healthz"))
            self.assertEqual(read_response(socks[0])[0], 200)
        finally:
            for s in socks:
                s.close()
        h.wait_until(lambda: h.http_get(self.port, "/healthz", timeout=2)[0] == 200, 10,
                     what="service after the connections closed")


def read_response_head_only(s, timeout=10):
    """For a HEAD response: the head, no body whatever Content-Length says."""
    s.settimeout(timeout)
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(1)
        if not chunk:
            raise AssertionError("closed")
        buf += chunk
    first = buf.split(b"\r\n", 1)[0].decode()
    return int(first.split(" ")[1]), {}, b""


if __name__ == "__main__":
    unittest.main(verbosity=2)
