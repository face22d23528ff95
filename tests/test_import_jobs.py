"""``flask tracking import --jobs N`` (``import_jobs.py``): chunks parsed and stored in N
forked worker processes, with the result of a serial import, on both databases (and
partitioned under TRACKING_TEST_PARTITION)."""

from __future__ import annotations

import json
import os
import random
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from flask_tracking import Tracking, tracking_logs
from flask_tracking.import_jobs import import_parallel
from flask_tracking.logfiles import read_lines
from flask_tracking.models import events_table, failed_table

from support import corpus_path, reset_database

REAL = ("edx-analytics-pipeline.jsonl", "json-to-relation.jsonl", "event-routing-backends.jsonl")
#: Lines per chunk in these tests: a few hundred lines make many chunks.
SMALL_CHUNK = 40


def mixed_log(path: Path) -> Path:
    """Real lines, each broken line of the corpus, and repeated lines far apart (in
    other chunks), shuffled (seeded)."""
    lines = [line for name in REAL for line in corpus_path(name).read_text().splitlines()]
    broken = [
        json.loads(line)["raw"] for line in corpus_path("malformed.jsonl").read_text().splitlines()
    ]
    rng = random.Random(7)
    every = [*lines, *broken, *rng.sample(lines, 60)]
    rng.shuffle(every)
    path.write_text("\n".join(every) + "\n", encoding="utf-8")
    return path


def run(app: Flask, *args: str) -> str:
    result = app.test_cli_runner().invoke(args=["tracking", "import", *args])
    assert result.exit_code == 0, result.output
    return result.output.strip().splitlines()[-1]


def snapshot(app: Flask) -> tuple[list[Any], list[Any]]:
    """Every stored row and failed row, without what differs between runs (serial ids,
    times of arrival)."""
    with app.extensions["tracking"].engine.connect() as conn:
        events = conn.execute(select(events_table).order_by(events_table.c.event_id)).all()
        failed = conn.execute(select(failed_table).order_by(failed_table.c.detail)).all()
    skip = {"id", "received_at", "failed_at"}
    return (
        [{k: v for k, v in row._mapping.items() if k not in skip} for row in events],
        [{k: v for k, v in row._mapping.items() if k not in skip} for row in failed],
    )


def test_jobs_give_the_result_of_a_serial_import(
    app: Flask, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Anonymised (the default), broken lines, repeats across chunks: same summary, same
    rows, same failed rows; then the same file again stores nothing."""
    monkeypatch.setattr(tracking_logs, "CHUNK", SMALL_CHUNK)
    log = str(mixed_log(tmp_path / "mixed.log"))
    serial = run(app, log)
    serial_rows = snapshot(app)
    app.extensions["tracking"].engine.dispose()
    reset_database(database_url)

    parallel = run(app, "--jobs", "3", log)

    assert parallel == serial
    read, stored, duplicates, failed = (int(p.split("=")[1]) for p in serial.split())
    assert failed == 5 and duplicates >= 60 and stored + duplicates + failed == read
    assert snapshot(app) == serial_rows
    again = run(app, "-j", "2", log)
    assert again == f"read={read} stored=0 duplicates={read - failed} failed={failed}"
    assert snapshot(app)[0] == serial_rows[0]


def test_one_job_is_the_serial_import(plain_app: Flask, tmp_path: Path) -> None:
    log = str(corpus_path("json-to-relation.jsonl"))
    assert run(plain_app, "--jobs", "1", log) == "read=101 stored=95 duplicates=6 failed=0"


def test_jobs_must_be_at_least_one(plain_app: Flask) -> None:
    result = plain_app.test_cli_runner().invoke(
        args=["tracking", "import", "--jobs", "0", str(corpus_path("json-to-relation.jsonl"))]
    )
    assert result.exit_code == 2 and "--jobs" in result.output


def test_a_worker_that_dies_stops_the_import(make_app: Any, tmp_path: Path) -> None:
    """A worker killed mid-chunk (here by a processor) is an error, not a wait forever;
    the chunks committed stay, importing again stores the rest once."""
    parent = os.getpid()

    def dies_on_boom(event: Any) -> Any:
        if event["event_type"] == "boom" and os.getpid() != parent and not DONE.exists():
            DONE.touch()
            os._exit(3)
        return event

    DONE = tmp_path / "died"
    app = make_app(Tracking(processors=[dies_on_boom]), TRACKING_ANONYMIZE=False)
    log = tmp_path / "boom.log"
    real = corpus_path("json-to-relation.jsonl").read_text().splitlines()
    boom = json.dumps({"event_type": "boom", "time": "2026-01-01T00:00:00", "event": {}})
    log.write_text("\n".join([*real, boom]) + "\n", encoding="utf-8")
    with app.app_context():
        state = app.extensions["tracking"]
        state.store.create_all()
        with pytest.raises(BrokenProcessPool):
            import_parallel(state.tracker, read_lines([str(log)]), 2)
    DONE.unlink()
    result = app.test_cli_runner().invoke(args=["tracking", "import", "-j", "2", str(log)])
    assert result.exit_code == 1 and "An import worker process died" in result.output
    assert run(app, "--jobs", "2", str(log)).endswith("failed=0")
    with app.extensions["tracking"].engine.connect() as conn:
        ids = conn.execute(select(events_table.c.event_id)).scalars().all()
    assert len(ids) == len(set(ids)) == 96  # the 95 distinct corpus lines and boom
