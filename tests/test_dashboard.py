"""The dashboard through Flask's test client, on SQLite and PostgreSQL: off unless
TRACKING_DASHBOARD, the ``@tracking.dashboard_access`` guard, the tables and CSV equal to
the reports' rows (filtered as asked), search and pages of long lists, bad filters, and
the strict CSP with nothing inline. (In Chromium: tests/browser/test_dashboard_browser.py.)"""

from __future__ import annotations

import csv
import io
import json
import re
from typing import Any

import pytest
from dashboard_support import (
    FILTERED,
    FILTERED_ARGS,
    PAGES,
    cells,
    expected_tables,
    parse,
    store_fixture,
    store_videos,
)
from flask import Flask, request

from flask_tracking import Tracking
from flask_tracking.reports import REPORTS, video
from flask_tracking.reports.formats import as_csv

from reports_fixture import COURSE, OTHER
from support import AppFactory

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
    " connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
URLS = ["/activity/dashboard", "/activity/dashboard/video", "/activity/dashboard/video.csv"]
STAFF = {"X-Staff": "yes"}


def staff_only(tracking: Tracking) -> Tracking:
    """The access rule of these tests: a request with ``X-Staff: yes`` is staff."""
    tracking.dashboard_access(lambda: request.headers.get("X-Staff") == "yes")
    return tracking


@pytest.fixture
def dash(make_app: AppFactory) -> Flask:
    """An app with the dashboard on, the fixture course stored."""
    app = make_app(staff_only(Tracking()), TRACKING_DASHBOARD=True)
    store_fixture(app)
    return app


def get(app: Flask, url: str, **params: Any) -> Any:
    return app.test_client().get(url, query_string=params, headers=STAFF)


def test_the_dashboard_is_off_unless_turned_on(make_app: AppFactory) -> None:
    app = make_app(staff_only(Tracking()))
    for url in URLS:
        assert app.test_client().get(url, headers=STAFF).status_code == 404, url


def test_with_no_access_rule_everyone_is_refused(make_app: AppFactory) -> None:
    app = make_app(TRACKING_DASHBOARD=True)
    for url in URLS:
        answer = app.test_client().get(url)
        assert answer.status_code == 403, url
        assert answer.json["code"] == "forbidden"
        assert answer.headers["Content-Security-Policy"] == CSP


def test_the_access_rule_decides(dash: Flask) -> None:
    client = dash.test_client()
    for url in URLS:
        assert client.get(url).status_code == 403, url
        assert client.get(url, headers={"X-Staff": "no"}).status_code == 403, url
        assert client.get(url, headers=STAFF).status_code == 200, url


def test_every_csv_equals_its_report_unfiltered_and_filtered(dash: Flask) -> None:
    engine = dash.extensions["tracking"].engine
    for name, report in REPORTS.items():
        answer = get(dash, f"/activity/dashboard/{name}.csv")
        assert answer.status_code == 200
        assert answer.mimetype == "text/csv"
        assert answer.headers["Content-Disposition"] == f'attachment; filename="{name}.csv"'
        assert answer.text == as_csv(report(engine)), name
        filtered = get(dash, f"/activity/dashboard/{name}.csv", **FILTERED).text
        assert filtered == as_csv(report(engine, **FILTERED_ARGS)), name
        parsed = list(csv.reader(io.StringIO(filtered)))
        assert parsed[1:] == cells(report(engine, **FILTERED_ARGS)), name
    assert get(dash, "/activity/dashboard/nope.csv").status_code == 404


def test_each_page_shows_the_report_rows_and_the_filters_change_them(dash: Flask) -> None:
    engine = dash.extensions["tracking"].engine
    for slug in PAGES:
        for params, args in (({}, {}), (FILTERED, FILTERED_ARGS)):
            answer = get(dash, f"/activity/dashboard/{slug}", **params)
            assert answer.status_code == 200, (slug, answer.text[:300])
            shown = parse(answer.text).tables
            assert shown == expected_tables(engine, slug, args), (slug, params)
    # Every report of the fixture has rows, so every section is checked with numbers.
    for slug in PAGES:
        tables = parse(get(dash, f"/activity/dashboard/{slug}").text).tables
        assert all(tables.values()), {name: len(rows) for name, rows in tables.items()}
    # The filters do change what is shown (the fixture has events on both sides).
    plain = parse(get(dash, "/activity/dashboard/activity").text).tables
    assert plain != parse(get(dash, "/activity/dashboard/activity", **FILTERED).text).tables


def test_a_list_row_picks_what_the_detail_sections_show(dash: Flask) -> None:
    engine = dash.extensions["tracking"].engine
    page = get(dash, "/activity/dashboard/video", video="v2").text
    assert parse(page).tables == expected_tables(engine, "video", {}, pick="v2")
    assert "video=v2" in page  # the row's link
    # The chart data is the picked video's curve (no runs for v2: no curve rows).
    charts = json.loads(re.search(r'id="dashboard-charts">(.*?)</script>', page, re.S)[1])
    assert "video-curve" not in charts and charts["video"]["labels"] == ["v1", "v2"]


