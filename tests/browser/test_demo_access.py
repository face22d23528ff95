"""Who sees which events on the demo's events page, and the demo's error pages.

A learner sees only their own events (the page and its JSON feed), staff see everyone's,
nobody signed in sees none: with usernames stored as typed and with them anonymised
(``TRACKING_ANONYMIZE``). Unknown pages get the demo's own 404, a crash its own 500.
The Flask test client drives the real demo app on a fresh SQLite file; the last test
checks the page itself in Chromium.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from demo_app import create_app
from demo_app.course import COURSE_ID
from demo_app.views.auth import user_id_for

from livedemo import LiveServer, flushed, open_course, sign_in

SHOW = f"/courses/{COURSE_ID}/problem/checkpoint/show"
SAVE = f"/courses/{COURSE_ID}/problem/checkpoint/save"


@pytest.fixture(params=[False, True], ids=["names", "anonymized"])
def app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Flask]:
    demo = create_app(
        {
            "SECRET_KEY": "access-tests",
            "TRACKING_DATABASE_URL": f"sqlite:///{tmp_path / 'demo.db'}",
            "TRACKING_ANONYMIZE": request.param,
        }
    )
    yield demo
    demo.extensions["tracking"].engine.dispose()


def _client(app: Flask, name: str | None) -> FlaskClient:
    client = app.test_client()
    if name is not None:
        assert client.post("/signin", data={"username": name}).status_code == 302
    return client


def _feed(client: FlaskClient, query: str = "") -> dict[str, Any]:
    answer = client.get(f"/events.json{query}")
    assert answer.status_code == 200, answer.status_code
    data: dict[str, Any] = answer.get_json()
    return data


@pytest.fixture
def learners(app: Flask) -> dict[str, FlaskClient]:
    """ada caused one server event, bob two, staff one."""
    clients = {name: _client(app, name) for name in ("ada", "bob", "staff")}
    for name, actions in (("ada", [SHOW]), ("bob", [SHOW, SAVE]), ("staff", [SHOW])):
        for action in actions:
            assert clients[name].post(action, json={}).status_code == 200
    return clients


def test_a_learner_sees_only_their_own_events(app: Flask, learners: dict[str, FlaskClient]) -> None:
    anonymized = app.config["TRACKING_ANONYMIZE"]
    seen = {}
    for name, expected in (("ada", 1), ("bob", 2)):
        data = _feed(learners[name])
        assert len(data["events"]) == expected and data["total"] == expected
        assert data["everyone"] is False
        seen[name] = {e["user_id"] for e in data["events"]}
        assert len(seen[name]) == 1
        if anonymized:
            assert {e["username"] for e in data["events"]} == seen[name]  # the anonymous id
            assert seen[name] != {str(user_id_for(name))}
        else:
            assert {e["username"] for e in data["events"]} == {name}
            assert seen[name] == {str(user_id_for(name))}
        # Asking for everyone's (or ignoring "mine") does not widen a learner's view.
        assert _feed(learners[name], "?mine=0") == data
    assert seen["ada"] != seen["bob"]


def test_staff_see_every_learners_events(app: Flask, learners: dict[str, FlaskClient]) -> None:
    data = _feed(learners["staff"])
    assert data["everyone"] is True
    assert len(data["events"]) == data["total"] == 4
    users = [e["user_id"] for e in data["events"]]
    assert len(set(users)) == 3
    own = _feed(learners["staff"], "?mine=1")
    assert len(own["events"]) == own["total"] == 1
    assert own["events"][0]["user_id"] in users
    page = learners["staff"].get("/events").get_data(as_text=True)
    assert 'id="mine"' in page and "every learner" in page
    assert 'id="mine"' not in learners["ada"].get("/events").get_data(as_text=True)


def test_nobody_signed_in_sees_nothing(app: Flask, learners: dict[str, FlaskClient]) -> None:
    anonymous = _client(app, None)
    answer = anonymous.get("/events.json")
    assert answer.status_code == 401
    assert answer.get_json() == {"error": "Sign in to see events."}
    page = anonymous.get("/events")
    assert page.status_code == 302 and page.location == "/?next=/events"
    # After signing in, the learner lands on the page they asked for.
    back = anonymous.post("/signin", data={"username": "cy", "next": "/events"})
    assert back.status_code == 302 and back.location == "/events"
    assert _feed(anonymous)["total"] == 0


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/", "/\\evil"])
def test_sign_in_goes_only_to_pages_of_the_demo(app: Flask, target: str) -> None:
    answer = app.test_client().post("/signin", data={"username": "ada", "next": target})
    assert answer.location == f"/courses/{COURSE_ID}/courseware"


def test_is_staff_is_a_demo_setting(tmp_path: Path) -> None:
    app = create_app(
        {
            "SECRET_KEY": "access-tests",
            "TRACKING_DATABASE_URL": f"sqlite:///{tmp_path / 'demo.db'}",
            "DEMO_STAFF": ("grace",),
        }
    )
    try:
        assert _feed(_client(app, "grace"))["everyone"] is True
        assert _feed(_client(app, "staff"))["everyone"] is False
    finally:
        app.extensions["tracking"].engine.dispose()


def test_unknown_pages_get_the_demos_404(app: Flask) -> None:
    for client in (_client(app, None), _client(app, "ada")):
        answer = client.get("/no/such/page")
        assert answer.status_code == 404
        html = answer.get_data(as_text=True)
        assert "Page not found" in html and "demo.css" in html and 'class="top"' in html
    assert "Back to the course" in html  # signed in: a way back to the course
    assert _client(app, "ada").get(f"/courses/{COURSE_ID}x/courseware").status_code == 404
    # A method the page does not take: the same look.
    wrong = _client(app, None).get("/signin")
    assert wrong.status_code == 405 and "Not allowed" in wrong.get_data(as_text=True)


def test_json_clients_get_json_errors(app: Flask) -> None:
    client = _client(app, None)
    tracking_api = client.get("/activity/no-such-endpoint")
    assert tracking_api.status_code == 404
    assert tracking_api.get_json()["code"] == "not_found"
    asked = client.get("/no/such/page", headers={"Accept": "application/json"})
    assert asked.status_code == 404 and asked.get_json()["status"] == 404


def test_a_crash_gets_the_demos_500(tmp_path: Path) -> None:
    app = create_app(
        {"SECRET_KEY": "t", "TRACKING_DATABASE_URL": f"sqlite:///{tmp_path / 'demo.db'}"}
    )

    @app.get("/crash")
    def crash() -> str:
        raise RuntimeError("a bug")

    try:
        answer = app.test_client().get("/crash")
        assert answer.status_code == 500
        html = answer.get_data(as_text=True)
        assert "Something went wrong" in html and "demo.css" in html
        assert "a bug" not in html and "Traceback" not in html
    finally:
        app.extensions["tracking"].engine.dispose()


def test_the_events_page_in_chromium(browser: Any, live_server: LiveServer) -> None:
    """ada's page lists ada's events only; bob's, bob's; staff's, both and a filter."""
    contexts = []
    for name in ("ada", "bob"):
        context = browser.new_context(base_url=live_server.url)
        contexts.append(context)
        sign_in(context, name)
        # The course tab stays open: closing it would log page_close at some later time.
        course = open_course(context, live_server)
        course.click(".seq-tab[data-unit='2']")
        flushed(course)
    staff_context = browser.new_context(base_url=live_server.url)
    contexts.append(staff_context)
    sign_in(staff_context, "staff")
    try:
        stored = [(e.username, e.event_type) for e in live_server.events()]
        for context, name in zip(contexts[:2], ("ada", "bob"), strict=True):
            mine = [t for user, t in stored if user == name]
            assert set(mine) >= {"load_video", "seq_goto"}
            tab = context.new_page()
            tab.goto("/events")
            tab.wait_for_selector(f"#events-count:text('{len(mine)} stored')")
            tab.locator("#events tbody tr").nth(len(mine) - 1).wait_for()
            assert set(tab.locator("#events td.user").all_inner_texts()) == {name}
            assert tab.locator("#mine").count() == 0
        staff = staff_context.new_page()
        staff.goto("/events")
        staff.wait_for_selector(f"#events-count:text('{len(stored)} stored')")
        staff.locator("#events tbody tr").nth(len(stored) - 1).wait_for()
        assert set(staff.locator("#events td.user").all_inner_texts()) == {"ada", "bob"}
        staff.check("#mine")
        staff.wait_for_selector("#events-count:text('0 stored')")
        assert staff.locator("#events tbody tr").count() == 0
    finally:
        for context in contexts:
            context.close()


