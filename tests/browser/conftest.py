"""Real-browser fixtures: the demo on loopback, Debian's Chromium through Playwright.

- ``live_server``: the demo app on a free port of 127.0.0.1 with a fresh SQLite file
  (see ``livedemo.LiveServer``).
- ``browser``: one headless Chromium for the session, ``/usr/bin/chromium``
  (Playwright's own browser download does not work on our machines).
- ``context``: a fresh profile per test (cookies, ``localStorage``), not signed in.
- ``page``: the course page in that context, the learner signed in.

Without Chromium or Playwright the tests are skipped locally, and fail under ``CI=true``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# demo_app is not an installed package: it runs from the checkout (python -m demo_app).
ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from demo_app import DEFAULT_PDFJS_DIR  # noqa: E402

from livedemo import (  # noqa: E402
    CHROMIUM,
    CHROMIUM_ARGS,
    DEADLINE,
    LiveServer,
    open_course,
    sign_in,
    unavailable,
)


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[LiveServer]:
    if not (DEFAULT_PDFJS_DIR / "legacy" / "build" / "pdf.min.mjs").exists():
        unavailable(f"PDF.js is not installed in {DEFAULT_PDFJS_DIR} (run npm ci)")
    live = LiveServer.start(
        {
            "SECRET_KEY": "browser-tests",
            "TRACKING_DATABASE_URL": f"sqlite:///{tmp_path / 'demo.db'}",
        }
    )
    try:
        yield live
    finally:
        live.stop()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not os.access(CHROMIUM, os.X_OK):
        unavailable(f"{CHROMIUM} is missing (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("Playwright for Python is missing (pip install -e '.[dev]')")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def context(browser: Any, live_server: LiveServer) -> Iterator[Any]:
    ctx = browser.new_context(base_url=live_server.url, viewport={"width": 1200, "height": 900})
    ctx.set_default_timeout(DEADLINE * 1000)
    try:
        yield ctx
    finally:
        ctx.close()


@pytest.fixture
def page(context: Any, live_server: LiveServer) -> Any:
    sign_in(context)
    return open_course(context, live_server)
