"""The reports that aggregate in SQL give what their Python replay gives, on events the
SQL could get wrong: missing and null fields, the newer ``current_tab``/``target_tab``,
whole floats as units, fractions, learners known only by name or by nothing, anonymised
ids, unknown moves, and empty or missing books; for problems, checks at the same time
(the id decides), correct maps missing, empty, not objects or with odd entries, answers
shown before and after the first correct check, resets and saves; on SQLite and
PostgreSQL.

An event with an odd value (an id written as a number) sends a report to its Python
replay: the rows without that event's own key must then be the SQL rows, unchanged.
"""

from __future__ import annotations

import importlib
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from flask_tracking.reports import (
    _sql,
    health_skew,
    problem_attempts,
    problems,
    sequence,
    sequence_transitions,
    sequence_units,
    textbook,
    textbook_pages,
)

from support import AppFactory, insert_event_rows

T0 = datetime(2026, 3, 28, 22, 30, tzinfo=UTC)  # the night Paris moves to summer time
COURSE = "course-v1:Edge+SQL+2026"
SEQ = "block-v1:Edge+type@sequential+block@s1"
BOOK = "/asset-v1:Edge+type@asset+block/book.pdf"

#: (user, event type, payload): the moves and page turns the SQL must read like Python.
EVENTS: list[tuple[dict[str, Any] | None, str, dict[str, Any]]] = [
    ({"username": "ada"}, "seq_next", {"id": SEQ, "old": 1, "new": 2}),
    ({"username": "ada"}, "seq_next", {"id": SEQ, "old": 2.0, "new": 3.0}),
    ({"username": "ada"}, "seq_prev", {"id": SEQ, "old": None, "current_tab": 3, "new": 2}),
    ({"username": "bo"}, "seq_goto", {"id": SEQ, "current_tab": 1, "target_tab": 4}),
    ({"username": "bo"}, "seq_goto", {"id": SEQ, "old": 4, "new": 2.5}),
    ({"username": "bo"}, "seq_next", {"id": SEQ}),
    ({"user_id": 7}, "seq_next", {"id": SEQ, "old": 0, "new": 1}),
    ({"user_id": 7, "username": "cy"}, "seq_next", {"id": SEQ, "old": 1, "new": 2}),
    (None, "seq_next", {"id": SEQ, "old": 2, "new": 3}),
    ({"username": "ada"}, "seq_next", {"old": 1, "new": 2}),
    ({"username": "ada"}, "seq_goto", {"id": "s2", "old": -1, "new": 1e3}),
    ({"username": "ada"}, "book", {"type": "gotopage", "new": 5, "chapter": BOOK}),
    ({"username": "ada"}, "book", {"type": "nextpage", "new": 6.0, "chapter": BOOK}),
    ({"username": "bo"}, "book", {"type": "prevpage", "new": 5, "chapter": BOOK}),
    ({"username": "bo"}, "book", {"type": "zoom", "new": None, "chapter": BOOK}),
    ({"user_id": 7}, "book", {"type": "nextpage", "chapter": BOOK}),
    (None, "book", {"type": "nextpage", "new": 7.5, "chapter": "/other.pdf"}),
]


def _row(n: int, user: dict[str, Any] | None, event_type: str, data: Any) -> dict[str, Any]:
    """A stored event, written straight into the table (as an import of old logs may hold
    it: the schemas would refuse some of these payloads at ingest)."""
    when = (T0 + timedelta(minutes=7 * n)).replace(tzinfo=None)
    user = user or {}
    return {
        "event_id": f"00000000-0000-4000-8000-{n:012d}",
        "event_type": event_type,
        "event_source": "browser",
        "time": when,
        "username": user.get("username"),
        "user_id": user.get("user_id"),
        "event": data,
        "event_format": "json",
        "context": {"course_id": COURSE},
        "course_id": COURSE,
        "schema_status": "valid",
        "received_at": when,
    }


def _store(engine: Any, events: list[tuple[dict[str, Any] | None, str, Any]], start: int) -> None:
    with engine.begin() as conn:
        rows = [_row(start + n, *event) for n, event in enumerate(events)]
        insert_event_rows(conn, rows)


#: Learner identities as ``TRACKING_ANONYMIZE`` stores them (hex digests), and clear.
ANONYMISED = {"ada": "a1f0c2", "bo": "0b77de", "cy": "c9c9c9"}


@pytest.fixture(params=[True, False], ids=["anonymised", "clear"])
def engine(make_app: AppFactory, request: pytest.FixtureRequest) -> Any:
    engine = make_app().extensions["tracking"].engine
    events = []
    for user, event_type, data in EVENTS:
        if user and request.param and "username" in user:
            user = {**user, "username": ANONYMISED[user["username"]]}
        if user and "user_id" in user:
            user = {**user, "user_id": str(user["user_id"])}
        events.append((user, event_type, data))
    _store(engine, events, 0)
    return engine


