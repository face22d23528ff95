"""What the ingest endpoints do with a parsed body: validate each event, store the batch.

Each event stands alone: one bad event never sinks its batch. Refused events are kept
in the failed-events table with their reasons. The answer is given only after the
commit (the tracker raises ``StoreUnavailable`` when the store failed).
"""

from __future__ import annotations

import functools
import json
import math
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from .config import TrackingConfig
from .errors import EventRejected
from .requestinfo import course_from_path, org_from_course
from .schemas import server_only_reason
from .tracker import Event, Tracker

#: Fields a browser may send with an event; identity fields are never read.
BATCH_EVENT_FIELDS = ("id", "event_type", "event", "page", "time", "seq", "name")


@dataclass(slots=True)
class IngestResult:
    """The answer to an ingest request, as JSON: ``{"accepted", "duplicates", "failed"}``."""

    accepted: int = 0
    duplicates: int = 0
    failed: list[dict[str, Any]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {"accepted": self.accepted, "duplicates": self.duplicates, "failed": self.failed}


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS = timedelta(milliseconds=1)
#: A UUID already in the form ``str(uuid.UUID(...))`` gives back: kept as it is.
_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
#: Pages whose course (from ``TRACKING_COURSE_URL_PATTERN``) each ingestor remembers.
PAGE_CACHE_SIZE = 1024


def _ms_to_datetime(ms: float) -> datetime:
    return _EPOCH + timedelta(milliseconds=ms)


def _event_id(value: Any) -> str:
    """The event id in canonical form; ``ValueError`` if it is not a UUID."""
    if type(value) is str and _CANONICAL_UUID.fullmatch(value):
        return value
    return str(uuid.UUID(str(value)))


#: Client times are epoch milliseconds between 1970 and the year 9000.
MAX_CLIENT_MS = 220_000_000_000_000
#: The longest an event may have waited in a client queue before it was sent.
MAX_WAIT = timedelta(days=365)


def _finite_number(value: Any) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and 0 <= value < MAX_CLIENT_MS
    )


def corrected_time(
    received_at: datetime, sent_at: Any, client_ms: Any, *, received_ms: float | None = None
) -> tuple[datetime, datetime | None, int | None]:
    """``(time, client_time, skew_ms)``: the client's clock mapped onto the server's.

    ``time = received_at - (sent_at - client_time)``, never later than ``received_at``.
    The skew is how far the client's clock is behind the server's (negative: ahead).
    ``received_ms`` is ``received_at`` in epoch milliseconds, if the caller has it.
    """
    if not (_finite_number(sent_at) and _finite_number(client_ms)):
        return received_at, None, None
    if received_ms is None:
        received_ms = (received_at - _EPOCH) / _ONE_MS
    return _corrected(received_at, received_ms, sent_at, client_ms)


def _corrected(
    received_at: datetime, received_ms: float, sent_at: float, client_ms: float
) -> tuple[datetime, datetime, int]:
    """:func:`corrected_time` of two times that passed :func:`_finite_number`."""
    waited = min(MAX_WAIT, timedelta(milliseconds=max(0.0, float(sent_at) - float(client_ms))))
    # waited is never negative, so the time is never later than received_at
    return received_at - waited, _ms_to_datetime(client_ms), round(received_ms - sent_at)


