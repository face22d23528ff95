"""An app's own event types, end to end on SQLite and PostgreSQL.

The app registers a server type (two versions), a browser type and one for both; valid
events are stored with the version that checked them and invalid ones refused with
field-named reasons, on every path: emit, track, the edX endpoint, batches and import.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from flask_tracking import Tracking
from flask_tracking.catalog import EventTypeError
from flask_tracking.event import new_event

from catalog_app import (
    BOOKMARK,
    ENROLL,
    QUIZ,
    EnrollmentV1,
    EnrollmentV2,
    item,
    make_tracking,
    prefix,
    reasons,
    stored,
)
from support import AppFactory


@pytest.fixture
def app(make_app: AppFactory) -> Flask:
    return make_app(make_tracking(), TRACKING_ANONYMIZE=False)


# --- every path -----------------------------------------------------------------------


def test_emit_checks_a_registered_server_type(app: Flask) -> None:
    with app.app_context():
        ext = app.extensions["tracking"]
        good = ext.tracker.emit(ENROLL, {"course_id": "c1", "mode": "audit", "price": None})
        bad = ext.tracker.emit(ENROLL, {"course_id": "c1", "mode": "gold", "price": 1.0})
    assert good is not None and good["schema_version"] == 2
    assert bad is None
    assert stored(app) == [(ENROLL, "server", 2)]
    assert reasons(app) == [{"event": {"mode": ["Must be one of: audit, verified."]}}]


def test_track_checks_a_registered_type(make_app: AppFactory) -> None:
    tracking = make_tracking()
    app = make_app(tracking, TRACKING_ANONYMIZE=False)
    with app.app_context():
        user = {"id": 7, "username": "ada"}
        assert tracking.track(BOOKMARK, user, {"url": "/u/1"}) is not None
        assert tracking.track(BOOKMARK, user, {"url": 5}) is None
        assert tracking.track(ENROLL, user, {"course_id": "c", "mode": "audit"}) is None
    assert stored(app) == [(BOOKMARK, "server", 1)]
    assert reasons(app) == [
        {"event": {"url": ["Not a valid string."]}},
        {"event": {"price": ["Missing data for required field."]}},
    ]


def test_the_edx_endpoint_checks_a_registered_browser_type(app: Flask) -> None:
    client = app.test_client()
    url = f"{prefix(app)}/event"
    good = client.post(
        url, data={"event_type": QUIZ, "event": json.dumps({"quiz_id": "q", "attempt": 2})}
    )
    assert good.status_code == 200
    bad = client.post(
        url, data={"event_type": QUIZ, "event": json.dumps({"quiz_id": "q", "attempt": "2"})}
    )
    assert bad.status_code == 400
    assert bad.json["errors"] == {"event": {"attempt": ["Not a valid integer."]}}
    server_only = client.post(url, data={"event_type": ENROLL, "event": "{}"})
    assert server_only.status_code == 400
    assert server_only.json["errors"] == {
        "event_type": [f"{ENROLL} is a server event and cannot be sent from the browser."]
    }
    assert stored(app) == [(QUIZ, "browser", 1)]


def test_a_batch_checks_each_event_by_its_registered_schema(app: Flask) -> None:
    client = app.test_client()
    events = [
        item(QUIZ, {"quiz_id": "q", "attempt": 1}),
        item(QUIZ, {"attempt": 1}),
        item(BOOKMARK, {"url": "/p"}),
        item(BOOKMARK, json.dumps({"url": None})),
        item("play_video", {"id": "v", "code": "html5", "currentTime": 1}),
    ]
    answer = client.post(
        f"{prefix(app)}/events", json={"sent_at": time.time() * 1000, "events": events}
    )
    assert answer.status_code == 200
    assert answer.json["accepted"] == 3
    errors = {f["index"]: f["errors"] for f in answer.json["failed"]}
    assert errors == {
        1: {"event": {"quiz_id": ["Missing data for required field."]}},
        3: {"event": {"url": ["Field may not be null."]}},
    }
    assert stored(app) == [
        (QUIZ, "browser", 1),
        (BOOKMARK, "browser", 1),
        ("play_video", "browser", 1),
    ]


def test_import_checks_registered_types(app: Flask, tmp_path: Path) -> None:
    def line(event_type: str, source: str, data: Any) -> str:
        return json.dumps(
            {"event_type": event_type, "event_source": source, "time": "2026-01-05T10:00:00+00:00",
             "event": data, "context": {}, "username": "ada"}
        )  # fmt: skip

    log = tmp_path / "tracking.log"
    log.write_text(
        "\n".join(
            [
                line(ENROLL, "server", {"course_id": "c", "mode": "audit", "price": 0.0}),
                line(ENROLL, "server", {"course_id": "c", "mode": "audit"}),
                line(QUIZ, "browser", json.dumps({"quiz_id": "q", "attempt": 1})),
                line(QUIZ, "browser", json.dumps({"quiz_id": 1, "attempt": 1})),
                line("myapp.other", "server", {}),
            ]
        )
        + "\n"
    )
    result = app.test_cli_runner().invoke(args=["tracking", "import", str(log)])
    assert result.exit_code == 0, result.output
    assert "read=5 stored=3 duplicates=0 failed=2" in result.output
    # (A COPY chunk is stored in event-id order: the rows' order is not the file's.)
    assert sorted(stored(app), key=repr) == sorted(
        [(ENROLL, "server", 2), (QUIZ, "browser", 1), ("myapp.other", "server", None)], key=repr
    )
    assert reasons(app) == [
        {"event": {"price": ["Missing data for required field."]}},
        {"event": {"quiz_id": ["Not a valid string."]}},
    ]


def test_unknown_types_are_refused_when_configured(make_app: AppFactory) -> None:
    app = make_app(make_tracking(), TRACKING_UNKNOWN_EVENTS="reject")
    with app.app_context():
        tracker = app.extensions["tracking"].tracker
        assert tracker.emit(BOOKMARK, {"url": "/x"}) is not None
        assert tracker.emit("myapp.unregistered", {"url": "/x"}) is None
    assert stored(app) == [(BOOKMARK, "server", 1)]
    assert reasons(app)[0]["event_type"][0].startswith("Unknown event type 'myapp.unregistered'")


# --- versions -------------------------------------------------------------------------


def test_a_payload_names_its_version_and_v1_events_stay_valid(
    make_app: AppFactory, tmp_path: Path
) -> None:
    old_app = make_app(make_tracking(v2=False), TRACKING_ANONYMIZE=False)
    v1 = {"course_id": "c1", "mode": "verified"}
    with old_app.app_context():
        assert old_app.extensions["tracking"].tracker.emit(ENROLL, v1) is not None
    out = tmp_path / "v1.log"
    runner = old_app.test_cli_runner()
    assert runner.invoke(args=["tracking", "export", "-o", str(out)]).exit_code == 0
    exported = json.loads(out.read_text())
    assert exported["event"] == v1  # the edX line is unchanged: no version in it

    # The same database, the app now at version 2: the v1 row is as it was and exports the same.
    app = make_app(make_tracking(), TRACKING_ANONYMIZE=False)
    assert stored(app) == [(ENROLL, "server", 1)]
    again = tmp_path / "again.log"
    assert (
        app.test_cli_runner().invoke(args=["tracking", "export", "-o", str(again)]).exit_code == 0
    )
    assert again.read_text() == out.read_text()
    with app.app_context():
        tracker = app.extensions["tracking"].tracker
        assert tracker.emit(ENROLL, {**v1, "schema_version": 1})["schema_version"] == 1
        assert tracker.emit(ENROLL, {**v1, "price": 9.5})["schema_version"] == 2
        assert tracker.emit(ENROLL, v1) is None  # the newest applies by default
        assert tracker.emit(ENROLL, {**v1, "schema_version": 3}) is None
    assert stored(app)[1:] == [(ENROLL, "server", 1), (ENROLL, "server", 2)]
    assert reasons(app) == [
        {"event": {"price": ["Missing data for required field."]}},
        {
            "event": {
                "schema_version": [f"Not a registered version of {ENROLL} (registered: 1, 2)."]
            }
        },
    ]


# --- registration ---------------------------------------------------------------------


def test_registration_errors_name_the_type() -> None:
    tracking = make_tracking()
    with pytest.raises(EventTypeError, match="'play_video' is a built-in"):
        tracking.event_type("play_video", EnrollmentV1, source="browser")
    with pytest.raises(EventTypeError, match="'Show_Answer' is a built-in"):
        tracking.event_type("Show_Answer", EnrollmentV1)
    with pytest.raises(ValueError, match=f"{ENROLL}.*version 1 is already registered.*version 3"):
        tracking.event_type(ENROLL, EnrollmentV2, version=1)
    with pytest.raises(EventTypeError, match="source must be one of"):
        tracking.event_type("myapp.x", EnrollmentV1, source="mobile")
    with pytest.raises(EventTypeError, match="marshmallow Schema"):
        tracking.event_type("myapp.x", dict)  # type: ignore[arg-type]
    tracking.event_type(ENROLL, EnrollmentV1, version=1)  # the same again: nothing changes
    assert [(t.event_type, t.source, t.version) for t in tracking.types][:2] == [
        (BOOKMARK, "browser", 1),
        (BOOKMARK, "server", 1),
    ]
    assert len(tracking.types) == 5


def test_two_apps_keep_their_types_apart(make_app: AppFactory) -> None:
    mine = make_app(make_tracking(), TRACKING_ANONYMIZE=False)
    other = make_app(Tracking(), TRACKING_ANONYMIZE=False)
    for app in (mine, other):
        with app.app_context():
            app.extensions["tracking"].tracker.emit(BOOKMARK, {"url": 1})
    # One database: the other app stored it unvalidated, this one refused it.
    assert stored(other) == [(BOOKMARK, "server", None)]
    assert reasons(mine) == [{"event": {"url": ["Not a valid string."]}}]


def test_events_spooled_before_versions_existed_are_stored(app: Flask) -> None:
    now = datetime.now(UTC)
    old_line = dict(
        new_event(
            event_id=str(uuid.uuid4()),
            event_type="showanswer",
            event_source="server",
            time=now,
            received_at=now,
            event={"problem_id": "p1"},
            event_format="object",
            schema_status="valid",
        )
    )
    del old_line["schema_version"]
    with app.app_context():
        app.extensions["tracking"].tracker.pipeline.store_spooled([old_line])
    assert stored(app) == [("showanswer", "server", None)]


def test_unstorable_and_hostile_values_of_a_registered_type_refuse_only_their_event(
    app: Flask,
) -> None:
    """A registered type passes its schema and then the same storage limits as a built-in:
    a lone surrogate, an integer beyond 64 bits, an over-long indexed value and a deeply
    nested payload each refuse their own event (kept in the failed table); the rest of the
    batch is stored."""
    client = app.test_client()
    deep: Any = "bottom"
    for _ in range(200):
        deep = [deep]
    events = [
        item(BOOKMARK, {"url": "/ok"}),
        item(BOOKMARK, {"url": "/p\ud800"}),
        item(BOOKMARK, {"url": "/p", "extra": 2**70}),
        item(BOOKMARK, {"url": "/p", "nested": deep}),
        {**item("x" * 2000, {"url": "/p"})},
        item(QUIZ, {"quiz_id": "q", "attempt": 1}),
    ]
    answer = client.post(
        f"{prefix(app)}/events", json={"sent_at": time.time() * 1000, "events": events}
    )
    assert answer.status_code == 200
    assert answer.json["accepted"] == 2
    assert sorted(f["index"] for f in answer.json["failed"]) == [1, 2, 3, 4]
    assert stored(app) == [(BOOKMARK, "browser", 1), (QUIZ, "browser", 1)]
    assert len(reasons(app)) == 4
