"""The event tables. Public: query them with SQLAlchemy, or through ``tracking.events()``.

``tracking_events`` holds one row per stored event: the envelope of an edX tracking-log
event in typed columns, the payload and the context as JSON, and ingest metadata.
``tracking_failed_events`` keeps, raw, every event that could not be stored, and why.

Text columns are unbounded on purpose: real pages, agents and event types are long.
Times are stored as naive UTC with microseconds.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from .event import CONTEXT_COLUMNS, FIELDS

#: Integer primary keys: BIGINT on PostgreSQL, the rowid alias on SQLite.
BigId = BigInteger().with_variant(Integer(), "sqlite")

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class Base(DeclarativeBase):
    """Declarative base of the tracking tables (their own metadata; with Flask-SQLAlchemy,
    ``Tracking(app, db=db)`` also copies them into ``db.metadata``: see ``sqla.py``)."""

    metadata = metadata


#: Column types by the kind of value an event key holds (``event.Stored.kind``).
_COLUMN_TYPES: dict[str, Any] = {
    "id": String(36),
    "text": Text(),
    "code": String(16),
    "time": DateTime(),
    "json": JSON(none_as_null=True),
    "int": BigInteger(),
}


def _event_columns() -> list[Column[Any]]:
    columns: list[Column[Any]] = [Column("id", BigId, primary_key=True, autoincrement=True)]
    for f in FIELDS:
        columns.append(Column(f.name, _COLUMN_TYPES[f.kind], nullable=f.nullable))
    columns.extend(Column(name, Text(), nullable=True) for name in CONTEXT_COLUMNS)
    return columns


def _event_constraints() -> list[UniqueConstraint | Index]:
    # Table-level, not ``Column(unique=True)``: its name is then fixed by our naming
    # convention, and kept when the table is copied into an app's metadata (``sqla.py``).
    unique = [UniqueConstraint(f.name) for f in FIELDS if f.kind == "id"]
    indexed = [f.name for f in FIELDS if f.indexed]
    indexed += [name for name, flag in CONTEXT_COLUMNS.items() if flag]
    return [*unique, Index(None, "time"), *(Index(None, name, "time") for name in indexed)]


#: ``tracking_events``: one row per stored event, its columns derived from ``event.Event``.
events_table = Table("tracking_events", metadata, *_event_columns(), *_event_constraints())


class TrackingEvent(Base):
    """One stored event, with the envelope of an edX tracking-log line.

    The columns come from :class:`flask_tracking.event.Event` (plus ``id`` and the
    context columns ``course_id``, ``org_id``, ``user_id``); the annotations below are
    for type checkers only.
    """

    __table__ = events_table

    id: Mapped[int]
    event_id: Mapped[str]
    name: Mapped[str | None]
    event_type: Mapped[str]
    event_source: Mapped[str]
    time: Mapped[datetime]
    username: Mapped[str | None]
    session: Mapped[str | None]
    ip: Mapped[str | None]
    agent: Mapped[str | None]
    host: Mapped[str | None]
    referer: Mapped[str | None]
    accept_language: Mapped[str | None]
    page: Mapped[str | None]
    event: Mapped[Any]
    event_format: Mapped[str]
    event_raw: Mapped[str | None]
    context: Mapped[Any]
    schema_status: Mapped[str]
    received_at: Mapped[datetime]
    client_time: Mapped[datetime | None]
    clock_skew_ms: Mapped[int | None]
    seq: Mapped[int | None]
    original: Mapped[Any]
    course_id: Mapped[str | None]
    org_id: Mapped[str | None]
    user_id: Mapped[str | None]

    def __repr__(self) -> str:
        return f"<TrackingEvent {self.event_type!r} {self.event_source} {self.time}>"


class FailedEvent(Base):
    """An event that could not be stored, kept raw with the reasons."""

    __tablename__ = "tracking_failed_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    failed_at: Mapped[datetime] = mapped_column(DateTime())
    #: Where it came from: "browser", "server", "import", ...
    origin: Mapped[str] = mapped_column(Text)
    event_id: Mapped[str | None] = mapped_column(Text)
    event_type: Mapped[str | None] = mapped_column(Text)
    #: The event as received: a request body part, a log line, or the event as JSON.
    raw: Mapped[str] = mapped_column(Text)
    #: Reasons keyed by field (marshmallow style) or under "_schema" / "_request".
    reasons: Mapped[Any] = mapped_column(JSON)
    #: Free-form location: a file name and line number, an endpoint.
    detail: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index(None, "failed_at"),)

    def __repr__(self) -> str:
        return f"<FailedEvent {self.origin} {self.event_type!r} {self.failed_at}>"


failed_table: Table = FailedEvent.__table__  # type: ignore[assignment]
