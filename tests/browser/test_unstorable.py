"""Failure class 2 in a real browser: the Logger sends a batch with an event no database
can hold, among good ones.

The server must refuse that event alone (listed in ``failed``, kept in the failed table
with a reason naming the field), never answer the batch 503: the Logger would retry it
forever, and the good events of the batch and every event logged after it would wait
behind it. So: the good events are stored, the queue in ``localStorage`` drains, and
events logged afterwards are stored too.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from livedemo import QUEUED_IN_STORAGE, LiveServer, flushed

#: ``case: (event_type, payload, the field the refusal names)``, as JavaScript. Chromium
#: keeps a lone surrogate in a JS string, and JSON.stringify writes it as "\ud800".
UNSTORABLE = {
    "lone-surrogate-in-payload": (
        "'demo.bad'",
        "{n: 1, text: 'half a pair: ' + String.fromCharCode(0xd800)}",
        "event",
    ),
    "event_type-of-3000-characters": ("'x'.repeat(3000)", "{n: 1}", "event_type"),
}
#: JavaScript: log a good, the bad and a good event; note how each log() promise settles.
LOG_A_BAD_BATCH = """() => {{
    window.settled = [];
    const note = (name, logged) => logged.then(
        () => settled.push([name, 'stored']),
        error => settled.push([name, error.errors || String(error)]));
    note('before', Logger.log('demo.good', {{n: 0}}));
    note('bad', Logger.log({event_type}, {payload}));
    note('after', Logger.log('demo.good', {{n: 2}}));
}}"""


def is_batch(request: Any) -> bool:
    return request.method == "POST" and request.url.endswith("/activity/events")


@pytest.mark.parametrize("case", list(UNSTORABLE))
def test_an_unstorable_event_fails_alone_and_the_queue_drains(
    page: Any, live_server: LiveServer, case: str
) -> None:
    event_type, payload, field = UNSTORABLE[case]
    flushed(page)  # load_video: only the test's events are left to send
    page.evaluate("() => Logger.configure({maxWaitMs: 600000})")  # one batch, sent by flush()
    page.evaluate(LOG_A_BAD_BATCH.format(event_type=event_type, payload=payload))
    assert page.evaluate("() => Logger.stats().queued") == 3
    with page.expect_request(is_batch) as request:
        page.evaluate("() => Logger.flush()")  # resolves once the server has answered
    sent = json.loads(request.value.post_data)["events"]
    assert [e["seq"] for e in sent] == [2, 3, 4], "the three events went in one batch"
    bad = sent[1]
    if field == "event":
        assert bad["event"]["text"].endswith("\ud800"), "Chromium sent the lone surrogate"

    # The bad event alone was refused, with a reason naming its field; nothing retried.
    page.wait_for_function("() => window.settled.length === 3")
    settled = dict(page.evaluate("() => window.settled"))
    assert settled["before"] == settled["after"] == "stored"
    assert field in settled["bad"], settled["bad"]
    stats = page.evaluate("() => Logger.stats()")
    assert stats == {"queued": 0, "sent": 3, "retried": 0, "dropped": 1}, stats
    assert page.evaluate(QUEUED_IN_STORAGE) == 0

    assert sorted(r.event["n"] for r in live_server.events("demo.good")) == [0, 2]
    (row,) = live_server.failed()
    assert row.event_id == bad["id"] and field in row.reasons, row.reasons
    assert row.origin == "browser" and len(row.event_type or "") <= 1024

    # The Logger goes on: what is logged afterwards is stored too.
    page.evaluate("() => { for (let n = 10; n < 13; n++) Logger.log('demo.after', {n}); }")
    flushed(page)
    rows = live_server.wait_for_events(
        lambda rows: len([r for r in rows if r.event_type == "demo.after"]) == 3,
        what="the events logged after the unstorable one",
    )
    assert sorted(r.event["n"] for r in rows if r.event_type == "demo.after") == [10, 11, 12]
    assert page.evaluate(QUEUED_IN_STORAGE) == 0
    assert len(live_server.failed()) == 1
