"""Claimed rows into outgoing events, one by one: read, render, strip, encode.

A stored event that cannot be read (its JSON does not decode), rendered as an edX line or
encoded by the destination (NaN, Infinity, a lone surrogate, nesting too deep) is set
aside with the reason; it never stops the other events of its batch.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Row, Text, cast
from sqlalchemy.sql.elements import ColumnElement

from ..logformat import LINE_COLUMNS, render_line
from .batches import idempotency_key
from .destinations import OutgoingEvent, Target, encode_failure
from .destinations.base import ENCODE_ERRORS
from .sql import E

#: Stored JSON columns read as text and decoded row by row (one that cannot be decoded
#: fails its own delivery, not its batch).
JSON_COLUMNS = frozenset({"context", "event", "original"})


def line_columns() -> list[ColumnElement[Any]]:
    """The ``tracking_events`` columns :func:`prepare` reads (JSON ones as text)."""
    return [
        cast(E.c[name], Text).label(name) if name in JSON_COLUMNS else E.c[name]
        for name in LINE_COLUMNS
    ]


def prepare(
    target: Target, rows: Sequence[Row[Any]]
) -> tuple[list[OutgoingEvent], list[Row[Any]], dict[int, str]]:
    """The events to send, their rows, and ``{delivery id: why}`` for the rows that fail.

    Each row has ``_delivery_id`` and the :func:`line_columns` (``event_id`` is ``None``
    when the event is gone).
    """
    destination = target.destination
    events: list[OutgoingEvent] = []
    sendable: list[Row[Any]] = []
    broken: dict[int, str] = {}
    for row in rows:
        if row.event_id is None:
            broken[row._delivery_id] = "The event is no longer stored."
            continue
        try:
            values = _decoded(row)
        except RecursionError:
            broken[row._delivery_id] = (
                "Cannot read the stored event: its JSON is nested too deeply."
            )
            continue
        except ValueError as exc:
            broken[row._delivery_id] = f"Cannot read the stored event: its JSON is invalid ({exc})."
            continue
        try:
            line = target.route.strip(render_line(values))
        except Exception as exc:  # stored data that cannot be rendered
            broken[row._delivery_id] = f"Cannot render the event: {type(exc).__name__}: {exc}"
            continue
        event = OutgoingEvent(row.event_id, idempotency_key(target.name, row.event_id), line)
        try:
            encoded = destination.encode(event)
        except ENCODE_ERRORS as exc:
            broken[row._delivery_id] = encode_failure(exc)
            continue
        events.append(OutgoingEvent(event.event_id, event.idempotency_key, line, encoded))
        sendable.append(row)
    return events, sendable, broken


def _decoded(row: Row[Any]) -> dict[str, Any]:
    values = dict(row._mapping)
    for name in JSON_COLUMNS:
        text = values[name]
        values[name] = None if text is None else json.loads(text)
    return values
