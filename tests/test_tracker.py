"""The server-side tracker: contexts, processors, backends, identity, privacy."""

from __future__ import annotations

import json
import logging
import re
import threading
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from flask_tracking import Tracking
from flask_tracking.requestinfo import keyed_hash

from support import AppFactory, failed, rows

SHOW = {"problem_id": "i4x://MITx/6.00x/problem/L15:L15_Problem_2"}


def with_identity(make_app: AppFactory, **config: Any) -> tuple[Tracking, Flask]:
    tracking = Tracking()

    @tracking.identity_loader
    def load() -> dict[str, Any]:
        return {"user_id": 42, "username": "ada"}

    app = make_app(tracking, **config)

    @app.post("/courses/<course>/answer")
    def answer(course: str) -> str:
        tracking.emit("showanswer", {**SHOW, "username": "mallory", "ip": "6.6.6.6"})
        return "ok"

    return tracking, app


def test_nested_contexts_later_wins(plain_app: Flask) -> None:
    tracking = Tracking()
    with plain_app.app_context():
        tracking.enter_context("outer", {"user_id": 10938, "site": "a"})
        with tracking.context("inner", {"user_id": 11111, "session_id": "x"}):
            tracking.emit("showanswer", SHOW)
        tracking.emit("showanswer", SHOW)
        tracking.exit_context("outer")
        tracking.emit("showanswer", SHOW)
    contexts = [r.context for r in rows(plain_app)]
    assert contexts[0] == {"user_id": 11111, "site": "a", "session_id": "x"}
    assert contexts[1] == {"user_id": 10938, "site": "a"}
    assert contexts[2] == {}


def test_exit_of_an_unknown_context_says_so(plain_app: Flask) -> None:
    with plain_app.app_context(), pytest.raises(KeyError, match="No tracking context named"):
        Tracking().exit_context("nope")


def test_contexts_do_not_leak_between_threads(plain_app: Flask) -> None:
    tracking = Tracking()
    seen: list[dict[str, Any]] = []

    def other() -> None:
        with plain_app.app_context():
            seen.append(tracking.tracker.resolve_context())

    with plain_app.app_context(), tracking.context("course", {"course_id": "c1"}):
        thread = threading.Thread(target=other)
        thread.start()
        thread.join()
        assert tracking.tracker.resolve_context() == {"course_id": "c1"}
    assert seen == [{}]


def test_a_processor_can_drop_or_rewrite_events(make_app: AppFactory) -> None:
    def drop_hidden(event: dict[str, Any]) -> dict[str, Any] | None:
        return None if event["event"].get("hidden") else {**event, "name": "edx.custom"}

    app = make_app(Tracking(processors=[drop_hidden]), TRACKING_ANONYMIZE=False)
    with app.app_context():
        assert app.extensions["tracking"].tracker.emit("showanswer", {**SHOW, "hidden": 1}) is None
        app.extensions["tracking"].tracker.emit("showanswer", SHOW)
    assert [r.name for r in rows(app)] == ["edx.custom"]


