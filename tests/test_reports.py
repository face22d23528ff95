"""Each report against answers worked out by hand for a small course (reports_fixture.py),
stored through the real import (anonymised, as by default), on SQLite and PostgreSQL."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, date, datetime
from typing import Any

import pytest
from flask import Flask

from flask_tracking.reports import (
    active_learners,
    activity,
    health_delivery,
    health_failed,
    health_schema,
    health_skew,
    problem_attempts,
    problems,
    sequence,
    sequence_transitions,
    sequence_units,
    textbook,
    textbook_pages,
    video,
    video_curve,
)
from flask_tracking.tracking_logs import import_lines

from reports_fixture import BOOK, BROKEN, COURSE, LINES, P1, PDFBOOK_PAGE, SEQ
from support import AppFactory

PARIS = "Europe/Paris"
VIDEO_TYPES = {"play_video", "pause_video", "seek_video", "speed_change_video", "stop_video"}


@pytest.fixture
def course(app: Flask) -> Any:
    state = app.extensions["tracking"]
    lines = [("fixture", n, text) for n, text in enumerate([*LINES, BROKEN], 1)]
    summary = import_lines(state.tracker, lines)
    assert (summary.stored, summary.failed) == (len(LINES), 1)
    return state.engine


def test_activity_days_follow_the_time_zone(course: Any) -> None:
    def video_days(tz: str) -> dict[tuple[str, str], int]:
        rows = activity(course, course_id=COURSE, tz=tz)
        return {
            (r["day"], r["event_type"]): r["events"] for r in rows if r["event_type"] in VIDEO_TYPES
        }

    assert video_days("UTC") == {
        ("2026-11-30", "play_video"): 2,
        ("2026-11-30", "pause_video"): 1,
        ("2026-11-30", "seek_video"): 1,
        ("2026-11-30", "stop_video"): 1,
        ("2026-12-01", "play_video"): 2,
        ("2026-12-01", "speed_change_video"): 1,
        ("2026-12-01", "seek_video"): 1,
        ("2026-12-01", "pause_video"): 1,
    }
    paris = video_days(PARIS)
    assert paris[("2026-12-01", "stop_video")] == 1  # 23:30 UTC is 00:30 in Paris
    assert ("2026-11-30", "stop_video") not in paris
    rows = activity(course, course_id=COURSE, tz=PARIS)
    assert sum(r["events"] for r in rows) == len(LINES) - 2  # dave's two are elsewhere
    assert {r["event_source"] for r in rows if r["event_type"] == "problem_check"} == {
        "server",
        "browser",
    }


def test_active_learners_per_day_and_week(course: Any) -> None:
    assert active_learners(course, course_id=COURSE, tz=PARIS) == [
        {"period": "day", "start": "2026-11-29", "learners": 1},
        {"period": "day", "start": "2026-11-30", "learners": 1},
        {"period": "day", "start": "2026-12-01", "learners": 3},
        {"period": "week", "start": "2026-11-23", "learners": 1},
        {"period": "week", "start": "2026-11-30", "learners": 3},
    ]
    everyone = active_learners(course)
    assert {"period": "day", "start": "2026-12-01", "learners": 4} in everyone


def test_video_counts_and_watched_seconds(course: Any) -> None:
    assert video(course, course_id=COURSE) == [
        {
            "video_id": "v1",
            "plays": 3,
            "viewers": 2,
            "pauses": 2,
            "seeks": 2,
            "speed_changes": 1,
            "completions": 1,
            "watched_seconds": 68.0,
        },
        {
            "video_id": "v2",
            "plays": 1,
            "viewers": 1,
            "pauses": 0,
            "seeks": 0,
            "speed_changes": 0,
            "completions": 0,
            "watched_seconds": 0.0,
        },
    ]
    all_courses = {r["video_id"]: r for r in video(course)}
    assert (all_courses["v1"]["plays"], all_courses["v1"]["watched_seconds"]) == (4, 73.0)


def test_video_curve_from_the_runs(course: Any) -> None:
    curve = [
        (r["start"], r["end"], r["views"], r["viewers"])
        for r in video_curve(course, course_id=COURSE)
    ]
    assert curve == [(0, 10, 3, 2), (10, 20, 3, 2), (20, 30, 1, 1), (40, 50, 1, 1), (50, 60, 1, 1)]
    # 30-second bins: alice [0, 25] and [40, 60], bob's three runs are all in bin 0
    wide = video_curve(course, course_id=COURSE, bin_seconds=30)
    assert [(r["start"], r["views"], r["viewers"]) for r in wide] == [(0, 4, 2), (30, 1, 1)]


def test_sequence_mix_units_funnel_and_transitions(course: Any) -> None:
    assert sequence(course, course_id=COURSE) == [
        {"sequence_id": SEQ, "events": 4, "learners": 2, "next": 2, "previous": 1, "goto": 1}
    ]
    assert sequence_units(course, course_id=COURSE) == [
        {"sequence_id": SEQ, "unit": 1, "visits": 0, "learners": 2},
        {"sequence_id": SEQ, "unit": 2, "visits": 2, "learners": 1},
        {"sequence_id": SEQ, "unit": 3, "visits": 2, "learners": 2},
    ]
    assert sequence_transitions(course, course_id=COURSE) == [
        {"sequence_id": SEQ, "from_unit": 1, "to_unit": 2, "move": "next", "count": 1},
        {"sequence_id": SEQ, "from_unit": 1, "to_unit": 3, "move": "goto", "count": 1},
        {"sequence_id": SEQ, "from_unit": 2, "to_unit": 3, "move": "next", "count": 1},
        {"sequence_id": SEQ, "from_unit": 3, "to_unit": 2, "move": "previous", "count": 1},
    ]


def test_textbook_books_pages_and_moves(course: Any) -> None:
    pdfbook = PDFBOOK_PAGE.split("?")[0]
    assert textbook(course, course_id=COURSE) == [
        {
            "book": BOOK,
            "events": 3,
            "learners": 2,
            "pages_viewed": 2,
            "page_turns": 2,
            "gotopage": 1,
            "nextpage": 1,
            "prevpage": 1,
            "other": 0,
        },
        {
            "book": pdfbook,
            "events": 1,
            "learners": 1,
            "pages_viewed": 1,
            "page_turns": 0,
            "gotopage": 1,
            "nextpage": 0,
            "prevpage": 0,
            "other": 0,
        },
    ]
    assert textbook_pages(course, course_id=COURSE) == [
        {"book": BOOK, "page": 5, "views": 2, "learners": 2},
        {"book": BOOK, "page": 6, "views": 1, "learners": 1},
        {"book": pdfbook, "page": 2, "views": 1, "learners": 1},
    ]


def test_problems_from_the_server_checks(course: Any) -> None:
    assert problems(course, course_id=COURSE) == [
        {
            "problem_id": P1,
            "learners": 3,
            "attempts": 4,
            "first_try_correct": 1,
            "eventually_correct": 2,
            "shown_before_correct": 1,
            "shows": 1,
            "resets": 1,
            "saves": 1,
        }
    ]
    assert problem_attempts(course, course_id=COURSE) == [
        {"problem_id": P1, "attempts": 1, "learners": 2},
        {"problem_id": P1, "attempts": 2, "learners": 1},
    ]


def test_health_failed_and_schema(course: Any) -> None:
    failed = health_failed(course)
    assert [(r["day"], r["events"]) for r in failed] == [(datetime.now(UTC).date().isoformat(), 1)]
    assert health_failed(course, until=datetime(2026, 1, 1, tzinfo=UTC)) == []
    rows = health_schema(course, course_id=COURSE)
    totals = [r for r in rows if r["event_type"] is None]
    assert sum(r["events"] for r in totals) == len(LINES) - 2
    unknown = {r["event_type"]: r["events"] for r in rows if r["event_type"] is not None}
    assert unknown == {"my.custom.type": 1}


def test_window_is_half_open(course: Any) -> None:
    since = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    until = datetime(2026, 12, 1, 8, 5, tzinfo=UTC)  # carol's play is at 08:05: left out
    rows = video(course, course_id=COURSE, since=since, until=until)
    assert [(r["video_id"], r["plays"], r["watched_seconds"]) for r in rows] == [("v1", 1, 23.0)]


def test_logger_delivery_and_clock_skew(make_app: AppFactory) -> None:
    """Two tabs post through the Logger's endpoint: one loses its event 3 of 4."""
    app = make_app()
    client = app.test_client()
    now = time.time() * 1000

    def item(seq: int, page: str) -> dict[str, Any]:
        data = {"id": "v9", "code": "html5", "currentTime": 1}
        return {
            "id": str(uuid.uuid4()),
            "event_type": "play_video",
            "event": data,
            "page": page,
            "time": now,
            "seq": seq,
        }

    one = [item(n, "https://lms.example/a") for n in (1, 2, 4)]
    two = [item(n, "https://lms.example/b") for n in (1, 2)]
    answer = client.post("/activity/events", json={"sent_at": now, "events": [*one, *two]})
    assert answer.status_code == 200, answer.data
    engine = app.extensions["tracking"].engine
    today = date.today().isoformat()
    rows = health_delivery(engine)
    assert [
        {k: r[k] for k in ("tabs", "expected", "received", "lost", "loss_rate")} for r in rows
    ] == [{"tabs": 2, "expected": 6, "received": 5, "lost": 1, "loss_rate": 0.1667}]
    assert rows[0]["day"] in (today, datetime.now(UTC).date().isoformat())
    skew = health_skew(engine)
    assert sum(r["events"] for r in skew) == 5
    assert [r["bin"] for r in skew if r["events"]] == ["-1 s to 1 s"]


def test_offset_changes_are_found_to_the_second() -> None:
    from datetime import datetime as dt
    from zoneinfo import ZoneInfo

    from flask_tracking.reports._common import offset_changes

    changes = offset_changes(ZoneInfo(PARIS), dt(2026, 3, 27, 12), dt(2026, 11, 2))
    assert changes == [
        (dt(2026, 3, 27, 12), 3600),
        (dt(2026, 3, 29, 1), 7200),  # 02:00 in Paris became 03:00
        (dt(2026, 10, 25, 1), 3600),
    ]
    assert offset_changes(ZoneInfo("UTC"), dt(2020, 1, 1), dt(2026, 1, 1)) == [(dt(2020, 1, 1), 0)]
