"""Loopback receivers for the forwarding tests (and the forwarding bench).

:class:`WebhookReceiver` is an HTTP server on 127.0.0.1 in a thread. For a webhook it
checks the ``X-Tracking-Signature`` HMAC of every body and counts idempotency keys: each
key's first arrival is a delivery, later ones are duplicates (a receiver with
idempotency keys drops them). It can be told to answer differently for a while:
``fail_next(n, 500)``, ``stall_next(n, seconds)`` (answer late, after the client gave
up, and keep nothing), ``hold_next()`` (keep the batch, then hang until ``release()``:
"the receiver took it but the sender never heard back"), or ``answer(400)`` from now on.
Slack-style posts (``{"text": ...}``) are kept in ``messages``.

:class:`SmtpReceiver` is an ``aiosmtpd`` server that keeps the messages it gets and can
answer ``451`` / ``550`` instead.

Run as a script (``python tests/receivers.py --secret S``), a webhook receiver serves in
its own process, prints its port, and answers ``GET /stats`` with its counts and the
times of its first and last delivery (for the bench).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import hmac
import json
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

HOST = "127.0.0.1"
SIGNATURE_HEADER = "X-Tracking-Signature"


@dataclass
class Request:
    """One request as the receiver saw it."""

    at: float  # time.monotonic() when its headers were read
    path: str
    status: int
    keys: list[str] = field(default_factory=list)
    peer: tuple[str, int] | None = None  # the client's address: same one = kept alive
    headers: dict[str, str] = field(default_factory=dict)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server
    timeout = 60

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        if self.path == "/stats":
            self._reply(200, json.dumps(self.server.receiver.stats()).encode())
        else:
            self._reply(404, b"")

    def do_POST(self) -> None:
        started = time.monotonic()
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        status, reply = self.server.receiver.handle(
            self.path, dict(self.headers.items()), body, started, self.client_address
        )
        with contextlib.suppress(OSError):  # the sender is gone (killed, or gave up waiting)
            self._reply(status, reply)

    def _reply(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    receiver: WebhookReceiver


class WebhookReceiver:
    """A loopback HTTP receiver that checks signatures and counts idempotency keys."""

    def __init__(self, secret: str | bytes | None = None) -> None:
        self.secret = secret.encode() if isinstance(secret, str) else secret
        self.cond = threading.Condition()
        #: idempotency key -> how many times it arrived in an accepted request
        self.counts: dict[str, int] = {}
        #: idempotency key -> the event item as first received
        self.items: dict[str, dict[str, Any]] = {}
        self.messages: list[dict[str, Any]] = []
        self.requests: list[Request] = []
        self.bad_signatures = 0
        self.first_at: float | None = None
        self.last_at: float | None = None
        self._plan: list[tuple[str, Any]] = []
        self._default = 200
        self._release = threading.Event()
        self._stop = threading.Event()
        self.held = threading.Event()
        self.server = _Server((HOST, 0), _Handler)
        self.server.receiver = self
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    # -- control ---------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.server.server_address[1]}/hook"

    def fail_next(self, count: int, status: int = 500) -> None:
        with self.cond:
            self._plan.extend([("status", status)] * count)

    def stall_next(self, count: int, seconds: float) -> None:
        """Answer the next ``count`` requests after ``seconds`` with 503; keep nothing."""
        with self.cond:
            self._plan.extend([("stall", seconds)] * count)

    def hold_next(self) -> None:
        """Keep the next batch, then hang until :meth:`release` (``held`` is set)."""
        with self.cond:
            self._plan.append(("hold", None))

    def release(self) -> None:
        self._release.set()

    def answer(self, status: int) -> None:
        """Answer every request with ``status`` from now on (after any planned ones)."""
        with self.cond:
            self._default = status

    def close(self) -> None:
        self._stop.set()
        self._release.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)

    def __enter__(self) -> WebhookReceiver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- what arrived ----------------------------------------------------------------------

    @property
    def unique(self) -> int:
        with self.cond:
            return len(self.counts)

    @property
    def duplicates(self) -> dict[str, int]:
        """Keys that arrived more than once, and how many times."""
        with self.cond:
            return {k: n for k, n in self.counts.items() if n > 1}

    def event_ids(self) -> set[str]:
        with self.cond:
            return {item["event_id"] for item in self.items.values()}

    def wait_for(self, predicate: Callable[[], bool], timeout: float, what: str = "") -> None:
        """Wait (on the receiver's condition) until ``predicate()``; fail after ``timeout``."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while not predicate():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"receiver: timed out after {timeout:g}s waiting for {what or predicate}"
                        f" (unique={len(self.counts)}, requests={len(self.requests)})"
                    )
                self.cond.wait(min(left, 0.5))

    def stats(self) -> dict[str, Any]:
        with self.cond:
            return {
                "unique": len(self.counts),
                "received": sum(self.counts.values()),
                "requests": len(self.requests),
                "bad_signatures": self.bad_signatures,
                "first_at": self.first_at,
                "last_at": self.last_at,
            }

    # -- the request handler ---------------------------------------------------------------

    def handle(
        self,
        path: str,
        headers: dict[str, str],
        body: bytes,
        started: float,
        peer: tuple[str, int] | None = None,
    ) -> tuple[int, bytes]:
        def record(status: int, keys: list[str] | None = None) -> None:
            self._record(Request(started, path, status, keys or [], peer, headers))

        with self.cond:
            action = self._plan.pop(0) if self._plan else ("status", self._default)
        kind, value = action
        if kind == "stall":
            self._stop.wait(value)
            record(503)
            return 503, b'{"error": "stalled"}'
        if kind == "status" and value != 200:
            record(value)
            return value, json.dumps({"error": f"told to answer {value}"}).encode()
        if self.secret is not None:
            expected = "sha256=" + hmac.new(self.secret, body, hashlib.sha256).hexdigest()
            if not hmac.compare_digest(expected, headers.get(SIGNATURE_HEADER, "")):
                with self.cond:
                    self.bad_signatures += 1
                record(401)
                return 401, b'{"error": "bad signature"}'
        try:
            document = json.loads(body)
        except ValueError:
            record(400)
            return 400, b'{"error": "not JSON"}'
        keys = [item["idempotency_key"] for item in document.get("events", [])]
        with self.cond:
            for item in document.get("events", []):
                key = item["idempotency_key"]
                self.counts[key] = self.counts.get(key, 0) + 1
                self.items.setdefault(key, item)
            if "text" in document:
                self.messages.append(document)
            if self.first_at is None:
                self.first_at = started
            self.last_at = time.monotonic()
        record(200, keys)
        if kind == "hold":
            self.held.set()
            self._release.wait()
        return 200, b'{"ok": true}'

    def _record(self, request: Request) -> None:
        with self.cond:
            self.requests.append(request)
            self.cond.notify_all()


