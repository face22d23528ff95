"""End to end with RQ: real Redis, real ``flask tracking worker`` processes, real receivers.

Every test starts its workers as subprocesses (``python -m flask --app forwarding_app
tracking worker``) on a queue of its own, in Redis database 13 of the shared server (or
on a private ``redis-server`` it stops and starts), and waits on conditions (receiver
counts, delivery states) with deadlines.
"""

from __future__ import annotations

import email
import itertools
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from flask_tracking.extension import get_state
from flask_tracking.forwarding import DELIVERED, FAILED
from flask_tracking.forwarding.batches import idempotency_key

from forwarding_app import (
    FAST,
    clean_redis,
    event,
    forwarder_of,
    make_app,
    redis_db_url,
    states,
    store,
    wait_until,
    worker,
)
from receivers import SmtpReceiver, WebhookReceiver
from services import get_or_skip, redis_url, start_redis_server
from support import partition_config


@dataclass
class Setup:
    """One test's database, Redis, queue and the apps made for it."""

    database_url: str
    redis_url: str
    queue: str
    tmp_path: Path
    apps: list[Flask] = field(default_factory=list)

    def config(self, destinations: dict[str, Any], **extra: Any) -> dict[str, Any]:
        return {
            "INSTANCE_PATH": str(self.tmp_path / "instance"),
            "TRACKING_DATABASE_URL": self.database_url,
            **partition_config(self.database_url),
            "TRACKING_REDIS_URL": self.redis_url,
            "TRACKING_FORWARD_QUEUE": self.queue,
            "TRACKING_DESTINATIONS": destinations,
            **FAST,
            **extra,
        }

    def app(self, config: dict[str, Any]) -> Flask:
        app = make_app(config)
        self.apps.append(app)
        return app

    def log(self, name: str = "worker") -> Path:
        return self.tmp_path / f"{name}.log"


@pytest.fixture
def setup(database_url: str, tmp_path: Path) -> Iterator[Setup]:
    url = redis_db_url(get_or_skip(redis_url))
    found = Setup(database_url, url, f"fwd-{uuid.uuid4().hex[:10]}", tmp_path)
    yield found
    for app in found.apps:
        forwarder_of(app).close()
        get_state(app).engine.dispose()
    clean_redis(url, found.queue)


def hook(url: str, secret: str, **extra: Any) -> dict[str, Any]:
    return {"kind": "webhook", "options": {"url": url, "secret": secret, "timeout": 2}, **extra}


def all_delivered(app: Flask, destination: str, count: int) -> bool:
    found = states(app, destination)
    return len(found) == count and set(found.values()) == {DELIVERED}


def test_ten_thousand_events_reach_every_webhook_exactly_once(setup: Setup) -> None:
    with WebhookReceiver("secret-a") as a, WebhookReceiver("secret-b") as b:
        config = setup.config({"a": hook(a.url, "secret-a"), "b": hook(b.url, "secret-b")})
        app = setup.app(config)
        with worker(config, setup.log()) as w:
            ids = store(app, [event(n) for n in range(10_000)], batch=500)
            assert len(ids) == 10_000
            for receiver in (a, b):
                receiver.wait_for(lambda r=receiver: len(r.counts) == 10_000, 120, "10,000")
            wait_until(lambda: all_delivered(app, "a", 10_000), 20, "rows of a delivered")
            wait_until(lambda: all_delivered(app, "b", 10_000), 20, "rows of b delivered")
            assert w.proc.poll() is None, w.log()
        for name, receiver in (("a", a), ("b", b)):
            assert receiver.event_ids() == set(ids)
            assert receiver.duplicates == {}
            assert receiver.bad_signatures == 0
            assert set(receiver.counts) == {idempotency_key(name, i) for i in ids}
            assert len(receiver.requests) == 20  # batches of 500


