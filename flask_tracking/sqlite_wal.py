"""WAL checkpoints of a SQLite event store, moved out of the requests.

By default SQLite copies the write-ahead log back into the database inside whichever
commit crosses 1,000 pages: that request then takes tens of milliseconds. Instead, the
store's connections turn automatic checkpoints off and a background thread of each
process runs a passive checkpoint (it never blocks readers or writers) about once a
second after writes.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import weakref

logger = logging.getLogger(__name__)

#: Seconds between checkpoints while events are being written.
INTERVAL = 1.0


class Checkpointer:
    """Runs ``PRAGMA wal_checkpoint(PASSIVE)`` in a thread after writes (one per process)."""

    def __init__(self, path: str, owner: object) -> None:
        self.path = path
        self._dirty = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._pid = 0
        #: How many checkpoints this process ran (for tests and curiosity).
        self.runs = 0
        weakref.finalize(owner, self._stop.set)

    def wrote(self) -> None:
        """Note a commit; start this process's thread if it is not running."""
        self._dirty.set()
        if self._pid != os.getpid():
            with self._lock:
                if self._pid != os.getpid():
                    self._pid = os.getpid()
                    name = f"tracking-wal-checkpoint-{os.path.basename(self.path)}"
                    threading.Thread(target=self._run, name=name, daemon=True).start()

    def _run(self) -> None:
        conn: sqlite3.Connection | None = None
        try:
            while not self._stop.wait(INTERVAL):
                if not self._dirty.is_set():
                    continue
                self._dirty.clear()
                try:
                    if conn is None:
                        conn = sqlite3.connect(self.path, timeout=5, check_same_thread=False)
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                    self.runs += 1
                except sqlite3.Error:
                    logger.warning("WAL checkpoint of %s failed; retried later.", self.path)
                    self._dirty.set()
        finally:
            if conn is not None:
                conn.close()
