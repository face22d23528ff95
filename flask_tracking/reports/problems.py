"""Problems: per problem, who tried, how many times, and who got it right when.

Events, server side only (``event_source = 'server'``, so the browser's ``problem_check``
with the raw answers is not counted twice): ``problem_check`` (payload ``problem_id`` and
``correct_map``), ``showanswer`` / ``show_answer``, ``reset_problem``,
``save_problem_success`` / ``save_problem_fail``. SQL selects them in time order (index
``(event_type, time)``); Python follows each learner's history of each problem.

An attempt is correct when every entry of its ``correct_map`` has ``correctness ==
"correct"``; without a ``correct_map`` the payload's ``success == "correct"`` decides.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, select

from ._common import EVENTS, Rows, fetch, field, learner, where

KINDS = {
    "problem_check": "check",
    "showanswer": "show",
    "show_answer": "show",
    "reset_problem": "reset",
    "save_problem_success": "save",
    "save_problem_fail": "save",
}


@dataclass(slots=True)
class _History:
    attempts: int = 0
    first_correct: bool | None = None
    correct: bool = False
    shown: bool = False
    shown_before_correct: bool = False


def is_correct(payload: Any) -> bool:
    """Whether a server ``problem_check`` payload is a correct attempt (module doc)."""
    correct_map = field(payload, "correct_map")
    if isinstance(correct_map, dict) and correct_map:
        return all(
            isinstance(entry, dict) and entry.get("correctness") == "correct"
            for entry in correct_map.values()
        )
    return field(payload, "success") == "correct"


def _histories(
    bind: Engine | Connection, course_id: str | None, since: datetime | None, until: datetime | None
) -> tuple[dict[str, dict[str, _History]], dict[str, Counter[str]]]:
    query = (
        select(EVENTS.event_type, EVENTS.user_id, EVENTS.username, EVENTS.event)
        .where(*where(course_id, since, until, KINDS, source="server"))
        .order_by(EVENTS.time, EVENTS.id)
    )
    histories: defaultdict[str, dict[str, _History]] = defaultdict(dict)
    actions: defaultdict[str, Counter[str]] = defaultdict(Counter)
    for event_type, user_id, username, payload in fetch(bind, query):
        problem_id = field(payload, "problem_id")
        who = learner(user_id, username)
        if problem_id is None or who is None:
            continue
        problem_id, kind = str(problem_id), KINDS[event_type]
        actions[problem_id][kind] += 1
        history = histories[problem_id].setdefault(who, _History())
        if kind == "show":
            history.shown = True
        elif kind == "check":
            history.attempts += 1
            right = is_correct(payload)
            if history.first_correct is None:
                history.first_correct = right
            if right and not history.correct:
                history.correct = True
                history.shown_before_correct = history.shown
    return histories, actions


def problems(
    bind: Engine | Connection,
    course_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    tz: str = "UTC",
) -> Rows:
    """One row per problem: ``problem_id``; ``learners`` (who checked it at least once);
    ``attempts`` (checks); ``first_try_correct`` (learners whose first check was
    correct); ``eventually_correct`` (learners with a correct check); ``shown_before_correct``
    (learners who had the answer shown before their first correct check); ``shows``,
    ``resets``, ``saves`` (events)."""
    histories, actions = _histories(bind, course_id, since, until)
    rows = []
    for problem_id in set(histories) | set(actions):
        checked = [h for h in histories[problem_id].values() if h.attempts]
        done = actions[problem_id]
        rows.append(
            {
                "problem_id": problem_id,
                "learners": len(checked),
                "attempts": sum(h.attempts for h in checked),
                "first_try_correct": sum(1 for h in checked if h.first_correct),
                "eventually_correct": sum(1 for h in checked if h.correct),
                "shown_before_correct": sum(1 for h in checked if h.shown_before_correct),
                "shows": done["show"],
                "resets": done["reset"],
                "saves": done["save"],
            }
        )
    return sorted(rows, key=lambda row: (-row["learners"], row["problem_id"]))


def problem_attempts(
    bind: Engine | Connection,
    course_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    tz: str = "UTC",
) -> Rows:
    """The distribution of attempts: one row per (problem, number of checks a learner
    made): ``problem_id``, ``attempts``, ``learners`` (how many made that many)."""
    histories, _ = _histories(bind, course_id, since, until)
    counts: Counter[tuple[str, int]] = Counter()
    for problem_id, people in histories.items():
        for history in people.values():
            if history.attempts:
                counts[(problem_id, history.attempts)] += 1
    return [{"problem_id": p, "attempts": a, "learners": n} for (p, a), n in sorted(counts.items())]
