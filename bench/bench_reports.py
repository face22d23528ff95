"""Every report of ``flask_tracking.reports`` on 1,000,000 events, SQLite and PostgreSQL.

The events are made up (seeded): 200 learners in 2 courses over 60 days, 50 videos (a
learner plays, pauses, seeks, changes speed, stops), 20 sequences of 8 units, 10 PDF
books, 100 problems (server ``problem_check`` with a ``correct_map``, ``showanswer``,
``reset_problem``, ``save_problem_success``), and page events; browser events carry the
Logger's ``seq`` (a few missing) and a clock skew. Roughly: video 40 %, sequence 15 %,
book 10 %, problems 15 %, other 20 %. They are written straight into ``tracking_events``
(``executemany`` on SQLite, ``COPY`` on PostgreSQL), not through the pipeline: the bench
is about reading.

Each report runs over the whole window (``since``/``until`` around all the events) with
no course, and again for one course; beside it, the same-run baseline: ``SELECT count(*)``
over the same window (and course). Best of ``BENCH_REPORTS_ROUNDS`` (default 1 run after a
warm-up). ``BENCH_REPORTS_EVENTS`` (or ``python -m bench.bench_reports --events N``)
changes the event count; ``BENCH_REPORTS_DATABASES`` (``sqlite,postgresql``) which
databases.
"""

from __future__ import annotations

import json
import os
import random
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from . import note
from . import postgres_url as shared_postgres_url

EVENTS = int(os.environ.get("BENCH_REPORTS_EVENTS", "1000000"))
ROUNDS = int(os.environ.get("BENCH_REPORTS_ROUNDS", "1"))
DATABASES = os.environ.get("BENCH_REPORTS_DATABASES", "sqlite,postgresql").split(",")
SCHEMA = "bench_reports"
SEED = 20261202
START = datetime(2026, 9, 1)
DAYS = 60
LEARNERS, VIDEOS, SEQUENCES, UNITS, BOOKS, PROBLEMS = 200, 50, 20, 8, 10, 100
COURSES = ("course-v1:Bench+R1+2026", "course-v1:Bench+R2+2026")
GOAL = 1.0  # seconds


def _events(count: int) -> Iterator[tuple[Any, ...]]:
    """``count`` rows of ``tracking_events`` (columns of :data:`COLUMNS`), times ascending."""
    rng = random.Random(SEED)
    step = timedelta(days=DAYS) / count
    playing: dict[int, tuple[str, float] | None] = {}
    seqs: dict[int, int] = {}
    unit: dict[tuple[int, int], int] = {}
    for index in range(count):
        who = rng.randrange(LEARNERS)
        course = COURSES[who % 2]
        when = START + step * index
        session = f"s{who}-{index * 40 // count}"
        kind = rng.random()
        source = "browser"
        if kind < 0.40:
            state = playing.get(who)
            if state is None:
                video, position = f"video-{rng.randrange(VIDEOS)}", float(rng.randrange(0, 600, 5))
                event_type, data = (
                    "play_video",
                    {"id": video, "code": "html5", "currentTime": position},
                )
                playing[who] = (video, position)
            else:
                video, position = state
                position += rng.uniform(5, 60)
                choice = rng.random()
                if choice < 0.5:
                    event_type, data = "pause_video", {"id": video, "currentTime": position}
                    playing[who] = None
                elif choice < 0.75:
                    new = float(rng.randrange(0, 600, 10))
                    event_type = "seek_video"
                    data = {
                        "id": video,
                        "old_time": position,
                        "new_time": new,
                        "type": "onSlideSeek",
                    }
                    playing[who] = (video, new)
                elif choice < 0.9:
                    event_type = "speed_change_video"
                    data = {
                        "id": video,
                        "current_time": position,
                        "old_speed": "1.0",
                        "new_speed": "1.5",
                    }
                    playing[who] = (video, position)
                else:
                    event_type, data = "stop_video", {"id": video, "currentTime": position}
                    playing[who] = None
        elif kind < 0.55:
            seq_n = rng.randrange(SEQUENCES)
            old = unit.get((who, seq_n), 1)
            move = rng.random()
            if move < 0.6 and old < UNITS:
                event_type, new = "seq_next", old + 1
            elif move < 0.75 and old > 1:
                event_type, new = "seq_prev", old - 1
            else:
                event_type, new = "seq_goto", rng.randrange(1, UNITS + 1)
            unit[(who, seq_n)] = new
            data = {"old": old, "new": new, "id": f"block-v1:Bench+type@sequential+block@s{seq_n}"}
        elif kind < 0.65:
            move_type = rng.choice(("gotopage", "nextpage", "nextpage", "prevpage"))
            page = rng.randrange(1, 200)
            book = f"/asset-v1:Bench+type@asset+block/book{rng.randrange(BOOKS)}.pdf"
            event_type, data = (
                "book",
                {"type": move_type, "old": page, "new": page + 1, "chapter": book},
            )
        elif kind < 0.80:
            source = "server"
            problem = f"block-v1:Bench+type@problem+block@p{rng.randrange(PROBLEMS)}"
            pick = rng.random()
            if pick < 0.8:
                right = "correct" if rng.random() < 0.55 else "incorrect"
                event_type = "problem_check"
                data = {
                    "problem_id": problem,
                    "correct_map": {f"{problem}_2_1": {"correctness": right}},
                    "success": right,
                    "attempts": 1,
                }
            else:
                event_type = rng.choice(("showanswer", "reset_problem", "save_problem_success"))
                data = {"problem_id": problem}
        else:
            event_type = rng.choice(("page_close", "edx.ui.lms.link_clicked", "my.custom.event"))
            data = {}
        seq = None
        skew = None
        if source == "browser":
            seqs[who] = seqs.get(who, 0) + (2 if rng.random() < 0.01 else 1)
            seq = seqs[who]
            skew = int(rng.gauss(0, 3000))
        status = "unvalidated" if event_type == "my.custom.event" else "valid"
        yield (
            f"{SEED:08x}-0000-4000-8000-{index:012x}",
            event_type,
            source,
            when,
            f"learner{who}",
            session,
            f"https://lms.example/courses/{course}/page",
            json.dumps(data, separators=(",", ":")),
            "json" if source == "browser" else "object",
            json.dumps({"course_id": course, "user_id": who}),
            status,
            when,
            skew,
            seq,
            course,
            str(who),
        )


