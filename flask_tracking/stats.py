"""What is stored, counted: ``flask tracking stats`` is a thin wrapper over :func:`collect`.

Events by source, by type, by day and by ``schema_status``, with the types stored
``unvalidated`` (no schema knew them); failed events by reason; the deliveries that are
pending or failed per destination now. Events and failed events are counted in the time
window ``[since, until)`` (by ``time`` and ``failed_at``); deliveries are their state now.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Engine, func, select

from .engine import statement_timeout
from .forwarding.models import FAILED, PENDING, deliveries_table
from .models import events_table, failed_table

#: ``schema_status`` of an event whose type no schema knew.
UNVALIDATED = "unvalidated"
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")
_NUMBER = re.compile(r"\d+")


@dataclass(slots=True)
class Stats:
    """Counts of the stored events, failed events and deliveries (see the module doc)."""

    since: datetime | None
    until: datetime | None
    events: int = 0
    by_source: dict[str, int] = field(default_factory=dict)
    by_type: dict[str, int] = field(default_factory=dict)
    by_day: dict[str, int] = field(default_factory=dict)
    by_schema_status: dict[str, int] = field(default_factory=dict)
    unknown_types: dict[str, int] = field(default_factory=dict)
    failed: int = 0
    failed_by_reason: dict[str, int] = field(default_factory=dict)
    #: ``{destination: {"pending": n, "failed": n}}``, now (not windowed).
    deliveries: dict[str, dict[str, int]] = field(default_factory=dict)


def collect(engine: Engine, since: datetime | None = None, until: datetime | None = None) -> Stats:
    """Count what ``engine``'s tracking tables hold in ``[since, until)``; one read-only
    transaction, not bound by ``TRACKING_DB_TIMEOUT`` (it reads whole tables)."""
    stats = Stats(since, until)
    events = events_table.c
    window = _window(events.time, since, until)
    with engine.connect() as conn, statement_timeout(conn, None):

        def grouped(column: Any, *where: ColumnElement[bool]) -> dict[str, int]:
            query = select(column, func.count()).where(*window, *where).group_by(column)
            counted = [(str(key), int(n)) for key, n in conn.execute(query)]
            return dict(sorted(counted, key=lambda item: (-item[1], item[0])))

        stats.by_source = grouped(events.event_source)
        stats.by_type = grouped(events.event_type)
        stats.by_schema_status = grouped(events.schema_status)
        stats.unknown_types = grouped(events.event_type, events.schema_status == UNVALIDATED)
        day = func.date(events.time)
        stats.by_day = {
            str(key): int(n)
            for key, n in conn.execute(
                select(day, func.count()).where(*window).group_by(day).order_by(day)
            )
        }
        stats.events = sum(stats.by_source.values())

        failed = failed_table.c
        reasons: Counter[str] = Counter()
        query = select(failed.reasons).where(*_window(failed.failed_at, since, until))
        for (value,) in conn.execution_options(yield_per=2000).execute(query):
            stats.failed += 1
            reasons.update(set(reason_labels(value)))
        stats.failed_by_reason = dict(sorted(reasons.items(), key=lambda i: (-i[1], i[0])))

        d = deliveries_table.c
        query = (
            select(d.destination, d.state, func.count())
            .where(d.state.in_((PENDING, FAILED)))
            .group_by(d.destination, d.state)
            .order_by(d.destination)
        )
        for destination, state, n in conn.execute(query):
            counts = stats.deliveries.setdefault(str(destination), {PENDING: 0, FAILED: 0})
            counts[str(state)] = int(n)
    return stats


def reason_labels(reasons: Any) -> Iterator[str]:
    """One short label per reason of a failed row: ``field: message``, with quoted values
    and numbers blanked so that the same mistake counts as one (``'x'`` → ``'…'``,
    ``40000`` → ``N``)."""
    for path, message in _leaves(reasons, ""):
        text = _NUMBER.sub("N", _QUOTED.sub("'…'", message.strip()))
        if len(text) > 80:
            text = text[:79] + "…"
        yield f"{path}: {text}" if path else text


def _leaves(value: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, Mapping):
        for key, inner in value.items():
            if key == "_truncated":
                continue
            name = "" if key == "_schema" else str(key)
            yield from _leaves(inner, f"{path}.{name}" if path and name else path or name)
    elif isinstance(value, list | tuple):
        if value and all(isinstance(item, str) for item in value):
            yield path, value[0]
        else:
            for item in value:
                yield from _leaves(item, path)
    elif value is not None:
        yield path, str(value)


def _window(column: Any, since: datetime | None, until: datetime | None) -> list[Any]:
    where = []
    if since is not None:
        where.append(column >= _naive(since))
    if until is not None:
        where.append(column < _naive(until))
    return where


def _naive(value: datetime) -> datetime:
    """Stored times are naive UTC."""
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value
