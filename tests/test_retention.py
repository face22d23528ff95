"""Retention (``flask tracking prune``, ``TRACKING_RETENTION_DAYS`` in the worker) on
SQLite, plain PostgreSQL and PostgreSQL partitioned by month: what is older goes, with its
deliveries, ids and failed rows; an event with a pending delivery never goes."""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import create_engine, insert, select, text, update
from sqlalchemy import event as sql_event

from flask_tracking.catalog.table import catalog_rows, refresh_seen, seen_after_prune
from flask_tracking.event_types import SHOW_ANSWER, SHOW_ANSWER_ALIAS
from flask_tracking.extension import get_state
from flask_tracking.forwarding import DELIVERED, FAILED, PENDING, deliveries_table
from flask_tracking.models import events_table, failed_table
from flask_tracking.partitions import existing, ids_table, make_partitions, upcoming
from flask_tracking.retention import RUN_NAME, Housekeeping, prune
from flask_tracking.runlock import Busy, lock_key
from flask_tracking.schemas.examples import EXAMPLES
from flask_tracking.schemas.registry import SOURCE_ALIASES

from forwarding_app import (
    FAST,
    clean_redis,
    event,
    forwarder_of,
    make_app,
    redis_db_url,
    wait_until,
    worker,
)
from forwarding_app import store as store_events
from services import get_or_skip, redis_url
from support import drop_tables, service_url

E, D, F = events_table, deliveries_table, failed_table


