"""Processors: callables that see every event before it is stored.

A processor takes an event and returns a new one (or ``None`` to drop it). Two kinds of
failure, two answers:

- an ordinary processor that raises (or returns something that is not an event) is
  logged and skipped: the event goes on without it;
- a *required* processor (the anonymiser, or one registered with ``required=True``)
  fails closed: the event is not stored, it goes to the failed table without its
  identity fields (:class:`ProcessingFailed`), and the error is logged. A privacy step
  that breaks never lets raw identity through.

The chain reads the app's lists each time, so processors registered after ``init_app``
take effect.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any, cast

from .errors import TrackingError
from .event import Event

logger = logging.getLogger(__name__)

#: ``processor(event) -> new event or None`` (a dict with the keys of :class:`Event`).
Processor = Callable[[Event], Mapping[str, Any] | None]


class ProcessingFailed(TrackingError):
    """A required processor failed on an event: it must not be stored."""

    def __init__(self, processor: Processor, error: BaseException) -> None:
        self.processor_name = _name(processor)
        super().__init__(
            f"Required processor {self.processor_name} failed: {type(error).__name__}."
        )


def _name(processor: Any) -> str:
    return getattr(processor, "__qualname__", None) or type(processor).__qualname__


class ProcessorChain:
    """The app's processors, then its final ones (the anonymiser), in order.

    :param processors: the app's processor list (read on every event, so additions count).
    :param required: processors of that list that fail closed.
    :param final: processors that run last and always fail closed.
    """

    def __init__(
        self,
        processors: Sequence[Processor],
        required: Collection[Processor] = (),
        final: Sequence[Processor] = (),
    ) -> None:
        self.processors = processors
        self.required = required
        self.final = final

    def __call__(self, event: Event) -> Event | None:
        """The processed event, ``None`` if dropped; raises :class:`ProcessingFailed`."""
        current: Event | None = event
        for processor in self.processors:
            if current is None:
                return None
            current = self._step(processor, current, processor in self.required)
        for processor in self.final:
            if current is None:
                return None
            current = self._step(processor, current, True)
        return current

    @staticmethod
    def _step(processor: Processor, event: Event, required: bool) -> Event | None:
        try:
            result = processor(event)
            if result is not None and not isinstance(result, dict):
                raise TypeError(f"returned {type(result).__name__}, not an event dict or None")
            return cast(Event | None, result)
        except Exception as exc:
            if required:
                logger.exception(
                    "Required tracking processor %s failed on a %r event: the event goes"
                    " to the failed table without its identity.",
                    _name(processor),
                    event.get("event_type"),
                )
                raise ProcessingFailed(processor, exc) from exc
            logger.exception("Tracking processor %s failed; skipped.", _name(processor))
            return event
