"""The questions of docs/querying.md, answered with tracking.events(), on both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Flask
from sqlalchemy import Integer, func

from flask_tracking import Tracking, TrackingEvent

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
COURSE = "course-v1:Demo+Phys101+2026"
tracking = Tracking()


def add(
    event_type: str,
    data: Any,
    *,
    user: str,
    at: timedelta,
    source: str = "browser",
    course: str = COURSE,
) -> None:
    tracker = tracking.tracker
    event = tracker.build(
        event_type,
        data,
        source=source,
        time=T0 + at,
        user={"username": user, "user_id": None},
        context={"course_id": course},
    )
    tracker.record([event])


def run(query: Any) -> list[tuple[Any, ...]]:
    with tracking.engine.connect() as conn:
        return [tuple(row) for row in conn.execute(query)]


def video(vid: str, t: float = 0.0) -> dict[str, Any]:
    return {"id": vid, "code": "html5", "currentTime": t, "speed": "1.0"}


def test_plays_per_video_per_day(plain_app: Flask) -> None:
    with plain_app.app_context():
        add("play_video", video("intro"), user="a", at=timedelta(hours=1))
        add("play_video", video("intro", 30), user="b", at=timedelta(hours=2))
        add("play_video", video("intro"), user="a", at=timedelta(days=1))
        add("play_video", video("waves"), user="a", at=timedelta(days=1, hours=1))
        add("pause_video", video("waves"), user="a", at=timedelta(days=1, hours=2))
        add("play_video", video("intro"), user="c", at=timedelta(hours=3), course="other")

        video_id = TrackingEvent.event["id"].as_string()
        day = func.date(TrackingEvent.time)
        query = (
            tracking.events("play_video", course_id=COURSE)
            .with_only_columns(video_id, day, func.count())
            .group_by(video_id, day)
            .order_by(video_id, day)
        )
        result = [(v, str(d), n) for v, d, n in run(query)]
    assert result == [
        ("intro", "2026-03-02", 2),
        ("intro", "2026-03-03", 1),
        ("waves", "2026-03-03", 1),
    ]


def test_learners_reaching_each_unit_of_a_sequence(plain_app: Flask) -> None:
    seq = "block-v1:Demo+Phys101+2026+type@sequential+block@week1"
    with plain_app.app_context():
        add("seq_goto", {"old": 1, "new": 3, "id": seq}, user="a", at=timedelta(minutes=1))
        add("seq_next", {"old": 1, "new": 2, "id": seq}, user="b", at=timedelta(minutes=2))
        add("seq_next", {"old": 2, "new": 3, "id": seq}, user="b", at=timedelta(minutes=3))
        add("seq_prev", {"old": 3, "new": 2, "id": seq}, user="b", at=timedelta(minutes=4))
        add("seq_next", {"old": 1, "new": 2, "id": "other"}, user="c", at=timedelta(minutes=5))

        unit = TrackingEvent.event["new"].as_integer()
        query = (
            tracking.events(["seq_goto", "seq_next", "seq_prev"])
            .where(TrackingEvent.event["id"].as_string() == seq)
            .with_only_columns(unit, func.count(TrackingEvent.username.distinct()))
            .group_by(unit)
            .order_by(unit)
        )
        assert run(query) == [(2, 1), (3, 2)]


def test_pages_turned_per_chapter(plain_app: Flask) -> None:
    ch1, ch2 = "/asset/Unit_1.pdf", "/asset/Unit_2.pdf"
    with plain_app.app_context():
        for n, (kind, chapter) in enumerate(
            [("nextpage", ch1), ("nextpage", ch1), ("prevpage", ch1), ("gotopage", ch2)]
        ):
            data = {"type": kind, "old": 1, "new": 2, "chapter": chapter}
            add("book", data, user="a", at=timedelta(minutes=n))

        chapter = TrackingEvent.event["chapter"].as_string()
        query = (
            tracking.events("book", since=T0, until=T0 + timedelta(days=1))
            .with_only_columns(chapter, func.count())
            .group_by(chapter)
            .order_by(chapter)
        )
        assert run(query) == [(ch1, 3), (ch2, 1)]


def test_first_try_correctness_per_problem(plain_app: Flask) -> None:
    def check(problem: str, user: str, attempts: int, success: str, minute: int) -> None:
        data = {
            "problem_id": problem,
            "answers": {f"{problem}_2_1": "42"},
            "attempts": attempts,
            "success": success,
            "state": {"seed": 1},
            "correct_map": {
                f"{problem}_2_1": {
                    "correctness": success,
                    "npoints": None,
                    "msg": "",
                    "hint": "",
                    "hintmode": None,
                    "queuestate": None,
                }
            },
            "grade": 1 if success == "correct" else 0,
            "max_grade": 1,
        }
        add("problem_check", data, user=user, at=timedelta(minutes=minute), source="server")

    with plain_app.app_context():
        check("p1", "a", 1, "correct", 1)
        check("p1", "b", 1, "incorrect", 2)
        check("p1", "b", 2, "correct", 3)
        check("p2", "a", 1, "incorrect", 4)

        problem = TrackingEvent.event["problem_id"].as_string()
        correct = func.sum((TrackingEvent.event["success"].as_string() == "correct").cast(Integer))
        query = (
            tracking.events("problem_check", source="server")
            .where(TrackingEvent.event["attempts"].as_integer() == 1)
            .with_only_columns(problem, func.count(), correct)
            .group_by(problem)
            .order_by(problem)
        )
        assert run(query) == [("p1", 2, 1), ("p2", 1, 0)]


def test_events_filters_by_user_and_source(plain_app: Flask) -> None:
    with plain_app.app_context():
        add("play_video", video("intro"), user="a", at=timedelta(0))
        add("play_video", video("intro"), user="b", at=timedelta(0))
        rows = run(tracking.events(username="a", source="browser"))
    assert len(rows) == 1
