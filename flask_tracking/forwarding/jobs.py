"""RQ: the job that delivers a batch, and the dispatcher that enqueues such jobs.

An RQ job carries ids, never payloads: ``deliver(destination, event_pks)``. It runs in
``flask tracking worker`` (inside the app context), claims its rows, sends them and
settles them, once. It never asks RQ to run it again: a delivery that must be tried
again stays pending with its ``next_attempt_at``, and a worker's sweep gives it to a new
job when that time has come (see :mod:`.sweeper`). So jobs are never scheduled, no RQ
``Retry`` is used, and workers need no RQ scheduler.
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from redis import Redis
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry as RedisRetry
from rq import Queue
from rq.job import Job
from rq.utils import utcparse

from ..redact import REDACTING, redact, redact_url, url_secrets
from .batches import Batch
from .dispatch import DispatchUnavailable
from .lookup import get_forwarder
from .sql import chunks

logger = logging.getLogger(__name__)
logger.addFilter(REDACTING)

#: Job statuses whose rows a job will still deliver ("started" counts while young).
#: ("scheduled" is not one: no job of ours is ever scheduled, and one left by an older
#: version would wait for a scheduler that no worker runs.)
LIVE_STATUSES = frozenset({"created", "queued"})
#: Seconds RQ keeps a finished job's summary, and a crashed job.
RESULT_TTL = 600
FAILURE_TTL = 7 * 86400
#: After Redis failed, seconds during which producers do not try it again (the rows wait
#: for the sweeper), so a dead Redis never slows a request twice in a row.
BREAKER_SECONDS = 2.0
_RELEASE = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"
)


def make_redis(url: str, **options: Any) -> Redis:
    """A client that fails fast: no transparent retries, short connect timeout."""
    options.setdefault("socket_connect_timeout", 1.0)
    options.setdefault("socket_timeout", 5.0)
    options.setdefault("retry", RedisRetry(NoBackoff(), 0))
    client: Redis = Redis.from_url(url, **options)
    return client


def deliver(destination: str, event_pks: list[int]) -> dict[str, Any]:
    """The RQ job: deliver one batch of ``destination`` (by event primary keys), once."""
    return get_forwarder().run_batch(destination, event_pks).as_dict()


class RqDispatcher:
    """Enqueues batches as RQ jobs on one queue; asks Redis which jobs are alive."""

    def __init__(self, url: str, queue: str, *, job_timeout: int, lease: float) -> None:
        #: The URL as messages show it (no password).
        self.where = redact_url(url)
        self.secrets = url_secrets(url)
        self.redis = make_redis(url)
        self.queue = Queue(queue, connection=self.redis)
        self.job_timeout = job_timeout
        self.lease = timedelta(seconds=lease)
        self._down_until = 0.0
        self._down = False

    def available(self) -> bool:
        """False for a moment after Redis failed: producers then leave rows to the sweeper."""
        return time.monotonic() >= self._down_until

    def _failed(self, exc: Exception) -> DispatchUnavailable:
        self._down_until = time.monotonic() + BREAKER_SECONDS
        reason = redact(str(exc), self.secrets).rstrip(".")
        if not self._down:
            self._down = True
            logger.warning(
                "Redis at %s is unreachable (%s): deliveries stay pending in the database"
                " until a worker's sweep hands them out again.",
                self.where,
                reason,
            )
        return DispatchUnavailable(f"Redis at {self.where} is unreachable: {reason}.")

    def _ok(self) -> None:
        if self._down:
            self._down = False
            logger.info("Redis at %s answers again.", self.where)

    def enqueue(self, batches: Sequence[Batch]) -> None:
        if not batches:
            return
        datas = [
            Queue.prepare_data(
                deliver,
                args=(b.destination, list(b.event_pks)),
                job_id=b.job_id,
                timeout=self.job_timeout,
                result_ttl=RESULT_TTL,
                failure_ttl=FAILURE_TTL,
                description=f"forward {len(b.event_pks)} events to {b.destination}",
            )
            for b in batches
        ]
        try:
            for part in chunks(datas, 500):
                self.queue.enqueue_many(list(part))
        except RedisError as exc:
            raise self._failed(exc) from exc
        self._ok()

    def live(self, job_ids: Collection[str], now: datetime) -> set[str]:
        alive: set[str] = set()
        young = now - self.lease
        ids = list(job_ids)
        try:
            for part in chunks(ids, 1000):
                pipe = self.redis.pipeline(transaction=False)
                for job_id in part:
                    pipe.hmget(Job.key_for(job_id), "status", "started_at")
                for job_id, (status, started) in zip(part, pipe.execute(), strict=True):
                    state = status.decode() if status else None
                    if state in LIVE_STATUSES:
                        alive.add(job_id)
                    elif state == "started" and started:
                        since = utcparse(started.decode()).replace(tzinfo=None)
                        if since > young:
                            alive.add(job_id)
        except RedisError as exc:
            raise self._failed(exc) from exc
        self._ok()
        return alive

    @contextmanager
    def sweep_lock(self, seconds: float) -> Iterator[bool]:
        """Only one sweeper per queue at a time (the others skip their turn)."""
        key = f"flask-tracking:{self.queue.name}:sweep-lock"
        token = uuid.uuid4().hex
        try:
            got = bool(self.redis.set(key, token, nx=True, px=max(1000, int(seconds * 1000))))
        except RedisError as exc:
            raise self._failed(exc) from exc
        try:
            yield got
        finally:
            if got:
                with contextlib.suppress(RedisError):  # else it expires
                    self.redis.eval(_RELEASE, 1, key, token)

    def close(self) -> None:
        self.redis.close()
