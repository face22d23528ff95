"""Events as database rows: the encoders the store feeds its inserts with.

Both are derived from :data:`flask_tracking.event.FIELDS`:

- :func:`sqlite_values` gives a ready tuple in :data:`SQLITE_COLUMNS` order, encoded as
  SQLAlchemy's SQLite types would (JSON by ``json.dumps``, times as naive UTC text), for
  the hand-built multi-row INSERT that is the SQLite hot path;
- :func:`pg_batch` gives a whole batch as one JSON text (rows as arrays, JSON columns
  spliced in as ``limits.check`` encoded them, times as naive UTC text) for the one
  constant ``INSERT ... SELECT FROM json_array_elements(...)`` that is the PostgreSQL hot
  path (:data:`PG_INSERT`).
"""

from __future__ import annotations

import functools
import json
import operator
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final

from .event import CONTEXT_COLUMNS, FIELDS, TIME_KEYS

#: An event's JSON columns encoded (``None`` for NULL), in the order of ``FIELDS``.
Encoded = tuple[str | None, ...]

_PLAIN: Final = tuple(f.name for f in FIELDS if f.kind in ("id", "text", "code", "int"))
_JSON: Final = tuple(f.name for f in FIELDS if f.kind == "json")
#: The column order of :func:`sqlite_values`.
SQLITE_COLUMNS: Final[tuple[str, ...]] = (*_PLAIN, *TIME_KEYS, *_JSON, *CONTEXT_COLUMNS)
_plain_values = operator.itemgetter(*_PLAIN)
#: The order of a row in the PostgreSQL batch (:func:`pg_batch`): the JSON columns last,
#: so their encoding is spliced in after the others.
PG_COLUMNS: Final[tuple[str, ...]] = (*_PLAIN, *TIME_KEYS, *CONTEXT_COLUMNS, *_JSON)
#: How the PostgreSQL insert reads each column from its row's JSON array (``r``): as
#: text, cast, or as the JSON value itself (a JSON null as SQL NULL).
_PG_READ: Final = {
    "time": "(r->>{i})::timestamp",
    "int": "(r->>{i})::bigint",
    "json": "CASE WHEN json_typeof(r->{i}) <> 'null' THEN r->{i} END",
}
_KIND: Final = {f.name: f.kind for f in FIELDS}
#: The PostgreSQL insert: one constant statement (prepared by psycopg after a few uses)
#: whatever the batch size, with one parameter, the batch as a JSON array of row arrays
#: (parsed by the server, not by the driver); a duplicate id is skipped and left out of
#: ``RETURNING``, in the same round trip.
PG_INSERT: Final = (
    f"INSERT INTO tracking_events ({', '.join(PG_COLUMNS)}) SELECT "
    + ", ".join(
        _PG_READ.get(_KIND.get(name, "text"), "r->>{i}").format(i=i)
        for i, name in enumerate(PG_COLUMNS)
    )
    + " FROM json_array_elements(%s::json) AS r"
    " ON CONFLICT (event_id) DO NOTHING RETURNING event_id"
)


def text_value(value: Any) -> str | None:
    """A context value as the text of its column (``None`` for missing or empty)."""
    if value is None or value == "":
        return None
    return value if isinstance(value, str) else str(value)


def naive_utc(value: datetime | None) -> datetime | None:
    """An aware datetime as naive UTC (how every time column stores it)."""
    if value is None or value.tzinfo is None:
        return value
    return value.astimezone(UTC).replace(tzinfo=None)


def sqlite_time(value: datetime | None) -> str | None:
    """A datetime as SQLAlchemy's SQLite DateTime stores it: naive UTC, microseconds."""
    if value is None:
        return None
    if value.tzinfo is UTC and type(value) is datetime:  # the usual case
        return _utc_time_text(value)
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.isoformat(" ", "microseconds")


@functools.lru_cache(maxsize=256)
def _utc_time_text(value: datetime) -> str:
    """``sqlite_time`` of a UTC datetime (the "+00:00" cut off); remembered, as every
    event of a batch has the same ``received_at``."""
    return value.isoformat(" ", "microseconds")[:-6]


def sqlite_values(
    event: Mapping[str, Any], encoded: Sequence[str | None] | None = None
) -> tuple[Any, ...]:
    """An event as SQLite parameters in :data:`SQLITE_COLUMNS` order; ``encoded``: its
    JSON columns already encoded (as ``limits.check`` gives them), in ``FIELDS`` order."""
    context = event["context"] or {}
    if encoded is None:
        dumps = json.dumps
        encoded = [None if event[key] is None else dumps(event[key]) for key in _JSON]
    return (
        *_plain_values(event),
        *[sqlite_time(event[key]) for key in TIME_KEYS],
        *encoded,
        *[text_value(context.get(name)) for name in CONTEXT_COLUMNS],
    )


def pg_batch(
    events: Sequence[tuple[Mapping[str, Any], Sequence[str | None] | None]],
) -> str:
    """The parameter of :data:`PG_INSERT`: ``(event, encoded)`` pairs as one JSON array of
    rows in :data:`PG_COLUMNS` order; ``encoded`` as in :func:`sqlite_values` (``None``:
    encoded here), spliced in as it is, not encoded again."""
    dumps = json.dumps
    rows = []
    for event, encoded in events:
        context = event["context"] or {}
        if encoded is None:
            encoded = [None if event[key] is None else dumps(event[key]) for key in _JSON]
        head = dumps(
            [
                *_plain_values(event),
                *[sqlite_time(event[key]) for key in TIME_KEYS],
                *[text_value(context.get(name)) for name in CONTEXT_COLUMNS],
            ]
        )
        tail = ", ".join(["null" if e is None else e for e in encoded])
        rows.append(f"{head[:-1]}, {tail}]")
    return f"[{', '.join(rows)}]"
