"""The store's batch insert on both databases (PostgreSQL: one constant statement over
``json_to_recordset``, ``rows.PG_INSERT``): big batches, duplicates, the JSON text kept."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, text

from flask_tracking.engine import make_engine
from flask_tracking.event import Event, new_event
from flask_tracking.limits import check
from flask_tracking.models import events_table, failed_table
from flask_tracking.partitions import partitioned_insert
from flask_tracking.rows import PG_INSERT
from flask_tracking.store import (
    PG_ROWS_PER_STATEMENT,
    SQLITE_ROWS_PER_STATEMENT,
    SqlStore,
    returning,
)

from support import partition_config

NOW = datetime(2024, 2, 1, 9, 0, tzinfo=UTC)


def make_store(url: str) -> SqlStore:
    """A store on ``url``, partitioned as the tables are (TRACKING_TEST_PARTITION)."""
    return SqlStore(make_engine(url, timeout=5), partition_config(url).get("TRACKING_PARTITION"))


def event(n: int, **values: Any) -> Event:
    base: dict[str, Any] = {
        "event_id": str(uuid.uuid4()),
        "event_type": "play_video",
        "event_source": "browser",
        "time": NOW + timedelta(seconds=n),
        "received_at": NOW,
        "event": {"id": f"v{n}", "currentTime": n + 0.5},
        "event_format": "object",
        "schema_status": "valid",
        "context": {"course_id": "course-v1:X+Y+Z", "user_id": 7, "org_id": ""},
        "seq": n,
        "clock_skew_ms": -(2**40),
    }
    base.update(values)
    return new_event(**base)


def encoded(events: list[Event]) -> list[Any]:
    out = []
    for item in events:
        problems, enc = check(item, 32 * 1024)
        assert not problems
        out.append(enc)
    return out


def test_a_big_batch_with_duplicates_is_stored_once(database_url: str) -> None:
    store = make_store(database_url)
    try:
        size = max(PG_ROWS_PER_STATEMENT, SQLITE_ROWS_PER_STATEMENT) * 2 + 7
        events = [event(n) for n in range(size)]
        first = store.write(events[:10], (), encoded(events[:10]))
        assert first.stored == [e["event_id"] for e in events[:10]]
        batch = events + events[3:5]  # stored before, and twice in this batch
        result = store.write(batch, (), encoded(batch))
        assert sorted(result.stored) == sorted(e["event_id"] for e in events[10:])
        assert len(result.duplicates) == 12 and not result.rejected
        assert store.count() == size
        with store.engine.connect() as conn:
            row = conn.execute(
                select(events_table).where(events_table.c.event_id == events[-1]["event_id"])
            ).one()
        assert row.seq == size - 1 and row.clock_skew_ms == -(2**40)
        assert row.time == (NOW + timedelta(seconds=size - 1)).replace(tzinfo=None)
        assert row.course_id == "course-v1:X+Y+Z" and row.user_id == "7" and row.org_id is None
        assert row.client_time is None and row.original is None and row.name is None
    finally:
        store.engine.dispose()


def test_json_columns_keep_the_encoded_text(database_url: str) -> None:
    store = make_store(database_url)
    try:
        payload = {"z": 1, "a": 'é ☃ 𝄞 "quoted" \\ back', "n": None, "l": [1.5, True]}
        item = event(1, event=payload, event_raw='{"z":1}', page="https://x/é")
        enc = encoded([item])
        assert store.write([item], (), enc).stored == [item["event_id"]]
        with store.engine.connect() as conn:
            row = conn.execute(select(events_table)).one()
            stored_text = conn.execute(text("SELECT CAST(event AS TEXT) FROM tracking_events"))
            raw = stored_text.scalar_one()
        assert row.event == payload and row.event_raw == '{"z":1}' and row.page == "https://x/é"
        assert list(row.event) == ["z", "a", "n", "l"]  # the key order kept
        assert raw == enc[0][0] == json.dumps(payload, ensure_ascii=False)
    finally:
        store.engine.dispose()


def test_failed_rows_and_events_in_one_transaction(database_url: str) -> None:
    store = make_store(database_url)
    try:
        items = [event(n) for n in range(3)]
        failure = {"origin": "browser", "raw": "{}", "reasons": {"_schema": ["x"]}}
        result = store.write(items, [failure], encoded(items))
        assert len(result.stored) == 3
        with store.engine.connect() as conn:
            assert conn.execute(select(failed_table.c.origin)).scalars().all() == ["browser"]
        assert store.count() == 3
    finally:
        store.engine.dispose()


def test_a_plain_batch_leaves_its_pooled_connection_transactional(database_url: str) -> None:
    """The plain batch goes to the driver directly (``rawwrite``; autocommit on
    PostgreSQL); the connection it gives back to the pool runs transactions again."""
    store = make_store(database_url)
    try:
        items = [event(n) for n in range(3)]
        assert len(store.write(items, (), encoded(items)).stored) == 3
        again = store.write([*items[:2], event(9)], (), None)  # two stored before
        assert len(again.stored) == 1 and again.duplicates == [e["event_id"] for e in items[:2]]
        try:
            with store.engine.begin() as conn:
                conn.execute(events_table.delete())
                raise RuntimeError("roll back")
        except RuntimeError:
            pass
        assert store.count() == 4
    finally:
        store.engine.dispose()


def test_the_insert_naming_the_keys_is_the_insert_with_its_returning_list_changed() -> None:
    """The store's insert that returns each new row's key too is the very text of the
    plain or partitioned insert with ``, id`` after ``RETURNING event_id``; a statement
    that does not end in ``RETURNING event_id`` is refused, not made into broken SQL."""
    for insert in (PG_INSERT, partitioned_insert(PG_INSERT)):
        assert returning(insert, "event_id", "id") == f"{insert}, id"
        assert returning(insert, "event_id") == insert
    for changed in (
        PG_INSERT.replace("RETURNING event_id", "RETURNING event_id, time"),
        PG_INSERT.removesuffix(" RETURNING event_id"),
        f"{PG_INSERT};",
    ):
        with pytest.raises(RuntimeError, match="no longer ends in"):
            returning(changed, "event_id", "id")
