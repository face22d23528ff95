"""Import and export of edX tracking logs (JSON lines, plain or gzip)."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import IO, Any

from sqlalchemy import Engine, select

from .engine import statement_timeout
from .errors import EventRejected
from .event import Event
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


def import_lines(tracker: Tracker, lines: Iterable[tuple[str, int, str]]) -> ImportSummary:
    """Validate and store tracking-log lines; broken ones go to the failed table.

    Lines take the one path (``pipeline.py``) in chunks of :data:`CHUNK`, one transaction
    each, with the bulk insert (``import_jobs.py`` runs the chunks in worker processes).
    """
    summary = ImportSummary()
    received_at = datetime.now(UTC)
    for chunk in chunks(lines, summary):
        summary.add(import_chunk(tracker, chunk, received_at))
    return summary


def chunks(
    lines: Iterable[tuple[str, int, str]], summary: ImportSummary
) -> Iterator[list[tuple[str, int, str]]]:
    """``lines`` in chunks of :data:`CHUNK`, each line counted in ``summary.read``."""
    chunk: list[tuple[str, int, str]] = []
    for item in lines:
        summary.read += 1
        chunk.append(item)
        if len(chunk) >= CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _describe_line(item: tuple[str, int, str]) -> tuple[Any, Any, Any, str | None]:
    path, number, line = item
    return line.rstrip("\n"), None, None, f"{path}:{number}"


def import_chunk(
    tracker: Tracker, chunk: list[tuple[str, int, str]], received_at: datetime
) -> ImportSummary:
    """Import one chunk in one transaction; its counts (``read`` left at 0)."""

    def build(item: tuple[str, int, str]) -> Event:
        try:
            return parse_line(_decode(item[2]), received_at=received_at)
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
