"""The tracker: builds events, runs processors, fans them out to backends.

Named contexts nest (``with tracker.context("course", {...})``); they live in a
:class:`contextvars.ContextVar`, so each request, thread and task sees its own stack, and
the later (inner) context wins on a key clash. A failing processor or backend is logged
and never stops the others.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from .errors import EventRejected, StoreUnavailable
from .payloads import JSON, decode_payload
from .schemas import check_payload
from .spool import Spool

logger = logging.getLogger(__name__)

Event = dict[str, Any]
Processor = Callable[[Event], Event | None]
#: Returns (envelope fields, context fields) for the current request, or empty dicts.
RequestInfo = Callable[[], tuple[dict[str, Any], dict[str, Any]]]


class Backend(Protocol):
    """Anything with ``send(events)``; it receives the events that were newly stored."""

    def send(self, events: Sequence[Event]) -> Any: ...


@dataclass(slots=True)
class SendResult:
    """What happened to a list of events handed to :meth:`Tracker.record`."""

    stored: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    #: ``(event_id, reason)`` of events the database refused to hold.
    rejected: list[tuple[str, str]] = field(default_factory=list)


class Tracker:
    """Build, process and deliver events.

    :param store: the primary backend (the SQL store); its ``send`` returns the ids it
        stored and those it already had.
    :param backends: further backends, given only newly stored events.
    :param processors: callables that return a new event or ``None`` to drop it.
    :param request_info: where envelope and context fields of the current request come from.
    :param unknown_events: ``"accept"`` (store unvalidated) or ``"reject"``.
    :param spool: where server events wait while the store is unreachable.
    """

    def __init__(
        self,
        store: Any,
        *,
        backends: Sequence[Backend] = (),
        processors: Sequence[Processor] = (),
        final_processors: Sequence[Processor] = (),
        request_info: RequestInfo | None = None,
        unknown_events: str = "accept",
        spool: Spool | None = None,
    ) -> None:
        self.store = store
        self.spool = spool
        self.backends: list[Backend] = list(backends)
        self.processors: list[Processor] = list(processors)
        self.final_processors: list[Processor] = list(final_processors)
        self.request_info = request_info
        self.unknown_events = unknown_events
        self._contexts: ContextVar[tuple[tuple[str, Mapping[str, Any]], ...]] = ContextVar(
            f"tracking_contexts_{id(self)}", default=()
        )

    # -- contexts ---------------------------------------------------------------------

    def enter_context(self, name: str, values: Mapping[str, Any]) -> None:
        """Push a named context; its values go into every event until it is exited."""
        self._contexts.set((*self._contexts.get(), (name, dict(values))))

    def exit_context(self, name: str) -> None:
        """Remove the innermost context called ``name``."""
        stack = list(self._contexts.get())
        for index in range(len(stack) - 1, -1, -1):
            if stack[index][0] == name:
                del stack[index]
                self._contexts.set(tuple(stack))
                return
        raise KeyError(f"No tracking context named {name!r} is active.")

    @contextmanager
    def context(self, name: str, values: Mapping[str, Any]) -> Iterator[None]:
        """``with tracker.context("course", {"course_id": ...}):`` nests a context."""
        token = self._contexts.set((*self._contexts.get(), (name, dict(values))))
        try:
            yield
        finally:
            self._contexts.reset(token)

    def resolve_context(self) -> dict[str, Any]:
        """The merged context: request fields first, then named contexts, inner wins."""
        return self.request_fields()[1]

    def request_fields(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """``(envelope, context)`` every event built now starts from.

        The envelope is the request's; the context is the request's context fields with
        the named contexts merged in (inner wins), a new dict.
        """
        envelope, request_context = (
            self.request_info() if self.request_info is not None else ({}, {})
        )
        merged = dict(request_context)
        for _name, values in self._contexts.get():
            merged.update(values)
        return envelope, merged

    # -- building -----------------------------------------------------------------------

    def validate(self, source: str, event_type: str, data: Any) -> str:
        """Check a decoded payload: ``"valid"``, ``"unvalidated"``, or raise."""
        verdict = check_payload(source, event_type, data)
        if verdict.status == "valid":
            return "valid"
        if verdict.status == "invalid":
            raise EventRejected(verdict.errors)
        if self.unknown_events == "reject":
            raise EventRejected(
                {"event_type": [f"Unknown event type {event_type!r} for source {source!r}."]}
            )
        return "unvalidated"

    def build(
        self,
        event_type: str,
        data: Any = None,
        *,
        source: str = "server",
        name: str | None = None,
        page: str | None = None,
        time: datetime | None = None,
        event_id: str | None = None,
        received_at: datetime | None = None,
        client_time: datetime | None = None,
        clock_skew_ms: int | None = None,
        seq: int | None = None,
        context: Mapping[str, Any] | None = None,
        user: Mapping[str, Any] | None = None,
        request_fields: Callable[[], tuple[Mapping[str, Any], Mapping[str, Any]]] | None = None,
    ) -> Event:
        """Build and validate one event; raise :class:`EventRejected` if it is invalid.

        ``user`` (server-side only: never from a payload) overrides the request's
        identity with ``{"user_id", "username"}``; ``context`` adds context fields.
        ``request_fields`` stands in for :meth:`request_fields` (its answer is not
        changed): a batch passes one that remembers its first answer.
        """
        if not isinstance(event_type, str) or not event_type.strip():
            raise EventRejected({"event_type": ["Missing data for required field."]})
        payload = decode_payload(data)
        schema_status = self.validate(source, event_type, payload.data)
        envelope, base_context = (request_fields or self.request_fields)()
        merged = dict(base_context)
        if context:
            merged.update(context)
        if user is not None:
            envelope = {**envelope, "username": user.get("username") or ""}
            merged["user_id"] = user.get("user_id")
        now = received_at or datetime.now(UTC)
        event_format = payload.format
        if source == "browser" and event_format in ("object", "list"):
            # edX writes browser payloads as JSON strings; so do we, on export.
            event_format = JSON
        return {
            "event_id": event_id or str(uuid.uuid4()),
            "name": name or event_type,
            "event_type": event_type,
            "event_source": source,
            "time": time or now,
            "username": envelope.get("username"),
            "session": envelope.get("session"),
            "ip": envelope.get("ip"),
            "agent": envelope.get("agent"),
            "host": envelope.get("host"),
            "referer": envelope.get("referer"),
            "accept_language": envelope.get("accept_language"),
            "page": page if page is not None else envelope.get("page"),
            "context": merged,
            "event": payload.data,
            "event_format": event_format,
            "event_raw": payload.raw,
            "schema_status": schema_status,
            "received_at": now,
            "client_time": client_time,
            "clock_skew_ms": clock_skew_ms,
            "seq": seq,
            "original": None,
        }

    # -- processing and delivery ----------------------------------------------------------

    def process(self, event: Event) -> Event | None:
        """Run the processors in order; a failing one is logged and skipped."""
        current: Event | None = event
        for processor in (*self.processors, *self.final_processors):
            if current is None:
                return None
            try:
                current = processor(current)
            except Exception:
                logger.exception("Tracking processor %r failed; skipped.", processor)
        return current

    def record(self, events: Sequence[Event], *, processed: bool = False) -> SendResult:
        """Process events and hand them to the store, then to the other backends.

        Raises :class:`StoreUnavailable` when the store failed (after the other backends
        had their turn), so a caller can answer "try again" instead of "stored".
        """
        result = SendResult()
        ready: list[Event] = []
        for event in events:
            done = event if processed else self.process(event)
            if done is None:
                result.dropped.append(event["event_id"])
            else:
                ready.append(done)
        if not ready:
            return result
        store_error: Exception | None = None
        fresh: Sequence[Event] = ready
        try:
            stored = self.store.send(ready)
            result.stored = stored.stored
            result.duplicates = stored.duplicates
            result.rejected = stored.rejected
            kept = set(stored.stored)
            fresh = [e for e in ready if e["event_id"] in kept]
            self._drain_spool()
        except Exception as exc:
            logger.exception("Tracking store failed for %d events.", len(ready))
            store_error = exc
        for backend in self.backends:
            try:
                backend.send(fresh)
            except Exception:
                logger.exception("Tracking backend %r failed; the others went on.", backend)
        if store_error is not None:
            raise StoreUnavailable(str(store_error)) from store_error
        return result

    def _drain_spool(self) -> None:
        if self.spool is None or not self.spool.pending():
            return
        try:
            self.spool.drain(self.store.send)
        except Exception:
            logger.exception("Draining the tracking spool failed; it is kept for later.")

    def emit(self, event_type: str, data: Any = None, **fields: Any) -> Event | None:
        """Build, process and store one server event; never raises into the caller.

        Returns the event, or ``None`` if it was rejected (it is then kept in the
        failed-events table) or dropped by a processor. When the store cannot be reached
        the event waits in the spool and is stored by the next successful write.
        """
        try:
            event = self.build(event_type, data, **fields)
        except EventRejected as exc:
            logger.warning("Tracking event %r rejected: %s", event_type, exc)
            self.store.save_failed(
                [
                    {
                        "origin": fields.get("source", "server"),
                        "event_id": fields.get("event_id"),
                        "event_type": event_type if isinstance(event_type, str) else None,
                        "raw": _dump({"event_type": event_type, "event": data}),
                        "reasons": exc.errors,
                        "detail": "emit",
                    }
                ]
            )
            return None
        processed = self.process(event)
        if processed is None:
            return None
        try:
            self.record([processed], processed=True)
        except StoreUnavailable:
            if self.spool is None:
                logger.error("Tracking event %r lost: the store is unavailable.", event_type)
                return None
            self.spool.append([processed])
            logger.warning("Tracking store unavailable; event %r spooled.", event_type)
        return processed


def _dump(value: Any) -> str:
    return json.dumps(value, default=str, ensure_ascii=False)
