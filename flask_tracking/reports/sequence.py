"""Sequences: the navigation mix, visits per unit, the funnel, transitions.

Events: ``seq_next``, ``seq_prev``, ``seq_goto`` (the browser's; edX's newer
``edx.ui.lms.sequence.*`` events are sent for the same clicks and are not counted twice).
Payload: ``id`` (the sequence), ``old`` (unit left) and ``new`` (unit opened; newer logs
may give ``current_tab`` / ``target_tab`` instead).

The events are selected by the index ``(event_type, time)`` and aggregated in SQL: one
grouped query per report over the payload fields (``_sql``: ``json_extract`` / ``->>``).
Should a field hold an odd value (``_sql``: a unit written as a string, an id that is a
number), the report replays the events in Python instead (``_moves``), which is the
reference the SQL is tested against.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, case, func, literal, select, union_all

from . import _sql
from ._common import EVENTS, Rows, fetch, field, integer, learner, where

MOVES = {"seq_next": "next", "seq_prev": "previous", "seq_goto": "goto"}


def _moves(
    bind: Engine | Connection, course_id: str | None, since: datetime | None, until: datetime | None
) -> Iterator[tuple[str, str, str | None, int | None, int | None]]:
    """(sequence, move, learner, old unit, new unit) of every navigation event."""
    query = select(EVENTS.event_type, EVENTS.user_id, EVENTS.username, EVENTS.event).where(
        *where(course_id, since, until, MOVES)
    )
    for event_type, user_id, username, payload in fetch(bind, query):
        sequence_id = field(payload, "id")
        if sequence_id is None:
            continue
        old = integer(field(payload, "old", "current_tab"))
        new = integer(field(payload, "new", "target_tab"))
        yield str(sequence_id), MOVES[event_type], learner(user_id, username), old, new


def _events(
    bind: Engine | Connection, course_id: str | None, since: datetime | None, until: datetime | None
) -> Any:
    """The navigation events as SQL rows: ``sequence_id``, ``move``, ``learner``, ``old``,
    ``new`` (integers or NULL) and ``odd``."""
    move = case(*((EVENTS.event_type == t, literal(m)) for t, m in MOVES.items()))
    query = select(move.label("move"), _sql.learner_sql().label("learner")).where(
        *where(course_id, since, until, MOVES)
    )
    numbers = ("old", "current_tab", "new", "target_tab")
    c = _sql.fields(_sql.dialect_of(bind), query, numbers, ("id",), "moves_read").c
    odd = c.o_id
    units = []
    for first, second in (("old", "current_tab"), ("new", "target_tab")):
        # ``field()``: the first name present (not null) is the one read
        odd = odd | c[f"o_{first}"] | ((c[f"k_{first}"] == "null") & c[f"o_{second}"])
        units.append(_sql.integer_of(func.coalesce(c[f"v_{first}"], c[f"v_{second}"])))
    return select(
        c.v_id.label("sequence_id"),
        c.move,
        c.learner,
        units[0].label("old"),
        units[1].label("new"),
        case((odd, 1), else_=0).label("odd"),
    ).cte("moves")


def sequence(
    bind: Engine | Connection,
    course_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    tz: str = "UTC",
) -> Rows:
    """One row per sequence: ``sequence_id``, ``events``, ``learners``, and the mix of
    moves ``next``, ``previous``, ``goto`` (counts)."""
    m = _events(bind, course_id, since, until).c
    query = (
        select(
            m.sequence_id,
            func.max(m.odd),
            func.count(),
            func.count(m.learner.distinct()),
            *(func.sum(case((m.move == name, 1), else_=0)) for name in MOVES.values()),
        )
        .where(m.sequence_id.is_not(None) | (m.odd == 1))
        .group_by(m.sequence_id)
    )
    found = _sql.run(bind, query)
    if not any(odd for _, odd, *_ in found):
        rows = [
            {
                "sequence_id": str(s),
                "events": int(n),
                "learners": int(people),
                "next": int(a),
                "previous": int(b),
                "goto": int(c),
            }
            for s, _, n, people, a, b, c in found
        ]
        return sorted(rows, key=lambda row: (-row["events"], row["sequence_id"]))
    mix: defaultdict[str, Counter[str]] = defaultdict(Counter)
    people: defaultdict[str, set[str]] = defaultdict(set)
    for sequence_id, move, who, _, _ in _moves(bind, course_id, since, until):
        mix[sequence_id][move] += 1
        if who is not None:
            people[sequence_id].add(who)
    rows = [
        {
            "sequence_id": s,
            "events": sum(c.values()),
            "learners": len(people[s]),
            "next": c["next"],
            "previous": c["previous"],
            "goto": c["goto"],
        }
        for s, c in mix.items()
    ]
    return sorted(rows, key=lambda row: (-row["events"], row["sequence_id"]))


def sequence_units(
    bind: Engine | Connection,
    course_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    tz: str = "UTC",
) -> Rows:
    """One row per (sequence, unit): ``visits`` (moves opening the unit) and the funnel,
    ``learners`` (distinct learners who reached the unit: opened it, or left it, which
    means they were on it)."""
    m = _events(bind, course_id, since, until).c
    kept = m.sequence_id.is_not(None)
    opened = select(m.sequence_id, m.new.label("unit"), literal(1).label("visit"), m.learner, m.odd)
    left = select(m.sequence_id, m.old.label("unit"), literal(0).label("visit"), m.learner, m.odd)
    u = (
        union_all(
            opened.where((kept & m.new.is_not(None)) | (m.odd == 1)),
            left.where(kept & m.old.is_not(None)),
        )
        .subquery("units")
        .c
    )
    query = select(
        u.sequence_id, u.unit, func.max(u.odd), func.sum(u.visit), func.count(u.learner.distinct())
    ).group_by(u.sequence_id, u.unit)
    found = _sql.run(bind, query)
    if not any(odd for _, _, odd, _, _ in found):
        return [
            {"sequence_id": str(s), "unit": int(n), "visits": int(v), "learners": int(p)}
            for s, n, _, v, p in sorted(found, key=lambda row: (str(row[0]), int(row[1])))
        ]
    visits: Counter[tuple[str, int]] = Counter()
    reached: defaultdict[tuple[str, int], set[str]] = defaultdict(set)
    for sequence_id, _, who, old, new in _moves(bind, course_id, since, until):
        if new is not None:
            visits[(sequence_id, new)] += 1
        for unit in (old, new):
            if unit is not None:
                key = (sequence_id, unit)
                visits[key] += 0
                if who is not None:
                    reached[key].add(who)
    return [
        {"sequence_id": s, "unit": u, "visits": visits[(s, u)], "learners": len(reached[(s, u)])}
        for s, u in sorted(visits)
    ]


def sequence_transitions(
    bind: Engine | Connection,
    course_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    tz: str = "UTC",
) -> Rows:
    """One row per (sequence, from unit, to unit, move): ``count`` of such moves."""
    m = _events(bind, course_id, since, until).c
    query = (
        select(m.sequence_id, m.old, m.new, m.move, func.max(m.odd), func.count())
        .where(
            (m.sequence_id.is_not(None) & m.old.is_not(None) & m.new.is_not(None)) | (m.odd == 1)
        )
        .group_by(m.sequence_id, m.old, m.new, m.move)
    )
    found = _sql.run(bind, query)
    if not any(row[4] for row in found):
        return sorted(
            (
                {
                    "sequence_id": str(s),
                    "from_unit": int(a),
                    "to_unit": int(b),
                    "move": m_,
                    "count": int(n),
                }
                for s, a, b, m_, _, n in found
            ),
            key=lambda row: (row["sequence_id"], row["from_unit"], row["to_unit"], row["move"]),
        )
    counts: Counter[tuple[str, int, int, str]] = Counter()
    for sequence_id, move, _, old, new in _moves(bind, course_id, since, until):
        if old is not None and new is not None:
            counts[(sequence_id, old, new, move)] += 1
    return [
        {"sequence_id": s, "from_unit": a, "to_unit": b, "move": m, "count": n}
        for (s, a, b, m), n in sorted(counts.items())
    ]


__all__: Any = ["sequence", "sequence_transitions", "sequence_units"]
