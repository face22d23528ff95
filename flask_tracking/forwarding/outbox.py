"""The outbox: delivery rows written with the events, claimed, sent and settled.

Everything here is plain SQL on ``tracking_deliveries`` (and a read of
``tracking_events``); no Redis, no threads. The forwarder decides when to call it; jobs
(RQ or the in-process thread) call :meth:`Outbox.deliver`. The sweep and report queries
are in :mod:`.backlog`.

How one batch is delivered exactly once per (event, destination):

1. *claim*: one ``UPDATE`` marks the batch's pending, unclaimed rows with a fresh token
   and a lease (``claimed_until``), and commits. Rows delivered, failed or claimed by a
   running job are left out, so a redelivered or duplicated job sends nothing twice.
2. *send*: the claimed rows' events are rendered as edX lines, stripped by the route and
   encoded by the destination one by one (strict JSON); an event that cannot be read,
   rendered or encoded is set aside as failed, with the reason. The others are handed to
   the destination in one batch, with an idempotency key per (event, destination).
3. *settle*: one transaction marks the rows delivered, failed, or pending with
   ``next_attempt_at`` = now + the destination's backoff for the row's attempt count,
   only where the token is still ours.

A worker that dies between 1 and 3 leaves rows claimed; when the lease (longer than the
job timeout) runs out, the sweeper hands them to a new job. If the death came after the
receiver took the batch, the batch is sent again with the same idempotency keys.

Retries: a job never retries itself. ``next_attempt_at`` and ``attempts`` in the row are
the only retry state; the sweeper hands a pending row whose time has come, and whose job
has ended, to a new job (see :mod:`.sweeper`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, Row, select, update

from ..redact import REDACTING, exception_text, redact
from ..rows import NewRow
from .backlog import Backlog
from .batches import Batch, Outcome, Plan
from .destinations import DeliveryError, PermanentError, RetryableError, Target
from .models import DELIVERED, FAILED
from .newrows import NewDelivery, write_new
from .outgoing import line_columns, prepare
from .sql import CHUNK, D, E, chunks, clip, still_pending, unclaimed, utcnow

logger = logging.getLogger(__name__)
logger.addFilter(REDACTING)


class Outbox(Backlog):
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
        super().__init__(engine)
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
        self._line_columns = line_columns()

    # -- producing (inside the storing transaction) --------------------------------------

    def plan(self, conn: Connection, new: Sequence[NewRow]) -> Plan:
        """Route newly stored events, write their delivery rows, return the batches.

        The events are routed as the store got them (type, source, the ``course_id``
        column's value), not read back: the insert gave their keys."""
        plan = Plan(frozenset(row.event["event_id"] for row in new))
        if not new or not self.targets:
            return plan
        rows = sorted(
            (row.pk, row.event["event_type"], row.event["event_source"], row.course_id)
            for row in new
        )
        now = utcnow()
        records: list[NewDelivery] = []
        for name, target in self.targets.items():
            pks = [
                pk
                for pk, kind, source, course in rows
                if target.route.matches(kind, source, course)
            ]
            for part in chunks(pks, target.batch_size):
                job_id: str | None
                if self.gather and len(part) < target.batch_size:
                    job_id = None
                    plan.leftovers[name] = list(part)
                else:
                    job_id = self.new_job_id()
                    plan.batches.append(Batch(job_id, name, list(part)))
                records.extend((pk, name, job_id) for pk in part)
        write_new(conn, records, now, postgresql=self._pg)
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
                    still_pending(),
                )
                .values(job_id=batch.job_id)
            )
        return int(result.rowcount)

    # -- delivering ------------------------------------------------------------------------

    def deliver(self, destination: str, event_pks: Sequence[int]) -> Outcome:
        """Claim, send and settle one batch. Never sends a row that is not pending.

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
        self._keep_open()
        with self.engine.connect() as conn:
            rows = self._claim(conn, destination, pks, token, utcnow())
            outcome.skipped = len(pks) - len(rows)
            if not rows:
                return outcome
            events, sendable, broken = prepare(target, rows)
            error: DeliveryError | None = None
            if events:
                try:
                    target.destination.send(events)
                except DeliveryError as exc:
                    error = exc
                except Exception as exc:
                    known = target.destination.secrets()
                    logger.error(
                        "Destination %r raised; counted as retryable.\n%s",
                        destination,
                        exception_text(exc, known),
                    )
                    error = RetryableError(f"{type(exc).__name__}: {exc}")
                except BaseException as exc:
                    self._release(rows, token, f"Interrupted: {exc!r}")
                    raise
            if self._pg:  # each settling statement is atomic on its own
                self._settle(conn, target, token, sendable, broken, error, outcome)
            else:
                with conn.begin():
                    self._settle(conn, target, token, sendable, broken, error, outcome)
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
                still_pending(),
                unclaimed(now),
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
        outcome: Outcome,
    ) -> None:
        now = utcnow()
        known = target.destination.secrets()
        done = [r for r in sent if error is None or r.event_id in error.delivered]
        rest = [r for r in sent if error is not None and r.event_id not in error.delivered]
        message = clip(redact(str(error), known)) if error is not None else None
        outcome.error = message
        ours = D.c.claim_token == token
        released = {"claim_token": None, "claimed_until": None, "updated_at": now}

        def mark(ids: Sequence[int], **values: Any) -> None:
            for part in chunks(list(ids), CHUNK):
                conn.execute(
                    update(D)
                    .where(self._in(D.c.id, part), ours)
                    .values(attempts=D.c.attempts + 1, **values, **released)
                )

        mark([r._delivery_id for r in done], state=DELIVERED, delivered_at=now, last_error=None)
        outcome.delivered = len(done)
        for delivery_id, why in broken.items():
            mark([delivery_id], state=FAILED, last_error=clip(redact(why, known)))
        outcome.failed = len(broken)
        if not rest:
            return
        if isinstance(error, PermanentError):
            final, again = rest, []
        else:
            final = [r for r in rest if r._attempts + 1 >= target.max_attempts]
            again = [r for r in rest if r._attempts + 1 < target.max_attempts]
        if final:
            gave_up = (
                message
                if isinstance(error, PermanentError)
                else f"{message} (gave up after {target.max_attempts} attempts)"
            )
            mark([r._delivery_id for r in final], state=FAILED, last_error=gave_up)
        by_delay: dict[int, list[int]] = {}
        for row in again:
            by_delay.setdefault(target.delay(row._attempts), []).append(row._delivery_id)
        for delay, ids in by_delay.items():
            mark(ids, last_error=message, next_attempt_at=now + timedelta(seconds=delay))
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
                            last_error=clip(redact(why)),
                            claim_token=None,
                            claimed_until=None,
                            updated_at=now,
                        )
                    )
        except Exception:
            logger.exception("Could not release %d claimed deliveries; the lease will.", len(rows))
