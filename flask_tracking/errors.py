"""Exceptions. One base class; a subclass only where a caller catches it."""

from __future__ import annotations

from typing import Any

import click


class TrackingError(Exception):
    """Base class of every error raised by flask-tracking."""


class ConfigError(TrackingError, click.ClickException):
    """A ``TRACKING_*`` setting is missing or wrong; the message names the key and says
    the fix.

    Also a :class:`click.ClickException`: raised while ``flask ...`` loads the app (a
    ``create_app`` calling ``Tracking(app)``) or runs a command, it is printed as one
    ``Error: ...`` line with exit status 1, not as a traceback.
    """

    def __init__(self, message: str) -> None:
        click.ClickException.__init__(self, message)


class ConfigWarning(UserWarning):
    """A ``TRACKING_*`` key that flask-tracking does not know (a typo, most likely)."""


class EventRejected(TrackingError):
    """An event failed validation or a policy; ``errors`` is keyed by field."""

    def __init__(self, errors: dict[str, Any], message: str | None = None) -> None:
        self.errors = errors
        super().__init__(message or _summary(errors))


class StoreUnavailable(TrackingError):
    """The event store (the database) cannot be reached; nothing was stored."""


def _summary(errors: dict[str, Any]) -> str:
    parts = []
    for field, messages in errors.items():
        text = " ".join(messages) if isinstance(messages, list) else str(messages)
        parts.append(text if field == "_schema" else f"{field}: {text}")
    return "; ".join(parts) or "Event rejected."
