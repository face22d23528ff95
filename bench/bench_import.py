"""Tracking-log import, end to end, beside the fastest raw write of the same rows.

A 200,000-line edX tracking log (JSON lines) is made by sampling the corpus lines and
rewriting ``time`` (increasing, spread over days, in each line's own style) and the
``username`` (one of 5,000 learners), so no two lines are the same. It is then imported
into a fresh SQLite file the way ``flask tracking import FILE`` does: a real app with the
default config (anonymisation on), ``import_lines(tracker, read_lines([path]))``: file
reading, JSON parsing, validation, anonymisation and storing, in chunks of
``tracking_logs.CHUNK`` events per transaction.

Baseline, in the same run: the very rows that import stored (read back), written by
``sqlite3.executemany`` into a fresh file with the same table and indexes and the same
PRAGMAs (WAL, synchronous=NORMAL), in one transaction: the physical limit. Best of 3.

PostgreSQL (the tests' database, ``tests/services.py``, in a schema of its own,
``bench_import``, dropped at the end): the same import, and as the baseline the rows it
stored, read back, written by psycopg's ``COPY ... FROM STDIN`` into a fresh copy of the
table with the same indexes, in one transaction. Best of 3.

On PostgreSQL the import is measured twice, beside the same baseline: in one process
(``flask tracking import FILE``) and with ``--jobs J`` worker processes
(``import_jobs.import_parallel``, into a fresh schema again), J the machine's cores.

``BENCH_IMPORT_EVENTS`` changes the line count (for a quick look);
``BENCH_IMPORT_DATABASES`` (``sqlite,postgresql``) the databases; ``BENCH_IMPORT_JOBS``
the J of the ``--jobs`` line (0: no such line).
"""

from __future__ import annotations

import json
import os
import random
import sqlite3
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from . import corpus_lines, note, percent, rate

EVENTS = int(os.environ.get("BENCH_IMPORT_EVENTS", "200000"))
TARGET = 15.0  # percent of the raw rate (SQLite)
PG_TARGET = 30.0  # percent of the raw COPY (PostgreSQL, issue 12)
DATABASES = os.environ.get("BENCH_IMPORT_DATABASES", "sqlite,postgresql").split(",")
PG_SCHEMA = "bench_import"
LEARNERS = 5000
SEED = 20240201
START = datetime(2024, 2, 1, tzinfo=UTC)
BASELINE_ROUNDS = 3
JOBS = int(os.environ.get("BENCH_IMPORT_JOBS", str(os.cpu_count() or 1)))


def make_log(path: Path, count: int, lines: list[str], seed: int = SEED) -> None:
    """Write ``count`` unique tracking-log lines sampled from ``lines``."""
    rng = random.Random(seed)
    samples = [json.loads(line) for line in lines]
    # At least ~13 s between lines, so even times written without a fraction differ.
    step = max(timedelta(days=30) / count, timedelta(seconds=13))
    step_us = step // timedelta(microseconds=1)
    with path.open("w", encoding="utf-8") as out:
        for index in range(count):
            line: dict[str, Any] = dict(rng.choice(samples))
            when = START + timedelta(microseconds=index * step_us + rng.randrange(step_us))
            key = "time" if "time" in line or "timestamp" not in line else "timestamp"
            line[key] = _time_like(line.get(key), when)
            if isinstance(line.get("username"), str) and line["username"]:
                line["username"] = f"learner{rng.randrange(LEARNERS)}"
            out.write(json.dumps(line) + "\n")


def _time_like(original: Any, when: datetime) -> str:
    """``when`` written as ``original`` was: with or without timezone and fraction."""
    text = original if isinstance(original, str) else ""
    if "." not in text[19:] and text:
        when = when.replace(microsecond=0)
    aware = text.endswith(("Z", "+00:00")) or "+" in text[19:] or "-" in text[19:]
    return when.isoformat() if aware or not text else when.replace(tzinfo=None).isoformat()


def import_file(log: Path, db: Path, url: str | None = None, jobs: int = 1) -> tuple[Any, float]:
    """Import ``log`` into a fresh ``db`` (or the database at ``url``) as ``flask tracking
    import [--jobs J]`` does; (summary, s)."""
    from flask import Flask

    from flask_tracking import Tracking
    from flask_tracking.extension import get_state
    from flask_tracking.import_jobs import import_parallel
    from flask_tracking.logfiles import read_lines

    app = Flask("bench_import", instance_path=str(db.parent / "instance"))
    app.config.update(SECRET_KEY="bench-secret", TRACKING_DATABASE_URL=url or f"sqlite:///{db}")
    Tracking(app)
    with app.app_context():
        state = get_state()
        state.store.create_all()
        start = time.perf_counter()
        summary = import_parallel(state.tracker, read_lines([str(log)]), jobs)
        seconds = time.perf_counter() - start
        state.engine.dispose()
    return summary, seconds


def raw_executemany(source_db: Path, target_db: Path) -> tuple[int, float]:
    """Write the rows of ``source_db`` into a fresh ``target_db`` with one executemany."""
    from flask_tracking.models import events_table

    columns = [c.name for c in events_table.columns if c.name != "id"]
    names = ", ".join(f'"{c}"' for c in columns)
    with sqlite3.connect(source_db) as src:
        rows = src.execute(f"SELECT {names} FROM tracking_events ORDER BY id").fetchall()
        ddl = [
            sql
            for (sql,) in src.execute(
                "SELECT sql FROM sqlite_master WHERE tbl_name = 'tracking_events'"
                " AND sql IS NOT NULL ORDER BY type DESC"  # the table, then its indexes
            )
        ]
    conn = sqlite3.connect(target_db)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        for sql in ddl:
            conn.execute(sql)
        conn.commit()
        insert = f"INSERT INTO tracking_events ({names}) VALUES ({', '.join('?' * len(columns))})"
        start = time.perf_counter()
        conn.executemany(insert, rows)
        conn.commit()
        seconds = time.perf_counter() - start
    finally:
        conn.close()
    return len(rows), seconds


