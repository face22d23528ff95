"""Events as database rows: the encoders the store feeds its inserts with.

Both are derived from :data:`flask_tracking.event.FIELDS`:

- :func:`sqlite_values` gives a ready tuple in :data:`SQLITE_COLUMNS` order, encoded as
  SQLAlchemy's SQLite types would (JSON by ``json.dumps``, times as naive UTC text), for
  the hand-built multi-row INSERT that is the SQLite hot path;
- :func:`pg_batch` gives a whole batch as one JSON text (rows as objects, JSON columns
  spliced in as ``limits.check`` encoded them, times as naive UTC text) for the one
  constant ``INSERT ... SELECT FROM json_to_recordset(...)`` that is the PostgreSQL hot
  path (:data:`PG_INSERT`).
"""

from __future__ import annotations

import functools
import json
import operator
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final, NamedTuple

from .event import CONTEXT_COLUMNS, FIELDS, TIME_KEYS

#: An event's JSON columns encoded (``None`` for NULL), in the order of ``FIELDS``.
Encoded = tuple[str | None, ...]

_PLAIN: Final = tuple(f.name for f in FIELDS if f.kind in ("id", "text", "code", "int"))
_JSON: Final = tuple(f.name for f in FIELDS if f.kind == "json")
#: The column order of :func:`sqlite_values`.
SQLITE_COLUMNS: Final[tuple[str, ...]] = (*_PLAIN, *TIME_KEYS, *_JSON, *CONTEXT_COLUMNS)
_plain_values = operator.itemgetter(*_PLAIN)
#: The columns of a row in the PostgreSQL batch (:func:`pg_batch`): the JSON columns last,
#: so their encoding is spliced in after the others.
PG_COLUMNS: Final[tuple[str, ...]] = (*_PLAIN, *TIME_KEYS, *CONTEXT_COLUMNS, *_JSON)
_KIND: Final = {f.name: f.kind for f in FIELDS}
#: The SQL type of each column on PostgreSQL, as ``json_to_recordset`` reads it.
_PG_TYPES: Final = {"id": "text", "text": "text", "code": "text", "time": "timestamp"}
_PG_TYPES.update({"json": "json", "int": "bigint"})
#: The PostgreSQL insert: one constant statement (prepared by psycopg after a few uses)
#: whatever the batch size, with one parameter, the batch as a JSON array of row objects
#: (parsed once by the server, not bound value by value by the driver); a duplicate id is
#: skipped and left out of ``RETURNING``, in the same round trip.
PG_INSERT: Final = (
    f"INSERT INTO tracking_events ({', '.join(PG_COLUMNS)})"
    f" SELECT {', '.join(PG_COLUMNS)} FROM json_to_recordset(%s::json) AS r("
    + ", ".join(f"{name} {_PG_TYPES[_KIND.get(name, 'text')]}" for name in PG_COLUMNS)
    + ") ON CONFLICT (event_id) DO NOTHING RETURNING event_id"
)
#: Columns that differ between the events of one batch (the others, ``_PG_COMMON``, are
#: mostly the same: :func:`pg_batch` encodes them once for a run of equal rows).
_PG_VARYING: Final = ("event_id", "clock_skew_ms", "seq")
_PG_COMMON: Final = tuple(name for name in (*_PLAIN, *CONTEXT_COLUMNS) if name not in _PG_VARYING)
_PG_OWN: Final = (*_PG_VARYING, *TIME_KEYS)
_PG_COMMON_AT: Final = len(_PG_VARYING)
_row_values = operator.itemgetter(*_PG_VARYING, *(n for n in _PLAIN if n not in _PG_VARYING))
#: ``, "key": `` before each JSON column's encoding.
_PG_JSON_KEYS: Final = tuple(f', "{name}": ' for name in _JSON)


class NewRow(NamedTuple):
    """An event stored by the current transaction, with its key (``tracking_events.id``):
    what the store's insert hooks get (forwarding routes it without reading it back)."""

    pk: int
    event: Mapping[str, Any]

    @property
    def course_id(self) -> str | None:
        """The event's ``course_id`` column, as stored."""
        return text_value((self.event["context"] or {}).get("course_id"))


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
    row objects; ``encoded`` as in :func:`sqlite_values` (``None``: encoded here), spliced
    in as it is, not encoded again (the ``json`` columns keep that very text).

    The events of a batch mostly share every column but their id, times and numbers (one
    request, one learner, one page): those shared columns are encoded once for a run of
    rows where they are equal, and spliced into each row."""
    dumps = json.dumps
    rows = []
    last: tuple[Any, ...] | None = None
    shared = ""
    for event, encoded in events:
        context = event["context"] or {}
        if encoded is None:
            encoded = [None if event[key] is None else dumps(event[key]) for key in _JSON]
        values = (
            *_row_values(event),
            *[text_value(context.get(name)) for name in CONTEXT_COLUMNS],
        )
        common = values[_PG_COMMON_AT:]
        if common != last:
            last, shared = common, dumps(dict(zip(_PG_COMMON, common, strict=True)))[1:-1]
        times = [sqlite_time(event[key]) for key in TIME_KEYS]
        own = dumps(dict(zip(_PG_OWN, (*values[:_PG_COMMON_AT], *times), strict=True)))
        tail = "".join(
            [f"{key}{text}" for key, text in zip(_PG_JSON_KEYS, encoded, strict=True) if text]
        )
        rows.append(f"{own[:-1]}, {shared}{tail}}}")
    return f"[{', '.join(rows)}]"
