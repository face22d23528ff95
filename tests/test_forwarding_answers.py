"""Receivers that answer too much or too slowly, on a real loopback HTTP server: the
HTTP destinations' client (webhook, Slack, xAPI, Caliper) reads at most ANSWER_LIMIT
bytes of an answer in bounded memory, and gives up on an answer trickling in past its
timeout instead of holding the worker."""

from __future__ import annotations

import threading
import time
import tracemalloc
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from flask_tracking.forwarding import RetryableError
from flask_tracking.forwarding.destinations.http import ANSWER_LIMIT, HttpClient

HUGE = 50 * 1024 * 1024


class _Answers(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.peers.append(self.client_address)
        way = self.path.strip("/")
        self.send_response(200)
        self.send_header("Content-Length", str(HUGE if way == "huge" else 1000))
        self.end_headers()
        try:
            if way == "huge":  # 50 MB, as fast as the client takes them
                block = b"h" * 65536
                for _ in range(HUGE // len(block)):
                    self.wfile.write(block)
            else:  # a byte every 50 ms: 1000 bytes would take 50 s
                for _ in range(1000):
                    self.wfile.write(b"t")
                    self.wfile.flush()
                    time.sleep(0.05)
        except OSError:  # the client stopped reading and closed: what it should do
            self.close_connection = True


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    peers: list[Any]


@pytest.fixture
def server() -> Iterator[_Server]:
    httpd = _Server(("127.0.0.1", 0), _Answers)
    httpd.peers = []
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def url(server: _Server, way: str) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}/{way}"


def test_a_huge_answer_is_cut_in_bounded_memory_and_the_next_post_reconnects(
    server: _Server,
) -> None:
    client = HttpClient(url(server, "huge"), timeout=10)
    tracemalloc.start()
    try:
        status, text = client.post(b"{}", {"Content-Type": "application/json"})
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert status == 200 and text == "h" * ANSWER_LIMIT
    assert peak < 4 * ANSWER_LIMIT + 1024 * 1024, f"{peak} bytes at the peak for 50 MB"
    again, _ = client.post(b"{}", {"Content-Type": "application/json"})
    assert again == 200
    # The rest of the first answer was never read: that connection was closed, not reused.
    assert len(server.peers) == 2 and server.peers[0] != server.peers[1]
    client.close()


def test_an_answer_trickling_in_gives_up_after_the_timeout(server: _Server) -> None:
    client = HttpClient(url(server, "trickle"), timeout=0.5)
    start = time.monotonic()
    with pytest.raises(RetryableError, match=r"no answer within 0\.5 s"):
        client.post(b"{}", {"Content-Type": "application/json"})
    elapsed = time.monotonic() - start
    # The headers at once, then the body's deadline (0.5 s) and one read at most (0.5 s).
    assert elapsed < 1.0 + 0.5, f"gave up after {elapsed:.2f} s"
    client.close()
