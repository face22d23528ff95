"""Helpers of the browser tests: the demo served on loopback, and reading its table."""

from __future__ import annotations

import os
import threading
import time
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.serving import BaseWSGIServer, make_server

from demo_app import create_app
from demo_app.course import COURSE_ID
from demo_app.ext import tracking
from flask_tracking import FailedEvent, TrackingEvent

CHROMIUM = os.environ.get("TRACKING_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
IN_CI = os.environ.get("CI") == "true"
#: The learner every test signs in as.
LEARNER = "ada"
#: Longest wait for anything the browser or the server does (seconds).
DEADLINE = 20.0
#: JavaScript: how many events the Logger queues in localStorage hold, over all tabs.
QUEUED_IN_STORAGE = """() => Object.keys(localStorage)
    .filter(k => k.startsWith('ft:q:'))
    .reduce((n, k) => n + JSON.parse(localStorage.getItem(k)).length, 0)"""


def unavailable(reason: str) -> None:
    """Skip locally; fail under ``CI=true``, where nothing may be skipped."""
    if IN_CI:
        pytest.fail(f"the browser tests need this under CI=true: {reason}")
    pytest.skip(reason)


@dataclass
class LiveServer:
    """The demo app served on ``url`` by a werkzeug server in a thread."""

    app: Flask
    server: BaseWSGIServer
    thread: threading.Thread
    url: str = field(init=False)
    course_url: str = field(init=False)

    def __post_init__(self) -> None:
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.course_url = f"{self.url}/courses/{COURSE_ID}/courseware"

    @classmethod
    def start(cls, config: dict[str, Any]) -> LiveServer:
        app = create_app(config)
        server = make_server("127.0.0.1", 0, app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, name="demo-server", daemon=True)
        thread.start()
        live = cls(app, server, thread)
        try:
            live.wait_healthy()
        except BaseException:
            live.stop()
            raise
        return live

    def wait_healthy(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/activity/health", timeout=1) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                if time.monotonic() > deadline:
                    raise
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)
        self.app.extensions["tracking"].engine.dispose()

    def events(self, event_type: str | Iterable[str] | None = None) -> list[TrackingEvent]:
        """Stored events (through ``tracking.events()``), in the order they were stored."""
        with self.app.app_context(), Session(tracking.engine) as db:
            query = tracking.events(event_type).order_by(TrackingEvent.id)
            rows = list(db.scalars(query))
            db.expunge_all()
        return rows

    def failed(self) -> list[FailedEvent]:
        """The rows of the failed-events table, oldest first."""
        with self.app.app_context(), Session(tracking.engine) as db:
            rows = list(db.scalars(select(FailedEvent).order_by(FailedEvent.id)))
            db.expunge_all()
        return rows

    def wait_for_events(
        self,
        predicate: Callable[[list[TrackingEvent]], bool],
        *,
        pump: Callable[[], Any] | None = None,
        timeout: float = DEADLINE,
        what: str = "the expected events",
    ) -> list[TrackingEvent]:
        """Poll the table until ``predicate(rows)`` holds; fail after ``timeout`` seconds.

        ``pump`` runs between polls instead of a short sleep: pass a Playwright wait when
        route handlers must keep running (the sync API runs them only inside its calls).
        """
        deadline = time.monotonic() + timeout
        while True:
            rows = self.events()
            if predicate(rows):
                return rows
            if time.monotonic() > deadline:
                stored = [(r.event_type, r.event_source) for r in rows]
                pytest.fail(f"no {what} after {timeout:.0f} s; stored: {stored}")
            if pump is not None:
                pump()
            else:
                time.sleep(0.05)


def sign_in(context: Any, name: str = LEARNER) -> None:
    """Sign in by posting the sign-in form; the browser context keeps the cookie."""
    answer = context.request.post("/signin", form={"username": name})
    assert answer.ok, answer.status


def open_course(context: Any, live: LiveServer, unit: int = 1) -> Any:
    """A new tab on the course page, once the Logger and the video's metadata are in."""
    tab = context.new_page()
    tab.goto(f"{live.course_url}?unit={unit}")
    tab.wait_for_function(
        "() => window.Logger && document.getElementById('lecture').readyState >= 1"
    )
    return tab


def flushed(page: Any) -> dict[str, int]:
    """Send the page's queue now and wait until the server has answered for all of it."""
    page.evaluate("() => Logger.flush()")
    page.wait_for_function("() => Logger.stats().queued === 0")
    stats: dict[str, int] = page.evaluate("() => Logger.stats()")
    return stats
