"""Client-side deadlines for database waits, and state that must be reset after a fork.

A PostgreSQL whose processes are stopped (SIGSTOP, a hung VM, a frozen container) still
has a kernel that accepts and acknowledges TCP: a client waits for an answer that never
comes, and ``statement_timeout`` cannot help, since the server is what would enforce it.
:class:`Watchdog` is the client's own deadline: a statement is *armed* when it starts
and *disarmed* when it ends; if it is still waiting on the server past its deadline,
the watchdog thread shuts the connection's socket down. The waiting driver call then
fails at once with a disconnect error, which ``engine.is_unavailable`` recognises, so
the request is answered 503 instead of hanging.

Arming and disarming cost a dict operation each, about 1 µs together with the calls
(no lock; a thread wake-up only when the watchdog was idle); the thread sleeps until the
earliest deadline (at most ``MAX_SLEEP``) and parks after ``PARK_AFTER`` with nothing
armed.

:func:`reset_after_fork` registers objects whose locks, threads or pooled connections
must not be shared by a forked child (``gunicorn --preload``, multiprocessing): their
reset runs in the child, before any other thread of it exists.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: libpq's PQTRANS_ACTIVE: a command was sent and its answer has not arrived yet.
_PQTRANS_ACTIVE = 1
#: Longest sleep of the watchdog thread while statements are armed (new, shorter
#: deadlines are noticed within this).
MAX_SLEEP = 0.1
#: Seconds without anything armed after which the watchdog thread parks (waits to be
#: woken by the next arm): while statements keep coming, arming never wakes it.
PARK_AFTER = 1.0
#: Seconds parked after which the watchdog thread ends (the next arm
#: starts another), so that engines that are no longer used leave no thread behind.
IDLE_EXIT = 30.0


#: Objects to reset in a forked child, with how. Process-wide by nature: a fork copies
#: every object of the process, so the registry of what to reset is process-wide too.
#: Held weakly: an engine or lock that is gone needs no reset.
_FORK_AWARE: weakref.WeakKeyDictionary[Any, Callable[[Any], None]] = weakref.WeakKeyDictionary()
_FORK_HOOK: list[bool] = []


def reset_after_fork(obj: T, reset: Callable[[T], None]) -> None:
    """Run ``reset(obj)`` in every child forked from now on, while ``obj`` lives.

    ``reset`` must not hold ``obj`` itself (it is given it), or ``obj`` would never go.
    """
    if not _FORK_HOOK:
        _FORK_HOOK.append(True)
        os.register_at_fork(after_in_child=_after_fork_in_child)
    _FORK_AWARE[obj] = reset


def _after_fork_in_child() -> None:
    for obj, reset in list(_FORK_AWARE.items()):
        try:
            reset(obj)
        except Exception:  # a child must start even if one reset failed
            logger.exception("Resetting %r after fork failed.", obj)


def waiting_on_server(dbapi_connection: Any) -> bool:
    """Whether a libpq connection (psycopg 3 or psycopg2) is waiting for an answer."""
    info = getattr(dbapi_connection, "info", None)
    try:
        return bool(info is not None and info.transaction_status == _PQTRANS_ACTIVE)
    except Exception:  # closed under our feet
        return False


def cut(dbapi_connection: Any) -> bool:
    """Shut the socket of a DBAPI connection down; its waiting call fails at once."""
    try:
        fd = dbapi_connection.fileno()
        sock = socket.socket(fileno=os.dup(fd))
    except Exception:  # already closed
        return False
    with contextlib.closing(sock), contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
        return True
    return False


class Watchdog:
    """Cuts the connections still waiting on the server past their deadline.

    ``arm(conn, seconds)`` before a wait, ``disarm(conn)`` after it, always paired (in a
    ``finally``). Both are plain dict operations, atomic under the GIL: no lock on the
    hot path. Only the caller removes its entry; the watchdog only reads them, and cuts a
    connection found past its deadline if it is still waiting on the server (libpq's
    transaction status is ACTIVE; a cut connection is not, so it is cut once).
    One thread per watchdog and process, started on the first arm, parked when idle.
    """

    def __init__(self, name: str = "tracking-db-watchdog") -> None:
        self.name = name
        #: How many connections this process cut (for tests and logs).
        self.cuts = 0
        self._reset()
        reset_after_fork(self, Watchdog._reset)

    def _reset(self) -> None:
        """Fresh state (also in a forked child: the parent's thread, lock and entries are
        not the child's)."""
        self._lock = threading.Lock()  # starts and ends the thread
        #: id(connection) -> (deadline, connection)
        self._armed: dict[int, tuple[float, Any]] = {}
        self._busy = threading.Event()
        self._thread: threading.Thread | None = None

    def arm(self, dbapi_connection: Any, seconds: float) -> None:
        self._armed[id(dbapi_connection)] = (time.monotonic() + seconds, dbapi_connection)
        if not self._busy.is_set():
            self._wake()

    def disarm(self, dbapi_connection: Any) -> None:
        self._armed.pop(id(dbapi_connection), None)

    def _wake(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
                self._thread.start()
            self._busy.set()

    def _run(self) -> None:
        empty_since: float | None = None
        while True:
            now = time.monotonic()
            if self._armed:
                empty_since = None
            elif empty_since is None:
                empty_since = now
            elif now - empty_since >= PARK_AFTER:  # quiet: park, so arms must wake us
                empty_since = None
                self._busy.clear()
                if self._armed:  # armed meanwhile, maybe seeing "busy" before the clear
                    self._busy.set()
                elif self._busy.wait(IDLE_EXIT):
                    continue
                else:
                    with self._lock:
                        if not self._armed and not self._busy.is_set():
                            self._thread = None
                            return
                    continue
            earliest = now + MAX_SLEEP
            for deadline, conn in list(self._armed.values()):
                if deadline > now:
                    earliest = min(earliest, deadline)
                elif waiting_on_server(conn) and cut(conn):
                    self.cuts += 1
                    logger.warning(
                        "The database did not answer within its deadline"
                        " (TRACKING_DB_TIMEOUT); the connection was cut."
                    )
            time.sleep(max(0.0, earliest - time.monotonic()))
