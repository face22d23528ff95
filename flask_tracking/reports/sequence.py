"""Sequences: the navigation mix, visits per unit, the funnel, transitions.

Events: ``seq_next``, ``seq_prev``, ``seq_goto`` (the browser's; edX's newer
``edx.ui.lms.sequence.*`` events are sent for the same clicks and are not counted twice).
Payload: ``id`` (the sequence), ``old`` (unit left) and ``new`` (unit opened; newer logs
may give ``current_tab`` / ``target_tab`` instead). SQL selects the events (index
``(event_type, time)``); Python reads the payloads.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, select

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


def sequence(
    bind: Engine | Connection,
    course_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    tz: str = "UTC",
) -> Rows:
    """One row per sequence: ``sequence_id``, ``events``, ``learners``, and the mix of
    moves ``next``, ``previous``, ``goto`` (counts)."""
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
    counts: Counter[tuple[str, int, int, str]] = Counter()
    for sequence_id, move, _, old, new in _moves(bind, course_id, since, until):
        if old is not None and new is not None:
            counts[(sequence_id, old, new, move)] += 1
    return [
        {"sequence_id": s, "from_unit": a, "to_unit": b, "move": m, "count": n}
        for (s, a, b, m), n in sorted(counts.items())
    ]


__all__: Any = ["sequence", "sequence_transitions", "sequence_units"]