@pytest.fixture(params=["sqlite", "postgresql", "postgresql-month"])
def layout(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Any]:
    """The database settings of a test: SQLite, plain PostgreSQL, partitioned PostgreSQL."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'tracking.db'}"
    else:
        url = service_url("postgresql")
    drop_tables(url)
    unit = "month" if request.param.endswith("-month") else None
    return {"TRACKING_DATABASE_URL": url, "TRACKING_PARTITION": unit}


@pytest.fixture
def app(layout: dict[str, Any], tmp_path: Path) -> Iterator[Flask]:
    made = make_app({"INSTANCE_PATH": str(tmp_path / "instance"), **layout})
    get_state(made).store.create_all()
    yield made
    forwarder_of(made).close()
    get_state(made).engine.dispose()


def at(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def put(app: Flask, when: datetime, event_id: str | None = None) -> str:
    """Store one event at ``when``; its id."""
    item = event(0)
    item.update(time=when, received_at=when, event_id=event_id or str(uuid.uuid4()))
    assert store_events(app, [item]) == [item["event_id"]]
    return str(item["event_id"])


def deliver(app: Flask, event_id: str, state: str, destination: str = "hook") -> None:
    """A delivery row of a stored event, in ``state``."""
    now = datetime.now(UTC).replace(tzinfo=None)
    with get_state(app).engine.begin() as conn:
        pk = conn.execute(select(E.c.id).where(E.c.event_id == event_id)).scalar_one()
        conn.execute(
            insert(D).values(
                event_pk=pk,
                destination=destination,
                state=state,
                attempts=1,
                created_at=now,
                updated_at=now,
                next_attempt_at=now,
            )
        )


def fail(app: Flask, when: datetime) -> None:
    row = {"origin": "import", "raw": "{", "reasons": {"_schema": ["x"]}}
    get_state(app).store.save_failed([{**row, "failed_at": when.replace(tzinfo=None)}])


def event_ids(app: Flask) -> set[str]:
    with get_state(app).engine.connect() as conn:
        return set(conn.execute(select(E.c.event_id)).scalars())


def table_ids(app: Flask) -> set[str]:
    with get_state(app).engine.connect() as conn:
        return set(conn.execute(select(ids_table.c.event_id)).scalars())


def deliveries(app: Flask) -> list[tuple[str, str]]:
    """(event id, state) of every delivery."""
    query = select(E.c.event_id, D.c.state).join(E, E.c.id == D.c.event_pk)
    with get_state(app).engine.connect() as conn:
        return sorted((row[0], row[1]) for row in conn.execute(query))


def count(app: Flask, table: Any) -> int:
    with get_state(app).engine.connect() as conn:
        return len(conn.execute(select(table)).all())


def partitions(app: Flask) -> set[str]:
    with get_state(app).engine.connect() as conn:
        return set(existing(conn))


def prune_cli(app: Flask, *args: str) -> str:
    result = app.test_cli_runner().invoke(args=["tracking", "prune", *args])
    assert result.exit_code == 0, result.output
    return str(result.output)


def test_prune_removes_older_events_their_rows_and_old_failed_events(
    app: Flask, layout: dict[str, Any]
) -> None:
    partitioned = layout["TRACKING_PARTITION"] is not None
    jan = put(app, at(2020, 1, 15))
    feb = put(app, at(2020, 2, 10))
    early_march = put(app, at(2020, 3, 5))  # in a partition that straddles the cutoff
    late_march = put(app, at(2020, 3, 15))
    recent = put(app, at(2024, 3, 1))
    deliver(app, jan, DELIVERED)
    deliver(app, feb, FAILED)
    deliver(app, early_march, DELIVERED)
    deliver(app, late_march, DELIVERED)
    fail(app, at(2020, 1, 1))
    fail(app, at(2024, 1, 1))

    dry = prune_cli(app, "--before", "2020-03-10", "--dry-run")
    assert "before: 2020-03-10T00:00:00 (UTC)" in dry
    assert "would remove: tracking_events=3" in dry
    assert "would remove: tracking_deliveries=3" in dry
    assert "would remove: tracking_failed_events=1" in dry
    assert len(event_ids(app)) == 5 and count(app, D) == 4 and count(app, F) == 2
    if partitioned:
        assert "would remove: tracking_event_ids=3" in dry
        assert "partitions would drop: tracking_events_p2020_01, tracking_events_p2020_02" in dry

    out = prune_cli(app, "--before", "2020-03-10")
    assert "removed: tracking_events=3" in out
    assert "removed: tracking_deliveries=3" in out
    assert "removed: tracking_failed_events=1" in out
    assert event_ids(app) == {late_march, recent}
    assert deliveries(app) == [(late_march, DELIVERED)]
    assert count(app, F) == 1
    if partitioned:
        assert "removed: tracking_event_ids=3" in out
        assert "partitions dropped: tracking_events_p2020_01, tracking_events_p2020_02" in out
        assert table_ids(app) == {late_march, recent}
        names = partitions(app)
        assert "tracking_events_p2020_03" in names and "tracking_events_p2020_01" not in names
    else:
        assert "partition" not in out

    # Nothing is left to remove; an event of a pruned month (its id pruned too) stores
    # again, into a partition made again.
    assert "removed: tracking_events=0" in prune_cli(app, "--before", "2020-03-10")
    assert put(app, at(2020, 1, 15), event_id=jan) == jan
    assert event_ids(app) == {jan, late_march, recent}


def test_an_event_with_a_pending_delivery_is_never_removed(
    app: Flask, layout: dict[str, Any]
) -> None:
    partitioned = layout["TRACKING_PARTITION"] is not None
    waiting = put(app, at(2020, 1, 10))
    done = put(app, at(2020, 1, 20))
    lonely = put(app, at(2020, 2, 5))
    deliver(app, waiting, PENDING, "slow")
    deliver(app, waiting, DELIVERED, "fast")
    deliver(app, done, DELIVERED)

    dry = prune_cli(app, "--before", "2020-03-01", "--dry-run")
    assert "would remove: tracking_events=2" in dry and "kept: 1 events with pending" in dry
    out = prune_cli(app, "--before", "2020-03-01")
    assert "removed: tracking_events=2" in out
    assert "kept: 1 events with pending deliveries" in out
    assert event_ids(app) == {waiting}
    assert deliveries(app) == [(waiting, DELIVERED), (waiting, PENDING)]
    if partitioned:
        assert "kept partition tracking_events_p2020_01: it holds events with pending" in out
        assert "partitions dropped: tracking_events_p2020_02" in out
        assert "tracking_events_p2020_01" in partitions(app)
        assert table_ids(app) == {waiting}
    assert lonely not in event_ids(app)

    # Once delivered, it goes (and, partitioned, its partition with it).
    with get_state(app).engine.begin() as conn:
        conn.execute(update(D).where(D.c.state == PENDING).values(state=DELIVERED))
    out = prune_cli(app, "--before", "2020-03-01")
    assert "removed: tracking_events=1" in out and "removed: tracking_deliveries=2" in out
    assert event_ids(app) == set() and count(app, D) == 0
    if partitioned:
        assert "partitions dropped: tracking_events_p2020_01" in out
        assert table_ids(app) == set()


def test_prune_deletes_in_batches(app: Flask, layout: dict[str, Any]) -> None:
    """Seven events in one month, the cutoff inside it: batches of 2 rows, by time."""
    ids = [put(app, at(2020, 1, day)) for day in range(1, 8)]
    for n, event_id in enumerate(ids):
        deliver(app, event_id, PENDING if n == 1 else DELIVERED)
    for day in range(1, 8):
        fail(app, at(2020, 1, day))
    state = get_state(app)
    planned = prune(state.store, at(2020, 1, 6), dry_run=True, batch=2)
    assert (planned.events, planned.kept_pending, planned.failed) == (4, 1, 5)
    report = prune(state.store, at(2020, 1, 6), batch=2)
    assert (report.events, report.deliveries, report.kept_pending) == (4, 4, 1)
    assert report.failed == 5 and report.dropped == []
    assert event_ids(app) == {ids[1], *ids[5:]}
    assert count(app, F) == 2


def test_the_worker_applies_the_retention_days(layout: dict[str, Any], tmp_path: Path) -> None:
    url = redis_db_url(get_or_skip(redis_url))
    queue = f"ret-{uuid.uuid4().hex[:10]}"
    config = {
        "INSTANCE_PATH": str(tmp_path / "instance"),
        **layout,
        "TRACKING_REDIS_URL": url,
        "TRACKING_FORWARD_QUEUE": queue,
        "TRACKING_RETENTION_DAYS": 30,
        **FAST,
    }
    app = make_app(config)
    state = get_state(app)
    try:
        state.store.create_all()
        now = datetime.now(UTC)
        old = [put(app, now - timedelta(days=400)), put(app, now - timedelta(days=40))]
        pending = put(app, now - timedelta(days=45))
        deliver(app, pending, PENDING, "gone")  # not configured: nobody delivers it
        new = put(app, now - timedelta(days=1))
        last_ahead = None
        if layout["TRACKING_PARTITION"]:
            last_ahead = upcoming("month", now)[-1].name
            with state.engine.begin() as conn:
                conn.exec_driver_sql(f'DROP TABLE "{last_ahead}"')
        with worker(config, tmp_path / "worker.log") as process:
            wait_until(lambda: event_ids(app) == {pending, new}, 60, "the worker's prune")
            if last_ahead is not None:
                wait_until(lambda: last_ahead in partitions(app), 30, "the partition ahead")
            # Logged once the whole prune (failed rows too) is done.
            wait_until(lambda: "Tracking retention: before:" in process.log(), 30, "the log")
        assert not set(old) & event_ids(app)
        assert deliveries(app) == [(pending, PENDING)]
    finally:
        forwarder_of(app).close()
        state.engine.dispose()
        clean_redis(url, queue)


def test_partitions_ahead_are_made_again_by_the_housekeeping(tmp_path: Path) -> None:
    url = service_url("postgresql")
    drop_tables(url)
    app = make_app(
        {
            "INSTANCE_PATH": str(tmp_path / "instance"),
            "TRACKING_DATABASE_URL": url,
            "TRACKING_PARTITION": "day",
        }
    )
    state = get_state(app)
    try:
        state.store.create_all()
        now = datetime.now(UTC)
        ahead = upcoming("day", now)
        assert len(ahead) == 15 and {p.name for p in ahead} <= partitions(app)
        assert make_partitions(state.engine, ahead) == []  # all there: nothing made
    finally:
        forwarder_of(app).close()
        state.engine.dispose()


def test_a_partition_in_use_is_kept_for_the_next_prune(tmp_path: Path) -> None:
    """A long reader holds the table: the drop waits TRACKING_DB_TIMEOUT, then gives up
    on that partition alone and says so; ingest never queues behind it for longer."""
    url = service_url("postgresql")
    drop_tables(url)
    config = {"INSTANCE_PATH": str(tmp_path / "i"), "TRACKING_DATABASE_URL": url}
    app = make_app({**config, "TRACKING_PARTITION": "month", "TRACKING_DB_TIMEOUT": 0.5})
    state = get_state(app)
    reader = create_engine(url)
    try:
        state.store.create_all()
        old = put(app, at(2020, 1, 10))
        with reader.connect() as conn:
            conn.exec_driver_sql("BEGIN")
            conn.exec_driver_sql("SELECT count(*) FROM tracking_events")  # holds its lock
            report = prune(state.store, at(2020, 3, 1))
            conn.exec_driver_sql("ROLLBACK")
        assert report.busy_partitions == ["tracking_events_p2020_01"] and report.events == 0
        assert any("busy (its lock was not granted)" in line for line in report.lines())
        assert event_ids(app) == {old} and table_ids(app) == {old}
        again = prune(state.store, at(2020, 3, 1))
        assert again.dropped == ["tracking_events_p2020_01"] and event_ids(app) == set()
    finally:
        reader.dispose()
        forwarder_of(app).close()
        state.engine.dispose()


def test_a_drop_and_a_query_of_every_partition_never_deadlock(tmp_path: Path) -> None:
    """A query of tracking_events locks the parent, then each partition; the drop takes
    them in the same order, so it waits for the query instead of holding the partition
    the query needs next (which deadlocked, and one of the two failed)."""
    url = service_url("postgresql")
    drop_tables(url)
    config = {"INSTANCE_PATH": str(tmp_path / "i"), "TRACKING_DATABASE_URL": url}
    app = make_app({**config, "TRACKING_PARTITION": "month", "TRACKING_DB_TIMEOUT": 20})
    state = get_state(app)
    reader, watcher = create_engine(url), create_engine(url)
    outcome: dict[str, Any] = {}

    def run_prune() -> None:
        try:
            outcome["report"] = prune(state.store, at(2020, 3, 1))
        except Exception as exc:
            outcome["error"] = exc

    def drop_waits_for_the_parent() -> bool:
        with watcher.connect() as conn:
            waiting = "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = %s::regclass"
            return bool(conn.exec_driver_sql(waiting, ("tracking_events",)).scalar())

    try:
        state.store.create_all()
        old = put(app, at(2020, 1, 10))
        with reader.connect() as conn:
            conn.exec_driver_sql("BEGIN")
            # Where a query of every partition stands once it has the parent.
            conn.exec_driver_sql("LOCK TABLE ONLY tracking_events IN ACCESS SHARE MODE")
            thread = threading.Thread(target=run_prune)
            thread.start()
            wait_until(drop_waits_for_the_parent, 15, "the drop waiting for the parent")
            assert conn.exec_driver_sql("SELECT event_id FROM tracking_events").scalars().all()
            conn.exec_driver_sql("COMMIT")
        thread.join(30)
        assert "error" not in outcome, outcome.get("error")
        assert outcome["report"].dropped == ["tracking_events_p2020_01"]
        assert old not in event_ids(app)
    finally:
        reader.dispose()
        watcher.dispose()
        forwarder_of(app).close()
        state.engine.dispose()


def test_one_prune_at_a_time_on_postgresql(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Workers all start their housekeeping at once: while one process prunes (here, a
    session holding the prune's advisory lock), another prune is Busy at once: the CLI
    says so, the worker's housekeeping skips its turn; a dry run needs no lock."""
    url = service_url("postgresql")
    drop_tables(url)
    config = {"INSTANCE_PATH": str(tmp_path / "i"), "TRACKING_DATABASE_URL": url}
    app = make_app({**config, "TRACKING_PARTITION": "month"})
    state = get_state(app)
    other = create_engine(url)
    key = {"key": lock_key(RUN_NAME)}
    try:
        state.store.create_all()
        old = put(app, at(2020, 1, 10))
        with other.connect() as conn:
            assert conn.execute(text("SELECT pg_try_advisory_lock(:key)"), key).scalar()
            with pytest.raises(Busy):
                prune(state.store, at(2020, 3, 1))
            cli = app.test_cli_runner().invoke(args=["tracking", "prune", "--before", "2020-03-01"])
            assert cli.exit_code == 1 and "Another process is pruning" in cli.output, cli.output
            with caplog.at_level(logging.INFO, logger="flask_tracking"):
                Housekeeping(state.store, retention_days=30)()
            assert "Tracking retention: skipped, another process is pruning." in caplog.text
            dry = prune(state.store, at(2020, 3, 1), dry_run=True)
            assert dry.dropped == ["tracking_events_p2020_01"]
            assert event_ids(app) == {old}
            conn.execute(text("SELECT pg_advisory_unlock(:key)"), key)
        report = prune(state.store, at(2020, 3, 1))
        assert report.dropped == ["tracking_events_p2020_01"] and event_ids(app) == set()
        with other.connect() as conn:  # the prune let its lock go
            assert conn.execute(text("SELECT pg_try_advisory_lock(:key)"), key).scalar()
    finally:
        other.dispose()
        forwarder_of(app).close()
        state.engine.dispose()