def _odd_rows(engine: Any, module: str) -> int:
    m = importlib.import_module(f"flask_tracking.reports.{module}")._events(
        engine, None, None, None
    )
    return int(_sql.run(engine, select(func.sum(m.c.odd)))[0][0] or 0)


def _reports(engine: Any) -> dict[str, list[dict[str, Any]]]:
    return {
        "sequence": sequence(engine, course_id=COURSE),
        "sequence-units": sequence_units(engine, course_id=COURSE),
        "sequence-transitions": sequence_transitions(engine, course_id=COURSE),
        "textbook": textbook(engine, course_id=COURSE),
        "textbook-pages": textbook_pages(engine, course_id=COURSE),
    }


def test_sql_and_python_give_the_same_rows(engine: Any) -> None:
    assert _odd_rows(engine, "sequence") == 0 and _odd_rows(engine, "textbook") == 0
    by_sql = _reports(engine)
    assert by_sql["sequence"][0]["events"] == 9 and len(by_sql["sequence"]) == 2
    odd = [  # ids and chapters written as numbers, units and pages as strings or booleans
        ({"username": "zed"}, "seq_next", {"id": 99, "old": "1", "new": True}),
        ({"username": "zed"}, "book", {"type": "nextpage", "new": "9", "chapter": 99}),
    ]
    _store(engine, odd, 100)
    assert _odd_rows(engine, "sequence") == 1 and _odd_rows(engine, "textbook") == 1
    by_python = _reports(engine)
    for name in ("sequence", "sequence-units", "sequence-transitions"):
        kept = [row for row in by_python[name] if row["sequence_id"] != "99"]
        assert kept == by_sql[name], name
    for name in ("textbook", "textbook-pages"):
        kept = [
            row for row in by_python[name] if row["book"] == BOOK or row["book"] == "/other.pdf"
        ]
        assert kept == by_sql[name], name


def test_skew_bins_at_their_bounds(make_app: AppFactory) -> None:
    """A bin's upper bound belongs to the next bin (counted in SQL by a CASE)."""
    app = make_app()
    engine = app.extensions["tracking"].engine
    with engine.begin() as conn:
        rows = []
        for n, skew in enumerate((-60_001, -60_000, -5_000, -1_001, -1_000, 999, 1_000, 5_000,
                                  59_999, 60_000, 10**12, None)):  # fmt: skip
            rows.append(
                {
                    "event_id": f"00000000-0000-4000-8000-{n:012d}",
                    "event_type": "page_close",
                    "event_source": "browser",
                    "time": datetime(2026, 3, 1),
                    "event": {},
                    "event_format": "json",
                    "context": {},
                    "schema_status": "valid",
                    "received_at": datetime(2026, 3, 1),
                    "clock_skew_ms": skew,
                }
            )
        insert_event_rows(conn, rows)
    got = {row["bin"]: row["events"] for row in health_skew(engine)}
    assert got == {
        "< -60 s": 1,
        "-60 s to -5 s": 1,
        "-5 s to -1 s": 2,
        "-1 s to 1 s": 2,
        "1 s to 5 s": 1,
        "5 s to 60 s": 2,
        ">= 60 s": 2,
    }


P1, P2 = "block-v1:Edge+type@problem+block@p1", "block-v1:Edge+type@problem+block@p2"
RIGHT = {"a_1": {"correctness": "correct"}, "a_2": {"correctness": "correct"}}
WRONG = {"a_1": {"correctness": "correct"}, "a_2": {"correctness": "incorrect"}}
TRUE = {"a": {"correctness": True}}
BY_SUCCESS = {"correct_map": "x", "success": "correct"}  # not a map: success decides

