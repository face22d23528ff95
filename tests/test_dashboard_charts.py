"""The dashboard's chart specs hold the rows' numbers: day series have every day (a
missing one is a zero), stacked totals add up, the view curve has zeros between runs."""

from __future__ import annotations

from flask_tracking.dashboard.charts import activity_chart, curve_chart, every_day, video_chart


def test_a_day_series_has_every_day_between_its_first_and_last() -> None:
    assert every_day(["2026-12-03", "2026-11-30", "2026-12-03"]) == [
        "2026-11-30",
        "2026-12-01",
        "2026-12-02",
        "2026-12-03",
    ]
    assert every_day([]) == []
    assert every_day(["2020-01-01", "2026-01-01"]) == ["2020-01-01", "2026-01-01"]


def test_the_activity_chart_stacks_the_largest_types_and_sums_the_rest() -> None:
    rows = [
        {"day": "2026-12-01", "event_type": f"type{n}", "event_source": "browser", "events": n}
        for n in range(1, 11)
    ] + [{"day": "2026-12-03", "event_type": "type10", "event_source": "server", "events": 5}]
    spec = activity_chart(rows)
    assert spec["labels"] == ["2026-12-01", "2026-12-02", "2026-12-03"]
    sets = {d["label"]: d["data"] for d in spec["datasets"]}
    assert list(sets) == [*(f"type{n}" for n in (10, 9, 8, 7, 6, 5, 4, 3)), "other"]
    assert sets["type10"] == [10, 0, 5] and sets["other"] == [1 + 2, 0, 0]
    assert sum(sum(d) for d in sets.values()) == sum(r["events"] for r in rows)
    assert spec["stacked"] is True


def test_the_curve_has_zeros_where_no_run_was() -> None:
    rows = [
        {"video_id": "v", "start": 0, "end": 10, "views": 3, "viewers": 2},
        {"video_id": "v", "start": 30, "end": 40, "views": 1, "viewers": 1},
    ]
    spec = curve_chart(rows)
    assert spec["labels"] == ["0 s", "10 s", "20 s", "30 s"]
    assert spec["datasets"][0] == {"label": "views", "data": [3, 0, 0, 1]}


def test_a_list_chart_is_one_bar_group_per_row_in_order() -> None:
    rows = [
        {"video_id": "b", "plays": 5, "viewers": 2, "completions": 1},
        {"video_id": "a", "plays": 3, "viewers": 3, "completions": 0},
    ]
    spec = video_chart(rows)
    assert spec["labels"] == ["b", "a"] and spec["horizontal"] is True
    assert [d["data"] for d in spec["datasets"]] == [[5, 3], [2, 3], [1, 0]]
