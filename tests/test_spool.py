"""Server events survive a database outage: they wait in the spool, then are stored once.

The spool is read line by line: a bad line goes to the failed table and never blocks the
lines after it; an outage mid-drain keeps the rest for the next drain.
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from flask_tracking import FailedEvent, StoreUnavailable, Tracking, TrackingEvent
from flask_tracking.engine import is_unavailable
from flask_tracking.event import new_event
from flask_tracking.pipeline import Pipeline
from flask_tracking.spool import Spool

SHOW = {"problem_id": "p1"}


def started_then_gone(app: Flask, folder: Path) -> Tracking:
    """``Tracking(app)`` on a SQLite file in ``folder``, then the folder taken away: the
    database is down after startup (a missing folder at startup is a ConfigError)."""
    folder.mkdir()
    tracking = Tracking(app)
    shutil.rmtree(folder)
    return tracking


def test_events_emitted_while_the_database_is_down_are_stored_later(tmp_path: Path) -> None:
    missing = tmp_path / "not-yet"
    app = Flask("spool", instance_path=str(tmp_path / "instance"))
    app.config.update(SECRET_KEY="k", TRACKING_DATABASE_URL=f"sqlite:///{missing / 'tracking.db'}")
    tracking = started_then_gone(app, missing)
    with app.app_context():
        first = tracking.emit("showanswer", SHOW)
        second = tracking.emit("showanswer", SHOW)
        assert first is not None and second is not None  # not lost: spooled
        spool = tmp_path / "instance" / "tracking-spool.jsonl"
        assert spool.exists()

        missing.mkdir()  # the database comes back
        tracking.init_db()
        third = tracking.emit("showanswer", SHOW)
        assert third is not None

        with tracking.engine.connect() as conn:
            ids = conn.execute(select(TrackingEvent.event_id)).scalars().all()
        assert sorted(ids) == sorted(e["event_id"] for e in (first, second, third))
        assert not spool.exists()
        tracking.engine.dispose()


def test_drain_spool_command_stores_nothing_twice(tmp_path: Path) -> None:
    missing = tmp_path / "db"
    app = Flask("spool", instance_path=str(tmp_path / "instance"))
    app.config.update(SECRET_KEY="k", TRACKING_DATABASE_URL=f"sqlite:///{missing / 't.db'}")
    tracking = started_then_gone(app, missing)
    with app.app_context():
        tracking.emit("showanswer", SHOW)
    missing.mkdir()
    runner = app.test_cli_runner()
    assert runner.invoke(args=["tracking", "init-db"]).exit_code == 0
    assert runner.invoke(args=["tracking", "drain-spool"]).output.strip() == "drained=1"
    assert runner.invoke(args=["tracking", "drain-spool"]).output.strip() == "drained=0"
    with app.app_context():
        with tracking.engine.connect() as conn:
            assert len(conn.execute(select(TrackingEvent.id)).all()) == 1
        tracking.engine.dispose()


# -- the file, line by line ----------------------------------------------------------------


def server_event(n: int = 0) -> dict[str, Any]:
    now = datetime.now(UTC)
    return dict(
        new_event(
            event_id=str(uuid.uuid4()),
            name="showanswer",
            event_type="showanswer",
            event_source="server",
            time=now,
            received_at=now,
            event={"problem_id": f"p{n}"},
            event_format="object",
            schema_status="valid",
        )
    )


def _pipeline(app: Flask) -> Pipeline:
    Tracking(app)
    pipeline: Pipeline = app.extensions["tracking"].tracker.pipeline
    return pipeline


@pytest.fixture
def store(sqlite_url: str, tmp_path: Path) -> Iterator[Pipeline]:
    """The real pipeline of an app on a clean SQLite database (the spool's sink)."""
    app = Flask("spool", instance_path=str(tmp_path / "instance"))
    app.config.update(SECRET_KEY="k", TRACKING_DATABASE_URL=sqlite_url, TRACKING_ANONYMIZE=False)
    made = _pipeline(app)
    yield made
    made.store.engine.dispose()


class Flaky:
    """A sink whose database goes away after its first batch of events (a real one: the
    second pipeline's folder does not exist)."""

    def __init__(self, first: Pipeline, down: Pipeline) -> None:
        self.first, self.down, self.calls = first, down, 0

    def store_spooled(self, events: Any) -> object:
        self.calls += 1
        return (self.first if self.calls == 1 else self.down).store_spooled(events)

    def store_failed_rows(self, rows: Any) -> object:
        return self.down.store_failed_rows(rows)

    def keep(self, *args: Any, **kwargs: Any) -> object:
        return self.down.keep(*args, **kwargs)


def stored_ids(store: Pipeline) -> list[str]:
    with store.store.engine.connect() as conn:
        return list(
            conn.execute(select(TrackingEvent.event_id).order_by(TrackingEvent.id)).scalars()
        )


def failed_rows(store: Pipeline) -> list[Any]:
    with store.store.engine.connect() as conn:
        return list(conn.execute(select(FailedEvent.__table__).order_by(FailedEvent.id)).all())


def test_an_outage_mid_drain_keeps_the_rest_and_the_next_drain_resumes(
    store: Pipeline, tmp_path: Path
) -> None:
    spool = Spool(str(tmp_path / "spool.jsonl"))
    events = [server_event(n) for n in range(5)]
    spool.append(events[:4])
    with open(spool.path, "a") as handle:
        handle.write("not json\n")
    spool.append(events[4:])
    # The database goes away after the first batch of two (a real one: its folder is gone).
    app = Flask("down", instance_path=str(tmp_path / "down"))
    app.config.update(
        SECRET_KEY="k", TRACKING_DATABASE_URL=f"sqlite:///{tmp_path / 'gone' / 'x.db'}"
    )
    (tmp_path / "gone").mkdir()  # a missing folder at startup is a ConfigError
    down = _pipeline(app)
    shutil.rmtree(tmp_path / "gone")

    with pytest.raises(StoreUnavailable) as raised:
        spool.drain(Flaky(store, down), chunk=2)
    assert is_unavailable(raised.value)
    assert stored_ids(store) == [e["event_id"] for e in events[:2]] and spool.pending()

    assert spool.drain(store, chunk=2) == 4  # lines 3 to 6
    assert stored_ids(store) == [e["event_id"] for e in events]
    (bad,) = failed_rows(store)
    assert bad.detail == f"{spool.path}:5" and bad.raw == "not json"
    assert not spool.pending()
    down.store.engine.dispose()


def test_spooled_failed_rows_and_bad_lines_reach_the_failed_table(
    store: Pipeline, tmp_path: Path
) -> None:
    spool = Spool(str(tmp_path / "spool.jsonl"))
    row = {
        "origin": "server",
        "event_id": "e1",
        "event_type": "showanswer",
        "raw": "{}",
        "reasons": {"event": ["Not valid."]},
        "detail": "emit",
    }
    spool.append_failed([row])
    good = server_event()
    broken = {**server_event(), "time": "yesterday"}
    with open(spool.path, "a") as handle:
        handle.write('["a list"]\n{"a": 1}\n' + json.dumps(broken, default=str) + "\n")
    spool.append([good])
    assert spool.drain(store) == 5
    assert stored_ids(store) == [good["event_id"]]
    kept = failed_rows(store)
    assert [(r.origin, r.detail) for r in kept] == [
        ("server", "emit"),
        ("spool", f"{spool.path}:2"),
        ("spool", f"{spool.path}:3"),
        ("spool", f"{spool.path}:4"),
    ]
    assert kept[0].reasons == row["reasons"]
    assert kept[3].event_id == broken["event_id"] and "time" in kept[3].reasons["_line"][0]


def test_an_event_the_store_cannot_take_goes_to_the_failed_table_not_back_to_the_spool(
    store: Pipeline, tmp_path: Path
) -> None:
    spool = Spool(str(tmp_path / "spool.jsonl"))
    good = [server_event(n) for n in range(3)]
    odd = server_event()
    del odd["event_format"]  # an old or hand-edited line the store cannot take
    spool.append([good[0], odd, *good[1:]])
    assert spool.drain(store) == 4
    assert sorted(stored_ids(store)) == sorted(e["event_id"] for e in good)
    (bad,) = failed_rows(store)
    assert bad.event_id == odd["event_id"] and bad.origin == "spool"
    assert "event_format" in bad.reasons["_schema"][0]
    assert not spool.pending()
    assert spool.drain(store) == 0
