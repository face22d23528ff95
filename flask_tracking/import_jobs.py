"""``flask tracking import --jobs N``: the chunks of an import in N worker processes.

Parsing a line (JSON, the event mapping, its content id, validation, the anonymiser, the
limits) is pure Python and costs several times what storing it does, so one process
keeps one core busy and the database mostly waiting. With ``--jobs N`` the main process
reads the files and cuts them into the chunks of ``tracking_logs.chunks`` (the same
chunks as a serial import); N processes forked from it (``multiprocessing``, the
``fork`` start method: the app, its config and its processors as they are) each take a
chunk at a time down the one path, ``tracking_logs.import_chunk``, in a transaction of
their own on their own connections (``engine.reset_after_fork`` gives each child an
empty pool), and send back the chunk's counts.

The result is that of a serial import: the same ids (from each line's content), the
same rows and failed rows, the same counts (a line repeated in two chunks stored at
once is stored by one, a duplicate of the other: the database's unique id decides, as
for two processes writing). Only the order in which chunks commit differs. At most
``2 * N`` chunks are in flight (read ahead of the workers), so memory stays bounded
whatever the size of the files. An in-memory SQLite database is imported in this process
(a worker would write to a copy of it). "The database is unavailable" in a worker stops the
import with that error, as it does a serial one; the chunks committed stay committed
(importing again stores only the rest).
"""

from __future__ import annotations

import multiprocessing
from collections import deque
from collections.abc import Iterable
from datetime import UTC, datetime
from multiprocessing.pool import AsyncResult

from .tracker import Tracker
from .tracking_logs import ImportSummary, chunks, import_chunk, import_lines

#: What the forked workers inherit: the tracker and the import's ``received_at``.
_job: tuple[Tracker, datetime] | None = None


def import_parallel(
    tracker: Tracker, lines: Iterable[tuple[str, int, str]], jobs: int
) -> ImportSummary:
    """:func:`~flask_tracking.tracking_logs.import_lines` with the chunks stored by
    ``jobs`` worker processes (``jobs <= 1``: in this process)."""
    if jobs <= 1 or _in_memory(tracker):
        return import_lines(tracker, lines)
    global _job
    summary = ImportSummary()
    _job = (tracker, datetime.now(UTC))
    try:
        with multiprocessing.get_context("fork").Pool(jobs) as pool:
            pending: deque[AsyncResult[ImportSummary]] = deque()
            for chunk in chunks(lines, summary):
                pending.append(pool.apply_async(_work, (chunk,)))
                if len(pending) >= 2 * jobs:
                    summary.add(pending.popleft().get())
            while pending:
                summary.add(pending.popleft().get())
            pool.close()  # the workers end on their own (their after-commit work done)
            pool.join()
    finally:
        _job = None
    return summary


def _in_memory(tracker: Tracker) -> bool:
    """An in-memory SQLite database: a forked worker would write to a copy of its own."""
    url = tracker.pipeline.store.engine.url
    return url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:")


def _work(chunk: list[tuple[str, int, str]]) -> ImportSummary:
    """In a worker: import one chunk, give its counts."""
    assert _job is not None, "a worker forked without its job"
    tracker, received_at = _job
    return import_chunk(tracker, chunk, received_at)
