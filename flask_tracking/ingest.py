"""Browser events into the one path: the envelope checked, the event built, then submitted.

The blueprint parses a request body; this module checks its envelope against the
schemas of ``schemas/envelope.py``, builds each event (the server's identity and
request fields, the course from the page, the client's clock mapped onto the server's)
and hands the batch to the pipeline, which answers for each event on its own: one bad
event never sinks its batch.
"""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from .config import TrackingConfig
from .errors import EventRejected, TrackingError
from .event import Event
from .requestinfo import course_from_path, org_from_course
from .schemas.envelope import BATCH, BATCH_EVENT, EDX_EVENT, NODE_EVENT
from .schemas.fields import MAX_CLIENT_MS, is_number
from .submission import Submission
from .tracker import RequestFields, Tracker

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS = timedelta(milliseconds=1)
#: Pages whose course (from ``TRACKING_COURSE_URL_PATTERN``) each ingestor remembers.
PAGE_CACHE_SIZE = 1024


@dataclass(slots=True)
class IngestResult:
    """The answer to an ingest request, as JSON: ``{"accepted", "duplicates", "failed"}``."""

    accepted: int = 0
    duplicates: int = 0
    failed: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def of(cls, done: Submission) -> IngestResult:
        return cls(
            accepted=len(done.stored) + len(done.dropped),
            duplicates=len(done.duplicates),
            failed=[{"id": r.event_id, "index": r.index, "errors": r.errors} for r in done.failed],
        )

    def as_json(self) -> dict[str, Any]:
        return {"accepted": self.accepted, "duplicates": self.duplicates, "failed": self.failed}


class BodyRefused(TrackingError):
    """A whole request body does not fit its envelope (no event can be read from it)."""

    def __init__(self, status: int, code: str, message: str, errors: dict[str, Any]) -> None:
        self.status, self.code, self.errors = status, code, errors
        super().__init__(message)


def _ms_to_datetime(ms: float) -> datetime:
    return _EPOCH + timedelta(milliseconds=ms)


def client_time_ok(value: Any) -> bool:
    """A number that can be a browser clock reading (ms since the epoch)."""
    return is_number(value) and 0 <= value < MAX_CLIENT_MS


def corrected_time(
    received_at: datetime,
    sent_at: Any,
    client_ms: Any,
    *,
    max_wait: timedelta,
    received_ms: float | None = None,
) -> tuple[datetime, datetime | None, int | None]:
    """``(time, client_time, skew_ms)``: the client's clock mapped onto the server's.

    ``time = received_at - (sent_at - client_time)``: never later than ``received_at``,
    and ``received_at`` itself when the event claims to have waited longer than
    ``max_wait`` in the client's queue (a backdated or broken clock: the client's own
    time is kept in ``client_time``). The skew is how far the client's clock is behind
    the server's (negative: ahead).
    """
    if not (client_time_ok(sent_at) and client_time_ok(client_ms)):
        return received_at, _ms_to_datetime(client_ms) if client_time_ok(client_ms) else None, None
    if received_ms is None:
        received_ms = (received_at - _EPOCH) / _ONE_MS
    waited = timedelta(milliseconds=max(0.0, float(sent_at) - float(client_ms)))
    when = received_at if waited > max_wait else received_at - waited
    return when, _ms_to_datetime(client_ms), round(received_ms - sent_at)


