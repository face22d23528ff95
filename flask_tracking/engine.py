"""Database engines for the event store, and how their failures are told apart.

``make_engine`` tunes an engine for ingest: WAL on SQLite, and every wait on the database
bounded by one ``timeout`` (``TRACKING_DB_TIMEOUT``), so that a database that is down,
frozen or locked is answered 503 within about that time instead of holding the request:

================================  ===========================================================
wait                              bound
================================  ===========================================================
pool checkout (all)               ``timeout``
connect (PostgreSQL)              ``max(2, timeout)`` rounded up (libpq's minimum is 2 s)
statement, lock (PostgreSQL)      ``statement_timeout`` and ``lock_timeout`` = ``timeout``
frozen server (PostgreSQL)        the client cuts the socket at ``timeout`` + ``grace(timeout)``
transaction left idle (PG)        ``idle_in_transaction_session_timeout`` = ``idle_limit``
lock held by another writer       SQLite's busy timeout = ``timeout``; :class:`WriteLock`
(SQLite)                          waits at most ``timeout`` for the lock file
================================  ===========================================================

Statements that may rightly run longer (a report over a big table) raise the bound for
their transaction::

    with engine.connect() as conn, statement_timeout(conn, None):  # or seconds
        conn.execute(report)

``is_unavailable`` tells "the database cannot be reached" (answered 503, retried) from
"the database refused this row" (a 4xx for that event); :class:`WriteLock` makes the
writers of all threads and processes on one SQLite file take turns.

Engines are fork-safe: in a forked child (``gunicorn --preload``) the pool starts empty,
so a child never talks through a connection of its parent.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, make_url
from sqlalchemy.exc import (
    DBAPIError,
    InterfaceError,
    InternalError,
    OperationalError,
    StatementError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeout

from .deadline import Watchdog, reset_after_fork
from .errors import StoreUnavailable
from .writelock import WriteLock

__all__ = [
    "TIMEOUT_OPTION",
    "WriteLock",
    "engine_timeout",
    "grace",
    "idle_limit",
    "is_unavailable",
    "make_engine",
    "statement_timeout",
]

#: The engine's execution option holding its ``timeout`` (see ``engine_timeout``).
TIMEOUT_OPTION = "tracking_timeout"


def grace(timeout: float) -> float:
    """How much longer than ``statement_timeout`` the client waits before it cuts: a live
    server cancels first (a clean error, the connection kept); only a frozen one is cut."""
    return max(0.25, timeout / 4)


def idle_limit(timeout: float) -> float:
    """``idle_in_transaction_session_timeout``: frees the locks of a client that stopped
    mid-transaction (killed, frozen) long after any request of ours would have ended."""
    return max(10.0, 10 * timeout)


#: PostgreSQL error classes (the first two characters of SQLSTATE) that blame the row,
#: not the database: data exceptions, integrity violations, program limits exceeded (an
#: index entry over 2,704 bytes). Everything else the driver raises as an operational
#: error (connection, timeouts, locks, disk full, a missing table) is worth a retry.
ROW_ERROR_CLASSES = frozenset({"22", "23", "54"})


def is_unavailable(exc: BaseException) -> bool:
    """A database that cannot be reached, frozen or locked (not a row it cannot hold)."""
    if isinstance(exc, StoreUnavailable | PoolTimeout):
        return True
    if not isinstance(exc, StatementError):
        return False
    sqlstate = getattr(getattr(exc, "orig", None), "sqlstate", None)
    if isinstance(sqlstate, str) and sqlstate[:2] in ROW_ERROR_CLASSES:
        return False
    return isinstance(exc, OperationalError | InterfaceError | InternalError) or (
        exc.connection_invalidated if isinstance(exc, DBAPIError) else False
    )


def engine_timeout(engine: Engine) -> float | None:
    """The bound ``make_engine`` gave the waits of ``engine`` (``None``: not ours)."""
    value = engine.get_execution_options().get(TIMEOUT_OPTION)
    return float(value) if value is not None else None


def make_engine(url: str, *, timeout: float = 1.0, echo: bool = False) -> Engine:
    """An engine tuned for event ingest, each wait bounded by ``timeout`` (module doc)."""
    options = {TIMEOUT_OPTION: timeout}
    if url.startswith("sqlite"):
        # The default pool keeps connections open: no reconnect, PRAGMAs and WAL
        # checkpoint per request.
        engine = create_engine(
            url,
            echo=echo,
            pool_timeout=timeout,
            execution_options=options,
            connect_args={"timeout": timeout, "check_same_thread": False},
        )
        event.listen(engine, "connect", _sqlite_pragmas)
    elif url.startswith("postgresql"):
        engine = create_engine(
            url,
            echo=echo,
            pool_timeout=timeout,
            execution_options=options,
            connect_args=_postgresql_args(url, timeout),
        )
        _bound_postgresql(engine, timeout)
    else:
        engine = create_engine(url, echo=echo, pool_timeout=timeout, execution_options=options)
    # No pre-ping: a dead pooled connection fails its statement, which is answered
    # "unavailable" and invalidates the pool; a round trip per request saved.
    reset_after_fork(engine, _forget_pool)
    return engine


def _forget_pool(engine: Engine) -> None:
    """In a forked child: a new, empty pool. The parent's connections are left alone
    (not closed: closing would end the parent's sessions), as SQLAlchemy advises."""
    engine.dispose(close=False)


def _postgresql_args(url: str, timeout: float) -> dict[str, Any]:
    ms = max(1, round(timeout * 1000))
    server = (
        f"-c statement_timeout={ms} -c lock_timeout={ms}"
        f" -c idle_in_transaction_session_timeout={round(idle_limit(timeout) * 1000)}"
    )
    # Settings in the URL's own ``options`` come later, so they win.
    given = make_url(url).query.get("options")
    if isinstance(given, str) and given.strip():
        server = f"{server} {given}"
    return {"connect_timeout": max(2, math.ceil(timeout)), "options": server}


def _bound_postgresql(engine: Engine, timeout: float) -> None:
    """Connections whose every wait on the server has the watchdog's deadline (psycopg
    3 only: see ``pgdeadline``), ``timeout`` + ``grace(timeout)`` after it began."""
    if engine.dialect.driver != "psycopg":
        return
    from . import pgdeadline  # psycopg is an optional dependency (the postgresql extra)

    watchdog = Watchdog()
    limit = timeout + grace(timeout)

    def connect(dialect: Any, record: Any, cargs: Any, cparams: dict[str, Any]) -> Any:
        return pgdeadline.connect(watchdog, limit, cargs, cparams)

    event.listen(engine, "do_connect", connect)


@contextmanager
def statement_timeout(conn: Connection, seconds: float | None) -> Iterator[Connection]:
    """Let the statements of ``conn``'s current transaction run ``seconds`` (``None``:
    without a bound), instead of ``TRACKING_DB_TIMEOUT``: for a report over a big table.

    On PostgreSQL one more statement (``set_config('statement_timeout', ..., true)``,
    undone by the transaction's end) and the client-side deadline moved; on SQLite
    nothing to do (reads never wait for a writer there).
    """
    dbapi_connection: Any = conn.connection.dbapi_connection
    if conn.dialect.name != "postgresql":
        yield conn
        return
    value = "0" if seconds is None else str(max(1, round(seconds * 1000)))
    conn.exec_driver_sql("SELECT set_config('statement_timeout', %s, true)", (value,))
    before = getattr(dbapi_connection, "tracking_limit", None)
    if before is not None:
        dbapi_connection.tracking_limit = None if seconds is None else seconds + grace(seconds)
    try:
        yield conn
    finally:
        if before is not None:
            dbapi_connection.tracking_limit = before


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    # Checkpoints run in the store's background thread (sqlite_wal), not in a commit.
    cursor.execute("PRAGMA wal_autocheckpoint=0")
    cursor.close()
