"""What became of the inputs of one submission to the pipeline, and the backend protocol."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from .event import Event


class Backend(Protocol):
    """Anything with ``send(events)``; it receives the events that were newly stored."""

    def send(self, events: Sequence[Event]) -> Any: ...


@dataclass(frozen=True, slots=True)
class Refusal:
    """One input that failed: its position, its id if it had one, and why."""

    index: int
    event_id: str | None
    errors: dict[str, Any]


@dataclass(slots=True)
class Submission:
    """What became of the inputs of one :meth:`Pipeline.submit`."""

    stored: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    failed: list[Refusal] = field(default_factory=list)
    #: The events that reached the store (stored, duplicates, or spooled), processed.
    ready: list[Event] = field(default_factory=list)
    #: New events stored by a bulk submit (whose ids are not listed).
    stored_count: int = 0
    #: True when the database was unavailable and everything went to the spool.
    spooled: bool = False


#: ``describe(input) -> (raw, event_id, event_type, detail)`` for the failed row.
Describe = Callable[[Any], tuple[Any, Any, Any, str | None]]
