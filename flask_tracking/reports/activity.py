"""Activity: events per day by type and source; active learners per day and per week.

Both group in SQL by the local day in ``tz`` (``_common.local_day``: the time shifted by
the zone's offset, which Python works out for the window), so day boundaries are the
zone's midnights.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import date, datetime

from sqlalchemy import Connection, Engine, func, select

from ._common import EVENTS, Rows, day_of_number, fetch, learner, local_day, week_of, where


def activity(
    bind: Engine | Connection,
    course_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    tz: str = "UTC",
) -> Rows:
    """Events per local day, event type and source.

    Columns: ``day`` (ISO date in ``tz``), ``event_type``, ``event_source``, ``events``.
    One grouped SQL query: ``count(*)`` by (local day, type, source) in the window.
    """
    clauses = where(course_id, since, until)
    day = local_day(bind, clauses, tz)
    query = (
        select(day, EVENTS.event_type, EVENTS.event_source, func.count())
        .where(*clauses)
        .group_by(day, EVENTS.event_type, EVENTS.event_source)
    )
    counts: Counter[tuple[date, str, str]] = Counter()
    for number, event_type, source, n in fetch(bind, query):
        counts[(day_of_number(number), str(event_type), str(source))] += int(n)
    return [
        {"day": day.isoformat(), "event_type": t, "event_source": s, "events": n}
        for (day, t, s), n in sorted(counts.items())
    ]


def active_learners(
    bind: Engine | Connection,
    course_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    tz: str = "UTC",
) -> Rows:
    """Distinct learners with at least one event, per local day and per ISO week.

    Columns: ``period`` (``day`` or ``week``), ``start`` (the day, or the Monday of the
    week, in ``tz``), ``learners``. A learner is the stored ``user_id``, else the stored
    ``username``; events with neither are not counted. SQL returns the distinct
    (local day, user_id, username); the sets per day and week are made in Python.
    """
    clauses = where(course_id, since, until)
    day = local_day(bind, clauses, tz)
    query = (
        select(day, EVENTS.user_id, EVENTS.username)
        .where(*clauses)
        .group_by(day, EVENTS.user_id, EVENTS.username)
    )
    per_day: defaultdict[date, set[str]] = defaultdict(set)
    for number, user_id, username in fetch(bind, query):
        who = learner(user_id, username)
        if who is not None:
            per_day[day_of_number(number)].add(who)
    per_week: defaultdict[date, set[str]] = defaultdict(set)
    for when, people in per_day.items():
        per_week[week_of(when)] |= people
    rows = [
        {"period": "day", "start": d.isoformat(), "learners": len(p)} for d, p in per_day.items()
    ]
    rows += [
        {"period": "week", "start": d.isoformat(), "learners": len(p)} for d, p in per_week.items()
    ]
    return sorted(rows, key=lambda row: (row["period"], row["start"]))