def seen(app: Flask) -> dict[tuple[str, str], tuple[datetime | None, datetime | None]]:
    """``{(type, source): (first seen, last seen)}`` of the catalog's rows."""
    rows = catalog_rows(get_state(app).engine)
    return {(r["event_type"], r["source"]): (r["first_seen"], r["last_seen"]) for r in rows}


def put_typed(
    app: Flask, source: str, event_type: str, when: datetime, example: str | None = None
) -> None:
    """Store one valid built-in event (validated, so it has a schema version), with the
    example payload of ``(source, example or event_type)``."""
    payload = EXAMPLES[(SOURCE_ALIASES.get(source, source), example or event_type)]
    item = event(0, event_type=event_type, source=source, payload=payload)
    item.update(time=when, received_at=when, schema_status=None)
    assert len(store_events(app, [item])) == 1


def test_prune_sets_the_catalog_first_and_last_seen_again(app: Flask) -> None:
    video, enrolled = ("play_video", "browser"), (SHOW_ANSWER, "server")
    put_typed(app, "browser", "play_video", at(2020, 1, 15))
    put_typed(app, "browser", "play_video", at(2020, 2, 10))
    put_typed(app, "browser", "play_video", at(2024, 3, 1))
    put_typed(app, "server", SHOW_ANSWER, at(2020, 1, 20))
    refresh_seen(get_state(app).engine)
    naive = {key: value for key, value in seen(app).items() if value[0] is not None}
    assert naive == {
        video: (datetime(2020, 1, 15), datetime(2024, 3, 1)),
        enrolled: (datetime(2020, 1, 20), datetime(2020, 1, 20)),
    }

    out = prune_cli(app, "--before", "2020-03-10")
    assert "catalog: first and last seen set again for 2 event types" in out
    after = seen(app)
    assert after[video] == (datetime(2024, 3, 1), datetime(2024, 3, 1))
    assert after[enrolled] == (None, None)  # none of its events is left
    # A dry run changes nothing.
    assert "first and last seen" not in prune_cli(app, "--before", "2025-01-01", "--dry-run")
    assert seen(app)[video] == (datetime(2024, 3, 1), datetime(2024, 3, 1))


