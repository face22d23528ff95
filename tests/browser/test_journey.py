"""A learner's journey through the demo course, in Chromium, checked in the event table."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from demo_app.course import COURSE_ID, ORG_ID, PROBLEM_ID, SEQUENCE_ID, VIDEO_ID
from demo_app.views.auth import user_id_for
from flask_tracking import TrackingEvent

from livedemo import LEARNER, LiveServer, flushed, open_course, sign_in

CHAPTER = "/static/media/textbook.pdf"
WRONG = {"input_checkpoint_2_1": "41", "input_checkpoint_3_1": "choice_0"}
RIGHT = {"input_checkpoint_2_1": "42", "input_checkpoint_3_1": "choice_0"}
#: How much later than its server twin a browser event may look: its time is the
#: client's, shifted by the batch's trip to the server.
TWIN_SLACK = timedelta(milliseconds=50)


def _subset(expected: dict[str, Any], actual: Any) -> bool:
    return isinstance(actual, dict) and all(actual.get(k) == v for k, v in expected.items())


def _check_identity(rows: list[TrackingEvent]) -> None:
    """Identity comes from the session: the same learner and session on every event."""
    assert {r.username for r in rows} == {LEARNER}
    assert {r.user_id for r in rows} == {str(user_id_for(LEARNER))}
    sessions = {r.session for r in rows}
    assert len(sessions) == 1 and sessions != {""}, sessions
    assert {r.course_id for r in rows} == {COURSE_ID}
    assert {r.org_id for r in rows} == {ORG_ID}
    assert {r.schema_status for r in rows} == {"valid"}


def _check_no_duplicates(rows: list[TrackingEvent]) -> None:
    ids = [r.event_id for r in rows]
    assert len(ids) == len(set(ids))
    browser = [(r.event_type, r.seq, r.client_time) for r in rows if r.event_source == "browser"]
    assert len(browser) == len(set(browser)), "a browser event was stored twice"


def _video(page: Any, script: str) -> Any:
    """Drive the <video> element (Playwright cannot click native media controls)."""
    return page.locator("#lecture").evaluate(script)


def test_learner_journey(context: Any, live_server: LiveServer) -> None:
    page = context.new_page()
    page.goto("/")
    page.fill("#username", LEARNER)
    page.press("#username", "Enter")
    page.wait_for_url("**/courseware")
    page.wait_for_function(
        "() => window.Logger && document.getElementById('lecture').readyState >= 1"
    )

    # Unit 1, the lecture: play, pause, seek, change the speed.
    _video(page, "v => v.play()")
    page.wait_for_function("() => document.getElementById('lecture').currentTime > 1")
    _video(page, "v => v.pause()")
    _video(
        page,
        """v => new Promise(done => {
            v.addEventListener('seeked', done, {once: true});
            v.currentTime = 5;
        })""",
    )
    page.select_option("#speed", "1.5")
    assert _video(page, "v => v.playbackRate") == 1.5

    # The sequence: go to unit 3, next, previous.
    page.click(".seq-tab[data-unit='3']")
    page.wait_for_selector("#book[data-state=ready]")
    page.click("#seq-next")
    page.wait_for_selector("#unit-4:not([hidden])")
    page.click("#seq-prev")
    page.wait_for_selector("#unit-3:not([hidden])")

    # The textbook: a page forward, back, then to page 4 by typing it.
    page.click("#book-next")
    page.wait_for_function("() => document.getElementById('book-page').value === '2'")
    page.click("#book-prev")
    page.wait_for_function("() => document.getElementById('book-page').value === '1'")
    page.fill("#book-page", "4")
    page.press("#book-page", "Enter")
    page.wait_for_function("() => document.getElementById('book-page').value === '4'")

    # The problem: a wrong answer, a right one, show the answer, reset.
    page.click("#seq-next")
    page.fill("#input_checkpoint_2_1", "41")
    page.check("input[name=input_checkpoint_3_1][value=choice_0]")
    page.click("#problem-check")
    page.wait_for_selector("#problem-status.bad")
    page.fill("#input_checkpoint_2_1", "42")
    page.click("#problem-check")
    page.wait_for_selector("#problem-status.good")
    page.click("#problem-show")
    page.wait_for_selector(".question .answer:not([hidden])")
    page.click("#problem-reset")
    page.wait_for_function("() => document.getElementById('problem-reset').disabled")

    # Everything logged so far is stored; then the learner closes the tab.
    assert flushed(page) == {
        "queued": 0,
        "sent": 16,
        "retried": 0,
        "dropped": 0,
    }
    page.close(run_before_unload=True)
    rows = live_server.wait_for_events(
        lambda rows: any(r.event_type == "page_close" for r in rows), what="page_close"
    )

    browser = sorted((r for r in rows if r.event_source == "browser"), key=lambda r: r.seq or 0)
    server = [r for r in rows if r.event_source == "server"]
    assert len(rows) == len(browser) + len(server)

    pause_at = browser[2].event["currentTime"]
    video = {"id": VIDEO_ID, "code": "html5"}
    expected_browser: list[tuple[str, Any]] = [
        ("load_video", {**video, "currentTime": 0, "speed": "1.0"}),
        ("play_video", {**video, "speed": "1.0"}),
        ("pause_video", {**video, "speed": "1.0"}),
        ("seek_video", {**video, "old_time": pause_at, "new_time": 5, "type": "onSlideSeek"}),
        (
            "speed_change_video",
            {**video, "currentTime": 5, "current_time": 5, "old_speed": "1.0", "new_speed": "1.50"},
        ),
        ("seq_goto", {"old": 1, "new": 3, "id": SEQUENCE_ID}),
        ("seq_next", {"old": 3, "new": 4, "id": SEQUENCE_ID}),
        ("seq_prev", {"old": 4, "new": 3, "id": SEQUENCE_ID}),
        ("book", {"type": "nextpage", "old": 1, "new": 2, "chapter": CHAPTER}),
        ("book", {"type": "prevpage", "old": 2, "new": 1, "chapter": CHAPTER}),
        ("book", {"type": "gotopage", "old": 1, "new": 4, "chapter": CHAPTER}),
        ("seq_next", {"old": 3, "new": 4, "id": SEQUENCE_ID}),
        ("problem_check", WRONG),
        ("problem_check", RIGHT),
        ("problem_show", {"problem": PROBLEM_ID}),
        ("problem_reset", RIGHT),
        ("page_close", {}),
    ]
    assert [(r.event_type, r.seq) for r in browser] == [
        (event_type, seq) for seq, (event_type, _) in enumerate(expected_browser, start=1)
    ]
    for row, (event_type, fields) in zip(browser, expected_browser, strict=True):
        assert _subset(fields, row.event), (event_type, row.event)
        assert row.page and row.page.startswith(live_server.course_url), row.page
        assert row.client_time is not None

    # The video payloads: positions, and the duration of the 8-second lecture.
    assert browser[1].event["currentTime"] < 0.5
    assert 1 < pause_at < 5
    assert all(abs(r.event["duration"] - 8) < 0.1 for r in browser[:5])
    # The answers went as capa's query string; the payload keeps it decoded.
    assert browser[12].event_raw in (None, "input_checkpoint_2_1=41&input_checkpoint_3_1=choice_0")
    assert browser[16].event["visible_ms"] > 0

    answers = {k.removeprefix("input_"): v for k, v in WRONG.items()}
    right_answers = {k.removeprefix("input_"): v for k, v in RIGHT.items()}
    assert [r.event_type for r in server] == [
        "problem_check",
        "problem_check",
        "showanswer",
        "reset_problem",
    ]
    first, second, shown, reset = (r.event for r in server)
    assert first["problem_id"] == second["problem_id"] == PROBLEM_ID
    assert (first["success"], first["attempts"], first["grade"]) == ("incorrect", 1, 1)
    assert first["answers"] == answers
    assert first["correct_map"]["checkpoint_2_1"]["correctness"] == "incorrect"
    assert first["correct_map"]["checkpoint_3_1"]["correctness"] == "correct"
    assert set(first["correct_map"]["checkpoint_2_1"]) == {
        "correctness",
        "npoints",
        "msg",
        "hint",
        "hintmode",
        "queuestate",
    }
    assert first["state"]["done"] is False
    assert (second["success"], second["attempts"], second["grade"]) == ("correct", 2, 2)
    assert second["answers"] == right_answers
    assert {v["correctness"] for v in second["correct_map"].values()} == {"correct"}
    assert second["state"]["student_answers"] == answers
    assert second["max_grade"] == 2
    assert shown == {"problem_id": PROBLEM_ID}
    assert reset["problem_id"] == PROBLEM_ID
    assert reset["old_state"]["student_answers"] == right_answers
    assert reset["old_state"]["done"] is True
    assert reset["new_state"]["student_answers"] == {}
    assert reset["new_state"]["done"] is False
    assert all(r.page is None for r in server)

    # Each server event comes after the browser event of the same click, and before
    # the next click's.
    for server_row, twin_seq in zip(server, (13, 14, 15, 16), strict=True):
        twin, after = browser[twin_seq - 1], browser[twin_seq]
        assert twin.time - TWIN_SLACK <= server_row.time <= after.time, server_row.event_type

    _check_identity(rows)
    _check_no_duplicates(rows)


def test_problem_save(context: Any, live_server: LiveServer) -> None:
    """Save: the browser's problem_save and the server's save_problem_success."""
    sign_in(context)
    page = open_course(context, live_server)
    page.click(".seq-tab[data-unit='4']")
    page.fill("#input_checkpoint_2_1", "6 x 7")
    page.click("#problem-save")
    page.wait_for_selector("#problem-status:text('saved')")
    flushed(page)

    rows = live_server.events(["problem_save", "save_problem_success"])
    assert [(r.event_type, r.event_source) for r in rows] in (
        [("problem_save", "browser"), ("save_problem_success", "server")],
        [("save_problem_success", "server"), ("problem_save", "browser")],
    )
    by_source = {r.event_source: r for r in rows}
    assert by_source["browser"].event_raw == "input_checkpoint_2_1=6%20x%207"
    saved = by_source["server"].event
    assert saved["problem_id"] == PROBLEM_ID
    assert saved["answers"] == {"checkpoint_2_1": "6 x 7", "checkpoint_3_1": ""}
    assert saved["state"]["done"] is False
    _check_identity(rows)


def test_events_page_shows_new_events_live(context: Any, live_server: LiveServer) -> None:
    sign_in(context)
    events_page = context.new_page()
    events_page.goto("/events")
    events_page.wait_for_selector("#events-count:text('0 stored')")

    course = open_course(context, live_server)
    course.click(".seq-tab[data-unit='2']")
    flushed(course)

    # Without reloading, the events page shows them within a couple of seconds.
    row = events_page.locator("#events tbody tr", has_text="seq_goto")
    row.wait_for()
    assert "ada" in row.inner_text()
    assert events_page.locator("#events tbody tr", has_text="load_video").count() == 1


@pytest.mark.parametrize("unit", [1, 2, 3, 4])
def test_every_unit_opens_without_errors(context: Any, live_server: LiveServer, unit: int) -> None:
    sign_in(context)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.extend([msg.text] if msg.type == "error" else []))
    page.goto(f"{live_server.course_url}?unit={unit}")
    page.wait_for_selector(f"#unit-{unit}:not([hidden])")
    if unit == 3:
        page.wait_for_selector("#book[data-state=ready]")
        assert page.inner_text("#book-pages") == "5"
    assert errors == []
