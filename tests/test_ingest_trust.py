"""What the server does not take from a client: server-only types in any spelling, a
session it mints, a clock reading it cannot back up."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import pytest
from flask import Flask, render_template_string

from flask_tracking import Tracking

from support import AppFactory, failed, rows

PAGE = "https://lms.example/courses/course-v1:Org+Num+Run/courseware/u1"
PLAY = {"id": "v1", "code": "html5", "currentTime": 3.5, "speed": "1.0"}


def item(event_type: str = "play_video", data: Any = PLAY, **fields: Any) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "event_type": event_type,
        "event": data,
        "page": PAGE,
        **fields,
    }


def send(client: Any, *events: dict[str, Any], sent_at: float | None = None) -> Any:
    body = {"sent_at": time.time() * 1000 if sent_at is None else sent_at, "events": list(events)}
    return client.post("/activity/events", json=body)


CORRECT_MAP = {"p1_2_1": {"correctness": "correct", "npoints": None}}
SPOOFS = {
    "trailing-space": ("showanswer ", {"problem_id": "p1"}),
    "mixed-case": ("ShowAnswer", {"problem_id": "p1"}),
    "newline": ("reset_problem\n", {"problem_id": "p1"}),
    "tab-and-case": ("\tSAVE_PROBLEM_CHECK", {"problem_id": "p1"}),
    "correct_map-object": ("problem_check", {"problem_id": "p1", "correct_map": CORRECT_MAP}),
    "correct_map-json-string": ("problem_check", json.dumps({"correct_map": CORRECT_MAP})),
    "correct_map-query": (
        "problem_check",
        "input_p1_2_1=42&" + quote("correct_map[p1_2_1][correctness]") + "=correct",
    ),
    "correct_map-json-quoted-query": (
        "problem_check",
        json.dumps("input_p1_2_1=42&correct_map%5Bp1%5D=correct"),
    ),
}


@pytest.mark.parametrize("case", list(SPOOFS))
def test_server_only_types_are_refused_in_any_spelling(app: Flask, case: str) -> None:
    event_type, data = SPOOFS[case]
    answer = send(app.test_client(), item(event_type, data), item())
    assert answer.json["accepted"] == 1
    (refusal,) = answer.json["failed"]
    assert "server event" in refusal["errors"]["event_type"][0]
    assert len(rows(app)) == 1 and len(failed(app)) == 1


def test_a_browser_problem_check_with_answers_is_stored(app: Flask) -> None:
    answer = send(app.test_client(), item("problem_check", "input_p1_2_1=42"))
    assert answer.json["accepted"] == 1 and rows(app)[0].event_source == "browser"


# -- one session per browser session ------------------------------------------------------


def test_the_first_events_of_a_new_session_sent_together_share_one_session(app: Flask) -> None:
    # edX's Logger fires its first requests without waiting: none carries a cookie yet.
    headers = {"User-Agent": "Mozilla/5.0 (X11) Firefox/128.0", "Accept-Language": "fr"}
    clients = [app.test_client() for _ in range(5)]
    for client in clients:
        form = {"event_type": "page_close", "event": "", "page": PAGE}
        assert client.post("/activity/event", data=form, headers=headers).status_code == 200
    # ... and a later one carries the cookie one of them got back.
    body = {"sent_at": time.time() * 1000, "events": [item()]}
    clients[2].post("/activity/events", json=body, headers=headers)
    sessions = {r.session for r in rows(app)}
    assert len(rows(app)) == 6 and len(sessions) == 1 and "" not in sessions


def test_another_browser_gets_another_session(app: Flask) -> None:
    form = {"event_type": "page_close", "event": "", "page": PAGE}
    app.test_client().post("/activity/event", data=form, headers={"User-Agent": "A"})
    app.test_client().post("/activity/event", data=form, headers={"User-Agent": "B"})
    assert len({r.session for r in rows(app)}) == 2


def test_a_page_with_the_logger_starts_the_session(make_app: AppFactory) -> None:
    app = make_app()

    @app.get("/courses/c1/unit")
    def unit() -> str:
        return render_template_string("<html>{{ tracking_script() }}</html>")

    client = app.test_client()
    page = client.get("/courses/c1/unit")
    assert "Set-Cookie" in page.headers
    for _ in range(3):
        send(client, item())
    assert len({r.session for r in rows(app)}) == 1


# -- the client's clock ----------------------------------------------------------------------


@pytest.mark.parametrize("waited", [timedelta(days=400), timedelta(days=8)])
def test_a_client_time_older_than_the_queue_lifetime_is_not_the_event_time(
    app: Flask, waited: timedelta
) -> None:
    sent_at = time.time() * 1000
    claimed = sent_at - waited.total_seconds() * 1000
    before = datetime.now(UTC)
    send(app.test_client(), item(time=claimed), sent_at=sent_at)
    (row,) = rows(app)
    assert row.time.replace(tzinfo=UTC) >= before - timedelta(seconds=1)
    assert abs(row.client_time.replace(tzinfo=UTC).timestamp() * 1000 - claimed) < 1


def test_a_client_time_within_the_queue_lifetime_is_kept(app: Flask) -> None:
    sent_at = time.time() * 1000
    send(app.test_client(), item(time=sent_at - 3 * 86400 * 1000), sent_at=sent_at)
    (row,) = rows(app)
    waited = row.received_at - row.time
    assert timedelta(days=3) - timedelta(seconds=2) <= waited <= timedelta(days=3, seconds=2)


def test_a_future_client_time_gives_the_received_time(app: Flask) -> None:
    sent_at = time.time() * 1000
    send(app.test_client(), item(time=sent_at + 365 * 86400 * 1000), sent_at=sent_at)
    (row,) = rows(app)
    assert row.time == row.received_at and row.client_time > row.received_at


# -- the extension -------------------------------------------------------------------------


def test_a_second_init_app_on_one_app_says_so(app: Flask) -> None:
    with pytest.raises(RuntimeError, match="already initialised"):
        Tracking(app)


def test_processors_and_backends_added_after_init_app_take_effect(make_app: AppFactory) -> None:
    tracking = Tracking()
    app = make_app(tracking, TRACKING_ANONYMIZE=False)
    seen: list[str] = []

    class Collect:
        def send(self, events: Any) -> None:
            seen.extend(e["event_type"] for e in events)

    @tracking.processor
    def tag(event: dict[str, Any]) -> dict[str, Any]:
        return {**event, "context": {**event["context"], "tagged": True}}

    tracking.backends.append(Collect())
    with app.app_context():
        tracking.emit("showanswer", {"problem_id": "p1"})
    (row,) = rows(app)
    assert row.context["tagged"] is True and seen == ["showanswer"]
