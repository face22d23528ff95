"""``Tracking(app, db=db)`` with a real Flask-SQLAlchemy: the events go through the app's
own engine (one pool) into the app's database, on SQLite and PostgreSQL, and the tracking
tables are in ``db.metadata`` with the names ``init-db`` gives them."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import MetaData, String, create_engine, func, inspect, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.schema import CreateIndex, CreateTable

from flask_tracking import ConfigError, FailedEvent, Tracking, TrackingEvent
from flask_tracking.engine import engine_timeout
from flask_tracking.forwarding import DELIVERED
from flask_tracking.models import metadata as tracking_metadata
from flask_tracking.partitions import made_for_partitions

from forwarding_app import FAST, forwarder_of, wait_until
from receivers import WebhookReceiver
from support import partition_config

TRACKING_TABLES = {"tracking_events", "tracking_failed_events", "tracking_deliveries"}


def make_db(**options: Any) -> tuple[SQLAlchemy, type]:
    """A Flask-SQLAlchemy ``db`` with one model of the app's own."""
    db = SQLAlchemy(**options)

    class Course(db.Model):  # type: ignore[name-defined,misc]
        __tablename__ = "courses"
        id: Mapped[int] = mapped_column(primary_key=True)
        key: Mapped[str] = mapped_column(String(200))

    return db, Course


@pytest.fixture
def app_factory(database_url: str, tmp_path: Path) -> Iterator[Callable[..., Flask]]:
    """Flask apps with Flask-SQLAlchemy on the test database; the tracking tables empty,
    no table of the app's (other tests' apps share the PostgreSQL database)."""
    drop_app_tables(database_url)
    made: list[tuple[Flask, SQLAlchemy]] = []

    def factory(db: SQLAlchemy, tracking: Tracking | None = None, **config: Any) -> Flask:
        app = Flask("fsqla_app", instance_path=str(tmp_path / "instance"))
        app.config.update(
            SECRET_KEY="test-secret",
            TESTING=True,
            TRACKING_RATE_LIMIT=None,
            TRACKING_ANONYMIZE=False,
            SQLALCHEMY_DATABASE_URI=database_url,
            **partition_config(database_url),
        )
        app.config.update(config)
        db.init_app(app)
        made.append((app, db))
        if tracking is not None:
            tracking.init_app(app)
        return app

    yield factory
    for app, db in made:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
    drop_app_tables(database_url)


def drop_app_tables(url: str) -> None:
    """Drop the tables of the database at ``url`` that are not flask-tracking's."""
    engine = create_engine(url)
    try:
        found = MetaData()
        found.reflect(engine)
        theirs = [
            t
            for name, t in found.tables.items()
            if name not in tracking_metadata.tables and not made_for_partitions(name)
        ]
        found.drop_all(engine, tables=theirs)
    finally:
        engine.dispose()


def batch_of(*event_types: str) -> str:
    now = time.time() * 1000
    events = [
        {
            "id": str(uuid.uuid4()),
            "event_type": t,
            "event": {"id": "intro-video", "code": "html5", "currentTime": 3.0},
            "page": "https://lms.example/courses/course-v1:Org+Num+Run/courseware/u1",
            "time": now,
            "seq": n,
        }
        for n, t in enumerate(event_types)
    ]
    return json.dumps({"sent_at": now, "events": events})


def test_events_are_stored_through_the_apps_engine(
    app_factory: Callable[..., Flask], database_url: str, tmp_path: Path
) -> None:
    db, Course = make_db()
    tracking = Tracking(db=db)
    app = app_factory(db, tracking, TRACKING_DB_TIMEOUT=2.5)
    with app.app_context():
        db.create_all()  # the app's table; the tracking tables are in db.metadata too
        assert set(inspect(db.engine).get_table_names()) >= TRACKING_TABLES
        db.session.add(Course(key="course-v1:Org+Num+Run"))
        db.session.commit()
        # One engine, one pool: ours is the app's, with the option carrying our timeout.
        assert tracking.engine.pool is db.engine.pool
        assert tracking.engine.url == db.engine.url
        assert engine_timeout(tracking.engine) == 2.5
        assert tracking.state.config.database_url == db.engine.url.render_as_string(
            hide_password=False
        )

    client = app.test_client()
    answer = client.post("/activity/events", data=batch_of("play_video", "pause_video"))
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert answer.get_json()["accepted"] == 2
    with app.test_request_context("/courses/c/answer"):
        emitted = tracking.emit("showanswer", {"problem_id": "p1"})
    assert emitted is not None
    # A refused event goes to the failed table, through the same engine.
    refused = client.post("/activity/events", data=batch_of(""))
    assert refused.get_json()["failed"], refused.get_json()

    with app.app_context():
        types = db.session.scalars(select(TrackingEvent.event_type).order_by(TrackingEvent.id))
        assert list(types) == ["play_video", "pause_video", "showanswer"]
        # The app's own rows and the events in one database, joinable in one query.
        joined = db.session.execute(
            select(Course.key, func.count(TrackingEvent.id))
            .join(TrackingEvent, TrackingEvent.course_id == Course.key)
            .group_by(Course.key)
        ).one()
        assert joined == ("course-v1:Org+Num+Run", 2)  # the browser events of that course
        assert db.session.scalar(select(func.count()).select_from(FailedEvent)) == 1
        # tracking.events() runs in the app's session too, giving TrackingEvent objects.
        found = db.session.scalars(tracking.events("showanswer")).all()
        assert [e.event_id for e in found] == [emitted["event_id"]]
    # No tracking database of our own was made beside the app's.
    assert not (tmp_path / "instance" / "tracking.db").exists()


