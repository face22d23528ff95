"""The ingest endpoints: edX-compatible single events, batches, trust, limits, overload."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, session

from flask_tracking import Tracking
from flask_tracking.payloads import decode_payload, encode_payload

from support import AppFactory, corpus_path, failed, partition_config, rows, service_url

PLAY = {"id": "i4x-Org-Num-video-intro", "code": "html5", "currentTime": 12.5, "speed": "1.0"}


def signed_in(make_app: AppFactory, **config: Any) -> Flask:
    """An app whose learner (from the server session) is 'ada', user id 42."""
    tracking = Tracking()

    @tracking.identity_loader
    def load() -> dict[str, Any] | None:
        name = session.get("user")
        return {"user_id": 42, "username": name} if name else None

    app = make_app(tracking, TRACKING_ANONYMIZE=False, **config)

    @app.post("/login")
    def login() -> str:
        session["user"] = "ada"
        return "ok"

    return app


@pytest.fixture
def learner(make_app: AppFactory) -> tuple[Flask, Any]:
    app = signed_in(make_app)
    client = app.test_client()
    client.post("/login")
    return app, client


def batch(*events: dict[str, Any], sent_at: float | None = None) -> dict[str, Any]:
    now_ms = time.time() * 1000
    return {"sent_at": now_ms if sent_at is None else sent_at, "events": list(events)}


def item(event_type: str = "play_video", data: Any = None, **extra: Any) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "event_type": event_type,
        "event": PLAY if data is None else data,
        "page": "https://lms.example/courses/course-v1:Org+Num+Run/courseware/u1",
        "time": time.time() * 1000,
        "seq": 1,
        **extra,
    }


# -- the edX endpoint ---------------------------------------------------------------------


def test_real_browser_events_posted_as_edx_logger_does_are_stored(
    learner: tuple[Flask, Any],
) -> None:
    app, client = learner
    path = corpus_path("edx-analytics-pipeline.jsonl")
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    browser = [line for line in lines if line["event_source"] == "browser" and line["event_type"]][
        :150
    ]
    for line in browser:
        form = {"event_type": line["event_type"], "page": line["page"] or ""}
        form["event"] = (
            line["event"] if isinstance(line["event"], str) else json.dumps(line["event"])
        )
        answer = client.post("/activity/event", data=form)
        assert answer.status_code == 200, (answer.json, line)
    stored = rows(app)
    assert len(stored) == len(browser)
    for line, row in zip(browser, stored, strict=True):
        assert row.event_type == line["event_type"]
        assert row.event_source == "browser"
        assert row.username == "ada"  # the server's learner, not the log's
        assert row.user_id == "42"
        sent = line["event"] if isinstance(line["event"], str) else json.dumps(line["event"])
        assert row.event == decode_payload(sent).data
        # and it goes out again exactly as edX's Logger sent it
        assert encode_payload(row.event, row.event_format, row.event_raw) == sent


def test_edx_event_payload_keeps_its_string_form(learner: tuple[Flask, Any]) -> None:
    app, client = learner
    raw = '{"id": "v1", "code": "abc", "currentTime": 3, "speed": "1.50"}'
    client.post("/activity/event", data={"event_type": "pause_video", "event": raw, "page": "p"})
    (row,) = rows(app)
    assert row.event == json.loads(raw)
    assert row.event_raw == raw  # export writes back the very same string


def test_edx_event_as_json_object_and_plain_string(learner: tuple[Flask, Any]) -> None:
    app, client = learner
    client.post(
        "/activity/event", json={"event_type": "play_video", "event": json.dumps(PLAY), "page": ""}
    )
    client.post(
        "/activity/event",
        data={"event_type": "problem_check", "event": "input_p_2_1=42&input_p_3_1=x", "page": ""},
    )
    first, second = rows(app)
    assert first.event == PLAY
    assert second.event == {"input_p_2_1": "42", "input_p_3_1": "x"}
    assert second.event_format == "query"


def test_the_design_notes_payload_shape_is_accepted(learner: tuple[Flask, Any]) -> None:
    app, client = learner
    body = {
        "tracking_event_type": "video",
        "node_id": 17,
        "event_data": {"video_id": "abc", "video_event_type": "play"},
    }
    assert client.post("/activity/event", json=body).status_code == 200
    (row,) = rows(app)
    assert row.event_type == "video" and row.context["node_id"] == 17
    assert row.event == body["event_data"]


def test_get_is_refused(client: Any) -> None:
    for path in ("/activity/event", "/activity/events"):
        answer = client.get(path + "?event_type=x&event={}")
        assert answer.status_code == 405
        assert answer.json["code"] == "method_not_allowed"
        assert answer.headers["Allow"] == "POST"


# -- the batch endpoint -------------------------------------------------------------------


def test_batch_sent_as_text_plain_is_stored(learner: tuple[Flask, Any]) -> None:
    app, client = learner
    body = json.dumps(batch(item(), item("pause_video")))
    answer = client.post("/activity/events", data=body, content_type="text/plain;charset=UTF-8")
    assert answer.json == {"accepted": 2, "duplicates": 0, "failed": []}
    assert [r.event_type for r in rows(app)] == ["play_video", "pause_video"]
    assert {r.course_id for r in rows(app)} == {"course-v1:Org+Num+Run"}


def test_retried_batches_store_each_id_once(learner: tuple[Flask, Any]) -> None:
    app, client = learner
    first = [item() for _ in range(5)]
    assert client.post("/activity/events", json=batch(*first)).json["accepted"] == 5
    retried = client.post("/activity/events", json=batch(*first[2:], item()))
    assert retried.json == {"accepted": 1, "duplicates": 3, "failed": []}
    again = client.post("/activity/events", json=batch(first[0], first[0]))
    assert again.json == {"accepted": 0, "duplicates": 2, "failed": []}
    assert len(rows(app)) == 6


def test_one_bad_event_never_sinks_the_batch(learner: tuple[Flask, Any]) -> None:
    app, client = learner
    good, bad, worse = item(), item(data={**PLAY, "currentTime": "soon"}), item(id="nope")
    answer = client.post("/activity/events", json=batch(good, bad, worse, "not an object"))
    assert answer.status_code == 200
    assert answer.json["accepted"] == 1
    reasons = {f["index"]: f for f in answer.json["failed"]}
    assert reasons[1]["id"] == bad["id"] and "currentTime" in reasons[1]["errors"]["event"]
    assert reasons[2]["errors"] == {"id": ["Not a valid UUID."]}
    assert "_schema" in reasons[3]["errors"]
    assert len(failed(app)) == 3
    assert {f.event_id for f in failed(app)} >= {bad["id"]}


def test_server_only_events_are_refused_from_the_browser(learner: tuple[Flask, Any]) -> None:
    app, client = learner
    answer = client.post(
        "/activity/events",
        json=batch(
            item("showanswer", {"problem_id": "p1"}),
            item("problem_check", {"problem_id": "p1", "correct_map": {}, "success": "correct"}),
            item("problem_check", "input_p1_2_1=42"),
        ),
    )
    assert answer.json["accepted"] == 1
    refusals = [f["errors"]["event_type"][0] for f in answer.json["failed"]]
    assert len(refusals) == 2 and all("server" in r for r in refusals)
    assert {f.event_type for f in failed(app)} == {"showanswer", "problem_check"}


def test_identity_fields_in_the_payload_are_ignored(learner: tuple[Flask, Any]) -> None:
    app, client = learner
    spoof = item(username="mallory", user_id=666, ip="6.6.6.6", session="x" * 32)
    client.post("/activity/events", json=batch(spoof))
    client.post(
        "/activity/event",
        data={"event_type": "play_video", "event": json.dumps(PLAY), "username": "mallory"},
    )
    for row in rows(app):
        assert (row.username, row.user_id, row.ip) == ("ada", "42", "127.0.0.1")
        assert row.session != "x" * 32


def test_cross_origin_requests_are_refused_unless_allowed(make_app: AppFactory) -> None:
    app = make_app()
    client = app.test_client()
    evil = {"Origin": "https://evil.example"}
    answer = client.post("/activity/events", json=batch(item()), headers=evil)
    assert answer.status_code == 403 and answer.json["code"] == "cross_origin"
    assert "TRACKING_ALLOWED_ORIGINS" in answer.json["message"]
    site = {"Sec-Fetch-Site": "cross-site"}
    assert client.post("/activity/event", data={"event_type": "x"}, headers=site).status_code == 403
    same = {"Origin": "http://localhost", "Sec-Fetch-Site": "same-origin"}
    assert client.post("/activity/events", json=batch(item()), headers=same).status_code == 200
    assert len(rows(app)) == 1

    allowed = make_app(TRACKING_ALLOWED_ORIGINS=["https://evil.example"]).test_client()
    assert allowed.post("/activity/events", json=batch(item()), headers=evil).status_code == 200


def test_oversized_requests_and_events_get_413_and_are_kept(learner: tuple[Flask, Any]) -> None:
    app, client = learner
    huge = json.dumps(batch(*[item(data={**PLAY, "pad": "x" * 30_000}) for _ in range(20)]))
    answer = client.post("/activity/events", data=huge, content_type="application/json")
    assert answer.status_code == 413 and answer.json["code"] == "request_too_large"
    assert "TRACKING_MAX_REQUEST_BYTES" in answer.json["message"]

    many = client.post("/activity/events", json=batch(*[item() for _ in range(501)]))
    assert many.status_code == 413 and many.json["code"] == "too_many_events"

    big_event = item(data={**PLAY, "pad": "x" * 40_000})
    one = client.post("/activity/events", json=batch(big_event, item()))
    assert one.json["accepted"] == 1
    assert "limit is 32768" in one.json["failed"][0]["errors"]["_schema"][0]
    kept = failed(app)
    assert [k.detail.split()[-1] for k in kept[:2]] == ["request_too_large", "too_many_events"]
    assert kept[2].event_id == big_event["id"]


def test_rate_limit_answers_429_with_retry_after(make_app: AppFactory) -> None:
    client = make_app(TRACKING_RATE_LIMIT="3/minute").test_client()
    statuses = [client.post("/activity/events", json=batch(item())).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    answer = client.post("/activity/events", json=batch(item()))
    assert answer.json["code"] == "rate_limited"
    assert 1 <= int(answer.headers["Retry-After"]) <= 60


@pytest.mark.parametrize("hours", [24, -24])
def test_client_clock_skew_is_corrected(learner: tuple[Flask, Any], hours: int) -> None:
    app, client = learner
    skew_ms = hours * 3600 * 1000
    client_now = time.time() * 1000 + skew_ms
    logged = item(time=client_now - 5000)  # logged 5 s before the batch was sent
    before = datetime.now(UTC)
    client.post("/activity/events", json=batch(logged, sent_at=client_now))
    after = datetime.now(UTC)
    (row,) = rows(app)
    stored = row.time.replace(tzinfo=UTC)
    assert before - timedelta(seconds=5.5) <= stored <= after - timedelta(seconds=4.5)
    assert abs(row.clock_skew_ms + skew_ms) < 5000
    assert abs(row.client_time.replace(tzinfo=UTC).timestamp() * 1000 - logged["time"]) < 1


def test_time_is_never_later_than_receipt(learner: tuple[Flask, Any]) -> None:
    app, client = learner
    sent_at = time.time() * 1000
    client.post("/activity/events", json=batch(item(time=sent_at + 60_000), sent_at=sent_at))
    (row,) = rows(app)
    assert row.time <= row.received_at


def test_503_within_a_second_when_the_database_is_stopped(tmp_path: Path) -> None:
    import services

    service_url("postgresql")  # PostgreSQL binaries must be there (fails under CI if not)
    cluster = services.start_throwaway_postgres()
    app = Flask("down", instance_path=str(tmp_path))
    app.config.update(
        SECRET_KEY="k",
        TRACKING_DATABASE_URL=cluster.url,
        TRACKING_RATE_LIMIT=None,
        **partition_config(cluster.url),
    )
    tracking = Tracking(app)
    with app.app_context():
        tracking.init_db()
    client = app.test_client()
    assert client.post("/activity/events", json=batch(item())).status_code == 200
    cluster.close()
    try:
        started = time.monotonic()
        answer = client.post("/activity/events", json=batch(item()))
        elapsed = time.monotonic() - started
        assert answer.status_code == 503
        assert answer.headers["Retry-After"] == "1"
        assert answer.json["code"] == "store_unavailable"
        assert elapsed < 1.0
        assert client.get("/activity/ready").status_code == 503
        assert client.get("/activity/health").status_code == 200
    finally:
        app.extensions["tracking"].engine.dispose()


def test_health_and_readiness(client: Any) -> None:
    assert client.get("/activity/health").json == {"status": "ok"}
    assert client.get("/activity/ready").json == {"status": "ok"}
