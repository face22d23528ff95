"""Import and export of edX tracking logs (JSON lines, plain or gzip)."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import IO, Any

from sqlalchemy import Engine, select

from .errors import EventRejected
from .logformat import LineError, parse_line, render_line
from .models import events_table
from .tracker import Tracker

#: Events stored per transaction on import.
CHUNK = 5000


@dataclass(slots=True)
class ImportSummary:
    """Counts of one import: every line read ends up in exactly one of the others."""

    read: int = 0
    stored: int = 0
    duplicates: int = 0
    failed: int = 0
    #: Dropped on purpose by a processor (shown only when there are any).
    dropped: int = 0

    def __str__(self) -> str:
        line = (
            f"read={self.read} stored={self.stored}"
            f" duplicates={self.duplicates} failed={self.failed}"
        )
        return f"{line} dropped={self.dropped}" if self.dropped else line


def open_log(path: str) -> IO[str]:
    """Open a tracking log, gzip or plain, as text."""
    with open(path, "rb") as probe:
        magic = probe.read(2)
    if magic == b"\x1f\x8b":
        return gzip.open(path, "rt", encoding="utf-8", errors="surrogateescape")
    return open(path, encoding="utf-8", errors="surrogateescape")


def read_lines(paths: Iterable[str]) -> Iterator[tuple[str, int, str]]:
    """Yield ``(path, line number, line)`` for every non-blank line of the files."""
    for path in paths:
        with open_log(path) as handle:
            for number, line in enumerate(handle, 1):
                if line.strip():
                    yield path, number, line


def _decode(line: str) -> dict[str, Any]:
    """The JSON object of a line, after any logging prefix (``... - {...}``)."""
    start = line.find("{")
    if start < 0:
        raise LineError("No JSON object on this line.")
    try:
        value = json.loads(line[start:])
    except ValueError as exc:
        raise LineError(f"Not valid JSON: {exc}.") from None
    if not isinstance(value, dict):
        raise LineError("The line's JSON is not an object.")
    return value


def import_lines(tracker: Tracker, lines: Iterable[tuple[str, int, str]]) -> ImportSummary:
    """Validate and store tracking-log lines; broken ones go to the failed table."""
    summary = ImportSummary()
    received_at = datetime.now(UTC)
    batch: list[dict[str, Any]] = []
    failures: list[dict[str, Any]] = []
    for path, number, line in lines:
        summary.read += 1
        try:
            event = parse_line(_decode(line), received_at=received_at)
            event["schema_status"] = tracker.validate(
                event["event_source"], event["event_type"], event["event"]
            )
        except (LineError, EventRejected) as exc:
            reasons = exc.errors if isinstance(exc, EventRejected) else {"_line": [str(exc)]}
            failures.append(
                {
                    "origin": "import",
                    "event_type": None,
                    "raw": line.rstrip("\n"),
                    "reasons": reasons,
                    "detail": f"{path}:{number}",
                }
            )
            continue
        processed = tracker.process(event)
        if processed is None:
            summary.dropped += 1
            continue
        batch.append(processed)
        if len(batch) >= CHUNK:
            _flush(tracker, batch, failures, summary)
    _flush(tracker, batch, failures, summary)
    return summary


def _flush(
    tracker: Tracker,
    batch: list[dict[str, Any]],
    failures: list[dict[str, Any]],
    summary: ImportSummary,
) -> None:
    if batch:
        stored, rejected = tracker.store.insert_many(batch)
        if rejected:
            by_id = {e["event_id"]: e for e in batch}
            failures.extend(_refused(by_id[event_id], reason) for event_id, reason in rejected)
        summary.stored += stored
        summary.duplicates += len(batch) - stored - len(rejected)
        batch.clear()
    if failures:
        tracker.store.save_failed(failures)
        summary.failed += len(failures)
        failures.clear()


def _refused(event: dict[str, Any], reason: str) -> dict[str, Any]:
    return {
        "origin": "import",
        "event_id": event["event_id"],
        "event_type": event["event_type"],
        "raw": json.dumps(render_line(event), default=str),
        "reasons": {"_store": [reason]},
        "detail": None,
    }


def export_lines(
    engine: Engine,
    out: IO[str],
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    event_type: str | None = None,
    course_id: str | None = None,
) -> int:
    """Write stored events as edX tracking-log lines, by time; return the count."""
    table = events_table
    query = select(table).order_by(table.c.time, table.c.id)
    if since is not None:
        query = query.where(table.c.time >= _naive(since))
    if until is not None:
        query = query.where(table.c.time < _naive(until))
    if event_type is not None:
        query = query.where(table.c.event_type == event_type)
    if course_id is not None:
        query = query.where(table.c.course_id == course_id)
    count = 0
    with engine.connect() as conn:
        for row in conn.execution_options(yield_per=2000).execute(query):
            out.write(json.dumps(render_line(dict(row._mapping)), default=str) + "\n")
            count += 1
    return count


def _naive(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value
