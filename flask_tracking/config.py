"""``TRACKING_*`` configuration: defaults, validation, read once at ``init_app``.

Every key is documented in ``docs/config.md``. A bad value fails at startup with a
message that says how to fix it.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any

from flask import Flask

from .errors import ConfigError

#: Defaults for every key; ``None`` means "computed from the app" (see ``load_config``).
DEFAULTS: dict[str, Any] = {
    "TRACKING_DATABASE_URL": None,
    "TRACKING_URL_PREFIX": "/activity",
    "TRACKING_UNKNOWN_EVENTS": "accept",
    "TRACKING_ANONYMIZE": True,
    "TRACKING_HASH_KEY": None,
    "TRACKING_TRUSTED_PROXIES": 0,
    "TRACKING_COURSE_URL_PATTERN": r"/courses/(?P<course_id>[^/]+)",
    "TRACKING_LOG_FILE": None,
    "TRACKING_ALLOWED_ORIGINS": (),
    "TRACKING_MAX_EVENT_BYTES": 32 * 1024,
    "TRACKING_MAX_REQUEST_BYTES": 512 * 1024,
    "TRACKING_MAX_BATCH_EVENTS": 500,
    "TRACKING_RATE_LIMIT": "1200/minute",
    "TRACKING_DB_TIMEOUT": 1.0,
    "TRACKING_REDIS_URL": None,
    "TRACKING_DESTINATIONS": {},
    "TRACKING_FORWARD_QUEUE": "tracking-forward",
    "TRACKING_FORWARD_JOB_TIMEOUT": 60,
    "TRACKING_FORWARD_SWEEP_INTERVAL": 10.0,
    "TRACKING_FORWARD_LINGER": 0.5,
    "TRACKING_ECHO_SQL": False,
    "TRACKING_SPOOL_FILE": None,
    "TRACKING_MAX_CLIENT_DELAY": 7 * 86400,
    "TRACKING_MAX_FAILED_EVENTS": 100_000,
}

_UNKNOWN_POLICIES = ("accept", "reject")
_RATE = re.compile(r"^\s*(\d+)\s*/\s*(second|minute|hour)\s*$")
_PER = {"second": 1, "minute": 60, "hour": 3600}


@dataclass(frozen=True, slots=True)
class TrackingConfig:
    """The validated ``TRACKING_*`` settings of one app."""

    database_url: str
    url_prefix: str
    unknown_events: str
    anonymize: bool
    hash_key: bytes
    trusted_proxies: int
    course_url_pattern: re.Pattern[str] | None
    log_file: str | None
    allowed_origins: tuple[str, ...]
    max_event_bytes: int
    max_request_bytes: int
    max_batch_events: int
    rate_limit: tuple[int, int] | None  # (requests, per seconds)
    db_timeout: float
    redis_url: str | None
    destinations: dict[str, Any] = field(default_factory=dict)
    #: TRACKING_FORWARD_*: checked by flask_tracking.forwarding (ConfigError there).
    forward_queue: Any = "tracking-forward"
    forward_job_timeout: Any = 60
    forward_sweep_interval: Any = 10.0
    forward_linger: Any = 0.5
    echo_sql: bool = False
    spool_file: str = ""
    #: Seconds an event may have waited in a browser's queue and keep its client time.
    max_client_delay: int = 7 * 86400
    #: Newest rows the failed-events table keeps (0: all).
    max_failed_events: int = 100_000


def load_config(app: Flask) -> TrackingConfig:
    """Set defaults on ``app.config`` and read the ``TRACKING_*`` keys once."""
    for key, value in DEFAULTS.items():
        app.config.setdefault(key, value)
    c = app.config

    url = c["TRACKING_DATABASE_URL"] or _default_database_url(app)
    hash_key = c["TRACKING_HASH_KEY"] or c.get("SECRET_KEY")
    if not hash_key:
        raise ConfigError(
            "TRACKING_HASH_KEY (or SECRET_KEY) must be set: it keys the hashes of sessions"
            " and anonymous user ids (for example app.config['SECRET_KEY'] ="
            " secrets.token_hex(32))."
        )
    policy = c["TRACKING_UNKNOWN_EVENTS"]
    if policy not in _UNKNOWN_POLICIES:
        raise ConfigError(f"TRACKING_UNKNOWN_EVENTS must be 'accept' or 'reject', not {policy!r}.")
    prefix = c["TRACKING_URL_PREFIX"]
    if not isinstance(prefix, str) or not prefix.startswith("/"):
        raise ConfigError(f"TRACKING_URL_PREFIX must start with '/', not {prefix!r}.")
    pattern = c["TRACKING_COURSE_URL_PATTERN"]
    compiled = re.compile(pattern) if pattern else None
    if compiled is not None and "course_id" not in compiled.groupindex:
        raise ConfigError(
            "TRACKING_COURSE_URL_PATTERN must have a named group 'course_id',"
            r" for example r'/courses/(?P<course_id>[^/]+)'."
        )
    origins = c["TRACKING_ALLOWED_ORIGINS"]
    if isinstance(origins, str):
        origins = [o.strip() for o in origins.split(",") if o.strip()]

    return TrackingConfig(
        database_url=url,
        url_prefix=prefix.rstrip("/") or "/",
        unknown_events=policy,
        anonymize=bool(c["TRACKING_ANONYMIZE"]),
        hash_key=hash_key.encode() if isinstance(hash_key, str) else bytes(hash_key),
        trusted_proxies=_non_negative_int(c, "TRACKING_TRUSTED_PROXIES"),
        course_url_pattern=compiled,
        log_file=c["TRACKING_LOG_FILE"] or None,
        allowed_origins=tuple(o.rstrip("/") for o in origins),
        max_event_bytes=_non_negative_int(c, "TRACKING_MAX_EVENT_BYTES"),
        max_request_bytes=_non_negative_int(c, "TRACKING_MAX_REQUEST_BYTES"),
        max_batch_events=_non_negative_int(c, "TRACKING_MAX_BATCH_EVENTS"),
        rate_limit=_parse_rate(c["TRACKING_RATE_LIMIT"]),
        db_timeout=float(c["TRACKING_DB_TIMEOUT"]),
        redis_url=c["TRACKING_REDIS_URL"] or None,
        destinations=c["TRACKING_DESTINATIONS"] or {},  # checked by forwarding
        forward_queue=c["TRACKING_FORWARD_QUEUE"],
        forward_job_timeout=c["TRACKING_FORWARD_JOB_TIMEOUT"],
        forward_sweep_interval=c["TRACKING_FORWARD_SWEEP_INTERVAL"],
        forward_linger=c["TRACKING_FORWARD_LINGER"],
        echo_sql=bool(c["TRACKING_ECHO_SQL"]),
        spool_file=c["TRACKING_SPOOL_FILE"]
        or os.path.join(app.instance_path, "tracking-spool.jsonl"),
        max_client_delay=_non_negative_int(c, "TRACKING_MAX_CLIENT_DELAY"),
        max_failed_events=_non_negative_int(c, "TRACKING_MAX_FAILED_EVENTS"),
    )


def _default_database_url(app: Flask) -> str:
    os.makedirs(app.instance_path, exist_ok=True)
    return "sqlite:///" + os.path.join(app.instance_path, "tracking.db")


def _non_negative_int(c: Any, key: str) -> int:
    value = c[key]
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ConfigError(f"{key} must be a non-negative integer, not {value!r}.")
    return value


def _parse_rate(value: Any) -> tuple[int, int] | None:
    if value in (None, "", 0, False):
        return None
    match = _RATE.match(str(value))
    if not match:
        raise ConfigError(
            f"TRACKING_RATE_LIMIT must look like '600/minute' (or None to turn it off),"
            f" not {value!r}."
        )
    return int(match.group(1)), _PER[match.group(2)]
