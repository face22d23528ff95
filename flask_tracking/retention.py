"""Retention: remove what is older than a time (``flask tracking prune``, and the worker
with ``TRACKING_RETENTION_DAYS``).

Removed: the events with ``time`` before the cutoff, their delivered and failed
deliveries, their ids in ``tracking_event_ids`` (partitioned tables), and the failed
events with ``failed_at`` before the cutoff. Never removed: an event that still has a
``pending`` delivery, nor that delivery.

On a partitioned table, a partition wholly before the cutoff is dropped (its deliveries
and ids deleted first, in batches); one that holds an event with a pending delivery is
kept and its other rows deleted instead, and the report names it. A partition that
straddles the cutoff, and every plain table (SQLite, PostgreSQL without partitions), is
deleted from in batches of :data:`BATCH` rows, each batch its own short transaction, so
ingest never waits long behind retention.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, delete, exists, func, or_, select, text
from sqlalchemy.exc import OperationalError

from .catalog.table import seen_after_prune
from .engine import statement_timeout
from .forwarding.models import PENDING, deliveries_table
from .models import events_table, failed_table
from .partitions import existing, ids_table, is_partitioned, make_partitions, upcoming
from .runlock import Busy, exclusive
from .store import SqlStore

logger = logging.getLogger(__name__)

#: Rows per deleting transaction.
BATCH = 5_000
#: The name of a prune for ``runlock.exclusive``.
RUN_NAME = "flask-tracking retention"
#: How long one statement of a prune may run (counting a partition, a batch).
STATEMENT_SECONDS = 300.0
E = events_table
D = deliveries_table
F = failed_table


@dataclass(slots=True)
class PruneReport:
    """What a prune removed (or, ``dry_run``, would remove)."""

    before: datetime
    dry_run: bool = False
    events: int = 0
    deliveries: int = 0
    failed: int = 0
    ids: int = 0
    #: Events before the cutoff kept because a delivery of theirs is pending.
    kept_pending: int = 0
    dropped: list[str] = field(default_factory=list)
    #: Partitions wholly before the cutoff kept for their pending deliveries.
    kept_partitions: list[str] = field(default_factory=list)
    #: Partitions to drop whose lock was not granted in time (the next prune drops them).
    busy_partitions: list[str] = field(default_factory=list)
    partitioned: bool = False
    #: Catalog rows whose first and last seen were set again (``tracking_event_types``).
    catalog_rows: int = 0

    def lines(self) -> Iterator[str]:
        verb = "would remove" if self.dry_run else "removed"
        yield f"before: {self.before.isoformat()} (UTC)"
        yield f"{verb}: tracking_events={self.events}"
        yield f"{verb}: tracking_deliveries={self.deliveries}"
        yield f"{verb}: tracking_failed_events={self.failed}"
        if self.partitioned:
            yield f"{verb}: tracking_event_ids={self.ids}"
            drop = "would drop" if self.dry_run else "dropped"
            yield f"partitions {drop}: {', '.join(self.dropped) or '(none)'}"
        if self.kept_pending:
            yield f"kept: {self.kept_pending} events with pending deliveries"
        for name in self.kept_partitions:
            yield f"kept partition {name}: it holds events with pending deliveries"
        for name in self.busy_partitions:
            yield f"kept partition {name}: busy (its lock was not granted), try again later"
        if self.catalog_rows:
            yield f"catalog: first and last seen set again for {self.catalog_rows} event types"


@contextmanager
def _writing(store: SqlStore) -> Iterator[Connection]:
    """A write transaction whose statements may run :data:`STATEMENT_SECONDS` (the
    locks they wait for are still bound by ``TRACKING_DB_TIMEOUT``)."""
    with store.writing() as conn, statement_timeout(conn, STATEMENT_SECONDS):
        yield conn


@contextmanager
def _reading(store: SqlStore) -> Iterator[Connection]:
    with store.engine.connect() as conn, statement_timeout(conn, STATEMENT_SECONDS):
        yield conn


def _naive(when: datetime) -> datetime:
    return when.astimezone(UTC).replace(tzinfo=None) if when.tzinfo else when


def _pending(event_id: Any) -> Any:
    p = D.alias("p")  # not the outer query's deliveries, if it has them
    return exists().where(p.c.event_pk == event_id, p.c.state == PENDING)


def prune(
    store: SqlStore, before: datetime, *, dry_run: bool = False, batch: int = BATCH
) -> PruneReport:
    """Remove events (and their rows) older than ``before``; see the module doc.

    On PostgreSQL one prune runs at a time (``runlock``): :class:`~.runlock.Busy` when
    another process is pruning the same database (a dry run needs no lock)."""
    if dry_run:
        return _prune(store, before, dry_run=True, batch=batch)
    with exclusive(store.engine, RUN_NAME):
        return _prune(store, before, dry_run=False, batch=batch)


def _prune(store: SqlStore, before: datetime, *, dry_run: bool, batch: int) -> PruneReport:
    cutoff = _naive(before)
    report = PruneReport(before=cutoff, dry_run=dry_run)
    partitions: dict[str, tuple[datetime, datetime]] = {}
    engine = store.engine
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            report.partitioned = bool(is_partitioned(conn))
            if report.partitioned:
                partitions = existing(conn)
    if not report.partitioned:
        _delete_rows(store, report, None, cutoff, batch)
    for name, (start, end) in sorted(partitions.items(), key=lambda item: item[1]):
        if start >= cutoff:
            continue
        if end > cutoff or not _drop(store, report, name, (start, end), batch):
            _delete_rows(store, report, (start, min(end, cutoff)), cutoff, batch)
    _delete_failed(store, report, cutoff, batch)
    if report.events and not dry_run:
        _catalog_seen(store, report, cutoff)
    return report


def _catalog_seen(store: SqlStore, report: PruneReport, cutoff: datetime) -> None:
    """First and last seen of the catalog's rows set again from what is left; a failure
    is logged, not raised: the events are pruned either way."""
    try:
        report.catalog_rows = seen_after_prune(store.engine, cutoff)
    except Exception as exc:
        logger.warning(
            "Pruned, but the catalog's first and last seen could not be set again (%s);"
            " run `flask tracking catalog --sync`.",
            type(exc).__name__,
        )


def _delete_rows(
    store: SqlStore,
    report: PruneReport,
    window: tuple[datetime, datetime] | None,
    cutoff: datetime,
    batch: int,
) -> None:
    """Delete events before ``cutoff`` (within ``window``) without pending deliveries,
    with their deliveries (and ids), ``batch`` at a time; walks the rows by (time, id)."""
    where = [E.c.time < cutoff]
    if window is not None:
        where += [E.c.time >= window[0], E.c.time < window[1]]
    if report.dry_run:
        with _reading(store) as conn:
            base = select(func.count()).select_from(E).where(*where)
            kept = conn.execute(base.where(_pending(E.c.id))).scalar_one()
            gone = conn.execute(base.where(~_pending(E.c.id))).scalar_one()
            report.events += gone
            report.kept_pending += kept
            report.deliveries += conn.execute(
                select(func.count())
                .select_from(D)
                .join(E, E.c.id == D.c.event_pk)
                .where(*where, ~_pending(E.c.id))
            ).scalar_one()
            report.ids += gone if report.partitioned else 0
        return
    cursor: tuple[datetime, int] | None = None
    while True:
        with _writing(store) as conn:
            query = select(E.c.id, E.c.time, _pending(E.c.id).label("pending")).where(*where)
            if cursor is not None:
                query = query.where(
                    or_(E.c.time > cursor[0], and_(E.c.time == cursor[0], E.c.id > cursor[1]))
                )
            found = conn.execute(query.order_by(E.c.time, E.c.id).limit(batch)).all()
            if not found:
                return
            cursor = (found[-1].time, found[-1].id)
            report.kept_pending += sum(1 for row in found if row.pending)
            ids = [row.id for row in found if not row.pending]
            if ids:
                _delete_events(conn, report, ids)
        if len(found) < batch:
            return


def _delete_events(conn: Connection, report: PruneReport, ids: list[int]) -> None:
    report.deliveries += _count(
        conn.execute(delete(D).where(D.c.event_pk.in_(ids), D.c.state != PENDING))
    )
    gone = conn.execute(
        delete(E).where(E.c.id.in_(ids), ~_pending(E.c.id)).returning(E.c.event_id)
    ).all()
    report.events += len(gone)
    if report.partitioned and gone:
        event_ids = [row[0] for row in gone]
        gone_ids = delete(ids_table).where(ids_table.c.event_id.in_(event_ids))
        report.ids += _count(conn.execute(gone_ids))


def _drop(
    store: SqlStore,
    report: PruneReport,
    name: str,
    window: tuple[datetime, datetime],
    batch: int,
) -> bool:
    """Drop the partition ``name`` (wholly before the cutoff) unless one of its events has
    a pending delivery (``False``: kept, the caller deletes its other rows)."""
    part = text(f'"{name}"')  # a name read from the catalog, ours by construction
    in_part = f'SELECT 1 FROM tracking_deliveries d JOIN "{name}" e ON e.id = d.event_pk'
    pending_sql = f"SELECT EXISTS ({in_part} WHERE d.state = 'pending')"
    with _reading(store) as conn:
        if conn.exec_driver_sql(pending_sql).scalar():
            report.kept_partitions.append(name)
            return False
        # Counted here, not under the lock below, which holds ingest for as long as it
        # lasts (a late event stored in between is dropped too, uncounted).
        events = conn.execute(select(func.count()).select_from(part)).scalar_one()
        if report.dry_run:
            report.events += events
            report.deliveries += conn.exec_driver_sql(
                f"SELECT count(*) FROM ({in_part}) AS x"
            ).scalar_one()
            report.ids += conn.execute(
                select(func.count())
                .where(ids_table.c.time >= window[0], ids_table.c.time < window[1])
                .select_from(ids_table)
            ).scalar_one()
            report.dropped.append(name)
            return True
    # The deliveries first, in batches, outside the lock.
    while True:
        with _writing(store) as conn:
            n = _count(
                conn.exec_driver_sql(
                    "DELETE FROM tracking_deliveries WHERE id IN (SELECT d.id FROM"
                    f' tracking_deliveries d JOIN "{name}" e ON e.id = d.event_pk'
                    f" WHERE d.state <> 'pending' LIMIT {int(batch)})"
                )
            )
        report.deliveries += n
        if n < batch:
            break
    try:
        with _writing(store) as conn:
            # Dropping a partition locks the parent too. The parent first, as every query
            # of tracking_events takes them: partition first deadlocks with a query that
            # holds the parent and waits for that partition.
            conn.exec_driver_sql(f"LOCK TABLE ONLY {E.name} IN ACCESS EXCLUSIVE MODE")
            conn.exec_driver_sql(f'LOCK TABLE "{name}" IN ACCESS EXCLUSIVE MODE')
            if conn.exec_driver_sql(pending_sql).scalar():  # came since: keep it after all
                report.kept_partitions.append(name)
                return False
            conn.exec_driver_sql(f'DROP TABLE "{name}"')
    except OperationalError as exc:  # a lock not granted within TRACKING_DB_TIMEOUT
        if getattr(exc.orig, "sqlstate", None) != "55P03":
            raise
        report.busy_partitions.append(name)
        return True
    report.events += events
    report.dropped.append(name)
    if store.partitions is not None:
        store.partitions.forget()
    logger.info("Tracking retention: dropped partition %s.", name)
    # Then its ids (an id left a moment without its event only keeps that id out).
    while True:
        with _writing(store) as conn:
            n = _count(
                conn.execute(
                    delete(ids_table).where(
                        ids_table.c.event_id.in_(
                            select(ids_table.c.event_id)
                            .where(ids_table.c.time >= window[0], ids_table.c.time < window[1])
                            .limit(batch)
                            .scalar_subquery()
                        )
                    )
                )
            )
        report.ids += n
        if n < batch:
            return True


def _delete_failed(store: SqlStore, report: PruneReport, cutoff: datetime, batch: int) -> None:
    old = F.c.failed_at < cutoff
    if report.dry_run:
        with _reading(store) as conn:
            count = select(func.count()).select_from(F).where(old)
            report.failed += conn.execute(count).scalar_one()
        return
    while True:
        with _writing(store) as conn:
            ids = list(conn.execute(select(F.c.id).where(old).limit(batch)).scalars())
            if ids:
                report.failed += _count(conn.execute(delete(F).where(F.c.id.in_(ids))))
        if len(ids) < batch:
            return


def _count(result: Any) -> int:
    return max(int(result.rowcount or 0), 0)


#: Seconds between two housekeeping runs of a worker (the first at its start).
HOUSEKEEPING_SECONDS = 3600.0


class Housekeeping:
    """What ``flask tracking worker`` does now and then besides forwarding: partitions
    ahead of time (``TRACKING_PARTITION``) and retention (``TRACKING_RETENTION_DAYS``)."""

    def __init__(self, store: SqlStore, retention_days: int | None) -> None:
        self.store = store
        self.retention_days = retention_days

    def __bool__(self) -> bool:
        return self.store.partitions is not None or self.retention_days is not None

    def __call__(self) -> None:
        partitions = self.store.partitions
        if partitions is not None:
            make_partitions(self.store.engine, upcoming(partitions.unit, datetime.now(UTC)))
        if self.retention_days is not None:
            before = datetime.now(UTC) - timedelta(days=self.retention_days)
            try:
                report = prune(self.store, before)
            except Busy:  # another worker (or `flask tracking prune`) is at it
                logger.info("Tracking retention: skipped, another process is pruning.")
                return
            logger.info("Tracking retention: %s", "; ".join(report.lines()))
