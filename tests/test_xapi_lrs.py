"""The ``xapi`` destination against a real LRS: ralph, fed by real ``flask tracking worker``s.

Real ralph (``tests/lrs_service.py``), real Redis (database 13, a queue per test), real
worker processes, the real corpus. Every wait polls a condition with a deadline.
"""

from __future__ import annotations

import contextlib
import json
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from flask_tracking.extension import get_state
from flask_tracking.forwarding import DELIVERED, PENDING, OutgoingEvent, deliveries_table
from flask_tracking.forwarding.destinations.xapi import XapiDestination
from flask_tracking.logformat import render_line
from flask_tracking.lrs import Mapping, to_statement
from flask_tracking.models import events_table
from flask_tracking.tracking_logs import import_lines

from forwarding_app import (
    event,
    forwarder_of,
    make_app,
    store,
    wait_until,
    worker,
    worker_config,
)
from lrs_service import PASSWORD, USERNAME, RalphLRS, ralph_or_skip
from support import corpus_path

D = deliveries_table
PLATFORM = "https://lms.example.org"
CORPUS = ("edx-analytics-pipeline.jsonl", "event-routing-backends.jsonl", "json-to-relation.jsonl")


@pytest.fixture
def lrs() -> Iterator[RalphLRS]:
    server = ralph_or_skip()
    yield server
    server.close()


@pytest.fixture
def config(database_url: str, tmp_path: Path, lrs: RalphLRS) -> Iterator[dict[str, Any]]:
    destination = {
        "kind": "xapi",
        "options": {
            "endpoint": lrs.endpoint,
            "platform_url": PLATFORM,
            "username": USERNAME,
            "password": PASSWORD,
            "timeout": 3,
        },
        "backoff": 1,
        "backoff_max": 2,
        "batch_size": 100,
    }
    with worker_config(
        database_url, tmp_path, "xapi", TRACKING_DESTINATIONS={"lrs": destination}
    ) as settings:
        yield settings


@pytest.fixture
def app(config: dict[str, Any]) -> Iterator[Flask]:
    made = make_app(config)
    yield made
    forwarder_of(made).close()
    get_state(made).engine.dispose()


def rows(app: Flask) -> list[Any]:
    with get_state(app).engine.connect() as conn:
        return list(conn.execute(select(D).order_by(D.c.id)))


def all_delivered(app: Flask, count: int) -> bool:
    found = rows(app)
    return len(found) == count and all(r.state == DELIVERED for r in found)


def expected_statements(app: Flask) -> dict[str, dict[str, Any]]:
    """statement id -> statement, for every stored event the mapping sends."""
    mapping = Mapping(PLATFORM)
    out = {}
    with get_state(app).engine.connect() as conn:
        for row in conn.execute(select(events_table)):
            statement = to_statement(render_line(row._mapping), row.event_id, mapping)
            if statement is not None:
                out[statement["id"]] = statement
    return out


def videos(count: int) -> list[dict[str, Any]]:
    return [
        event(n, event_type="play_video", source="browser",
              payload=json.dumps({"id": f"block-v1:Org+Num+Run+type@video+block@v{n}",
                                  "currentTime": n / 2, "code": "html5"}))
        for n in range(count)
    ]  # fmt: skip


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
def test_every_mapped_event_of_the_corpus_is_stored_and_retrievable(
    app: Flask, config: dict[str, Any], lrs: RalphLRS, tmp_path: Path
) -> None:
    with worker(config, tmp_path / "worker.log") as process:
        with app.app_context():
            lines = [
                (name, number, text)
                for name in CORPUS
                for number, text in enumerate(corpus_path(name).read_text().splitlines(), 1)
            ]
            summary = import_lines(get_state().tracker, lines)
        wait_until(lambda: all_delivered(app, summary.stored), 60, "every delivery")
        assert process.proc.poll() is None, process.log()
    expected = expected_statements(app)
    kinds = Counter(s["verb"]["id"] for s in expected.values())
    assert len(expected) > 550 and len(kinds) >= 10, kinds
    # Anonymisation is on (the default): actors are accounts named by the anonymous id,
    # never by a user name, a user id of the logs or an email.
    names = {s["actor"]["account"]["name"] for s in expected.values()}
    originals = set()
    for _, _, text in lines:
        with contextlib.suppress(ValueError):
            line = json.loads(text)
            context = line.get("context") if isinstance(line, dict) else None
            originals.add(str(line.get("username")) if isinstance(line, dict) else "")
            originals.add(str(context.get("user_id")) if isinstance(context, dict) else "")
    assert not names & originals and not any("@" in n for n in names)
    assert all(set(s["actor"]) == {"objectType", "account"} for s in expected.values())
    stored = lrs.stored_ids()
    assert sorted(stored) == sorted(expected)  # each statement once, nothing else
    for statement_id, statement in expected.items():
        found = lrs.get_statement(statement_id)
        assert found is not None, statement_id
        for key in ("actor", "verb", "object", "timestamp"):
            assert found[key] == statement[key], (key, found[key], statement[key])
        assert found.get("result") == statement.get("result")


