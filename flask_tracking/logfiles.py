"""Reading tracking-log files (JSON lines, plain or gzip) in bounded memory.

What an import reads is whatever an operator points it at: a log cut off mid-gzip by a
full disk or a copy that died, a file with no newline in its first gigabyte, bytes that
are not UTF-8. :class:`LogReader` gives every line of such files as a :class:`Line`,
and what it cannot give as text it gives as a *refused* line, which the import keeps as
a failed row (the one path for what could not be stored):

- a line longer than ``max_chars`` is read past in pieces, never held whole: its head
  is kept, with its length, and refused;
- a file that cannot be read to its end (truncated or corrupt gzip, an I/O error, a file
  that cannot be opened) ends there: the lines before it are given as usual, then one
  refused line says after which line and why, and the reader goes on with the next
  file. :attr:`LogReader.unreadable` lists those files for the command to report;
- bytes that are not UTF-8 are kept as escapes (``surrogateescape``), so they reach the
  failed row as they were.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterable, Iterator
from typing import IO, NamedTuple

#: How much longer than ``TRACKING_MAX_EVENT_BYTES`` a line may be and still be read: a
#: line's JSON escapes (``\\u00e9`` for one character) make it longer than the event it
#: holds, up to 6 times for control characters.
LINE_FACTOR = 8
#: The longest line read by default: that factor times the default 32 KiB event limit.
MAX_LINE_CHARS = LINE_FACTOR * 32 * 1024
#: Characters kept of a line too long to read, and read at a time past the rest of it.
HEAD_CHARS = 4 * 1024
_PIECE = 1 << 20
#: What reading a file can raise besides the OSErrors (``gzip.BadGzipFile`` is one).
_READ_ERRORS = (OSError, EOFError, zlib.error)


class Line(NamedTuple):
    """One line of a log: where it is, its text (without the newline kept or not)."""

    path: str
    number: int
    text: str
    #: Why the reader refused it (too long, the file unreadable from here), else None.
    refused: str | None = None


def open_log(path: str) -> IO[str]:
    """Open a tracking log, gzip or plain, as text."""
    with open(path, "rb") as probe:
        magic = probe.read(2)
    if magic == b"\x1f\x8b":
        return gzip.open(path, "rt", encoding="utf-8", errors="surrogateescape")
    return open(path, encoding="utf-8", errors="surrogateescape")


class LogReader:
    """The non-blank lines of ``paths`` in order, each at most ``max_chars`` long."""

    def __init__(self, paths: Iterable[str], max_chars: int = MAX_LINE_CHARS) -> None:
        self.paths = list(paths)
        self.max_chars = max_chars
        #: ``"path: why"`` for each file that could not be read to its end.
        self.unreadable: list[str] = []

    def __iter__(self) -> Iterator[Line]:
        for path in self.paths:
            yield from self._file(path)

    def _file(self, path: str) -> Iterator[Line]:
        number = 0
        try:
            with open_log(path) as handle:
                while line := handle.readline(self.max_chars + 1):
                    number += 1
                    if len(line) > self.max_chars and not line.endswith("\n"):
                        yield self._too_long(handle, path, number, line)
                    elif line.strip():
                        yield Line(path, number, line)
        except _READ_ERRORS as exc:
            where = f"after line {number}" if number else "at its start"
            why = f"The file could not be read {where}: {_describe(exc)}."
            self.unreadable.append(f"{path}: {why}")
            yield Line(path, number + 1, "", why)

    def _too_long(self, handle: IO[str], path: str, number: int, head: str) -> Line:
        """Read past the rest of a line too long to hold; its head, refused."""
        length = len(head)
        while (piece := handle.readline(_PIECE)) and not piece.endswith("\n"):
            length += len(piece)
        length += len(piece.rstrip("\n"))
        why = (
            f"The line is {length} characters long; lines longer than {self.max_chars}"
            f" are not read ({LINE_FACTOR} times TRACKING_MAX_EVENT_BYTES). Its first"
            f" {HEAD_CHARS} characters are kept."
        )
        return Line(path, number, head[:HEAD_CHARS], why)


def read_lines(paths: Iterable[str], max_chars: int = MAX_LINE_CHARS) -> LogReader:
    """The lines of ``paths`` (:class:`LogReader`)."""
    return LogReader(paths, max_chars)


def _describe(exc: BaseException) -> str:
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return text.rstrip(".")