#: (second, user, event type, payload) of server events: ties in time (the id decides),
#: correct maps missing, empty, odd or partly wrong, answers shown before and after.
PROBLEM_EVENTS: list[tuple[int, dict[str, Any] | None, str, dict[str, Any]]] = [
    (0, {"username": "ada"}, "showanswer", {"problem_id": P1}),
    (0, {"username": "ada"}, "problem_check", {"problem_id": P1, "correct_map": WRONG}),
    (0, {"username": "ada"}, "problem_check", {"problem_id": P1, "correct_map": RIGHT}),
    (1, {"username": "ada"}, "reset_problem", {"problem_id": P1}),
    (2, {"username": "bo"}, "problem_check", {"problem_id": P1, "success": "correct"}),
    (2, {"username": "bo"}, "show_answer", {"problem_id": P1}),
    (3, {"username": "bo"}, "problem_check", {"problem_id": P1, "correct_map": WRONG}),
    (4, {"user_id": 7}, "problem_check", {"problem_id": P1, "correct_map": {}, "attempts": "1"}),
    (4, {"user_id": 7}, "problem_check", {"problem_id": P1, "correct_map": {"a": "correct"}}),
    (5, {"user_id": 7, "username": "cy"}, "save_problem_success", {"problem_id": P1}),
    (5, {"username": "cy"}, "problem_check", {"problem_id": P1, "correct_map": [RIGHT]}),
    (5, {"username": "cy"}, "problem_check", {"problem_id": P1, "success": "correct"}),
    (6, {"username": "cy"}, "problem_check", {"problem_id": P1, "correct_map": {"a": {}}}),
    (6, {"username": "cy"}, "save_problem_fail", {"problem_id": P2, "attempts": "3"}),
    (7, {"username": "cy"}, "showanswer", {"problem_id": P2}),
    (8, None, "problem_check", {"problem_id": P2, "correct_map": RIGHT}),
    (8, {"username": "ada"}, "problem_check", {"correct_map": RIGHT}),
    (9, {"username": "ada"}, "problem_check", {"problem_id": "", "correct_map": RIGHT}),
    (9, {"username": "bo"}, "problem_check", {"problem_id": P2, "correct_map": TRUE}),
    (10, {"username": "bo"}, "problem_check", {"problem_id": P2, "correct_map": None}),
    (10, {"username": "bo"}, "showanswer", {"problem_id": P2}),
    (11, {"username": "bo"}, "problem_check", {"problem_id": P2} | BY_SUCCESS),
]  # fmt: skip


def _store_problems(engine: Any, events: list[Any], start: int, anonymised: bool) -> None:
    rows = []
    for n, (second, user, event_type, data) in enumerate(events):
        user = dict(user or {})
        if anonymised and "username" in user:
            user["username"] = ANONYMISED.get(user["username"], user["username"])
        if "user_id" in user:
            user["user_id"] = str(user["user_id"])
        row = _row(start + n, user, event_type, data)
        when = (T0 + timedelta(seconds=second)).replace(tzinfo=None)
        rows.append(row | {"event_source": "server", "time": when, "received_at": when})
    with engine.begin() as conn:
        insert_event_rows(conn, rows)


def _odd_problems(engine: Any) -> int:
    found = importlib.import_module("flask_tracking.reports.problems")._learners(
        engine, None, None, None
    )
    return int(_sql.run(engine, select(func.sum(found.c.odd)))[0][0] or 0)


@pytest.mark.parametrize("anonymised", [True, False], ids=["anonymised", "clear"])
def test_problems_sql_equals_the_replay(make_app: AppFactory, anonymised: bool) -> None:
    engine = make_app().extensions["tracking"].engine
    # stored in an order other than the list's: at equal times the id decides (ada: shown,
    # right, then wrong; bo: right, then shown), as in the replay
    _store_problems(engine, PROBLEM_EVENTS[::2], 0, anonymised)
    _store_problems(engine, PROBLEM_EVENTS[1::2], 1000, anonymised)
    browser = {"problem_id": P2, "correct_map": RIGHT}  # the browser's check: not counted
    with engine.begin() as conn:
        insert_event_rows(conn, [_row(2000, {"username": "zoe"}, "problem_check", browser)])
    assert _odd_problems(engine) == 0
    by_sql = problems(engine, course_id=COURSE), problem_attempts(engine, course_id=COURSE)
    assert by_sql[0][0] == {
        "problem_id": P1, "learners": 4, "attempts": 9, "first_try_correct": 2,
        "eventually_correct": 3, "shown_before_correct": 1, "shows": 2, "resets": 1, "saves": 1,
    }  # fmt: skip
    assert by_sql[0][1:] == [
        {"problem_id": "", "learners": 1, "attempts": 1, "first_try_correct": 1,
         "eventually_correct": 1, "shown_before_correct": 0, "shows": 0, "resets": 0, "saves": 0},
        {"problem_id": P2, "learners": 1, "attempts": 3, "first_try_correct": 0,
         "eventually_correct": 1, "shown_before_correct": 1, "shows": 2, "resets": 0, "saves": 1},
    ]  # fmt: skip
    assert by_sql[1] == [
        {"problem_id": "", "attempts": 1, "learners": 1},
        {"problem_id": P1, "attempts": 2, "learners": 3},
        {"problem_id": P1, "attempts": 3, "learners": 1},
        {"problem_id": P2, "attempts": 3, "learners": 1},
    ]
    odd = [(11, {"username": "zed"}, "problem_check", {"problem_id": 99, "success": "correct"})]
    _store_problems(engine, odd, 3000, anonymised)
    assert _odd_problems(engine) == 1
    by_python = problems(engine, course_id=COURSE), problem_attempts(engine, course_id=COURSE)
    assert [row for row in by_python[0] if row["problem_id"] != "99"] == by_sql[0]
    assert [row for row in by_python[1] if row["problem_id"] != "99"] == by_sql[1]
