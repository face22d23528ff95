"""The forwarder of one app: the outbox, the destinations, the queue and the thread.

Built by :func:`setup_forwarding` (from ``Tracking.init_app``), which hooks the outbox into
the store: the insert hook writes delivery rows in the storing transaction, the commit
hook hands the batches to the app's forwarding thread (:mod:`.handoff`). Find it with
:func:`~flask_tracking.forwarding.lookup.get_forwarder`.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import re
import threading
import uuid
import weakref
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

from flask import Flask
from sqlalchemy import Connection, Engine

from ..redact import REDACTING, redact, url_secrets
from ..rows import NewRow
from .batches import Batch, Outcome, Plan
from .destinations import Target, load_targets
from .dispatch import Dispatcher, DispatchUnavailable
from .handoff import Handoff
from .inprocess import InProcessQueue, Task
from .jobs import RqDispatcher
from .lookup import EXTENSION_KEY
from .outbox import Outbox
from .settings import ForwardSettings, load_settings
from .sweeper import Sweeper

if TYPE_CHECKING:
    from ..config import TrackingConfig
    from ..store import SqlStore

logger = logging.getLogger(__name__)
logger.addFilter(REDACTING)


class Forwarder:
    """Forwarding for one app: the outbox, the destinations and the queue."""

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
        self.sweeper = Sweeper(self.outbox, targets, settings, self.new_job_id)
        self._rq: RqDispatcher | None = None
        if settings.redis_url:
            self._rq = RqDispatcher(
                settings.redis_url,
                settings.queue,
                job_timeout=settings.job_timeout,
                lease=settings.lease,
            )
        self.handoff = Handoff(
            app,
            settings,
            {name: target.batch_size for name, target in targets.items()},
            in_process=self._rq is None,
            dispatch=self._dispatch,
            run_task=self._run_task,
            sweep=self.sweep,
        )
        self._local = threading.local()
        if self._rq is not None:
            atexit.register(_flush_at_exit, weakref.ref(self))

    def __repr__(self) -> str:
        mode = f"RQ queue {self.settings.queue!r}" if self.uses_rq else "in-process"
        return f"<Forwarder {mode} to {', '.join(self.targets) or 'nowhere'}>"

    @property
    def uses_rq(self) -> bool:
        return self._rq is not None

    @property
    def inprocess(self) -> InProcessQueue | None:
        """The in-process queue (without Redis), else ``None``."""
        return self.handoff.inprocess

    @property
    def dispatcher(self) -> Dispatcher:
        """Where batches go: RQ, or the in-process queue."""
        if self._rq is not None:
            return self._rq
        self.handoff.check_fork()
        assert self.handoff.inprocess is not None
        return self.handoff.inprocess

    def new_job_id(self) -> str:
        return f"{self._job_prefix}-{uuid.uuid4().hex}"

    def secrets(self) -> list[str]:
        """Every secret of the settings (destinations, Redis): masked in output and logs."""
        found = url_secrets(self.settings.redis_url)
        for target in self.targets.values():
            found.extend(target.destination.secrets())
        return found

    def redact(self, text: str) -> str:
        """``text`` without any secret of this forwarder's settings."""
        return redact(text, self.secrets())

    # -- store hooks ---------------------------------------------------------------------

    def on_insert(self, conn: Connection, new: list[NewRow]) -> None:
        """Insert hook: route the new events and write their delivery rows."""
        self._local.plan = self.outbox.plan(conn, new)

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
        if plan.batches or plan.leftovers:
            self.handoff.add(plan)

    def ensure_started(self) -> None:
        """Start the forwarding thread if it is not running (without Redis it also sweeps)."""
        self.handoff.ensure_started()

    # -- handing batches over ----------------------------------------------------------------

    def _dispatch(self, batches: Sequence[Batch]) -> None:
        dispatcher = self.dispatcher
        if not dispatcher.available():
            return  # Redis failed moments ago: the rows wait for the sweeper
        ready = []
        for batch in batches:
            if batch.job_id is None:
                batch = Batch(self.new_job_id(), batch.destination, batch.event_pks)
                if not self.outbox.assign(batch):
                    continue
            ready.append(batch)
        dispatcher.enqueue(ready)

    def _run_task(self, task: Task) -> None:
        queue = self.inprocess
        try:
            self.run_batch(task.batch.destination, task.batch.event_pks)
        finally:
            if queue is not None:
                queue.done(task)

    def flush(self) -> None:
        """Hand every waiting batch over now, in this thread (gathered ones too)."""
        batches = self.handoff.take_all()
        if batches:
            with contextlib.suppress(DispatchUnavailable):
                self._dispatch(batches)

    def close(self) -> None:
        """Stop the thread, close connections (waiting batches are left to the sweeper)."""
        self.handoff.close()
        self.dispatcher.close()
        self.outbox.close()
        for target in self.targets.values():
            try:
                target.destination.close()
            except Exception:
                logger.exception("Closing destination %r failed.", target.name)

    # -- delivering ------------------------------------------------------------------------------

    def run_batch(self, destination: str, event_pks: Sequence[int]) -> Outcome:
        """Deliver one batch now (claim, send, settle), inside the app context."""
        with self.app.app_context():
            return self.outbox.deliver(destination, event_pks)

    def sweep(
        self,
        *,
        force: bool = False,
        only: Iterable[str] | None = None,
        handoff: Callable[[Sequence[Batch]], None] | None = None,
    ) -> int:
        """Hand pending rows that no live job holds to new jobs; how many rows.

        See :mod:`.sweeper`. ``force`` also takes rows not due yet (in backoff) and
        young ones. ``handoff`` receives the new batches (default: the queue).
        """
        return self.sweeper.sweep(self.dispatcher, force=force, only=only, handoff=handoff)

    def forward_pending(self, only: Iterable[str] | None = None) -> dict[str, int]:
        """Hand out every pending delivery no live job holds, now.

        With Redis: as new jobs (``{"enqueued": rows, "jobs": n}``). Without: delivered
        here and now, one attempt each (``{"delivered", "failed", "retrying", ...}``).
        """
        if self._rq is not None:
            jobs: list[Batch] = []
            rq = self._rq

            def enqueue(batches: Sequence[Batch]) -> None:
                jobs.extend(batches)
                rq.enqueue(batches)

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
    if forwarder is None or forwarder.handoff.closed or forwarder.handoff.pid != os.getpid():
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
