"""What the reports share: the window and course filter, day buckets in a time zone,
the learner's identity, payload fields.

Filtering (course, time range, event types) is SQL over the indexes ``(event_type,
time)``, ``(course_id, time)`` and ``(time)``. Local days are computed in SQL as whole
days since 1970 of the time shifted by the zone's UTC offset: Python finds the offset
changes (zoneinfo) between the window's first and last event, and the SQL is a ``CASE``
over those instants, written one way per dialect (``strftime('%s')`` on SQLite,
``extract(epoch)`` on PostgreSQL), so both answer the same.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    BigInteger,
    Connection,
    Engine,
    Integer,
    Select,
    case,
    cast,
    extract,
    func,
    literal,
    select,
)
from sqlalchemy.sql.elements import ColumnElement

from ..engine import statement_timeout
from ..models import events_table
from ..timespec import zone

#: Rows: what every report returns (``pandas.DataFrame(rows)`` works).
Rows = list[dict[str, Any]]
EVENTS = events_table.c
QUARTER = 900  # seconds


def naive(value: datetime | None) -> datetime | None:
    """Stored times are naive UTC."""
    if value is None:
        return None
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value


def where(
    course_id: str | None,
    since: datetime | None,
    until: datetime | None,
    types: Iterable[str] | None = None,
    source: str | None = None,
) -> list[ColumnElement[bool]]:
    """The SQL filter of a report: event types, source, course and ``[since, until)``."""
    clauses: list[ColumnElement[bool]] = []
    if types is not None:
        clauses.append(EVENTS.event_type.in_(sorted(set(types))))
    if source is not None:
        clauses.append(EVENTS.event_source == source)
    if course_id is not None:
        clauses.append(EVENTS.course_id == course_id)
    if since is not None:
        clauses.append(EVENTS.time >= naive(since))
    if until is not None:
        clauses.append(EVENTS.time < naive(until))
    return clauses


def epoch_seconds(column: Any, dialect: str) -> ColumnElement[int]:
    """Whole seconds since 1970 of a stored naive-UTC time."""
    if dialect == "sqlite":
        return cast(func.strftime("%s", column), Integer)
    return cast(func.floor(extract("epoch", column)), BigInteger)


def offset_changes(tz: ZoneInfo, first: datetime, last: datetime) -> list[tuple[datetime, int]]:
    """``[(from naive UTC, offset seconds), ...]``: the zone's offsets over [first, last]."""

    def offset(moment: datetime) -> int:
        delta = moment.replace(tzinfo=UTC).astimezone(tz).utcoffset()
        return int(delta.total_seconds()) if delta is not None else 0

    out = [(first, offset(first))]
    day = first
    while day < last:
        step = min(day + timedelta(days=1), last)
        if offset(step) != out[-1][1]:
            low, high = day, step  # the change is in (low, high]: bisect to the second
            while high - low > timedelta(seconds=1):
                middle = low + (high - low) / 2
                low, high = (middle, high) if offset(middle) == out[-1][1] else (low, middle)
            out.append((high.replace(microsecond=0), offset(high)))
        day = step
    return out


def local_day(
    bind: Engine | Connection, clauses: list[ColumnElement[bool]], tz: str
) -> ColumnElement[int]:
    """A SQL expression: the local day (days since 1970-01-01 in ``tz``) of ``time``,
    exact for the events matching ``clauses`` (their first and last time are read first,
    from the ``time`` index)."""
    query = select(func.min(EVENTS.time), func.max(EVENTS.time)).where(*clauses)
    if isinstance(bind, Engine):
        with bind.connect() as conn:
            first, last = conn.execute(query).one()
    else:
        first, last = bind.execute(query).one()
    seconds = epoch_seconds(EVENTS.time, bind.dialect.name)
    if first is None:
        return literal(0)
    changes = offset_changes(zone(tz), first, last)
    if len(changes) == 1:
        shift: Any = literal(changes[0][1])
    else:
        whens = [
            (EVENTS.time < start, literal(off))
            for (start, _), (_, off) in zip(changes[1:], changes, strict=False)
        ]
        shift = case(*whens, else_=literal(changes[-1][1]))
    return ((seconds + shift) // 86400).label("day")


def day_of_number(number: int) -> date:
    """The date of a day number of :func:`local_day`."""
    return date(1970, 1, 1) + timedelta(days=int(number))


class Days:
    """Local days (and ISO weeks, starting Monday) of UTC times in one zone, cached."""

    def __init__(self, tz: str) -> None:
        self.zone = zone(tz)
        self._cache: dict[int, date] = {}

    def of_quarter(self, quarter: int) -> date:
        day = self._cache.get(quarter)
        if day is None:
            moment = datetime.fromtimestamp(int(quarter) * QUARTER, UTC)
            day = self._cache[quarter] = moment.astimezone(self.zone).date()
        return day

    def of_time(self, value: datetime) -> date:
        """The local day of a stored naive-UTC time."""
        seconds = int(value.replace(tzinfo=UTC).timestamp())
        return self.of_quarter(seconds // QUARTER)


def week_of(day: date) -> date:
    """The Monday starting ``day``'s ISO week."""
    return day - timedelta(days=day.weekday())


def learner(user_id: Any, username: Any) -> str | None:
    """The stored identity of a learner: ``user_id``, else ``username`` (as stored, so
    anonymised data counts the same); ``None`` for neither (or empty strings)."""
    if user_id not in (None, ""):
        return str(user_id)
    if username not in (None, ""):
        return str(username)
    return None


def fetch(
    bind: Engine | Connection, query: Select[Any], *, batch: int = 5000
) -> Iterator[Sequence[Any]]:
    """Stream the rows of ``query``, not bound by ``TRACKING_DB_TIMEOUT``."""
    if isinstance(bind, Engine):
        with bind.connect() as conn, statement_timeout(conn, None):
            yield from conn.execution_options(yield_per=batch).execute(query)
    else:
        yield from bind.execution_options(yield_per=batch).execute(query)


def json_text(name: str) -> ColumnElement[Any]:
    """A payload field read in SQL (``json_extract`` on SQLite, ``->>`` on PostgreSQL):
    its text, or its number on SQLite; ``None`` if absent or the payload is no object.
    Read it with :func:`number` or ``str``, which give the same on both databases."""
    return EVENTS.event[name].as_string().label(name)


def field(payload: Any, *names: str) -> Any:
    """The first of ``names`` present (not ``None``) in a dict payload, else ``None``."""
    if not isinstance(payload, dict):
        return None
    for name in names:
        value = payload.get(name)
        if value is not None:
            return value
    return None


def number(value: Any) -> float | None:
    """A finite number from a payload value (numbers as strings too), else ``None``."""
    if isinstance(value, bool):
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if out == out and abs(out) != float("inf") else None


def integer(value: Any) -> int | None:
    out = number(value)
    return int(out) if out is not None and out == int(out) else None
