"""What the fault tests share: the app they serve, gunicorn in a subprocess, HTTP calls.

``create_app()`` is the WSGI app (``faults_support:create_app()`` for gunicorn): Tracking
on ``FAULTS_DATABASE_URL`` with ``TRACKING_DB_TIMEOUT`` = ``FAULTS_DB_TIMEOUT``, rate
limit off, the spool at ``FAULTS_SPOOL``, and beside it ``GET /hello`` (a page of the app
that does not track) and ``POST /emit`` (a server ``tracking.emit``). With
``FAULTS_USE_DB_AT_START=1`` the app creates the tables and stores an event while it is
built, so that under ``gunicorn --preload`` the master holds a pooled connection when
it forks the workers.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, Response, jsonify
from sqlalchemy import create_engine, text

from flask_tracking import Tracking

import services
from support import IN_CI, partition_config

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
#: Longest wait for a server to start or for anything a test polls (seconds).
DEADLINE = 20.0


def create_app() -> Flask:
    app = Flask("faults")
    app.config.update(
        SECRET_KEY="faults-secret",
        TRACKING_DATABASE_URL=os.environ["FAULTS_DATABASE_URL"],
        **partition_config(os.environ["FAULTS_DATABASE_URL"]),
        TRACKING_DB_TIMEOUT=float(os.environ.get("FAULTS_DB_TIMEOUT", "1.0")),
        TRACKING_SPOOL_FILE=os.environ.get("FAULTS_SPOOL") or None,
        TRACKING_RATE_LIMIT=None,
    )
    tracking = Tracking(app)

    @app.get("/hello")
    def hello() -> str:
        return "hello"

    @app.post("/emit")
    def emit() -> Response:
        event = tracking.emit("showanswer", {"problem_id": "p1"})
        return jsonify(event_id=event["event_id"] if event else None)

    if os.environ.get("FAULTS_USE_DB_AT_START") == "1":
        with app.app_context():
            tracking.init_db()
            tracking.emit("showanswer", {"problem_id": "at-start"})
    return app


def batch(count: int) -> dict[str, Any]:
    """A Logger batch of ``count`` new ``play_video`` events."""
    now_ms = time.time() * 1000
    play = {"id": "intro", "code": "html5", "currentTime": 1.5, "speed": "1.0"}
    events = [
        {
            "id": str(uuid.uuid4()),
            "event_type": "play_video",
            "event": play,
            "page": "https://lms.example/courses/course-v1:Org+Num+Run/courseware/u1",
            "time": now_ms,
            "seq": n,
        }
        for n in range(count)
    ]
    return {"sent_at": now_ms, "events": events}


def ids(body: dict[str, Any]) -> list[str]:
    return [e["id"] for e in body["events"]]


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: Any
    seconds: float


def call(url: str, body: Any = None, timeout: float = 15.0) -> Answer:
    """GET (``body`` None) or POST JSON; the answer, whatever its status, and its time."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method="GET" if body is None else "POST")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    start = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            status, headers, raw = answer.status, dict(answer.headers), answer.read()
    except urllib.error.HTTPError as error:
        status, headers, raw = error.code, dict(error.headers), error.read()
    seconds = time.monotonic() - start
    try:
        parsed: Any = json.loads(raw)
    except ValueError:
        parsed = raw.decode(errors="replace")
    return Answer(status, headers, parsed, seconds)


class Gunicorn:
    """``create_app()`` under gunicorn (gthread) on a free port, in a subprocess."""

    def __init__(
        self,
        env: dict[str, str],
        log: Path,
        *,
        workers: int = 1,
        threads: int = 4,
        preload: bool = False,
    ) -> None:
        self.port = services.free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        self.command = services.gunicorn_command(
            "faults_support:create_app()",
            self.port,
            workers=workers,
            threads=threads,
            preload=preload,
        )
        self.env = {**os.environ, **env}
        self.env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TESTS), str(ROOT)]))
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Gunicorn:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                self.command, cwd=TESTS, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + DEADLINE
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited ({self.process.returncode}):\n{self.tail()}")
            try:
                if call(f"{self.url}/hello", timeout=1).status == 200:
                    return self
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"gunicorn did not answer within {DEADLINE:g} s:\n{self.tail()}")
            time.sleep(0.05)

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:] if self.log.exists() else ""

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> Gunicorn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextmanager
def holder(code: str, *args: str) -> Iterator[subprocess.Popen[str]]:
    """A Python subprocess running ``code`` that prints ``ready`` once it holds what it
    holds, then keeps it until its stdin is closed; killed if it outlives the test."""
    process = subprocess.Popen(
        [sys.executable, "-c", code, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(process.stdout, selectors.EVENT_READ)
            if not selector.select(timeout=DEADLINE):
                raise AssertionError("the holding process did not get ready in time")
        line = process.stdout.readline().strip()
        assert line == "ready", (line, process.stderr.read() if process.stderr else "")
        yield process
    finally:
        release(process)


def release(process: subprocess.Popen[str]) -> None:
    """Let a ``holder`` process go (it releases what it holds and exits)."""
    if process.stdin is not None and not process.stdin.closed:
        process.stdin.close()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    for pipe in (process.stdout, process.stderr):
        if pipe is not None:
            pipe.close()


def stored(url: str, event_ids: list[str]) -> dict[str, int]:
    """How many times each of ``event_ids`` is in ``tracking_events``."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            found = conn.execute(
                text("SELECT event_id, count(*) FROM tracking_events GROUP BY event_id")
            ).all()
    finally:
        engine.dispose()
    wanted = set(event_ids)
    return {event_id: n for event_id, n in found if event_id in wanted}


def wait_until(check: Any, what: str, timeout: float = DEADLINE) -> Any:
    """Poll ``check()`` until it is truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:g} s")
        time.sleep(0.05)


def throwaway_postgres() -> services.PostgresCluster:
    """A cluster of this test's own (it may be frozen); skipped, or failed under CI."""
    try:
        return services.start_throwaway_postgres()
    except services.ServiceUnavailable as exc:
        if IN_CI:
            pytest.fail(f"a throwaway PostgreSQL is needed under CI=true: {exc}")
        pytest.skip(f"no throwaway PostgreSQL: {exc}")


#: Seconds a forking script may take (a hang fails the test instead of the run).
FORK_TIMEOUT = 60


def run_forking(script: str, argument: str) -> int:
    """Run ``script`` (which forks) in a fresh interpreter, bounded in time: a fork of the
    pytest process would copy locks held by its other threads and could hang forever."""
    done = subprocess.run(
        [sys.executable, "-c", script, argument],
        capture_output=True,
        text=True,
        timeout=FORK_TIMEOUT,
        check=False,
    )
    assert not done.stderr, done.stderr
    return done.returncode
