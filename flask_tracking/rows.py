"""Events as database rows: the encoders the store feeds its inserts with.

Both are derived from :data:`flask_tracking.event.FIELDS`:

- :func:`event_row` gives a column dict (naive UTC times, context columns filled), which
  SQLAlchemy encodes (PostgreSQL);
- :func:`sqlite_values` gives a ready tuple in :data:`SQLITE_COLUMNS` order, encoded as
  SQLAlchemy's SQLite types would (JSON by ``json.dumps``, times as naive UTC text), for
  the hand-built multi-row INSERT that is the SQLite hot path.
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


def event_row(event: Mapping[str, Any]) -> dict[str, Any]:
    """The column values of an event."""
    row = {f.name: event.get(f.name) for f in FIELDS}
    for key in TIME_KEYS:
        row[key] = naive_utc(row[key])
    context = event.get("context") or {}
    for name in CONTEXT_COLUMNS:
        row[name] = text_value(context.get(name))
    return row


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
