"""Checks made before an ingest request is read: origin, rate, size.

Beacons carry no CSRF header, so the origin is checked from ``Origin`` and
``Sec-Fetch-Site`` instead; see ``docs/ingest.md`` for how this fits with Flask-WTF.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from urllib.parse import urlsplit

from flask import Request

from .config import TrackingConfig


def origin_refusal(req: Request, config: TrackingConfig) -> str | None:
    """Why this request must be refused as cross-origin, or ``None`` if it may pass."""
    origin = req.headers.get("Origin")
    if origin and origin != "null":
        if origin.rstrip("/") in config.allowed_origins:
            return None
        if urlsplit(origin).netloc.lower() == req.host.lower():
            return None
        return (
            f"Requests from origin {origin!r} are refused; add it to"
            " TRACKING_ALLOWED_ORIGINS to accept it."
        )
    site = req.headers.get("Sec-Fetch-Site")
    if site == "cross-site" or (origin == "null" and site != "same-origin"):
        return (
            "Cross-site requests are refused; send events from the site's own pages or"
            " list the origin in TRACKING_ALLOWED_ORIGINS."
        )
    return None


class RateLimiter:
    """A per-key token bucket kept in this process (each worker has its own)."""

    def __init__(
        self, requests: int, per_seconds: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.capacity = float(requests)
        self.rate = requests / per_seconds
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def retry_after(self, key: str) -> int:
        """Take a token for ``key``: 0 if allowed, else the seconds to wait."""
        now = self.clock()
        with self._lock:
            tokens, stamp = self._buckets.get(key, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - stamp) * self.rate)
            if tokens >= 1:
                self._buckets[key] = (tokens - 1, now)
                if len(self._buckets) > 100_000:
                    self._forget_full(now)
                return 0
            self._buckets[key] = (tokens, now)
            return max(1, math.ceil((1 - tokens) / self.rate))

    def _forget_full(self, now: float) -> None:
        for key, (tokens, stamp) in list(self._buckets.items()):
            if tokens + (now - stamp) * self.rate >= self.capacity:
                del self._buckets[key]
