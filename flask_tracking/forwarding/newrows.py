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

The column list, the conflict key and the types of the arrays come from
``deliveries_table``; what a new row holds is said once per column (:data:`FROM_ROW`,
:data:`FROM_PARAMETER`, :data:`CONSTANT`), and a column of the table that none of them
names (or a name that is no column) stops the import: a column added to the model
cannot leave these statements behind.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from datetime import datetime
from typing import Final

from sqlalchemy import Connection, Integer, String, Table, UniqueConstraint

from ..rows import sqlite_time
from .models import PENDING, deliveries_table

#: ``(key, destination, job id)`` of each row; the state, counts and times are the same.
NewDelivery = tuple[int, str, "str | None"]
#: The columns whose value is each row's own, in the order of :data:`NewDelivery`.
FROM_ROW: Final = ("event_pk", "destination", "job_id")
#: The columns whose value is one parameter of the statement: ``state`` or ``now``.
FROM_PARAMETER: Final = {
    "state": "state",
    "created_at": "now",
    "updated_at": "now",
    "next_attempt_at": "now",
}
#: The columns every new row has the same SQL literal in.
CONSTANT: Final = {
    "attempts": "0",
    "last_error": "NULL",
    "delivered_at": "NULL",
    "claim_token": "NULL",
    "claimed_until": "NULL",
}
_PARAMETERS: Final = ("state", "now")


def _pg_array_type(table: Table, name: str) -> str:
    """The element type of the ``unnest`` array of column ``name``: ``bigint`` or
    ``text`` (not ``varchar(n)``, whose cast would cut a longer value silently)."""
    kind = table.c[name].type
    if isinstance(kind, Integer):
        return "bigint"
    if isinstance(kind, String):
        return "text"
    raise RuntimeError(f"newrows: no unnest array type for {table.name}.{name} ({kind})")


def statements(table: Table) -> tuple[str, str, tuple[int, ...]]:
    """``(PostgreSQL statement, SQLite statement, SQLite slots)`` for ``table``: every
    column but the generated key, in the table's order; the SQLite slots are, per ``?``,
    its index in ``(*row, state, now)``. Raises ``RuntimeError`` when the columns of the
    table and those this module gives a value differ."""
    columns = tuple(c.name for c in table.columns if not c.primary_key)
    given = (*FROM_ROW, *FROM_PARAMETER, *CONSTANT)
    if len(set(given)) != len(given) or set(given) != set(columns):
        missing = sorted(set(columns) - set(given))
        unknown = sorted(set(given) - set(columns))
        raise RuntimeError(
            f"newrows: the columns of {table.name} changed (no value for {missing},"
            f" a value for no column {unknown}, or one given twice): update newrows.py"
        )
    (key,) = (
        tuple(c.name for c in u.columns)
        for u in table.constraints
        if isinstance(u, UniqueConstraint)
    )
    reset = ", ".join(f"{name} = excluded.{name}" for name in columns if name not in key)
    head = f"INSERT INTO {table.name} ({', '.join(columns)})"
    tail = f" ON CONFLICT ({', '.join(key)}) DO UPDATE SET {reset}"
    sources = (*FROM_ROW, *_PARAMETERS)

    def pg_value(name: str) -> str:
        if name in FROM_ROW:
            return f"r.{name}"
        if name in FROM_PARAMETER:
            return f"%({FROM_PARAMETER[name]})s"
        return CONSTANT[name]

    arrays = ", ".join(f"%({n})s::{_pg_array_type(table, n)}[]" for n in FROM_ROW)
    pg = (
        f"{head} SELECT {', '.join(pg_value(name) for name in columns)}"
        f" FROM unnest({arrays}) AS r({', '.join(FROM_ROW)}){tail}"
    )
    slots = tuple(
        sources.index(FROM_PARAMETER.get(name, name)) for name in columns if name not in CONSTANT
    )
    values = ", ".join(CONSTANT.get(name, "?") for name in columns)
    return pg, f"{head} VALUES ({values}){tail}", slots


PG_INSERT, SQLITE_INSERT, _SQLITE_SLOTS = statements(deliveries_table)
_sqlite_row = operator.itemgetter(*_SQLITE_SLOTS)


def write_new(
    conn: Connection, rows: Sequence[NewDelivery], now: datetime, *, postgresql: bool
) -> None:
    """Write pending delivery rows (``now``: naive UTC) in ``conn``'s transaction."""
    if not rows:
        return
    if postgresql:
        arrays = (list(column) for column in zip(*rows, strict=True))
        parameters: dict[str, object] = dict(zip(FROM_ROW, arrays, strict=True))
        parameters.update(state=PENDING, now=now)
        conn.exec_driver_sql(PG_INSERT, parameters)
        return
    when = sqlite_time(now)
    conn.exec_driver_sql(SQLITE_INSERT, [_sqlite_row((*row, PENDING, when)) for row in rows])
