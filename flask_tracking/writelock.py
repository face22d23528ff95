"""The SQLite write lock: writers of all threads and processes on one file take turns.

SQLite has one writer at a time. Left to itself, a writer that finds the database busy
sleeps in SQLite's busy handler (up to 100 ms a try), which makes p99 latency soar; here
writers queue instead: the threads of a process behind a lock, the processes behind an
exclusive ``flock`` on ``<database>.write-lock``, a wait the kernel ends the moment the
lock is released. Each wait is bounded (``TRACKING_DB_TIMEOUT``): a lock file held by a
stuck process is answered 503, not a request hung for ever.

A thread cannot give up a blocking ``flock``, so a wait for another process happens in
a helper thread (one per lock and process) that hands the lock over, or gives it back at
once when the caller has stopped waiting. A free lock is taken without it. Retrying a
non-blocking ``flock`` with sleeps instead was measured: 10-20% fewer writes per second
under contention and twice the p99 (the sleeper misses its turn); the helper's handover
costs two thread wake-ups, not visible in the ingest bench.
"""

from __future__ import annotations

import fcntl
import os
import queue
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress

from .deadline import reset_after_fork
from .errors import StoreUnavailable


class WriteLock:
    """Writers take turns: one thread of this process, and one process per file.

    An exclusive ``flock`` on ``path`` (none when ``path`` is ``None``, e.g. an in-memory
    database) behind a lock of this process's threads. Waiting for both takes at most
    ``timeout`` seconds (``None``: no bound); then :class:`StoreUnavailable` is raised,
    which ingest answers 503. The lock is taken without waiting when it is free; a wait
    for another process happens in the kernel (in a helper thread, so that it can be
    given up), which hands the lock over as soon as it is released.
    """

    def __init__(self, path: str | None, timeout: float | None = None) -> None:
        self.path = path
        self.timeout = timeout
        self._reset()
        reset_after_fork(self, WriteLock._reset)

    def _reset(self) -> None:
        """Fresh state (also in a forked child: a lock held by a thread of the parent
        would never be released in the child; the child opens its own descriptors)."""
        fd: int | None = getattr(self, "_fd", None)
        waiter: _FlockWaiter | None = getattr(self, "_waiter", None)
        for inherited in (fd, waiter.fd if waiter is not None else None):
            if inherited is not None:  # closing the child's copy keeps the parent's lock
                _close(inherited)
        self._threads = threading.Lock()
        self._fd: int | None = None
        self._opened = False
        self._waiter: _FlockWaiter | None = None
        #: Whether the lock now held was handed over by the waiter (under ``_threads``).
        self._from_waiter = False

    @contextmanager
    def held(self) -> Iterator[None]:
        timeout = self.timeout
        deadline = None if timeout is None else time.monotonic() + timeout
        if not self._threads.acquire(timeout=-1 if timeout is None else timeout):
            raise StoreUnavailable(
                f"Other threads of this process kept the SQLite write lock for over"
                f" {timeout:g} s (TRACKING_DB_TIMEOUT); nothing was stored. Retry later."
            )
        try:
            fd = self._take_file(deadline)
            try:
                yield
            finally:
                if self._from_waiter and self._waiter is not None:
                    self._waiter.release()
                elif fd is not None:
                    fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            self._threads.release()

    def _take_file(self, deadline: float | None) -> int | None:
        """The descriptor now holding the file lock (``None``: no lock file)."""
        self._from_waiter = False
        fd = self._descriptor()
        if fd is None:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            pass
        if deadline is None:
            fcntl.flock(fd, fcntl.LOCK_EX)
            return fd
        assert self.path is not None
        while True:
            if self._waiter is None or self._waiter.closed:
                self._waiter = _FlockWaiter(self.path)
            try:
                held = self._waiter.take(deadline)
                break
            except _WaiterClosed:
                continue
        if held is None:
            raise StoreUnavailable(
                f"Another process has held the SQLite write lock {self.path} for over"
                f" {self.timeout:g} s (TRACKING_DB_TIMEOUT); nothing was stored. Retry"
                f" later; if it lasts, look for a stuck process (fuser {self.path})."
            )
        self._from_waiter = True
        return held

    def _descriptor(self) -> int | None:
        if self.path is None:
            return None
        if not self._opened:
            self._opened = True
            try:
                self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            except OSError:  # e.g. a read-only folder: SQLite's own locking still applies
                self._fd = None
        return self._fd


class _WaiterClosed(Exception):
    """The waiter's thread ended (idle) just before the caller asked: use a new one."""


_WAITING, _GRANTED, _ABANDONED, _FAILED = range(4)


class _Ticket:
    """One wait for the file lock. ``grant`` is taken at birth and released by the
    waiter thread when the lock is the caller's (or failed): a bare lock, the cheapest
    handover between two threads. ``state`` changes under the waiter's lock."""

    __slots__ = ("error", "grant", "state")

    def __init__(self) -> None:
        self.grant = threading.Lock()
        self.grant.acquire()
        self.state = _WAITING
        self.error: OSError | None = None


class _FlockWaiter:
    """A thread that waits in ``flock`` on a descriptor of its own, for one caller at a
    time (the callers are serialised by ``WriteLock``'s thread lock), and hands the lock
    over; a lock obtained for a caller who gave up is released at once."""

    #: Seconds without a wait after which the thread ends and closes its descriptor.
    IDLE_EXIT = 30.0

    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        self.closed = False
        self._holding = False
        self._tickets: queue.SimpleQueue[_Ticket] = queue.SimpleQueue()
        self._lock = threading.Lock()
        threading.Thread(target=self._run, name="tracking-write-lock", daemon=True).start()

    def take(self, deadline: float) -> int | None:
        """``self.fd``, now holding the lock; ``None`` if the deadline passed first."""
        ticket = _Ticket()
        with self._lock:
            if self.closed:
                raise _WaiterClosed
            self._tickets.put(ticket)
        ticket.grant.acquire(timeout=max(0.0, deadline - time.monotonic()))
        with self._lock:
            if ticket.state == _WAITING:
                ticket.state = _ABANDONED
                return None
        if ticket.error is not None:
            raise ticket.error
        return self.fd

    def release(self) -> None:
        with self._lock:
            self._holding = False
            fcntl.flock(self.fd, fcntl.LOCK_UN)

    def _run(self) -> None:
        while True:
            try:
                ticket = self._tickets.get(timeout=self.IDLE_EXIT)
            except queue.Empty:
                with self._lock:
                    if self._tickets.empty() and not self._holding:
                        self.closed = True
                        _close(self.fd)
                        return
                continue
            if ticket.state == _ABANDONED:
                continue
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX)
            except OSError as exc:
                with self._lock:
                    ticket.error, ticket.state = exc, _FAILED
                ticket.grant.release()
                continue
            with self._lock:
                if ticket.state == _ABANDONED:
                    fcntl.flock(self.fd, fcntl.LOCK_UN)
                    continue
                ticket.state = _GRANTED
                self._holding = True
            ticket.grant.release()


def _close(fd: int) -> None:
    with suppress(OSError):
        os.close(fd)
