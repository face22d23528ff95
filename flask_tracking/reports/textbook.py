"""PDF textbooks: pages viewed per book, page turns, the navigation mix.

Events: ``book`` (browser). Payload: ``type`` (``gotopage``, ``nextpage``,
``prevpage``; anything else counts as ``other``), ``new`` (page opened), ``chapter``
(newer logs: the PDF's URL, taken as the book). Older logs carry no ``chapter``: the book
is then the textbook part of the page URL (``.../pdfbook/0/``), else ``(unknown)``. SQL
selects the events (index ``(event_type, time)``); Python reads the payloads.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, select

from ._common import EVENTS, Rows, fetch, field, integer, learner, where

MOVES = ("gotopage", "nextpage", "prevpage")
_BOOK_URL = re.compile(r"^[^?#]*?/(?:pdf)?book/\d+/")


def book_of(payload: Any, page: str | None) -> str:
    """The book of a ``book`` event (see the module doc)."""
    chapter = field(payload, "chapter")
    if isinstance(chapter, str) and chapter:
        return chapter
    found = _BOOK_URL.match(page or "")
    return found.group(0) if found else "(unknown)"


def _turns(
    bind: Engine | Connection, course_id: str | None, since: datetime | None, until: datetime | None
) -> Iterator[tuple[str, str, int | None, str | None]]:
    query = select(EVENTS.page, EVENTS.user_id, EVENTS.username, EVENTS.event).where(
        *where(course_id, since, until, ["book"])
    )
    for page, user_id, username, payload in fetch(bind, query):
        move = field(payload, "type")
        move = move if move in MOVES else "other"
        yield (
            book_of(payload, page),
            move,
            integer(field(payload, "new")),
            learner(user_id, username),
        )


def textbook(
    bind: Engine | Connection,
    course_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    tz: str = "UTC",
) -> Rows:
    """One row per book: ``book``, ``events``, ``learners``, ``pages_viewed`` (distinct
    pages opened), ``page_turns`` (``nextpage`` + ``prevpage``), and the mix
    ``gotopage``, ``nextpage``, ``prevpage``, ``other``."""
    mix: defaultdict[str, Counter[str]] = defaultdict(Counter)
    pages: defaultdict[str, set[int]] = defaultdict(set)
    people: defaultdict[str, set[str]] = defaultdict(set)
    for book, move, page, who in _turns(bind, course_id, since, until):
        mix[book][move] += 1
        if page is not None:
            pages[book].add(page)
        if who is not None:
            people[book].add(who)
    rows = []
    for book, c in mix.items():
        rows.append(
            {
                "book": book,
                "events": sum(c.values()),
                "learners": len(people[book]),
                "pages_viewed": len(pages[book]),
                "page_turns": c["nextpage"] + c["prevpage"],
                **{move: c[move] for move in (*MOVES, "other")},
            }
        )
    return sorted(rows, key=lambda row: (-row["events"], row["book"]))


def textbook_pages(
    bind: Engine | Connection,
    course_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    tz: str = "UTC",
) -> Rows:
    """One row per (book, page opened): ``views`` and distinct ``learners``."""
    views: Counter[tuple[str, int]] = Counter()
    people: defaultdict[tuple[str, int], set[str]] = defaultdict(set)
    for book, _, page, who in _turns(bind, course_id, since, until):
        if page is not None:
            views[(book, page)] += 1
            if who is not None:
                people[(book, page)].add(who)
    return [
        {"book": b, "page": p, "views": n, "learners": len(people[(b, p)])}
        for (b, p), n in sorted(views.items())
    ]
