"""A small course written by hand for the report tests (answers in test_reports.py).

Times are UTC; Europe/Paris is UTC+1 then, so 23:30 UTC on 30 November is already
1 December in Paris. 30 November 2026 is a Monday.
"""

from __future__ import annotations

import json
from typing import Any

COURSE = "course-v1:Org+R101+2026"
OTHER = "course-v1:Other+X+1"
SEQ = "block-v1:Org+R101+2026+type@sequential+block@s1"
BOOK = "/asset-v1:Org+R101+2026+type@asset+block/book1.pdf"
PDFBOOK_PAGE = "https://lms.example/courses/course-v1:Org+R101+2026/pdfbook/0/?viewer=true"
P1 = "block-v1:Org+R101+2026+type@problem+block@p1"
PEOPLE = {"alice": 1, "bob": 2, "carol": None, "dave": 4}


def line(
    who: str, event_type: str, when: str, event: Any, *, source: str = "browser", **extra: Any
) -> str:
    user_id = PEOPLE[who]
    context: dict[str, Any] = {"course_id": extra.pop("course", COURSE), "org_id": "Org"}
    if user_id is not None:
        context["user_id"] = user_id
    payload = json.dumps(event) if source == "browser" and not isinstance(event, str) else event
    return json.dumps(
        {
            "username": who,
            "event_type": event_type,
            "event_source": source,
            "time": f"2026-{when}+00:00",
            "context": context,
            "event": payload,
            "session": extra.pop("session", f"s-{who}"),
            "page": extra.pop("page", None),
            "host": "lms.example",
            **extra,
        }
    )


def entry(correctness: str) -> dict[str, Any]:
    return {
        "correctness": correctness,
        "npoints": None,
        "msg": "",
        "hint": "",
        "hintmode": None,
        "queuestate": None,
    }


def correct_map(*values: str) -> dict[str, Any]:
    return {f"{P1}_2_{i}": entry(v) for i, v in enumerate(values, 1)}


def check(*values: str, success: str, attempts: int, with_map: bool = True) -> dict[str, Any]:
    """A server ``problem_check`` payload as edX writes it."""
    answers = {f"{P1}_2_{i}": "7" for i in range(1, len(values) + 1)}
    state = {"student_answers": {}, "correct_map": {}, "seed": 1, "done": None, "input_state": {}}
    return {
        "problem_id": P1,
        "state": state,
        "answers": answers,
        "correct_map": correct_map(*values) if with_map else {},
        "success": success,
        "attempts": attempts,
        "grade": values.count("correct"),
        "max_grade": len(values),
        "submission": {},
    }


def v(video: str, **fields: Any) -> dict[str, Any]:
    return {"id": video, "code": "html5", **fields}


LINES: list[str] = [
    line("carol", "page_close", "11-29T12:00:00", ""),
    # video v1: alice runs [0, 25] and [40, 60]; bob [5, 15], [15, 20], [0, 8]
    line("alice", "play_video", "11-30T22:00:00", v("v1", currentTime=0)),
    line("alice", "pause_video", "11-30T22:00:25", v("v1", currentTime=25)),
    line(
        "alice",
        "seek_video",
        "11-30T22:00:30",
        v("v1", old_time=25, new_time=40, type="onSlideSeek"),
    ),
    line("alice", "play_video", "11-30T22:00:31", v("v1", currentTime=40)),
    line("alice", "stop_video", "11-30T23:30:00", v("v1", currentTime=60)),
    line("bob", "play_video", "12-01T08:00:00", v("v1", currentTime=5)),
    line(
        "bob",
        "speed_change_video",
        "12-01T08:00:10",
        v("v1", current_time=15, old_speed="1.0", new_speed="1.5"),
    ),
    line(
        "bob", "seek_video", "12-01T08:00:14", v("v1", old_time=20, new_time=0, type="onSlideSeek")
    ),
    line("bob", "pause_video", "12-01T08:00:22", v("v1", currentTime=8)),
    # v2: carol's play has no end: no run
    line("carol", "play_video", "12-01T08:05:00", v("v2", currentTime=0)),
    # the sequence
    line("alice", "seq_next", "12-01T09:00:00", {"old": 1, "new": 2, "id": SEQ}),
    line("alice", "seq_next", "12-01T09:01:00", {"old": 2, "new": 3, "id": SEQ}),
    line("alice", "seq_prev", "12-01T09:02:00", {"old": 3, "new": 2, "id": SEQ}),
    line("bob", "seq_goto", "12-01T09:03:00", {"old": 1, "new": 3, "id": SEQ}),
    # the textbook
    line(
        "alice", "book", "12-01T10:00:00", {"type": "gotopage", "old": 1, "new": 5, "chapter": BOOK}
    ),
    line(
        "alice", "book", "12-01T10:01:00", {"type": "nextpage", "old": 5, "new": 6, "chapter": BOOK}
    ),
    line(
        "bob", "book", "12-01T10:02:00", {"type": "prevpage", "old": 6, "new": 5, "chapter": BOOK}
    ),
    line(
        "carol",
        "book",
        "12-01T10:03:00",
        {"type": "gotopage", "old": 1, "new": 2},
        page=PDFBOOK_PAGE,
    ),
    # the problem, server side
    line(
        "alice",
        "problem_check",
        "12-01T11:00:00",
        check("incorrect", success="incorrect", attempts=1),
        source="server",
    ),
    line("alice", "showanswer", "12-01T11:01:00", {"problem_id": P1}, source="server"),
    line(
        "alice",
        "problem_check",
        "12-01T11:02:00",
        check("correct", success="correct", attempts=2),
        source="server",
    ),
    line(
        "bob",
        "problem_check",
        "12-01T11:03:00",
        check("correct", "correct", success="correct", attempts=1),
        source="server",
    ),
    line(
        "bob",
        "reset_problem",
        "12-01T11:04:00",
        {"problem_id": P1, "old_state": {}, "new_state": {}},
        source="server",
    ),
    line(
        "bob",
        "save_problem_success",
        "12-01T11:05:00",
        {"problem_id": P1, "state": {}, "answers": {}},
        source="server",
    ),
    line(
        "carol",
        "problem_check",
        "12-01T11:06:00",
        check("incorrect", success="incorrect", attempts=1, with_map=False),
        source="server",
    ),
    # the browser's problem_check (raw answers) is not an attempt
    line("carol", "problem_check", "12-01T11:07:00", f"input_{P1}_2_1=7"),
    line("alice", "my.custom.type", "12-01T12:30:00", {"x": 1}, source="server"),
    # another course
    line("dave", "play_video", "12-01T12:00:00", v("v1", currentTime=0), course=OTHER),
    line("dave", "pause_video", "12-01T12:00:05", v("v1", currentTime=5), course=OTHER),
]
#: Not a tracking-log line: it goes to the failed table.
BROKEN = "this is not json"
