"""One event that cannot be encoded fails alone; bodies are strict JSON; text is escaped.

The unencodable values are written straight into stored rows with SQL, as data stored
before ingest had limits (or by a custom backend) holds them: NaN, Infinity (``1e999``,
which PostgreSQL's ``json`` type takes) and a lone surrogate (``"\\ud800"``, the way
``json.dumps`` stores one). PostgreSQL refuses NaN and lone surrogates in ``json``, so
those two run on SQLite only. Receivers are real loopback HTTP and SMTP servers.
"""

from __future__ import annotations

import email
import email.policy
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select, text

from flask_tracking.extension import get_state
from flask_tracking.forwarding import (
    DELIVERED,
    FAILED,
    Destination,
    EmailDestination,
    OutgoingEvent,
    PermanentError,
    SlackDestination,
    WebhookDestination,
    deliveries_table,
)
from flask_tracking.forwarding.batches import idempotency_key
from flask_tracking.forwarding.destinations import strict_json
from flask_tracking.logformat import render_line
from flask_tracking.models import events_table

from forwarding_app import FAST, event, forwarder_of, make_app, states, store
from receivers import SmtpReceiver, WebhookReceiver
from support import partition_config

SECRET = "encoding-secret"
D = deliveries_table

#: (label, stored column, JSON text written into it, words of the reason)
BAD_VALUES: list[tuple[str, str, str, str]] = [
    ("nan", "event", '{"score": NaN}', "NaN or Infinity"),
    ("infinity", "event", '{"score": 1e999}', "NaN or Infinity"),
    ("lone-surrogate", "event", '{"answer": "caf\\ud800"}', "lone surrogate (U+D800)"),
    ("context-nan", "context", '{"course_id": "c", "grade": NaN}', "NaN or Infinity"),
]
PG_REFUSES = {"nan", "lone-surrogate", "context-nan"}


def strict(value: Any) -> None:
    """Fail unless ``value`` (as a receiver parsed it) is strict JSON."""
    strict_json(value)


@dataclass
class Receivers:
    hook: WebhookReceiver
    chat: WebhookReceiver
    smtp: SmtpReceiver
    log: Path


@pytest.fixture
def receivers(tmp_path: Path) -> Iterator[Receivers]:
    smtp = SmtpReceiver()
    with WebhookReceiver(SECRET) as hook, WebhookReceiver(None) as chat:
        yield Receivers(hook, chat, smtp, tmp_path / "forwarded.log")
    smtp.close()


@pytest.fixture
def app(database_url: str, tmp_path: Path, receivers: Receivers) -> Iterator[Flask]:
    app = make_app(
        {
            "INSTANCE_PATH": str(tmp_path / "instance"),
            "TRACKING_DATABASE_URL": database_url,
            **partition_config(database_url),
            "TRACKING_DESTINATIONS": {
                "hook": {
                    "kind": "webhook",
                    "options": {"url": receivers.hook.url, "secret": SECRET, "timeout": 2},
                },
                "chat": {"kind": "slack", "options": {"url": receivers.chat.url, "timeout": 2}},
                "mail": {
                    "kind": "email",
                    "options": {
                        "host": "127.0.0.1",
                        "port": receivers.smtp.port,
                        "sender": "tracking@example.org",
                        "recipients": ["staff@example.org"],
                        "timeout": 2,
                    },
                },
                "file": {"kind": "log", "options": {"path": str(receivers.log)}},
            },
            **FAST,
        }
    )
    forwarder_of(app).close()  # no thread: the test hands the deliveries out itself
    yield app
    forwarder_of(app).close()  # the connections the test's deliveries opened
    get_state(app).engine.dispose()


def spoil(app: Flask, event_id: str, column: str, stored: str) -> None:
    """Write ``stored`` (JSON text) into one column of one stored event, bypassing ingest."""
    engine = get_state(app).engine
    cast = "CAST(:value AS JSON)" if engine.dialect.name == "postgresql" else ":value"
    with engine.begin() as conn:
        conn.execute(
            text(f"UPDATE tracking_events SET {column} = {cast} WHERE event_id = :id"),
            {"value": stored, "id": event_id},
        )


def deliveries(app: Flask, destination: str) -> dict[str, Any]:
    """``{event_id: row}`` of one destination's deliveries."""
    with get_state(app).engine.connect() as conn:
        found = conn.execute(
            select(events_table.c.event_id, D.c.state, D.c.attempts, D.c.last_error)
            .select_from(D.join(events_table, events_table.c.id == D.c.event_pk))
            .where(D.c.destination == destination)
        )
        return {row.event_id: row for row in found}


