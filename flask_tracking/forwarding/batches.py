"""The small values passed between the outbox, the forwarder and the queues."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any


def idempotency_key(destination: str, event_id: str) -> str:
    """The idempotency key of an event at a destination: stable across retries.

    32 hex digits: BLAKE2b (16 bytes) of ``"<destination>\\n<event id>"``.
    """
    data = f"{destination}\n{event_id}".encode()
    return hashlib.blake2b(data, digest_size=16).hexdigest()


@dataclass(slots=True)
class Batch:
    """Events of one destination for one job; ``job_id`` is ``None`` while gathering."""

    job_id: str | None
    destination: str
    event_pks: list[int]


@dataclass(slots=True)
class Plan:
    """What one storing transaction routed, handed to the after-commit hook."""

    event_ids: frozenset[str]
    #: Full batches, their job id already in the rows.
    batches: list[Batch] = field(default_factory=list)
    #: Smaller remainders (rows without a job id yet), to gather with later ones.
    leftovers: dict[str, list[int]] = field(default_factory=dict)


@dataclass(slots=True)
class Outcome:
    """What one delivery attempt of a batch did."""

    destination: str
    delivered: int = 0
    #: Failed for good: a permanent error, out of attempts, or an event that cannot be
    #: rendered or encoded.
    failed: int = 0
    #: Still pending after a retryable error: due again after the backoff.
    retrying: int = 0
    #: Not claimed: delivered or failed already, or being sent by another job.
    skipped: int = 0
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "destination": self.destination,
            "delivered": self.delivered,
            "failed": self.failed,
            "retrying": self.retrying,
            "skipped": self.skipped,
            "error": self.error,
        }
