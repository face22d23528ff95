"""Health: can the data be trusted? Failed events, unknown types, schema status, the
Logger's delivery, clock skew, deliveries to destinations.

Failed events have no course (they could not be read): ``course_id`` does not filter
them, and the window applies to ``failed_at``. Deliveries are their state now (neither
course nor window applies). Everything else filters like the other reports.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import date, datetime

from sqlalchemy import Connection, Engine, case, func, literal, select

from ..forwarding.models import FAILED, PENDING, deliveries_table
from ..models import failed_table
from ..stats import UNVALIDATED, reason_labels
from ._common import EVENTS, Days, Rows, fetch, learner, naive, where

#: Upper bounds (ms, exclusive) of the clock-skew bins, and their labels.
SKEW_BINS: tuple[tuple[float, str], ...] = (
    (-60_000, "< -60 s"),
    (-5_000, "-60 s to -5 s"),
    (-1_000, "-5 s to -1 s"),
    (1_000, "-1 s to 1 s"),
    (5_000, "1 s to 5 s"),
    (60_000, "5 s to 60 s"),
    (float("inf"), ">= 60 s"),
)


def health_failed(
    bind: Engine | Connection,
    course_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    tz: str = "UTC",
) -> Rows:
    """Failed events per local day and reason: ``day``, ``reason`` (the short labels of
    ``flask tracking stats``; a row with several reasons counts once for each), ``events``."""
    days = Days(tz)
    c = failed_table.c
    query = select(c.failed_at, c.reasons)
    if since is not None:
        query = query.where(c.failed_at >= naive(since))
    if until is not None:
        query = query.where(c.failed_at < naive(until))
    counts: Counter[tuple[date, str]] = Counter()
    for failed_at, reasons in fetch(bind, query):
        day = days.of_time(failed_at)
        for reason in set(reason_labels(reasons)) or {"(no reason)"}:
            counts[(day, reason)] += 1
    return [
        {"day": d.isoformat(), "reason": r, "events": n} for (d, r), n in sorted(counts.items())
    ]


def health_schema(
    bind: Engine | Connection,
    course_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    tz: str = "UTC",
) -> Rows:
    """Events per ``schema_status`` and, for ``unvalidated`` (no schema knew the type),
    per ``event_type``: ``schema_status``, ``event_type`` (``None`` on the status totals),
    ``events``. One grouped SQL count by (status, type), summed per status in Python."""
    query = (
        select(EVENTS.schema_status, EVENTS.event_type, func.count())
        .where(*where(course_id, since, until))
        .group_by(EVENTS.schema_status, EVENTS.event_type)
    )
    totals: Counter[str] = Counter()
    unknown: Counter[str] = Counter()
    for status, event_type, n in fetch(bind, query):
        totals[str(status)] += int(n)
        if status == UNVALIDATED:
            unknown[str(event_type)] += int(n)
    rows: Rows = [
        {"schema_status": s, "event_type": None, "events": n}
        for s, n in sorted(totals.items(), key=lambda item: (-item[1], item[0]))
    ]
    rows += [
        {"schema_status": UNVALIDATED, "event_type": t, "events": n}
        for t, n in sorted(unknown.items(), key=lambda item: (-item[1], item[0]))
    ]
    return rows


def health_delivery(
    bind: Engine | Connection,
    course_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    tz: str = "UTC",
) -> Rows:
    """The Logger's delivery per local day, from the gaps in its ``seq`` numbers.

    Each page load (a tab) numbers its events 1, 2, 3, ... A tab is told apart by
    (learner, ``session``, ``page``) and, within that, by ``seq`` starting again at or
    below the last number seen (events taken in order of ``time``, then ``seq``). A tab
    whose highest number is N should have delivered N events; the distinct numbers
    received are what arrived. Columns: ``day`` (of the tab's first event), ``tabs``,
    ``expected``, ``received``, ``lost`` and ``loss_rate`` (lost / expected, 4 digits).
    Events lost at the end of a tab cannot be seen: the rate is a lower bound.
    """
    days = Days(tz)
    query = (
        select(
            EVENTS.time, EVENTS.user_id, EVENTS.username, EVENTS.session, EVENTS.page, EVENTS.seq
        )
        .where(*where(course_id, since, until), EVENTS.seq.is_not(None))
        .order_by(EVENTS.time, EVENTS.seq, EVENTS.id)
    )
    #: key -> [day, highest seq, distinct seqs] of the current tab
    open_tabs: dict[tuple[str | None, str | None, str | None], list[object]] = {}
    totals: defaultdict[date, list[int]] = defaultdict(lambda: [0, 0, 0])

    def close(tab: list[object]) -> None:
        day, top, seen = tab
        total = totals[day]  # type: ignore[index]
        total[0] += 1
        total[1] += top  # type: ignore[operator]
        total[2] += len(seen)  # type: ignore[arg-type]

    for when, user_id, username, session, page, seq in fetch(bind, query):
        key = (learner(user_id, username), session, page)
        seq = int(seq)
        tab = open_tabs.get(key)
        if tab is not None and seq in tab[2]:  # type: ignore[operator]
            continue  # a duplicate delivery
        if tab is None or seq <= tab[1]:  # type: ignore[operator]
            if tab is not None:
                close(tab)
            tab = open_tabs[key] = [days.of_time(when), 0, set()]
        tab[1] = max(tab[1], seq)  # type: ignore[call-overload]
        tab[2].add(seq)  # type: ignore[attr-defined]
    for tab in open_tabs.values():
        close(tab)
    rows = []
    for day, (tabs, expected, received) in sorted(totals.items()):
        lost = max(expected - received, 0)
        rows.append(
            {
                "day": day.isoformat(),
                "tabs": tabs,
                "expected": expected,
                "received": received,
                "lost": lost,
                "loss_rate": round(lost / expected, 4) if expected else 0.0,
            }
        )
    return rows


def health_skew(
    bind: Engine | Connection,
    course_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    tz: str = "UTC",
) -> Rows:
    """The distribution of ``clock_skew_ms`` (browser clock minus server clock, measured
    at ingest) in fixed bins: ``bin`` (label), ``upper_ms`` (exclusive bound, ``None`` for
    the last), ``events``. Events without a measured skew are not counted. One grouped
    SQL count by bin (a ``CASE`` over the bounds)."""
    skew = EVENTS.clock_skew_ms
    label = case(
        *((skew < upper, literal(name)) for upper, name in SKEW_BINS[:-1]),
        else_=literal(SKEW_BINS[-1][1]),
    )
    query = (
        select(label, func.count())
        .where(*where(course_id, since, until), skew.is_not(None))
        .group_by(label)
    )
    counts: Counter[str] = Counter({str(name): int(n) for name, n in fetch(bind, query)})
    return [
        {
            "bin": label,
            "upper_ms": None if upper == float("inf") else int(upper),
            "events": counts[label],
        }
        for upper, label in SKEW_BINS
    ]


def health_deliveries(
    bind: Engine | Connection,
    course_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    tz: str = "UTC",
) -> Rows:
    """Deliveries pending and failed now, per destination: ``destination``,
    ``pending``, ``failed``. (Not filtered: the outbox's state now.)"""
    d = deliveries_table.c
    query = (
        select(d.destination, d.state, func.count())
        .where(d.state.in_((PENDING, FAILED)))
        .group_by(d.destination, d.state)
    )
    out: dict[str, dict[str, object]] = {}
    for destination, state, n in fetch(bind, query):
        row = out.setdefault(
            str(destination), {"destination": str(destination), PENDING: 0, FAILED: 0}
        )
        row[str(state)] = int(n)
    return [out[name] for name in sorted(out)]


__all__ = ["health_deliveries", "health_delivery", "health_failed", "health_schema", "health_skew"]