COLUMNS = (
    "event_id", "event_type", "event_source", "time", "username", "session", "page",
    "event", "event_format", "context", "schema_status", "received_at", "clock_skew_ms",
    "seq", "course_id", "user_id",
)  # fmt: skip


def fill_sqlite(url: str, count: int) -> None:
    import sqlite3

    from sqlalchemy import create_engine

    from flask_tracking.models import metadata

    engine = create_engine(url)
    metadata.create_all(engine)
    engine.dispose()
    conn = sqlite3.connect(url.removeprefix("sqlite:///"))
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=OFF")
    marks = ", ".join("?" for _ in COLUMNS)
    sql = f"INSERT INTO tracking_events ({', '.join(COLUMNS)}) VALUES ({marks})"

    def rows() -> Iterator[tuple[Any, ...]]:
        for row in _events(count):
            yield (*row[:3], row[3].isoformat(" ", "microseconds"), *row[4:11],
                   row[11].isoformat(" ", "microseconds"), *row[12:])  # fmt: skip

    with conn:
        conn.executemany(sql, rows())
    conn.execute("ANALYZE")
    conn.close()


def postgres_url() -> str:
    return shared_postgres_url(SCHEMA)


def fill_postgres(url: str, count: int) -> None:
    from sqlalchemy import create_engine, text

    from flask_tracking.models import metadata

    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
        conn.execute(text(f"CREATE SCHEMA {SCHEMA}"))
    metadata.create_all(engine)
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        with cursor.copy(f"COPY tracking_events ({', '.join(COLUMNS)}) FROM STDIN") as copy:  # type: ignore[attr-defined]
            for row in _events(count):
                copy.write_row(row)
        raw.commit()
        cursor.execute("ANALYZE tracking_events")
        raw.commit()
    finally:
        raw.close()
    engine.dispose()


def measure(url: str, label: str, count: int) -> list[str]:
    from sqlalchemy import create_engine, func, select

    from flask_tracking.models import events_table
    from flask_tracking.reports import REPORTS
    from flask_tracking.reports._common import where

    since = START.replace(tzinfo=UTC) - timedelta(days=1)
    until = START.replace(tzinfo=UTC) + timedelta(days=DAYS + 1)
    engine = create_engine(url)
    out = []

    def best(call: Any) -> tuple[float, Any]:
        call()  # warm-up
        times = []
        for _ in range(ROUNDS):
            began = time.perf_counter()
            result = call()
            times.append(time.perf_counter() - began)
        return min(times), result

    try:
        for course in (None, COURSES[0]):
            counting = select(func.count()).select_from(events_table)
            counting = counting.where(*where(course, since, until))
            with engine.connect() as conn:
                base, total = best(lambda q=counting: conn.execute(q).scalar())
            scope = f"course {course}" if course else "all courses"
            out.append(f"reports {label} ({scope}, {total} events): baseline count(*) {base:.3f}s")
            for name, report in REPORTS.items():
                seconds, rows = best(
                    lambda r=report, c=course: r(  # type: ignore[misc]
                        engine, course_id=c, since=since, until=until, tz="Europe/Paris"
                    )
                )
                flag = "" if seconds < GOAL else f"  (over the {GOAL:.0f} s goal)"
                out.append(
                    f"reports {label} {name:<20} {seconds:7.3f}s  {len(rows):>6} rows"
                    f"  ({seconds / base if base else float('inf'):.0f}x the count){flag}"
                )
    finally:
        engine.dispose()
    return out


def run(count: int | None = None) -> list[str]:
    count = count or EVENTS
    lines = []
    with tempfile.TemporaryDirectory() as folder:
        for database in DATABASES:
            began = time.perf_counter()
            if database == "sqlite":
                url = f"sqlite:///{Path(folder) / 'bench-reports.db'}"
                fill_sqlite(url, count)
            else:
                url = postgres_url()
                fill_postgres(url, count)
            took = time.perf_counter() - began
            note(f"reports: {count} events written to {database} in {took:.0f}s")
            lines += measure(url, database, count)
    return lines


if __name__ == "__main__":
    args = sys.argv[1:]
    events = int(args[args.index("--events") + 1]) if "--events" in args else None
    for result in run(events):
        print(result, flush=True)