def pg_url() -> str:
    """The tests' PostgreSQL, in the schema ``bench_import`` (created empty)."""
    from sqlalchemy import create_engine, text

    from .bench_ingest import postgres_url

    url = postgres_url().replace("bench_ingest", PG_SCHEMA)
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text(f"DROP SCHEMA IF EXISTS {PG_SCHEMA} CASCADE"))
        conn.execute(text(f"CREATE SCHEMA {PG_SCHEMA}"))
    engine.dispose()
    return url


def raw_copy(url: str, round_: int) -> tuple[int, float]:
    """The rows import stored, read back and written by one COPY into a fresh copy of
    the table (same indexes), in one transaction; (rows, s)."""
    import psycopg
    from sqlalchemy import make_url

    from flask_tracking.models import events_table

    columns = [c.name for c in events_table.columns if c.name != "id"]
    names = ", ".join(f'"{c}"' for c in columns)
    json_columns = {c.name for c in events_table.columns if c.type.__class__.__name__ == "JSON"}
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    target = f"bench_copy_{round_}"
    with psycopg.connect(dsn) as conn:
        # JSON columns read back as their text, which COPY writes as it is.
        read = ", ".join(f'"{c}"::text' if c in json_columns else f'"{c}"' for c in columns)
        rows = conn.execute(f"SELECT {read} FROM tracking_events ORDER BY id").fetchall()
        conn.execute(f"CREATE TABLE {target} (LIKE tracking_events INCLUDING ALL)")
        conn.commit()
        start = time.perf_counter()
        with conn.cursor() as cursor, cursor.copy(f"COPY {target} ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        conn.commit()
        seconds = time.perf_counter() - start
    return len(rows), seconds


def drop_pg(url: str) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text(f"DROP SCHEMA IF EXISTS {PG_SCHEMA} CASCADE"))
    engine.dispose()


def run_postgresql(log: Path, folder: Path) -> list[str]:
    try:
        url = pg_url()
    except Exception as exc:  # ServiceUnavailable, psycopg missing
        return [f"import postgresql: skipped (no PostgreSQL: {exc})"]
    try:
        summary, ours_s = import_file(log, folder / "unused.db", url)
        note(f"import postgresql: {summary} in {ours_s:.1f}s; raw COPY baseline")
        raw_s, raw_rows = float("inf"), 0
        for round_ in range(BASELINE_ROUNDS):
            raw_rows, seconds = raw_copy(url, round_)
            raw_s = min(raw_s, seconds)
        runs = [("", summary, ours_s)]
        if JOBS > 1:
            url = pg_url()  # a fresh schema
            summary, ours_s = import_file(log, folder / "unused.db", url, jobs=JOBS)
            note(f"import postgresql --jobs {JOBS}: {summary} in {ours_s:.1f}s")
            runs.append((f" --jobs {JOBS}", summary, ours_s))
    finally:
        drop_pg(url)
    baseline = ("raw psycopg COPY", raw_rows, raw_s, PG_TARGET)
    return [
        result_line(f"postgresql{label}", summary, ours_s, *baseline)
        for label, summary, ours_s in runs
    ]


def result_line(
    what: str,
    summary: Any,
    ours_s: float,
    baseline: str,
    raw_rows: int,
    raw_s: float,
    target: float,
) -> str:
    """The bench's line for one import: our rate beside the baseline's, and a warning
    when the import did not store every line."""
    line = (
        f"import {what}: {rate(summary.stored, ours_s)} events/s end to end"
        f" vs {baseline} {rate(raw_rows, raw_s)} rows/s"
        f" = {percent(summary.stored / ours_s, raw_rows / raw_s)} (target >= {target:g}%)"
    )
    if summary.stored != summary.read or summary.stored != EVENTS:
        line += f" [WARNING: {summary}]"
    return line


def run() -> list[str]:
    lines, label = corpus_lines()
    out = []
    if "postgresql" in DATABASES:
        with tempfile.TemporaryDirectory(prefix="bench-import-") as tmp:
            log = Path(tmp) / "tracking.log"
            make_log(log, EVENTS, lines)
            out.extend(run_postgresql(log, Path(tmp)))
    if "sqlite" not in DATABASES:
        return out
    with tempfile.TemporaryDirectory(prefix="bench-import-") as tmp:
        folder = Path(tmp)
        log = folder / "tracking.log"
        note(f"import: writing {EVENTS:,} lines sampled from {label}")
        make_log(log, EVENTS, lines)
        note(f"import: importing {log.stat().st_size / 1e6:,.0f} MB")
        summary, ours_s = import_file(log, folder / "ours.db")
        note(f"import: {summary} in {ours_s:.1f}s; raw sqlite3 baseline")
        raw_s = float("inf")
        raw_rows = 0
        for round_ in range(BASELINE_ROUNDS):
            raw_rows, seconds = raw_executemany(folder / "ours.db", folder / f"raw{round_}.db")
            raw_s = min(raw_s, seconds)
    line = result_line(
        "sqlite", summary, ours_s, "raw sqlite3 executemany", raw_rows, raw_s, TARGET
    )
    return [line, *out]
