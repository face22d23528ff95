"""The failure model, classes 1, 2 and 4, on SQLite and PostgreSQL, on every input path.

1. malformed or hostile input: a 4xx naming the field, the input kept (bounded);
2. a value the database cannot hold: refused as that event's 4xx, kept in a form the
   failed table can hold, the rest of its batch stored, never a 503;
4. a failing privacy processor: the event never reaches storage with raw identity.
"""

from __future__ import annotations

import base64
import json
import math
import os
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import text

from flask_tracking import Tracking
from flask_tracking.limits import INDEXED_TEXT_BYTES, MAX_DEPTH

from support import AppFactory, failed, rows

PLAY = {"id": "v1", "code": "html5", "currentTime": 3.5, "speed": "1.0"}
PAGE = "https://lms.example/courses/course-v1:Org+Num+Run/courseware/u1"


def item(**fields: Any) -> dict[str, Any]:
    event = {"id": str(uuid.uuid4()), "event_type": "play_video", "event": PLAY, "page": PAGE}
    event.update(fields)
    return event


def nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


def post_batch(app: Flask, *events: Any) -> Any:
    body = json.dumps({"sent_at": time.time() * 1000, "events": list(events)})
    return app.test_client().post(
        "/activity/events", data=body, headers={"Content-Type": "application/json"}
    )


def stored_json_is_strict(app: Flask) -> None:
    """Every stored payload and context reads back as strict JSON, on both databases."""
    engine = app.extensions["tracking"].engine
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            conn.execute(text("SELECT json_extract(event, '$') FROM tracking_events")).all()
        values = conn.execute(
            text("SELECT CAST(event AS TEXT), CAST(context AS TEXT) FROM tracking_events")
        ).all()
    for event, context in values:
        for value in (event, context):
            if value is not None:
                json.loads(value, parse_constant=lambda token: pytest.fail(token))


# -- class 1: malformed and hostile input ---------------------------------------------------


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"{not json", "invalid_json"),
        (b"[" * 1000 + b"]" * 1000, "invalid_json"),
        (b"[" * 50_000, "invalid_json"),
        ('{"events": [' + "[" * 100_000 + "]" * 100_000 + "]}", "invalid_json"),
        (b"\xff\xfe{}", "invalid_json"),
        (b'{"events": "many"}', "invalid_batch"),
        (b"[]", "invalid_batch"),
    ],
    ids=[
        "broken",
        "depth-1000",
        "50k-brackets",
        "deep-item",
        "not-utf8",
        "events-not-a-list",
        "list",
    ],
)
def test_a_malformed_batch_body_gets_a_400_and_is_kept(
    app: Flask, body: bytes | str, code: str
) -> None:
    raw = body.encode() if isinstance(body, str) else body
    answer = app.test_client().post(
        "/activity/events", data=raw, headers={"Content-Type": "application/json"}
    )
    assert answer.status_code == 400 and answer.json["code"] == code
    (row,) = failed(app)
    assert row.origin == "browser" and "_request" in row.reasons
    assert len(row.raw.encode()) <= 64 * 1024 + 4
    assert rows(app) == []


@pytest.mark.parametrize("as_form", [True, False], ids=["form", "json"])
def test_deep_nesting_inside_an_edx_event_string_is_refused(app: Flask, as_form: bool) -> None:
    client = app.test_client()
    deep = "[" * 1500 + "]" * 1500
    fields = {"event_type": "play_video", "event": deep, "page": PAGE}
    answer = (
        client.post("/activity/event", data=fields)
        if as_form
        else client.post("/activity/event", json=fields)
    )
    assert answer.status_code == 400 and answer.json["code"] == "invalid_event"
    assert "event" in answer.json["errors"]
    (row,) = failed(app)
    assert row.event_type == "play_video" and "event" in row.reasons
    assert rows(app) == []


