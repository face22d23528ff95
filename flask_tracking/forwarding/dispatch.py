"""What the forwarder needs from a queue: RQ (:mod:`.jobs`) or in-process (:mod:`.inprocess`).

``enqueue(batches)``; ``live(job_ids, now)``: which jobs may still deliver their rows (the
sweeper leaves those rows alone); ``available()``; ``sweep_lock()``: one sweeper at a time.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Protocol

from ..errors import TrackingError
from .batches import Batch


class DispatchUnavailable(TrackingError):
    """The queue cannot take jobs right now (Redis is down); the rows stay pending."""


class Dispatcher(Protocol):
    def available(self) -> bool: ...

    def enqueue(self, batches: Sequence[Batch]) -> None: ...

    def live(self, job_ids: Collection[str], now: datetime) -> set[str]: ...

    def sweep_lock(self, seconds: float) -> AbstractContextManager[bool]: ...

    def close(self) -> None: ...
