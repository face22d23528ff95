"""The sweeper: the one thing that decides when a delivery is tried again.

Every ``TRACKING_FORWARD_SWEEP_INTERVAL`` seconds (in each worker, one at a time by a
Redis lock; without Redis in the app's forwarding thread) it hands *orphans* to new jobs:
pending, unclaimed (or with an expired claim), due rows whose job is gone, and rows that
never got a job and are older than the grace period. A job's job is gone when Redis no
longer has it, or has it finished, failed or started longer ago than the lease.

That one rule covers every way a delivery gets another try:

- a retryable error: the job settled the rows pending with ``next_attempt_at`` = now +
  the backoff and finished, so they are orphans once that time has come;
- a crash, a killed worker, a job timeout: the claim runs out (or was given back);
- Redis down or emptied, an app that died before handing a batch over: the job is
  unknown.

A retry therefore runs at most one sweep interval after its backoff (plus a second for a
row never tried, which may still be on its way to the queue).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import timedelta
from typing import Any

from ..redact import REDACTING
from .backlog import Backlog
from .batches import Batch
from .destinations import Target
from .dispatch import Dispatcher
from .settings import ForwardSettings
from .sql import chunks, utcnow

logger = logging.getLogger(__name__)
logger.addFilter(REDACTING)

#: Most rows one sweep hands out.
SWEEP_LIMIT = 100_000
#: Seconds a row never tried must have been due before a sweep takes it.
SETTLE_SECONDS = 1.0


class Sweeper:
    """Sweeps one outbox for one set of destinations."""

    def __init__(
        self,
        backlog: Backlog,
        targets: Mapping[str, Target],
        settings: ForwardSettings,
        new_job_id: Callable[[], str],
    ) -> None:
        self.backlog = backlog
        self.targets = targets
        self.settings = settings
        self.new_job_id = new_job_id
        self._unknown_warned: set[str] = set()

    def sweep(
        self,
        dispatcher: Dispatcher,
        *,
        force: bool = False,
        only: Iterable[str] | None = None,
        handoff: Callable[[Sequence[Batch]], None] | None = None,
    ) -> int:
        """Hand orphans to new jobs; how many rows.

        ``force`` also takes rows not due yet (in backoff) and young ones. ``handoff``
        receives the new batches (default: ``dispatcher.enqueue``).
        """
        wanted = set(only) if only is not None else None
        give = handoff or dispatcher.enqueue
        with dispatcher.sweep_lock(max(10.0, 3 * self.settings.sweep_interval)) as mine:
            if not mine:
                return 0
            now = utcnow()
            due_before = None if force else now - timedelta(seconds=SETTLE_SECONDS)
            groups = self.backlog.pending_jobs(now, due_before=due_before)
            for group in groups:
                if group.destination not in self.targets:
                    self._warn_unknown(group.destination)
            names = sorted(
                {g.destination for g in groups if g.destination in self.targets}
                & (wanted if wanted is not None else set(self.targets))
            )
            job_ids = {g.job_id for g in groups if g.job_id is not None and g.destination in names}
            live = dispatcher.live(job_ids, now) if job_ids else set()
            grace = timedelta(seconds=0 if force else self.settings.grace)
            rows = self.backlog.orphans(
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
                    if self.backlog.reassign([r.id for r in part], job_id, now):
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