def test_a_failing_receiver_is_retried_with_backoff(setup: Setup) -> None:
    with WebhookReceiver("s") as receiver:
        config = setup.config({"hook": hook(receiver.url, "s", backoff=1, max_attempts=6)})
        app = setup.app(config)
        receiver.fail_next(3, 500)
        with worker(config, setup.log()):
            ids = store(app, [event(n) for n in range(100)])
            receiver.wait_for(lambda: len(receiver.counts) == 100, 60, "delivery after 500s")
            wait_until(lambda: all_delivered(app, "hook", 100), 10, "rows delivered")
        statuses = [r.status for r in receiver.requests]
        assert statuses == [500, 500, 500, 200]
        at = [r.at for r in receiver.requests]
        gaps = [later - earlier for earlier, later in itertools.pairwise(at)]
        # Retries after 1, 2 and 4 s: the rows are due then, and a worker's sweep (every
        # 0.5 s here, waking at least once a second) hands them to a new job; the waits
        # grow and none is shorter than its backoff.
        assert gaps[0] < gaps[1] < gaps[2], gaps
        assert all(gap >= interval - 0.1 for gap, interval in zip(gaps, (1, 2, 4), strict=True))
        assert receiver.duplicates == {} and receiver.event_ids() == set(ids)
        with get_state(app).engine.connect() as conn:
            attempts = {
                a for (a,) in conn.exec_driver_sql("SELECT attempts FROM tracking_deliveries")
            }
        assert attempts == {4}


def test_a_receiver_that_times_out_is_retried(setup: Setup) -> None:
    with WebhookReceiver("s") as receiver:
        destination = hook(receiver.url, "s", backoff=1)
        destination["options"]["timeout"] = 0.5
        config = setup.config({"hook": destination})
        app = setup.app(config)
        receiver.stall_next(2, 3.0)  # answers after the sender gave up, keeps nothing
        with worker(config, setup.log()):
            ids = store(app, [event(n) for n in range(50)])
            receiver.wait_for(lambda: len(receiver.counts) == 50, 60, "delivery after timeouts")
            wait_until(lambda: all_delivered(app, "hook", 50), 10, "rows delivered")
        # Two requests timed out on the sender's side (the receiver kept nothing), then one
        # went through. A stalled request is recorded when the receiver answers it, which
        # may be after the retry that went through.
        receiver.wait_for(lambda: len(receiver.requests) == 3, 10, "the stalled answers")
        assert sorted(r.status for r in receiver.requests) == [200, 503, 503]
        assert receiver.duplicates == {} and receiver.event_ids() == set(ids)


def test_a_refusing_receiver_fails_visibly_and_is_redriven(setup: Setup) -> None:
    with WebhookReceiver("s") as receiver:
        config = setup.config({"hook": hook(receiver.url, "s")})
        app = setup.app(config)
        receiver.answer(400)
        with worker(config, setup.log()):
            ids = store(app, [event(n) for n in range(50)])
            wait_until(
                lambda: list(states(app, "hook").values()) == [FAILED] * 50, 30, "failed rows"
            )
            assert len(receiver.requests) == 1  # a 400 is final: no retry
            runner = app.test_cli_runner()
            status = runner.invoke(args=["tracking", "forward"])
            assert status.exit_code == 0, status.output
            assert status.output.splitlines()[1].split() == ["hook", "0", "0", "50"]
            assert "HTTP 400" in status.output and "attempts=1" in status.output

            receiver.answer(200)
            result = runner.invoke(args=["tracking", "forward", "--failed"])
            assert result.exit_code == 0, result.output
            assert "re-driven=50" in result.output and "enqueued=50 jobs=1" in result.output
            receiver.wait_for(lambda: len(receiver.counts) == 50, 30, "the re-driven events")
            wait_until(lambda: all_delivered(app, "hook", 50), 10, "rows delivered")
        assert receiver.duplicates == {} and receiver.event_ids() == set(ids)


def test_redis_stopped_during_ingest_loses_nothing_and_sends_nothing_twice(
    setup: Setup,
) -> None:
    with start_redis_server() as server, WebhookReceiver("s") as receiver:
        config = setup.config({"hook": hook(receiver.url, "s")}, TRACKING_REDIS_URL=server.url)
        app = setup.app(config)
        with worker(config, setup.log()) as w:

            def ingest(batches: range) -> list[str]:
                stored = []
                for batch in batches:
                    started = time.monotonic()
                    stored += store(app, [event(batch * 1000 + n) for n in range(150)], batch=150)
                    assert time.monotonic() - started < 2.0  # not held up by Redis
                return stored

            ids = ingest(range(3))
            receiver.wait_for(lambda: len(receiver.counts) == 450, 60, "the worker at work")
            receiver.hold_next()
            ids += ingest(range(3, 4))
            assert receiver.held.wait(30), w.log()
            server.stop()  # the worker (in the middle of a job) and the app lose Redis
            receiver.release()
            ids += ingest(range(4, 8))
            assert receiver.unique == 600  # nothing more can be forwarded meanwhile
            server.start()  # empty: every job queued before is gone
            ids += ingest(range(8, 12))
            assert len(ids) == 1800
            receiver.wait_for(lambda: len(receiver.counts) == 1800, 90, "all 1800 events")
            wait_until(lambda: all_delivered(app, "hook", 1800), 20, "rows delivered")
            assert w.proc.poll() is None, w.log()
        assert receiver.duplicates == {}
        assert receiver.event_ids() == set(ids)