def test_prune_sets_first_and_last_seen_from_the_aliases_of_a_type_and_its_source(
    app: Flask,
) -> None:
    """The row of a built-in type counts the events of its alias names and of its
    source's aliases (``task`` for ``server``): the earliest and latest left of them."""
    for source, name, when in (
        ("server", SHOW_ANSWER, at(2020, 1, 20)),
        ("task", SHOW_ANSWER_ALIAS, at(2020, 2, 1)),
        ("server", SHOW_ANSWER_ALIAS, at(2021, 5, 5)),
        ("task", SHOW_ANSWER, at(2023, 7, 1)),
        ("server", SHOW_ANSWER, at(2022, 1, 9)),
    ):
        put_typed(app, source, name, when, example=SHOW_ANSWER)
    refresh_seen(get_state(app).engine)
    assert seen(app)[(SHOW_ANSWER, "server")] == (datetime(2020, 1, 20), datetime(2023, 7, 1))
    assert "first and last seen set again for 1 event types" in prune_cli(
        app, "--before", "2020-03-10"
    )
    assert seen(app)[(SHOW_ANSWER, "server")] == (datetime(2021, 5, 5), datetime(2023, 7, 1))


def test_setting_seen_again_takes_one_select_per_catalog_row(app: Flask) -> None:
    """Whatever the number of type names: the rows read, one select per row (its names'
    first and last events as subqueries), and one executemany for all the rows."""
    put_typed(app, "browser", "play_video", at(2020, 1, 15))
    put_typed(app, "server", SHOW_ANSWER, at(2020, 1, 20))  # two names: one alias
    engine = get_state(app).engine
    refresh_seen(engine)
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    sql_event.listen(engine, "before_cursor_execute", count)
    try:
        assert seen_after_prune(engine, datetime(2021, 1, 1)) == 2
    finally:
        sql_event.remove(engine, "before_cursor_execute", count)
    data = [sql for sql in statements if "tracking_event" in sql]
    assert len(data) == 4, data