class Ingestor:
    """Turns browser events into stored events through the one tracker path."""

    def __init__(self, tracker: Tracker, config: TrackingConfig) -> None:
        self.tracker = tracker
        self.config = config
        self.max_event_bytes = config.max_event_bytes
        # (course_id, org_id) of a page URL: a batch's events mostly share one page.
        remember = functools.lru_cache(maxsize=PAGE_CACHE_SIZE)
        self._course_of_page = remember(self._course_from_page)

    def batch(
        self, body: dict[str, Any], *, origin: str, body_bytes: int | None = None
    ) -> IngestResult:
        """Store a batch body ``{"sent_at", "events": [...]}`` (already size-checked).

        ``body_bytes`` (the request's size) spares the per-event size check when the
        whole body is within the per-event limit.
        """
        check_size = body_bytes is None or body_bytes > self.max_event_bytes
        received_at = datetime.now(UTC)
        received_ms = (received_at - _EPOCH) / _ONE_MS
        sent_at = body.get("sent_at")
        if not _finite_number(sent_at):
            sent_at = None  # no correction for any event: checked once here
        # The same for every event: looked up once, when the first event needs it.
        request_fields = functools.cache(self.tracker.request_fields)
        result = IngestResult()
        ready: list[Event] = []
        failures: list[dict[str, Any]] = []
        for index, item in enumerate(body["events"]):
            try:
                ready.append(
                    self._batch_event(
                        item, received_at, received_ms, sent_at, check_size, request_fields
                    )
                )
            except EventRejected as exc:
                event_id = item.get("id") if isinstance(item, dict) else None
                shown_id = event_id if isinstance(event_id, str) else None
                result.failed.append({"id": shown_id, "index": index, "errors": exc.errors})
                failures.append(self.failure(item, exc.errors, origin, shown_id))
        self._store(ready, failures, result)
        return result

    def single(self, fields: dict[str, Any], *, origin: str) -> IngestResult:
        """Store one edX-style event (``event_type``, ``event``, ``page``, ...)."""
        received_at = datetime.now(UTC)
        result = IngestResult()
        try:
            event = self._single_event(fields, received_at)
        except EventRejected as exc:
            result.failed.append({"id": None, "index": 0, "errors": exc.errors})
            self.tracker.store.save_failed([self.failure(fields, exc.errors, origin, None)])
            return result
        self._store([event], [], result)
        return result

    def failure(
        self, item: Any, errors: dict[str, Any], origin: str, event_id: str | None
    ) -> dict[str, Any]:
        """A failed-events row for a refused item."""
        event_type = item.get("event_type") if isinstance(item, dict) else None
        return {
            "origin": "browser",
            "event_id": event_id,
            "event_type": event_type if isinstance(event_type, str) else None,
            "raw": json.dumps(item, default=str),
            "reasons": errors,
            "detail": origin,
        }

    def _store(
        self, ready: list[Event], failures: list[dict[str, Any]], result: IngestResult
    ) -> None:
        if ready:
            sent = self.tracker.record(ready)
            result.accepted = len(sent.stored) + len(sent.dropped)
            result.duplicates = len(sent.duplicates)
            by_id = {e["event_id"]: e for e in ready}
            for event_id, reason in sent.rejected:
                errors = {"_store": [reason]}
                result.failed.append({"id": event_id, "errors": errors})
                failures.append(self.failure(_as_item(by_id[event_id]), errors, "store", event_id))
        if failures:
            self.tracker.store.save_failed(failures)

    def _check_size(self, item: Any) -> None:
        size = len(json.dumps(item, ensure_ascii=False, default=str).encode(errors="surrogatepass"))
        if size > self.max_event_bytes:
            raise EventRejected(
                {
                    "_schema": [
                        f"Event is {size} bytes; the limit is {self.max_event_bytes}"
                        " (TRACKING_MAX_EVENT_BYTES)."
                    ]
                }
            )

    def _batch_event(
        self,
        item: Any,
        received_at: datetime,
        received_ms: float,
        sent_at: float | None,
        check_size: bool = True,
        request_fields: Callable[[], tuple[dict[str, Any], dict[str, Any]]] | None = None,
    ) -> Event:
        """One batch item as an event; ``sent_at`` is ``None`` unless it is a valid time."""
        if not isinstance(item, dict):
            raise EventRejected({"_schema": ["Each event must be a JSON object."]})
        if check_size:
            self._check_size(item)
        errors: dict[str, list[str]] = {}
        event_id = item.get("id")
        try:
            event_id = _event_id(event_id) if event_id is not None else None
        except ValueError:
            errors["id"] = ["Not a valid UUID."]
        if event_id is None and "id" not in errors:
            errors["id"] = ["Missing data for required field."]
        page = item.get("page")
        if page is not None and not _clean_string(page):
            errors["page"] = ["Not a valid string."]
        seq = item.get("seq")
        if seq is not None and not (isinstance(seq, int) and not isinstance(seq, bool)):
            errors["seq"] = ["Not a valid integer."]
        client_ms = item.get("time")
        if client_ms is not None and not _finite_number(client_ms):
            errors["time"] = ["Not a valid time: give milliseconds since the epoch."]
        if errors:
            raise EventRejected(errors)
        if sent_at is None or client_ms is None:
            when, client_time, skew = received_at, None, None
        else:
            when, client_time, skew = _corrected(received_at, received_ms, sent_at, client_ms)
        return self._build(
            item.get("event_type"),
            item.get("event"),
            page=page,
            event_id=event_id,
            time=when,
            received_at=received_at,
            client_time=client_time,
            clock_skew_ms=skew,
            seq=seq,
            request_fields=request_fields,
        )

    def _single_event(self, fields: dict[str, Any], received_at: datetime) -> Event:
        self._check_size(fields)
        context: dict[str, Any] = {}
        if "tracking_event_type" in fields:  # {tracking_event_type, node_id, event_data}
            event_type, data = fields.get("tracking_event_type"), fields.get("event_data")
            if fields.get("node_id") is not None:
                context["node_id"] = fields["node_id"]
        else:
            event_type, data = fields.get("event_type"), fields.get("event")
        page = fields.get("page")
        if page is not None and not _clean_string(page):
            raise EventRejected({"page": ["Not a valid string."]})
        course = fields.get("courserun_key")
        if isinstance(course, str) and course:
            context["course_id"] = course
            context["org_id"] = org_from_course(course) or ""
        return self._build(
            event_type, data, page=page, received_at=received_at, context=context or None
        )

    def _build(self, event_type: Any, data: Any, **fields: Any) -> Event:
        if not isinstance(event_type, str) or not event_type.strip():
            raise EventRejected({"event_type": ["Missing data for required field."]})
        if not _clean_string(event_type):
            raise EventRejected({"event_type": ["Not a valid string."]})
        refusal = server_only_reason(event_type, _peek(data))
        if refusal:
            raise EventRejected({"event_type": [refusal]})
        context = dict(fields.pop("context", None) or {})
        page = fields.get("page")
        if "course_id" not in context and isinstance(page, str):
            course_id, org_id = self._course_of_page(page)
            if course_id:
                context.update(course_id=course_id, org_id=org_id or "")
        return self.tracker.build(
            event_type, data, source="browser", context=context or None, **fields
        )

    def _course_from_page(self, page: str) -> tuple[str | None, str | None]:
        return course_from_path(self.config, urlsplit(page).path)


def _as_item(event: Event) -> dict[str, Any]:
    """A stored-event dict as the browser sent it, for the failed-events table."""
    return {
        "id": event["event_id"],
        "event_type": event["event_type"],
        "event": event["event"],
        "page": event["page"],
    }


def _clean_string(value: Any) -> bool:
    """A string a text column can hold (no NUL, no lone surrogate)."""
    if not isinstance(value, str) or "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _peek(data: Any) -> Any:
    """The payload as a server-only check needs it (JSON strings decoded)."""
    if isinstance(data, str) and data[:1] == "{":
        try:
            return json.loads(data)
        except ValueError:
            return data
    return data
