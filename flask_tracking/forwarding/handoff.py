"""The app's forwarding thread: batches from the storing requests to the queue.

A storing request only writes delivery rows; after its commit the batches are handed to
this thread, never to Redis from the request. The thread gathers small batches (an
``emit()`` stores one event) for up to ``TRACKING_FORWARD_LINGER`` seconds into bigger
ones, then hands them over. Without Redis it also runs the tasks of the in-process queue
and sweeps every ``TRACKING_FORWARD_SWEEP_INTERVAL`` seconds.

The thread is per process: in a forked child (gunicorn workers) everything starts over,
since the parent's thread and locks are not the child's.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from flask import Flask

from ..redact import REDACTING
from .batches import Batch, Plan
from .dispatch import DispatchUnavailable
from .inprocess import InProcessQueue, Task
from .settings import ForwardSettings

logger = logging.getLogger(__name__)
logger.addFilter(REDACTING)

#: Longest sleep of an idle thread.
IDLE_WAIT = 60.0


class Handoff:
    """The forwarding thread of one app.

    :param batch_sizes: destination name -> events per batch.
    :param dispatch: hands batches to the queue (gathered ones get their job id there).
    :param run_task: runs one in-process task (without Redis).
    :param sweep: sweeps (without Redis).
    """

    def __init__(
        self,
        app: Flask,
        settings: ForwardSettings,
        batch_sizes: Mapping[str, int],
        *,
        in_process: bool,
        dispatch: Callable[[Sequence[Batch]], None],
        run_task: Callable[[Task], None],
        sweep: Callable[[], Any],
    ) -> None:
        self.app = app
        self.settings = settings
        self.batch_sizes = batch_sizes
        self._dispatch = dispatch
        self._run_task = run_task
        self._sweep = sweep
        self._in_process = in_process
        self.inprocess: InProcessQueue | None = InProcessQueue(self.wake) if in_process else None
        self._pid = os.getpid()
        self._cond = threading.Condition()
        self._ready: list[Batch] = []
        self._gathered: dict[str, list[int]] = {}
        self._gathered_at: dict[str, float] = {}
        self._thread: threading.Thread | None = None
        self.closed = False
        self._next_sweep = 0.0

    def add(self, plan: Plan) -> None:
        """Take the batches of a committed transaction (never waits for Redis)."""
        self.check_fork()
        with self._cond:
            self._ready.extend(plan.batches)
            now = time.monotonic()
            for name, pks in plan.leftovers.items():
                self._gathered.setdefault(name, []).extend(pks)
                self._gathered_at.setdefault(name, now)
            self._start_locked()
            self._cond.notify()

    def ensure_started(self) -> None:
        """Start the thread if it is not running (without Redis it also sweeps)."""
        if self.closed:
            return
        self.check_fork()
        if self._thread is not None and self._thread.is_alive():
            return
        with self._cond:
            self._start_locked()

    def _start_locked(self) -> None:
        if self.closed or (self._thread is not None and self._thread.is_alive()):
            return
        self._thread = threading.Thread(
            target=self._run, name=f"tracking-forwarding-{self.settings.queue}", daemon=True
        )
        self._thread.start()

    @property
    def pid(self) -> int:
        """The process the thread belongs to."""
        return self._pid

    def check_fork(self) -> None:
        """In a forked child, start over: the parent's thread and locks are not ours."""
        if self._pid == os.getpid():
            return
        self._pid = os.getpid()
        self._cond = threading.Condition()
        self._ready, self._gathered, self._gathered_at = [], {}, {}
        self._thread = None
        if self._in_process:
            self.inprocess = InProcessQueue(self.wake)

    def wake(self) -> None:
        with self._cond:
            self._cond.notify()

    def _run(self) -> None:
        pid = os.getpid()
        while True:
            with self._cond:
                while True:
                    if self.closed or pid != self._pid:
                        return
                    now = time.monotonic()
                    batches = self._take(now, force=False)
                    task = self.inprocess.pop_due(now) if self.inprocess is not None else None
                    sweep = self.inprocess is not None and now >= self._next_sweep
                    if batches or task is not None or sweep:
                        break
                    self._cond.wait(self._idle_wait(now))
            if batches:
                self._guarded(self._dispatch, batches)
            if task is not None:
                self._guarded(self._run_task, task)
            if sweep:
                self._next_sweep = time.monotonic() + self.settings.sweep_interval
                self._guarded(self._sweep)

    def _guarded(self, func: Callable[..., Any], *args: Any) -> None:
        try:
            with self.app.app_context():
                func(*args)
        except DispatchUnavailable:
            pass  # logged by the dispatcher; the sweeper picks the rows up later
        except Exception:
            logger.exception(
                "Forwarding: %s failed; the sweeper will retry.",
                getattr(func, "__name__", "a step"),
            )

    def _idle_wait(self, now: float) -> float:
        deadlines = [at + self.settings.linger for at in self._gathered_at.values()]
        if self.inprocess is not None:
            deadlines.append(self._next_sweep)
            due = self.inprocess.next_due()
            if due is not None:
                deadlines.append(due)
        if not deadlines:
            return IDLE_WAIT
        return min(IDLE_WAIT, max(0.005, min(deadlines) - now))

    def _take(self, now: float, *, force: bool) -> list[Batch]:
        """Batches ready to go (under the lock): full ones, and those that waited enough."""
        out, self._ready = self._ready, []
        for name in list(self._gathered):
            pks = self._gathered[name]
            size = self.batch_sizes[name]
            while len(pks) >= size:
                out.append(Batch(None, name, pks[:size]))
                pks = pks[size:]
            if pks and (force or now - self._gathered_at[name] >= self.settings.linger):
                out.append(Batch(None, name, pks))
                pks = []
            if pks:
                self._gathered[name] = pks
            else:
                del self._gathered[name]
                del self._gathered_at[name]
        return out

    def take_all(self) -> list[Batch]:
        """Every waiting batch, gathered ones too (for a flush in the caller's thread)."""
        self.check_fork()
        with self._cond:
            return self._take(time.monotonic(), force=True)

    def close(self) -> None:
        """Stop the thread (waiting batches are left to the sweeper)."""
        with self._cond:
            self.closed = True
            self._cond.notify_all()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=10)