def mails(smtp: SmtpReceiver) -> list[Message]:
    return [email.message_from_bytes(raw, policy=email.policy.default) for raw in smtp.messages]


PORTABLE = [v for v in BAD_VALUES if v[0] not in PG_REFUSES]
#: Values PostgreSQL's json type refuses: no stored row there can hold them.
SQLITE_ONLY = [v for v in BAD_VALUES if v[0] in PG_REFUSES]


@pytest.mark.parametrize(
    ("label", "column", "stored", "reason"), PORTABLE, ids=[v[0] for v in PORTABLE]
)
def test_an_unencodable_stored_event_fails_alone_at_every_destination(
    app: Flask, receivers: Receivers, label: str, column: str, stored: str, reason: str
) -> None:
    fails_alone(app, receivers, column, stored, reason)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize(
    ("label", "column", "stored", "reason"), SQLITE_ONLY, ids=[v[0] for v in SQLITE_ONLY]
)
def test_an_unencodable_value_only_sqlite_can_hold_fails_alone(
    app: Flask, receivers: Receivers, label: str, column: str, stored: str, reason: str
) -> None:
    fails_alone(app, receivers, column, stored, reason)


def fails_alone(app: Flask, receivers: Receivers, column: str, stored: str, reason: str) -> None:
    """One of ten stored events spoiled: only its deliveries fail, at every destination."""
    ids = store(app, [event(n, event_type="problem_check") for n in range(10)])
    bad, good = ids[3], [i for i in ids if i != ids[3]]
    spoil(app, bad, column, stored)

    totals = forwarder_of(app).forward_pending()
    assert totals["delivered"] == 4 * 9 and totals["failed"] == 4

    for name in ("hook", "chat", "mail", "file"):
        found = deliveries(app, name)
        assert {i for i, row in found.items() if row.state == DELIVERED} == set(good), name
        failure = found[bad]
        assert (failure.state, failure.attempts) == (FAILED, 1), name
        assert reason in failure.last_error and "Cannot encode the event" in failure.last_error
        assert "flask tracking forward --failed" in failure.last_error  # says the fix
    # What went out is strict JSON and holds every other event.
    assert receivers.hook.event_ids() == set(good) and receivers.hook.bad_signatures == 0
    strict(list(receivers.hook.items.values()))
    [message] = receivers.chat.messages
    assert message["text"].count("• `problem_check`") == 9
    assert len(receivers.smtp.messages) == 9
    lines = receivers.log.read_text().splitlines()
    assert [json.loads(line)["event"]["n"] for line in lines] == [n for n in range(10) if n != 3]
    for line in lines:
        json.loads(line, parse_constant=lambda token: pytest.fail(f"{token} in a log line"))

    # Re-driving fails the same event again (with its reason); nothing is sent twice.
    assert forwarder_of(app).redrive_failed() == 4
    again = forwarder_of(app).forward_pending()
    assert (again["delivered"], again["failed"]) == (0, 4)
    assert reason in deliveries(app, "hook")[bad].last_error
    assert receivers.hook.duplicates == {} and len(receivers.chat.messages) == 1


def test_bodies_are_strict_json_built_from_each_event(app: Flask, receivers: Receivers) -> None:
    ids = store(app, [event(n, payload={"text": f"ünï {n} \U0001f600"}) for n in range(3)])
    forwarder_of(app).forward_pending(["hook"])
    [request] = receivers.hook.requests
    assert request.headers["Content-Type"] == "application/json"
    assert receivers.hook.event_ids() == set(ids)
    item = receivers.hook.items[idempotency_key("hook", ids[0])]
    assert item["data"]["event"]["text"] == "ünï 0 \U0001f600"
    strict(list(receivers.hook.items.values()))


class Picky(Destination):
    """A custom destination whose own encoding refuses some events."""

    def __init__(self, name: str, options: Any) -> None:
        super().__init__(name, options)
        self.sent: list[str] = []

    def encode(self, event: OutgoingEvent) -> bytes:
        if event.line["event"].get("n") == 2:
            raise ValueError("the LRS has no verb for this event")
        return super().encode(event)

    def send(self, events: Sequence[OutgoingEvent]) -> None:
        assert all(e.encoded is not None for e in events)
        self.sent += [e.event_id for e in events]