class SmtpReceiver:
    """An ``aiosmtpd`` server on 127.0.0.1 that keeps what it gets."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        from services import free_port

        self.cond = threading.Condition()
        self.messages: list[bytes] = []
        self._plan: list[str | None] = []
        self.controller = Controller(self, hostname=HOST, port=free_port())
        self.controller.start()

    @property
    def port(self) -> int:
        return int(self.controller.port)

    def refuse_next(self, count: int, reply: str, *, after: int = 0) -> None:
        """After accepting ``after`` messages, answer ``count`` with ``reply`` ("451 ...")."""
        with self.cond:
            self._plan.extend([None] * after + [reply] * count)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.cond:
            reply = self._plan.pop(0) if self._plan else None
            if reply is not None:
                return reply
            self.messages.append(bytes(envelope.content))
            self.cond.notify_all()
        return "250 OK"

    def wait_for(self, count: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with self.cond:
            while len(self.messages) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"smtp: {len(self.messages)} of {count} messages after {timeout:g}s"
                    )
                self.cond.wait(min(left, 0.5))

    def close(self) -> None:
        self.controller.stop()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description="A webhook receiver in its own process.")
    parser.add_argument("--secret", required=True)
    args = parser.parse_args(argv)
    receiver = WebhookReceiver(args.secret)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    print(receiver.server.server_address[1], flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        done.wait()
    receiver.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
