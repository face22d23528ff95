"""``TRACKING_PARTITION`` on PostgreSQL: ``tracking_events`` partitioned by time, its
partitions made ahead (init-db) and on demand (an old log), event ids unique across
partitions through ``tracking_event_ids``, and the mismatches init-db refuses."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask import Flask
from sqlalchemy import func, select

from flask_tracking.extension import get_state
from flask_tracking.models import events_table, metadata
from flask_tracking.partitions import (
    existing,
    ids_table,
    include_object,
    is_partitioned,
    upcoming,
)

from forwarding_app import event, forwarder_of, make_app
from forwarding_app import store as store_events
from support import corpus_path, drop_tables, service_url

E = events_table


@pytest.fixture
def build(tmp_path: Path) -> Iterator[Any]:
    """Apps on an empty PostgreSQL database (no tracking tables): ``build(unit)``."""
    url = service_url("postgresql")
    drop_tables(url)
    made: list[Flask] = []

    def factory(unit: str | None, **config: Any) -> Flask:
        settings = {"TRACKING_DATABASE_URL": url, "TRACKING_PARTITION": unit, **config}
        app = make_app({"INSTANCE_PATH": str(tmp_path / f"i{len(made)}"), **settings})
        made.append(app)
        return app

    yield factory
    for app in made:
        forwarder_of(app).close()
        get_state(app).engine.dispose()
    drop_tables(url)


def init_db(app: Flask) -> Any:
    return app.test_cli_runner().invoke(args=["tracking", "init-db"])


def names(app: Flask) -> set[str]:
    with get_state(app).engine.connect() as conn:
        return set(existing(conn))


@pytest.mark.parametrize("unit", ["month", "day"])
def test_init_db_creates_a_partitioned_table_and_partitions_ahead(build: Any, unit: str) -> None:
    app = build(unit)
    result = init_db(app)
    assert result.exit_code == 0, result.output
    ahead = [p.name for p in upcoming(unit, datetime.now(UTC))]
    assert f"partitioned by {unit}: {len(ahead)} partitions, {ahead[0]} to {ahead[-1]}" in (
        result.output
    )
    with get_state(app).engine.connect() as conn:
        assert is_partitioned(conn) is True
    assert names(app) == set(ahead)
    again = init_db(app)  # safe to run again
    assert again.exit_code == 0 and "created: nothing" in again.output


def test_event_ids_are_unique_across_partitions(build: Any) -> None:
    app = build("month")
    get_state(app).store.create_all()
    first = event(1)
    first.update(time=datetime(2021, 5, 3, tzinfo=UTC))
    same_id_later = dict(first, time=datetime(2023, 9, 9, tzinfo=UTC))
    assert store_events(app, [first]) == [first["event_id"]]
    with app.app_context():
        result = get_state(app).tracker.record([same_id_later, event(2)], processed=True)
    assert result.duplicates == [first["event_id"]] and len(result.stored) == 1
    with get_state(app).engine.connect() as conn:
        times = conn.execute(select(E.c.time).where(E.c.event_id == first["event_id"])).all()
        id_rows = conn.execute(select(func.count()).select_from(ids_table)).scalar_one()
    assert times == [(datetime(2021, 5, 3),)] and id_rows == 2
    assert {"tracking_events_p2021_05", "tracking_events_p2023_09"} <= names(app)


def test_an_old_edx_log_is_imported_into_partitions_made_on_demand(build: Any) -> None:
    """The 2012 lines of the corpus store as on a plain table: same counts, same rows."""
    log = str(corpus_path("edx-analytics-pipeline.jsonl"))
    summaries = {}
    for unit in (None, "month"):
        app = build(unit, TRACKING_ANONYMIZE=False)
        result = app.test_cli_runner().invoke(args=["tracking", "import", log])
        assert result.exit_code == 0, result.output
        with app.app_context():
            query = select(E.c.event_id, E.c.time, E.c.event_type).order_by(E.c.event_id)
            rows = get_state(app).engine.connect().execute(query).all()
        summaries[unit] = (result.output, rows)
        if unit:
            made = names(app)
            assert {f"tracking_events_p{t:%Y_%m}" for _, t, _ in rows} <= made
        drop_tables(get_state(app).engine.url.render_as_string(hide_password=False))
    assert summaries[None] == summaries["month"]


def test_init_db_refuses_a_table_of_the_other_kind(build: Any) -> None:
    plain = build(None)
    assert init_db(plain).exit_code == 0
    partitioned = build("month")
    result = init_db(partitioned)
    assert result.exit_code == 1
    assert "Error: TRACKING_PARTITION = 'month', but tracking_events already exists as a" in (
        result.output
    )
    assert "docs/partitions.md" in result.output
    drop_tables(get_state(plain).engine.url.render_as_string(hide_password=False))
    assert init_db(partitioned).exit_code == 0
    result = init_db(build(None))
    assert result.exit_code == 1
    assert "Error: TRACKING_PARTITION is None, but tracking_events in this database is" in (
        result.output
    )


def test_a_partition_dropped_by_another_process_is_made_again(build: Any) -> None:
    app = build("month")
    get_state(app).store.create_all()
    item = event(1)
    item.update(time=datetime(2019, 7, 1, tzinfo=UTC))
    assert store_events(app, [item]) == [item["event_id"]]
    other = build("month")  # another process prunes July 2019 away
    with get_state(other).engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM tracking_event_ids")
        conn.exec_driver_sql("DROP TABLE tracking_events_p2019_07")
    again = dict(event(2), time=datetime(2019, 7, 2, tzinfo=UTC), event_id=str(uuid.uuid4()))
    assert store_events(app, [again]) == [again["event_id"]]  # its list said July exists
    assert "tracking_events_p2019_07" in names(app)


def test_alembic_autogenerate_leaves_the_partitioned_tables_alone(build: Any) -> None:
    app = build("month")
    get_state(app).store.create_all()
    with get_state(app).engine.connect() as conn:
        plain = compare_metadata(MigrationContext.configure(conn), metadata)
        context = MigrationContext.configure(conn, opts={"include_object": include_object})
        filtered = compare_metadata(context, metadata)
    assert any(diff[0] == "remove_table" for diff in plain)  # the partitions, without it
    assert filtered == []