class Ingestor:
    """Turns browser requests into events down the one path."""

    def __init__(self, tracker: Tracker, config: TrackingConfig) -> None:
        self.tracker = tracker
        self.config = config
        self.max_events = config.max_batch_events
        self.max_wait = timedelta(seconds=config.max_client_delay)
        # (course_id, org_id) of a page URL: a batch's events mostly share one page.
        remember = functools.lru_cache(maxsize=PAGE_CACHE_SIZE)
        self._course_of_page = remember(self._course_from_page)

    def batch(self, body: Any, *, origin: str) -> IngestResult:
        """Store a batch body ``{"sent_at", "events": [...]}``; raise :class:`BodyRefused`
        when the body is not a batch at all."""
        errors = BATCH(body)
        if errors:
            raise BodyRefused(
                400, "invalid_batch", 'The body must be {"sent_at": <ms>, "events": [...]}.', errors
            )
        items = body["events"]
        if len(items) > self.max_events:
            message = (
                f"A batch holds at most {self.max_events} events (TRACKING_MAX_BATCH_EVENTS);"
                f" this one has {len(items)}."
            )
            raise BodyRefused(413, "too_many_events", message, {"events": [message]})
        received_at = datetime.now(UTC)
        received_ms = (received_at - _EPOCH) / _ONE_MS
        sent_at = body.get("sent_at")
        if not client_time_ok(sent_at):
            sent_at = None  # no correction for any event: checked once here
        # The same for every event: looked up once, when the first event needs it.
        request_fields = functools.cache(self.tracker.request_fields)

        def build(item: Any) -> Event:
            return self._batch_event(item, received_at, received_ms, sent_at, request_fields)

        def describe(item: Any) -> tuple[Any, Any, Any, str | None]:
            if isinstance(item, dict):
                return item, item.get("id"), item.get("event_type"), origin
            return item, None, None, origin

        return IngestResult.of(self.tracker.submit("browser", items, build, describe))

    def single(self, fields: Any, *, origin: str) -> IngestResult:
        """Store one edX-style event (``event_type``, ``event``, ``page``, ...)."""
        received_at = datetime.now(UTC)

        def build(item: Any) -> Event:
            return self._single_event(item, received_at)

        def describe(item: Any) -> tuple[Any, Any, Any, str | None]:
            if isinstance(item, dict):
                return item, None, item.get("event_type", item.get("tracking_event_type")), origin
            return item, None, None, origin

        return IngestResult.of(self.tracker.submit("browser", [fields], build, describe))

    def _batch_event(
        self,
        item: Any,
        received_at: datetime,
        received_ms: float,
        sent_at: float | None,
        request_fields: RequestFields,
    ) -> Event:
        errors = BATCH_EVENT(item)
        if errors:
            raise EventRejected(errors)
        client_ms = item.get("time")
        if client_ms is None:
            when, client_time, skew = received_at, None, None
        else:
            when, client_time, skew = corrected_time(
                received_at, sent_at, client_ms, max_wait=self.max_wait, received_ms=received_ms
            )
        name = item.get("name")
        return self._build(
            item["event_type"],
            item.get("event"),
            page=item.get("page"),
            name=name if isinstance(name, str) and name else None,
            event_id=_canonical_id(item["id"]),
            time=when,
            received_at=received_at,
            client_time=client_time,
            clock_skew_ms=skew,
            seq=item.get("seq"),
            request_fields=request_fields,
        )

    def _single_event(self, fields: Any, received_at: datetime) -> Event:
        context: dict[str, Any] = {}
        if isinstance(fields, dict) and "tracking_event_type" in fields:
            errors = NODE_EVENT(fields)
            if errors:
                raise EventRejected(errors)
            event_type, data = fields["tracking_event_type"], fields.get("event_data")
            if fields.get("node_id") is not None:
                context["node_id"] = fields["node_id"]
            page = None
        else:
            errors = EDX_EVENT(fields)
            if errors:
                raise EventRejected(errors)
            event_type, data, page = fields["event_type"], fields.get("event"), fields.get("page")
            course = fields.get("courserun_key")
            if course:
                context["course_id"] = course
                context["org_id"] = org_from_course(course) or ""
        return self._build(
            event_type, data, page=page, received_at=received_at, context=context or None
        )

    def _build(self, event_type: str, data: Any, **fields: Any) -> Event:
        context: dict[str, Any] = dict(fields.pop("context", None) or {})
        page = fields.get("page")
        if "course_id" not in context and isinstance(page, str):
            course_id, org_id = self._course_of_page(page)
            if course_id:
                context.update(course_id=course_id, org_id=org_id or "")
        return self.tracker.build(
            event_type, data, source="browser", context=context or None, **fields
        )

    def _course_from_page(self, page: str) -> tuple[str | None, str | None]:
        try:
            path = urlsplit(page).path
        except ValueError:  # not a URL at all (an unbalanced "[", say)
            return None, None
        return course_from_path(self.config, path)


def _canonical_id(value: str) -> str:
    """The event id in canonical form (``BATCH_EVENT`` checked it is a UUID)."""
    if len(value) == 36 and value.islower():
        return value
    return str(uuid.UUID(value))
