"""The delivery rows of newly stored events: one constant statement, whatever the count.

The outbox writes them inside the storing transaction, once per stored batch, so their
cost is on the ingest path. SQLAlchemy's multi-row ``INSERT ... ON CONFLICT`` would bind
12 values a row (a batch of 20 to one destination: 240 parameters, a statement text that
psycopg parses again every time, being over its cache's 50 parameters). Instead:

- **PostgreSQL**: one ``INSERT ... SELECT FROM unnest(keys, destinations, job ids)``,
  three array parameters and the time; the text never changes, so psycopg prepares it.
- **SQLite**: an ``executemany`` of the one-row ``INSERT``, times as SQLAlchemy's SQLite
  ``DateTime`` stores them (``rows.sqlite_time``).

Either way a row that is there already (a key of an event pruned, then used again by
SQLite) is reset to a new pending row, as the SQLAlchemy upsert did.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Final

from sqlalchemy import Connection

from ..rows import sqlite_time
from .models import PENDING

#: The columns a new row resets when ``(event_pk, destination)`` is there already.
_RESET: Final = (
    "state",
    "attempts",
    "last_error",
    "created_at",
    "updated_at",
    "delivered_at",
    "next_attempt_at",
    "job_id",
    "claim_token",
    "claimed_until",
)
_COLUMNS: Final = ("event_pk", "destination", *_RESET)
_ON_CONFLICT: Final = " ON CONFLICT (event_pk, destination) DO UPDATE SET " + ", ".join(
    f"{name} = excluded.{name}" for name in _RESET
)
#: ``(key, destination, job id)`` of each row; the state, counts and times are the same.
NewDelivery = tuple[int, str, "str | None"]

PG_INSERT: Final = (
    f"INSERT INTO tracking_deliveries ({', '.join(_COLUMNS)})"
    " SELECT r.pk, r.destination, %(state)s, 0, NULL, %(now)s, %(now)s, NULL, %(now)s,"
    " r.job_id, NULL, NULL"
    " FROM unnest(%(pks)s::bigint[], %(destinations)s::text[], %(job_ids)s::text[])"
    " AS r(pk, destination, job_id)" + _ON_CONFLICT
)
SQLITE_INSERT: Final = (
    f"INSERT INTO tracking_deliveries ({', '.join(_COLUMNS)})"
    " VALUES (?, ?, ?, 0, NULL, ?, ?, NULL, ?, ?, NULL, NULL)" + _ON_CONFLICT
)


def write_new(
    conn: Connection, rows: Sequence[NewDelivery], now: datetime, *, postgresql: bool
) -> None:
    """Write pending delivery rows (``now``: naive UTC) in ``conn``'s transaction."""
    if not rows:
        return
    if postgresql:
        pks, destinations, job_ids = (list(column) for column in zip(*rows, strict=True))
        parameters = {
            "state": PENDING,
            "now": now,
            "pks": pks,
            "destinations": destinations,
            "job_ids": job_ids,
        }
        conn.exec_driver_sql(PG_INSERT, parameters)
        return
    when = sqlite_time(now)
    conn.exec_driver_sql(
        SQLITE_INSERT, [(pk, name, PENDING, when, when, when, job) for pk, name, job in rows]
    )
