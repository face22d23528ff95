"""``flask tracking import --jobs N``: the chunks of an import in N worker processes.

Parsing a line (JSON, the event mapping, its content id, validation, the anonymiser, the
limits) is pure Python and costs several times what storing it does, so one process
keeps one core busy and the database mostly waiting. With ``--jobs N`` the main process
reads the files and cuts them into the chunks of ``tracking_logs.chunks`` (the same
chunks as a serial import); N processes forked from it (``ProcessPoolExecutor``, the
``fork`` start method: the app, its config and its processors as they are) each take a
chunk at a time down the one path, ``tracking_logs.import_chunk``, in a transaction of
their own on their own connections (``engine.reset_after_fork`` gives each child an
empty pool), and send back the chunk's counts.

The result is that of a serial import: the same ids (from each line's content), the
same rows and failed rows, the same counts (a line repeated in two chunks stored at
once is stored by one, a duplicate of the other: the database's unique id decides, as
for two processes writing). Only the order in which chunks commit differs. At most
``2 * N`` chunks are in flight (read ahead of the workers), so memory stays bounded
whatever the size of the files. "The database is unavailable" in a worker stops the
import with that error, as it does a serial one, and so does a worker that died (killed:
``BrokenProcessPool``): the chunks not started are dropped, those being stored finish,
and the chunks committed stay committed (importing again stores only the rest).
"""

from __future__ import annotations

import multiprocessing
from collections import deque
from collections.abc import Iterable
from concurrent.futures import Future, ProcessPoolExecutor
from datetime import UTC, datetime

from .logfiles import Line
from .tracker import Tracker
from .tracking_logs import ImportSummary, LogLine, chunks, import_chunk, import_lines

#: What the forked workers inherit: the tracker and the import's ``received_at``.
_job: tuple[Tracker, datetime] | None = None


def import_parallel(tracker: Tracker, lines: Iterable[LogLine], jobs: int) -> ImportSummary:
    """:func:`~flask_tracking.tracking_logs.import_lines` with the chunks stored by
    ``jobs`` worker processes (``jobs <= 1``: in this process)."""
    if jobs <= 1:
        return import_lines(tracker, lines)
    global _job
    summary = ImportSummary()
    _job = (tracker, datetime.now(UTC))
    context = multiprocessing.get_context("fork")
    pool = ProcessPoolExecutor(max_workers=jobs, mp_context=context)
    try:
        pending: deque[Future[ImportSummary]] = deque()
        for chunk in chunks(lines, summary):
            pending.append(pool.submit(_work, chunk))
            if len(pending) >= 2 * jobs:
                summary.add(pending.popleft().result())
        while pending:
            summary.add(pending.popleft().result())
    except BaseException:
        # Chunks not started are dropped; those being stored finish (committed or not).
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    else:
        pool.shutdown(wait=True)
    finally:
        _job = None
    return summary


def _work(chunk: list[Line]) -> ImportSummary:
    """In a worker: import one chunk, give its counts."""
    assert _job is not None, "a worker forked without its job"
    tracker, received_at = _job
    return import_chunk(tracker, chunk, received_at)
