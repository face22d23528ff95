"""The spool: server events that could not be stored wait in a local file, not lost.

When the database cannot be reached, ``tracking.emit()`` appends the events to a JSON-lines
file; the next successful store (or ``flask tracking drain-spool``) stores them, with their
own ids, so draining twice stores nothing twice.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from .event import TIME_KEYS

logger = logging.getLogger(__name__)

_TIME_KEYS = (*TIME_KEYS, "failed_at")


def _encode(event: dict[str, Any]) -> str:
    out = dict(event)
    for key in _TIME_KEYS:
        if isinstance(out.get(key), datetime):
            out[key] = out[key].isoformat()
    return json.dumps(out, default=str)


def _decode(line: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads(line)
    for key in _TIME_KEYS:
        if isinstance(event.get(key), str):
            event[key] = datetime.fromisoformat(event[key])
    return event


class Spool:
    """A JSON-lines file of events waiting for the store."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = threading.Lock()

    def pending(self) -> bool:
        """Whether events are waiting (a cheap check, made after every store)."""
        return os.path.exists(self.path) or os.path.exists(self.path + ".draining")

    def append(self, events: Sequence[dict[str, Any]]) -> None:
        """Keep events for later; raises ``OSError`` only when the disk refuses too."""
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        text = "".join(_encode(e) + "\n" for e in events)
        with self._lock, open(self.path, "a", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())

    def append_failed(self, rows: Sequence[dict[str, Any]]) -> None:
        """Keep failed rows for later (interim: the faults branch replaces this module)."""
        if rows:
            self.append([{"_failed_row": True, **row} for row in rows])

    def drain(
        self,
        store: Callable[[list[dict[str, Any]]], Any],
        store_failed: Callable[[list[dict[str, Any]]], Any] | None = None,
        chunk: int = 500,
    ) -> int:
        """Hand spooled events to ``store`` in chunks; remove the file when all are in."""
        with self._lock:
            draining = self.path + ".draining"
            if not os.path.exists(draining):
                if not os.path.exists(self.path):
                    return 0
                os.replace(self.path, draining)
            count = 0
            batch: list[dict[str, Any]] = []
            with open(draining, encoding="utf-8") as handle:
                for line in handle:
                    if line.strip():
                        record = _decode(line)
                        if record.pop("_failed_row", False):
                            if store_failed is not None:
                                store_failed([record])
                            continue
                        batch.append(record)
                    if len(batch) >= chunk:
                        store(batch)
                        count += len(batch)
                        batch = []
            if batch:
                store(batch)
                count += len(batch)
            os.remove(draining)
        logger.info("Stored %d spooled tracking events.", count)
        return count
