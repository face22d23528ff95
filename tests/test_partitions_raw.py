"""Partitioned PostgreSQL stores take the raw DBAPI insert (``rawwrite``) for a plain
batch: the id-table statement, partitions made first (no query when all are known),
duplicates across partitions, a partition dropped meanwhile, a killed connection."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import event as sa_event
from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError
from test_store_insert import encoded, event

from flask_tracking.engine import is_unavailable
from flask_tracking.models import events_table
from flask_tracking.partitions import existing, ids_table
from flask_tracking.store import SqlStore

from support import partitioned_store


@pytest.fixture
def store() -> Iterator[SqlStore]:
    with partitioned_store("month") as made:
        yield made


def at(n: int, when: datetime) -> Any:
    return event(n, time=when)


def statements(store: SqlStore) -> list[str]:
    """The statements SQLAlchemy runs from now on (the raw path runs none)."""
    seen: list[str] = []
    sa_event.listen(store.engine, "before_cursor_execute", lambda *a: seen.append(a[2]))
    return seen


def test_a_plain_batch_takes_the_raw_path_and_its_partitions_cost_no_query(
    store: SqlStore,
) -> None:
    warm = [at(0, datetime(2024, 2, 1, tzinfo=UTC))]
    assert store.write(warm, (), encoded(warm)).stored == [warm[0]["event_id"]]
    seen = statements(store)
    batch = [at(n, datetime(2024, 2, 1, 9, n, tzinfo=UTC)) for n in range(1, 21)]
    result = store.write(batch, (), encoded(batch))
    assert result.stored == [e["event_id"] for e in batch] and not result.duplicates
    assert seen == []  # no SQLAlchemy statement, no catalog read
    with store.engine.connect() as conn:
        ids = conn.execute(select(func.count()).select_from(ids_table)).scalar_one()
    assert ids == 21 and store.count() == 21


def test_a_duplicate_in_another_partition_is_a_duplicate(store: SqlStore) -> None:
    first = at(1, datetime(2021, 5, 3, tzinfo=UTC))
    assert store.write([first], (), encoded([first])).stored == [first["event_id"]]
    again = dict(first, time=datetime(2023, 9, 9, tzinfo=UTC))
    other = at(2, datetime(2023, 9, 9, tzinfo=UTC))
    result = store.write([again, other], (), encoded([again, other]))  # type: ignore[list-item]
    assert result.duplicates == [first["event_id"]] and result.stored == [other["event_id"]]
    with store.engine.connect() as conn:
        times = conn.execute(
            select(events_table.c.time).where(events_table.c.event_id == first["event_id"])
        ).all()
        made = set(existing(conn))
    assert times == [(datetime(2021, 5, 3),)]
    assert {"tracking_events_p2021_05", "tracking_events_p2023_09"} <= made


def test_a_month_without_partition_is_made_on_demand_also_by_another_process(
    store: SqlStore,
) -> None:
    item = at(1, datetime(2015, 3, 7, tzinfo=UTC))
    assert store.write([item], (), encoded([item])).stored == [item["event_id"]]
    other = SqlStore(store.engine, "month")  # its list predates the partition: read again
    later = at(2, datetime(2015, 3, 8, tzinfo=UTC))
    assert other.partitions is not None
    other.partitions.missing([])  # nothing read yet
    assert other.write([later], (), encoded([later])).stored == [later["event_id"]]
    with store.engine.connect() as conn:
        assert "tracking_events_p2015_03" in existing(conn)


def test_a_partition_dropped_meanwhile_is_made_again_on_the_raw_path(store: SqlStore) -> None:
    item = at(1, datetime(2019, 7, 1, tzinfo=UTC))
    assert store.write([item], (), encoded([item])).stored == [item["event_id"]]
    with store.engine.begin() as conn:  # another process prunes July 2019 away
        conn.exec_driver_sql("DELETE FROM tracking_event_ids")
        conn.exec_driver_sql("DROP TABLE tracking_events_p2019_07")
    again = at(2, datetime(2019, 7, 2, tzinfo=UTC))
    result = store.write([again], (), encoded([again]))
    assert result.stored == [again["event_id"]] and not result.rejected
    with store.engine.connect() as conn:
        assert "tracking_events_p2019_07" in existing(conn)


def test_a_connection_killed_mid_insert_is_unavailable_not_a_refused_row(
    store: SqlStore,
) -> None:
    doomed = at(1, datetime(2024, 2, 1, tzinfo=UTC))
    with store.engine.begin() as conn:  # the insert's backend ends itself, mid-statement
        conn.exec_driver_sql(
            "CREATE FUNCTION kill_me() RETURNS trigger LANGUAGE plpgsql AS"
            " $$ BEGIN PERFORM pg_terminate_backend(pg_backend_pid()); RETURN NEW; END $$"
        )
        conn.exec_driver_sql(
            "CREATE TRIGGER kill_me BEFORE INSERT ON tracking_event_ids FOR EACH ROW"
            f" WHEN (NEW.event_id = '{doomed['event_id']}') EXECUTE FUNCTION kill_me()"
        )
    with pytest.raises(DBAPIError) as caught:
        store.write([doomed], (), encoded([doomed]))
    assert is_unavailable(caught.value) and caught.value.connection_invalidated
    with store.engine.begin() as conn:
        conn.exec_driver_sql("DROP TRIGGER kill_me ON tracking_event_ids")
        conn.exec_driver_sql("DROP FUNCTION kill_me()")
    assert store.write([doomed], (), encoded([doomed])).stored == [doomed["event_id"]]
