"""The spool under real faults: a writer killed mid-line, appends racing a drain.

Both with real processes: the torn line is left by a subprocess that dies (SIGKILL) in
the middle of writing it; the appends come from subprocesses while this process drains.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

from flask import Flask
from sqlalchemy import func, select

from flask_tracking import FailedEvent, Tracking, TrackingEvent
from flask_tracking.spool import Spool

from support import AppFactory, failed, rows

SHOW = {"problem_id": "p1"}

TEAR = """
import os, signal, sys
line = sys.argv[2]
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_APPEND)
os.write(fd, line[: len(line) // 2].encode())
os.kill(os.getpid(), signal.SIGKILL)
"""

APPEND = """
import sys, uuid
from datetime import UTC, datetime
from flask_tracking.event import new_event
from flask_tracking.spool import Spool
spool = Spool(sys.argv[1])
for n in range(int(sys.argv[2])):
    now = datetime.now(UTC)
    spool.append([new_event(
        event_id=str(uuid.uuid4()), name="x", event_type="x", event_source="server",
        time=now, received_at=now, event={"n": n}, event_format="object",
        schema_status="unvalidated",
    )])
"""


def test_a_torn_line_goes_to_the_failed_table_and_the_lines_after_it_are_stored(
    make_app: AppFactory, tmp_path: Path
) -> None:
    path = tmp_path / "spool.jsonl"
    app = make_app(TRACKING_SPOOL_FILE=str(path))
    tracker = app.extensions["tracking"].tracker
    spool = tracker.pipeline.spool
    assert spool is not None
    with app.app_context():
        before, torn, after = (tracker.build("showanswer", SHOW) for _ in range(3))
    spool.append([before])
    line = spool_line(tmp_path, torn)
    crashed = subprocess.run([sys.executable, "-c", TEAR, str(path), line], timeout=30)
    assert crashed.returncode == -9  # killed in the middle of its write
    spool.append([after])  # the next writer ends the torn line first

    answer = app.test_cli_runner().invoke(args=["tracking", "drain-spool"])
    assert answer.output.strip() == "drained=3", answer.output

    assert [r.event_id for r in rows(app)] == [before["event_id"], after["event_id"]]
    (bad,) = failed(app)
    assert bad.origin == "spool" and bad.detail == f"{path}:2"
    assert bad.event_id == torn["event_id"] and bad.event_type == "showanswer"
    assert "torn" in bad.reasons["_line"][0] and bad.raw == line[: len(line) // 2]
    assert not spool.pending()


def spool_line(folder: Path, event: dict[str, object]) -> str:
    """The line ``Spool.append`` writes for ``event``."""
    scratch = Spool(str(folder / "scratch.jsonl"))
    scratch.append([event])
    return Path(scratch.path).read_text().rstrip("\n")


def test_appends_from_other_processes_during_a_drain_lose_nothing(
    sqlite_url: str, tmp_path: Path
) -> None:
    app = Flask("spool", instance_path=str(tmp_path / "instance"))
    app.config.update(SECRET_KEY="k", TRACKING_DATABASE_URL=sqlite_url)
    Tracking(app)
    pipeline = app.extensions["tracking"].tracker.pipeline
    store = pipeline.store
    spool = Spool(str(tmp_path / "spool.jsonl"))
    writers = [
        subprocess.Popen([sys.executable, "-c", APPEND, spool.path, "150"]) for _ in range(4)
    ]
    drained: list[int] = []
    done = threading.Event()

    def drain_meanwhile() -> None:
        while not done.is_set():
            drained.append(spool.drain(pipeline, chunk=7))

    drainer = threading.Thread(target=drain_meanwhile)
    drainer.start()
    try:
        for writer in writers:
            assert writer.wait(timeout=60) == 0
    finally:
        done.set()
        drainer.join(timeout=30)
    drained.append(spool.drain(pipeline))
    with store.engine.connect() as conn:
        count = conn.execute(select(func.count()).select_from(TrackingEvent)).scalar()
        distinct = conn.execute(select(func.count(TrackingEvent.event_id.distinct()))).scalar()
        bad = conn.execute(select(func.count()).select_from(FailedEvent)).scalar()
    assert (count, distinct, bad) == (600, 600, 0)
    assert sum(drained) == 600 and not spool.pending()
    assert sum(1 for n in drained if n) > 1, "the drains did not overlap the appends"
    store.engine.dispose()