def test_a_failing_processor_is_logged_and_the_others_run(
    make_app: AppFactory, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(event: dict[str, Any]) -> dict[str, Any]:
        raise RuntimeError("boom")

    def tag(event: dict[str, Any]) -> dict[str, Any]:
        return {**event, "context": {**event["context"], "tagged": True}}

    app = make_app(Tracking(processors=[broken, tag]), TRACKING_ANONYMIZE=False)
    with app.app_context(), caplog.at_level(logging.ERROR, "flask_tracking"):
        Tracking().emit("showanswer", SHOW)
    assert [r.context for r in rows(app)] == [{"tagged": True}]
    assert "processor" in caplog.text and "boom" in caplog.text


class Exploding:
    def send(self, events: Any) -> None:
        raise ConnectionError("backend down")


def test_a_failing_backend_never_stops_the_others(
    make_app: AppFactory, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    log = tmp_path / "tracking.log"
    app = make_app(
        Tracking(backends=[Exploding()]), TRACKING_LOG_FILE=str(log), TRACKING_ANONYMIZE=False
    )
    with app.app_context(), caplog.at_level(logging.ERROR, "flask_tracking"):
        Tracking().emit("showanswer", SHOW)
    assert len(rows(app)) == 1
    (line,) = log.read_text().splitlines()
    assert json.loads(line)["event"] == SHOW
    assert "backend down" in caplog.text


def test_identity_comes_from_the_server_never_the_payload(make_app: AppFactory) -> None:
    _, app = with_identity(make_app, TRACKING_ANONYMIZE=False)
    app.test_client().post("/courses/course-v1:MITx+6.00x+2013/answer")
    (row,) = rows(app)
    assert row.username == "ada"
    assert row.user_id == "42"
    assert row.ip == "127.0.0.1"
    assert row.course_id == "course-v1:MITx+6.00x+2013"
    assert row.org_id == "MITx"
    assert row.context["path"] == "/courses/course-v1:MITx+6.00x+2013/answer"
    assert row.event["username"] == "mallory"  # the payload is kept, but not trusted


def test_session_is_a_keyed_hash_of_the_browser_session(make_app: AppFactory) -> None:
    _, app = with_identity(make_app, TRACKING_ANONYMIZE=False)
    first, second = app.test_client(), app.test_client()
    first.post("/courses/c/answer")
    first.post("/courses/c/answer")
    second.post("/courses/c/answer", headers={"User-Agent": "another browser"})
    sessions = [r.session for r in rows(app)]
    assert all(re.fullmatch(r"[0-9a-f]{32}", s) for s in sessions)
    assert sessions[0] == sessions[1] != sessions[2]


def test_ip_is_read_through_trusted_proxies_only(make_app: AppFactory) -> None:
    _, app = with_identity(make_app, TRACKING_ANONYMIZE=False, TRACKING_TRUSTED_PROXIES=1)
    headers = {"X-Forwarded-For": "6.6.6.6, 198.51.100.7"}
    app.test_client().post("/courses/c/answer", headers=headers)
    assert rows(app)[0].ip == "198.51.100.7"


def test_anonymisation_is_on_by_default(make_app: AppFactory) -> None:
    _, app = with_identity(make_app)
    headers = {"X-Forwarded-For": "198.51.100.7"}
    app.test_client().post(
        "/courses/c/answer", headers=headers, environ_base={"REMOTE_ADDR": "203.0.113.77"}
    )
    app.test_client().post("/courses/c/answer")
    first, second = rows(app)
    anon = keyed_hash(b"test-secret", "ada", purpose="user")
    assert first.username == second.username == anon
    assert first.user_id == anon and first.context["user_id"] == anon
    assert first.ip == "203.0.113.0"
    assert "ada" not in json.dumps([first.context, first.username])


def test_track_takes_user_and_course_content_node(plain_app: Flask) -> None:
    class Node:
        course_slug = "physics"
        course_run = "2026"
        module_id = "m1"
        section_id = "s1"
        unit_id = "u3"
        page_url = "https://lms.example/physics/2026/u3"

    with plain_app.app_context():
        Tracking().track(
            "play_video",
            user={"id": 7, "username": "grace"},
            data={"id": "v1", "code": "abc", "currentTime": 1.5, "speed": "1.0"},
            course_content_node=Node(),
        )
    (row,) = rows(plain_app)
    assert row.username == "grace" and row.user_id == "7"
    assert row.course_id == "physics/2026"
    assert row.page == Node.page_url
    assert {k: row.context[k] for k in ("module_id", "section_id", "unit_id")} == {
        "module_id": "m1",
        "section_id": "s1",
        "unit_id": "u3",
    }


def test_an_invalid_server_event_is_kept_with_field_named_errors(plain_app: Flask) -> None:
    with plain_app.app_context():
        result = Tracking().emit("showanswer", {"problem_id": {"not": "a string"}})
    assert result is None
    assert rows(plain_app) == []
    (row,) = failed(plain_app)
    assert row.origin == "server" and row.event_type == "showanswer"
    assert list(row.reasons) == ["event"] and list(row.reasons["event"]) == ["problem_id"]
    assert json.loads(row.raw)["event"] == {"problem_id": {"not": "a string"}}


def test_unknown_types_are_stored_unvalidated_by_default(plain_app: Flask) -> None:
    with plain_app.app_context():
        Tracking().emit("edx.course.enrollment.activated", {"mode": "honor"})
    (row,) = rows(plain_app)
    assert row.schema_status == "unvalidated"


def test_unknown_types_are_refused_when_configured(make_app: AppFactory) -> None:
    app = make_app(TRACKING_UNKNOWN_EVENTS="reject")
    with app.app_context():
        assert Tracking().emit("made.up.event", {}) is None
    assert rows(app) == []
    assert "Unknown event type" in failed(app)[0].reasons["event_type"][0]


def test_emit_works_outside_a_request(plain_app: Flask) -> None:
    with plain_app.app_context():
        event = Tracking().emit("showanswer", SHOW)
    assert event is not None
    (row,) = rows(plain_app)
    assert row.event_source == "server" and row.session is None and row.username is None
