"""The ingest hot path: a plain batch of events inserted on the pool's DBAPI connection.

A batch with no failed rows and no insert hooks (no forwarding destinations) is one
statement, its transaction included; going through SQLAlchemy's ``Connection`` for it
(execution context, result object, events, isolation-level characteristics on checkout
and return) cost more CPU than the statement's own driver work. :class:`RawInserter`
checks a connection out of the engine's pool (same pool, same ``connect`` listeners and
PRAGMAs, same deadlines) and talks to the driver directly:

- **PostgreSQL**: the constant ``rows.PG_INSERT`` in autocommit, one round trip, the new
  ids from ``RETURNING`` (what ``store.SqlStore`` did through SQLAlchemy before).
  Partitioned (``TRACKING_PARTITION``): its form that fills ``tracking_event_ids`` in
  the same statement (``partitions.partitioned_insert``), after the batch's partitions
  are made sure of (``Partitions.missing``: no query when all are known; else the list
  read on this connection, outside any transaction, and the missing ones created).
- **SQLite**: under the store's write lock, one ``executemany`` of a one-row
  ``INSERT ... ON CONFLICT DO NOTHING`` (SQLite runs it as one prepared statement; a
  20-row ``INSERT ... RETURNING`` cost about 40% more) and the commit. When the rows
  inserted are fewer than the rows sent (some ids were stored before: a retried batch),
  the transaction is rolled back and the batch inserted again with the multi-row
  ``INSERT ... RETURNING`` that names the new ids; duplicates are rare, so the common
  case pays for neither.

Failures look exactly as through SQLAlchemy: a driver error is raised as SQLAlchemy's
wrapper (``OperationalError``, ``IntegrityError``..., with ``connection_invalidated``),
and a lost connection invalidates the pool, so ``engine.is_unavailable`` and the store's
one-by-one retry of a refused row see what they saw before.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, suppress
from itertools import chain
from typing import Any

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError

from .partitions import EXISTING_SQL, Partitions, parse_existing
from .rows import PG_INSERT, SQLITE_COLUMNS, Encoded, pg_batch, sqlite_values

#: ``(event, its JSON columns as limits.check encoded them)``, ids unique.
Pair = tuple[Mapping[str, Any], Encoded | None]

_ONE_ROW = f"({', '.join('?' for _ in SQLITE_COLUMNS)})"
_SQLITE_HEAD = f"INSERT INTO tracking_events ({', '.join(SQLITE_COLUMNS)}) VALUES "
#: The SQLite insert of one row; ``executemany`` runs it for every row.
SQLITE_INSERT = f"{_SQLITE_HEAD}{_ONE_ROW} ON CONFLICT (event_id) DO NOTHING"


def sqlite_returning(rows: int) -> str:
    """The multi-row SQLite insert that names the ids it stored."""
    values = ", ".join(_ONE_ROW for _ in range(rows))
    return f"{_SQLITE_HEAD}{values} ON CONFLICT (event_id) DO NOTHING RETURNING event_id"


class RawInserter:
    """Inserts plain batches on a DBAPI connection of ``engine``'s pool.

    :param lock: on SQLite, the store's write lock (``WriteLock.held``).
    :param max_rows: rows per statement (SQLite: per multi-row ``RETURNING`` statement).
    :param partitions: the store's partitions (PostgreSQL, ``TRACKING_PARTITION``).
    """

    def __init__(
        self,
        engine: Engine,
        *,
        lock: Callable[[], AbstractContextManager[None]],
        max_rows: int,
        partitions: Partitions | None = None,
        pg_insert: str = PG_INSERT,
    ) -> None:
        self.engine = engine
        self.partitions = partitions
        #: ``rows.PG_INSERT``, or its partitioned form (``partitions.partitioned_insert``).
        self.pg_insert = pg_insert
        self.dialect = engine.dialect
        self.sqlite = engine.dialect.name == "sqlite"
        self.lock = lock
        self.max_rows = max_rows
        self._returning: dict[int, str] = {}

    def insert(self, pairs: Sequence[Pair]) -> list[str]:
        """Store ``pairs`` in one transaction; the ids stored now (the others were stored
        before). Raises what SQLAlchemy would have raised."""
        if self.sqlite:
            with self.lock(), self._connection() as (raw, cursor):
                return self._sqlite(raw, cursor, pairs)
        missing = self.partitions.missing(e["time"] for e, _ in pairs) if self.partitions else []
        with self._connection() as (raw, cursor):
            if missing and self.partitions is not None:
                self.partitions.make(missing, lambda: self._read_partitions(raw, cursor))
            return self._postgresql(raw, cursor, pairs)

    def _sqlite(self, raw: Any, cursor: Any, pairs: Sequence[Pair]) -> list[str]:
        values = [sqlite_values(event, encoded) for event, encoded in pairs]
        cursor.executemany(SQLITE_INSERT, values)
        if cursor.rowcount == len(values):
            raw.commit()
            return [event["event_id"] for event, _ in pairs]
        raw.rollback()  # some were stored before: find out which, in a new transaction
        stored: list[str] = []
        for start in range(0, len(values), self.max_rows):
            chunk = values[start : start + self.max_rows]
            statement = self._returning.get(len(chunk)) or self._returning.setdefault(
                len(chunk), sqlite_returning(len(chunk))
            )
            cursor.execute(statement, tuple(chain.from_iterable(chunk)))
            stored.extend(row[0] for row in cursor.fetchall())
        raw.commit()
        return stored

    def _postgresql(self, raw: Any, cursor: Any, pairs: Sequence[Pair]) -> list[str]:
        if len(pairs) > self.max_rows:  # statements of their own: one transaction
            stored: list[str] = []
            for start in range(0, len(pairs), self.max_rows):
                batch = pg_batch(pairs[start : start + self.max_rows])
                cursor.execute(self.pg_insert, (batch,))
                stored.extend(row[0] for row in cursor.fetchall())
            raw.commit()
            return stored
        driver = raw.driver_connection
        driver.autocommit = True  # the INSERT is its own transaction: one round trip
        try:
            cursor.execute(self.pg_insert, (pg_batch(pairs),))
            return [row[0] for row in cursor.fetchall()]
        finally:
            if not driver.closed:
                driver.autocommit = False

    @staticmethod
    def _read_partitions(raw: Any, cursor: Any) -> dict[str, tuple[Any, Any]]:
        """The partitions list, read on the insert's connection; its transaction ended
        (the insert runs in autocommit, and a partition is created meanwhile)."""
        cursor.execute(EXISTING_SQL)
        rows = cursor.fetchall()
        raw.rollback()
        return parse_existing(rows)

    @contextmanager
    def _connection(self) -> Iterator[tuple[Any, Any]]:
        """A pooled DBAPI connection and a cursor; driver errors wrapped as SQLAlchemy's."""
        try:
            raw = self.engine.raw_connection()
        except self.dialect.loaded_dbapi.Error as exc:
            Connection._handle_dbapi_exception_noconnection(exc, self.dialect, self.engine)
        try:
            cursor = raw.cursor()
            try:
                yield raw, cursor
            except self.dialect.loaded_dbapi.Error as exc:
                raise self._wrapped(exc, raw, cursor) from exc
            finally:
                if raw.dbapi_connection is not None:
                    with suppress(self.dialect.loaded_dbapi.Error):
                        cursor.close()
        finally:
            raw.close()  # back to the pool (rolled back there if a transaction is open)

    def _wrapped(self, exc: Exception, raw: Any, cursor: Any) -> BaseException:
        """SQLAlchemy's exception for ``exc``; on a lost connection the pool is
        invalidated, as ``Connection`` does."""
        disconnect = bool(self.dialect.is_disconnect(exc, raw.dbapi_connection, cursor))  # type: ignore[arg-type]
        wrapped = DBAPIError.instance(
            None,
            None,
            exc,
            self.dialect.loaded_dbapi.Error,
            hide_parameters=True,
            connection_invalidated=disconnect,
            dialect=self.dialect,
        )
        if disconnect:
            self.engine.pool._invalidate(raw, exc)  # this connection and the others
        return wrapped
