"""Chart specs: what each dashboard chart draws, built from a report's rows.

A spec is plain JSON for ``static/dashboard/dashboard.js``, which turns it into a
Chart.js chart: ``{"kind": "bar" | "line", "labels": [...], "datasets": [{"label": ...,
"data": [...]}], "stacked": bool, "horizontal": bool, "x": title of the labels' axis,
"y": title of the values' axis}`` (``horizontal`` bars put the labels on the left). The
numbers in a spec are the rows' numbers (a series may add zeros for days or bins the
report has no row for); the page's tables show the rows themselves.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from datetime import date, timedelta
from typing import Any

Rows = Sequence[dict[str, Any]]
Spec = dict[str, Any]
#: Event types drawn apart in the activity chart; the rest are summed as "other".
TOP_TYPES = 8
#: Day series are drawn with every day between their first and last (a day without a
#: row is a zero, not left out), up to this many days.
MAX_FILLED_DAYS = 1000


def every_day(days: Iterable[str]) -> list[str]:
    """The ISO days from the first of ``days`` to the last, each one (or just ``days``,
    sorted, when that would be more than ``MAX_FILLED_DAYS``)."""
    given = sorted(set(days))
    if not given:
        return []
    first, last = date.fromisoformat(given[0]), date.fromisoformat(given[-1])
    if (last - first).days >= MAX_FILLED_DAYS:
        return given
    return [(first + timedelta(days=n)).isoformat() for n in range((last - first).days + 1)]


def spec(
    kind: str,
    labels: Iterable[Any],
    datasets: dict[str, list[Any]],
    *,
    x: str,
    y: str,
    stacked: bool = False,
    horizontal: bool = False,
) -> Spec:
    return {
        "kind": kind,
        "labels": [str(label) for label in labels],
        "datasets": [{"label": name, "data": data} for name, data in datasets.items()],
        "stacked": stacked,
        "horizontal": horizontal,
        "x": x,
        "y": y,
    }


def bars(
    rows: Rows,
    label: str,
    columns: Sequence[str],
    *,
    x: str,
    y: str,
    stacked: bool = False,
    horizontal: bool = True,
) -> Spec:
    """One bar (group) per row: ``columns`` of each row, labelled by ``label``."""
    return spec(
        "bar",
        (row[label] for row in rows),
        {column: [row[column] for row in rows] for column in columns},
        x=x,
        y=y,
        stacked=stacked,
        horizontal=horizontal,
    )


def by_day(rows: Rows, day: str, series: str, value: str, *, y: str, top: int = TOP_TYPES) -> Spec:
    """Stacked bars per day of ``value`` summed by ``series`` (the ``top`` largest apart)."""
    totals: Counter[str] = Counter()
    cells: defaultdict[tuple[str, str], float] = defaultdict(float)
    for row in rows:
        name = str(row[series])
        totals[name] += row[value]
        cells[(row[day], name)] += row[value]
    days = every_day(row[day] for row in rows)
    kept = [name for name, _ in totals.most_common(top)]
    datasets = {name: [cells.get((d, name), 0) for d in days] for name in kept}
    rest = [name for name in totals if name not in kept]
    if rest:
        datasets["other"] = [sum(cells.get((d, name), 0) for name in rest) for d in days]
    return spec("bar", days, datasets, x="day", y=y, stacked=True)


def activity_chart(rows: Rows) -> Spec:
    return by_day(rows, "day", "event_type", "events", y="events")


def learners_chart(rows: Rows) -> Spec:
    """Learners per day, and per week drawn at its Monday."""
    per = {(row["period"], row["start"]): row["learners"] for row in rows}
    days = every_day(row["start"] for row in rows)
    return {
        **spec(
            "line",
            days,
            {
                "per day": [per.get(("day", d), 0) for d in days],
                "per week (at its Monday)": [per.get(("week", d)) for d in days],
            },
            x="day",
            y="learners",
        ),
        "span_gaps": True,
    }


def video_chart(rows: Rows) -> Spec:
    return bars(rows, "video_id", ("plays", "viewers", "completions"), x="", y="count")


def curve_chart(rows: Rows) -> Spec:
    """The view curve of one video: views and viewers per bin, zero where no run was."""
    if not rows:
        return spec("line", [], {}, x="", y="")
    size = rows[0]["end"] - rows[0]["start"]
    at = {row["start"]: row for row in rows}
    starts = range(0, max(at) + size, size)
    return spec(
        "line",
        (f"{s} s" for s in starts),
        {
            "views": [at[s]["views"] if s in at else 0 for s in starts],
            "viewers": [at[s]["viewers"] if s in at else 0 for s in starts],
        },
        x="seconds into the video (start of the bin)",
        y="runs",
    )


def sequence_chart(rows: Rows) -> Spec:
    return bars(rows, "sequence_id", ("next", "previous", "goto"), x="", y="moves", stacked=True)


def units_chart(rows: Rows) -> Spec:
    return spec(
        "bar",
        (f"unit {row['unit']}" for row in rows),
        {"visits": [r["visits"] for r in rows], "learners": [r["learners"] for r in rows]},
        x="unit",
        y="count",
    )


def transitions_chart(rows: Rows) -> Spec:
    labelled = [
        {**r, "move_label": f"{r['from_unit']} → {r['to_unit']} ({r['move']})"} for r in rows
    ]
    return bars(labelled, "move_label", ("count",), x="", y="moves")


def textbook_chart(rows: Rows) -> Spec:
    return bars(
        rows, "book", ("gotopage", "nextpage", "prevpage", "other"), x="", y="events", stacked=True
    )


def pages_chart(rows: Rows) -> Spec:
    return spec(
        "bar",
        (row["page"] for row in rows),
        {"views": [r["views"] for r in rows], "learners": [r["learners"] for r in rows]},
        x="page",
        y="count",
    )


def problems_chart(rows: Rows) -> Spec:
    return bars(
        rows,
        "problem_id",
        ("learners", "first_try_correct", "eventually_correct"),
        x="",
        y="learners",
    )


def attempts_chart(rows: Rows) -> Spec:
    return spec(
        "bar",
        (row["attempts"] for row in rows),
        {"learners": [r["learners"] for r in rows]},
        x="attempts (checks) a learner made",
        y="learners",
    )


def failed_chart(rows: Rows) -> Spec:
    return by_day(rows, "day", "reason", "events", y="failed events")


def schema_chart(rows: Rows) -> Spec:
    totals = [row for row in rows if row["event_type"] is None]
    return bars(totals, "schema_status", ("events",), x="", y="events")


def delivery_chart(rows: Rows) -> Spec:
    at = {row["day"]: row for row in rows}
    days = every_day(at)
    return spec(
        "bar",
        days,
        {
            "received": [at[d]["received"] if d in at else 0 for d in days],
            "lost": [at[d]["lost"] if d in at else 0 for d in days],
        },
        x="day (of the tab's first event)",
        y="Logger events",
        stacked=True,
    )


def skew_chart(rows: Rows) -> Spec:
    return bars(rows, "bin", ("events",), x="clock skew", y="events", horizontal=False)


def deliveries_chart(rows: Rows) -> Spec:
    return bars(rows, "destination", ("pending", "failed"), x="", y="deliveries", stacked=True)


#: Report name -> its chart.
CHARTS: dict[str, Callable[[Rows], Spec]] = {
    "activity": activity_chart,
    "learners": learners_chart,
    "video": video_chart,
    "video-curve": curve_chart,
    "sequence": sequence_chart,
    "sequence-units": units_chart,
    "sequence-transitions": transitions_chart,
    "textbook": textbook_chart,
    "textbook-pages": pages_chart,
    "problems": problems_chart,
    "problem-attempts": attempts_chart,
    "health-failed": failed_chart,
    "health-schema": schema_chart,
    "health-delivery": delivery_chart,
    "health-skew": skew_chart,
    "health-deliveries": deliveries_chart,
}
