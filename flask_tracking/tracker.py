"""The tracker: builds events from what the server knows, and emits server events.

An event is built from its parts (type, payload, page, times) and the server's own
facts: the request's identity and fields (``requestinfo.py``) and the named contexts
active now (``contexts.py``). Nothing of identity is ever read from a payload. Built
events go down the one path of ``pipeline.py``; :meth:`Tracker.emit` is that path for
one server event, and never raises into the caller.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from .contexts import Contexts
from .errors import EventRejected
from .event import Event, new_event
from .payloads import JSON, decode_payload
from .pipeline import Pipeline
from .store import StoreResult
from .submission import Submission

logger = logging.getLogger(__name__)

#: Returns (envelope fields, context fields) for the current request, or empty dicts.
RequestInfo = Callable[[], tuple[dict[str, Any], dict[str, Any]]]
RequestFields = Callable[[], tuple[Mapping[str, Any], Mapping[str, Any]]]


class Tracker:
    """Build events and emit server events.

    :param pipeline: the path built events take (validation to storage).
    :param request_info: where envelope and context fields of the current request come from.
    """

    def __init__(self, pipeline: Pipeline, *, request_info: RequestInfo | None = None) -> None:
        self.pipeline = pipeline
        self.request_info = request_info
        self.contexts = Contexts(f"tracking_contexts_{id(self)}")

    # -- contexts ---------------------------------------------------------------------

    def enter_context(self, name: str, values: Mapping[str, Any]) -> None:
        """Push a named context; its values go into every event until it is exited."""
        self.contexts.enter(name, values)

    def exit_context(self, name: str) -> None:
        """Remove the innermost context called ``name``."""
        self.contexts.exit(name)

    @contextmanager
    def context(self, name: str, values: Mapping[str, Any]) -> Iterator[None]:
        """``with tracker.context("course", {"course_id": ...}):`` nests a context."""
        with self.contexts.context(name, values):
            yield

    def resolve_context(self) -> dict[str, Any]:
        """The merged context: request fields first, then named contexts, inner wins."""
        return self.request_fields()[1]

    def request_fields(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """``(envelope, context)`` every event built now starts from (new dicts)."""
        envelope, request_context = (
            self.request_info() if self.request_info is not None else ({}, {})
        )
        return envelope, self.contexts.merged(request_context)

    # -- building -----------------------------------------------------------------------

    def build(
        self,
        event_type: Any,
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
        request_fields: RequestFields | None = None,
    ) -> Event:
        """Build one event (not validated yet); raise :class:`EventRejected` if it has no
        type.

        ``user`` (server-side only: never from a payload) overrides the request's
        identity with ``{"user_id", "username"}``; ``context`` adds context fields.
        ``request_fields`` stands in for :meth:`request_fields` (a batch passes one that
        remembers its first answer).
        """
        if not isinstance(event_type, str) or not event_type.strip():
            raise EventRejected({"event_type": ["Missing data for required field."]})
        payload = decode_payload(data)
        envelope, base_context = (request_fields or self.request_fields)()
        merged = dict(base_context)
        if context:
            merged.update(context)
        username = envelope.get("username")
        if user is not None:
            username = user.get("username") or ""
            merged["user_id"] = user.get("user_id")
        now = received_at or datetime.now(UTC)
        event_format = payload.format
        if source == "browser" and event_format in ("object", "list"):
            # edX writes browser payloads as JSON strings; so do we, on export.
            event_format = JSON
        return new_event(
            event_id=event_id or str(uuid.uuid4()),
            name=name or event_type,
            event_type=event_type,
            event_source=source,
            time=time or now,
            username=username,
            session=envelope.get("session"),
            ip=envelope.get("ip"),
            agent=envelope.get("agent"),
            host=envelope.get("host"),
            referer=envelope.get("referer"),
            accept_language=envelope.get("accept_language"),
            page=page if page is not None else envelope.get("page"),
            context=merged,
            event=payload.data,
            event_format=event_format,
            event_raw=payload.raw,
            received_at=now,
            client_time=client_time,
            clock_skew_ms=clock_skew_ms,
            seq=seq,
        )

    # -- emitting -----------------------------------------------------------------------

    def emit(self, event_type: str, data: Any = None, **fields: Any) -> Event | None:
        """Build, process and store one server event; never raises into the caller.

        Returns the event as stored, or ``None`` if it was refused (it is then kept in
        the failed-events table) or dropped by a processor. When the database cannot be
        reached, the event waits in the spool and is stored by the next successful write.
        """

        def build(_: object) -> Event:
            return self.build(event_type, data, **fields)

        def describe(_: object) -> tuple[Any, Any, Any, str | None]:
            raw = {"event_type": event_type, "event": data}
            return raw, fields.get("event_id"), event_type, "emit"

        try:
            done = self.pipeline.submit("server", [None], build, describe, spool=True)
        except OSError:
            logger.exception(
                "Tracking event %r lost: the database and the spool failed.", event_type
            )
            return None
        for refusal in done.failed:
            logger.warning(
                "Tracking event %r refused: %s", event_type, EventRejected(refusal.errors)
            )
        return done.ready[0] if done.ready else None

    def submit(self, *args: Any, **kwargs: Any) -> Submission:
        """:meth:`Pipeline.submit` (the one path)."""
        return self.pipeline.submit(*args, **kwargs)

    def record(self, events: Sequence[Event], *, processed: bool = False) -> StoreResult:
        """Store events already built (see :meth:`Pipeline.record`)."""
        return self.pipeline.record(events, processed=processed)
