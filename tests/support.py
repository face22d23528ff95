"""Helpers shared by the test modules (the fixtures live in conftest.py).

A module of its own, not conftest: ``tests/browser`` has a conftest too, and only one
module can be called ``conftest`` when both folders are on ``sys.path``.
"""

from __future__ import annotations

import atexit
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from flask import Flask
from sqlalchemy import create_engine, select

from flask_tracking import FailedEvent, TrackingEvent
from flask_tracking.models import metadata

if TYPE_CHECKING:
    from flask_tracking.store import SqlStore

ROOT = Path(__file__).resolve().parents[1]
#: Real tracking-log lines kept in the repository (provenance and licences: its README.md).
CORPUS = Path(__file__).resolve().parent / "data"
IN_CI = os.environ.get("CI") == "true"


def corpus_path(name: str) -> Path:
    """A file of real tracking-log lines in ``tests/data``.

    Never skipped: the files are part of the repository, so a missing one is a broken
    checkout and must fail the test rather than let it pass unseen.
    """
    path = CORPUS / name
    if not path.is_file():
        pytest.fail(f"{path} is missing: it is part of the repository (git checkout tests/data).")
    return path


def service_url(name: str) -> str:
    """The URL of a real service (PostgreSQL or Redis); skip locally, fail under CI."""
    import services

    getter = {"postgresql": services.postgres_url, "redis": services.redis_url}[name]
    try:
        url = getter()
    except services.ServiceUnavailable as exc:
        if IN_CI:
            pytest.fail(f"{name} is needed and could not be found or started: {exc}")
        pytest.skip(f"{name} unavailable: {exc}")
    return _own_database(url) if name == "postgresql" else url


_OWN_DATABASES: dict[str, str] = {}


def _own_database(url: str) -> str:
    """A database of this test process on the server at ``url``, dropped at exit, so two
    test runs on one machine never drop each other's tables."""
    if url not in _OWN_DATABASES:
        import psycopg
        from sqlalchemy.engine import make_url

        base = make_url(url)
        name = f"tracking_test_{os.getpid()}"
        dsn = base.set(drivername="postgresql").render_as_string(hide_password=False)
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            conn.execute(f'CREATE DATABASE "{name}"')

        def drop() -> None:
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

        atexit.register(drop)
        _OWN_DATABASES[url] = base.set(database=name).render_as_string(hide_password=False)
    return _OWN_DATABASES[url]


#: ``TRACKING_TEST_PARTITION=month`` (or ``day``): every PostgreSQL app the tests build
#: has ``TRACKING_PARTITION`` set to it (``make test`` runs the PostgreSQL tests so too).
TEST_PARTITION = os.environ.get("TRACKING_TEST_PARTITION") or None


def partition_config(url: str) -> dict[str, Any]:
    """The ``TRACKING_PARTITION`` of a test app on ``url`` (none on SQLite)."""
    if TEST_PARTITION and url.startswith("postgresql"):
        return {"TRACKING_PARTITION": TEST_PARTITION}
    return {}


def insert_event_rows(conn: Any, rows: list[dict[str, Any]]) -> None:
    """Rows written straight into ``tracking_events`` on ``conn`` (as old data may hold
    them), the partitions they fall in made first when the tables are partitioned
    (TRACKING_TEST_PARTITION): a test that bypasses the store still runs on both layouts."""
    from flask_tracking.models import events_table
    from flask_tracking.partitions import Partitions

    url = conn.engine.url.render_as_string(hide_password=False)
    partition = partition_config(url).get("TRACKING_PARTITION")
    if partition:
        Partitions(conn.engine, partition).ensure(conn, [row["time"] for row in rows])
    conn.execute(events_table.insert(), rows)


def drop_tables(url: str) -> None:
    """No tracking tables at all on ``url`` (the id table of partitions included)."""
    from flask_tracking.partitions import ids_table

    engine = create_engine(url)
    try:
        if engine.dialect.name == "postgresql":
            with engine.begin() as conn:
                ids_table.drop(conn, checkfirst=True)
        metadata.drop_all(engine)
    finally:
        engine.dispose()


@contextmanager
def partitioned_store(unit: str = "month") -> Iterator[SqlStore]:
    """A store on the tests' PostgreSQL with ``tracking_events`` partitioned by ``unit``
    (whatever TRACKING_TEST_PARTITION says): the tables made anew, dropped after."""
    from flask_tracking.engine import make_engine
    from flask_tracking.store import SqlStore

    url = service_url("postgresql")
    drop_tables(url)
    store = SqlStore(make_engine(url, timeout=5), unit)
    store.create_all()
    try:
        yield store
    finally:
        store.engine.dispose()
        drop_tables(url)


def reset_database(url: str) -> None:
    """Empty tracking tables on ``url`` (partitioned under TRACKING_TEST_PARTITION)."""
    from flask_tracking.partitions import create_tables

    drop_tables(url)
    engine = create_engine(url)
    try:
        if partition_config(url):
            create_tables(engine, partition_config(url)["TRACKING_PARTITION"])
        else:
            metadata.create_all(engine)
    finally:
        engine.dispose()


AppFactory = Callable[..., Flask]


def rows(app: Flask) -> list[Any]:
    """The stored events of an app, in storing order."""
    with app.extensions["tracking"].engine.connect() as conn:
        return conn.execute(select(TrackingEvent.__table__).order_by(TrackingEvent.id)).all()


def failed(app: Flask) -> list[Any]:
    """The failed events of an app, in order."""
    with app.extensions["tracking"].engine.connect() as conn:
        return conn.execute(select(FailedEvent.__table__).order_by(FailedEvent.id)).all()
