"""``TRACKING_*`` configuration: defaults, validation, read once at ``init_app``.

Every key is documented in ``docs/config.md``. A bad value fails at startup with a
``ConfigError`` that names the key and says how to fix it (the readers are in
``checks``, the database URL's checks in ``database_url``); every key that
flask-tracking reads must be in :data:`DEFAULTS`, or it is warned about as unknown.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any

from flask import Flask

from . import checks
from .database_url import check_database_url
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
    "TRACKING_DASHBOARD": False,
    "TRACKING_PARTITION": None,
    "TRACKING_RETENTION_DAYS": None,
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
    #: TRACKING_FORWARD_*: types checked here; the queue name and ranges by forwarding.
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
    #: Serve the staff dashboard at ``<prefix>/dashboard`` (docs/analytics.md).
    dashboard: bool = False
    #: ``"month"`` / ``"day"``: ``tracking_events`` partitioned by time (PostgreSQL).
    partition: str | None = None
    #: Days of events the worker keeps (``None``: all).
    retention_days: int | None = None


def load_config(app: Flask) -> TrackingConfig:
    """Set defaults on ``app.config`` and read the ``TRACKING_*`` keys once.

    Each key is checked: a bad value raises a ``ConfigError`` naming the key and the fix;
    an unknown ``TRACKING_*`` key (a typo) gives a ``ConfigWarning``.
    """
    for key, value in DEFAULTS.items():
        app.config.setdefault(key, value)
    checks.warn_unknown_keys(app.config, DEFAULTS, "TRACKING_")
    c = app.config

    given_url = c["TRACKING_DATABASE_URL"]
    url = check_database_url(given_url) if given_url else _default_database_url(app)
    hash_key = c["TRACKING_HASH_KEY"] or c.get("SECRET_KEY")
    if not hash_key:
        raise ConfigError(
            "TRACKING_HASH_KEY (or SECRET_KEY) must be set: it keys the hashes of sessions"
            " and anonymous user ids (for example app.config['SECRET_KEY'] ="
            " secrets.token_hex(32))."
        )
    key_name = "TRACKING_HASH_KEY" if c["TRACKING_HASH_KEY"] else "SECRET_KEY"
    prefix = checks.text("TRACKING_URL_PREFIX", c["TRACKING_URL_PREFIX"], example="/activity")
    if not prefix.startswith("/"):
        raise ConfigError(
            f"TRACKING_URL_PREFIX must start with '/', for example '/activity' (or '/' for"
            f" edX's /event), not {prefix!r}."
        )
    spool = checks.optional_path("TRACKING_SPOOL_FILE", c["TRACKING_SPOOL_FILE"])

    return TrackingConfig(
        database_url=url,
        url_prefix=prefix.rstrip("/") or "/",
        unknown_events=checks.choice(
            "TRACKING_UNKNOWN_EVENTS", c["TRACKING_UNKNOWN_EVENTS"], _UNKNOWN_POLICIES
        ),
        anonymize=checks.boolean("TRACKING_ANONYMIZE", c["TRACKING_ANONYMIZE"]),
        hash_key=checks.secret(key_name, hash_key),
        trusted_proxies=_integer(c, "TRACKING_TRUSTED_PROXIES"),
        course_url_pattern=checks.pattern(
            "TRACKING_COURSE_URL_PATTERN",
            c["TRACKING_COURSE_URL_PATTERN"],
            group="course_id",
            example=DEFAULTS["TRACKING_COURSE_URL_PATTERN"],
        ),
        log_file=checks.optional_path("TRACKING_LOG_FILE", c["TRACKING_LOG_FILE"]),
        allowed_origins=tuple(
            o.rstrip("/")
            for o in checks.string_list(
                "TRACKING_ALLOWED_ORIGINS",
                c["TRACKING_ALLOWED_ORIGINS"],
                example="https://app.example",
            )
        ),
        max_event_bytes=_integer(c, "TRACKING_MAX_EVENT_BYTES", minimum=1),
        max_request_bytes=_integer(c, "TRACKING_MAX_REQUEST_BYTES", minimum=1),
        max_batch_events=_integer(c, "TRACKING_MAX_BATCH_EVENTS", minimum=1),
        rate_limit=_parse_rate(c["TRACKING_RATE_LIMIT"]),
        db_timeout=_seconds(c, "TRACKING_DB_TIMEOUT", positive=True),
        redis_url=c["TRACKING_REDIS_URL"] or None,  # checked by forwarding
        # Checked by forwarding (a dict of name -> settings); None is none.
        destinations=c["TRACKING_DESTINATIONS"] if c["TRACKING_DESTINATIONS"] is not None else {},
        forward_queue=c["TRACKING_FORWARD_QUEUE"],
        forward_job_timeout=_integer(c, "TRACKING_FORWARD_JOB_TIMEOUT", minimum=1),
        forward_sweep_interval=_seconds(c, "TRACKING_FORWARD_SWEEP_INTERVAL"),
        forward_linger=_seconds(c, "TRACKING_FORWARD_LINGER"),
        echo_sql=checks.boolean("TRACKING_ECHO_SQL", c["TRACKING_ECHO_SQL"]),
        spool_file=spool or os.path.join(app.instance_path, "tracking-spool.jsonl"),
        max_client_delay=_integer(c, "TRACKING_MAX_CLIENT_DELAY"),
        max_failed_events=_integer(c, "TRACKING_MAX_FAILED_EVENTS"),
        dashboard=checks.boolean("TRACKING_DASHBOARD", c["TRACKING_DASHBOARD"]),
        partition=checks.optional_choice(
            "TRACKING_PARTITION", c["TRACKING_PARTITION"], ("month", "day")
        ),
        retention_days=checks.optional_integer(
            "TRACKING_RETENTION_DAYS", c["TRACKING_RETENTION_DAYS"], minimum=1, example=365
        ),
    )


def _default_database_url(app: Flask) -> str:
    os.makedirs(app.instance_path, exist_ok=True)
    return "sqlite:///" + os.path.join(app.instance_path, "tracking.db")


#: The unit of each whole-number key, for its message.
_UNITS = {
    "TRACKING_MAX_EVENT_BYTES": "bytes",
    "TRACKING_MAX_REQUEST_BYTES": "bytes",
    "TRACKING_MAX_BATCH_EVENTS": "events",
    "TRACKING_MAX_CLIENT_DELAY": "seconds",
    "TRACKING_MAX_FAILED_EVENTS": "rows",
    "TRACKING_FORWARD_JOB_TIMEOUT": "seconds",
    "TRACKING_TRUSTED_PROXIES": "proxies",
}


def _integer(c: Any, key: str, minimum: int = 0) -> int:
    """A whole number >= ``minimum`` (its default as the example)."""
    return checks.integer(key, c[key], minimum=minimum, example=DEFAULTS[key], unit=_UNITS[key])


def _seconds(c: Any, key: str, positive: bool = False) -> float:
    """A number of seconds (its default as the example)."""
    return checks.seconds(key, c[key], positive=positive, example=DEFAULTS[key])


def _parse_rate(value: Any) -> tuple[int, int] | None:
    if value in (None, "", 0, False):
        return None
    match = _RATE.match(value) if isinstance(value, str) else None
    if not match:
        raise ConfigError(
            "TRACKING_RATE_LIMIT must look like '600/minute' (a number, then /second,"
            f" /minute or /hour), or None to turn it off; not {checks.shown(value)}."
        )
    return int(match.group(1)), _PER[match.group(2)]
