"""The ``caliper`` destination against a real loopback Caliper endpoint, and end to end
through a real ``flask tracking worker`` with real Redis.

The endpoint (:class:`CaliperEndpoint`) checks the bearer token, validates every envelope
with the spec-based validator (``caliper_spec``) and counts Caliper event ids: each id's
first arrival is a delivery, later ones are duplicates (what an endpoint that honours
event ids drops).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from flask_tracking.caliper import event_urn, to_caliper
from flask_tracking.extension import get_state
from flask_tracking.forwarding import DELIVERED, deliveries_table
from flask_tracking.forwarding.destinations import (
    OutgoingEvent,
    PermanentError,
    RetryableError,
    load_targets,
)
from flask_tracking.logfiles import read_lines
from flask_tracking.logformat import render_line
from flask_tracking.models import events_table
from flask_tracking.tracking_logs import import_lines

from caliper_spec import problems
from forwarding_app import (
    forwarder_of,
    make_app,
    wait_until,
    worker,
    worker_config,
)
from receivers import Request, WebhookReceiver
from support import corpus_path

TOKEN = "caliper-t0ken-123456"


class CaliperEndpoint(WebhookReceiver):
    """A loopback Caliper endpoint: bearer auth, validated envelopes, ids counted."""

    def __init__(self, token: str = TOKEN) -> None:
        super().__init__(None)
        self.token = token
        self.envelopes: list[dict[str, Any]] = []
        self.invalid: list[list[str]] = []

    def handle(
        self,
        path: str,
        headers: dict[str, str],
        body: bytes,
        started: float,
        peer: tuple[str, int] | None = None,
    ) -> tuple[int, bytes]:
        with self.cond:
            kind, value = self._plan.pop(0) if self._plan else ("status", self._default)
        if kind == "status" and value != 200:
            self._record(Request(started, path, value, [], peer, headers))
            return value, b'{"error": "told to fail"}'
        if headers.get("Authorization") != f"Bearer {self.token}":
            self._record(Request(started, path, 401, [], peer, headers))
            # Echoes what it got, as careless endpoints do: the sender must redact it.
            got = headers.get("Authorization", "")
            return 401, json.dumps({"error": f"bad token {got}"}).encode()
        document = json.loads(body)
        found = problems(document)
        if found:
            with self.cond:
                self.invalid.append(found)
            self._record(Request(started, path, 400, [], peer, headers))
            return 400, json.dumps({"errors": found[:5]}).encode()
        ids = [event["id"] for event in document["data"]]
        with self.cond:
            self.envelopes.append(document)
            for event in document["data"]:
                self.counts[event["id"]] = self.counts.get(event["id"], 0) + 1
                self.items.setdefault(event["id"], event)
        self._record(Request(started, path, 200, ids, peer, headers))
        if kind == "hold":
            self.held.set()
            self._release.wait()
        return 200, b"{}"


@pytest.fixture
def endpoint() -> Iterator[CaliperEndpoint]:
    with CaliperEndpoint() as e:
        yield e


def caliper(url: str, **options: Any) -> dict[str, Any]:
    return {
        "kind": "caliper",
        "options": {
            "endpoint": url,
            "token": TOKEN,
            "timeout": 2,
            "platform": "https://lms.example.org",
            **options,
        },
    }


def corpus_lines(limit_unmapped: int = 20) -> list[str]:
    """Every corpus line of a mapped event, and a few unmapped ones."""
    kept, unmapped = [], 0
    for name in ("edx-analytics-pipeline", "json-to-relation", "event-routing-backends"):
        for text in corpus_path(f"{name}.jsonl").read_text().splitlines():
            line = json.loads(text)
            if to_caliper("probe", line):
                kept.append(text)
            elif unmapped < limit_unmapped:
                kept.append(text)
                unmapped += 1
    return kept


def stored_expectation(app: Flask) -> dict[str, list[str]]:
    """Stored event id -> the Caliper ids its edX line maps to (computed independently of
    the worker, from the stored rows)."""
    from flask_tracking.forwarding.outgoing import JSON_COLUMNS, line_columns

    expected = {}
    with get_state(app).engine.connect() as conn:
        for row in conn.execute(select(*line_columns()).select_from(events_table)):
            values = dict(row._mapping)
            for column in JSON_COLUMNS:
                values[column] = None if values[column] is None else json.loads(values[column])
            line = render_line(values)
            expected[row.event_id] = [e["id"] for e in to_caliper(row.event_id, line)]
    return expected


# -- the destination on its own -----------------------------------------------------------


def test_posts_a_valid_envelope_with_the_bearer_token(endpoint: CaliperEndpoint) -> None:
    targets = load_targets({"lrs": caliper(endpoint.url)}, job_timeout=60)
    destination = targets["lrs"].destination
    lines = [json.loads(t) for t in corpus_lines(0)[:30]]
    events = [OutgoingEvent(f"ev-{n}", f"k-{n}", line) for n, line in enumerate(lines)]
    destination.send(events[:20])
    destination.send(events[20:])
    destination.close()
    assert endpoint.invalid == []
    assert set(endpoint.counts) == {event_urn(f"ev-{n}") for n in range(30)}
    request = endpoint.requests[0]
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert request.headers["Content-Type"] == "application/json"
    assert endpoint.requests[0].peer == endpoint.requests[1].peer  # kept alive
    sent = endpoint.envelopes[0]
    assert sent["sensor"] == "https://lms.example.org/sensors/flask-tracking"
    assert sent["dataVersion"] == "http://purl.imsglobal.org/ctx/caliper/v1p2"


def test_status_rules_and_no_token_in_errors(endpoint: CaliperEndpoint) -> None:
    destination = load_targets({"lrs": caliper(endpoint.url)}, job_timeout=60)["lrs"].destination
    line = json.loads(corpus_lines(0)[0])
    event = [OutgoingEvent("ev-1", "k-1", line)]
    endpoint.fail_next(1, 503)
    with pytest.raises(RetryableError):
        destination.send(event)
    wrong = load_targets(
        {"lrs": caliper(endpoint.url, token="wrong-t0ken-999999")}, job_timeout=60
    )["lrs"].destination
    with pytest.raises(PermanentError) as caught:
        wrong.send(event)
    assert "401" in str(caught.value) and "wrong-t0ken-999999" not in str(caught.value)
    destination.send(event)
    assert endpoint.unique == 1
    destination.close()
    wrong.close()


# -- end to end: a real worker, real Redis --------------------------------------------------


@pytest.fixture
def config(database_url: str, tmp_path: Path) -> Iterator[dict[str, Any]]:
    with worker_config(database_url, tmp_path, "cal") as settings:
        yield settings


def _import(app: Flask, tmp_path: Path) -> None:
    path = tmp_path / "corpus.jsonl"
    path.write_text("\n".join(corpus_lines()) + "\n")
    with app.app_context():
        summary = import_lines(get_state().tracker, read_lines([str(path)]))
    assert summary.read > 500


def _delivered(app: Flask) -> set[str]:
    with get_state(app).engine.connect() as conn:
        return {r.state for r in conn.execute(select(deliveries_table.c.state))}


def test_the_corpus_through_a_worker_with_a_failing_endpoint(
    config: dict[str, Any], endpoint: CaliperEndpoint, tmp_path: Path
) -> None:
    full = {**config, "TRACKING_DESTINATIONS": {"lrs": {**caliper(endpoint.url), "backoff": 1}}}
    app = make_app(full)
    try:
        endpoint.fail_next(2, 503)  # the first two batches fail, then are retried
        _import(app, tmp_path)
        expected = stored_expectation(app)
        wanted = {cid for ids in expected.values() for cid in ids}
        assert len(wanted) > 500
        with worker(full, tmp_path / "worker.log") as process:
            endpoint.wait_for(lambda: len(endpoint.counts) >= len(wanted), 90, "every event")
            wait_until(lambda: _delivered(app) == {DELIVERED}, 30, "rows delivered")
            assert process.proc.poll() is None, process.log()
        assert set(endpoint.counts) == wanted
        assert endpoint.duplicates == {} and endpoint.invalid == []
        assert [r.status for r in endpoint.requests[:2]] == [503, 503]
        assert all(r.headers["Authorization"] == f"Bearer {TOKEN}" for r in endpoint.requests)
        # Unmapped events were skipped, and their rows are settled too.
        assert any(not ids for ids in expected.values())
    finally:
        forwarder_of(app).close()
        get_state(app).engine.dispose()


def test_a_resend_after_a_lost_answer_carries_the_same_ids(
    config: dict[str, Any], endpoint: CaliperEndpoint, tmp_path: Path
) -> None:
    destination = {**caliper(endpoint.url, timeout=1), "backoff": 1, "batch_size": 100}
    full = {**config, "TRACKING_DESTINATIONS": {"lrs": destination}}
    app = make_app(full)
    try:
        endpoint.hold_next()  # keeps the first batch, then never answers in time
        _import(app, tmp_path)
        expected = stored_expectation(app)
        wanted = {cid for ids in expected.values() for cid in ids}
        with worker(full, tmp_path / "worker.log") as process:
            assert endpoint.held.wait(60), process.log()
            endpoint.wait_for(lambda: len(endpoint.counts) >= len(wanted), 90, "every event")
            endpoint.release()
            wait_until(lambda: _delivered(app) == {DELIVERED}, 30, "rows delivered")
        first = endpoint.envelopes[0]
        held = {e["id"] for e in first["data"]}
        again = [e for e in endpoint.envelopes[1:] if {d["id"] for d in e["data"]} & held]
        assert again, "the held batch was sent again"
        resent = sorted((d for e in again for d in e["data"]), key=lambda d: d["id"])
        assert resent == sorted(first["data"], key=lambda d: d["id"])  # same events and ids
        assert set(endpoint.duplicates) == {e["id"] for e in first["data"]}
        assert set(endpoint.counts) == wanted and endpoint.invalid == []
    finally:
        endpoint.release()
        forwarder_of(app).close()
        get_state(app).engine.dispose()


def test_a_worker_killed_mid_send_loses_nothing(
    config: dict[str, Any], endpoint: CaliperEndpoint, tmp_path: Path
) -> None:
    destination = {**caliper(endpoint.url, timeout=4), "backoff": 1}
    full = {**config, "TRACKING_DESTINATIONS": {"lrs": destination}}
    app = make_app(full)
    try:
        endpoint.hold_next()  # the endpoint takes the first batch; the worker dies waiting
        _import(app, tmp_path)
        wanted = {cid for ids in stored_expectation(app).values() for cid in ids}
        with worker(full, tmp_path / "first.log") as first:
            assert endpoint.held.wait(60), first.log()
            first.kill()  # kill -9 of its process group, mid-send
        endpoint.release()
        held = {e["id"] for e in endpoint.envelopes[0]["data"]}
        with worker(full, tmp_path / "second.log") as second:
            endpoint.wait_for(lambda: len(endpoint.counts) >= len(wanted), 90, "every event")
            wait_until(lambda: _delivered(app) == {DELIVERED}, 60, "rows delivered")
            assert second.proc.poll() is None, second.log()
        assert set(endpoint.counts) == wanted and endpoint.invalid == []
        # Only the batch the endpoint took before the kill came again, with the same ids.
        assert set(endpoint.duplicates) <= held
    finally:
        endpoint.release()
        forwarder_of(app).close()
        get_state(app).engine.dispose()
