"""psycopg 3 connections whose every wait on the server has a client-side deadline.

``statement_timeout`` is enforced by the server; a frozen server enforces nothing. So the
engine's psycopg connections are of :class:`BoundedConnection`, whose cursors arm the
engine's :class:`~flask_tracking.deadline.Watchdog` around each call that waits on the
server (execute, executemany, the fetches and close of a server-side cursor, commit,
rollback, including the pool's rollback on checkin) and disarm it after.

Done at the driver, not with SQLAlchemy events: any Connection event puts SQLAlchemy on
its slower, event-dispatching path for every statement (about 3.5 µs each here), while
an override costs a method call and the watchdog's two dict operations (about 1 µs);
and the driver sees the waits SQLAlchemy does not (server-side cursor fetches, the
dialect's own first queries). Only with psycopg 3 (``postgresql+psycopg://``); other
drivers keep the server-side timeouts.
"""

from __future__ import annotations

import contextlib
from typing import Any

import psycopg

from .deadline import Watchdog


class BoundedConnection(psycopg.Connection[Any]):
    """A psycopg connection whose waits on the server are armed on ``tracking_watchdog``
    for ``tracking_limit`` seconds (``None``: not bounded)."""

    tracking_watchdog: Watchdog | None = None
    tracking_limit: float | None = None

    def commit(self) -> None:
        _bounded(self, super().commit)

    def rollback(self) -> None:
        _bounded(self, super().rollback)


def _bounded(conn: Any, call: Any, *args: Any, **kwargs: Any) -> Any:
    limit, watchdog = conn.tracking_limit, conn.tracking_watchdog
    if limit is None or watchdog is None:
        return call(*args, **kwargs)
    watchdog.arm(conn, limit)
    try:
        return call(*args, **kwargs)
    finally:
        watchdog.disarm(conn)


class BoundedCursor(psycopg.Cursor[Any]):
    def execute(self, *args: Any, **kwargs: Any) -> Any:
        return _bounded(self.connection, super().execute, *args, **kwargs)

    def executemany(self, *args: Any, **kwargs: Any) -> Any:
        return _bounded(self.connection, super().executemany, *args, **kwargs)


class BoundedServerCursor(psycopg.ServerCursor[Any]):
    """A named cursor (``stream_results`` / ``yield_per``): each fetch waits too."""

    def _wait(self, call: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return _bounded(self.connection, call, *args, **kwargs)
        except psycopg.Error:
            if self.connection.closed:  # cut or lost: nothing left to close on the server
                with contextlib.suppress(Exception):
                    psycopg.ServerCursor.close(self)
            raise

    def execute(self, *args: Any, **kwargs: Any) -> Any:
        return self._wait(super().execute, *args, **kwargs)

    def fetchone(self) -> Any:
        return self._wait(super().fetchone)

    def fetchmany(self, *args: Any, **kwargs: Any) -> Any:
        return self._wait(super().fetchmany, *args, **kwargs)

    def fetchall(self) -> Any:
        return self._wait(super().fetchall)

    def scroll(self, *args: Any, **kwargs: Any) -> Any:
        return self._wait(super().scroll, *args, **kwargs)

    def close(self) -> None:
        self._wait(super().close)


def connect(watchdog: Watchdog, limit: float, cargs: Any, cparams: dict[str, Any]) -> Any:
    """A :class:`BoundedConnection` made from the engine's connect arguments."""
    cparams.setdefault("cursor_factory", BoundedCursor)
    conn = BoundedConnection.connect(*cargs, **cparams)
    conn.server_cursor_factory = BoundedServerCursor
    conn.tracking_watchdog = watchdog
    conn.tracking_limit = limit
    return conn