def test_an_oversized_body_keeps_only_a_sample(app: Flask) -> None:
    pad = "x" * 600_000
    answer = post_batch(app, item(event={**PLAY, "pad": pad}))
    assert answer.status_code == 413 and answer.json["code"] == "request_too_large"
    (row,) = failed(app)
    assert len(row.raw.encode()) <= 2048
    assert "sha256" in row.reasons["_truncated"][0]


def test_an_event_over_the_event_limit_fails_alone(app: Flask) -> None:
    big = item(event={**PLAY, "pad": "y" * 40_000})
    answer = post_batch(app, item(), big, item())
    assert answer.status_code == 200 and answer.json["accepted"] == 2
    (refusal,) = answer.json["failed"]
    assert refusal["index"] == 1 and "TRACKING_MAX_EVENT_BYTES" in refusal["errors"]["_schema"][0]
    assert len(rows(app)) == 2 and len(failed(app)) == 1


# -- class 2: values the database cannot hold ------------------------------------------------

LONG = "e" * (INDEXED_TEXT_BYTES + 1)
UNSTORABLE = {
    "event_type-over-btree-limit": (item(event_type="x" * 3000, event={}), "event_type"),
    "event_type-over-index-cap": (item(event_type=LONG, event={}), "event_type"),
    "nul-in-event_type": (item(event_type="play\x00video"), "event_type"),
    "newline-in-event_type": (item(event_type="made.up\nforged line", event={}), "event_type"),
    "course-id-over-btree-limit": (
        item(page=f"https://lms.example/courses/{'c' * 3000}/x"),
        "context.course_id",
    ),
    "lone-surrogate-in-page": (item(page="https://lms.example/\ud800"), "page"),
    "lone-surrogate-in-payload": (item(event={**PLAY, "code": "\udfff"}), "event"),
    "nan-in-payload": (item(event={**PLAY, "currentTime": math.nan}), "event"),
    "infinity-in-payload": (item(event={**PLAY, "extra": math.inf}), "event"),
    "int-over-64-bits-in-payload": (item(event={**PLAY, "extra": 2**70}), "event"),
    "int-over-64-bits-seq": (item(seq=2**70), "seq"),
    "nested-too-deep": (item(event={**PLAY, "extra": nested(MAX_DEPTH + 5)}), "event"),
}


@pytest.mark.parametrize("case", list(UNSTORABLE))
def test_an_unstorable_value_refuses_only_its_event(app: Flask, case: str) -> None:
    bad, field = UNSTORABLE[case]
    first, last = item(), item()
    answer = post_batch(app, first, bad, last)
    assert answer.status_code == 200, answer.json
    assert answer.json["accepted"] == 2
    (refusal,) = answer.json["failed"]
    assert refusal["index"] == 1 and refusal["id"] == bad["id"]
    assert field in refusal["errors"], refusal["errors"]
    assert {r.event_id for r in rows(app)} == {first["id"], last["id"]}
    (row,) = failed(app)
    assert row.event_id == bad["id"] and field in row.reasons
    stored_json_is_strict(app)


@pytest.mark.parametrize("case", ["event_type-over-btree-limit", "nan-in-payload"])
def test_the_edx_endpoint_refuses_unstorable_values_with_a_400(app: Flask, case: str) -> None:
    bad, field = UNSTORABLE[case]
    event = bad["event"]
    fields = {"event_type": bad["event_type"], "event": json.dumps(event), "page": bad["page"]}
    answer = app.test_client().post("/activity/event", data=fields)
    assert answer.status_code == 400 and field in answer.json["errors"]
    assert rows(app) == [] and len(failed(app)) == 1


def test_a_server_event_with_nan_is_kept_not_spooled(app: Flask) -> None:
    tracking = Tracking()
    with app.app_context():
        assert tracking.emit("showanswer", {"problem_id": "p1", "score": math.nan}) is None
        spool = app.extensions["tracking"].tracker.pipeline.spool
        assert not spool.pending()
    (row,) = failed(app)
    assert row.origin == "server" and "event" in row.reasons
    assert rows(app) == []


