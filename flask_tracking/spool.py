"""The spool: server events that could not be stored wait in a local file, not lost.

When the database cannot be reached, server events (``append``) and failed-event rows
(``append_failed``) wait in a JSON-lines file; the next successful store (or
``flask tracking drain-spool``) hands them to the store (``drain``), with their own ids,
so draining twice stores no event twice.

The file is read line by line, and no line can block the ones after it: a line that is
not JSON (a half-written last line after a crash, a corrupted one) or not an event goes
to the failed table (``origin`` ``"spool"``, ``detail`` ``"<path>:<line>"``), and so
does an event the sink raises for (when it is not an outage). The sink (the pipeline)
builds and writes those rows: failed rows are made in one place.

Safe across threads and processes, through ``flock``:

- ``append`` locks the file, checks it is still the one at ``path`` (a drain may have
  moved it away meanwhile: then it opens the new one), ends a torn last line with a
  newline, writes its lines in one ``write`` and ``fsync``\\ s.
- ``drain`` runs in one process at a time (``<path>.drain-lock``). Holding the file's
  lock, it renames ``<path>`` to ``<path>.draining``, so appends go on into a new file,
  never into the one being read; progress is kept in ``<path>.draining.offset`` after
  each batch the store took, so an outage or a crash mid-drain resumes where it stopped.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from .engine import is_unavailable
from .event import TIME_KEYS

logger = logging.getLogger(__name__)

_TIME_KEYS = TIME_KEYS
#: The key that marks a spooled failed-event row (events have no such key).
FAILED_KEY = "_failed"
#: How much of a bad line is searched for its event id and type.
SEARCH_CHARS = 64 * 1024
#: Events (or failed rows) handed to the sink at once.
CHUNK = 500
_ID_FIELD = re.compile(r'"(event_id|event_type)"\s*:\s*"((?:[^"\\]|\\.){1,200})"')


class SpoolSink(Protocol):
    """Where drained lines go (the pipeline); each method raises when the database is
    unavailable (``engine.is_unavailable``), and then draining stops."""

    def store_spooled(self, events: Sequence[dict[str, Any]]) -> object:
        """Store spooled events (duplicates are no-ops; refusals kept by the sink)."""

    def store_failed_rows(self, rows: Sequence[dict[str, Any]]) -> object:
        """Write failed rows that were spooled (already built)."""

    def keep(
        self,
        origin: str,
        raw: Any,
        reasons: dict[str, Any],
        *,
        detail: str | None = None,
        event_id: Any = None,
        event_type: Any = None,
    ) -> object:
        """Keep a line that cannot become an event, as a failed row."""


@dataclass(frozen=True, slots=True)
class BadLine:
    """A spool line that is not a spooled event or failed row."""

    text: str
    line_no: int
    reasons: dict[str, list[str]]
    event_id: str | None = None
    event_type: str | None = None


def _encode(event: dict[str, Any]) -> str:
    out = dict(event)
    for key in _TIME_KEYS:
        if isinstance(out.get(key), datetime):
            out[key] = out[key].isoformat()
    # ASCII: lone surrogates (refused later, by the store) survive as escapes.
    return json.dumps(out, default=str)


def _decode(obj: dict[str, Any]) -> dict[str, Any]:
    """An event from its line's object; ``ValueError`` saying what is wrong."""
    if not isinstance(obj.get("event_id"), str) or not isinstance(obj.get("event_type"), str):
        raise ValueError("The line is not a spooled event (no event_id or event_type).")
    for key in _TIME_KEYS:
        if isinstance(obj.get(key), str):
            try:
                obj[key] = datetime.fromisoformat(obj[key])
            except ValueError:
                raise ValueError(f"{key}: not an ISO 8601 time.") from None
    if not isinstance(obj.get("time"), datetime):
        raise ValueError("time: missing.")
    return obj


