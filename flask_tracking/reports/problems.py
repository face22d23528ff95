"""Problems: per problem, who tried, how many times, and who got it right when.

Events, server side only (``event_source = 'server'``, so the browser's ``problem_check``
with the raw answers is not counted twice): ``problem_check`` (payload ``problem_id`` and
``correct_map``), ``showanswer`` / ``show_answer``, ``reset_problem``,
``save_problem_success`` / ``save_problem_fail``, selected by the index ``(event_type,
time)``.

An attempt is correct when every entry of its ``correct_map`` has ``correctness ==
"correct"``; without a ``correct_map`` the payload's ``success == "correct"`` decides.

The reports aggregate in SQL (``_sql``): each payload field is read once per row, each
event gets its place in its (problem, learner) history by ``row_number()`` over
``(time, id)`` (the replay's order), and a learner's first check, first correct check
and first shown answer are the smallest places of each kind (``min(CASE ...)``), grouped
per (problem, learner), then per problem. Should a ``problem_id`` be odd (``_sql``: a
number, an object), the report replays the events in Python instead (``_histories``),
which is the reference the SQL is tested against.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Connection, Engine, Text, case, func, literal, select

from . import _sql
from ._common import EVENTS, Rows, fetch, field, learner, where

KINDS = {
    "problem_check": "check",
    "showanswer": "show",
    "show_answer": "show",
    "reset_problem": "reset",
    "save_problem_success": "save",
    "save_problem_fail": "save",
}
_COUNTED = ("show", "reset", "save")
#: The per-learner columns summed per problem, and the report's names for them.
_SUMS = ("attempts", "first_try", "correct", "shown_before")
_NAMES = ("attempts", "first_try_correct", "eventually_correct", "shown_before_correct",
          "shows", "resets", "saves")  # fmt: skip


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


def _right_sql(dialect: str, cmap: Any, success: Any) -> Any:
    """:func:`is_correct` in SQL over the JSON of ``correct_map`` and the text of
    ``success``: 1 or 0. A non-empty object decides by its entries (one correlated
    ``json_each`` per check), anything else by ``success``."""
    if dialect == "sqlite":
        each: Any = func.json_each(cmap).table_valued("type", "value")
        inner = func.json_extract(each.c.value, "$.correctness", type_=Text())
        entry = case((each.c.type == "object", case((inner == "correct", 1), else_=0)), else_=0)
        is_object: Any = func.json_type(cmap) == "object"
    else:
        each = func.json_each(cmap).table_valued("key", "value")
        inner = each.c.value.op("->>", return_type=Text())(literal("correctness"))
        entry = case(
            ((func.json_typeof(each.c.value) == "object") & (inner == "correct"), 1), else_=0
        )
        is_object = func.json_typeof(cmap) == "object"
    every = select(case((func.count() == 0, None), else_=func.min(entry))).select_from(each)
    by_map = case((is_object, every.scalar_subquery()), else_=None)
    return func.coalesce(by_map, case((success == "correct", 1), else_=0))


def _learners(
    bind: Engine | Connection, course_id: str | None, since: datetime | None, until: datetime | None
) -> Any:
    """One SQL row per (problem, learner): ``problem_id``, ``attempts``, ``correct``,
    ``first_try`` and ``shown_before`` (1/0), the ``shows``, ``resets``, ``saves``, and
    ``odd`` (``_sql``: a ``problem_id`` that is not a string)."""
    dialect = _sql.dialect_of(bind)
    kind = case(*((EVENTS.event_type == t, literal(k)) for t, k in KINDS.items()))
    if dialect == "sqlite":
        cmap: Any = EVENTS.event.op("->", return_type=Text())('$."correct_map"')
        success: Any = func.json_extract(EVENTS.event, '$."success"', type_=Text())
    else:
        cmap = EVENTS.event.op("->", return_type=JSON())(literal("correct_map"))
        success = EVENTS.event.op("->>", return_type=Text())(literal("success"))
    query = select(
        EVENTS.time,
        EVENTS.id,
        kind.label("kind"),
        _sql.learner_sql().label("learner"),
        cmap.label("cmap"),
        success.label("success"),
    ).where(*where(course_id, since, until, KINDS, source="server"))
    c = _sql.fields(dialect, query, (), ("problem_id",), "problems_read").c
    check = c.kind == "check"
    # narrow rows first (the JSON of ``correct_map`` is not carried into the window's sort)
    r = (
        select(
            c.time,
            c.id,
            c.v_problem_id.label("problem_id"),
            c.learner,
            c.kind,
            case((check, _right_sql(dialect, c.cmap, c.success)), else_=None).label("right"),
            case((c.o_problem_id, 1), else_=0).label("odd"),
        )
        .where(c.k_problem_id != "null", c.learner.is_not(None))
        .cte("problem_rows")
        .prefix_with("MATERIALIZED")
    ).c
    # the place of each event in its (problem, learner) history, in the replay's order
    place = func.row_number().over(partition_by=(r.problem_id, r.learner), order_by=(r.time, r.id))
    e = (
        select(r.problem_id, r.learner, r.kind, r.right, place.label("place"), r.odd).cte(
            "problem_events"
        )
    ).c
    check, right = e.kind == "check", (e.kind == "check") & (e.right == 1)
    first_check = func.min(case((check, e.place), else_=None))
    first_right = func.min(case((right, e.place), else_=None))
    first_show = func.min(case((e.kind == "show", e.place), else_=None))
    return (
        select(
            e.problem_id,
            func.sum(case((check, 1), else_=0)).label("attempts"),
            func.max(case((right, 1), else_=0)).label("correct"),
            case((first_right == first_check, 1), else_=0).label("first_try"),
            case((first_show < first_right, 1), else_=0).label("shown_before"),
            *(func.sum(case((e.kind == k, 1), else_=0)).label(k + "s") for k in _COUNTED),
            func.max(e.odd).label("odd"),
        )
        .group_by(e.problem_id, e.learner)
        .cte("problem_learners")
    )


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
    p = _learners(bind, course_id, since, until).c
    query = select(
        p.problem_id,
        func.max(p.odd),
        func.sum(case((p.attempts > 0, 1), else_=0)),
        *(func.sum(p[name]) for name in (*_SUMS, "shows", "resets", "saves")),
    ).group_by(p.problem_id)
    found = _sql.run(bind, query)
    if not any(row[1] for row in found):
        rows = [
            {"problem_id": str(row[0]), "learners": int(row[2])}
            | {name: int(n) for name, n in zip(_NAMES, row[3:], strict=True)}
            for row in found
        ]
        return sorted(rows, key=lambda row: (-row["learners"], row["problem_id"]))
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
    p = _learners(bind, course_id, since, until).c
    query = select(p.problem_id, p.attempts, func.count(), func.max(p.odd)).group_by(
        p.problem_id, p.attempts
    )
    found = _sql.run(bind, query)
    if not any(row[3] for row in found):
        return [
            {"problem_id": str(problem_id), "attempts": int(attempts), "learners": int(n)}
            for problem_id, attempts, n, _ in sorted(found, key=lambda r: (str(r[0]), int(r[1])))
            if attempts
        ]
    histories, _ = _histories(bind, course_id, since, until)
    counts: Counter[tuple[str, int]] = Counter()
    for problem_id, people in histories.items():
        for history in people.values():
            if history.attempts:
                counts[(problem_id, history.attempts)] += 1
    return [{"problem_id": p, "attempts": a, "learners": n} for (p, a), n in sorted(counts.items())]
