"""Forwarding stored events to other services: an outbox delivered by RQ (or a thread).

An event is stored first; the same transaction writes one ``tracking_deliveries`` row per
destination whose routing rules it matches. After the commit, batches of row ids become
jobs: RQ jobs run by ``flask tracking worker`` when ``TRACKING_REDIS_URL`` is set, else
tasks of the app's own forwarding thread. A job claims its rows, sends them, and records
the result; retries back off exponentially; a sweeper hands out rows that no live job
holds (Redis was down, a worker died, a job was lost), and ``flask tracking forward
--failed`` re-drives dead letters. See ``docs/forwarding.md``.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import re
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from flask import Flask, current_app
from sqlalchemy import Connection, Engine

from ..errors import ConfigError
from .destinations import (
    DeliveryError,
    Destination,
    EmailDestination,
    LogDestination,
    OutgoingEvent,
    PermanentError,
    RetryableError,
    SlackDestination,
    Target,
    WebhookDestination,
    load_targets,
    register_kind,
)
from .jobs import Dispatcher, DispatchUnavailable, InProcessQueue, RqDispatcher, Task
from .models import DELIVERED, FAILED, PENDING, Delivery, deliveries_table
from .outbox import Batch, Outbox, Outcome, Plan, chunks, utcnow
from .routing import Route

if TYPE_CHECKING:
    from ..config import TrackingConfig
    from ..store import SqlStore

__all__ = [
    "DELIVERED",
    "FAILED",
    "PENDING",
    "Delivery",
    "DeliveryError",
    "Destination",
    "EmailDestination",
    "ForwardSettings",
    "Forwarder",
    "LogDestination",
    "OutgoingEvent",
    "PermanentError",
    "RetryableError",
    "Route",
    "SlackDestination",
    "WebhookDestination",
    "deliveries_table",
    "get_forwarder",
    "register_kind",
    "setup_forwarding",
]

logger = logging.getLogger(__name__)

#: Where the forwarder lives in ``app.extensions``.
EXTENSION_KEY = "tracking.forwarding"
#: Most rows one sweep hands out.
SWEEP_LIMIT = 100_000
#: Seconds a row must have been due before a sweep takes it.
SETTLE_SECONDS = 1.0
_QUEUE_NAME = re.compile(r"^[A-Za-z0-9_.:-]{1,80}$")


@dataclass(frozen=True, slots=True)
class ForwardSettings:
    """The ``TRACKING_FORWARD_*`` settings (and ``TRACKING_REDIS_URL``)."""

    redis_url: str | None
    queue: str = "tracking-forward"
    #: Seconds a job may run (RQ kills it after); a claim's lease is a bit longer.
    job_timeout: int = 60
    #: Seconds between sweeps (worker, or the forwarding thread without Redis).
    sweep_interval: float = 10.0
    #: Seconds the producer waits to gather small batches into bigger jobs (0: never).
    linger: float = 0.5

    @property
    def lease(self) -> float:
        """Seconds a claim holds: longer than any job may run."""
        return self.job_timeout + 5.0

    @property
    def grace(self) -> float:
        """Age after which a row that never got a job is an orphan."""
        return max(2.0, 2 * self.sweep_interval, 10 * self.linger)


def load_settings(config: Any) -> ForwardSettings:
    """Read and check the forwarding settings of a ``TrackingConfig``."""
    queue = getattr(config, "forward_queue", "tracking-forward")
    if not isinstance(queue, str) or not _QUEUE_NAME.match(queue):
        raise ConfigError(
            "TRACKING_FORWARD_QUEUE must be a queue name of letters, digits and '_.:-'"
            f" (at most 80), not {queue!r}."
        )
    job_timeout = getattr(config, "forward_job_timeout", 60)
    if isinstance(job_timeout, bool) or not isinstance(job_timeout, int) or job_timeout < 1:
        raise ConfigError(
            f"TRACKING_FORWARD_JOB_TIMEOUT must be a whole number of seconds >= 1,"
            f" not {job_timeout!r}."
        )
    interval = _seconds(config, "forward_sweep_interval", "TRACKING_FORWARD_SWEEP_INTERVAL", 10.0)
    if interval < 0.1:
        raise ConfigError(
            f"TRACKING_FORWARD_SWEEP_INTERVAL must be at least 0.1 seconds, not {interval!r}."
        )
    linger = _seconds(config, "forward_linger", "TRACKING_FORWARD_LINGER", 0.5)
    redis_url = getattr(config, "redis_url", None) or None
    if redis_url is not None and not (
        isinstance(redis_url, str) and redis_url.startswith(("redis://", "rediss://", "unix://"))
    ):
        raise ConfigError(
            "TRACKING_REDIS_URL must look like 'redis://host:6379/0' (or None to forward"
            f" in-process), not {redis_url!r}."
        )
    return ForwardSettings(redis_url, queue, job_timeout, interval, linger)


def _seconds(config: Any, attr: str, key: str, default: float) -> float:
    value = getattr(config, attr, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ConfigError(f"{key} must be a number of seconds >= 0, not {value!r}.")
    return float(value)


class Forwarder:
    """Forwarding for one app: the outbox, the destinations and the queue.

    Built by :func:`setup_forwarding` (from ``Tracking.init_app``); find it with
    :func:`get_forwarder`.
    """

    def __init__(
        self, app: Flask, engine: Engine, settings: ForwardSettings, targets: dict[str, Target]
    ) -> None:
        self.app = app
        self.settings = settings
        self.targets = targets
        self._job_prefix = re.sub(r"[^A-Za-z0-9_-]", "_", settings.queue)
        self.outbox = Outbox(
            engine,
            targets,
            lease=settings.lease,
            gather=settings.linger > 0,
            new_job_id=self.new_job_id,
        )
        self.inprocess: InProcessQueue | None = None
        self.dispatcher: Dispatcher
        if settings.redis_url:
            self.dispatcher = RqDispatcher(
                settings.redis_url,
                settings.queue,
                job_timeout=settings.job_timeout,
                lease=settings.lease,
                backoff=lambda name: list(self.targets[name].backoff),
            )
        else:
            self.inprocess = InProcessQueue(self._wake)
            self.dispatcher = self.inprocess
        self._pid = os.getpid()
        self._local = threading.local()
        self._cond = threading.Condition()
        self._ready: list[Batch] = []
        self._gathered: dict[str, list[int]] = {}
        self._gathered_at: dict[str, float] = {}
        self._thread: threading.Thread | None = None
        self._closed = False
        self._next_sweep = 0.0
        self._unknown_warned: set[str] = set()
        if settings.redis_url:
            atexit.register(_flush_at_exit, weakref.ref(self))

    def __repr__(self) -> str:
        mode = f"RQ queue {self.settings.queue!r}" if self.settings.redis_url else "in-process"
        return f"<Forwarder {mode} to {', '.join(self.targets) or 'nowhere'}>"

    @property
    def uses_rq(self) -> bool:
        return self.settings.redis_url is not None

    def new_job_id(self) -> str:
        return f"{self._job_prefix}-{uuid.uuid4().hex}"

    # -- store hooks ---------------------------------------------------------------------

    def on_insert(self, conn: Connection, event_ids: list[str]) -> None:
        """Insert hook: route the new events and write their delivery rows."""
        self._local.plan = self.outbox.plan(conn, event_ids)

    def on_commit(self, event_ids: list[str]) -> None:
        """Commit hook: hand the batches over (never raises, never waits for Redis)."""
        plan: Plan | None = getattr(self._local, "plan", None)
        self._local.plan = None
        if plan is None or plan.event_ids != frozenset(event_ids):
            logger.warning(
                "Forwarding found no routing plan for %d stored events; the sweeper"
                " will hand their deliveries out.",
                len(event_ids),
            )
            return
        if not plan.batches and not plan.leftovers:
            return
        self._check_fork()
        with self._cond:
            self._ready.extend(plan.batches)
            now = time.monotonic()
            for name, pks in plan.leftovers.items():
                self._gathered.setdefault(name, []).extend(pks)
                self._gathered_at.setdefault(name, now)
            self._start_locked()
            self._cond.notify()

    # -- the forwarding thread --------------------------------------------------------------

    def ensure_started(self) -> None:
        """Start the forwarding thread if it is not running (without Redis it also sweeps)."""
        if self._closed:
            return
        self._check_fork()
        if self._thread is not None and self._thread.is_alive():
            return
        with self._cond:
            self._start_locked()

    def _start_locked(self) -> None:
        if self._closed or (self._thread is not None and self._thread.is_alive()):
            return
        self._thread = threading.Thread(
            target=self._run, name=f"tracking-forwarding-{self.settings.queue}", daemon=True
        )
        self._thread.start()

    def _check_fork(self) -> None:
        """In a forked child, start over: the parent's thread and locks are not ours."""
        if self._pid == os.getpid():
            return
        self._pid = os.getpid()
        self._cond = threading.Condition()
        self._ready, self._gathered, self._gathered_at = [], {}, {}
        self._thread = None
        if self.inprocess is not None:
            self.inprocess = InProcessQueue(self._wake)
            self.dispatcher = self.inprocess

    def _wake(self) -> None:
        with self._cond:
            self._cond.notify()

    def _run(self) -> None:
        pid = os.getpid()
        while True:
            with self._cond:
                while True:
                    if self._closed or pid != self._pid:
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
                self._run_task(task)
            if sweep:
                self._next_sweep = time.monotonic() + self.settings.sweep_interval
                self._guarded(self.sweep)

    def _guarded(self, func: Callable[..., Any], *args: Any) -> None:
        try:
            with self.app.app_context():
                func(*args)
        except DispatchUnavailable:
            pass  # logged by the dispatcher; the sweeper picks the rows up later
        except Exception:
            logger.exception("Forwarding: %s failed; the sweeper will retry.", func.__name__)

    def _idle_wait(self, now: float) -> float:
        deadlines = [at + self.settings.linger for at in self._gathered_at.values()]
        if self.inprocess is not None:
            deadlines.append(self._next_sweep)
            due = self.inprocess.next_due()
            if due is not None:
                deadlines.append(due)
        if not deadlines:
            return 60.0
        return min(60.0, max(0.005, min(deadlines) - now))

    def _take(self, now: float, *, force: bool) -> list[Batch]:
        """Batches ready to go (under the lock): full ones, and those that waited enough."""
        out, self._ready = self._ready, []
        for name in list(self._gathered):
            pks = self._gathered[name]
            size = self.targets[name].batch_size
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

    def _dispatch(self, batches: Sequence[Batch]) -> None:
        if not self.dispatcher.available():
            return  # Redis failed moments ago: the rows wait for the sweeper
        ready = []
        for batch in batches:
            if batch.job_id is None:
                batch = Batch(self.new_job_id(), batch.destination, batch.event_pks)
                if not self.outbox.assign(batch):
                    continue
            ready.append(batch)
        self.dispatcher.enqueue(ready)

    def _run_task(self, task: Task) -> None:
        assert self.inprocess is not None
        batch = task.batch
        try:
            outcome = self.run_batch(batch.destination, batch.event_pks, retries_done=task.retries)
        except Exception:
            logger.exception("Forwarding to %r failed; the sweeper will retry.", batch.destination)
            self.inprocess.done(task)
            return
        if outcome.retrying:
            self.inprocess.retry_later(task, self.targets[batch.destination].delay(task.retries))
        else:
            self.inprocess.done(task)

    def flush(self) -> None:
        """Hand every waiting batch over now, in this thread (gathered ones too)."""
        self._check_fork()
        with self._cond:
            batches = self._take(time.monotonic(), force=True)
        if batches:
            with contextlib.suppress(DispatchUnavailable):
                self._dispatch(batches)

    def close(self) -> None:
        """Stop the thread, close connections (waiting batches are left to the sweeper)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=10)
        self.dispatcher.close()
        self.outbox.close()
        for target in self.targets.values():
            try:
                target.destination.close()
            except Exception:
                logger.exception("Closing destination %r failed.", target.name)

    # -- delivering ------------------------------------------------------------------------------

    def run_batch(
        self, destination: str, event_pks: Sequence[int], *, retries_done: int = 0
    ) -> Outcome:
        """Deliver one batch now (claim, send, settle), inside the app context."""
        target = self.targets.get(destination)
        delay = target.delay(retries_done) if target is not None else 0
        with self.app.app_context():
            return self.outbox.deliver(destination, event_pks, retry_delay=delay)

    def sweep(
        self,
        *,
        force: bool = False,
        only: Iterable[str] | None = None,
        handoff: Callable[[Sequence[Batch]], None] | None = None,
    ) -> int:
        """Hand pending rows that no live job holds to new jobs; how many rows.

        Orphans are pending, unclaimed (or with an expired claim), due rows whose job is
        gone (lost with Redis, finished, failed, or started longer ago than the lease), and
        rows that never got a job and are older than the grace period. ``force`` also takes
        rows not due yet (in backoff) and young ones. ``handoff`` receives the new batches
        (default: the queue).
        """
        wanted = set(only) if only is not None else None
        give = handoff or self.dispatcher.enqueue
        with self.dispatcher.sweep_lock(max(10.0, 3 * self.settings.sweep_interval)) as mine:
            if not mine:
                return 0
            now = utcnow()
            # Due for a moment at least: a batch just stored may still be on its way to
            # the queue (its job unknown to Redis for a few milliseconds).
            due_before = None if force else now - timedelta(seconds=SETTLE_SECONDS)
            groups = self.outbox.pending_jobs(now, due_before=due_before)
            for group in groups:
                if group.destination not in self.targets:
                    self._warn_unknown(group.destination)
            names = sorted(
                {g.destination for g in groups if g.destination in self.targets}
                & (wanted if wanted is not None else set(self.targets))
            )
            job_ids = {g.job_id for g in groups if g.job_id is not None and g.destination in names}
            live = self.dispatcher.live(job_ids, now) if job_ids else set()
            grace = timedelta(seconds=0 if force else self.settings.grace)
            rows = self.outbox.orphans(
                now,
                dead_jobs=sorted(job_ids - live),
                jobless_before=now - grace,
                destinations=names,
                due_before=due_before,
                limit=SWEEP_LIMIT,
            )
            orphans: dict[str, list[Any]] = {}
            for row in rows:
                orphans.setdefault(row.destination, []).append(row)
            batches = []
            handed = 0
            for name, found in orphans.items():
                for part in chunks(found, self.targets[name].batch_size):
                    job_id = self.new_job_id()
                    if self.outbox.reassign([r.id for r in part], job_id, now):
                        batches.append(Batch(job_id, name, [r.event_pk for r in part]))
                        handed += len(part)
            if batches:
                give(batches)
                logger.info(
                    "Forwarding sweep: %d pending deliveries in %d new jobs.", handed, len(batches)
                )
            return handed

    def _warn_unknown(self, name: str) -> None:
        if name not in self._unknown_warned:
            self._unknown_warned.add(name)
            logger.warning(
                "Pending deliveries to %r, which is not in TRACKING_DESTINATIONS: left alone"
                " (configure it again to deliver them).",
                name,
            )

    def forward_pending(self, only: Iterable[str] | None = None) -> dict[str, int]:
        """Hand out every pending delivery no live job holds, now.

        With Redis: as new jobs (``{"enqueued": rows, "jobs": n}``). Without: delivered
        here and now, one attempt each (``{"delivered", "failed", "retrying", ...}``).
        """
        if self.uses_rq:
            jobs: list[Batch] = []

            def enqueue(batches: Sequence[Batch]) -> None:
                jobs.extend(batches)
                self.dispatcher.enqueue(batches)

            rows = self.sweep(force=True, only=only, handoff=enqueue)
            return {"enqueued": rows, "jobs": len(jobs)}
        totals = {"delivered": 0, "failed": 0, "retrying": 0, "skipped": 0}

        def run_here(batches: Sequence[Batch]) -> None:
            for batch in batches:
                outcome = self.run_batch(batch.destination, batch.event_pks)
                for key in totals:
                    totals[key] += getattr(outcome, key)

        self.sweep(force=True, only=only, handoff=run_here)
        return totals

    def redrive_failed(self, only: Iterable[str] | None = None) -> int:
        """Make failed deliveries pending again (fresh attempts); hand them out with
        :meth:`forward_pending`."""
        return self.outbox.redrive_failed(list(only) if only is not None else None)


def _flush_at_exit(ref: weakref.ref[Forwarder]) -> None:
    forwarder = ref()
    if forwarder is None or forwarder._closed or forwarder._pid != os.getpid():
        return
    try:
        forwarder.flush()
    except Exception:
        logger.exception("Forwarding: could not hand the last batches over at exit.")


def setup_forwarding(app: Flask, config: TrackingConfig, store: SqlStore) -> Forwarder:
    """Check the destinations, hook the outbox into the store, keep the forwarder.

    Called by ``Tracking.init_app``; raises ``ConfigError`` on a bad setting.
    """
    settings = load_settings(config)
    targets = load_targets(config.destinations, job_timeout=settings.job_timeout)
    forwarder = Forwarder(app, store.engine, settings, targets)
    app.extensions[EXTENSION_KEY] = forwarder
    if targets:
        store.insert_hooks.append(forwarder.on_insert)
        store.commit_hooks.append(forwarder.on_commit)
        if not settings.redis_url:
            # Without Redis the app's thread also sweeps: start it with the first request.
            app.before_request(forwarder.ensure_started)
    return forwarder


def get_forwarder(app: Flask | None = None) -> Forwarder:
    """The forwarder of ``app`` (default: the current app)."""
    target = app or current_app
    try:
        forwarder: Forwarder = target.extensions[EXTENSION_KEY]
    except KeyError:
        raise RuntimeError(
            "Forwarding is not set up on this app: call Tracking(app) first."
        ) from None
    return forwarder