def test_a_custom_destination_refusing_one_event_fails_only_that_one(
    database_url: str, tmp_path: Path
) -> None:
    app = make_app(
        {
            "INSTANCE_PATH": str(tmp_path / "instance"),
            "TRACKING_DATABASE_URL": database_url,
            **partition_config(database_url),
            "TRACKING_DESTINATIONS": {"lrs": {"kind": Picky}},
            **FAST,
        }
    )
    forwarder = forwarder_of(app)
    forwarder.close()
    try:
        ids = store(app, [event(n) for n in range(5)])
        with get_state(app).engine.connect() as conn:
            pks = list(conn.execute(select(D.c.event_pk)).scalars())
        outcome = forwarder.run_batch("lrs", pks)
        assert (outcome.delivered, outcome.failed) == (4, 1)
        destination = forwarder.targets["lrs"].destination
        assert isinstance(destination, Picky)
        assert destination.sent == [i for i in ids if i != ids[2]]
        assert states(app, "lrs")[ids[2]] == FAILED
        assert "the LRS has no verb for this event" in deliveries(app, "lrs")[ids[2]].last_error
    finally:
        forwarder.close()
        get_state(app).engine.dispose()


# -- control characters in people's text ---------------------------------------------------

FORGED_TYPE = "problem_check\n• `forged` by admin in everything\r\nBcc: victim@example.org"
FORGED_USER = "ann\x85\u2028-- events as JSON lines --\x1b[31m\x00"


def forged(n: int) -> OutgoingEvent:
    line = render_line(event(n, event_type=FORGED_TYPE, username=FORGED_USER))
    return OutgoingEvent(f"id-{n}", idempotency_key("d", f"id-{n}"), line)


def test_slack_lines_cannot_be_forged() -> None:
    with WebhookReceiver(None) as receiver:
        destination = SlackDestination(
            "chat", {"url": receiver.url, "template": "`{event_type}` by {username}"}
        )
        destination.send([forged(0), forged(1)])
        destination.close()
        [message] = receiver.messages
    lines = message["text"].split("\n")
    assert len(lines) == 3  # the title and one line per event, nothing forged
    assert lines[1] == (
        "• `problem_check\\n• `forged` by admin in everything\\r\\nBcc: victim@example.org`"
        " by ann\\x85\\u2028-- events as JSON lines --\\x1b[31m\\x00"
    )
    for separator in ("\r", "\x85", "\u2028", "\x1b", "\x00"):
        assert separator not in message["text"]


def test_email_subjects_and_bodies_cannot_be_forged() -> None:
    smtp = SmtpReceiver()
    try:
        options = {
            "host": "127.0.0.1",
            "port": smtp.port,
            "sender": "tracking@example.org",
            "recipients": ["staff@example.org"],
            "timeout": 5,
        }
        EmailDestination("mail", options).send([forged(0)])
        EmailDestination("mail", {**options, "digest": True}).send([forged(1), forged(2)])
        smtp.wait_for(2, 10)
        single, digest = mails(smtp)
    finally:
        smtp.close()
    assert single["Bcc"] is None and digest["Bcc"] is None
    assert single["Subject"] == (
        "[tracking] problem_check\\n• `forged` by admin in everything\\r\\nBcc:"
        " victim@example.org in course-v1:Org+Num+Run"
    )
    for message, events in ((single, 1), (digest, 2)):
        body = message.get_payload(decode=True)
        assert isinstance(body, bytes)
        lines = body.decode().splitlines()  # also splits at NEL, U+2028, ...
        assert lines.count(EmailDestination.JSON_MARKER) == 1  # no forged marker line
        marker = lines.index(EmailDestination.JSON_MARKER)
        summary = [line for line in lines[:marker] if line]
        assert len(summary) == events  # one summary line per event
        assert all("\\x85\\u2028" in line for line in summary)
        items = [json.loads(line) for line in lines[marker + 1 :] if line]
        assert [item["data"]["event_type"] for item in items] == [FORGED_TYPE] * events
        assert [item["data"]["username"] for item in items] == [FORGED_USER] * events


@pytest.mark.parametrize("ascii", [False, True], ids=["utf-8", "ascii"])
def test_strict_json_refuses_what_json_cannot_hold(ascii: bool) -> None:
    assert json.loads(strict_json({"smile": "\U0001f600", "k": "\\ud800"}, ascii=ascii)) == {
        "smile": "\U0001f600",
        "k": "\\ud800",  # a backslash and letters, not a surrogate
    }
    for bad in ({"x": float("nan")}, {"x": float("inf")}, {"x": "caf\ud800"}, ["\udfff"]):
        with pytest.raises(ValueError):
            strict_json(bad, ascii=ascii)


def test_a_destination_called_directly_refuses_an_unencodable_event() -> None:
    destination = WebhookDestination("d", {"url": "http://127.0.0.1:9/hook", "secret": SECRET})
    line = render_line(event(1, payload={"score": float("nan")}))
    with pytest.raises(PermanentError, match="NaN or Infinity"):
        destination.send([OutgoingEvent("id-1", "key", line)])
