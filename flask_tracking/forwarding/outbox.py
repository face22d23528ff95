"""The outbox: delivery rows written with the events, claimed, sent and settled.

Everything here is plain SQL on ``tracking_deliveries`` (and a read of
``tracking_events``); no Redis, no threads. The forwarder (``__init__.py``) decides when
to call it; jobs (RQ or the in-process thread) call :meth:`Outbox.deliver`.

How one batch is delivered exactly once per (event, destination):

1. *claim*: one ``UPDATE`` marks the batch's pending, unclaimed rows with a fresh token
   and a lease (``claimed_until``), and commits. Rows delivered, failed or claimed by a
   running job are left out, so a redelivered or duplicated job sends nothing twice.
2. *send*: the claimed rows' events are rendered as edX lines, stripped by the route and
   handed to the destination, with an idempotency key per (event, destination).
3. *settle*: one transaction marks the rows delivered, failed or pending-with-backoff,
   only where the token is still ours.

A worker that dies between 1 and 3 leaves rows claimed; when the lease (longer than the
job timeout) runs out, the sweeper hands them to a new job. If the death came after the
receiver took the batch, the batch is sent again with the same idempotency keys.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import operator
import os
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Connection,
    Engine,
    Row,
    String,
    and_,
    any_,
    func,
    literal,
    literal_column,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.types import TypeEngine

from ..logformat import LINE_COLUMNS, render_line
from ..models import events_table
from .destinations import DeliveryError, OutgoingEvent, PermanentError, RetryableError, Target
from .models import DELIVERED, FAILED, PENDING, deliveries_table

logger = logging.getLogger(__name__)

D = deliveries_table
E = events_table
#: Ids per ``IN (...)`` list.
CHUNK = 1000


#: ``row._mapping`` (typed loosely: a ``RowMapping`` is what ``render_line`` reads).
_mapping: Callable[[Row[Any]], Any] = operator.attrgetter("_mapping")


def utcnow() -> datetime:
    """Naive UTC now, like every time column of the tracking tables."""
    return datetime.now(UTC).replace(tzinfo=None)


def idempotency_key(destination: str, event_id: str) -> str:
    """The idempotency key of an event at a destination: stable across retries.

    32 hex digits: BLAKE2b (16 bytes) of ``"<destination>\\n<event id>"``.
    """
    data = f"{destination}\n{event_id}".encode()
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


@dataclass(slots=True)
class Batch:
    """Events of one destination for one job; ``job_id`` is ``None`` while gathering."""

    job_id: str | None
    destination: str
    event_pks: list[int]


@dataclass(slots=True)
class Plan:
    """What one storing transaction routed, handed to the after-commit hook."""

    event_ids: frozenset[str]
    #: Full batches, their job id already in the rows.
    batches: list[Batch] = field(default_factory=list)
    #: Smaller remainders (rows without a job id yet), to gather with later ones.
    leftovers: dict[str, list[int]] = field(default_factory=dict)


@dataclass(slots=True)
class Outcome:
    """What one delivery attempt of a batch did."""

    destination: str
    delivered: int = 0
    failed: int = 0
    #: Still pending after a retryable error: to try again after the backoff.
    retrying: int = 0
    #: Not claimed: delivered or failed already, or being sent by another job.
    skipped: int = 0
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "destination": self.destination,
            "delivered": self.delivered,
            "failed": self.failed,
            "retrying": self.retrying,
            "skipped": self.skipped,
            "error": self.error,
        }


class Outbox:
    """The SQL side of forwarding, for one engine and one set of destinations.

    :param lease: seconds a claim holds (longer than any job may run).
    :param gather: leave batches smaller than the batch size without a job id, for the
        forwarder to gather across transactions.
    :param new_job_id: makes job ids.
    """

    def __init__(
        self,
        engine: Engine,
        targets: Mapping[str, Target],
        *,
        lease: float,
        gather: bool,
        new_job_id: Callable[[], str],
    ) -> None:
        self.engine = engine
        self.targets = targets
        self.lease = timedelta(seconds=lease)
        self.gather = gather
        #: SQLite file databases get a connection per use (no pool); the last one to close
        #: checkpoints the WAL, which costs more than a whole batch. A delivering process
        #: keeps one connection open so that does not happen after every job.
        self._keeper: Any = None
        self._keeper_pid = 0
        self._wants_keeper = engine.dialect.name == "sqlite" and engine.url.database not in (
            None,
            "",
            ":memory:",
        )
        self.new_job_id = new_job_id
        self._pg = engine.dialect.name == "postgresql"
        dialect = postgresql if self._pg else sqlite
        insert = dialect.insert(D)
        self._upsert = insert.on_conflict_do_update(
            index_elements=["event_pk", "destination"],
            set_={
                name: insert.excluded[name]
                for name in (
                    "state",
                    "attempts",
                    "last_error",
                    "created_at",
                    "updated_at",
                    "delivered_at",
                    "next_attempt_at",
                    "job_id",
                    "claim_token",
                    "claimed_until",
                )
            },
        )
        self._line_columns = [E.c[name] for name in LINE_COLUMNS]

    def _in(
        self, column: Any, values: Sequence[Any], kind: TypeEngine[Any] | None = None
    ) -> ColumnElement[bool]:
        """``column IN values`` with one parameter: long ``IN (?, ?, ...)`` lists are slow."""
        if self._pg:
            array = postgresql.ARRAY(kind if kind is not None else BigInteger())
            return column == any_(literal(list(values), array))
        # SQLite: one JSON parameter instead of one per value.
        each: Any = select(literal_column("value")).select_from(
            func.json_each(literal(json.dumps(list(values))))
        )
        result: ColumnElement[bool] = column.in_(each.scalar_subquery())
        return result

    # -- producing (inside the storing transaction) --------------------------------------

    def plan(self, conn: Connection, event_ids: Sequence[str]) -> Plan:
        """Route newly stored events, write their delivery rows, return the batches."""
        plan = Plan(frozenset(event_ids))
        if not event_ids or not self.targets:
            return plan
        rows: list[Row[Any]] = []
        for part in chunks(list(event_ids), CHUNK):
            rows.extend(
                conn.execute(
                    select(E.c.id, E.c.event_type, E.c.event_source, E.c.course_id).where(
                        self._in(E.c.event_id, part, String())
                    )
                )
            )
        rows.sort(key=lambda r: r.id)
        routed: dict[str, list[int]] = {}
        for name, target in self.targets.items():
            pks = [
                r.id
                for r in rows
                if target.route.matches(r.event_type, r.event_source, r.course_id)
            ]
            if pks:
                routed[name] = pks
        now = utcnow()
        records: list[dict[str, Any]] = []
        for name, pks in routed.items():
            size = self.targets[name].batch_size
            for part in chunks(pks, size):
                job_id: str | None
                if self.gather and len(part) < size:
                    job_id = None
                    plan.leftovers[name] = list(part)
                else:
                    job_id = self.new_job_id()
                    plan.batches.append(Batch(job_id, name, list(part)))
                records.extend(_new_row(pk, name, job_id, now) for pk in part)
        if records:
            conn.execute(self._upsert, records)
        return plan

    def assign(self, batch: Batch) -> int:
        """Give gathered rows (no job id yet) the job id of ``batch``; how many got it."""
        with self.engine.begin() as conn:
            result = conn.execute(
                update(D)
                .where(
                    D.c.destination == batch.destination,
                    self._in(D.c.event_pk, batch.event_pks),
                    D.c.job_id.is_(None),
                    _still_pending(),
                )
                .values(job_id=batch.job_id)
            )
        return int(result.rowcount)

    # -- delivering ------------------------------------------------------------------------

    def deliver(self, destination: str, event_pks: Sequence[int], *, retry_delay: float) -> Outcome:
        """Claim, send and settle one batch. Never sends a row that is not pending.

        ``retry_delay``: seconds before rows that hit a retryable error are due again.
        Exceptions other than :class:`DeliveryError` from the destination count as
        retryable; ``BaseException`` (a job timeout, an interrupt) releases the claim,
        counts the attempt and is raised again.
        """
        target = self.targets.get(destination)
        if target is None:
            raise LookupError(
                f"No destination {destination!r} in TRACKING_DESTINATIONS of this app:"
                " workers need the same configuration as the app that stores events."
            )
        outcome = Outcome(destination)
        pks = sorted(set(event_pks))
        token = uuid.uuid4().hex
        now = utcnow()
        self._keep_open()
        with self.engine.connect() as conn:
            rows = self._claim(conn, destination, pks, token, now)
            outcome.skipped = len(pks) - len(rows)
            if not rows:
                return outcome

            events: list[OutgoingEvent] = []
            sendable: list[Row[Any]] = []
            broken: dict[int, str] = {}  # delivery id -> why it cannot be sent
            for row in rows:
                if row.event_id is None:
                    broken[row._delivery_id] = "The event is no longer stored."
                    continue
                try:
                    line = target.route.strip(render_line(_mapping(row)))
                except Exception as exc:  # stored data that cannot be rendered
                    broken[row._delivery_id] = f"Cannot render the event: {exc!r}"
                    continue
                events.append(
                    OutgoingEvent(row.event_id, idempotency_key(destination, row.event_id), line)
                )
                sendable.append(row)

            error: DeliveryError | None = None
            if events:
                try:
                    target.destination.send(events)
                except DeliveryError as exc:
                    error = exc
                except Exception as exc:
                    logger.exception("Destination %r raised; counted as retryable.", destination)
                    error = RetryableError(f"{type(exc).__name__}: {exc}")
                except BaseException as exc:
                    self._release(rows, token, f"Interrupted: {exc!r}")
                    raise

            if self._pg:  # each settling statement is atomic on its own
                self._settle(conn, target, token, sendable, broken, error, retry_delay, outcome)
            else:
                with conn.begin():
                    self._settle(conn, target, token, sendable, broken, error, retry_delay, outcome)
        return outcome

    def _claim(
        self, conn: Connection, destination: str, pks: list[int], token: str, now: datetime
    ) -> list[Row[Any]]:
        """Claim the pending, unclaimed rows among ``pks``; return them with their events."""
        claim = (
            update(D)
            .where(
                D.c.destination == destination,
                self._in(D.c.event_pk, pks),
                _still_pending(),
                or_(D.c.claimed_until.is_(None), D.c.claimed_until < now),
            )
            .values(claim_token=token, claimed_until=now + self.lease, updated_at=now)
        )
        if self._pg:
            # One round trip, committed at once: UPDATE ... RETURNING in a CTE, joined.
            conn.execution_options(isolation_level="AUTOCOMMIT")
            claimed = claim.returning(D.c.id, D.c.attempts, D.c.event_pk).cte("claimed")
            query = (
                select(
                    claimed.c.id.label("_delivery_id"),
                    claimed.c.attempts.label("_attempts"),
                    *self._line_columns,
                )
                .select_from(claimed.outerjoin(E, E.c.id == claimed.c.event_pk))
                .order_by(claimed.c.event_pk)
            )
            return list(conn.execute(query))
        with conn.begin():
            if not conn.execute(claim).rowcount:
                return []
            return list(
                conn.execute(
                    select(
                        D.c.id.label("_delivery_id"),
                        D.c.attempts.label("_attempts"),
                        *self._line_columns,
                    )
                    .select_from(D.outerjoin(E, E.c.id == D.c.event_pk))
                    .where(
                        D.c.destination == destination,
                        self._in(D.c.event_pk, pks),
                        D.c.claim_token == token,
                    )
                    .order_by(D.c.event_pk)
                )
            )

    def _keep_open(self) -> None:
        if not self._wants_keeper or (self._keeper is not None and self._keeper_pid == os.getpid()):
            return
        try:
            self._keeper, self._keeper_pid = self.engine.raw_connection(), os.getpid()
        except Exception:  # only an optimisation
            self._keeper = None

    def close(self) -> None:
        """Close the connection kept open (SQLite)."""
        keeper, self._keeper = self._keeper, None
        if keeper is not None and self._keeper_pid == os.getpid():
            with contextlib.suppress(Exception):
                keeper.close()

    def _settle(
        self,
        conn: Connection,
        target: Target,
        token: str,
        sent: Sequence[Row[Any]],
        broken: Mapping[int, str],
        error: DeliveryError | None,
        retry_delay: float,
        outcome: Outcome,
    ) -> None:
        now = utcnow()
        done = [r for r in sent if error is None or r.event_id in error.delivered]
        rest = [r for r in sent if error is not None and r.event_id not in error.delivered]
        message = _clip(str(error)) if error is not None else None
        outcome.error = message
        ours = D.c.claim_token == token
        released = {"claim_token": None, "claimed_until": None, "updated_at": now}
        for part in chunks([r._delivery_id for r in done], CHUNK):
            conn.execute(
                update(D)
                .where(self._in(D.c.id, part), ours)
                .values(
                    state=DELIVERED,
                    delivered_at=now,
                    attempts=D.c.attempts + 1,
                    last_error=None,
                    **released,
                )
            )
        outcome.delivered = len(done)
        for delivery_id, why in broken.items():
            conn.execute(
                update(D)
                .where(D.c.id == delivery_id, ours)
                .values(state=FAILED, attempts=D.c.attempts + 1, last_error=why, **released)
            )
        outcome.failed = len(broken)
        if not rest:
            return
        if isinstance(error, PermanentError):
            final, again = rest, []
        else:
            final = [r for r in rest if r._attempts + 1 >= target.max_attempts]
            again = [r for r in rest if r._attempts + 1 < target.max_attempts]
        final_error = (
            message
            if isinstance(error, PermanentError)
            else f"{message} (gave up after {target.max_attempts} attempts)"
        )
        for part in chunks([r._delivery_id for r in final], CHUNK):
            conn.execute(
                update(D)
                .where(self._in(D.c.id, part), ours)
                .values(state=FAILED, attempts=D.c.attempts + 1, last_error=final_error, **released)
            )
        for part in chunks([r._delivery_id for r in again], CHUNK):
            conn.execute(
                update(D)
                .where(self._in(D.c.id, part), ours)
                .values(
                    attempts=D.c.attempts + 1,
                    last_error=message,
                    next_attempt_at=now + timedelta(seconds=retry_delay),
                    **released,
                )
            )
        outcome.failed += len(final)
        outcome.retrying = len(again)

    def _release(self, rows: Sequence[Row[Any]], token: str, why: str) -> None:
        """Give claimed rows back (the attempt counts), best effort."""
        try:
            now = utcnow()
            with self.engine.begin() as conn:
                for part in chunks([r._delivery_id for r in rows], CHUNK):
                    conn.execute(
                        update(D)
                        .where(self._in(D.c.id, part), D.c.claim_token == token)
                        .values(
                            attempts=D.c.attempts + 1,
                            last_error=_clip(why),
                            claim_token=None,
                            claimed_until=None,
                            updated_at=now,
                        )
                    )
        except Exception:
            logger.exception("Could not release %d claimed deliveries; the lease will.", len(rows))

    # -- sweeping ----------------------------------------------------------------------------

    def _orphan_filter(
        self, now: datetime, due_before: datetime | None
    ) -> list[ColumnElement[bool]]:
        conditions = [
            D.c.state == PENDING,
            or_(D.c.claimed_until.is_(None), D.c.claimed_until < now),
        ]
        if due_before is not None:
            conditions.append(D.c.next_attempt_at <= due_before)
        return conditions

    def pending_jobs(self, now: datetime, *, due_before: datetime | None) -> list[Row[Any]]:
        """``(job_id, destination, rows)`` of pending, unclaimed rows (due before a time)."""
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
                    .where(
                        self._in(D.c.id, part),
                        _still_pending(),
                        or_(D.c.claimed_until.is_(None), D.c.claimed_until < now),
                    )
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
                    .select_from(D.join(E, and_(E.c.id == D.c.event_pk)))
                    .where(D.c.destination == destination)
                )
            }


def _still_pending() -> ColumnElement[bool]:
    """``state = 'pending'`` for rows found by id: kept away from the (state, destination)
    index, which the planner may otherwise pick and then scan every pending row (a big
    backlog, or a table without statistics yet)."""
    return func.coalesce(D.c.state, "") == PENDING


def _new_row(pk: int, destination: str, job_id: str | None, now: datetime) -> dict[str, Any]:
    return {
        "event_pk": pk,
        "destination": destination,
        "state": PENDING,
        "attempts": 0,
        "last_error": None,
        "created_at": now,
        "updated_at": now,
        "delivered_at": None,
        "next_attempt_at": now,
        "job_id": job_id,
        "claim_token": None,
        "claimed_until": None,
    }


def _clip(text: str, limit: int = 2000) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
