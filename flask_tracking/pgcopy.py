"""The bulk insert of an import on PostgreSQL: ``COPY``, not ``INSERT``.

``SqlStore.insert_many`` (tracking-log import) comes here on PostgreSQL with psycopg 3
when no hook needs the new ids. One transaction per chunk, as before:

1. the failed rows of the chunk (a plain ``INSERT``);
2. **plain table**: the events are copied straight into ``tracking_events`` inside a
   savepoint, in the order of their ids (``COPY`` is what the server writes fastest:
   no JSON parsed, no ``ON CONFLICT`` probe per row). When an id was stored before (a
   file imported again, a concurrent writer), ``COPY`` fails on the unique index and
   stores nothing: the savepoint is rolled back and the chunk goes the safe way, step 3;
3. **safe way** (and always on a partitioned table): ``COPY`` into a temporary table of
   the transaction, then one ``INSERT ... SELECT ... ON CONFLICT (event_id) DO NOTHING``
   (partitioned: the ids into ``tracking_event_ids`` first, only the rows whose id went
   in inserted, as ``partitions.partitioned_insert`` does), in the order of the ids.

Both ways take the ids in one order (code points: ``COLLATE "C"``, as Python sorts), so
two chunks stored at once (``flask tracking import --jobs``) with ids in common wait on
each other in the same order, never in a deadlock: PostgreSQL would see one only after
``deadlock_timeout`` (1 s), when the statement timeout (``TRACKING_DB_TIMEOUT``, 1 s by
default) has already cut the ``COPY`` short, and the import would stop as if the
database were unavailable. A straight ``COPY`` caught in a deadlock with another writer
(``40P01``) takes the safe way too.

The rows are ``rows.sqlite_values`` (the columns named in its order,
``rows.SQLITE_COLUMNS``): the values the other inserts send (``rows.pg_batch`` holds the
same ones), times as naive UTC text, the JSON columns as ``limits.check`` encoded them,
the context columns as their text, all of which ``COPY``'s text format reads as they
are. Any other error is raised wrapped as SQLAlchemy's (``DBAPIError``, the pool
invalidated on a lost connection): the store then takes its usual path
(``SqlStore.write``: a refused row refused alone, "unavailable" raised).
Every wait is bound by the server's ``statement_timeout`` and, with psycopg 3, by the
engine's watchdog (``pgdeadline.py``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Final

from sqlalchemy import Connection, insert
from sqlalchemy.exc import DBAPIError

from .models import failed_table
from .partitions import IDS, Partitions
from .rows import SQLITE_COLUMNS, Encoded, sqlite_values

#: The columns copied (every column but the serial ``id``), in the order of the values.
_NAMES: Final = ", ".join(SQLITE_COLUMNS)
STAGE = "tracking_import_stage"
#: An id stored before; two chunks stored at once (``--jobs``) waiting on each other's ids.
_UNIQUE_VIOLATION: Final = "23505"
DEADLOCK: Final = "40P01"
#: The order both ways insert the ids in: Python's (code points), whatever the collation.
_ID_ORDER: Final = 'event_id COLLATE "C"'
_STRAIGHT: Final = f"COPY tracking_events ({_NAMES}) FROM STDIN"
_STAGED: Final = f"COPY {STAGE} ({_NAMES}) FROM STDIN"
_MAKE_STAGE: Final = (
    f"CREATE TEMPORARY TABLE {STAGE} ON COMMIT DROP"
    f" AS SELECT {_NAMES} FROM tracking_events WITH NO DATA"
)
_FROM_STAGE: Final = (
    f"INSERT INTO tracking_events ({_NAMES}) SELECT {_NAMES} FROM {STAGE}"
    f" ORDER BY {_ID_ORDER} ON CONFLICT (event_id) DO NOTHING"
)
_FROM_STAGE_PARTITIONED: Final = (
    f"WITH ids AS (INSERT INTO {IDS} (event_id, time) SELECT event_id, time FROM {STAGE}"
    f" ORDER BY {_ID_ORDER} ON CONFLICT (event_id) DO NOTHING RETURNING event_id)"
    f" INSERT INTO tracking_events ({_NAMES})"
    f" SELECT {', '.join(f's.{name}' for name in SQLITE_COLUMNS)}"
    f" FROM {STAGE} s JOIN ids USING (event_id)"
)

#: ``(event, its JSON columns as limits.check encoded them)``, ids unique.
Pair = tuple[Mapping[str, Any], Encoded | None]


def usable(conn: Connection) -> bool:
    """Whether ``conn``'s driver can ``COPY`` here (psycopg 3, an optional dependency:
    not imported here)."""
    return conn.dialect.name == "postgresql" and conn.dialect.driver == "psycopg"


def copy_insert(
    conn: Connection,
    pairs: Sequence[Pair],
    failures: Sequence[Mapping[str, Any]],
    partitions: Partitions | None,
) -> int:
    """Store ``pairs`` and ``failures`` in ``conn``'s transaction; how many events were new.

    Raises ``DBAPIError`` (SQLAlchemy's) for what the database refused."""
    if partitions is not None and pairs:
        partitions.ensure(conn, (event["time"] for event, _ in pairs))
    if failures:
        conn.execute(insert(failed_table), list(failures))
    if not pairs:
        return 0
    ordered = sorted(pairs, key=lambda pair: pair[0]["event_id"])  # no deadlock: see above
    rows = [sqlite_values(event, encoded) for event, encoded in ordered]
    driver: Any = conn.connection.driver_connection
    with _wrapped(conn), driver.cursor() as cursor:
        if partitions is None:
            cursor.execute("SAVEPOINT tracking_copy")
            try:
                _copy(cursor, _STRAIGHT, rows)
            except conn.dialect.loaded_dbapi.Error as exc:
                if getattr(exc, "sqlstate", None) not in (_UNIQUE_VIOLATION, DEADLOCK):
                    raise
                cursor.execute("ROLLBACK TO SAVEPOINT tracking_copy")
            else:
                cursor.execute("RELEASE SAVEPOINT tracking_copy")
                return len(rows)
        cursor.execute(_MAKE_STAGE)
        _copy(cursor, _STAGED, rows)
        cursor.execute(_FROM_STAGE if partitions is None else _FROM_STAGE_PARTITIONED)
        stored = cursor.rowcount
        cursor.execute(f"DROP TABLE {STAGE}")  # a second chunk in this transaction
        return max(stored, 0)


def _copy(cursor: Any, sql: str, rows: Sequence[tuple[Any, ...]]) -> None:
    with _bounded(cursor.connection), cursor.copy(sql) as copy:
        write = copy.write_row
        for row in rows:
            write(row)


@contextmanager
def _bounded(driver: Any) -> Iterator[None]:
    """The watchdog armed for one ``COPY`` (the cursor's ``execute`` arms itself:
    ``pgdeadline.py``)."""
    watchdog, limit = (
        getattr(driver, "tracking_watchdog", None),
        getattr(driver, "tracking_limit", None),
    )
    if watchdog is None or limit is None:
        yield
        return
    watchdog.arm(driver, limit)
    try:
        yield
    finally:
        watchdog.disarm(driver)


@contextmanager
def _wrapped(conn: Connection) -> Iterator[None]:
    """psycopg's errors raised as SQLAlchemy's; a lost connection invalidated."""
    try:
        yield
    except conn.dialect.loaded_dbapi.Error as exc:
        dialect = conn.dialect
        # psycopg's dialect: a closed or broken connection (what SQLAlchemy itself asks).
        disconnect = bool(dialect.is_disconnect(exc, conn.connection.dbapi_connection, None))
        if disconnect:
            conn.invalidate(exc)
        raise DBAPIError.instance(
            None,
            None,
            exc,
            dialect.loaded_dbapi.Error,
            hide_parameters=True,
            connection_invalidated=disconnect,
            dialect=dialect,
        ) from exc


def deadlocked(exc: BaseException) -> bool:
    """Whether ``exc`` is PostgreSQL's deadlock (this transaction was the one cancelled)."""
    return getattr(getattr(exc, "orig", None), "sqlstate", None) == DEADLOCK