def test_a_worker_killed_mid_job_loses_nothing(setup: Setup) -> None:
    with WebhookReceiver("s") as receiver:
        config = setup.config({"hook": hook(receiver.url, "s")}, TRACKING_FORWARD_JOB_TIMEOUT=3)
        app = setup.app(config)
        receiver.hold_next()  # takes the first batch, then never answers
        with worker(config, setup.log("first")) as first:
            ids = store(app, [event(n) for n in range(1500)], batch=500)
            assert receiver.held.wait(30), first.log()
            first.kill()  # SIGKILL, in the middle of the job
        receiver.release()
        held = set(receiver.requests[0].keys)
        assert len(held) == 500
        with worker(config, setup.log("second")):
            receiver.wait_for(lambda: len(receiver.counts) == 1500, 60, "all 1500 events")
            wait_until(lambda: all_delivered(app, "hook", 1500), 20, "rows delivered")
        assert receiver.event_ids() == set(ids)
        # Only the batch in flight at the kill came again, with the same idempotency keys:
        # a receiver that honours them has each event exactly once.
        assert receiver.duplicates == dict.fromkeys(held, 2)


def test_pending_rows_are_enqueued_by_the_forward_command(setup: Setup) -> None:
    with start_redis_server() as server, WebhookReceiver("s") as receiver:
        config = setup.config({"hook": hook(receiver.url, "s")}, TRACKING_REDIS_URL=server.url)
        app = setup.app(config)
        server.stop()
        ids = store(app, [event(n) for n in range(700)])
        forwarder_of(app).flush()
        server.start()  # empty: no job survived
        result = app.test_cli_runner().invoke(args=["tracking", "forward", "--pending"])
        assert result.exit_code == 0, result.output
        assert "enqueued=700 jobs=2" in result.output
        with worker(config, setup.log(), "--burst") as w:
            assert w.wait(60) == 0, w.log()
        assert receiver.event_ids() == set(ids) and receiver.duplicates == {}
        assert all_delivered(app, "hook", 700)


def test_slack_email_and_log_destinations_through_a_worker(setup: Setup) -> None:
    smtp = SmtpReceiver()
    path = setup.tmp_path / "forwarded.log"
    try:
        with WebhookReceiver(None) as slack:
            config = setup.config(
                {
                    "chat": {
                        "kind": "slack",
                        "options": {"url": slack.url, "timeout": 2},
                        "route": {"include": [{"event_type": "problem_*"}]},
                    },
                    "mail": {
                        "kind": "email",
                        "options": {
                            "host": "127.0.0.1",
                            "port": smtp.port,
                            "sender": "tracking@example.org",
                            "recipients": ["staff@example.org"],
                            "digest": True,
                            "timeout": 2,
                        },
                        "route": {"include": [{"source": "server"}]},
                        "batch_size": 10,
                    },
                    "file": {"kind": "log", "options": {"path": str(path)}},
                }
            )
            app = setup.app(config)
            events = [
                event(n, event_type="problem_check" if n % 2 else "play_video", source="server")
                for n in range(30)
            ]
            with worker(config, setup.log()):
                ids = store(app, events)
                wait_until(lambda: all_delivered(app, "chat", 15), 30, "slack")
                wait_until(lambda: all_delivered(app, "mail", 30), 30, "email")
                wait_until(lambda: all_delivered(app, "file", 30), 30, "log")
            texts = "\n".join(m["text"] for m in slack.messages)
            assert texts.count("• `problem_check`") == 15 and "play_video" not in texts
            messages = [email.message_from_bytes(raw) for raw in smtp.messages]
            assert len(messages) == 3  # digests of 10
            assert [json.loads(line)["event"]["n"] for line in path.read_text().splitlines()] == [
                e["event"]["n"] for e in events
            ]
            assert len(ids) == 30
    finally:
        smtp.close()
