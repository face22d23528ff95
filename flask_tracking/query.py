"""``tracking.events(...)``: a SQLAlchemy select over the stored events."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from sqlalchemy import Select, select

from .models import TrackingEvent


def _naive(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value


def _one_or_many(value: str | Iterable[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def events_query(
    event_type: str | Iterable[str] | None = None,
    *,
    source: str | Iterable[str] | None = None,
    course_id: str | None = None,
    username: str | None = None,
    user_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Select[TrackingEvent]:
    """Select events by type(s), source(s), course, user and time range ``[since, until)``.

    Times may be aware (converted to UTC) or naive UTC. The select is unordered: add
    ``.order_by(TrackingEvent.time)``, ``.where(...)``, ``.with_only_columns(...)`` or
    ``.group_by(...)`` to answer any question.
    """
    query = select(TrackingEvent)
    if event_type is not None:
        query = query.where(TrackingEvent.event_type.in_(_one_or_many(event_type)))
    if source is not None:
        query = query.where(TrackingEvent.event_source.in_(_one_or_many(source)))
    if course_id is not None:
        query = query.where(TrackingEvent.course_id == course_id)
    if username is not None:
        query = query.where(TrackingEvent.username == username)
    if user_id is not None:
        query = query.where(TrackingEvent.user_id == user_id)
    if since is not None:
        query = query.where(TrackingEvent.time >= _naive(since))
    if until is not None:
        query = query.where(TrackingEvent.time < _naive(until))
    return query
