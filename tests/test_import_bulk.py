"""The import's bulk insert (``SqlStore.insert_many``; PostgreSQL: ``COPY``, ``pgcopy.py``)
on both databases and on a partitioned table: ids stored once whatever was stored
before, failed rows in the same transaction, rows as the other inserts write them."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from test_store_insert import encoded, event, make_store

from flask_tracking import pgcopy
from flask_tracking.engine import make_engine
from flask_tracking.models import events_table, failed_table
from flask_tracking.partitions import ids_table
from flask_tracking.store import SqlStore

from support import drop_tables, partitioned_store, service_url

E = events_table


def count(store: SqlStore, table: Any = E) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def failed_row(n: int) -> dict[str, Any]:
    return {"origin": "import", "raw": f"line {n}", "reasons": {"_line": ["Not valid JSON."]}}


def test_a_chunk_partly_stored_before_stores_only_the_rest(database_url: str) -> None:
    store = make_store(database_url)
    store.create_all()
    events = [event(n) for n in range(40)]
    assert store.insert_many(events[:15], (), encoded(events[:15])) == (15, [])
    # Ids stored before, one repeated in the chunk: the rest stored, each once.
    again = [*events, events[20]]
    assert store.insert_many(again, (), encoded(again)) == (25, [])
    assert count(store) == 40
    assert store.insert_many(events, (), encoded(events)) == (0, [])
    assert count(store) == 40
    store.engine.dispose()


def test_failed_rows_go_with_the_chunk(database_url: str) -> None:
    store = make_store(database_url)
    store.create_all()
    events = [event(n) for n in range(5)]
    store.insert_many(events[:2], (), encoded(events[:2]))
    stored, refused = store.insert_many(events, [failed_row(1), failed_row(2)], encoded(events))
    assert (stored, refused) == (3, [])
    assert count(store) == 5 and count(store, failed_table) == 2
    store.engine.dispose()


def test_bulk_rows_equal_the_rows_of_the_other_insert(database_url: str) -> None:
    """Every column as ``write`` stores it (times naive UTC, JSON text, context columns)."""
    bulk, other = make_store(database_url), None
    bulk.create_all()
    events = [event(n, event={"q": "é\u2028", "n": 2**62}) for n in range(3)]
    bulk.insert_many(events[:1], (), encoded(events[:1]))
    with bulk.engine.connect() as conn:
        first = conn.execute(select(E).where(E.c.event_id == events[0]["event_id"])).one()
    other = make_store(database_url)
    other.write(events[1:2], (), encoded(events[1:2]))
    with other.engine.connect() as conn:
        second = conn.execute(select(E).where(E.c.event_id == events[1]["event_id"])).one()
    skip = {"id", "event_id", "time", "seq", "event"}
    same = {k: v for k, v in first._mapping.items() if k not in skip}
    assert same == {k: v for k, v in second._mapping.items() if k not in skip}
    assert first.time == datetime(2024, 2, 1, 9, 0) and first.event == events[0]["event"]
    bulk.engine.dispose()
    other.engine.dispose()


@pytest.fixture
def partitioned() -> Iterator[SqlStore]:
    with partitioned_store("month") as store:
        yield store


def test_a_partitioned_store_keeps_ids_unique_across_partitions(partitioned: SqlStore) -> None:
    start = datetime(2021, 1, 20, tzinfo=UTC)
    events = [event(n, time=start + timedelta(days=n)) for n in range(30)]  # Jan-Feb
    assert partitioned.insert_many(events[:10], (), encoded(events[:10])) == (10, [])
    # The same ids at other times (other partitions): stored before, not again.
    moved = [dict(e, time=e["time"] + timedelta(days=200)) for e in events[:10]]
    chunk = [*moved, *events[10:]]
    assert partitioned.insert_many(chunk, [failed_row(1)], encoded(chunk)) == (20, [])  # type: ignore[arg-type]
    assert count(partitioned) == 30 and count(partitioned, ids_table) == 30
    assert count(partitioned, failed_table) == 1
    with partitioned.engine.connect() as conn:
        months = conn.execute(select(func.date_trunc("month", E.c.time)).distinct()).all()
    assert sorted(m for (m,) in months) == [datetime(2021, 1, 1), datetime(2021, 2, 1)]


def test_an_id_from_another_writer_is_a_duplicate(database_url: str) -> None:
    """A row stored by ``write`` (another process) meanwhile: the chunk still stores."""
    store = make_store(database_url)
    store.create_all()
    events = [event(n) for n in range(6)]
    store.write([events[3]])
    assert store.insert_many(events, (), encoded(events)) == (5, [])
    with store.engine.connect() as conn:
        stored = sorted(conn.execute(select(E.c.event_id)).scalars())
    assert stored == sorted(e["event_id"] for e in events)
    store.engine.dispose()


def test_postgresql_two_chunks_crossing_ids_never_deadlock(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two chunks stored at once (``--jobs``) into a plain table, the same two ids in
    opposite orders, with the default 1 s bound (TRACKING_DB_TIMEOUT: statement and
    lock timeouts of 1 s, PostgreSQL's deadlock check after 1 s too): both COPYs go in
    the order of the ids, so one waits for the other and finds its ids stored, never a
    deadlock (which the statement timeout would cut short first: "unavailable", the
    import stopped). Each id stored once, by one of them."""
    url = service_url("postgresql")
    drop_tables(url)
    stores = [SqlStore(make_engine(url, timeout=1.0)), SqlStore(make_engine(url, timeout=1.0))]
    stores[0].create_all()
    with stores[0].engine.begin() as conn:
        # Each COPY waits (0.5 s at most) for the other to start (sessions meet on
        # advisory locks, held to the end of the session), then each row takes a
        # little while: the first rows go in together.
        conn.exec_driver_sql(
            "CREATE OR REPLACE FUNCTION meet() RETURNS trigger LANGUAGE plpgsql AS $$"
            " DECLARE tries int := 0; BEGIN"
            " PERFORM pg_advisory_lock(4242, pg_backend_pid());"
            " WHILE tries < 50 AND (SELECT count(DISTINCT pid) FROM pg_locks"
            "  WHERE locktype = 'advisory' AND classid = 4242 AND objsubid = 2) < 2"
            " LOOP PERFORM pg_sleep(0.01); tries := tries + 1; END LOOP;"
            " PERFORM pg_sleep(0.05); RETURN NEW; END $$"
        )
        conn.exec_driver_sql(
            "CREATE TRIGGER meet BEFORE INSERT ON tracking_events"
            " FOR EACH ROW EXECUTE FUNCTION meet()"
        )
    pair = [event(1), event(2)]
    chunks = [pair, pair[::-1]]
    refused: list[str | None] = []  # the sqlstate of each COPY that failed
    real_copy = pgcopy._copy

    def copy(cursor: Any, sql: str, rows: Any) -> None:
        try:
            real_copy(cursor, sql, rows)
        except Exception as exc:
            refused.append(getattr(exc, "sqlstate", None))
            raise

    monkeypatch.setattr(pgcopy, "_copy", copy)
    try:
        with ThreadPoolExecutor(2) as pool:
            done = [
                pool.submit(store.insert_many, chunk, (), encoded(chunk))
                for store, chunk in zip(stores, chunks, strict=True)
            ]
            results = [future.result() for future in done]
        assert sorted(results) == [(0, []), (2, [])]
        assert count(stores[0]) == 2
        assert refused == ["23505"]  # the second straight COPY: the first's ids stored
    finally:
        with stores[0].engine.begin() as conn:
            conn.exec_driver_sql("DROP FUNCTION meet() CASCADE")
        for store in stores:
            store.engine.dispose()
        drop_tables(url)
