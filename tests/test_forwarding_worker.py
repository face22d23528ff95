"""``flask tracking worker`` as a process: signals, ``kill -9``, and who retries after it.

Real Redis (database 13 of the shared server, a queue per test), real worker processes
(``python -m flask --app forwarding_app tracking worker``), a real loopback receiver.
Every wait polls a condition with a deadline.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from flask_tracking.extension import get_state
from flask_tracking.forwarding import DELIVERED, PENDING, deliveries_table

from forwarding_app import (
    event,
    forwarder_of,
    make_app,
    store,
    wait_until,
    worker,
    worker_config,
)
from receivers import WebhookReceiver

D = deliveries_table
SECRET = "worker-secret"


@pytest.fixture
def config(database_url: str, tmp_path: Path) -> Iterator[dict[str, Any]]:
    with worker_config(database_url, tmp_path, "fwd") as settings:
        yield settings


@pytest.fixture
def app_for(config: dict[str, Any]) -> Iterator[Any]:
    made: list[Flask] = []

    def factory(full: dict[str, Any]) -> Flask:
        app = make_app(full)
        made.append(app)
        return app

    yield factory
    for app in made:
        forwarder_of(app).close()
        get_state(app).engine.dispose()


def hook(url: str, **extra: Any) -> dict[str, Any]:
    return {"kind": "webhook", "options": {"url": url, "secret": SECRET, "timeout": 2}, **extra}


def rows(app: Flask) -> list[Any]:
    with get_state(app).engine.connect() as conn:
        return list(conn.execute(select(D).order_by(D.c.id)))


def session_processes(session: int) -> list[int]:
    """Live processes (zombies aside) of a session: the worker and anything it started."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rpartition(")")[2].split()
        except OSError:
            continue  # gone meanwhile
        state, sid = fields[0], int(fields[3])
        if sid == session and state != "Z":
            found.append(int(entry))
    return found


def test_sigterm_during_a_job_lets_the_job_finish(
    config: dict[str, Any], app_for: Any, tmp_path: Path
) -> None:
    with WebhookReceiver(SECRET) as receiver:
        destination = hook(receiver.url)
        destination["options"]["timeout"] = 10  # the held request must not time out
        full = {**config, "TRACKING_DESTINATIONS": {"hook": destination}}
        full["TRACKING_FORWARD_JOB_TIMEOUT"] = 20
        app = app_for(full)
        receiver.hold_next()  # takes the batch, answers only when released
        with worker(full, tmp_path / "worker.log") as process:
            ids = store(app, [event(n) for n in range(50)])
            assert receiver.held.wait(30), process.log()
            process.proc.send_signal(signal.SIGTERM)  # in the middle of the job
            wait_until(lambda: "warm shut down requested" in process.log(), 10, "the SIGTERM")
            assert process.proc.poll() is None  # still finishing the job
            receiver.release()
            assert process.wait(20) == 0, process.log()
        assert receiver.event_ids() == set(ids) and len(receiver.requests) == 1
        found = rows(app)
        assert {(r.state, r.attempts, r.last_error) for r in found} == {(DELIVERED, 1, None)}


def test_a_killed_worker_leaves_nothing_behind_and_the_next_one_retries(
    config: dict[str, Any], app_for: Any, tmp_path: Path
) -> None:
    with WebhookReceiver(SECRET) as receiver:
        full = {**config, "TRACKING_DESTINATIONS": {"hook": hook(receiver.url, backoff=2)}}
        app = app_for(full)
        receiver.fail_next(1, 503)  # the first attempt fails with a retryable error
        with worker(full, tmp_path / "first.log") as first:
            ids = store(app, [event(n) for n in range(20)])

            def backing_off() -> bool:
                found = rows(app)
                return len(found) == 20 and all(
                    r.state == PENDING and r.attempts == 1 and r.claim_token is None for r in found
                )

            wait_until(backing_off, 30, "the first attempt to fail")
            assert [r.status for r in receiver.requests] == [503]
            os.kill(first.pid, signal.SIGKILL)  # the worker only, as `kill -9 <pid>` does
            first.proc.wait(timeout=10)
            # Nothing of it lives on (no scheduler child holding RQ's scheduler lock).
            wait_until(lambda: session_processes(first.pid) == [], 10, "no process left")
        with worker(full, tmp_path / "second.log") as second:
            receiver.wait_for(lambda: len(receiver.counts) == 20, 30, "the retry")
            wait_until(
                lambda: {(r.state, r.attempts) for r in rows(app)} == {(DELIVERED, 2)},
                10,
                "rows delivered by the second worker",
            )
            assert second.proc.poll() is None, second.log()
        failed_at, retried_at = receiver.requests[0].at, receiver.requests[1].at
        assert retried_at - failed_at >= 2.0 - 0.1  # not before its backoff
        assert [r.status for r in receiver.requests] == [503, 200]
        assert receiver.event_ids() == set(ids) and receiver.duplicates == {}