def test_imported_lines_with_unstorable_values_fail_alone(app: Flask, tmp_path: Path) -> None:
    good = {
        "event_type": "page_close",
        "event_source": "browser",
        "time": "2014-03-03T16:19:05.584523+00:00",
        "event": "",
        "context": {},
    }
    lines = [
        json.dumps(good),
        json.dumps({**good, "event_type": "x" * 3000}),
        json.dumps({**good, "event": {"n": math.nan}}),  # a NaN token on the line
        json.dumps({**good, "event": {"n": 2**70}}),
        json.dumps({**good, "time": "2015-01-01T00:00:00+00:00"}),
    ]
    log = tmp_path / "tracking.log"
    log.write_text("\n".join(lines) + "\n")
    result = app.test_cli_runner().invoke(args=["tracking", "import", str(log)])
    assert result.exit_code == 0, result.output
    assert "read=5 stored=2 duplicates=0 failed=3" in result.output
    assert len(rows(app)) == 2
    assert sorted(r.detail for r in failed(app)) == [f"{log}:2", f"{log}:3", f"{log}:4"]
    stored_json_is_strict(app)


# -- class 4: privacy fails closed ------------------------------------------------------------


def learner_app(make_app: AppFactory, username: str, **config: Any) -> tuple[Tracking, Flask]:
    tracking = Tracking()

    @tracking.identity_loader
    def load() -> dict[str, Any]:
        return {"user_id": 7, "username": username}

    return tracking, make_app(tracking, **config)


def everything_stored(app: Flask) -> str:
    """Every stored and failed row as text (to look for raw identity anywhere)."""
    return json.dumps([list(r) for r in rows(app)] + [list(r) for r in failed(app)], default=str)


def test_a_failing_anonymiser_stores_no_raw_username(
    make_app: AppFactory, caplog: pytest.LogCaptureFixture
) -> None:
    tracking, app = learner_app(make_app, "ada.lovelace")

    @tracking.processor
    def broken_release_tag(event: dict[str, Any]) -> dict[str, Any]:
        # A bug upstream: the context is no longer an object, the anonymiser cannot read it.
        return {**event, "context": "release 1.2"}

    answer = post_batch(app, item())
    assert answer.status_code == 200 and len(answer.json["failed"]) == 1
    assert rows(app) == []
    (row,) = failed(app)
    assert "_processor" in row.reasons and "Anonymizer" in row.reasons["_processor"][0]
    assert "ada.lovelace" not in everything_stored(app)
    assert "Anonymizer" in caplog.text


def test_a_username_that_is_not_valid_unicode_is_still_anonymised(make_app: AppFactory) -> None:
    # A lone surrogate from a broken user table: hashed like any other name, never kept.
    _, app = learner_app(make_app, "ada.lovelace\ud800")
    answer = post_batch(app, item())
    assert answer.json["accepted"] == 1
    (stored,) = rows(app)
    assert len(stored.username) == 32 and "ada.lovelace" not in everything_stored(app)


def test_a_required_processor_that_raises_fails_closed(make_app: AppFactory) -> None:
    tracking, app = learner_app(make_app, "ada", TRACKING_ANONYMIZE=False)

    @tracking.processor(required=True)
    def strip_emails(event: dict[str, Any]) -> dict[str, Any]:
        raise RuntimeError("mail server down")

    with app.test_request_context("/"):
        assert tracking.emit("showanswer", {"problem_id": "p1"}) is None
    assert rows(app) == []
    (row,) = failed(app)
    assert "strip_emails" in row.reasons["_processor"][0]
    assert '"ada"' not in row.raw and "7" not in json.loads(row.raw).get("context", {}).values()


def test_an_optional_processor_that_raises_is_skipped(make_app: AppFactory) -> None:
    tracking, app = learner_app(make_app, "ada")

    @tracking.processor
    def flaky(event: dict[str, Any]) -> dict[str, Any]:
        raise RuntimeError("flaky")

    with app.test_request_context("/"):
        assert tracking.emit("showanswer", {"problem_id": "p1"}) is not None
    (stored,) = rows(app)
    assert stored.username not in ("ada", "") and failed(app) == []


class Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("cannot print me")


def cycle() -> dict[str, Any]:
    loop: dict[str, Any] = {}
    loop["again"] = loop
    return loop


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ({"w": Unprintable()}, "w: Not a JSON value (Unprintable)."),
        ({(1, 2): "a"}, "A key that is not a string (tuple)."),
        (cycle(), "Nested more than"),
    ],
    ids=["unprintable", "tuple-key", "cycle"],
)
def test_an_emit_whose_payload_cannot_even_be_written_down_is_kept_not_raised(
    make_app: AppFactory, payload: Any, reason: str
) -> None:
    """``emit`` never raises into the caller: a payload that fails validation and that
    JSON cannot encode as it is (an object whose ``str`` raises, a tuple key, a cycle) is
    refused and kept as a failed row, written as far as it can be."""
    tracking, app = learner_app(make_app, "ada")
    with app.test_request_context("/"):
        assert tracking.emit("acme.odd.thing", payload) is None
    assert rows(app) == []
    (row,) = failed(app)
    assert any(reason in r for r in row.reasons["event"]), row.reasons
    assert json.loads(row.raw)["event_type"] == "acme.odd.thing"
    assert '"ada"' not in row.raw  # anonymised all the same


def test_failed_import_lines_keep_no_raw_identity(app: Flask, tmp_path: Path) -> None:
    line = {
        "username": "grace.hopper",
        "ip": "203.0.113.77",
        "event_type": "play_video",
        "event_source": "browser",
        "time": "2014-03-03T16:19:05+00:00",
        "event": json.dumps({"id": "v", "code": "x", "currentTime": "soon"}),
        "context": {"user_id": 7, "username": "grace.hopper"},
    }
    torn = json.dumps(line)[:-20]
    log = tmp_path / "tracking.log"
    log.write_text(json.dumps(line) + "\n" + torn + "\n")
    result = app.test_cli_runner().invoke(args=["tracking", "import", str(log)])
    assert "failed=2" in result.output
    kept = " ".join(r.raw for r in failed(app))
    assert "grace.hopper" not in kept and "203.0.113.77" not in kept
    assert "203.0.113.0" in kept


def test_the_failed_table_keeps_only_the_newest_rows(make_app: AppFactory) -> None:
    app = make_app(TRACKING_MAX_FAILED_EVENTS=20)
    for _ in range(6):
        post_batch(app, *[item(event_type="x\x00") for _ in range(10)])
    assert 20 <= len(failed(app)) <= 30


def test_a_row_the_database_refuses_past_the_limits_fails_alone(app: Flask) -> None:
    """The last line of defence: a row that slipped past the limits (here written to the
    store directly, 5 KB in an indexed column) is that row's refusal, not an outage."""
    from flask_tracking.event import new_event

    pipeline = app.extensions["tracking"].tracker.pipeline
    now = datetime.now(UTC)

    def made(event_type: str) -> Any:
        return new_event(
            event_id=str(uuid.uuid4()),
            event_type=event_type,
            event_source="server",
            name="x",
            time=now,
            received_at=now,
            event={},
            event_format="object",
            schema_status="unvalidated",
        )

    # Random text: PostgreSQL compresses index entries, and "x" * 3000 would fit.
    good, bad = made("made.up"), made(base64.b64encode(os.urandom(4000)).decode())
    result = pipeline.store.write([good, bad])
    engine = app.extensions["tracking"].engine
    if engine.dialect.name == "postgresql":  # SQLite has no index entry limit
        assert result.stored == [good["event_id"]]
        assert [event_id for event_id, _ in result.rejected] == [bad["event_id"]]
    else:
        assert sorted(result.stored) == sorted([good["event_id"], bad["event_id"]])