def test_the_lrs_down_for_a_while_then_every_statement_stored_once(
    app: Flask, config: dict[str, Any], lrs: RalphLRS, tmp_path: Path
) -> None:
    with worker(config, tmp_path / "worker.log") as process:
        lrs.stop()
        ids = store(app, videos(30))

        def failing() -> bool:
            found = rows(app)
            return len(found) == 30 and all(
                r.state == PENDING and r.attempts >= 2 and "POST" in (r.last_error or "")
                for r in found
            )

        wait_until(failing, 30, "two failed attempts while the LRS is down")
        assert lrs.stored_ids() == []
        lrs.start()
        wait_until(lambda: all_delivered(app, 30), 30, "the retries once the LRS is back")
        assert process.proc.poll() is None, process.log()
    expected = expected_statements(app)
    assert len(expected) == len(ids) == 30
    assert sorted(lrs.stored_ids()) == sorted(expected)
    assert all(lrs.get_statement(sid) is not None for sid in expected)


def test_a_worker_killed_before_the_lrs_read_its_batch_loses_nothing(
    app: Flask, config: dict[str, Any], lrs: RalphLRS, tmp_path: Path
) -> None:
    lrs.freeze()  # the first POST waits, unread, in ralph's socket
    with worker(config, tmp_path / "first.log") as first:
        store(app, videos(20))
        wait_until(lambda: lrs.queued_bytes() > 0, 30, "the batch to reach the LRS")
        first.kill()  # SIGKILL while it waits for the answer
    lrs.thaw()  # ralph sees a client gone before it read the body: it stores nothing
    found = rows(app)
    assert len(found) == 20 and all(r.state == PENDING and r.claim_token for r in found)
    with worker(config, tmp_path / "second.log") as second:
        # Once the dead worker's lease ends, the second worker sends the batch again.
        wait_until(lambda: all_delivered(app, 20), 40, "the re-send by the second worker")
        assert second.proc.poll() is None, second.log()
    expected = expected_statements(app)
    assert sorted(lrs.stored_ids()) == sorted(expected) and len(expected) == 20


def test_a_worker_killed_after_the_lrs_stored_its_batch_stores_nothing_twice(
    app: Flask, config: dict[str, Any], lrs: RalphLRS, tmp_path: Path
) -> None:
    lrs.hold_answers()  # ralph stores the batch, then holds its answer
    with worker(config, tmp_path / "first.log") as first:
        store(app, videos(20))
        wait_until(lambda: len(lrs.stored_ids()) == 20, 30, "ralph to store the batch")
        first.kill()  # SIGKILL before the answer came: the rows stay claimed, unsettled
    lrs.release()
    found = rows(app)
    assert len(found) == 20 and all(r.state == PENDING and r.claim_token for r in found)
    with worker(config, tmp_path / "second.log") as second:
        # The re-send carries the same statement ids with the same content: ralph answers
        # 204 and stores none of them again.
        wait_until(lambda: all_delivered(app, 20), 40, "the re-send by the second worker")
        assert second.proc.poll() is None, second.log()
    expected = expected_statements(app)
    assert sorted(lrs.stored_ids()) == sorted(expected) and len(expected) == 20
    assert all(r.attempts == 1 for r in rows(app))  # the dead worker's attempt never settled


def test_a_409_counts_as_delivered_and_the_rest_of_the_batch_is_stored(lrs: RalphLRS) -> None:
    destination = XapiDestination(
        "lrs",
        {"endpoint": lrs.endpoint, "platform_url": PLATFORM, "username": USERNAME,
         "password": PASSWORD, "timeout": 3},
    )  # fmt: skip
    events = [
        OutgoingEvent(f"event-{n}", f"key-{n}", render_line(line))
        for n, line in enumerate(videos(3))
    ]
    taken = destination.statement(events[0])
    assert taken is not None
    # Another client stored a different statement under the id of event 0's statement.
    other = {**taken, "verb": {"id": "http://adlnet.gov/expapi/verbs/experienced"}}
    request = urllib.request.Request(
        f"{lrs.endpoint}/xAPI/statements",
        data=json.dumps([other]).encode(),
        headers={**lrs.headers(), "Content-Type": "application/json"},
    )
    urllib.request.urlopen(request, timeout=10).close()
    destination.send(events)  # ralph refuses the batch (409): sent one by one, no error
    assert lrs.get_statement(taken["id"])["verb"] == other["verb"]  # type: ignore[index]
    for outgoing in events[1:]:
        statement = destination.statement(outgoing)
        assert statement is not None and lrs.get_statement(statement["id"]) is not None
    destination.send(events)  # the whole batch again: 409 again, nothing stored twice
    assert len(lrs.stored_ids()) == len(set(lrs.stored_ids())) == 3
    destination.close()
