"""Database engines for the event store, and how their failures are told apart.

``make_engine`` tunes an engine for ingest (WAL on SQLite, short timeouts);
``is_unavailable`` tells "the database cannot be reached" (answered 503, retried) from
"the database refused this row" (a 4xx for that event); :class:`WriteLock` makes the
writers of all processes on one SQLite file take turns.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import (
    DBAPIError,
    InterfaceError,
    InternalError,
    OperationalError,
    StatementError,
)


def is_unavailable(exc: StatementError) -> bool:
    """A database that cannot be reached (as opposed to a row it cannot hold)."""
    return isinstance(exc, OperationalError | InterfaceError | InternalError) or (
        exc.connection_invalidated if isinstance(exc, DBAPIError) else False
    )


def make_engine(url: str, *, timeout: float = 1.0, echo: bool = False) -> Engine:
    """An engine tuned for event ingest: WAL on SQLite, short connect timeouts."""
    if url.startswith("sqlite"):
        # The default pool keeps connections open: no reconnect, PRAGMAs and WAL
        # checkpoint per request.
        engine = create_engine(
            url, echo=echo, connect_args={"timeout": 30, "check_same_thread": False}
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    connect_args: dict[str, Any] = {}
    if url.startswith("postgresql"):
        connect_args["connect_timeout"] = max(1, round(timeout))
    # No pre-ping: a dead pooled connection fails its statement, which is answered
    # "unavailable" and invalidates the pool; a round trip per request saved.
    return create_engine(url, echo=echo, pool_timeout=timeout, connect_args=connect_args)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    # Checkpoints run in the store's background thread (sqlite_wal), not in a commit.
    cursor.execute("PRAGMA wal_autocheckpoint=0")
    cursor.close()


class WriteLock:
    """An exclusive ``flock`` on a file, opened once per process (after any fork)."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        self._fd: int | None = None
        self._pid = 0

    @contextmanager
    def held(self) -> Iterator[None]:
        fd = self._descriptor()
        if fd is None:
            yield
            return
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)

    def _descriptor(self) -> int | None:
        if self.path is None:
            return None
        if self._pid != os.getpid():
            try:
                self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            except OSError:  # e.g. a read-only folder: SQLite's own locking still applies
                self._fd = None
            self._pid = os.getpid()
        return self._fd
