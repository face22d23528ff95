"""Durability of the Logger in a real browser: offline, a closed tab, a failing server."""

from __future__ import annotations

import itertools
import time
from collections import Counter
from typing import Any

import pytest

from flask_tracking import TrackingEvent

from livedemo import DEADLINE, LiveServer, flushed, open_course

#: JavaScript: how many events the queues in localStorage hold, over all tabs.
QUEUED_IN_STORAGE = """() => Object.keys(localStorage)
    .filter(k => k.startsWith('ft:q:'))
    .reduce((n, k) => n + JSON.parse(localStorage.getItem(k)).length, 0)"""


def _marks(rows: list[TrackingEvent], event_type: str) -> Counter[int]:
    """How many times each numbered test event was stored."""
    return Counter(r.event["n"] for r in rows if r.event_type == event_type)


def test_offline_events_are_stored_once_back_online(
    context: Any, page: Any, live_server: LiveServer
) -> None:
    flushed(page)  # load_video: only the offline events are left to send
    context.set_offline(True)
    assert page.evaluate("() => navigator.onLine") is False

    page.evaluate("() => { for (let n = 0; n < 100; n++) Logger.log('demo.offline', {n}); }")
    assert page.evaluate("() => Logger.stats().queued") == 100
    assert page.evaluate(QUEUED_IN_STORAGE) == 100  # durable before any request
    assert page.evaluate("() => Logger.flush().then(() => 'sent', () => 'refused')") == "refused"
    assert live_server.events("demo.offline") == []

    context.set_offline(False)
    page.wait_for_function("() => Logger.stats().queued === 0")

    rows = live_server.events("demo.offline")
    assert _marks(rows, "demo.offline") == Counter(range(100))
    assert len({r.event_id for r in rows}) == 100
    assert sorted(r.seq or 0 for r in rows) == list(range(2, 102))
    assert page.evaluate("() => Logger.stats()") == {
        "queued": 0,
        "sent": 101,
        "retried": 0,
        "dropped": 0,
    }
    assert page.evaluate(QUEUED_IN_STORAGE) == 0


@pytest.mark.parametrize("delivery", ["beacon", "next page load"])
def test_events_logged_just_before_closing_the_tab(
    context: Any, page: Any, live_server: LiveServer, delivery: str
) -> None:
    flushed(page)
    # Only the page's end may send these: no batch timer while the test is slow.
    page.evaluate("() => Logger.configure({maxWaitMs: 600000})")
    if delivery == "next page load":
        # The beacon is lost (the browser dropped it, the network was down): the
        # events are only in localStorage when the tab is gone.
        page.evaluate("() => { navigator.sendBeacon = () => true; }")
    page.evaluate("() => { for (let n = 0; n < 5; n++) Logger.log('demo.closing', {n}); }")
    page.click(".seq-tab[data-unit='2']")  # and a last click, as a person would
    assert page.evaluate("() => Logger.stats().queued") == 6
    page.close(run_before_unload=True)

    def stored(rows: list[TrackingEvent]) -> bool:
        types = Counter(r.event_type for r in rows)
        return types["demo.closing"] == 5 and types["seq_goto"] == 1 and types["page_close"] == 1

    if delivery == "beacon":
        live_server.wait_for_events(stored, what="the beaconed events")
    else:
        assert live_server.events("demo.closing") == []

    # The next page of the site adopts what the closed tab left in localStorage, and
    # sends it again: the server keeps one copy.
    later = open_course(context, live_server, unit=2)
    later.wait_for_function(f"{QUEUED_IN_STORAGE.rstrip()} === 0")
    flushed(later)
    rows = live_server.wait_for_events(stored, what="the closed tab's events")

    assert _marks(rows, "demo.closing") == Counter(range(5))
    assert Counter(r.event_type for r in rows) == Counter(
        {"load_video": 2, "demo.closing": 5, "seq_goto": 1, "page_close": 1}
    )
    assert len({r.event_id for r in rows}) == len(rows)
    closed_page = next(r for r in rows if r.event_type == "page_close")
    assert closed_page.seq == 8  # load_video, 5 marks, seq_goto, page_close


def test_server_answering_503_for_10_seconds(page: Any, live_server: LiveServer) -> None:
    """Nothing is lost, and the Logger does not hammer the server while it is down."""
    flushed(page)
    outage = 10.0
    attempts: list[float] = []
    started: list[float] = []

    def batch(route: Any) -> None:
        now = time.monotonic()
        if not started:
            started.append(now)
        if now - started[0] < outage:
            attempts.append(now - started[0])
            route.fulfill(
                status=503,
                headers={"Retry-After": "1"},
                content_type="application/json",
                body='{"status": 503, "code": "store_unavailable"}',
            )
        else:
            route.continue_()

    page.route("**/activity/events", batch)
    # The learner keeps working through the outage: 40 events over 10 s.
    page.evaluate(
        """() => {
            window.logged = 0;
            const timer = setInterval(() => {
                Logger.log('demo.outage', {n: window.logged++});
                if (window.logged === 40) clearInterval(timer);
            }, 250);
        }"""
    )
    page.wait_for_function(
        "() => window.logged === 40 && Logger.stats().queued === 0",
        timeout=(outage + DEADLINE) * 1000,
    )
    assert started and time.monotonic() - started[0] >= outage

    rows = live_server.events("demo.outage")
    assert _marks(rows, "demo.outage") == Counter(range(40))
    assert len({r.event_id for r in rows}) == 40
    stats = page.evaluate("() => Logger.stats()")
    assert stats["dropped"] == 0 and stats["retried"] > 0
    # Retry-After: 1 s, one request in flight: about one attempt a second, whatever the
    # learner does meanwhile (40 events would be 40 requests without a backoff).
    assert 3 <= len(attempts) <= 15, attempts
    gaps = [b - a for a, b in itertools.pairwise(attempts)]
    assert min(gaps) >= 0.9, gaps
