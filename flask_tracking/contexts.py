"""Named, nested contexts: values merged into every event built while they are active.

``with contexts.context("course", {...})`` nests a context; the stack lives in a
:class:`contextvars.ContextVar`, so each request, thread and task sees its own, and the
later (inner) context wins on a key clash.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any


class Contexts:
    """A stack of named contexts, one per thread / task."""

    def __init__(self, name: str) -> None:
        self._stack: ContextVar[tuple[tuple[str, Mapping[str, Any]], ...]] = ContextVar(
            name, default=()
        )

    def enter(self, name: str, values: Mapping[str, Any]) -> None:
        """Push a named context; its values go into every event until it is exited."""
        self._stack.set((*self._stack.get(), (name, dict(values))))

    def exit(self, name: str) -> None:
        """Remove the innermost context called ``name``."""
        stack = list(self._stack.get())
        for index in range(len(stack) - 1, -1, -1):
            if stack[index][0] == name:
                del stack[index]
                self._stack.set(tuple(stack))
                return
        raise KeyError(f"No tracking context named {name!r} is active.")

    @contextmanager
    def context(self, name: str, values: Mapping[str, Any]) -> Iterator[None]:
        """``with contexts.context("course", {"course_id": ...}):`` nests a context."""
        token = self._stack.set((*self._stack.get(), (name, dict(values))))
        try:
            yield
        finally:
            self._stack.reset(token)

    def merged(self, base: Mapping[str, Any]) -> dict[str, Any]:
        """``base`` with the active contexts merged in, outer first (a new dict)."""
        merged = dict(base)
        for _name, values in self._stack.get():
            merged.update(values)
        return merged
