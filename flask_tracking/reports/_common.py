"""What the reports share: the window and course filter, day buckets in a time zone,
the learner's identity, payload fields.

Filtering (course, time range, event types) is SQL over the indexes ``(event_type,
time)``, ``(course_id, time)`` and ``(time)``. Day boundaries are taken in Python: SQL
groups by the UTC quarter hour (an integer, computed one way per dialect) and Python puts
each quarter hour in its local day. That is exact, because every time zone's offset and
transitions fall on quarter hours, and it makes SQLite and PostgreSQL answer the same.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import BigInteger, Connection, Engine, Integer, Select, cast, extract, func
from sqlalchemy.sql.elements import ColumnElement

from ..engine import statement_timeout
from ..models import events_table

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


def quarter_hour(column: Any, dialect: str) -> ColumnElement[int]:
    """Whole quarter hours since 1970 (UTC) of a stored naive-UTC time, as an integer."""
    if dialect == "sqlite":
        seconds = cast(func.strftime("%s", column), Integer)
        return (seconds // QUARTER).label("quarter")
    epoch = extract("epoch", column)
    return cast(func.floor(epoch / QUARTER), BigInteger).label("quarter")


@lru_cache(maxsize=64)
def zone(name: str) -> ZoneInfo:
    """The zone named ``name`` (``ValueError`` naming it if there is none)."""
    try:
        return ZoneInfo(name)
    except (KeyError, ValueError) as exc:
        raise ValueError(f"Unknown time zone {name!r} (an IANA name: UTC, Europe/Paris).") from exc


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


def dialect_of(bind: Engine | Connection) -> str:
    return bind.dialect.name


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


def sort_rows(rows: Rows, *keys: str) -> Rows:
    """Rows sorted by ``keys`` (``None`` first, then by value as text where mixed)."""
    return sorted(rows, key=lambda row: tuple((row[k] is not None, row[k]) for k in keys))
