"""The built-in destinations against real loopback receivers (HTTP, SMTP) and files."""

from __future__ import annotations

import email
import hashlib
import hmac
import json
from collections.abc import Iterator
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from flask_tracking.extension import get_state
from flask_tracking.forwarding import (
    DELIVERED,
    EmailDestination,
    LogDestination,
    OutgoingEvent,
    PermanentError,
    RetryableError,
    SlackDestination,
    WebhookDestination,
)
from flask_tracking.forwarding.batches import idempotency_key
from flask_tracking.logformat import render_line
from flask_tracking.models import events_table

from forwarding_app import FAST, event, forwarder_of, make_app, states, store, wait_until
from receivers import SIGNATURE_HEADER, SmtpReceiver, WebhookReceiver
from services import free_port
from support import partition_config

SECRET = "hook-secret"


def outgoing(n: int, destination: str = "d", **fields: Any) -> OutgoingEvent:
    line = render_line(event(n, **fields))
    return OutgoingEvent(f"id-{n}", idempotency_key(destination, f"id-{n}"), line)


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver(SECRET) as r:
        yield r


def hook(url: str, **options: Any) -> WebhookDestination:
    return WebhookDestination("d", {"url": url, "secret": SECRET, "timeout": 2, **options})


# -- webhook -----------------------------------------------------------------------------


def test_webhook_posts_a_signed_json_batch(receiver: WebhookReceiver) -> None:
    destination = hook(receiver.url, headers={"Authorization": "Bearer t"})
    events = [outgoing(n) for n in range(3)]
    destination.send(events)
    destination.send([outgoing(3)])
    destination.close()
    assert receiver.bad_signatures == 0
    assert set(receiver.counts) == {e.idempotency_key for e in [*events, outgoing(3)]}
    first = receiver.items[events[0].idempotency_key]
    assert first["event_id"] == "id-0"
    assert first["data"] == json.loads(json.dumps(events[0].line))
    request = receiver.requests[0]
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Authorization"] == "Bearer t"
    assert request.headers["X-Tracking-Destination"] == "d"
    assert request.headers[SIGNATURE_HEADER].startswith("sha256=")
    # Both batches went over one kept-alive connection.
    assert receiver.requests[0].peer == receiver.requests[1].peer


def test_webhook_signature_is_hmac_sha256_of_the_body() -> None:
    destination = hook("http://127.0.0.1:9/hook")
    body = destination.body([outgoing(1)])
    expected = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    from flask_tracking.forwarding.destinations import sign

    assert sign(SECRET.encode(), body) == f"sha256={expected}"
    document = json.loads(body)
    assert document["destination"] == "d" and document["sent_at"]
    assert [e["idempotency_key"] for e in document["events"]] == [outgoing(1).idempotency_key]


def test_webhook_wrong_secret_is_refused_for_good(receiver: WebhookReceiver) -> None:
    destination = WebhookDestination("d", {"url": receiver.url, "secret": "wrong"})
    with pytest.raises(PermanentError, match="HTTP 401"):
        destination.send([outgoing(1)])
    destination.close()
    assert receiver.bad_signatures == 1 and receiver.unique == 0


def test_webhook_status_decides_retry_or_give_up(receiver: WebhookReceiver) -> None:
    destination = hook(receiver.url)
    for status in (500, 502, 503, 504, 408, 429):
        receiver.fail_next(1, status)
        with pytest.raises(RetryableError, match=f"HTTP {status}"):
            destination.send([outgoing(1)])
    for status in (400, 401, 403, 404, 409, 410, 422):
        receiver.fail_next(1, status)
        with pytest.raises(PermanentError, match=f"HTTP {status}"):
            destination.send([outgoing(1)])
    receiver.fail_next(1, 307)
    with pytest.raises(PermanentError, match="redirects are not followed"):
        destination.send([outgoing(1)])
    destination.send([outgoing(1)])
    assert receiver.unique == 1
    destination.close()


def test_webhook_timeout_and_refused_connections_are_retryable(
    receiver: WebhookReceiver,
) -> None:
    destination = hook(receiver.url, timeout=0.3)
    receiver.stall_next(1, 3)
    with pytest.raises(RetryableError, match=r"no answer within 0\.3 s"):
        destination.send([outgoing(1)])
    destination.send([outgoing(1)])  # a fresh connection after the timeout
    assert receiver.unique == 1
    destination.close()
    with pytest.raises(RetryableError, match="failed"):
        hook(f"http://127.0.0.1:{free_port()}/hook").send([outgoing(1)])


# -- slack -------------------------------------------------------------------------------


def test_slack_posts_a_readable_message() -> None:
    with WebhookReceiver(None) as receiver:
        destination = SlackDestination("chat", {"url": receiver.url, "max_lines": 2})
        destination.send(
            [
                outgoing(0, event_type="problem_check", username="ann <admin>"),
                outgoing(1, event_type="play_video", course=None),
                outgoing(2),
            ]
        )
        destination.close()
        [message] = receiver.messages
    lines = message["text"].splitlines()
    assert lines == [
        "*3 tracking event(s)* for chat",
        "• `problem_check` by ann &lt;admin&gt; in course-v1:Org+Num+Run"
        " at 2024-03-01 12:00:00 UTC",
        "• `play_video` by learner in - at 2024-03-01 12:00:01 UTC",
        "… and 1 more",
    ]


def test_slack_template_is_configurable() -> None:
    with WebhookReceiver(None) as receiver:
        destination = SlackDestination(
            "chat",
            {"url": receiver.url, "template": "{event_type}/{event}", "title": "{count} new"},
        )
        destination.send([outgoing(5)])
        destination.close()
        assert receiver.messages[0]["text"] == '1 new\n• edx.test.forwarded/{"n": 5}'


