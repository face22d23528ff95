"""The sweep and report side of the outbox: finding rows to hand out, re-drives, counts.

Plain SQL on ``tracking_deliveries`` (and a read of ``tracking_events``). The sweeper
(:mod:`.sweeper`) asks :meth:`Backlog.pending_jobs` which jobs hold pending rows, asks the
queue which of those jobs are alive, and gives the rest (:meth:`Backlog.orphans`) to new
jobs (:meth:`Backlog.reassign`). This is also how a delivery is tried again: a row whose
``next_attempt_at`` has come and whose job has finished is an orphan like any other.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Engine,
    Row,
    String,
    and_,
    func,
    or_,
    select,
    update,
)

from .models import FAILED, PENDING
from .sql import CHUNK, D, E, chunks, in_list, is_postgresql, still_pending, unclaimed, utcnow


class Backlog:
    """Queries over the whole outbox table of one engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._pg = is_postgresql(engine)

    def _in(self, column: Any, values: Sequence[Any], kind: Any = None) -> ColumnElement[bool]:
        return in_list(self._pg, column, values, kind)

    # -- sweeping ----------------------------------------------------------------------------

    def _orphan_filter(
        self, now: datetime, due_before: datetime | None
    ) -> list[ColumnElement[bool]]:
        conditions = [D.c.state == PENDING, unclaimed(now)]
        if due_before is not None:
            # A row never tried may still be on its way to the queue: due for a moment at
            # least. A row tried before (its job has settled it) is due at its time.
            conditions.append(
                or_(
                    D.c.next_attempt_at <= due_before,
                    and_(D.c.attempts > 0, D.c.next_attempt_at <= now),
                )
            )
        return conditions

    def pending_jobs(self, now: datetime, *, due_before: datetime | None) -> list[Row[Any]]:
        """``(job_id, destination, rows)`` of pending, unclaimed, due rows.

        ``due_before``: rows never tried must be due before it (rows tried before: due
        now); ``None`` takes every pending unclaimed row, due or not.
        """
        query = (
            select(D.c.job_id, D.c.destination, func.count())
            .where(*self._orphan_filter(now, due_before))
            .group_by(D.c.job_id, D.c.destination)
        )
        with self.engine.connect() as conn:
            return list(conn.execute(query))

    def orphans(
        self,
        now: datetime,
        *,
        dead_jobs: Sequence[str],
        jobless_before: datetime,
        destinations: Sequence[str],
        due_before: datetime | None,
        limit: int,
    ) -> list[Row[Any]]:
        """Rows (id order) of dead jobs, and rows without a job created before a time."""
        if not destinations:
            return []
        base = [*self._orphan_filter(now, due_before), D.c.destination.in_(list(destinations))]
        columns = (D.c.id, D.c.event_pk, D.c.destination)
        found: list[Row[Any]] = []
        with self.engine.connect() as conn:
            found += conn.execute(
                select(*columns)
                .where(*base, D.c.job_id.is_(None), D.c.created_at <= jobless_before)
                .order_by(D.c.id)
                .limit(limit)
            )
            for part in chunks(list(dead_jobs), 500):
                if len(found) >= limit:
                    break
                found += conn.execute(
                    select(*columns)
                    .where(*base, self._in(D.c.job_id, part, String()))
                    .order_by(D.c.id)
                    .limit(limit - len(found))
                )
        found.sort(key=lambda r: r.id)
        return found

    def reassign(self, delivery_ids: Sequence[int], job_id: str, now: datetime) -> int:
        """Hand orphaned rows to a new job; how many were still orphans."""
        count = 0
        with self.engine.begin() as conn:
            for part in chunks(list(delivery_ids), CHUNK):
                count += conn.execute(
                    update(D)
                    .where(self._in(D.c.id, part), still_pending(), unclaimed(now))
                    .values(job_id=job_id, next_attempt_at=now, updated_at=now)
                ).rowcount
        return count

    def redrive_failed(self, destinations: Iterable[str] | None = None) -> int:
        """Make failed deliveries pending again, with a fresh attempt budget."""
        now = utcnow()
        query = update(D).where(D.c.state == FAILED)
        if destinations is not None:
            query = query.where(D.c.destination.in_(list(destinations)))
        with self.engine.begin() as conn:
            result = conn.execute(
                query.values(
                    state=PENDING,
                    attempts=0,
                    job_id=None,
                    next_attempt_at=now,
                    claim_token=None,
                    claimed_until=None,
                    updated_at=now,
                )
            )
        return int(result.rowcount)

    # -- reporting ---------------------------------------------------------------------------

    def counts(self) -> dict[str, dict[str, int]]:
        """``{destination: {state: count}}`` over the whole table."""
        out: dict[str, dict[str, int]] = {}
        with self.engine.connect() as conn:
            for name, state, count in conn.execute(
                select(D.c.destination, D.c.state, func.count()).group_by(
                    D.c.destination, D.c.state
                )
            ):
                out.setdefault(name, {})[state] = int(count)
        return out

    def failures(
        self, limit: int = 10, destinations: Iterable[str] | None = None
    ) -> list[Row[Any]]:
        """The latest failed deliveries: destination, event id and type, attempts, error."""
        query = (
            select(
                D.c.destination,
                E.c.event_id,
                E.c.event_type,
                D.c.attempts,
                D.c.last_error,
                D.c.updated_at,
            )
            .select_from(D.outerjoin(E, E.c.id == D.c.event_pk))
            .where(D.c.state == FAILED)
            .order_by(D.c.updated_at.desc(), D.c.id.desc())
            .limit(limit)
        )
        if destinations is not None:
            query = query.where(D.c.destination.in_(list(destinations)))
        with self.engine.connect() as conn:
            return list(conn.execute(query))

    def states(self, destination: str) -> dict[str, str]:
        """``{event_id: state}`` of one destination (tests, small tables)."""
        with self.engine.connect() as conn:
            return {
                event_id: state
                for event_id, state in conn.execute(
                    select(E.c.event_id, D.c.state)
                    .select_from(D.join(E, E.c.id == D.c.event_pk))
                    .where(D.c.destination == destination)
                )
            }
