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
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

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
    """Declarative base of the tracking tables (its own metadata, apart from the app's)."""

    metadata = metadata


class TrackingEvent(Base):
    """One stored event, with the envelope of an edX tracking-log line."""

    __tablename__ = "tracking_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(36), unique=True)
    name: Mapped[str | None] = mapped_column(Text)
    event_type: Mapped[str] = mapped_column(Text)
    event_source: Mapped[str] = mapped_column(Text)
    time: Mapped[datetime] = mapped_column(DateTime())
    username: Mapped[str | None] = mapped_column(Text)
    session: Mapped[str | None] = mapped_column(Text)
    ip: Mapped[str | None] = mapped_column(Text)
    agent: Mapped[str | None] = mapped_column(Text)
    host: Mapped[str | None] = mapped_column(Text)
    referer: Mapped[str | None] = mapped_column(Text)
    accept_language: Mapped[str | None] = mapped_column(Text)
    page: Mapped[str | None] = mapped_column(Text)
    course_id: Mapped[str | None] = mapped_column(Text)
    org_id: Mapped[str | None] = mapped_column(Text)
    user_id: Mapped[str | None] = mapped_column(Text)
    #: The decoded payload; ``event_format`` says the form it came in and ``event_raw``
    #: keeps the original string when re-encoding would not reproduce it.
    event: Mapped[Any] = mapped_column(JSON(none_as_null=True), nullable=True)
    event_format: Mapped[str] = mapped_column(String(8))
    event_raw: Mapped[str | None] = mapped_column(Text)
    context: Mapped[Any] = mapped_column(JSON(none_as_null=True), nullable=True)
    #: "valid" (checked by a schema) or "unvalidated" (a type we have no schema for).
    schema_status: Mapped[str] = mapped_column(String(12))
    received_at: Mapped[datetime] = mapped_column(DateTime())
    client_time: Mapped[datetime | None] = mapped_column(DateTime())
    clock_skew_ms: Mapped[int | None] = mapped_column(BigInteger())
    seq: Mapped[int | None] = mapped_column(BigInteger())
    #: For imported lines: the original key order and the values our columns cannot
    #: reproduce exactly (extra keys, a time without timezone, ...), so export gives
    #: back the line as it came.
    original: Mapped[Any] = mapped_column(JSON(none_as_null=True), nullable=True)

    __table_args__ = (
        Index(None, "time"),
        Index(None, "event_type", "time"),
        Index(None, "course_id", "time"),
        Index(None, "username", "time"),
    )

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


events_table: Table = TrackingEvent.__table__  # type: ignore[assignment]
failed_table: Table = FailedEvent.__table__  # type: ignore[assignment]
