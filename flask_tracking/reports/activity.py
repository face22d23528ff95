"""Activity: events per day by type and source; active learners per day and per week.

Both group in SQL by UTC quarter hour (see ``_common``) and put the quarter hours in the
local days of ``tz`` in Python, so day boundaries are the zone's midnights.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import date, datetime

from sqlalchemy import Connection, Engine, func, select

from ._common import EVENTS, Days, Rows, dialect_of, fetch, learner, quarter_hour, week_of, where


def activity(
    bind: Engine | Connection,
    course_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    tz: str = "UTC",
) -> Rows:
    """Events per local day, event type and source.

    Columns: ``day`` (ISO date in ``tz``), ``event_type``, ``event_source``, ``events``.
    One grouped SQL query: ``count(*)`` by (quarter hour, type, source) in the window.
    """
    days = Days(tz)
    quarter = quarter_hour(EVENTS.time, dialect_of(bind))
    query = (
        select(quarter, EVENTS.event_type, EVENTS.event_source, func.count())
        .where(*where(course_id, since, until))
        .group_by(quarter, EVENTS.event_type, EVENTS.event_source)
    )
    counts: Counter[tuple[date, str, str]] = Counter()
    for q, event_type, source, n in fetch(bind, query):
        counts[(days.of_quarter(q), str(event_type), str(source))] += int(n)
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
    (quarter hour, user_id, username); the sets per day and week are made in Python.
    """
    days = Days(tz)
    quarter = quarter_hour(EVENTS.time, dialect_of(bind))
    query = (
        select(quarter, EVENTS.user_id, EVENTS.username)
        .where(*where(course_id, since, until))
        .group_by(quarter, EVENTS.user_id, EVENTS.username)
    )
    per_day: defaultdict[date, set[str]] = defaultdict(set)
    for q, user_id, username in fetch(bind, query):
        who = learner(user_id, username)
        if who is not None:
            per_day[days.of_quarter(q)].add(who)
    per_week: defaultdict[date, set[str]] = defaultdict(set)
    for day, people in per_day.items():
        per_week[week_of(day)] |= people
    rows = [
        {"period": "day", "start": d.isoformat(), "learners": len(p)} for d, p in per_day.items()
    ]
    rows += [
        {"period": "week", "start": d.isoformat(), "learners": len(p)} for d, p in per_week.items()
    ]
    return sorted(rows, key=lambda row: (row["period"], row["start"]))
