"""Routing rules (one test per rule kind) and field stripping; filtering before enqueue."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from flask import Flask
from rq import Queue
from sqlalchemy import select

from flask_tracking.forwarding import Route, deliveries_table

from forwarding_app import (
    FAST,
    clean_redis,
    event,
    forwarder_of,
    make_app,
    redis_db_url,
    states,
    store,
)
from receivers import WebhookReceiver
from services import get_or_skip, redis_url
from support import partition_config


def route(**config: Any) -> Route:
    return Route.from_config("route", config)


def test_event_type_globs() -> None:
    r = route(include=[{"event_type": ["problem_*", "edx.video.play"]}])
    assert r.matches("problem_check", "server", None)
    assert r.matches("edx.video.play", "browser", "c")
    assert not r.matches("edx.video.pause", "browser", "c")
    assert not r.matches("Problem_check", "server", None)  # case sensitive
    assert route(include={"event_type": "edx.*"}).matches("edx.video.play", "browser", None)


def test_source_rule() -> None:
    r = route(include=[{"source": "server"}])
    assert r.matches("showanswer", "server", None)
    assert not r.matches("play_video", "browser", None)
    assert route(include=[{"source": ["mobile", "browser"]}]).matches("x", "mobile", None)


def test_course_rule() -> None:
    r = route(include=[{"course": "course-v1:MITx+*"}])
    assert r.matches("x", "server", "course-v1:MITx+6.002x+2024")
    assert not r.matches("x", "server", "course-v1:HarvardX+CS50+2024")
    assert not r.matches("x", "server", None)  # no course: matches only globs that match ""
    assert route(include=[{"course": ["", "course-v1:*"]}]).matches("x", "server", None)


def test_rules_combine_and_within_or_across() -> None:
    r = route(
        include=[
            {"event_type": "problem_*", "source": "server"},
            {"course": "course-v1:Org+*"},
        ]
    )
    assert r.matches("problem_check", "server", None)
    assert not r.matches("problem_check", "browser", None)
    assert r.matches("play_video", "browser", "course-v1:Org+Num+Run")
    assert route().matches("anything", "browser", None)  # no include: everything


def test_exclude_rule() -> None:
    r = route(include=[{"source": "browser"}], exclude=[{"event_type": ["page_close", "seq_*"]}])
    assert r.matches("play_video", "browser", None)
    assert not r.matches("page_close", "browser", None)
    assert not r.matches("seq_next", "browser", None)
    assert route(exclude={"course": "course-v1:Secret+*"}).matches("x", "server", None)


def test_drop_fields() -> None:
    line = {
        "username": "ann",
        "ip": "198.51.100.7",
        "context": {"user_id": 7, "course_id": "c", "module": {"display_name": "Quiz"}},
        "event": '{"id": "v1", "answers": {"q1": "a"}}',
        "event_type": "problem_check",
    }
    original = json.loads(json.dumps(line))
    r = route(
        drop_fields=[
            "username",
            "ip",
            "context.user_id",
            "context.module.display_name",
            "event.answers",
            "no.such.field",
        ]
    )
    stripped = r.strip(line)
    assert "username" not in stripped and "ip" not in stripped
    assert stripped["context"] == {"course_id": "c", "module": {}}
    assert json.loads(stripped["event"]) == {"id": "v1"}
    assert line == original  # the input is left alone
    assert route().strip(line) is line


@pytest.fixture
def app(database_url: str, tmp_path: Path) -> Iterator[Any]:
    made: list[Flask] = []

    def factory(destinations: dict[str, Any], **config: Any) -> Flask:
        app = make_app(
            {
                "INSTANCE_PATH": str(tmp_path / "instance"),
                "TRACKING_DATABASE_URL": database_url,
                **partition_config(database_url),
                "TRACKING_DESTINATIONS": destinations,
                **FAST,
                **config,
            }
        )
        made.append(app)
        return app

    yield factory
    for app in made:
        forwarder_of(app).close()
        app.extensions["tracking"].engine.dispose()


def sample() -> list[dict[str, Any]]:
    return [
        event(0, event_type="problem_check", source="server", course="course-v1:MITx+A+1"),
        event(1, event_type="problem_check", source="browser", course="course-v1:MITx+A+1"),
        event(2, event_type="play_video", source="browser", course="course-v1:Harv+B+1"),
        event(3, event_type="page_close", source="browser", course=None),
        event(4, event_type="edx.course.enrollment.activated", source="server", course=None),
    ]


ROUTES = {
    "graded": {"include": [{"event_type": "problem_*", "source": "server"}]},
    "mitx": {"include": [{"course": "course-v1:MITx+*"}]},
    "browser": {"include": [{"source": "browser"}], "exclude": [{"event_type": "page_close"}]},
    "none": {"include": [{"event_type": "no.such.event"}]},
}


def test_only_matching_pairs_get_delivery_rows(app: Any, tmp_path: Path) -> None:
    log = str(tmp_path / "x.log")
    destinations = {
        name: {"kind": "log", "options": {"path": log}, "route": r} for name, r in ROUTES.items()
    }
    flask_app = app(destinations)
    forwarder_of(flask_app).close()
    ids = store(flask_app, sample())
    assert set(states(flask_app, "graded")) == {ids[0]}
    assert set(states(flask_app, "mitx")) == {ids[0], ids[1]}
    assert set(states(flask_app, "browser")) == {ids[1], ids[2]}
    assert states(flask_app, "none") == {}


def test_filtering_happens_before_jobs_are_enqueued(app: Any, tmp_path: Path) -> None:
    url = redis_db_url(get_or_skip(redis_url))
    queue = f"route-{uuid.uuid4().hex[:8]}"
    destinations = {
        name: {"kind": "log", "options": {"path": str(tmp_path / "x.log")}, "route": r}
        for name, r in ROUTES.items()
    }
    try:
        flask_app = app(
            destinations,
            TRACKING_REDIS_URL=url,
            TRACKING_FORWARD_QUEUE=queue,
            TRACKING_FORWARD_LINGER=30,  # gathered until flush()
        )
        for one in sample():  # each event stored in its own transaction
            store(flask_app, [one])
        forwarder_of(flask_app).flush()
        client = redis.Redis.from_url(url)
        try:
            jobs = Queue(queue, connection=client).get_jobs()
            by_destination: dict[str, list[int]] = {}
            for job in jobs:
                destination, pks = job.args
                assert destination not in by_destination  # one job: the events were gathered
                by_destination[destination] = pks
        finally:
            client.close()
        rows: dict[str, list[int]] = {}
        with forwarder_of(flask_app).outbox.engine.connect() as conn:
            for pk, destination in conn.execute(
                select(deliveries_table.c.event_pk, deliveries_table.c.destination)
            ):
                rows.setdefault(destination, []).append(pk)
        assert {k: sorted(v) for k, v in by_destination.items()} == {
            k: sorted(v) for k, v in rows.items()
        }
        assert "none" not in by_destination
        assert len(by_destination["graded"]) == 1
    finally:
        clean_redis(url, queue)


def test_stripped_fields_never_leave(app: Any) -> None:
    with WebhookReceiver("s") as receiver:
        flask_app = app(
            {
                "outside": {
                    "kind": "webhook",
                    "options": {"url": receiver.url, "secret": "s", "timeout": 2},
                    "route": {"drop_fields": ["username", "ip", "context.user_id", "event.n"]},
                },
                "inside": {
                    "kind": "webhook",
                    "options": {"url": receiver.url, "secret": "s", "timeout": 2},
                },
            }
        )
        store(flask_app, [event(n, username=f"user{n}") for n in range(10)])
        receiver.wait_for(lambda: len(receiver.counts) == 20, 30, "both destinations")
        sent = list(receiver.items.values())
        outside = [i["data"] for i in sent if i["idempotency_key"] in _keys(receiver, "outside")]
        inside = [i["data"] for i in sent if i["idempotency_key"] not in _keys(receiver, "outside")]
        assert len(outside) == len(inside) == 10
        for line in outside:
            assert "username" not in line and "ip" not in line
            assert "user_id" not in line["context"]
            assert line["event"] == {}
        for line in inside:
            assert line["username"].startswith("user") and line["ip"] == "198.51.100.7"
            assert "user_id" in line["context"]
        forwarder_of(flask_app).close()


def _keys(receiver: WebhookReceiver, destination: str) -> set[str]:
    from flask_tracking.forwarding.batches import idempotency_key

    return {idempotency_key(destination, i["event_id"]) for i in receiver.items.values()}
