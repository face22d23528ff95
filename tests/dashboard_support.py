"""What the dashboard tests share: the fixture course stored, many videos, reading the
tables of a dashboard page (HTML parsed here, not by the code under test), and the rows a
section should show, worked out from the report functions' own rows."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from typing import Any
from zoneinfo import ZoneInfo

from flask import Flask
from sqlalchemy import insert, select

from flask_tracking.forwarding.models import FAILED, PENDING, deliveries_table
from flask_tracking.models import events_table
from flask_tracking.reports import REPORTS
from flask_tracking.tracking_logs import import_lines

from reports_fixture import BROKEN, COURSE, LINES

#: Page slug -> its sections: (report, role), role "list", "detail" or "series"; and the
#: id column of the list. Written out here, not read from the package.
PAGES: dict[str, tuple[list[tuple[str, str]], str | None]] = {
    "activity": ([("activity", "series"), ("learners", "series")], None),
    "video": ([("video", "list"), ("video-curve", "detail")], "video_id"),
    "sequence": (
        [("sequence", "list"), ("sequence-units", "detail"), ("sequence-transitions", "detail")],
        "sequence_id",
    ),
    "textbook": ([("textbook", "list"), ("textbook-pages", "detail")], "book"),
    "problems": ([("problems", "list"), ("problem-attempts", "detail")], "problem_id"),
    "health": (
        [
            ("health-failed", "series"),
            ("health-schema", "series"),
            ("health-delivery", "series"),
            ("health-skew", "series"),
            ("health-deliveries", "series"),
        ],
        None,
    ),
}
PARIS = "Europe/Paris"
#: A filter set that changes every page's numbers, and the report arguments it means:
#: the days 1 December (from midnight) to 1 December (included) in Paris.
FILTERED = {"course": COURSE, "since": "2026-12-01", "until": "2026-12-01", "tz": PARIS}
FILTERED_ARGS: dict[str, Any] = {
    "course_id": COURSE,
    "since": datetime(2026, 12, 1, tzinfo=ZoneInfo(PARIS)),
    "until": datetime(2026, 12, 2, tzinfo=ZoneInfo(PARIS)),
    "tz": PARIS,
}


def store_fixture(app: Flask) -> None:
    """The hand-made course of reports_fixture.py and one unreadable line (imported);
    two Logger tabs posted to the batch endpoint, one missing its event 3 (for the
    delivery and clock-skew reports); and three deliveries waiting or failed."""
    state = app.extensions["tracking"]
    lines = [("fixture", n, text) for n, text in enumerate([*LINES, BROKEN], 1)]
    summary = import_lines(state.tracker, lines)
    assert (summary.stored, summary.failed) == (len(LINES), 1)

    now = time.time() * 1000

    def item(seq: int, page: str) -> dict[str, Any]:
        data = {"id": "v9", "code": "html5", "currentTime": 1}
        return {"id": str(uuid.uuid4()), "event_type": "play_video", "event": data,
                "page": page, "time": now, "seq": seq}  # fmt: skip

    batch = [
        *(item(n, "https://lms.example/a") for n in (1, 2, 4)),
        item(1, "https://lms.example/b"),
    ]
    answer = app.test_client().post("/activity/events", json={"sent_at": now, "events": batch})
    assert answer.status_code == 200, answer.data

    moment = datetime.now(UTC).replace(tzinfo=None)
    with state.engine.begin() as conn:
        ids = conn.execute(select(events_table.c.id).order_by(events_table.c.id).limit(3))
        conn.execute(
            insert(deliveries_table),
            [
                {
                    "event_pk": pk,
                    "destination": destination,
                    "state": delivery_state,
                    "attempts": 1,
                    "created_at": moment,
                    "updated_at": moment,
                    "next_attempt_at": moment,
                }
                for pk, (destination, delivery_state) in zip(
                    ids.scalars(),
                    [("webhook", PENDING), ("webhook", FAILED), ("lrs", PENDING)],
                    strict=True,
                )
            ],
        )


def video_lines(count: int) -> list[str]:
    """``count`` videos ``video-0001``...: video n played once, or ``n % 7 + 2`` times
    when n is a multiple of 10, each time by another learner, each play followed by a
    pause 10 s later."""
    start = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
    out = []
    for n in range(1, count + 1):
        for viewer in range(n % 7 + 2 if n % 10 == 0 else 1):
            for step, (event_type, position) in enumerate((("play_video", 0), ("pause_video", 10))):
                when = start + timedelta(seconds=n * 60 + viewer * 20 + step * 10)
                payload = {"id": f"video-{n:04d}", "code": "html5", "currentTime": position}
                out.append(
                    json.dumps(
                        {
                            "username": f"learner{viewer}",
                            "event_type": event_type,
                            "event_source": "browser",
                            "time": when.isoformat(),
                            "context": {"course_id": COURSE, "user_id": 1000 + viewer},
                            "event": json.dumps(payload),
                            "session": f"s{viewer}",
                            "page": None,
                        }
                    )
                )
    return out


def store_videos(tracker: Any, count: int) -> None:
    lines = video_lines(count)
    summary = import_lines(tracker, [("videos", n, text) for n, text in enumerate(lines, 1)])
    assert (summary.stored, summary.failed) == (len(lines), 0)


def cells(rows: Iterable[dict[str, Any]]) -> list[list[str]]:
    """Rows as a table's cells: ``None`` empty, the rest ``str()``."""
    return [["" if v is None else str(v) for v in row.values()] for row in rows]


def expected_tables(
    engine: Any, slug: str, args: dict[str, Any], *, size: int = 20, pick: str | None = None
) -> dict[str, list[list[str]]]:
    """Report name -> the cells its table on page ``slug`` shows, from the report rows."""
    sections, id_column = PAGES[slug]
    out: dict[str, list[list[str]]] = {}
    for name, role in sections:
        rows = REPORTS[name](engine, **args)
        if role == "list":
            rows = rows[:size]
            if pick is None and rows and id_column:
                pick = str(rows[0][id_column])
        elif role == "detail":  # the picked one's rows, without the id column
            rows = [
                {k: v for k, v in r.items() if k != id_column}
                for r in rows
                if id_column and str(r[id_column]) == pick
            ]
        out[name] = cells(rows)
    return out


class Tables(HTMLParser):
    """The body cells of each ``<section data-report=NAME>``'s table, and its canvases."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.canvases: list[str] = []
        self.scripts: list[dict[str, str | None]] = []
        self.styled: list[str] = []
        self._section: str | None = None
        self._in_body = False
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if "style" in attributes or tag == "style":
            self.styled.append(tag)
        if tag == "script":
            self.scripts.append(attributes)
        if tag == "section" and attributes.get("data-report"):
            self._section = attributes["data-report"]
            self.tables.setdefault(self._section, [])
        elif tag == "tbody":
            self._in_body = True
        elif tag == "tr" and self._in_body and self._section:
            self.tables[self._section].append([])
        elif tag == "td" and self._in_body:
            self._cell = []
        elif tag == "canvas":
            self.canvases.append(str(attributes.get("id")))

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._cell is not None and self._section:
            self.tables[self._section][-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tbody":
            self._in_body = False
        elif tag == "section":
            self._section = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def parse(html: str) -> Tables:
    tables = Tables()
    tables.feed(html)
    return tables
