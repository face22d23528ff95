"""The outbox table: one row per (stored event, destination) that the event is routed to.

``tracking_deliveries`` is written in the transaction that stores the events, so an event
is never stored without its deliveries, nor a delivery kept for an event that was not
stored. A row is ``pending`` until its destination has the event (``delivered``) or gave
up on it (``failed``: a final refusal, or too many attempts; ``flask tracking forward
--failed`` re-drives it).

Columns that only the machinery reads: ``job_id`` (the job that is to deliver the row, or
``NULL`` while the producer gathers a batch), ``claim_token`` / ``claimed_until`` (a lease
taken by the job that is sending the row right now, so no other job sends it at the same
time) and ``next_attempt_at`` (the row is not due before then: backoff).

Times are naive UTC, like the rest of the tracking tables.
"""

from __future__ import annotations

from datetime import datetime
from typing import cast

from sqlalchemy import (
    BigInteger,
    DateTime,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from ..models import Base, BigId

PENDING = "pending"
DELIVERED = "delivered"
FAILED = "failed"
STATES = (PENDING, DELIVERED, FAILED)


class Delivery(Base):
    """The delivery of one stored event to one destination."""

    __tablename__ = "tracking_deliveries"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    #: ``tracking_events.id`` (no foreign key: deleting events is never blocked).
    event_pk: Mapped[int] = mapped_column(BigInteger)
    #: The name of the destination in ``TRACKING_DESTINATIONS``.
    destination: Mapped[str] = mapped_column(String(100))
    state: Mapped[str] = mapped_column(String(10))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime())
    updated_at: Mapped[datetime] = mapped_column(DateTime())
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime())
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime())
    job_id: Mapped[str | None] = mapped_column(String(120))
    claim_token: Mapped[str | None] = mapped_column(String(32))
    claimed_until: Mapped[datetime | None] = mapped_column(DateTime())

    __table_args__ = (
        UniqueConstraint("event_pk", "destination"),
        Index(None, "state", "destination"),
    )

    def __repr__(self) -> str:
        return f"<Delivery event={self.event_pk} to {self.destination!r} {self.state}>"


deliveries_table = cast(Table, Delivery.__table__)
