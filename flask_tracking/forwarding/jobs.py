"""Where batches run: RQ jobs (with Redis) or the app's own forwarding thread (without).

Both sides offer the same small interface to the forwarder (:class:`Dispatcher`):
``enqueue(batches)``, ``live(job_ids)`` (which jobs may still deliver their rows, so the
sweeper leaves those rows alone), ``available()`` and ``sweep_lock()``.

An RQ job carries ids, never payloads: ``deliver(destination, event_pks)``. It runs in
``flask tracking worker`` (inside the app context), claims its rows and sends them; after
a retryable error it returns ``rq.Retry`` with the destination's exponential backoff, so
RQ's scheduler runs it again later, until the rows are delivered or out of attempts.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import logging
import threading
import time
import uuid
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from redis import Redis
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry as RedisRetry
from rq import Queue, Retry, get_current_job
from rq.job import Job
from rq.utils import utcparse

from ..errors import TrackingError
from .outbox import Batch, chunks

logger = logging.getLogger(__name__)

#: Job statuses whose rows a job will still deliver ("started" counts while young).
LIVE_STATUSES = frozenset(
    {"created", "queued", "scheduled", "deferred", "rate_limited", "ready_to_enqueue"}
)
#: Seconds RQ keeps a finished job's summary, and a crashed job.
RESULT_TTL = 600
FAILURE_TTL = 7 * 86400
#: Retries RQ gives a job that crashed (a bug, a lost database): rows keep their own count.
CRASH_RETRIES = 3
#: After Redis failed, seconds during which producers do not try it again (the rows wait
#: for the sweeper), so a dead Redis never slows a request twice in a row.
BREAKER_SECONDS = 2.0
_RELEASE = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"
)


class DispatchUnavailable(TrackingError):
    """The queue cannot take jobs right now (Redis is down); the rows stay pending."""


class Dispatcher(Protocol):
    def available(self) -> bool: ...

    def enqueue(self, batches: Sequence[Batch]) -> None: ...

    def live(self, job_ids: Collection[str], now: datetime) -> set[str]: ...

    def sweep_lock(self, seconds: float) -> AbstractContextManager[bool]: ...

    def close(self) -> None: ...


def make_redis(url: str, **options: Any) -> Redis:
    """A client that fails fast: no transparent retries, short connect timeout."""
    options.setdefault("socket_connect_timeout", 1.0)
    options.setdefault("socket_timeout", 5.0)
    options.setdefault("retry", RedisRetry(NoBackoff(), 0))
    client: Redis = Redis.from_url(url, **options)
    return client


def deliver(destination: str, event_pks: list[int]) -> dict[str, Any] | Retry:
    """The RQ job: deliver one batch of ``destination`` (by event primary keys)."""
    from . import get_forwarder

    forwarder = get_forwarder()
    job = get_current_job()
    retries = (job.number_of_retries or 0) if job is not None else 0
    outcome = forwarder.run_batch(destination, event_pks, retries_done=retries)
    if outcome.retrying:
        target = forwarder.targets[destination]
        return Retry(max=target.max_attempts, interval=list(target.backoff))
    return outcome.as_dict()


class RqDispatcher:
    """Enqueues batches as RQ jobs on one queue; asks Redis which jobs are alive."""

    def __init__(
        self,
        url: str,
        queue: str,
        *,
        job_timeout: int,
        lease: float,
        backoff: Callable[[str], list[int]],
    ) -> None:
        self.url = url
        self.redis = make_redis(url)
        self.queue = Queue(queue, connection=self.redis)
        self.job_timeout = job_timeout
        self.lease = timedelta(seconds=lease)
        self.backoff = backoff
        self._down_until = 0.0
        self._down = False

    def available(self) -> bool:
        """False for a moment after Redis failed: producers then leave rows to the sweeper."""
        return time.monotonic() >= self._down_until

    def _failed(self, exc: Exception) -> DispatchUnavailable:
        self._down_until = time.monotonic() + BREAKER_SECONDS
        if not self._down:
            self._down = True
            logger.warning(
                "Redis at %s is unreachable (%s): deliveries stay pending in the database"
                " until a worker's sweep hands them out again.",
                self.url,
                exc,
            )
        return DispatchUnavailable(f"Redis is unreachable: {exc}")

    def _ok(self) -> None:
        if self._down:
            self._down = False
            logger.info("Redis at %s answers again.", self.url)

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
                retry=Retry(max=CRASH_RETRIES, interval=self.backoff(b.destination)),
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


@dataclass(order=True, slots=True)
class Task:
    """A batch waiting in the in-process queue."""

    due: float
    seq: int
    batch: Batch = field(compare=False)
    retries: int = field(compare=False, default=0)


class InProcessQueue:
    """Batches waiting for the app's forwarding thread (no Redis configured)."""

    def __init__(self, wake: Callable[[], None]) -> None:
        self._lock = threading.Lock()
        self._heap: list[Task] = []
        self._seq = itertools.count()
        self._live: dict[str, int] = {}
        self._wake = wake

    def available(self) -> bool:
        return True

    def enqueue(self, batches: Sequence[Batch]) -> None:
        if not batches:
            return
        now = time.monotonic()
        with self._lock:
            for batch in batches:
                assert batch.job_id is not None
                heapq.heappush(self._heap, Task(now, next(self._seq), batch))
                self._live[batch.job_id] = self._live.get(batch.job_id, 0) + 1
        self._wake()

    def retry_later(self, task: Task, delay: float) -> None:
        with self._lock:
            heapq.heappush(
                self._heap,
                Task(time.monotonic() + delay, next(self._seq), task.batch, task.retries + 1),
            )

    def done(self, task: Task) -> None:
        job_id = task.batch.job_id
        with self._lock:
            if job_id is not None and job_id in self._live:
                self._live[job_id] -= 1
                if self._live[job_id] <= 0:
                    del self._live[job_id]

    def pop_due(self, now: float) -> Task | None:
        with self._lock:
            if self._heap and self._heap[0].due <= now:
                return heapq.heappop(self._heap)
        return None

    def next_due(self) -> float | None:
        with self._lock:
            return self._heap[0].due if self._heap else None

    def __len__(self) -> int:
        with self._lock:
            return len(self._heap)

    def live(self, job_ids: Collection[str], now: datetime) -> set[str]:
        with self._lock:
            return {job_id for job_id in job_ids if job_id in self._live}

    @contextmanager
    def sweep_lock(self, seconds: float) -> Iterator[bool]:
        yield True

    def close(self) -> None:
        with self._lock:
            self._heap.clear()
            self._live.clear()