def test_only_staff_see_the_library_staff_pages(app: Flask) -> None:
    """The demo registers ``@tracking.dashboard_access`` as "is staff": the event catalog
    page answers staff, and 403 to a learner or nobody signed in."""
    staff = _client(app, "staff").get("/activity/catalog")
    assert staff.status_code == 200
    assert b"play_video" in staff.data
    assert _client(app, "ada").get("/activity/catalog").status_code == 403
    assert _client(app, None).get("/activity/catalog").status_code == 403


def test_staff_events_page_links_the_catalog(app: Flask) -> None:
    assert b'href="/activity/catalog"' in _client(app, "staff").get("/events").data
    assert b'href="/activity/catalog"' not in _client(app, "ada").get("/events").data


def test_only_staff_see_the_dashboard(app: Flask) -> None:
    """The demo turns TRACKING_DASHBOARD on; its ``dashboard_access`` rule is "is staff"."""
    for path in (
        "/activity/dashboard",
        "/activity/dashboard/video",
        "/activity/dashboard/video.csv",
    ):
        assert _client(app, "staff").get(path).status_code == 200, path
        assert _client(app, "ada").get(path).status_code == 403, path
        assert _client(app, None).get(path).status_code == 403, path


def test_staff_events_page_links_the_dashboard(app: Flask) -> None:
    assert b'href="/activity/dashboard"' in _client(app, "staff").get("/events").data
    assert b'href="/activity/dashboard"' not in _client(app, "ada").get("/events").data
