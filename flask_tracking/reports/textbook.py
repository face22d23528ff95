"""PDF textbooks: pages viewed per book, page turns, the navigation mix.

Events: ``book`` (browser). Payload: ``type`` (``gotopage``, ``nextpage``,
``prevpage``; anything else counts as ``other``), ``new`` (page opened), ``chapter``
(newer logs: the PDF's URL, taken as the book). Older logs carry no ``chapter``: the book
is then the textbook part of the page URL (``.../pdfbook/0/``), else ``(unknown)``.

The events are selected by the index ``(event_type, time)`` and aggregated in SQL (one
grouped query per report, ``_sql``). Events whose book is not a ``chapter`` string (older
logs: the book is then in the URL, which SQLite cannot match with a pattern) or whose
page is odd (``_sql``) make the report replay the events in Python (``_turns``) instead.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, case, func, literal, select

from . import _sql
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


def _events(
    bind: Engine | Connection, course_id: str | None, since: datetime | None, until: datetime | None
) -> Any:
    """The ``book`` events as SQL rows: ``book``, ``move``, ``page`` (integer or NULL),
    ``learner``, ``odd``."""
    query = select(_sql.learner_sql().label("learner")).where(
        *where(course_id, since, until, ["book"])
    )
    c = _sql.fields(_sql.dialect_of(bind), query, ("new",), ("type", "chapter"), "turns_read").c
    book_odd = (c.k_chapter != "string") | (c.v_chapter == "")
    move = case(((c.k_type == "string") & c.v_type.in_(MOVES), c.v_type), else_=literal("other"))
    return select(
        c.v_chapter.label("book"),
        move.label("move"),
        _sql.integer_of(c.v_new).label("page"),
        c.learner,
        case((c.o_new | book_odd, 1), else_=0).label("odd"),
    ).cte("turns")


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
    t = _events(bind, course_id, since, until).c
    query = select(
        t.book,
        func.max(t.odd),
        func.count(),
        func.count(t.learner.distinct()),
        func.count(t.page.distinct()),
        *(func.sum(case((t.move == name, 1), else_=0)) for name in (*MOVES, "other")),
    ).group_by(t.book)
    found = _sql.run(bind, query)
    if not any(row[1] for row in found):
        rows = [
            {
                "book": str(book),
                "events": int(n),
                "learners": int(people),
                "pages_viewed": int(pages),
                "page_turns": int(nextpage) + int(prevpage),
                "gotopage": int(goto),
                "nextpage": int(nextpage),
                "prevpage": int(prevpage),
                "other": int(other),
            }
            for book, _, n, people, pages, goto, nextpage, prevpage, other in found
        ]
        return sorted(rows, key=lambda row: (-row["events"], row["book"]))
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
    t = _events(bind, course_id, since, until).c
    query = (
        select(t.book, t.page, func.max(t.odd), func.count(), func.count(t.learner.distinct()))
        .where(t.page.is_not(None) | (t.odd == 1))
        .group_by(t.book, t.page)
    )
    found = _sql.run(bind, query)
    if not any(row[2] for row in found):
        return [
            {"book": str(b), "page": int(p), "views": int(n), "learners": int(people)}
            for b, p, _, n, people in sorted(found, key=lambda row: (str(row[0]), int(row[1])))
        ]
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
