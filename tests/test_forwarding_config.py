"""Destination and forwarding settings are checked at startup; errors say the fix."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from flask_tracking.errors import ConfigError
from flask_tracking.forwarding import (
    Destination,
    EmailDestination,
    LogDestination,
    OutgoingEvent,
    SlackDestination,
    WebhookDestination,
    register_kind,
)
from flask_tracking.forwarding.destinations import KINDS

from forwarding_app import forwarder_of, make_app

HOOK = {"url": "https://hooks.example.org/t", "secret": "s3cret"}


class Pigeon(Destination):
    """A custom destination (its import path is used as a kind below)."""

    def send(self, events: Sequence[OutgoingEvent]) -> None:
        pass


def build(tmp_path: Path, destinations: Any = None, **config: Any) -> Any:
    settings = {
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "TRACKING_DATABASE_URL": f"sqlite:///{tmp_path / 't.db'}",
        "TRACKING_DESTINATIONS": destinations or {},
        **config,
    }
    app = make_app(settings)
    forwarder = forwarder_of(app)
    forwarder.close()
    return forwarder


def webhook(**options: Any) -> dict[str, Any]:
    return {"kind": "webhook", "options": {**HOOK, **options}}


BAD: list[tuple[str, dict[str, Any], dict[str, Any], str]] = [
    ("not a dict", {"TRACKING_DESTINATIONS": ["x"]}, {}, "must be a dict of name -> settings"),
    ("bad name", {}, {"a b": webhook()}, "a destination name is 1-100 letters"),
    ("spec not dict", {}, {"x": "webhook"}, "must be a dict with 'kind', 'options'"),
    ("typo key", {}, {"x": {**webhook(), "rout": {}}}, "unknown key(s) 'rout'"),
    ("no kind", {}, {"x": {"options": HOOK}}, "['kind'] is required: one of 'webhook'"),
    ("unknown kind", {}, {"x": {"kind": "pigeon"}}, "a 'package.module:Class' path"),
    ("bad path", {}, {"x": {"kind": "nowhere.mod:Cls"}}, "cannot import 'nowhere.mod:Cls'"),
    ("not a class", {}, {"x": {"kind": "json:dumps"}}, "is not a subclass of"),
    ("options", {}, {"x": {"kind": "webhook", "options": [1]}}, "['options'] must be a dict"),
    ("no url", {}, {"x": {"kind": "webhook", "options": {"secret": "s"}}}, "['url'] is required"),
    ("ftp url", {}, {"x": webhook(url="ftp://h/x")}, "must be an http:// or https:// URL"),
    ("no secret", {}, {"x": webhook(secret=None)}, "secrets.token_hex(32)"),
    ("timeout", {}, {"x": webhook(timeout=-1)}, "['timeout'] must be a number of seconds > 0"),
    ("option typo", {}, {"x": webhook(secrte="s")}, "unknown option(s) 'secrte'"),
    ("slow", {"TRACKING_FORWARD_JOB_TIMEOUT": 5}, {"x": webhook(timeout=10)}, "must be below"),
    (
        "template",
        {},
        {"x": {"kind": "slack", "options": {"url": HOOK["url"], "template": "{who}"}}},
        "name one of {event_type}",
    ),
    (
        "recipients",
        {},
        {"x": {"kind": "email", "options": {"sender": "t@example.org"}}},
        "['recipients'] is required",
    ),
    (
        "ssl+starttls",
        {},
        {
            "x": {
                "kind": "email",
                "options": {
                    "sender": "a@b.c",
                    "recipients": "d@e.f",
                    "ssl": True,
                    "starttls": True,
                },
            }
        },
        "set 'ssl' or 'starttls', not both",
    ),
    ("log path", {}, {"x": {"kind": "log"}}, "['path'] is required"),
    ("route type", {}, {"x": {**webhook(), "route": ["x"]}}, "['route'] must be a dict"),
    ("route key", {}, {"x": {**webhook(), "route": {"only": []}}}, "unknown key(s) 'only'"),
    ("empty rule", {}, {"x": {**webhook(), "route": {"include": [{}]}}}, "one or more of"),
    (
        "rule key",
        {},
        {"x": {**webhook(), "route": {"include": [{"type": "x"}]}}},
        "a rule selects by event_type, source, course",
    ),
    (
        "glob",
        {},
        {"x": {**webhook(), "route": {"exclude": [{"source": 3}]}}},
        "must be a glob string or a non-empty list",
    ),
    (
        "path",
        {},
        {"x": {**webhook(), "route": {"drop_fields": ["context..user_id"]}}},
        "a field path is a name or dotted names",
    ),
    ("batch", {}, {"x": {**webhook(), "batch_size": 0}}, "['batch_size'] must be an integer"),
    ("attempts", {}, {"x": {**webhook(), "max_attempts": 0}}, "['max_attempts'] must be"),
    ("cap", {}, {"x": {**webhook(), "backoff": 60, "backoff_max": 5}}, "['backoff_max'] must"),
    ("job timeout", {"TRACKING_FORWARD_JOB_TIMEOUT": 1.5}, {}, "whole number of seconds"),
    ("queue", {"TRACKING_FORWARD_QUEUE": "bad queue!"}, {}, "TRACKING_FORWARD_QUEUE must"),
    ("interval", {"TRACKING_FORWARD_SWEEP_INTERVAL": -1}, {}, "TRACKING_FORWARD_SWEEP_INTERVAL"),
    ("linger", {"TRACKING_FORWARD_LINGER": "soon"}, {}, "TRACKING_FORWARD_LINGER must"),
    ("redis", {"TRACKING_REDIS_URL": "http://r:6379"}, {}, "must look like 'redis://host"),
]


@pytest.mark.parametrize(
    ("config", "destinations", "message"), [b[1:] for b in BAD], ids=[b[0] for b in BAD]
)
def test_bad_settings_fail_at_startup_with_the_fix(
    tmp_path: Path, config: dict[str, Any], destinations: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError) as excinfo:
        build(tmp_path, destinations, **config)
    assert message in str(excinfo.value)


def test_kinds_defaults_and_custom_classes(tmp_path: Path) -> None:
    register_kind("pigeon", Pigeon)
    try:
        forwarder = build(
            tmp_path,
            {
                "hook": webhook(),
                "chat": {"kind": "slack", "options": {"url": HOOK["url"]}},
                "mail": {
                    "kind": "email",
                    "options": {"sender": "t@x.org", "recipients": "a@x.org"},
                },
                "file": {"kind": "log", "options": {"path": str(tmp_path / "f.log")}},
                "by_name": {"kind": "pigeon"},
                "by_path": {"kind": f"{__name__}:Pigeon", "batch_size": 7, "options": {"a": 1}},
                "by_class": {"kind": Pigeon, "max_attempts": 4, "backoff": 3, "backoff_max": 10},
            },
        )
    finally:
        KINDS.pop("pigeon")
    targets = forwarder.targets
    assert isinstance(targets["hook"].destination, WebhookDestination)
    assert isinstance(targets["chat"].destination, SlackDestination)
    assert isinstance(targets["mail"].destination, EmailDestination)
    assert isinstance(targets["file"].destination, LogDestination)
    assert all(isinstance(targets[n].destination, Pigeon) for n in ("by_name", "by_path"))
    assert [targets[n].batch_size for n in ("hook", "chat", "mail", "file", "by_path")] == [
        500,
        50,
        20,
        1000,
        7,
    ]
    assert targets["by_path"].destination.options.get("a") == 1  # custom: options as given
    assert targets["by_class"].backoff == (3, 6, 10)
    assert targets["by_class"].delay(0) == 3 and targets["by_class"].delay(9) == 10
    assert targets["hook"].max_attempts == 10
    # 10 attempts: 9 retries, doubling from 10 s (capped at backoff_max, 3600 s by default)
    assert targets["hook"].backoff == (10, 20, 40, 80, 160, 320, 640, 1280, 2560)
    assert not forwarder.uses_rq


def test_no_destinations_no_hooks(tmp_path: Path) -> None:
    app = make_app(
        {
            "INSTANCE_PATH": str(tmp_path / "instance"),
            "TRACKING_DATABASE_URL": f"sqlite:///{tmp_path / 't.db'}",
        }
    )
    store = app.extensions["tracking"].store
    assert store.insert_hooks == [] and store.commit_hooks == []
    assert forwarder_of(app).targets == {}