def test_a_long_list_shows_top_n_with_search_and_pages(make_app: AppFactory) -> None:
    app = make_app(staff_only(Tracking()), TRACKING_DASHBOARD=True)
    store_videos(app.extensions["tracking"].tracker, 45)
    rows = video(app.extensions["tracking"].engine)
    assert len(rows) == 45

    def listed(**params: Any) -> list[list[str]]:
        answer = get(app, "/activity/dashboard/video", **params)
        assert answer.status_code == 200
        return parse(answer.text).tables["video"]

    assert listed() == cells(rows[:20])
    assert listed(page=3) == cells(rows[40:])
    assert listed(page=9) == cells(rows[40:])  # past the end: the last page
    assert listed(size=10, page=2) == cells(rows[10:20])
    matching = [r for r in rows if "-00" in r["video_id"]]
    assert listed(q="-00") == cells(matching[:20])
    assert listed(q="VIDEO-004") == cells([r for r in rows if "video-004" in r["video_id"]])
    assert listed(q="nothing like it") == []
    page = get(app, "/activity/dashboard/video", q="-00").text
    assert f"1\N{EN DASH}{min(20, len(matching))} of {len(matching)}" in page


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"tz": "Mars/Olympus"}, "tz"),
        ({"tz": "America"}, "tz"),  # a folder of the zone data, not a zone
        ({"tz": "x" * 5000}, "tz"),  # longer than a file name may be
        ({"until": "9999-12-31"}, "until"),  # its next midnight is past the calendar
        ({"since": "0001-01-01T00:00+01:00"}, "since"),  # before year 1 in UTC
        ({"since": "last tuesday"}, "since"),
        ({"until": "2026-02-30"}, "until"),
        ({"since": "2026-12-02", "until": "2026-12-01"}, "until must be after since"),
        ({"size": "7"}, "size"),
        ({"page": "0"}, "page"),
    ],
)
def test_a_bad_filter_answers_400_naming_it(
    dash: Flask, params: dict[str, str], named: str
) -> None:
    page = get(dash, "/activity/dashboard/video", **params)
    assert page.status_code == 400
    assert named in page.text
    assert page.headers["Content-Security-Policy"] == CSP
    download = get(dash, "/activity/dashboard/video.csv", **params)
    assert download.status_code == 400
    assert download.json["code"] == "invalid_filter" and named in download.json["message"]


def test_pages_have_a_strict_csp_and_nothing_inline(dash: Flask) -> None:
    for slug in ["", *(f"/{slug}" for slug in PAGES)]:
        answer = get(dash, f"/activity/dashboard{slug}")
        assert answer.headers["Content-Security-Policy"] == CSP
        assert answer.headers["X-Content-Type-Options"] == "nosniff"
        page = parse(answer.text)
        assert page.styled == [], slug  # no <style>, no style="..."
        for script in page.scripts:
            # Either a file of ours, or a data block (not run, so not under script-src).
            src = script.get("src") or ""
            assert src.startswith("/activity/static/dashboard/") or (
                script.get("type") == "application/json"
            ), script
        assert not re.findall(r"<[^>]*\son[a-z]+=", answer.text), slug  # no onclick=...


def test_under_the_root_prefix_it_is_at_slash_dashboard(make_app: AppFactory) -> None:
    app = make_app(staff_only(Tracking()), TRACKING_DASHBOARD=True, TRACKING_URL_PREFIX="/")
    answer = app.test_client().get("/dashboard/video", headers=STAFF)
    assert answer.status_code == 200
    sources = [s.get("src") for s in parse(answer.text).scripts if s.get("src")]
    assert sources == [
        "/activity/static/dashboard/vendor/chart.umd.min.js",
        "/activity/static/dashboard/dashboard.js",
    ]
    for src in sources:
        with app.test_client().get(src) as served:
            assert served.status_code == 200
    assert app.test_client().get("/dashboard/video.csv", headers=STAFF).status_code == 200


def test_the_course_box_offers_the_stored_course_ids(dash: Flask) -> None:
    page = get(dash, "/activity/dashboard").text
    offered = re.findall(r'<option value="([^"]*)">', page)
    assert offered == sorted([COURSE, OTHER])


#: Values no filter should take, each a way a page could fail on reading it.
HOSTILE = [
    "\x00",
    "'",
    "-1",
    "9" * 30,
    "1e309",
    "nan",
    "2026-13-45",
    "2026-11-30T25:00",
    "9999-12-31",
    "0001-01-01",
    "0001-01-01T00:00+14:00",
    "9999-12-31T23:59-12:00",
    "America",
    "Etc",
    "../../etc/passwd",
    "x" * 20_000,
    "\udcff",
    "999999999d",
]


@pytest.mark.parametrize("key", ["course", "since", "until", "tz", "q", "size", "page"])
def test_no_filter_value_makes_a_page_fail(dash: Flask, key: str) -> None:
    """Each page and download answers 200 or a 400 naming the filter, never a 5xx."""
    urls = [f"/activity/dashboard/{slug}" for slug in PAGES]
    urls += [f"/activity/dashboard/{report}.csv" for report in REPORTS]
    for value in HOSTILE:
        for url in urls:
            answer = get(dash, url, **{key: value.encode("utf-8", "surrogatepass")})
            assert answer.status_code in (200, 400), (url, key, value[:30], answer.status_code)
            if answer.status_code == 400 and url.endswith(".csv"):
                assert answer.json["code"] == "invalid_filter", (url, key, value[:30])
