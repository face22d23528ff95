"""The dashboard's filters, all GET query parameters (so a URL is a shareable view).

- ``course``: a course id (empty: every course);
- ``since``, ``until``: a date (``2026-12-01``: that day in ``tz``; ``until`` includes its
  day, the window ends at the next midnight), or what the CLI reads (an ISO time, UTC if no
  zone, ``until`` exclusive; or a span back from now: ``7d``, ``24h``);
- ``tz``: an IANA zone for day boundaries and dates (``UTC``);
- ``q``: a substring of the ids in a list (any case); ``size``: rows per page of a list;
  ``page``: which page (from 1); and the family's pick (``video``, ``sequence``, ...).

The reports are called with ``course_id``, ``since``, ``until`` and ``tz`` as read here:
``Filters.report_args``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from werkzeug.datastructures import MultiDict

from ..failures import storable
from ..timespec import parse_when, zone
from .pages import DEFAULT_PAGE_SIZE, PAGE_SIZES

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
#: The parameters a page keeps in its links (the pick and paging are added per link).
KEPT = ("course", "since", "until", "tz", "q", "size")
#: The longest search text and course id read.
MAX_TEXT = 300


class FilterError(ValueError):
    """A parameter that cannot be read; the message names it."""


@dataclass(frozen=True, slots=True)
class Filters:
    course: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    tz: str = "UTC"
    q: str = ""
    size: int = DEFAULT_PAGE_SIZE
    page: int = 1
    pick: str | None = None
    #: The parameter that gave ``pick`` (``video``, ...), ``None`` on pages without one.
    pick_name: str | None = None
    #: The parameters of ``KEPT`` as given (text), for the form and the links.
    given: dict[str, str] = field(default_factory=dict)

    @property
    def report_args(self) -> dict[str, Any]:
        """Keyword arguments of a report call."""
        return {"course_id": self.course, "since": self.since, "until": self.until, "tz": self.tz}

    def query(self, **changes: Any) -> str:
        """The query string of this view with ``changes`` (``None`` or ``""`` drops one)."""
        values: dict[str, Any] = {k: self.given[k] for k in KEPT if self.given.get(k)}
        if self.pick is not None and self.pick_name is not None:
            values[self.pick_name] = self.pick
        if self.page != 1:
            values["page"] = self.page
        values.update(changes)
        kept = {k: v for k, v in values.items() if v not in (None, "")}
        return ("?" + urlencode(kept)) if kept else ""

    def window_query(self) -> str:
        """The query string of the report window only (course, since, until, tz)."""
        kept = {k: self.given[k] for k in ("course", "since", "until", "tz") if self.given.get(k)}
        return ("?" + urlencode(kept)) if kept else ""


def read_filters(args: MultiDict[str, str], pick_name: str | None = None) -> Filters:
    """The filters of a request's query string (``FilterError`` naming a bad one)."""
    given = {key: args.get(key, "").strip() for key in KEPT}
    tz = given["tz"] or "UTC"
    try:
        local = zone(tz)
    except ValueError as exc:
        raise FilterError(f"tz: {exc}") from None
    since = _when("since", given["since"], local, end=False)
    until = _when("until", given["until"], local, end=True)
    if since is not None and until is not None and until <= since:
        raise FilterError("until must be after since.")
    for key in ("course", "q"):
        if len(given[key]) > MAX_TEXT:
            raise FilterError(f"{key}: at most {MAX_TEXT} characters.")
        if storable(given[key]) != given[key]:  # no database takes it as a value
            raise FilterError(f"{key}: must not contain a NUL character or a lone surrogate.")
    size = _whole("size", given["size"], DEFAULT_PAGE_SIZE)
    if size not in PAGE_SIZES:
        raise FilterError(f"size must be one of {', '.join(map(str, PAGE_SIZES))}.")
    page = _whole("page", args.get("page", "").strip(), 1)
    pick = (args.get(pick_name, "").strip() or None) if pick_name else None
    return Filters(
        course=given["course"] or None,
        since=since,
        until=until,
        tz=tz,
        q=given["q"],
        size=size,
        page=page,
        pick=pick,
        pick_name=pick_name,
        given=given,
    )


def as_given(args: MultiDict[str, str]) -> Filters:
    """No filters, with the parameters as given (the form of a page that refused them)."""
    return Filters(given={key: args.get(key, "").strip()[:MAX_TEXT] for key in KEPT})


def _when(name: str, text: str, zone: ZoneInfo, *, end: bool) -> datetime | None:
    if not text:
        return None
    if _DATE.match(text):
        try:
            day = date.fromisoformat(text)
            if end:
                day += timedelta(days=1)
            return datetime.combine(day, time(0), zone).astimezone(UTC)
        except ValueError:
            raise FilterError(f"{name}: {text!r} is not a date.") from None
        except OverflowError:
            raise FilterError(f"{name}: {text!r} is out of the calendar's range.") from None
    try:
        return parse_when(text)
    except ValueError as exc:
        raise FilterError(f"{name}: {exc}") from None


def _whole(name: str, text: str, default: int) -> int:
    if not text:
        return default
    if not text.isdigit() or not 1 <= int(text) <= 1_000_000:
        raise FilterError(f"{name} must be a whole number from 1, not {text[:20]!r}.")
    return int(text)
