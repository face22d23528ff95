"""SQLite: checkpoints run in the background, never inside a request's commit."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, select

from flask_tracking.engine import make_engine
from flask_tracking.event import Event, new_event
from flask_tracking.models import TrackingEvent
from flask_tracking.store import SqlStore


def event() -> Event:
    now = datetime.now(UTC)
    return new_event(
        event_id=str(uuid.uuid4()),
        name="x",
        event_type="x",
        event_source="server",
        time=now,
        received_at=now,
        event={"n": 1},
        event_format="object",
        schema_status="unvalidated",
    )


def test_commits_leave_checkpoints_to_the_background_thread(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'wal.db'}")
    store = SqlStore(engine)
    store.create_all()
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 0
    for _ in range(30):
        store.send([event() for _ in range(20)])
    checkpointer = store._checkpointer
    assert checkpointer is not None
    deadline = time.monotonic() + 10
    while checkpointer.runs == 0:
        assert time.monotonic() < deadline, "no background checkpoint within 10 s"
        time.sleep(0.05)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(TrackingEvent)).scalar() == 600
    engine.dispose()
