"""Backends besides the SQL store. A backend is anything with ``send(events)``."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from .logformat import render_line


class JsonLinesBackend:
    """Appends each event as an edX tracking-log JSON line to a file."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = threading.Lock()
        directory = os.path.dirname(os.path.abspath(path))
        os.makedirs(directory, exist_ok=True)

    def send(self, events: Sequence[Mapping[str, Any]]) -> None:
        if not events:
            return
        text = "".join(
            json.dumps(render_line(e), ensure_ascii=True, default=str) + "\n" for e in events
        )
        with self._lock, open(self.path, "a", encoding="utf-8") as handle:
            handle.write(text)

    def __repr__(self) -> str:
        return f"<JsonLinesBackend {self.path!r}>"
