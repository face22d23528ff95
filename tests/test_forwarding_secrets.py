"""No secret in ``last_error``, in ``flask tracking forward`` output or in logs.

Real receivers, a real worker process and real (dead) Redis ports: a webhook with
credentials and a token in its URL, a Slack webhook URL (its path is the token), a
Redis URL with a password. Each test looks for the secret in the stored errors, in the
command's output and in every log record of the test (``caplog`` at DEBUG).
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from flask_tracking.errors import ConfigError
from flask_tracking.extension import get_state
from flask_tracking.forwarding import FAILED, Destination, OutgoingEvent, deliveries_table
from flask_tracking.forwarding.settings import load_settings
from flask_tracking.redact import redact, redact_url, url_secrets

from forwarding_app import FAST, event, forwarder_of, make_app, store, wait_until, worker
from receivers import WebhookReceiver
from services import free_port
from support import partition_config

D = deliveries_table
PASSWORD = "pw-hunter2-Zq81"
QUERY_TOKEN = "qs-token-98765-abc"
SLACK_TOKEN = "x7Kq9ZpL2mN4vB8cR1tY6wQ3"
REDIS_PASSWORD = "r3dis-Pass-w0rd"


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    return caplog


@pytest.fixture
def apps(database_url: str, tmp_path: Path) -> Iterator[Any]:
    made: list[Flask] = []

    def factory(destinations: dict[str, Any], **config: Any) -> Flask:
        app = make_app(
            {
                "INSTANCE_PATH": str(tmp_path / "instance"),
                "TRACKING_DATABASE_URL": database_url,
                **partition_config(database_url),
                "TRACKING_DESTINATIONS": destinations,
                **FAST,
                **config,
            }
        )
        made.append(app)
        return app

    yield factory
    for app in made:
        forwarder_of(app).close()
        get_state(app).engine.dispose()


def last_errors(app: Flask) -> list[str]:
    with get_state(app).engine.connect() as conn:
        return [e or "" for e in conn.execute(select(D.c.last_error)).scalars()]


def forward_output(app: Flask, *args: str) -> str:
    result = app.test_cli_runner().invoke(args=["tracking", "forward", *args])
    return result.output


def assert_absent(secrets: Sequence[str], *texts: str) -> None:
    for secret in secrets:
        for found in texts:
            assert secret not in found, f"{secret!r} leaked into: {found[:500]}"


def test_webhook_url_credentials_and_query_token_stay_secret(
    apps: Any, logs: pytest.LogCaptureFixture
) -> None:
    with WebhookReceiver("s") as receiver:
        url = receiver.url.replace("http://", f"http://alice:{PASSWORD}@") + f"?token={QUERY_TOKEN}"
        app = apps(
            {"hook": {"kind": "webhook", "options": {"url": url, "secret": "s", "timeout": 2}}}
        )
        forwarder_of(app).close()
        receiver.answer(403)
        store(app, [event(n) for n in range(3)])
        forwarder_of(app).forward_pending()
        # The credentials went where they belong: the Authorization header.
        expected = base64.b64encode(f"alice:{PASSWORD}".encode()).decode()
        assert receiver.requests[0].headers["Authorization"] == f"Basic {expected}"
        assert receiver.requests[0].path == f"/hook?token={QUERY_TOKEN}"
    errors = last_errors(app)
    assert len(errors) == 3 and all(
        e.startswith("HTTP 403 from http://***@127.0.0.1:") for e in errors
    )
    output = forward_output(app)
    assert "HTTP 403 from http://***@127.0.0.1:" in output
    assert_absent([PASSWORD, QUERY_TOKEN, "alice"], *errors, output, logs.text)


def test_slack_webhook_token_stays_secret(apps: Any, logs: pytest.LogCaptureFixture) -> None:
    port = free_port()  # nothing listens: a connection error names the URL
    url = f"http://127.0.0.1:{port}/services/T0ABCDEF1/B0ABCDEF2/{SLACK_TOKEN}"
    app = apps(
        {"chat": {"kind": "slack", "options": {"url": url, "timeout": 2}, "max_attempts": 1}}
    )
    forwarder_of(app).close()
    store(app, [event(n) for n in range(2)])
    assert forwarder_of(app).forward_pending()["failed"] == 2
    errors = last_errors(app)
    assert all(f"127.0.0.1:{port}/services/T0ABCDEF1/B0ABCDEF2/*** failed" in e for e in errors)
    output = forward_output(app)
    assert "/services/T0ABCDEF1/B0ABCDEF2/***" in output and "gave up after 1 attempts" in output
    assert_absent([SLACK_TOKEN], *errors, output, logs.text)


class Leaky(Destination):
    """A custom destination whose errors quote its settings (a bug, but a common one)."""

    def __init__(self, name: str, options: Any) -> None:
        super().__init__(name, options)
        self.url = str(options["url"])
        self.password = str(options["password"])

    def secrets(self) -> list[str]:
        return [self.password]

    def send(self, events: Sequence[OutgoingEvent]) -> None:
        raise RuntimeError(f"cannot reach {self.url} with password {self.password}")


def test_a_destination_quoting_its_secrets_is_redacted_in_errors_and_tracebacks(
    apps: Any, logs: pytest.LogCaptureFixture
) -> None:
    url = f"https://bob:{PASSWORD}@lrs.example.org/xapi?key={QUERY_TOKEN}"
    app = apps({"lrs": {"kind": Leaky, "options": {"url": url, "password": REDIS_PASSWORD}}})
    forwarder_of(app).close()
    store(app, [event(1)])
    assert forwarder_of(app).forward_pending()["retrying"] == 1
    [error] = last_errors(app)
    assert error == (
        "RuntimeError: cannot reach https://***@lrs.example.org/xapi?key=*** with password ***"
    )
    assert "Traceback" in logs.text and "RuntimeError: cannot reach https://***@" in logs.text
    assert_absent([PASSWORD, QUERY_TOKEN, REDIS_PASSWORD], error, forward_output(app), logs.text)


def test_redis_password_stays_out_of_logs_and_output(
    apps: Any, logs: pytest.LogCaptureFixture, tmp_path: Path, database_url: str
) -> None:
    redis_url = f"redis://:{REDIS_PASSWORD}@127.0.0.1:{free_port()}/0"  # nothing listens
    with WebhookReceiver("s") as receiver:
        options = {"url": receiver.url, "secret": "s", "timeout": 2}
        destinations = {"hook": {"kind": "webhook", "options": options}}
        app = apps(destinations, TRACKING_REDIS_URL=redis_url)
        store(app, [event(n) for n in range(3)])
        forwarder_of(app).flush()  # the hand-over fails: Redis is unreachable
        wait_until(lambda: "is unreachable" in logs.text, 10, "the Redis warning")
        output = forward_output(app, "--pending")
        assert "Redis at redis://***@127.0.0.1:" in output and "is unreachable" in output
        assert "redis://***@127.0.0.1:" in logs.text
        config = {
            "INSTANCE_PATH": str(tmp_path / "instance"),
            "TRACKING_DATABASE_URL": database_url,
            **partition_config(database_url),
            "TRACKING_REDIS_URL": redis_url,
            "TRACKING_DESTINATIONS": destinations,
            **FAST,
        }
        with worker(config, tmp_path / "worker.log", "--burst") as process:
            process.wait(30)
            worker_log = process.log()
    assert "Worker: lost Redis (Error 111 connecting to 127.0.0.1:" in worker_log
    assert repr(forwarder_of(app).settings).count("redis_url") == 0
    assert_absent([REDIS_PASSWORD], output, logs.text, worker_log, repr(forwarder_of(app)))


def test_a_bad_redis_url_is_refused_without_quoting_its_password() -> None:
    class Config:
        redis_url = f"http://:{REDIS_PASSWORD}@127.0.0.1:6379/0"

    with pytest.raises(ConfigError) as error:
        load_settings(Config())
    assert "TRACKING_REDIS_URL must look like" in str(error.value)
    assert REDIS_PASSWORD not in str(error.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("POST https://u:p4ss@h.example/x failed", "POST https://***@h.example/x failed"),
        ("https://h.example/hook?token=abc&v=2#frag", "https://h.example/hook?token=***&v=***#***"),
        (
            "HTTP 404 from https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXX",
            "HTTP 404 from https://hooks.slack.com/services/T00000000/B00000000/***",
        ),
        (
            "https://discord.com/api/webhooks/123/aB3dEfGh1jKlMn0pQrStUv-wXyZ",
            "https://discord.com/api/webhooks/123/***",
        ),
        ("redis://default:s3cret@cache:6379/0 down", "redis://***@cache:6379/0 down"),
        ("('https://u:p@h/', 'x')", "('https://***@h/', 'x')"),
        ("no url here", "no url here"),
    ],
)
def test_redact_masks_url_secrets(text: str, expected: str) -> None:
    assert redact(text) == expected


def test_redact_masks_known_secrets_as_given_and_percent_encoded() -> None:
    assert redact("login failed for p@ss/w0rd and p%40ss%2Fw0rd", ["p@ss/w0rd"]) == (
        "login failed for *** and ***"
    )
    assert redact("a short one: ab", ["ab"]) == "a short one: ab"  # too short to look for
    assert redact_url("http://h.example:8080/path") == "http://h.example:8080/path"


def test_failed_rows_written_before_redaction_are_shown_redacted(apps: Any) -> None:
    url = f"http://127.0.0.1:{free_port()}/services/T0ABCDEF1/B0ABCDEF2/{SLACK_TOKEN}"
    app = apps({"chat": {"kind": "slack", "options": {"url": url, "timeout": 2}}})
    forwarder_of(app).close()
    store(app, [event(1)])
    with get_state(app).engine.begin() as conn:  # as an older version stored it
        conn.execute(D.update().values(state=FAILED, last_error=f"POST {url} failed"))
    output = forward_output(app)
    assert "/B0ABCDEF2/***" in output
    assert_absent([SLACK_TOKEN], output)


def test_url_secrets_are_what_a_url_hides() -> None:
    url = f"https://alice:{PASSWORD}@h.example/services/T0/B0/{SLACK_TOKEN}?k={QUERY_TOKEN}&f=json"
    assert sorted(url_secrets(url)) == sorted([PASSWORD, QUERY_TOKEN, SLACK_TOKEN])
    assert url_secrets(None) == [] and url_secrets("redis://cache:6379/0") == []
