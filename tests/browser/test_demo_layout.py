"""The demo's layout in Chromium at a phone width (390 px) and a desktop width (1280 px).

On every page (sign-in, each unit of the course, the events page, a 404) nothing is wider
than the window, and the controls a learner needs are inside it and take a click. A
full-page screenshot of each page at each width goes to ``test-output/screenshots/``
(git-ignored); the paths are printed (``pytest -s`` shows them).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from livedemo import LiveServer, flushed, open_course, sign_in

SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-output" / "screenshots"
PHONE, DESKTOP = 390, 1280
#: JavaScript: how far the page reaches past the right edge of the window (0 when none).
OVERFLOW = "() => document.documentElement.scrollWidth - window.innerWidth"
#: JavaScript: the elements that stick out past the right edge, for the failure message.
WIDE_ELEMENTS = """() => [...document.querySelectorAll('body *')]
    .filter(e => e.getBoundingClientRect().right > window.innerWidth + 0.5)
    .slice(0, 8)
    .map(e => `${e.tagName.toLowerCase()}#${e.id}.${e.className}`)"""

#: The controls of each unit a learner must be able to reach (CSS selectors).
UNIT_CONTROLS = {
    1: ["#lecture", "#speed"],
    2: [".prose a"],
    3: ["#book-prev", "#book-page", "#book-goto button", "#book-next"],
    4: ["#input_checkpoint_2_1", "#problem-check", "#problem-save", "#problem-show"],
}
SEQUENCE_CONTROLS = ["#seq-prev", "#seq-next", *(f".seq-tab[data-unit='{n}']" for n in range(1, 5))]
NAV_CONTROLS = [
    "header.top .brand",
    ".site-nav a[href$='/courseware']",
    ".site-nav a[href$='/events']",
    ".account button",
]


@pytest.fixture(params=[PHONE, DESKTOP], ids=["390px", "1280px"])
def width(request: pytest.FixtureRequest) -> int:
    return int(request.param)


def _tab(context: Any, width: int) -> Any:
    tab = context.new_page()
    tab.set_viewport_size({"width": width, "height": 844 if width == PHONE else 900})
    return tab


def _check(tab: Any, name: str, width: int, controls: list[str]) -> None:
    """No horizontal overflow, every control inside the window and clickable; a screenshot."""
    tab.wait_for_load_state("load")
    assert tab.evaluate("() => window.innerWidth") == width
    overflow = tab.evaluate(OVERFLOW)
    assert overflow <= 0, (
        f"{name} at {width} px is {overflow} px too wide: {tab.evaluate(WIDE_ELEMENTS)}"
    )
    for selector in controls:
        control = tab.locator(selector).first
        control.scroll_into_view_if_needed()
        box = control.bounding_box()
        assert box is not None, f"{selector} is not shown on {name} at {width} px"
        assert box["x"] >= 0 and box["x"] + box["width"] <= width + 0.5, (
            f"{selector} on {name} at {width} px is outside the window: {box}"
        )
        assert control.is_visible(), f"{selector} is hidden on {name} at {width} px"
        # Playwright's actionability checks: visible, stable, enabled, and the click
        # point is not covered by another element. (Previous on unit 1 is disabled.)
        if control.is_enabled():
            control.click(trial=True)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}-{width}.png"
    tab.evaluate("() => window.scrollTo(0, 0)")
    tab.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")


def test_sign_in_page(context: Any, live_server: LiveServer, width: int) -> None:
    tab = _tab(context, width)
    tab.goto("/")
    _check(tab, "signin", width, ["#username", ".signin button[type=submit]"])


@pytest.mark.parametrize("unit", [1, 2, 3, 4])
def test_course_units(context: Any, live_server: LiveServer, width: int, unit: int) -> None:
    sign_in(context)
    tab = _tab(context, width)
    tab.goto(f"{live_server.course_url}?unit={unit}")
    tab.wait_for_selector(f"#unit-{unit}:not([hidden])")
    if unit == 1:
        tab.wait_for_function("() => document.getElementById('lecture').readyState >= 1")
    if unit == 3:
        tab.wait_for_selector("#book[data-state=ready]")
        page_box = tab.locator("#book .page").first.bounding_box()
        assert page_box is not None and page_box["x"] + page_box["width"] <= width
    controls = NAV_CONTROLS + SEQUENCE_CONTROLS + UNIT_CONTROLS[unit]
    _check(tab, f"unit{unit}", width, controls)


def test_events_page(context: Any, live_server: LiveServer, width: int) -> None:
    sign_in(context)
    course = open_course(context, live_server)
    course.click(".seq-tab[data-unit='4']")
    course.fill("#input_checkpoint_2_1", "42")
    course.check("input[name=input_checkpoint_3_1][value=choice_0]")
    course.click("#problem-check")
    course.wait_for_selector("#problem-status:text('Correct:')")
    flushed(course)
    course.close()

    tab = _tab(context, width)
    tab.goto("/events")
    tab.locator("#events tbody tr", has_text="problem_check").first.wait_for()
    tab.locator("#events tbody tr.fresh").first.wait_for(state="detached")
    payload = tab.locator("#events td.payload").first
    _check(tab, "events", width, [*NAV_CONTROLS, "td.payload"])
    payload.click()  # the whole payload, indented, still inside the window
    assert tab.evaluate(OVERFLOW) <= 0

    # Staff's page: everyone's events and the "Only mine" box.
    sign_in(context, "staff")
    tab.goto("/events")
    tab.locator("#events tbody tr", has_text="problem_check").first.wait_for()
    tab.locator("#events tbody tr.fresh").first.wait_for(state="detached")
    _check(tab, "events-staff", width, [*NAV_CONTROLS, "#mine", "td.payload"])


@pytest.fixture
def anonymizing_server(tmp_path: Path) -> Iterator[LiveServer]:
    """The demo with the library's default, TRACKING_ANONYMIZE on."""
    config = {
        "SECRET_KEY": "browser-tests",
        "TRACKING_DATABASE_URL": f"sqlite:///{tmp_path / 'anonymized.db'}",
        "TRACKING_ANONYMIZE": True,
    }
    live = LiveServer.start(config)
    try:
        yield live
    finally:
        live.stop()


def test_anonymous_ids_on_a_phone(browser: Any, anonymizing_server: LiveServer) -> None:
    """32-character anonymous ids in the Username column still fit the window."""
    context = browser.new_context(base_url=anonymizing_server.url)
    try:
        sign_in(context)
        flushed(open_course(context, anonymizing_server))
        tab = _tab(context, PHONE)
        tab.goto("/events")
        row = tab.locator("#events tbody tr", has_text="load_video").first
        row.wait_for()
        user = row.locator("td.user").inner_text()
        assert len(user) == 32 and user != "ada", user
        _check(tab, "events-anonymized", PHONE, [*NAV_CONTROLS, "td.payload"])
    finally:
        context.close()


def test_a_long_name_on_a_phone(context: Any, live_server: LiveServer) -> None:
    """The longest name the sign-in takes (30 characters) still fits the header."""
    sign_in(context, "Ada_Lovelace.Countess-Lovelace")
    tab = _tab(context, PHONE)
    tab.goto(f"{live_server.course_url}?unit=1")
    _check(tab, "long-name", PHONE, [*NAV_CONTROLS, "#whoami"])


def test_not_found_page(context: Any, live_server: LiveServer, width: int) -> None:
    tab = _tab(context, width)
    answer = tab.goto("/no/such/page")
    assert answer is not None and answer.status == 404
    _check(tab, "404", width, ["header.top .brand", "main a.button"])
