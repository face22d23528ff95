"""The staff dashboard of the demo in Chromium, over the hand-made course of
reports_fixture.py: every chart drawn, with no console error and no CSP violation; the
tables equal the report functions' rows, before and after a person sets the filters; the
CSV downloads equal the rows; 403 for a learner and for nobody; 404 when
TRACKING_DASHBOARD is off; top N, search and pages over 3,000 videos. Screenshots of each
page at 1280 px and 390 px go to ``test-output/screenshots/dashboard-*.png``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from dashboard_support import (
    FILTERED,
    FILTERED_ARGS,
    PAGES,
    cells,
    expected_tables,
    store_fixture,
    store_videos,
)

from flask_tracking.reports import REPORTS, video, video_curve
from flask_tracking.reports.formats import as_csv

from livedemo import DEADLINE, LiveServer, sign_in

SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-output" / "screenshots"
PHONE, DESKTOP = 390, 1280
#: Records CSP violations in the page (the init script runs before the page's own).
CSP_WATCH = """window.__csp = [];
document.addEventListener('securitypolicyviolation',
    e => window.__csp.push(e.violatedDirective + ' ' + (e.blockedURI || 'inline')));"""
#: JavaScript: report name -> the body cells of its section's table.
TABLES = """() => Object.fromEntries([...document.querySelectorAll('section[data-report]')]
    .map(s => [s.dataset.report, [...s.querySelectorAll('table.rows tbody tr')]
        .map(tr => [...tr.cells].map(td => td.textContent.trim()))]))"""
#: JavaScript: the ids of the chart canvases that Chart.js drew something on.
DRAWN = """() => [...document.querySelectorAll('canvas')].filter(c => {
    if (!window.Chart.getChart(c) || c.width === 0 || c.height === 0) return false;
    const pixels = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    for (let i = 3; i < pixels.length; i += 4) if (pixels[i] !== 0) return true;
    return false;
}).map(c => c.id)"""
OVERFLOW = "() => document.documentElement.scrollWidth - window.innerWidth"


def _server(tmp: Path, **config: Any) -> LiveServer:
    return LiveServer.start(
        {"SECRET_KEY": "browser-tests", "TRACKING_DATABASE_URL": f"sqlite:///{tmp}/d.db", **config}
    )


@pytest.fixture(scope="module")
def course_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = _server(tmp_path_factory.mktemp("dashboard"))
    try:
        store_fixture(live.app)
        yield live
    finally:
        live.stop()


@pytest.fixture(scope="module")
def video_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = _server(tmp_path_factory.mktemp("videos"))
    try:
        store_videos(live.app.extensions["tracking"].tracker, 3000)
        yield live
    finally:
        live.stop()


class Watched:
    """A tab whose console errors, page errors and CSP violations are kept."""

    def __init__(self, context: Any, width: int = DESKTOP) -> None:
        self.problems: list[str] = []
        self.tab = context.new_page()
        self.tab.set_viewport_size({"width": width, "height": 900})
        self.tab.add_init_script(CSP_WATCH)
        self.tab.on("console", self._console)
        self.tab.on("pageerror", lambda exc: self.problems.append(f"page error: {exc}"))

    def _console(self, message: Any) -> None:
        if message.type in ("error", "warning"):
            self.problems.append(f"console {message.type}: {message.text}")

    def open(self, path: str) -> Any:
        answer = self.tab.goto(path)
        self.tab.wait_for_load_state("load")
        return answer

    def check_clean(self) -> None:
        violations = self.tab.evaluate("() => window.__csp")
        assert violations == [] and self.problems == [], (violations, self.problems)


def _staff(browser: Any, live: LiveServer, name: str | None = "staff") -> Any:
    context = browser.new_context(base_url=live.url, accept_downloads=True)
    context.set_default_timeout(DEADLINE * 1000)
    if name:
        sign_in(context, name)
    return context


@pytest.fixture
def staff(browser: Any, course_server: LiveServer) -> Iterator[Any]:
    context = _staff(browser, course_server)
    try:
        yield context
    finally:
        context.close()


def _check_page(watched: Watched, slug: str, engine: Any, args: dict[str, Any]) -> None:
    """Tables equal the rows, every section with rows has its chart drawn, no errors."""
    tab = watched.tab
    expected = expected_tables(engine, slug, args)
    assert tab.evaluate(TABLES) == expected, slug
    wanted = {f"chart-{name}" for name, rows in expected.items() if rows}
    tab.wait_for_function("() => window.Chart !== undefined")
    assert set(tab.evaluate(DRAWN)) == wanted, slug
    watched.check_clean()


@pytest.mark.parametrize("width", [DESKTOP, PHONE], ids=["1280px", "390px"])
def test_every_page_draws_its_charts_cleanly_and_fits(
    staff: Any, course_server: LiveServer, width: int
) -> None:
    engine = course_server.app.extensions["tracking"].engine
    watched = Watched(staff, width)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for slug in ["", *PAGES]:
        answer = watched.open(f"/activity/dashboard/{slug}".rstrip("/"))
        assert answer.status == 200
        if slug:
            _check_page(watched, slug, engine, {})
        assert watched.tab.evaluate(OVERFLOW) <= 0, f"{slug} is too wide at {width} px"
        path = SCREENSHOTS / f"dashboard-{slug or 'index'}-{width}.png"
        watched.tab.screenshot(path=str(path), full_page=True)
        print(f"screenshot: {path}")
    watched.check_clean()


def test_charts_follow_the_window_width(staff: Any) -> None:
    watched = Watched(staff, DESKTOP)
    watched.open("/activity/dashboard/video")
    canvas = "document.getElementById('chart-video-curve')"
    watched.tab.wait_for_function(f"() => {canvas}.clientWidth > 900")
    watched.tab.set_viewport_size({"width": PHONE, "height": 844})
    watched.tab.wait_for_function(f"() => {canvas}.clientWidth < {PHONE}")
    assert watched.tab.evaluate(OVERFLOW) <= 0
    watched.check_clean()


def test_the_csp_is_enforced_and_violations_are_seen(staff: Any) -> None:
    """The watcher works: an inline script added to the page is refused and reported."""
    watched = Watched(staff)
    watched.open("/activity/dashboard/video")
    watched.tab.evaluate(
        """() => { const s = document.createElement('script');
        s.textContent = 'window.__ran = true'; document.body.appendChild(s); }"""
    )
    watched.tab.wait_for_function("() => window.__csp.length > 0")
    assert watched.tab.evaluate("() => window.__ran") is None
    assert watched.tab.evaluate("() => window.__csp")[0].startswith("script-src")


def test_the_filters_a_person_sets_change_the_numbers(
    staff: Any, course_server: LiveServer
) -> None:
    engine = course_server.app.extensions["tracking"].engine
    watched = Watched(staff)
    for slug in PAGES:
        watched.open(f"/activity/dashboard/{slug}")
        tab = watched.tab
        tab.fill("input[name=course]", FILTERED["course"])
        tab.fill("input[name=since]", FILTERED["since"])
        tab.fill("input[name=until]", FILTERED["until"])
        tab.fill("input[name=tz]", FILTERED["tz"])
        with tab.expect_navigation():
            tab.click("form.filters button[type=submit]")
        for key, value in FILTERED.items():
            assert tab.evaluate(f"() => new URL(location).searchParams.get('{key}')") == value
        _check_page(watched, slug, engine, FILTERED_ARGS)
        # The same view from a shared link, and back to everything with Clear.
        watched.open(tab.url)
        _check_page(watched, slug, engine, FILTERED_ARGS)
        with tab.expect_navigation():
            tab.click("a.reset")
        _check_page(watched, slug, engine, {})


@pytest.mark.parametrize("filtered", [False, True], ids=["all", "filtered"])
def test_each_csv_download_equals_the_report_rows(
    staff: Any, course_server: LiveServer, filtered: bool
) -> None:
    engine = course_server.app.extensions["tracking"].engine
    watched = Watched(staff)
    query = "?" + urlencode(FILTERED) if filtered else ""
    seen = []
    for slug, (sections, _) in PAGES.items():
        watched.open(f"/activity/dashboard/{slug}{query}")
        for name, _ in sections:
            with watched.tab.expect_download() as download:
                watched.tab.click(f"#section-{name} a.csv")
            assert download.value.suggested_filename == f"{name}.csv"
            text = Path(download.value.path()).read_text(encoding="utf-8")
            rows = REPORTS[name](engine, **(FILTERED_ARGS if filtered else {}))
            assert text == as_csv(rows), name
            seen.append(name)
    assert sorted(seen) == sorted(REPORTS)
    watched.check_clean()


def test_a_learner_and_nobody_get_403(browser: Any, course_server: LiveServer) -> None:
    for name in ("ada", None):
        context = _staff(browser, course_server, name)
        try:
            tab = context.new_page()
            for path in ("/activity/dashboard", "/activity/dashboard/video"):
                assert tab.goto(path).status == 403, (name, path)
            assert tab.goto("/activity/dashboard/video.csv").status == 403
        finally:
            context.close()


def test_staff_reach_it_from_the_events_page(staff: Any) -> None:
    tab = staff.new_page()
    tab.goto("/events")
    with tab.expect_navigation():
        tab.click("#dashboard-link")
    assert tab.url.endswith("/activity/dashboard")
    assert tab.locator("ul.cards li").count() == len(PAGES)


def test_it_is_404_when_turned_off(browser: Any, tmp_path: Path) -> None:
    live = _server(tmp_path, TRACKING_DASHBOARD=False)
    context = _staff(browser, live)
    try:
        tab = context.new_page()
        for path in (
            "/activity/dashboard",
            "/activity/dashboard/video",
            "/activity/dashboard/video.csv",
        ):
            assert tab.goto(path).status == 404, path
        tab.goto("/events")
        assert tab.locator("#dashboard-link").count() == 0
    finally:
        context.close()
        live.stop()


def test_top_n_search_and_pages_over_3000_videos(browser: Any, video_server: LiveServer) -> None:
    engine = video_server.app.extensions["tracking"].engine
    rows = video(engine)
    assert len(rows) == 3000
    context = _staff(browser, video_server)
    try:
        watched = Watched(context)
        tab = watched.tab
        watched.open("/activity/dashboard/video")

        def listed() -> list[list[str]]:
            return tab.evaluate(TABLES)["video"]

        assert listed() == cells(rows[:20])  # the top 20 by plays, not 3,000 rows
        chart = tab.evaluate("() => Chart.getChart('chart-video').data")
        assert chart["labels"] == [r["video_id"] for r in rows[:20]]
        assert chart["datasets"][0]["data"] == [r["plays"] for r in rows[:20]]
        assert "1\N{EN DASH}20 of 3000" in tab.inner_text("#section-video .pager")

        tab.fill("#section-video input[name=q]", "-29")
        with tab.expect_navigation():
            tab.click("#section-video form.search button")
        matching = [r for r in rows if "-29" in r["video_id"]]
        assert len(matching) == 100  # video-2900 to video-2999
        assert listed() == cells(matching[:20])
        assert "1\N{EN DASH}20 of 100" in tab.inner_text("#section-video .pager")
        with tab.expect_navigation():
            tab.click("#section-video .pager a[rel=next]")
        assert listed() == cells(matching[20:40])
        assert "q=-29" in tab.url and "page=2" in tab.url

        picked = matching[25]["video_id"]
        with tab.expect_navigation():
            tab.click(f"#section-video a:text-is('{picked}')")
        curve = [r for r in video_curve(engine) if r["video_id"] == picked]
        shown = [{k: v for k, v in r.items() if k != "video_id"} for r in curve]
        assert curve and tab.evaluate(TABLES)["video-curve"] == cells(shown)
        assert tab.inner_text("#section-video-curve .picked-id") == picked
        watched.check_clean()
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        tab.screenshot(path=str(SCREENSHOTS / "dashboard-video-3000-1280.png"), full_page=True)
    finally:
        context.close()
