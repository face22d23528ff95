"""Import and export of edX tracking logs (JSON lines, plain or gzip)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import IO, Any

from sqlalchemy import Engine, select

from .engine import statement_timeout
from .errors import EventRejected
from .event import Event
from .logfiles import Line
from .logformat import LineError, parse_line, render_line
from .models import events_table
from .tracker import Tracker

#: Events stored per transaction on import (each transaction is bound by
#: TRACKING_DB_TIMEOUT, like any write: a chunk takes well under 0.5 s).
CHUNK = 2000


@dataclass(slots=True)
class ImportSummary:
    """Counts of one import: every line read ends up in exactly one of the others."""

    read: int = 0
    stored: int = 0
    duplicates: int = 0
    failed: int = 0
    #: Dropped on purpose by a processor (shown only when there are any).
    dropped: int = 0
    #: The earliest and latest ``time`` of the events that went to the store (stored now
    #: or before): the range the catalog's first and last seen are widened by.
    first: datetime | None = None
    last: datetime | None = None

    def __str__(self) -> str:
        line = (
            f"read={self.read} stored={self.stored}"
            f" duplicates={self.duplicates} failed={self.failed}"
        )
        return f"{line} dropped={self.dropped}" if self.dropped else line

    def add(self, other: ImportSummary) -> None:
        """Count ``other``'s lines too."""
        self.read += other.read
        self.stored += other.stored
        self.duplicates += other.duplicates
        self.failed += other.failed
        self.dropped += other.dropped
        if other.first is not None and (self.first is None or other.first < self.first):
            self.first = other.first
        if other.last is not None and (self.last is None or other.last > self.last):
            self.last = other.last


#: Why a line whose JSON nests deeper than Python's parser goes is refused.
TOO_DEEP = "The line's JSON is nested too deeply to decode."


def _decode(line: str) -> dict[str, Any]:
    """The JSON object of a line, after any logging prefix (``... - {...}``)."""
    start = line.find("{")
    if start < 0:
        raise LineError("No JSON object on this line.")
    try:
        value = json.loads(line[start:])
    except ValueError as exc:
        raise LineError(f"Not valid JSON: {exc}.") from None
    except RecursionError:  # Python's parser gives up (a thousand levels or so)
        raise LineError(TOO_DEEP) from None
    if not isinstance(value, dict):
        raise LineError("The line's JSON is not an object.")
    return value


#: What an import takes: ``(path, line number, text)``, or a :class:`~.logfiles.Line`
#: (``logfiles.read_lines``), which may be one the reader refused.
LogLine = tuple[str, int, str] | Line


def import_lines(tracker: Tracker, lines: Iterable[LogLine]) -> ImportSummary:
    """Validate and store tracking-log lines; broken ones go to the failed table.

    Lines take the one path (``pipeline.py``) in chunks of :data:`CHUNK`, one transaction
    each, with the bulk insert (``import_jobs.py`` runs the chunks in worker processes).
    """
    summary = ImportSummary()
    received_at = datetime.now(UTC)
    for chunk in chunks(lines, summary):
        summary.add(import_chunk(tracker, chunk, received_at))
    return summary


def chunks(lines: Iterable[LogLine], summary: ImportSummary) -> Iterator[list[Line]]:
    """``lines`` in chunks of :data:`CHUNK`, each line counted in ``summary.read``."""
    chunk: list[Line] = []
    for item in lines:
        summary.read += 1
        chunk.append(item if isinstance(item, Line) else Line(*item))
        if len(chunk) >= CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _describe_line(item: Line) -> tuple[Any, Any, Any, str | None]:
    return item.text.rstrip("\n"), None, None, f"{item.path}:{item.number}"


def import_chunk(tracker: Tracker, chunk: list[Line], received_at: datetime) -> ImportSummary:
    """Import one chunk in one transaction; its counts (``read`` left at 0)."""

    def build(item: Line) -> Event:
        if item.refused is not None:  # by the reader: too long, or the file unreadable
            raise EventRejected({"_line": [item.refused]})
        try:
            return parse_line(_decode(item.text), received_at=received_at)
        except LineError as exc:
            raise EventRejected({"_line": [str(exc)]}) from None
        except RecursionError:  # a JSON string in the line (its context) nested as deep
            raise EventRejected({"_line": [TOO_DEEP]}) from None

    done = tracker.submit("import", chunk, build, _describe_line, bulk=True)
    times = [event["time"] for event in done.ready]
    return ImportSummary(
        stored=done.stored_count,
        failed=len(done.failed),
        dropped=len(done.dropped),
        duplicates=len(done.ready) - done.stored_count,
        first=min(times, default=None),
        last=max(times, default=None),
    )


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
    # An export reads the whole table: not bound by TRACKING_DB_TIMEOUT (engine.py).
    with engine.connect() as conn, statement_timeout(conn, None):
        for row in conn.execution_options(yield_per=2000).execute(query):
            out.write(json.dumps(render_line(dict(row._mapping)), default=str) + "\n")
            count += 1
    return count


def _naive(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value
