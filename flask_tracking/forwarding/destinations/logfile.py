"""The ``log`` destination: edX tracking-log JSON lines appended to a file, rotated by size."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Mapping, Sequence
from typing import Any

from .base import Destination, OutgoingEvent, RetryableError, strict_json


class LogDestination(Destination):
    """Appends edX tracking-log JSON lines to a file, rotated by size.

    Options: ``path`` (required), ``max_bytes`` (rotate before the file would pass it;
    default 100 MiB, 0: never), ``backup_count`` (files kept, ``path.1`` the newest;
    default 5). Several processes may write to the same file: writes and rotation hold
    an exclusive lock on ``path + ".lock"``. Lines are the ones ``flask tracking export``
    writes (ASCII JSON), and strict: an event with NaN or a lone surrogate is refused.
    """

    kind = "log"
    default_batch_size = 1000
    strict_options = True

    def __init__(self, name: str, options: Mapping[str, Any]) -> None:
        super().__init__(name, options)
        self.path = os.path.abspath(self.options.text("path", hint="a file path"))
        self.max_bytes = self.options.integer("max_bytes", 100 * 1024 * 1024)
        self.backup_count = self.options.integer("backup_count", 5)

    def encode(self, event: OutgoingEvent) -> bytes:
        """The event's line, newline included."""
        return strict_json(event.line, ascii=True, compact=False) + b"\n"

    def send(self, events: Sequence[OutgoingEvent]) -> None:
        if not events:
            return
        data = b"".join(self.encode_batch(events))
        try:
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            with open(self.path + ".lock", "a") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                self._rotate(len(data))
                with open(self.path, "ab") as out:
                    out.write(data)
        except OSError as exc:
            raise RetryableError(f"writing {self.path} failed: {exc}") from exc

    def _rotate(self, incoming: int) -> None:
        if not self.max_bytes:
            return
        try:
            size = os.path.getsize(self.path)
        except FileNotFoundError:
            return
        if size == 0 or size + incoming <= self.max_bytes:
            return
        if self.backup_count == 0:
            os.remove(self.path)
            return
        for index in range(self.backup_count - 1, 0, -1):
            older = f"{self.path}.{index}"
            if os.path.exists(older):
                os.replace(older, f"{self.path}.{index + 1}")
        os.replace(self.path, f"{self.path}.1")