class Spool:
    """A JSON-lines file of events (and failed-event rows) waiting for the store."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.draining = path + ".draining"
        self.offset_path = self.draining + ".offset"
        self.drain_lock = path + ".drain-lock"

    def pending(self) -> bool:
        """Whether anything is waiting (a cheap check, made after every store)."""
        return os.path.exists(self.path) or os.path.exists(self.draining)

    # -- appending ---------------------------------------------------------------------

    def append(self, events: Sequence[dict[str, Any]]) -> None:
        """Keep events for later; raises ``OSError`` only when the disk refuses too."""
        self._append([_encode(e) for e in events])

    def append_failed(self, rows: Sequence[dict[str, Any]]) -> None:
        """Keep failed-event rows for later (the failed table was unreachable too)."""
        self._append([json.dumps({FAILED_KEY: row}, default=str) for row in rows])

    def _append(self, lines: list[str]) -> None:
        if not lines:
            return
        data = "".join(line + "\n" for line in lines).encode("ascii")
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        with self._locked_current() as fd:
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                data = b"\n" + data  # a torn last line stays one line of its own
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)

    @contextmanager
    def _locked_current(self) -> Iterator[int]:
        """The file at ``path``, opened for appending and locked (a moved one reopened)."""
        while True:
            flags = os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
            fd = os.open(self.path, flags, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                try:
                    here, mine = os.stat(self.path), os.fstat(fd)
                    current = (here.st_dev, here.st_ino) == (mine.st_dev, mine.st_ino)
                except FileNotFoundError:
                    current = False
                if current:
                    yield fd
                    return
            finally:
                os.close(fd)  # releases the lock

    # -- draining ----------------------------------------------------------------------

    def drain(self, sink: SpoolSink, chunk: int = CHUNK) -> int:
        """Hand what waits to ``sink``; how many lines were handed over.

        When a sink method returns, its lines are done. When it raises an outage
        (``is_unavailable``), draining stops and the rest waits for the next drain;
        another error on a batch of events is retried event by event, and an event that
        still fails is kept by ``sink.keep`` with the error. Returns 0 at once when
        another process is draining.
        """
        if not self.pending():
            return 0
        fd = os.open(self.drain_lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return 0
            count = 0
            while self._take_file():
                count += self._drain_file(sink, max(1, chunk))
        finally:
            os.close(fd)
        if count:
            logger.info("Handed %d spooled tracking lines to the store.", count)
        return count

    def _take_file(self) -> bool:
        """Whether a file is ready to drain: the one left by an earlier drain, else
        the current one, moved away while appends are locked out."""
        if os.path.exists(self.draining):
            return True
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            _remove(self.offset_path)
            os.replace(self.path, self.draining)
        finally:
            os.close(fd)
        return True

    def _drain_file(self, sink: SpoolSink, chunk: int) -> int:
        """Drain ``<path>.draining`` from where the last drain of it stopped."""
        count = 0
        offset, line_no = self._progress()
        batch: list[tuple[int, Any]] = []
        kind = ""
        with open(self.draining, "rb") as handle:
            handle.seek(offset)
            for raw in handle:
                line_no += 1
                if not raw.strip():
                    offset += len(raw)
                    continue
                item_kind, item = self._parse(raw, line_no)
                if batch and (item_kind != kind or len(batch) >= chunk):
                    count += self._hand_over(kind, batch, sink)
                    self._save_progress(offset, line_no - 1)
                    batch = []
                kind = item_kind
                batch.append((line_no, item))
                offset += len(raw)
        if batch:
            count += self._hand_over(kind, batch, sink)
        _remove(self.draining)
        _remove(self.offset_path)
        return count

    def _progress(self) -> tuple[int, int]:
        """``(byte offset, lines before it)`` where draining ``.draining`` resumes."""
        try:
            with open(self.offset_path, encoding="ascii") as handle:
                offset, lines = handle.read().split()
            return int(offset), int(lines)
        except (OSError, ValueError):
            return 0, 0

    def _save_progress(self, offset: int, lines: int) -> None:
        temporary = self.offset_path + ".new"
        with open(temporary, "w", encoding="ascii") as handle:
            handle.write(f"{offset} {lines}\n")
        os.replace(temporary, self.offset_path)

    def _parse(self, raw: bytes, line_no: int) -> tuple[str, Any]:
        """``("event", event)``, ``("failed", row)`` or ``("bad", BadLine)``."""
        try:
            obj = json.loads(raw)
            if not isinstance(obj, dict):
                raise ValueError("The line is not a JSON object.")
            if FAILED_KEY in obj:
                if not isinstance(obj[FAILED_KEY], dict):
                    raise ValueError("The spooled failed row is not a JSON object.")
                return "failed", obj[FAILED_KEY]
            return "event", _decode(obj)
        except json.JSONDecodeError as exc:
            reason = f"Not valid JSON (a torn or corrupted spool line): {exc}."
        except (ValueError, RecursionError) as exc:
            reason = str(exc) or type(exc).__name__
        text = raw.decode("utf-8", "replace").rstrip("\r\n")
        found = {m[1]: m[2] for m in _ID_FIELD.finditer(text[:SEARCH_CHARS])}
        bad = BadLine(
            text, line_no, {"_line": [reason]}, found.get("event_id"), found.get("event_type")
        )
        return "bad", bad

    def _keep(self, sink: SpoolSink, bad: BadLine) -> None:
        sink.keep(
            "spool",
            bad.text,
            bad.reasons,
            detail=f"{self.path}:{bad.line_no}",
            event_id=bad.event_id,
            event_type=bad.event_type,
        )

    def _hand_over(self, kind: str, batch: list[tuple[int, Any]], sink: SpoolSink) -> int:
        """Give a batch to the sink; an outage propagates (the batch stays)."""
        items = [item for _, item in batch]
        if kind == "failed":
            sink.store_failed_rows(items)
            return len(items)
        if kind == "bad":
            for bad in items:
                self._keep(sink, bad)
            return len(items)
        try:
            sink.store_spooled(items)
        except Exception as exc:
            if is_unavailable(exc):
                raise
            logger.exception("Storing %d spooled events failed; retried one by one.", len(items))
            for line_no, item in batch:
                try:
                    sink.store_spooled([item])
                except Exception as error:
                    if is_unavailable(error):
                        raise
                    reason = f"The store could not take it: {type(error).__name__}: {error}"
                    bad = BadLine(
                        _encode(item),
                        line_no,
                        {"_store": [reason[:500]]},
                        item.get("event_id"),
                        item.get("event_type"),
                    )
                    self._keep(sink, bad)
        return len(items)


def _remove(path: str) -> None:
    with suppress(FileNotFoundError):
        os.remove(path)
