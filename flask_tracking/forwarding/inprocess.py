"""The in-process queue: batches waiting for the app's forwarding thread (no Redis).

A task runs once. A delivery that must be tried again stays pending in the outbox with
its ``next_attempt_at``, and the thread's sweep hands it out when that time has come,
exactly as a worker's sweep does with Redis.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime

from .batches import Batch


@dataclass(order=True, slots=True)
class Task:
    """A batch waiting in the in-process queue."""

    due: float
    seq: int
    batch: Batch = field(compare=False)


class InProcessQueue:
    """Batches waiting for the app's forwarding thread, in the order they came."""

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

    def done(self, task: Task) -> None:
        """The task ran (whatever came of it): its rows are the sweeper's again."""
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
