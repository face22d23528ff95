"""Times given on the command line (``--since`` / ``--until``), read one way everywhere.

Accepted: an ISO date (``2026-11-30``: its midnight, UTC), an ISO time with or without a
zone (``2026-11-30T08:00``, ``2026-11-30 08:00:00+01:00``, ``...Z``; UTC if none), or a
span back from now: a whole number and a unit, ``s`` ``m`` ``h`` ``d`` ``w`` (``30m``,
``24h``, ``7d``, ``2w``). Anything else is a usage error naming the option.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import click

_SPAN = re.compile(r"^(\d{1,9})\s*([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
FORMS = (
    "an ISO date (2026-11-30), an ISO time (2026-11-30T08:00, UTC if no zone)"
    " or a span back from now (30m, 24h, 7d)"
)


def parse_when(text: str, now: datetime | None = None) -> datetime:
    """``text`` as an aware UTC time (see the module doc); ``ValueError`` if it is none."""
    value = text.strip()
    span = _SPAN.match(value.lower())
    if span:
        try:
            delta = timedelta(**{_UNITS[span.group(2)]: int(span.group(1))})
            return (now or datetime.now(UTC)) - delta
        except OverflowError:
            raise ValueError(f"{text!r} is too long a span.") from None
    iso = value[:-1] + "+00:00" if value[-1:] in ("Z", "z") else value
    try:
        parsed = datetime.fromisoformat(iso)
    except ValueError:
        raise ValueError(f"{text!r} is not {FORMS}.") from None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


class When(click.ParamType):
    """A click option type for :func:`parse_when`: a bad value is a usage error (exit 2)."""

    name = "time"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, datetime):
            return value
        try:
            return parse_when(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


WHEN = When()


def check_window(since: datetime | None, until: datetime | None) -> None:
    """A usage error for ``--until`` before ``--since``."""
    if since is not None and until is not None and until <= since:
        raise click.BadOptionUsage(
            "until",
            f"--until ({until.isoformat()}) must be after --since ({since.isoformat()}).",
        )
