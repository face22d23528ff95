"""The ``TRACKING_FORWARD_*`` settings (and ``TRACKING_REDIS_URL``), read and checked once."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError
from ..redact import redact_url

_QUEUE_NAME = re.compile(r"^[A-Za-z0-9_.:-]{1,80}$")


@dataclass(frozen=True, slots=True)
class ForwardSettings:
    """The ``TRACKING_FORWARD_*`` settings (and ``TRACKING_REDIS_URL``)."""

    #: Kept out of ``repr`` (it may hold a password).
    redis_url: str | None = field(repr=False)
    queue: str = "tracking-forward"
    #: Seconds a job may run (RQ kills it after); a claim's lease is a bit longer.
    job_timeout: int = 60
    #: Seconds between sweeps (worker, or the forwarding thread without Redis); also how
    #: late at most a retry runs after its backoff.
    sweep_interval: float = 10.0
    #: Seconds the producer waits to gather small batches into bigger jobs (0: never).
    linger: float = 0.5

    @property
    def lease(self) -> float:
        """Seconds a claim holds: longer than any job may run."""
        return self.job_timeout + 5.0

    @property
    def grace(self) -> float:
        """Age after which a row that never got a job is an orphan."""
        return max(2.0, 2 * self.sweep_interval, 10 * self.linger)


def load_settings(config: Any) -> ForwardSettings:
    """Read and check the forwarding settings of a ``TrackingConfig``."""
    queue = getattr(config, "forward_queue", "tracking-forward")
    if not isinstance(queue, str) or not _QUEUE_NAME.match(queue):
        raise ConfigError(
            "TRACKING_FORWARD_QUEUE must be a queue name of letters, digits and '_.:-'"
            f" (at most 80), not {queue!r}."
        )
    job_timeout = getattr(config, "forward_job_timeout", 60)
    if isinstance(job_timeout, bool) or not isinstance(job_timeout, int) or job_timeout < 1:
        raise ConfigError(
            f"TRACKING_FORWARD_JOB_TIMEOUT must be a whole number of seconds >= 1,"
            f" not {job_timeout!r}."
        )
    interval = _seconds(config, "forward_sweep_interval", "TRACKING_FORWARD_SWEEP_INTERVAL", 10.0)
    if interval < 0.1:
        raise ConfigError(
            f"TRACKING_FORWARD_SWEEP_INTERVAL must be at least 0.1 seconds, not {interval!r}."
        )
    linger = _seconds(config, "forward_linger", "TRACKING_FORWARD_LINGER", 0.5)
    redis_url = getattr(config, "redis_url", None) or None
    if redis_url is not None and not (
        isinstance(redis_url, str) and redis_url.startswith(("redis://", "rediss://", "unix://"))
    ):
        shown = redact_url(redis_url) if isinstance(redis_url, str) else type(redis_url).__name__
        raise ConfigError(
            "TRACKING_REDIS_URL must look like 'redis://host:6379/0' (or None to forward"
            f" in-process), not {shown!r}."
        )
    return ForwardSettings(redis_url, queue, job_timeout, interval, linger)


def _seconds(config: Any, attr: str, key: str, default: float) -> float:
    value = getattr(config, attr, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ConfigError(f"{key} must be a number of seconds >= 0, not {value!r}.")
    return float(value)
