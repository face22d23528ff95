"""The SQL store: the backend that is the point of truth.

One transaction stores a batch of events and the failed rows of the same request; a
unique ``event_id`` makes a retried batch store nothing twice (``INSERT ... ON CONFLICT
DO NOTHING`` on SQLite and PostgreSQL). Hooks let other parts (forwarding) add rows in
the same transaction and act after the commit.

The store expects events that passed ``limits.py``: a row the database still refuses
(a limit nobody foresaw) refuses that row alone, never its batch, and never counts as
"the database is unavailable".
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import chain
from typing import Any

from sqlalchemy import Connection, Engine, func, insert, select
from sqlalchemy.exc import StatementError

from . import pgcopy
from .engine import WriteLock, engine_timeout, is_unavailable
from .models import events_table, failed_table, metadata
from .partitions import Partitions, check_backend, check_plain, partitioned_insert
from .rawwrite import RawInserter
from .rows import PG_INSERT, SQLITE_COLUMNS, Encoded, NewRow, pg_batch, sqlite_values
from .sqlite_wal import Checkpointer

logger = logging.getLogger(__name__)

#: Called inside the storing transaction with the events just stored, and their keys.
InsertHook = Callable[[Connection, list[NewRow]], None]
#: Called after the commit with the ids just stored.
CommitHook = Callable[[list[str]], None]

#: Rows per SQLite INSERT statement (SQLite allows 32,766 parameters per statement).
SQLITE_ROWS_PER_STATEMENT = 500
#: Rows per PostgreSQL INSERT statement: each statement is bound by TRACKING_DB_TIMEOUT,
#: and an import chunk (2,000 rows) in one statement came close to 1 s on a loaded machine.
PG_ROWS_PER_STATEMENT = 500
#: What a driver raises for a value it cannot bind (before the database sees it).
_BIND_ERRORS = (StatementError, UnicodeError, OverflowError, ValueError, TypeError)


@dataclass(slots=True)
class StoreResult:
    """The ids of a batch that were stored now, and those already stored before."""

    stored: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    #: ``(event_id, reason)`` of rows the database refused (a value it cannot hold).
    rejected: list[tuple[str, str]] = field(default_factory=list)


#: How the store's PostgreSQL inserts end (``rows.PG_INSERT`` and its partitioned form).
_RETURNING = " RETURNING event_id"


def returning(insert: str, *columns: str) -> str:
    """``insert`` (one of the store's PostgreSQL inserts, which end in ``RETURNING
    event_id``) returning ``columns`` instead; ``RuntimeError`` when it ends otherwise,
    so a changed statement fails where it is built, not as SQL broken at the first
    batch."""
    if not insert.endswith(_RETURNING):
        raise RuntimeError(f"store: the PostgreSQL insert no longer ends in {_RETURNING!r}")
    return f"{insert[: -len(_RETURNING)]} RETURNING {', '.join(columns)}"


def _refusal(exc: BaseException) -> str:
    reason = str(getattr(exc, "orig", None) or exc).splitlines()[0][:300]
    return f"The database refused the event: {reason}"


def _unavailable(exc: BaseException) -> bool:
    return isinstance(exc, StatementError) and is_unavailable(exc)


class SqlStore:
    """Stores events and failed events in the tracking tables."""

    def __init__(self, engine: Engine, partition: str | None = None) -> None:
        self.engine = engine
        check_backend(partition, engine.dialect.name)
        #: ``TRACKING_PARTITION``: partitions made on demand, and the insert (partitions.py).
        self.partitions = Partitions(engine, partition) if partition else None
        self._pg_insert = partitioned_insert(PG_INSERT) if partition else PG_INSERT
        #: The same, naming each new row's key too (for the insert hooks).
        self._pg_insert_keys = returning(self._pg_insert, "event_id", "id")
        self.insert_hooks: list[InsertHook] = []
        self.commit_hooks: list[CommitHook] = []
        self._sqlite = engine.dialect.name == "sqlite"
        self._sqlite_returning_sql: dict[int, str] = {}
        #: Processes take turns through a lock file beside the database: a writer waits
        #: in the kernel, not in SQLite's busy handler that sleeps up to 100 ms a try.
        database = engine.url.database if self._sqlite else None
        on_disk = bool(database) and database != ":memory:"
        self._file_lock = WriteLock(
            f"{database}.write-lock" if on_disk else None, timeout=engine_timeout(engine)
        )
        self._checkpointer = Checkpointer(str(database), self) if on_disk else None
        #: A plain batch (no failed rows, no insert hooks) goes to the driver directly:
        #: on PostgreSQL one round trip in autocommit, partitioned or not (``rawwrite``).
        self._raw = RawInserter(
            engine,
            lock=self._file_lock.held,
            max_rows=SQLITE_ROWS_PER_STATEMENT if self._sqlite else PG_ROWS_PER_STATEMENT,
            partitions=self.partitions,
            pg_insert=self._pg_insert,
        )
        #: The bulk insert on SQLite, fed ready-made tuples (see ``rows.sqlite_values``).
        self._sqlite_bulk_sql = (
            f"INSERT INTO tracking_events ({', '.join(SQLITE_COLUMNS)})"
            f" VALUES ({', '.join('?' for _ in SQLITE_COLUMNS)})"
            " ON CONFLICT (event_id) DO NOTHING"
        )

    def create_all(self) -> None:
        """Create the tables and indexes that do not exist yet (idempotent)."""
        if self.partitions is not None:
            self.partitions.create_all()
            return
        if not self._sqlite:
            check_plain(self.engine)
        metadata.create_all(self.engine)

    # -- writing --------------------------------------------------------------------------

    def write(
        self,
        events: Sequence[Mapping[str, Any]],
        failures: Sequence[Mapping[str, Any]] = (),
        encoded: Sequence[Encoded | None] | None = None,
    ) -> StoreResult:
        """Store events and failed rows in one transaction; ids already stored are
        duplicates. Raises what the driver raised when the database is unavailable.

        ``encoded``: each event's JSON columns as ``limits.check`` encoded them (SQLite
        binds them as they are instead of encoding again)."""
        if not events and not failures:
            return StoreResult()
        try:
            stored = self._transaction(events, failures, encoded)
        except _BIND_ERRORS as exc:
            if _unavailable(exc):
                raise
            if self.partitions is not None and self.partitions.dropped_meanwhile(exc):
                return self.write(events, failures, encoded)  # the partition made again
            return self._one_by_one(events, failures, exc)
        result = self._result(events, stored)
        self._after_commit(result.stored)
        return result

    def send(self, events: Sequence[Mapping[str, Any]]) -> StoreResult:
        """Store a batch of events (a backend's ``send``)."""
        return self.write(events)

    def save_failed(self, failures: Sequence[Mapping[str, Any]]) -> None:
        """Keep failed rows (already built by ``failures.failed_row``)."""
        self.write((), failures)

    @staticmethod
    def _result(events: Sequence[Mapping[str, Any]], stored: list[str]) -> StoreResult:
        kept = set(stored)
        result = StoreResult()
        for event in events:
            event_id = event["event_id"]
            if event_id in kept:
                kept.discard(event_id)
                result.stored.append(event_id)
            else:
                result.duplicates.append(event_id)
        return result

    @contextmanager
    def _writing(self) -> Iterator[Connection]:
        """A write transaction (taking this process's turn first on SQLite)."""
        if not self._sqlite:
            with self.engine.begin() as conn:
                yield conn
            return
        with self._file_lock.held(), self.engine.begin() as conn:  # threads wait in there
            yield conn
        if self._checkpointer is not None:
            self._checkpointer.wrote()

    #: A write transaction, for other writers of the tracking tables (retention).
    writing = _writing

    def _transaction(
        self,
        events: Sequence[Mapping[str, Any]],
        failures: Sequence[Mapping[str, Any]],
        encoded: Sequence[Encoded | None] | None = None,
    ) -> list[str]:
        if events and not failures and not self.insert_hooks:
            # Partitioned too: the raw inserter makes the batch's partitions first.
            stored = self._raw.insert(_unique(events, encoded))
            if self._checkpointer is not None:
                self._checkpointer.wrote()
            return stored
        with self._writing() as conn:
            new = self._insert(conn, events, encoded) if events else []
            for hook in self.insert_hooks:
                if new:
                    hook(conn, new)
            if failures:
                conn.execute(insert(failed_table), [_failed_values(f) for f in failures])
        return [row.event["event_id"] for row in new]

    def _one_by_one(
        self,
        events: Sequence[Mapping[str, Any]],
        failures: Sequence[Mapping[str, Any]],
        first: BaseException,
    ) -> StoreResult:
        """After a batch failed on a bad value: store each row alone, keep the refusals."""
        if len(events) + len(failures) == 1 and events:
            return StoreResult(rejected=[(events[0]["event_id"], _refusal(first))])
        result = StoreResult()
        for event in events:
            part = self.write([event])
            result.stored += part.stored
            result.duplicates += part.duplicates
            result.rejected += part.rejected
        for failure in failures:
            try:
                self._transaction((), [failure])
            except _BIND_ERRORS as exc:
                if _unavailable(exc):
                    raise
                logger.error("A failed-event row could not be kept: %s", _refusal(exc))
        return result

    def _insert(
        self,
        conn: Connection,
        events: Sequence[Mapping[str, Any]],
        encoded: Sequence[Encoded | None] | None,
    ) -> list[NewRow]:
        """Insert in ``conn``'s transaction: the events stored now, with their keys."""
        rows = _unique(events, encoded)
        keys: list[tuple[str, int]] = []
        if self._sqlite:
            keys = self._sqlite_insert(conn, rows)
        else:
            if self.partitions is not None:
                self.partitions.ensure(conn, (event["time"] for event, _ in rows))
            for start in range(0, len(rows), PG_ROWS_PER_STATEMENT):
                batch = pg_batch(rows[start : start + PG_ROWS_PER_STATEMENT])
                result = conn.exec_driver_sql(self._pg_insert_keys, (batch,))
                keys.extend((row[0], row[1]) for row in result)
        by_id = {event["event_id"]: event for event, _ in rows}
        return [NewRow(pk, by_id[event_id]) for event_id, pk in keys]

    def _sqlite_insert(
        self, conn: Connection, events: list[tuple[Mapping[str, Any], Encoded | None]]
    ) -> list[tuple[str, int]]:
        """One multi-row ``INSERT ... RETURNING`` per chunk, fed ready-made tuples: the
        ``(event_id, id)`` of the rows stored."""
        stored: list[tuple[str, int]] = []
        for start in range(0, len(events), SQLITE_ROWS_PER_STATEMENT):
            chunk = events[start : start + SQLITE_ROWS_PER_STATEMENT]
            sql = self._sqlite_returning_sql.get(len(chunk))
            if sql is None:
                one = f"({', '.join('?' for _ in SQLITE_COLUMNS)})"
                sql = (
                    f"INSERT INTO tracking_events ({', '.join(SQLITE_COLUMNS)})"
                    f" VALUES {', '.join(one for _ in chunk)}"
                    " ON CONFLICT (event_id) DO NOTHING RETURNING event_id, id"
                )
                self._sqlite_returning_sql[len(chunk)] = sql
            params = tuple(chain.from_iterable(sqlite_values(e, enc) for e, enc in chunk))
            stored.extend((r[0], r[1]) for r in conn.exec_driver_sql(sql, params))
        return stored

    def insert_many(
        self,
        events: Sequence[Mapping[str, Any]],
        failures: Sequence[Mapping[str, Any]] = (),
        encoded: Sequence[Encoded | None] | None = None,
    ) -> tuple[int, list[tuple[str, str]]]:
        """Bulk path (import): ``(how many were new, refused rows)``. Without hooks that
        need the new ids: on SQLite one executemany without RETURNING, on PostgreSQL
        (psycopg 3) ``COPY`` (``pgcopy.py``); when that fails, the path of :meth:`write`."""
        if not events and not failures:
            return 0, []
        if not self._sqlite and events and not (self.insert_hooks or self.commit_hooks):
            try:
                with self.engine.begin() as conn:
                    if pgcopy.usable(conn):
                        pairs = _unique(events, encoded)
                        rows = [_failed_values(f) for f in failures]
                        return pgcopy.copy_insert(conn, pairs, rows, self.partitions), []
            except _BIND_ERRORS as exc:
                if _unavailable(exc) and not pgcopy.deadlocked(exc):
                    raise  # a deadlock with another chunk (--jobs): write() tries again
                if self.partitions is not None:
                    self.partitions.dropped_meanwhile(exc)  # the list read again
        if self._sqlite and events and not (self.insert_hooks or self.commit_hooks):
            try:
                with self._writing() as conn:
                    values = [
                        sqlite_values(e, encoded[i] if encoded else None)
                        for i, e in enumerate(events)
                    ]
                    cursor = conn.exec_driver_sql(self._sqlite_bulk_sql, values)
                    if failures:
                        conn.execute(insert(failed_table), [_failed_values(f) for f in failures])
                    return max(cursor.rowcount, 0), []
            except _BIND_ERRORS as exc:
                if _unavailable(exc):
                    raise
        result = self.write(events, failures, encoded)
        return len(result.stored), result.rejected

    def _after_commit(self, stored: list[str]) -> None:
        if not stored:
            return
        for hook in self.commit_hooks:
            try:
                hook(stored)
            except Exception:
                logger.exception("Tracking after-commit hook %r failed.", hook)

    def prune_failed(self, keep: int) -> int:
        """Delete the oldest failed rows beyond the newest ``keep``; how many went."""
        table = failed_table
        with self._writing() as conn:
            newest = conn.execute(select(func.max(table.c.id))).scalar_one()
            if newest is None or newest <= keep:
                return 0
            result = conn.execute(table.delete().where(table.c.id <= newest - keep))
        return int(result.rowcount or 0)

    # -- reading --------------------------------------------------------------------------

    def count(self) -> int:
        """How many events are stored."""
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(events_table)).scalar_one())


def _unique(
    events: Sequence[Mapping[str, Any]], encoded: Sequence[Encoded | None] | None
) -> list[tuple[Mapping[str, Any], Encoded | None]]:
    """``(event, encoded)`` pairs, the first of each id only."""
    unique: dict[str, tuple[Mapping[str, Any], Encoded | None]] = {}
    for index, event in enumerate(events):
        unique.setdefault(event["event_id"], (event, encoded[index] if encoded else None))
    return list(unique.values())


def _failed_values(failure: Mapping[str, Any]) -> dict[str, Any]:
    row = dict(failure)
    row.setdefault("failed_at", datetime.now(UTC).replace(tzinfo=None))
    return row