# -- email -------------------------------------------------------------------------------


@pytest.fixture
def smtp() -> Iterator[SmtpReceiver]:
    server = SmtpReceiver()
    yield server
    server.close()


def mail(smtp: SmtpReceiver, **options: Any) -> EmailDestination:
    return EmailDestination(
        "mail",
        {
            "host": "127.0.0.1",
            "port": smtp.port,
            "sender": "tracking@example.org",
            "recipients": ["staff@example.org", "audit@example.org"],
            "timeout": 5,
            **options,
        },
    )


def json_lines(message: Message) -> list[dict[str, Any]]:
    body = message.get_payload(decode=True)
    assert isinstance(body, bytes)
    text = body.decode()
    lines = text.split(EmailDestination.JSON_MARKER)[1].splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def test_email_one_message_per_event(smtp: SmtpReceiver) -> None:
    events = [outgoing(n, "mail", event_type="problem_check") for n in range(3)]
    mail(smtp).send(events)
    smtp.wait_for(3, 10)
    messages = [email.message_from_bytes(raw) for raw in smtp.messages]
    assert [m["Subject"] for m in messages] == [
        "[tracking] problem_check in course-v1:Org+Num+Run"
    ] * 3
    assert messages[0]["To"] == "staff@example.org, audit@example.org"
    assert messages[0]["Message-ID"] == f"<{events[0].idempotency_key}@example.org>"
    assert messages[0]["X-Tracking-Idempotency-Key"] == events[0].idempotency_key
    assert [json_lines(m)[0]["event_id"] for m in messages] == ["id-0", "id-1", "id-2"]
    assert json_lines(messages[0])[0]["data"]["event_type"] == "problem_check"


def test_email_digest(smtp: SmtpReceiver) -> None:
    events = [outgoing(n, "mail") for n in range(4)]
    mail(smtp, digest=True).send(events)
    smtp.wait_for(1, 10)
    [message] = [email.message_from_bytes(raw) for raw in smtp.messages]
    assert message["Subject"] == "[tracking] 4 events for mail"
    assert [item["idempotency_key"] for item in json_lines(message)] == [
        e.idempotency_key for e in events
    ]


def test_email_smtp_answers_decide(smtp: SmtpReceiver) -> None:
    destination = mail(smtp)
    smtp.refuse_next(1, "451 4.3.0 try again later")
    with pytest.raises(RetryableError, match="451") as retry:
        destination.send([outgoing(0, "mail")])
    assert retry.value.delivered == frozenset()
    smtp.refuse_next(1, "550 5.7.1 no thanks")
    with pytest.raises(PermanentError, match="550"):
        destination.send([outgoing(0, "mail")])
    # The second of three messages is refused: the first one counts as delivered.
    smtp.refuse_next(1, "452 4.3.1 out of space", after=1)
    with pytest.raises(RetryableError) as partial:
        destination.send([outgoing(n, "mail") for n in range(3)])
    assert partial.value.delivered == frozenset({"id-0"})
    with pytest.raises(RetryableError, match="failed"):
        EmailDestination(
            "mail",
            {"port": free_port(), "host": "127.0.0.1", "sender": "a@b.c", "recipients": "d@e.f"},
        ).send([outgoing(1)])


# -- log ---------------------------------------------------------------------------------


def test_log_appends_tracking_log_lines(tmp_path: Path) -> None:
    path = tmp_path / "logs" / "forwarded.log"
    destination = LogDestination("file", {"path": str(path)})
    destination.send([outgoing(0), outgoing(1)])
    destination.send([outgoing(2)])
    lines = path.read_text().splitlines()
    assert [json.loads(line) for line in lines] == [
        json.loads(json.dumps(outgoing(n).line)) for n in range(3)
    ]


def test_log_rotates_by_size_without_splitting_lines(tmp_path: Path) -> None:
    path = tmp_path / "forwarded.log"
    destination = LogDestination("file", {"path": str(path), "max_bytes": 2000, "backup_count": 3})
    for n in range(40):
        destination.send([outgoing(n)])
    files = [path, *(path.with_name(f"forwarded.log.{i}") for i in (1, 2, 3))]
    assert all(f.exists() for f in files)
    assert not path.with_name("forwarded.log.4").exists()
    assert all(f.stat().st_size <= 2000 for f in files)
    kept = [json.loads(line) for f in reversed(files) for line in f.read_text().splitlines()]
    numbers = [line["event"]["n"] for line in kept]
    assert numbers == list(range(40 - len(numbers), 40))  # the newest, in order, whole


def test_forwarded_log_lines_are_the_exported_lines(database_url: str, tmp_path: Path) -> None:
    path = tmp_path / "forwarded.log"
    app: Flask = make_app(
        {
            "INSTANCE_PATH": str(tmp_path / "instance"),
            "TRACKING_DATABASE_URL": database_url,
            **partition_config(database_url),
            "TRACKING_DESTINATIONS": {"file": {"kind": "log", "options": {"path": str(path)}}},
            **FAST,
        }
    )
    try:
        ids = store(app, [event(n, payload='{"id": "v1", "currentTime": 1.5}') for n in range(25)])
        wait_until(
            lambda: (
                set(states(app, "file").values()) == {DELIVERED} and len(states(app, "file")) == 25
            ),
            20,
            "the log destination",
        )
        with get_state(app).engine.connect() as conn:
            rows = conn.execute(select(events_table).order_by(events_table.c.id)).mappings().all()
        expected = [json.dumps(render_line(row), ensure_ascii=True) for row in rows]
        assert path.read_text().splitlines() == expected
        assert len(ids) == 25
    finally:
        forwarder_of(app).close()
        app.extensions["tracking"].engine.dispose()