def test_init_db_creates_the_missing_tracking_tables_only_in_the_apps_database(
    app_factory: Callable[..., Flask],
) -> None:
    db, _ = make_db()
    tracking = Tracking(db=db)
    app = app_factory(db, tracking)
    with app.app_context():
        tracking_metadata.drop_all(db.engine)
        result = app.test_cli_runner().invoke(args=["tracking", "init-db"])
        assert result.exit_code == 0, result.output
        names = set(inspect(db.engine).get_table_names())
        assert names >= TRACKING_TABLES and "courses" not in names  # the app's are its own
        db.create_all()  # the app's table now; the tracking tables are there already
        assert "courses" in set(inspect(db.engine).get_table_names())
        again = app.test_cli_runner().invoke(args=["tracking", "init-db"])
        assert again.exit_code == 0, again.output


def test_init_app_with_db_and_the_factory_pattern_for_two_apps(
    app_factory: Callable[..., Flask],
) -> None:
    db, _ = make_db()
    tracking = Tracking()
    assert "tracking_events" not in db.metadata.tables
    first = app_factory(db)
    tracking.init_app(first, db=db)
    second = app_factory(db)
    tracking.init_app(second, db=db)  # the tables are in db.metadata once, no warning
    assert set(db.metadata.tables) >= TRACKING_TABLES
    for app in (first, second):
        with app.app_context():
            db.create_all()
            assert tracking.engine.pool is db.engine.pool
        with app.test_request_context("/"):
            assert tracking.emit("showanswer", {"problem_id": app.name}) is not None
    with first.app_context():
        assert db.session.scalar(select(func.count()).select_from(TrackingEvent)) == 2


def test_the_copies_in_db_metadata_keep_the_names_init_db_gives() -> None:
    # The app's naming convention differs from ours: the copies keep our names.
    convention = {"ix": "idx_%(column_0_label)s", "uq": "%(table_name)s_%(column_0_name)s_key"}
    db, _ = make_db(metadata=MetaData(naming_convention=convention))
    Tracking(db=db)
    for dialect in (sqlite.dialect(), postgresql.dialect()):
        for table in tracking_metadata.sorted_tables:
            copy = db.metadata.tables[table.name]
            assert copy is not table
            assert str(CreateTable(copy).compile(dialect=dialect)) == str(
                CreateTable(table).compile(dialect=dialect)
            )
            assert sorted(str(CreateIndex(i).compile(dialect=dialect)) for i in copy.indexes) == (
                sorted(str(CreateIndex(i).compile(dialect=dialect)) for i in table.indexes)
            )
    assert "uq_tracking_events_event_id" in {
        c.name for c in db.metadata.tables["tracking_events"].constraints
    }


def test_the_apps_connections_keep_the_apps_own_settings(
    app_factory: Callable[..., Flask], database_url: str
) -> None:
    """Nothing is added to the app's connections; bounds the app sets hold for ours too."""
    db, _ = make_db()
    tracking = Tracking(db=db)
    if database_url.startswith("postgresql"):
        options = {"connect_args": {"options": "-c statement_timeout=1500"}}
        app = app_factory(db, tracking, SQLALCHEMY_ENGINE_OPTIONS=options)
        with app.app_context(), tracking.engine.connect() as conn:
            assert conn.execute(text("SHOW statement_timeout")).scalar() == "1500ms"
            assert conn.execute(text("SHOW lock_timeout")).scalar() == "0"  # not ours
    else:
        app = app_factory(db, tracking)
        with app.app_context():
            db.create_all()
        with app.test_request_context("/"):
            assert tracking.emit("showanswer", {"problem_id": "p"}) is not None
        with app.app_context(), tracking.engine.connect() as conn:
            # make_engine would have switched the file to WAL; the app's engine did not.
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() != "wal"
            assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 1000


def test_forwarding_runs_through_the_apps_engine(
    app_factory: Callable[..., Flask],
) -> None:
    secret = "fsqla-secret"
    db, _ = make_db()
    tracking = Tracking(db=db)
    with WebhookReceiver(secret) as receiver:
        hook = {"kind": "webhook", "options": {"url": receiver.url, "secret": secret, "timeout": 2}}
        app = app_factory(db, tracking, TRACKING_DESTINATIONS={"hook": hook}, **FAST)
        try:
            with app.app_context():
                db.create_all()
            answer = app.test_client().post("/activity/events", data=batch_of("play_video"))
            assert answer.get_json()["accepted"] == 1
            receiver.wait_for(lambda: len(receiver.counts) == 1, 20, "the forwarded event")

            def delivered() -> bool:
                with app.app_context():
                    states = db.session.execute(text("SELECT state FROM tracking_deliveries"))
                    found = [s for (s,) in states]
                    db.session.rollback()
                return found == [DELIVERED]

            wait_until(delivered, 10, "the delivery row marked delivered")
        finally:
            forwarder_of(app).close()


def test_mistakes_are_config_errors_that_say_the_fix(
    app_factory: Callable[..., Flask], database_url: str
) -> None:
    db, _ = make_db()
    app = Flask("not_set_up")
    app.config.update(SECRET_KEY="x", SQLALCHEMY_DATABASE_URI=database_url)
    with pytest.raises(ConfigError, match=r"db\.init_app\(app\)"):
        Tracking(app, db=db)

    app = app_factory(db, TRACKING_DATABASE_URL=database_url)
    with pytest.raises(ConfigError, match="TRACKING_DATABASE_URL"):
        Tracking(app, db=db)

    other = SQLAlchemy()

    class Mine(other.Model):  # type: ignore[name-defined,misc]
        __tablename__ = "tracking_events"
        id: Mapped[int] = mapped_column(primary_key=True)

    with pytest.raises(ConfigError, match="already has a table 'tracking_events'"):
        Tracking(db=other)
