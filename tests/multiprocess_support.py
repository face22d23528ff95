"""What ``test_multiprocess.py`` runs: ingest hosts under gunicorn, learners, a ledger.

``create_app()`` is the WSGI app of an ingest host (``multiprocess_support:create_app()``
for gunicorn): the forwarding tests' app (``forwarding_app.make_app``, config from the
JSON in ``MULTI_APP_CONFIG``) with an identity loader reading the learner from the Flask
session, and ``GET /login/<name>`` to sign a learner in. A request with an ``X-Test-Hold`` header is
answered only after :data:`HOLD_SECONDS` (after its commit: "stored, not acknowledged"
for as long as it takes to kill the host). Every host gets the same
``SECRET_KEY``, so a session cookie of one host is good on the others (as behind a load
balancer) and the hosts share one rate-limit bucket per learner.

:class:`IngestHost` is one host: gunicorn (gthread) in a session of its own, with its own
instance folder, on its own loopback port; ``kill()`` SIGKILLs the whole session (the
master and its workers: a host that dies). :class:`Learner` posts as one signed-in
learner (its own cookie jar) and writes what each answer said in a :class:`Ledger`.
"""

from __future__ import annotations

import http.client
import http.cookiejar
import json
import os
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flask import Flask, Response, request, session

from flask_tracking import Tracking

import services
from forwarding_app import make_app, wait_until

TESTS = Path(__file__).resolve().parent
CONFIG_VAR = "MULTI_APP_CONFIG"
#: Longest wait for a host to answer after it was started (seconds).
START_DEADLINE = 30.0
#: Longest wait for one answer (a request to a killed host fails at once).
REQUEST_TIMEOUT = 15.0
COURSE_PAGE = "https://lms.example.org/courses/course-v1:Org+Multi+Run/courseware/u1"
#: How long a request with ``X-Test-Hold`` waits before its answer (its host is killed
#: meanwhile; the bound only keeps a leftover process from waiting forever).
HOLD_SECONDS = 60.0
HOLD_HEADER = "X-Test-Hold"
PLAY = {"id": "intro", "code": "html5", "currentTime": 1.5, "speed": "1.0"}


def create_app() -> Flask:
    """An ingest host: ``MULTI_APP_CONFIG`` holds its config as JSON."""
    tracking = Tracking()

    @tracking.identity_loader
    def learner() -> dict[str, Any] | None:
        name = session.get("learner")
        return {"user_id": name, "username": name} if name else None

    app = make_app(json.loads(os.environ[CONFIG_VAR]), tracking)

    @app.get("/login/<name>")
    def login(name: str) -> Response:
        session["learner"] = name
        return Response(status=204)

    never = threading.Event()

    @app.after_request
    def hold(response: Response) -> Response:
        if request.headers.get(HOLD_HEADER):
            never.wait(HOLD_SECONDS)  # the view has committed; the answer waits
        return response

    return app


class IngestHost:
    """``create_app()`` under gunicorn on a port of its own, in its own session."""

    def __init__(
        self, name: str, config: dict[str, Any], log: Path, *, workers: int = 2, threads: int = 2
    ) -> None:
        self.name = name
        self.port = services.free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        self.command = services.gunicorn_command(
            "multiprocess_support:create_app()", self.port, workers=workers, threads=threads
        )
        self.env = {**os.environ, CONFIG_VAR: json.dumps(config)}
        self.env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TESTS), str(TESTS.parent)]))
        self.process: subprocess.Popen[bytes] | None = None

    def spawn(self) -> None:
        """Start gunicorn (again, on the same port); :meth:`wait_ready` waits for it."""
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                self.command,
                cwd=TESTS,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def answers(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise RuntimeError(f"{self.name} exited ({self.process.returncode}):\n{self.tail()}")
        try:
            with urllib.request.urlopen(f"{self.url}/activity/health", timeout=2) as answer:
                return bool(answer.status == 200)
        except (OSError, http.client.HTTPException):
            return False

    def wait_ready(self, timeout: float = START_DEADLINE) -> None:
        wait_until(self.answers, timeout, f"{self.name} to answer /activity/health")

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:] if self.log.exists() else ""

    def kill(self) -> None:
        """SIGKILL the master and its workers at once: the host is gone, no cleanup."""
        assert self.process is not None
        with suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)
        # Its workers are in the same session: gone too (a port nobody answers on).
        wait_until(lambda: not _listening(self.port), 10, f"{self.name}'s port to close")

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            with suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=10)
        with suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        with suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=10)


