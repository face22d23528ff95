"""Times given on the command line (``--since`` / ``--until``), read one way everywhere.

Accepted: an ISO date (``2026-11-30``: its midnight, UTC), an ISO time with or without a
zone (``2026-11-30T08:00``, ``2026-11-30 08:00:00+01:00``, ``...Z``; UTC if none), or a
span back from now: a whole number and a unit, ``s`` ``m`` ``h`` ``d`` ``w`` (``30m``,
``24h``, ``7d``, ``2w``). Anything else is a usage error naming the option, and so is a
time the calendar cannot hold once in UTC (``0001-01-01T00:00+01:00``).

Time zones (``--tz``, the dashboard's ``tz``) are read by :func:`zone`: an IANA name of
the installed time-zone data, else ``ValueError`` (never the ``OSError`` the file lookup
behind ``ZoneInfo`` raises for ``America``, a directory, or a name too long for a path).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, available_timezones

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
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"{text!r} is out of the calendar's range in UTC.") from None


@lru_cache(maxsize=1)
def _zone_names() -> frozenset[str]:
    return frozenset(available_timezones())


@lru_cache(maxsize=64)
def zone(name: str) -> ZoneInfo:
    """The zone named ``name`` (``ValueError`` naming it if there is none)."""
    if name not in _zone_names():
        shown = repr(name) if len(name) <= 64 else repr(name[:64]) + "..."
        raise ValueError(f"Unknown time zone {shown} (an IANA name: UTC, Europe/Paris).")
    return ZoneInfo(name)


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
