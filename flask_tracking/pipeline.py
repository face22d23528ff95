"""The one path every event takes, whatever its origin, and the one failure model.

::

    inputs ─ build ─ validate ─ process ─ limits ─ store ─ other backends
               │         │          │         │       │
               └─────────┴──────────┴─────────┴───────┴──► failed rows (failures.py)

Browser events (``ingest.py``), server events (``Tracker.emit``), imported tracking-log
lines (``tracking_logs.py``) and spooled events all go through :meth:`Pipeline.submit`
(or :meth:`Pipeline.record` for events already built). Each input ends in exactly one
of: stored, duplicate (its id was stored before), dropped (by a processor, on purpose),
or failed: refused with reasons keyed by field and kept in the failed-events table in
the same transaction as the stored events. Only "the database is unavailable" is raised
(:class:`~flask_tracking.errors.StoreUnavailable`), or, when ``spool=True``, answered by
keeping the events and failed rows in the spool. See ``docs/ingest.md``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar, cast

from .catalog.table import CatalogKeeper
from .catalog.types import TypeRegistry
from .engine import is_unavailable
from .errors import EventRejected, StoreUnavailable
from .event import KEYS, Event
from .failures import FailureRecorder, not_kept_yet
from .limits import Encoded, check
from .privacy import without_identity
from .processing import ProcessingFailed, ProcessorChain
from .redact import redact
from .schemas import server_only_reason
from .spool import Spool
from .store import SqlStore, StoreResult
from .submission import Backend, Describe, Refusal, Submission

logger = logging.getLogger(__name__)

T = TypeVar("T")
_KEYSET = frozenset(KEYS)
#: Failed rows written by one process between two prunes of the failed table.
PRUNE_EVERY = 1000


_AS_DESCRIBED: Any = object()


@dataclass(slots=True)
class _Run:
    """The working state of one :meth:`Pipeline.submit`."""

    origin: str
    inputs: Sequence[Any]
    describe: Describe
    result: Submission = field(default_factory=Submission)
    ready: list[Event] = field(default_factory=list)
    #: Input index of each ready event, and its JSON columns as ``limits.check`` encoded them.
    positions: list[int] = field(default_factory=list)
    encoded: list[Encoded | None] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)


class Pipeline:
    """Validate, process, check, store and fan out events; keep what fails.

    :param unknown_events: ``"accept"`` (store types without a schema as unvalidated) or
        ``"reject"``.
    :param max_event_bytes: ``TRACKING_MAX_EVENT_BYTES``.
    :param max_failed_rows: the failed table keeps this many newest rows (0: all).
    :param types: the app's own event types (built-in ones are always known).
    """

    def __init__(
        self,
        store: SqlStore,
        *,
        chain: ProcessorChain,
        failures: FailureRecorder,
        backends: Sequence[Backend] = (),
        log_backends: Sequence[Backend] = (),
        unknown_events: str = "accept",
        spool: Spool | None = None,
        max_event_bytes: int = 32 * 1024,
        max_failed_rows: int = 0,
        types: TypeRegistry | None = None,
    ) -> None:
        self.store = store
        #: The registered event types (a live registry: registrations count).
        self.types = types if types is not None else TypeRegistry()
        self.chain = chain
        self.failures = failures
        #: The app's backends (a live list: additions count), then the log file's.
        self.backends = backends
        self.log_backends = log_backends
        self.unknown_events = unknown_events
        self.spool = spool
        self.max_event_bytes = max_event_bytes
        self.max_failed_rows = max_failed_rows
        self._failed_since_prune = 0
        #: Keeps the ``tracking_event_types`` table current (after the first write).
        self.catalog = CatalogKeeper(store.engine, self.types)

    # -- the steps ----------------------------------------------------------------------

    def validate(self, event: Event, origin: str) -> Event:
        """Check the payload by its schema and the origin's policies; set ``schema_status``
        and ``schema_version`` (the version of the schema that checked it).

        Browser events may not be server-only types (after normalising the name, in any
        payload encoding). Raises :class:`EventRejected`.
        """
        source, event_type, data = event["event_source"], event["event_type"], event["event"]
        if origin == "browser":
            refusal = server_only_reason(event_type, data) or self.types.server_only_reason(
                event_type
            )
            if refusal:
                raise EventRejected({"event_type": [refusal]})
        verdict, version = self.types.check(source, event_type, data)
        event["schema_version"] = version
        if verdict.status == "invalid":
            raise EventRejected({"event": verdict.errors})
        if verdict.status == "unknown":
            if self.unknown_events == "reject":
                raise EventRejected(
                    {"event_type": [f"Unknown event type {event_type!r} for source {source!r}."]}
                )
            event["schema_status"] = "unvalidated"
        else:
            event["schema_status"] = "valid"
        return event

    def check(self, event: Event) -> tuple[dict[str, Any], Encoded | None]:
        """Why the databases cannot hold ``event`` (``{}`` when they can), and its JSON
        columns encoded (for the store) when they can."""
        if event.keys() != _KEYSET:
            missing = sorted(_KEYSET - event.keys())
            if missing:
                why = (
                    f"The event has no {', '.join(missing)}"
                    " (a processor or an old spool line dropped them)."
                )
                return {"_schema": [why]}, None
        return check(event, self.max_event_bytes)

    # -- the path -----------------------------------------------------------------------

    def submit(
        self,
        origin: str,
        inputs: Sequence[T],
        build: Callable[[T], Event],
        describe: Describe,
        *,
        spool: bool = False,
        bulk: bool = False,
        process: bool = True,
    ) -> Submission:
        """Build each input into an event and take it down the path; see the module doc.

        ``build`` raises :class:`EventRejected` for an input it cannot make an event of;
        an event it gives without ``schema_status`` is validated. ``spool``: keep
        everything in the spool when the database is unavailable instead of raising.
        ``bulk``: the fastest insert, stored ids not listed (import). ``process``: run
        the processors (``False`` for events that went through them already).
        """
        run = _Run(origin, inputs, describe)
        chain = self.chain if process else _unchanged
        for index, item in enumerate(inputs):
            try:
                event = build(item)
                if event["schema_status"] is None:
                    self.validate(event, origin)
                processed = chain(event)
            except EventRejected as exc:
                self._refuse(run, index, item, exc.errors)
                continue
            except ProcessingFailed as exc:
                self._refuse(run, index, item, {"_processor": [str(exc)]}, without_identity(event))
                continue
            if processed is None:
                run.result.dropped.append(event["event_id"])
                continue
            errors, encoded = self.check(processed)
            if errors:
                self._refuse(run, index, item, errors)
                continue
            run.ready.append(processed)
            run.positions.append(index)
            run.encoded.append(encoded)
        self._finish(run, spool=spool, bulk=bulk)
        return run.result

    def record(
        self, events: Sequence[Event], *, processed: bool = False, origin: str = "server"
    ) -> StoreResult:
        """Take events already built down the rest of the path (validated if they have no
        ``schema_status`` yet, processed unless ``processed``); raise if unavailable.
        Failed ones are kept in the failed table and listed in ``rejected``."""
        done = self.submit(origin, events, _unchanged, _describe_event, process=not processed)
        rejected = [(r.event_id or "", _summary(r.errors)) for r in done.failed]
        return StoreResult(done.stored, done.duplicates, rejected)

    def store_spooled(self, events: Sequence[Mapping[str, Any]]) -> None:
        """The spool's store callback: events that were ready when they were spooled
        (checked again, not processed again); raises when the store is unavailable."""
        spooled = cast(Sequence[Event], [_with_version(event) for event in events])
        self.submit("spool", spooled, _unchanged, _describe_event, process=False)

    def keep(
        self,
        origin: str,
        raw: Any,
        reasons: dict[str, Any],
        *,
        detail: str | None = None,
        keep_bytes: int | None = None,
        event_id: Any = None,
        event_type: Any = None,
    ) -> None:
        """Keep what was refused before it could become an event (a request body, a
        torn spool line); raises when the database is unavailable."""
        row = self.failures.row(
            origin,
            raw,
            reasons,
            event_id=event_id,
            event_type=event_type,
            detail=detail,
            keep_bytes=keep_bytes,
        )
        self.store.write((), [row])
        self._count_failed(1)

    def store_failed_rows(self, rows: Sequence[dict[str, Any]]) -> None:
        """Write failed rows that waited in the spool (built when they failed)."""
        self.store.write((), [_as_stored(row) for row in rows])

    # -- internals ----------------------------------------------------------------------

    def _refuse(
        self, run: _Run, index: int, item: Any, errors: dict[str, Any], raw: Any = _AS_DESCRIBED
    ) -> None:
        described, event_id, event_type, detail = run.describe(item)
        run.rows.append(
            self.failures.row(
                run.origin,
                described if raw is _AS_DESCRIBED else raw,
                errors,
                event_id=event_id,
                event_type=event_type,
                detail=detail,
            )
        )
        run.result.failed.append(Refusal(index, _text(event_id), errors))

    def _finish(self, run: _Run, *, spool: bool, bulk: bool) -> None:
        run.result.ready = run.ready
        if not run.ready and not run.rows:
            return
        try:
            self._store(run, bulk=bulk)
        except StoreUnavailable:
            if not spool or self.spool is None:
                raise
            self.spool.append(cast(list[dict[str, Any]], run.ready))
            self.spool.append_failed(run.rows)
            run.result.spooled = True
            logger.warning(
                "Tracking store unavailable: %d events and %d failed rows spooled.",
                len(run.ready),
                len(run.rows),
            )
            return
        if run.origin != "spool":
            self._drain_spool()

    def _store(self, run: _Run, *, bulk: bool) -> None:
        result = run.result
        try:
            run.rows = not_kept_yet(self.store.engine, run.rows)  # a re-import's, once
            if bulk:
                count, rejected = self.store.insert_many(run.ready, run.rows, run.encoded)
                result.stored_count += count
                fresh: Sequence[Event] = []
            else:
                stored = self.store.write(run.ready, run.rows, run.encoded)
                rejected = stored.rejected
                result.stored += stored.stored
                result.duplicates += stored.duplicates
                kept = set(stored.stored)
                fresh = [e for e in run.ready if e["event_id"] in kept]
        except Exception as exc:
            if is_unavailable(exc):  # its first line says why (no SQL, no values)
                reason = redact(str(exc).strip().splitlines()[0][:200])
                logger.warning("Tracking store unavailable: %s", reason)
                raise StoreUnavailable(reason) from exc
            raise
        self._count_failed(len(run.rows))
        self.catalog.keep()
        if rejected:
            self._keep_rejected(run, rejected)
        for backend in (*self.backends, *self.log_backends):
            try:
                backend.send(fresh)
            except Exception:
                logger.exception("Tracking backend %r failed; the others went on.", backend)

    def _keep_rejected(self, run: _Run, rejected: list[tuple[str, str]]) -> None:
        """Rows the database refused although they passed the limits: keep them too."""
        where = {e["event_id"]: i for i, e in enumerate(run.ready)}
        refused = {event_id for event_id, _ in rejected}
        run.result.ready = [e for e in run.ready if e["event_id"] not in refused]
        rows = []
        for event_id, reason in rejected:
            index = run.positions[where[event_id]]
            errors = {"_store": [reason]}
            raw, _, event_type, detail = run.describe(run.inputs[index])
            rows.append(
                self.failures.row(
                    run.origin, raw, errors, event_id=event_id, event_type=event_type, detail=detail
                )
            )
            run.result.failed.append(Refusal(index, event_id, errors))
        rows = not_kept_yet(self.store.engine, rows)
        self.store.write((), rows)
        self._count_failed(len(rows))

    def _count_failed(self, count: int) -> None:
        if not count or not self.max_failed_rows:
            return
        self._failed_since_prune += count
        if self._failed_since_prune >= min(PRUNE_EVERY, max(1, self.max_failed_rows // 2)):
            self._failed_since_prune = 0
            try:
                removed = self.store.prune_failed(self.max_failed_rows)
            except Exception:
                logger.exception("Pruning the failed-events table failed; tried again later.")
                return
            if removed:
                logger.warning(
                    "The failed-events table passed TRACKING_MAX_FAILED_EVENTS: removed the"
                    " %d oldest rows.",
                    removed,
                )

    def _drain_spool(self) -> None:
        if self.spool is None or not self.spool.pending():
            return
        try:
            self.spool.drain(self)
        except Exception:
            logger.exception("Draining the tracking spool failed; it is kept for later.")


def _as_stored(row: dict[str, Any]) -> dict[str, Any]:
    """A failed row read back from the spool: its time a datetime again."""
    when = row.get("failed_at")
    if isinstance(when, str):
        try:
            row = {**row, "failed_at": datetime.fromisoformat(when)}
        except ValueError:
            row = {k: v for k, v in row.items() if k != "failed_at"}
    return row


def _with_version(event: Mapping[str, Any]) -> Mapping[str, Any]:
    """A spooled event; lines spooled before events had ``schema_version`` get ``None``."""
    return event if "schema_version" in event else {**event, "schema_version": None}


def _unchanged(event: Event) -> Event:
    return event


def _describe_event(event: Event) -> tuple[Any, Any, Any, str | None]:
    return event, event.get("event_id"), event.get("event_type"), None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _summary(errors: dict[str, Any]) -> str:
    return str(EventRejected(errors))