def _listening(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


# --- what the learners saw --------------------------------------------------------------


@dataclass
class Ledger:
    """What every answer said, from the clients' side (thread-safe)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    #: event id -> the host whose 200 acknowledged it (batch events: ids are the client's)
    acked: dict[str, str] = field(default_factory=dict)
    #: marker -> host, for single events (the server gives their ids; the page carries a
    #: marker of the client's)
    acked_single: dict[str, str] = field(default_factory=dict)
    #: markers of single events answered 4xx/5xx (nothing stored) and of those that got
    #: no answer (a killed host: stored or not, at most once)
    refused_single: dict[str, int | str] = field(default_factory=dict)
    unanswered_single: set[str] = field(default_factory=set)
    #: batches answered 200 with duplicates: a retry of one a killed host had stored
    duplicate_answers: int = 0
    #: status -> count, over every request
    statuses: dict[str | int, int] = field(default_factory=dict)
    #: anything no answer should be (a 200 not accepting every event, a 500, ...)
    problems: list[str] = field(default_factory=list)
    requests: int = 0

    def count(self, status: str | int) -> None:
        with self.lock:
            self.requests += 1
            self.statuses[status] = self.statuses.get(status, 0) + 1

    def problem(self, text: str) -> None:
        with self.lock:
            self.problems.append(text)


@dataclass
class Answer:
    status: int | str  # an HTTP status, or "refused" / "lost" when there was none
    body: Any = None
    retry_after: str | None = None


class Learner:
    """One signed-in learner: its own cookie jar, posting to the hosts it is given."""

    def __init__(self, name: str, tag: str) -> None:
        self.name = name
        self.tag = tag  # in every page URL: which test sent the event
        jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))

    def page(self, marker: str) -> str:
        return f"{COURSE_PAGE}?t={self.tag}&m={marker}"

    def call(
        self,
        url: str,
        data: bytes | None,
        content_type: str | None = None,
        *,
        headers: dict[str, str] | None = None,
        timeout: float = REQUEST_TIMEOUT,
    ) -> Answer:
        request = urllib.request.Request(url, data=data, method="POST" if data else "GET")
        if content_type:
            request.add_header("Content-Type", content_type)
        for name, value in (headers or {}).items():
            request.add_header(name, value)
        try:
            with self.opener.open(request, timeout=timeout) as answer:
                status, raw, retry = answer.status, answer.read(), None
        except urllib.error.HTTPError as error:
            status, raw, retry = error.code, error.read(), error.headers.get("Retry-After")
        except urllib.error.URLError as error:
            # Refused before anything was sent: nothing can have been stored.
            refused = isinstance(error.reason, ConnectionRefusedError)
            return Answer("refused" if refused else "lost")
        except (OSError, http.client.HTTPException):
            return Answer("lost")  # sent, then the connection broke: no answer
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")
        return Answer(status, body, retry)

    def login(self, host: str) -> None:
        answer = self.call(f"{host}/login/{self.name}", None)
        assert answer.status == 204, answer

    def batch(self, size: int) -> dict[str, Any]:
        now_ms = time.time() * 1000
        events = [
            {
                "id": str(uuid.uuid4()),
                "event_type": "play_video",
                "event": PLAY,
                "page": self.page("batch"),
                "time": now_ms,
                "seq": n,
            }
            for n in range(size)
        ]
        return {"sent_at": now_ms, "events": events}

    def post_batch(
        self, hosts: Callable[[], Sequence[str]], ledger: Ledger, size: int, deadline: float
    ) -> int:
        """Post one batch until a host stores it (the same ids each time, as the Logger
        retries); how many tries it took."""
        body = self.batch(size)
        ids = [e["id"] for e in body["events"]]
        data = json.dumps(body).encode()
        tries = 0
        while time.monotonic() < deadline:
            live = hosts()
            host = live[tries % len(live)]
            tries += 1
            answer = self.call(f"{host}/activity/events", data, "text/plain")
            ledger.count(answer.status)
            if answer.status == 200:
                got = answer.body
                if got.get("failed") or got["accepted"] + got["duplicates"] != size:
                    ledger.problem(f"batch answered {got}")
                with ledger.lock:
                    if got["duplicates"]:
                        ledger.duplicate_answers += 1
                    for event_id in ids:
                        ledger.acked[event_id] = host
                return tries
            if answer.status not in ("refused", "lost", 503):
                ledger.problem(f"batch answered {answer.status} {answer.body}")
                return tries
        ledger.problem(f"a batch was never stored ({tries} tries)")
        return tries

    def post_single(self, host: str, ledger: Ledger, *, retry: Callable[[], str] | None) -> Answer:
        """Post one event as edX's ``Logger.log`` does (form-encoded, no id of its own).

        After an answer that stored nothing (refused connection, 503) it is posted again
        to ``retry()``'s host if ``retry`` is given; after no answer at all it is not (it
        may have been stored, and it has no id to make a second post harmless)."""
        marker = uuid.uuid4().hex
        fields = {
            "event_type": "edx.multi.single",
            "event": json.dumps({"marker": marker}),
            "page": self.page(marker),
        }
        data = urllib.parse.urlencode(fields).encode()
        content = "application/x-www-form-urlencoded"
        while True:
            answer = self.call(f"{host}/activity/event", data, content)
            ledger.count(answer.status)
            if answer.status == 200:
                if answer.body.get("accepted") != 1:
                    ledger.problem(f"single event answered {answer.body}")
                with ledger.lock:
                    ledger.acked_single[marker] = host
                return answer
            if answer.status == "lost":
                with ledger.lock:
                    ledger.unanswered_single.add(marker)
                return answer
            if answer.status in ("refused", 503) and retry is not None:
                host = retry()
                continue
            with ledger.lock:
                ledger.refused_single[marker] = answer.status
            if answer.status == 429 and not answer.retry_after:
                ledger.problem("a 429 without Retry-After")
            elif answer.status != 429:
                ledger.problem(f"single event answered {answer.status} {answer.body}")
            return answer
