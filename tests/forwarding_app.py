"""The app of the forwarding tests, and their helpers.

Worker processes run ``python -m flask --app forwarding_app tracking worker`` with
``tests/`` on ``PYTHONPATH``; :func:`create_app` reads the app config from the JSON in
``FORWARDING_APP_CONFIG``, so a test's own app and its workers share one configuration.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from flask import Flask

from flask_tracking import Tracking
from flask_tracking.extension import get_state
from flask_tracking.forwarding import Forwarder, get_forwarder

from redis_keys import clean_redis

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
CONFIG_VAR = "FORWARDING_APP_CONFIG"
#: The Redis database the forwarding tests use on the shared server (keys: their queue).
REDIS_DB = 13
#: Settings that make the machinery quick enough for tests.
FAST = {
    "TRACKING_FORWARD_SWEEP_INTERVAL": 0.5,
    "TRACKING_FORWARD_LINGER": 0.05,
    "TRACKING_FORWARD_JOB_TIMEOUT": 5,
}
START = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)


def create_app() -> Flask:
    """The worker's app: ``FORWARDING_APP_CONFIG`` holds its config as JSON."""
    return make_app(json.loads(os.environ[CONFIG_VAR]))


def make_app(config: Mapping[str, Any], tracking: Tracking | None = None) -> Flask:
    settings = dict(config)
    instance = settings.pop("INSTANCE_PATH", None)
    app = Flask("forwarding_app", instance_path=instance or str(TESTS / ".instance"))
    app.config.update(SECRET_KEY="test-secret", TRACKING_RATE_LIMIT=None)
    app.config.update(settings)
    (tracking or Tracking()).init_app(app)
    return app


def forwarder_of(app: Flask) -> Forwarder:
    return get_forwarder(app)


def event(
    n: int,
    *,
    event_type: str = "edx.test.forwarded",
    source: str = "server",
    course: str | None = "course-v1:Org+Num+Run",
    username: str | None = "learner",
    ip: str | None = "198.51.100.7",
    payload: Any = None,
) -> dict[str, Any]:
    """A ready-to-store event (as processors leave it), number ``n``."""
    when = START + timedelta(seconds=n)
    context: dict[str, Any] = {"user_id": n % 97, "path": "/event"}
    if course is not None:
        context["course_id"] = course
        context["org_id"] = course.split(":")[-1].split("+")[0]
    data = {"n": n} if payload is None else payload
    return {
        "event_id": str(uuid.uuid4()),
        "name": event_type,
        "event_type": event_type,
        "event_source": source,
        "time": when,
        "username": username,
        "session": "s1",
        "ip": ip,
        "agent": "pytest",
        "host": "courses.example.org",
        "referer": None,
        "accept_language": None,
        "page": None,
        "context": context,
        "event": data,
        "event_format": "json" if isinstance(data, str) else "object",
        "event_raw": None,
        "schema_status": "unvalidated",
        "schema_version": None,
        "received_at": when,
        "client_time": None,
        "clock_skew_ms": None,
        "seq": None,
        "original": None,
    }


def store(app: Flask, events: Sequence[dict[str, Any]], batch: int = 500) -> list[str]:
    """Store events through the app's tracker (``batch`` per transaction); their ids."""
    ids: list[str] = []
    with app.app_context():
        tracker = get_state().tracker
        for start in range(0, len(events), batch):
            result = tracker.record(events[start : start + batch], processed=True)
            ids.extend(result.stored)
    return ids


def states(app: Flask, destination: str) -> dict[str, str]:
    return forwarder_of(app).outbox.states(destination)


def wait_until(
    check: Callable[[], bool], timeout: float, what: str, interval: float = 0.05
) -> None:
    """Poll ``check`` until it is true; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)


def redis_db_url(base: str, db: int = REDIS_DB) -> str:
    """``base`` with another database number."""
    parts = urlsplit(base)
    return urlunsplit((parts.scheme, parts.netloc, f"/{db}", parts.query, ""))


@contextmanager
def worker_config(
    database_url: str, tmp_path: Path, prefix: str, **settings: Any
) -> Iterator[dict[str, Any]]:
    """The config of an app and its ``flask tracking worker``: the database (partitioned
    when the run says so), a Redis database of the tests', a queue of its own (named
    ``prefix-...``, its keys deleted afterwards), fast forwarding timings, ``settings``."""
    from services import get_or_skip, redis_url
    from support import partition_config

    url = redis_db_url(get_or_skip(redis_url))
    queue = f"{prefix}-{uuid.uuid4().hex[:10]}"
    try:
        yield {
            "INSTANCE_PATH": str(tmp_path / "instance"),
            "TRACKING_DATABASE_URL": database_url,
            **partition_config(database_url),
            "TRACKING_REDIS_URL": url,
            "TRACKING_FORWARD_QUEUE": queue,
            **settings,
            **FAST,
        }
    finally:
        clean_redis(url, queue)


class WorkerProcess:
    """``flask tracking worker`` in its own session and process group (its pid is both)."""

    def __init__(self, config: Mapping[str, Any], log: Path, *args: str) -> None:
        env = dict(os.environ)
        env[CONFIG_VAR] = json.dumps(config)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TESTS), env.get("PYTHONPATH")]))
        env.pop("FLASK_APP", None)
        self.log_path = log
        self._log = log.open("ab")
        command = [sys.executable, "-m", "flask", "--app", "forwarding_app", "tracking", "worker"]
        self.proc = subprocess.Popen(
            [*command, *args],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL the worker's whole process group: no cleanup of any kind."""
        with suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self, timeout: float = 20) -> int:
        """SIGTERM (warm shutdown), then SIGKILL whatever is left of the group."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            with suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=timeout)
        code = self.proc.poll()
        self.kill()
        self._log.close()
        return code if code is not None else -9

    def wait(self, timeout: float) -> int:
        return self.proc.wait(timeout=timeout)


@contextmanager
def worker(config: Mapping[str, Any], log: Path, *args: str) -> Iterator[WorkerProcess]:
    process = WorkerProcess(config, log, *args)
    try:
        yield process
    finally:
        process.stop()
