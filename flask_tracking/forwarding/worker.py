"""``flask tracking worker``: an RQ worker with the app, that also sweeps.

:class:`TrackingWorker` is RQ's ``SimpleWorker`` (jobs run in the worker process, so
database connections and kept-alive HTTP connections last from one batch to the next)
with two additions, both through RQ's public hooks: every job runs inside the app
context (``execute_job``); and every ``TRACKING_FORWARD_SWEEP_INTERVAL`` seconds, busy or
idle, it sweeps (``run_maintenance_tasks``): pending deliveries that no live job holds,
retries whose backoff is over among them, go to new jobs (one worker at a time, by a
Redis lock).

It runs no RQ scheduler (``work(with_scheduler=False)``): our jobs are never scheduled,
retries are the sweep's. So the worker is one process: ``kill -9`` leaves no scheduler
child behind holding RQ's scheduler lock, and the next worker sweeps (and so retries) at
once. A SIGTERM during a job is RQ's warm shutdown: the job finishes and is recorded,
then the worker stops.

:func:`run_worker` keeps a worker running across Redis outages: when RQ gives up on a
lost connection, it waits for Redis and starts a new worker. A worker that is killed
(even with SIGKILL) loses nothing: the rows of its job are claimed only for a lease, and
the next sweep after the lease hands them to another job.
"""

from __future__ import annotations

import logging
import math
import signal
import sys
import time
import uuid
from collections.abc import Callable
from types import FrameType
from typing import Any

from flask import Flask
from redis.exceptions import RedisError
from rq.worker import SimpleWorker

from ..redact import REDACTING, exception_text, redact
from .dispatch import DispatchUnavailable
from .forwarder import Forwarder
from .jobs import make_redis

logger = logging.getLogger(__name__)
logger.addFilter(REDACTING)


class TrackingWorker(SimpleWorker):
    """An RQ ``SimpleWorker`` that runs jobs in the app context and sweeps."""

    #: Longest wait between reconnection attempts when Redis is lost.
    max_connection_wait_time = 5.0

    def __init__(
        self,
        queues: Any,
        *,
        app: Flask,
        forwarder: Forwarder,
        sweep_interval: float,
        housekeeping: Callable[[], None] | None = None,
        housekeeping_interval: float = 3600.0,
        **kwargs: Any,
    ) -> None:
        self.app = app
        #: Partitions ahead and retention (``retention.Housekeeping``): at the first
        #: sweep, then every ``housekeeping_interval`` seconds.
        self.housekeeping = housekeeping
        self.housekeeping_interval = housekeeping_interval
        self._next_housekeeping = 0.0
        self.forwarder = forwarder
        self.sweep_interval = max(0.1, sweep_interval)
        self.stop_asked = False
        self._next_sweep = 0.0
        super().__init__(queues, **kwargs)

    @property
    def dequeue_timeout(self) -> int:
        """Wake up at least once per sweep interval, even with nothing to do."""
        return max(1, math.ceil(self.sweep_interval))

    @property
    def should_run_maintenance_tasks(self) -> bool:
        return bool(super().should_run_maintenance_tasks) or time.monotonic() >= self._next_sweep

    def run_maintenance_tasks(self) -> None:
        if super().should_run_maintenance_tasks:
            super().run_maintenance_tasks()
        if time.monotonic() >= self._next_sweep:
            self.tick()

    def tick(self) -> None:
        """Sweep orphaned deliveries (and retries that are due) into jobs."""
        self._next_sweep = time.monotonic() + self.sweep_interval
        try:
            with self.app.app_context():
                self.forwarder.sweep()
        except DispatchUnavailable:
            pass
        except RedisError:
            raise
        except Exception as exc:
            logger.error(
                "Worker %s: forwarding sweep failed.\n%s",
                self.name,
                exception_text(exc, self.forwarder.secrets()),
            )
        if self.housekeeping is not None and time.monotonic() >= self._next_housekeeping:
            self._next_housekeeping = time.monotonic() + self.housekeeping_interval
            try:
                with self.app.app_context():
                    self.housekeeping()
            except Exception as exc:
                logger.error("Worker %s: housekeeping failed.\n%s", self.name, exception_text(exc))

    def execute_job(self, job: Any, queue: Any) -> None:
        with self.app.app_context():
            super().execute_job(job, queue)

    def handle_warm_shutdown_request(self) -> None:
        self.stop_asked = True
        super().handle_warm_shutdown_request()


def worker_name(queue: str) -> str:
    return f"{queue}-{uuid.uuid4().hex[:12]}"


def run_worker(
    app: Flask,
    forwarder: Forwarder,
    *,
    burst: bool = False,
    name: str | None = None,
    sweep_interval: float | None = None,
    logging_level: str = "INFO",
    housekeeping: Callable[[], None] | None = None,
) -> None:
    """Run a :class:`TrackingWorker` until stopped (or, with ``burst``, until idle)."""
    settings = forwarder.settings
    if settings.redis_url is None:
        raise RuntimeError("TRACKING_REDIS_URL is not set: forwarding runs in-process.")
    _log_to_stderr(logging_level)
    connection = make_redis(settings.redis_url, socket_connect_timeout=2.0, socket_timeout=None)
    interval = settings.sweep_interval if sweep_interval is None else sweep_interval
    stop = {"asked": False}
    while True:
        worker: TrackingWorker | None = None
        try:
            worker = TrackingWorker(
                [settings.queue],
                connection=connection,
                name=name or worker_name(settings.queue),
                app=app,
                forwarder=forwarder,
                sweep_interval=interval,
                housekeeping=housekeeping,
            )
            worker.work(burst=burst, with_scheduler=False, logging_level=logging_level)
        except RedisError as exc:
            logger.warning("Worker: lost Redis (%s).", redact(str(exc), forwarder.secrets()))
        if burst or (worker is not None and worker.stop_asked):
            return
        # RQ gave up (Redis went away): wait for it, then start a new worker.
        if not _wait_for_redis(connection, stop):
            return
        logger.info("Worker: Redis is back, starting a new worker.")


def _wait_for_redis(connection: Any, stop: dict[str, bool]) -> bool:
    """Ping until Redis answers (True) or SIGINT/SIGTERM arrives (False)."""

    def asked_to_stop(signum: int, frame: FrameType | None) -> None:
        stop["asked"] = True

    previous = {sig: signal.signal(sig, asked_to_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        delay = 0.2
        while not stop["asked"]:
            try:
                if connection.ping():
                    return True
            except RedisError:
                pass
            deadline = time.monotonic() + delay
            while not stop["asked"] and time.monotonic() < deadline:
                time.sleep(0.05)
            delay = min(delay * 2, 5.0)
        return False
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _log_to_stderr(level: str) -> None:
    package = logging.getLogger("flask_tracking")
    if not package.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
        package.addHandler(handler)
    package.setLevel(level)
