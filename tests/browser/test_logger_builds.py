"""The built Logger files in Chromium, as the blueprint serves them: ``logger.min.js`` as
a classic script and ``logger.mjs`` as an ES module each give a working page Logger
that delivers to the server, and ``stop()`` removes its page listeners.

The page itself is a bare HTML page answered by Playwright at a URL of the live demo
(same origin); the Logger files and the batch endpoint are the demo's real ones.
"""

from __future__ import annotations

from typing import Any

from livedemo import LiveServer

PAGE = "/logger-builds-test"


def open_bare_page(context: Any, live_server: LiveServer, head: str) -> Any:
    page = context.new_page()
    html = f"<!doctype html><html><head>{head}</head><body>bare page</body></html>"
    page.route(
        f"**{PAGE}", lambda route: route.fulfill(status=200, content_type="text/html", body=html)
    )
    page.goto(live_server.url + PAGE)
    page.wait_for_function("() => window.Logger && window.loaded")
    return page


def delivered(page: Any, event_type: str) -> dict[str, Any]:
    """Logs one event, flushes, and returns the Logger's stats once the server answered."""
    return page.evaluate(
        """async (type) => {
            await Logger.log(type, {n: 1}, null, {flush: true});
            return Logger.stats();
        }""",
        event_type,
    )


def test_logger_min_js_delivers_in_chromium(context: Any, live_server: LiveServer) -> None:
    head = (
        '<script src="/activity/static/js/logger.min.js" data-endpoint="/activity/events">'
        "</script><script>window.loaded = true;</script>"
    )
    page = open_bare_page(context, live_server, head)
    assert page.evaluate("() => typeof window.log_event") == "function"
    assert page.evaluate("() => 'FlaskTrackingLogger' in window") is False
    stats = delivered(page, "demo.minified")
    assert stats["sent"] == 1 and stats["queued"] == 0, stats


def test_logger_mjs_delivers_in_chromium(context: Any, live_server: LiveServer) -> None:
    head = """<script type="module">
        import Logger, { createLogger } from "/activity/static/js/logger.mjs";
        window.sameLogger = Logger === window.Logger;
        window.factory = typeof createLogger;
        window.loaded = true;
    </script>"""
    page = open_bare_page(context, live_server, head)
    assert page.evaluate("() => [window.sameLogger, window.factory]") == [True, "function"]
    stats = delivered(page, "demo.module")
    assert stats["sent"] == 1 and stats["queued"] == 0, stats


def test_stop_ends_page_close_in_chromium(context: Any, live_server: LiveServer) -> None:
    head = '<script src="/activity/static/js/logger.js"></script><script>loaded = true;</script>'
    page = open_bare_page(context, live_server, head)
    queued_after_hide = """() => {
        document.dispatchEvent(new Event("visibilitychange"));  // still visible: no-op
        Object.defineProperty(document, "visibilityState", {value: "hidden", configurable: true});
        document.dispatchEvent(new Event("visibilitychange"));
        const queued = JSON.parse(localStorage.getItem(
            Object.keys(localStorage).find((k) => k.startsWith("ft:q:"))) || "[]");
        return queued.map((e) => e.event_type);
    }"""
    page.evaluate("() => Logger.stop()")
    assert page.evaluate(queued_after_hide) == [], "a stopped Logger logs no page_close"
