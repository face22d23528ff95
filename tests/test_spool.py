"""Server events survive a database outage: they wait in the spool, then are stored once."""

from __future__ import annotations

from pathlib import Path

from flask import Flask
from sqlalchemy import select

from flask_tracking import Tracking, TrackingEvent

SHOW = {"problem_id": "p1"}


def test_events_emitted_while_the_database_is_down_are_stored_later(tmp_path: Path) -> None:
    missing = tmp_path / "not-yet"
    app = Flask("spool", instance_path=str(tmp_path / "instance"))
    app.config.update(SECRET_KEY="k", TRACKING_DATABASE_URL=f"sqlite:///{missing / 'tracking.db'}")
    tracking = Tracking(app)
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
    tracking = Tracking(app)
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
