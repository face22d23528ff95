"""Without Redis (the embedded default) the app forwards in its own thread after the commit."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from flask_tracking.forwarding import DELIVERED, FAILED, PENDING

from forwarding_app import FAST, event, forwarder_of, make_app, states, store, wait_until
from receivers import WebhookReceiver
from support import partition_config

SECRET = "in-process-secret"


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver(SECRET) as r:
        yield r


def webhook(url: str, **extra: Any) -> dict[str, Any]:
    return {"kind": "webhook", "options": {"url": url, "secret": SECRET, "timeout": 2}, **extra}


@pytest.fixture
def make(database_url: str, tmp_path: Path) -> Iterator[Any]:
    apps: list[Flask] = []

    def factory(destinations: dict[str, Any], **config: Any) -> Flask:
        settings = {
            "INSTANCE_PATH": str(tmp_path / "instance"),
            "TRACKING_DATABASE_URL": database_url,
            **partition_config(database_url),
            "TRACKING_DESTINATIONS": destinations,
            **FAST,
            **config,
        }
        app = make_app(settings)
        apps.append(app)
        return app

    yield factory
    for app in apps:
        forwarder_of(app).close()
        app.extensions["tracking"].engine.dispose()


def test_events_are_forwarded_in_process_after_the_commit(
    make: Any, receiver: WebhookReceiver
) -> None:
    app = make({"hook": webhook(receiver.url)})
    assert not forwarder_of(app).uses_rq
    events = [event(n) for n in range(1200)]
    ids = store(app, events, batch=300)
    assert len(ids) == 1200
    receiver.wait_for(lambda: len(receiver.counts) == 1200, 30, "1200 events")
    assert receiver.event_ids() == set(ids)
    assert receiver.duplicates == {} and receiver.bad_signatures == 0
    wait_until(
        lambda: set(states(app, "hook").values()) == {DELIVERED}, 10, "rows marked delivered"
    )
    # Batches, not one request per event.
    assert len(receiver.requests) <= 8


def test_single_emits_are_gathered_into_batches(make: Any, receiver: WebhookReceiver) -> None:
    app = make({"hook": webhook(receiver.url)}, TRACKING_FORWARD_LINGER=0.3)
    ids = [store(app, [event(n)])[0] for n in range(40)]
    receiver.wait_for(lambda: len(receiver.counts) == 40, 20, "40 events")
    assert receiver.event_ids() == set(ids)
    assert len(receiver.requests) < 10


def test_retries_in_process_then_delivers(make: Any, receiver: WebhookReceiver) -> None:
    app = make({"hook": webhook(receiver.url, backoff=1, max_attempts=5)})
    receiver.fail_next(2, 503)
    ids = store(app, [event(n) for n in range(10)])
    receiver.wait_for(lambda: len(receiver.counts) == 10, 30, "10 events after 2 failures")
    assert [r.status for r in receiver.requests] == [503, 503, 200]
    gaps = [b.at - a.at for a, b in itertools.pairwise(receiver.requests)]
    assert gaps[0] >= 0.9 and gaps[1] >= 1.8  # backoff 1 s, then 2 s
    wait_until(lambda: set(states(app, "hook").values()) == {DELIVERED}, 10, "delivered")
    assert receiver.event_ids() == set(ids)


def test_pending_rows_of_a_previous_process_are_swept_and_delivered(
    make: Any, receiver: WebhookReceiver
) -> None:
    # An app stores events but its process "dies" before forwarding them.
    first = make({"hook": webhook(receiver.url)})
    forwarder_of(first).close()  # nothing will be handed to its thread any more
    ids = store(first, [event(n) for n in range(30)])
    assert set(states(first, "hook").values()) == {PENDING}
    assert receiver.unique == 0
    # The next process sweeps them as soon as its forwarding thread starts.
    second = make({"hook": webhook(receiver.url)})
    second.test_client().get("/activity/health")
    receiver.wait_for(lambda: len(receiver.counts) == 30, 30, "the swept events")
    assert receiver.event_ids() == set(ids)
    assert receiver.duplicates == {}


def test_forward_command_without_redis_delivers_here(make: Any, receiver: WebhookReceiver) -> None:
    app = make({"hook": webhook(receiver.url)})
    receiver.answer(400)
    forwarder_of(app).close()
    ids = store(app, [event(n) for n in range(5)])
    runner = app.test_cli_runner()

    result = runner.invoke(args=["tracking", "forward", "--pending"])
    assert result.exit_code == 0, result.output
    assert "delivered=0 failed=5" in result.output
    status = runner.invoke(args=["tracking", "forward"])
    assert status.exit_code == 0
    assert "hook" in status.output and "HTTP 400" in status.output
    assert states(app, "hook") == dict.fromkeys(ids, FAILED)

    receiver.answer(200)
    result = runner.invoke(args=["tracking", "forward", "--failed"])
    assert result.exit_code == 0, result.output
    assert "re-driven=5" in result.output and "delivered=5" in result.output
    assert states(app, "hook") == dict.fromkeys(ids, DELIVERED)
    assert receiver.event_ids() == set(ids)


def test_worker_command_needs_redis(make: Any, receiver: WebhookReceiver) -> None:
    app = make({"hook": webhook(receiver.url)})
    result = app.test_cli_runner().invoke(args=["tracking", "worker"])
    assert result.exit_code != 0
    assert "TRACKING_REDIS_URL is not set" in result.output
