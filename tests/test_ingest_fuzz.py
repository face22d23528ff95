"""Property tests: random and malformed bodies never get a 500, and nothing is lost.

For every request, each event is either stored, a duplicate, or in the failed table.
"""

from __future__ import annotations

import json
import uuid
from typing import Any
from urllib.parse import urlencode

import pytest
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from flask_tracking.models import FailedEvent, TrackingEvent

CONTENT_TYPES = st.sampled_from(
    [
        "application/json",
        "text/plain;charset=UTF-8",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=xyz",
        "application/octet-stream",
        "",
        "text/plain; charset=latin-1",
    ]
)
TYPES = st.sampled_from(
    [
        "play_video",
        "pause_video",
        "seq_goto",
        "book",
        "page_close",
        "problem_check",
        "showanswer",
        "problem_graded",
        "made.up",
        "",
    ]
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
events = st.fixed_dictionaries(
    {},
    optional={
        "id": st.uuids().map(str) | st.text(max_size=10) | st.integers(),
        "event_type": TYPES | st.text(max_size=30) | json_values,
        "event": json_values | st.text(max_size=60),
        "page": st.text(max_size=40) | json_values,
        "time": st.integers(min_value=-(10**16), max_value=10**16) | st.floats() | st.text(),
        "seq": st.integers() | st.text(max_size=3),
        "username": st.text(max_size=8),
    },
)
batches = st.fixed_dictionaries(
    {"events": st.lists(events | json_values, max_size=8)},
    optional={"sent_at": st.integers(min_value=-(10**16), max_value=10**16) | st.floats()},
)


def count(app: Flask, model: Any) -> int:
    with app.extensions["tracking"].engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(model)).scalar_one())


def post(app: Flask, path: str, body: bytes, content_type: str) -> Any:
    headers = {"Content-Type": content_type} if content_type else {}
    return app.test_client().post(path, data=body, headers=headers)


def check_nothing_lost(app: Flask, answer: Any, sent: int, before: tuple[int, int]) -> None:
    """Every event sent is stored, a duplicate, or kept in the failed table."""
    assert answer.status_code < 500, answer.get_data(as_text=True)
    assert answer.is_json, answer.get_data(as_text=True)
    stored, failed = count(app, TrackingEvent) - before[0], count(app, FailedEvent) - before[1]
    if answer.status_code == 200:
        body = answer.json
        assert body["accepted"] == stored
        assert len(body["failed"]) == failed
        assert body["accepted"] + body["duplicates"] + len(body["failed"]) == sent
    else:
        assert stored == 0
        assert failed >= 1, answer.json  # the refused request is kept, raw


FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@FUZZ
@given(
    body=st.binary(max_size=300),
    content_type=CONTENT_TYPES,
    path=st.sampled_from(["/activity/events", "/activity/event"]),
)
def test_random_bytes_never_get_a_500(
    app: Flask, body: bytes, content_type: str, path: str
) -> None:
    before = (count(app, TrackingEvent), count(app, FailedEvent))
    answer = post(app, path, body, content_type)
    assert answer.status_code < 500
    if answer.status_code >= 400:
        assert count(app, FailedEvent) > before[1]


@FUZZ
@given(body=batches, content_type=st.sampled_from(["application/json", "text/plain"]))
def test_random_batches_lose_nothing(app: Flask, body: dict[str, Any], content_type: str) -> None:
    before = (count(app, TrackingEvent), count(app, FailedEvent))
    answer = post(app, "/activity/events", json.dumps(body).encode(), content_type)
    check_nothing_lost(app, answer, len(body["events"]), before)


@FUZZ
@given(
    fields=st.dictionaries(
        st.sampled_from(
            [
                "event_type",
                "event",
                "page",
                "courserun_key",
                "username",
                "tracking_event_type",
                "event_data",
                "node_id",
            ]
        ),
        st.text(max_size=40),
        max_size=6,
    ),
    as_json=st.booleans(),
)
def test_random_edx_posts_lose_nothing(app: Flask, fields: dict[str, str], as_json: bool) -> None:
    before = (count(app, TrackingEvent), count(app, FailedEvent))
    if as_json:
        answer = post(app, "/activity/event", json.dumps(fields).encode(), "application/json")
    else:
        answer = post(
            app, "/activity/event", urlencode(fields).encode(), "application/x-www-form-urlencoded"
        )
    assert answer.status_code in (200, 400), answer.json
    if answer.status_code == 200:
        assert count(app, TrackingEvent) == before[0] + 1
    else:
        assert count(app, FailedEvent) == before[1] + 1


@FUZZ
@given(size=st.integers(min_value=0, max_value=700_000), n=st.integers(min_value=0, max_value=600))
def test_sizes_get_413_or_are_stored(app: Flask, size: int, n: int) -> None:
    pad = "x" * (size // max(n, 1))
    body = {
        "sent_at": 1,
        "events": [
            {"id": str(uuid.uuid4()), "event_type": "made.up", "event": {"pad": pad}, "time": 1}
            for _ in range(n)
        ],
    }
    raw = json.dumps(body).encode()
    before = (count(app, TrackingEvent), count(app, FailedEvent))
    answer = post(app, "/activity/events", raw, "application/json")
    if len(raw) > 512 * 1024 or n > 500:
        assert answer.status_code == 413
    else:
        assert answer.status_code == 200
    check_nothing_lost(app, answer, n, before)


@pytest.mark.parametrize("path", ["/activity/events", "/activity/event"])
def test_lone_surrogates_and_nuls_are_refused_not_500(app: Flask, path: str) -> None:
    nasty = (
        '{"sent_at": 1, "events": [{"id": "%s", "event_type": "x\\u0000", "event": '
        '{"a": "\\ud800"}, "page": "\\udfff", "time": 1}], "event_type": "\\ud800"}'
    )
    before = (count(app, TrackingEvent), count(app, FailedEvent))
    answer = post(app, path, (nasty % uuid.uuid4()).encode(), "application/json")
    assert answer.status_code in (200, 400)
    assert count(app, FailedEvent) > before[1]
