"""The ingest rate limit: a token bucket per client, in Redis or in this process.

``TRACKING_RATE_LIMIT = "N/minute"`` gives each client a bucket of N tokens that refills
at N per minute; a request takes one, and a request that finds none is answered 429 with
``Retry-After``. Who "a client" is comes from :func:`rate_key`: the authenticated user,
else the client IP. Both are things a client cannot mint: a session id is not, since a
cookie-less client gets a fresh one with every request.

With ``TRACKING_REDIS_URL`` the buckets live in Redis, so every worker process and host
shares one budget per client. Each check is one round trip: a Lua script refills and
takes a token atomically, using Redis's own clock (hosts whose clocks disagree still
agree on the bucket), and gives the key a TTL of one refill period, after which a full
bucket and a missing key mean the same thing, so idle clients vanish. Keys are
``flask-tracking:rate:`` followed by a keyed hash of the client, so Redis holds no
usernames or addresses.

When Redis cannot be reached the limit falls back to the in-process bucket (each process
then limits on its own, as without Redis), logs that once per outage, and tries Redis
again after :data:`BREAKER_SECONDS`: a dead Redis costs at most one failed round trip per
process per breaker period, never one per request.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from redis import Redis
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry

from .config import TrackingConfig
from .redact import redact, redact_url, url_secrets
from .requestinfo import keyed_hash

logger = logging.getLogger(__name__)

#: Prefix of every rate-limit key in Redis.
KEY_PREFIX = "flask-tracking:rate:"
#: After Redis failed, seconds during which this process limits locally without trying it.
BREAKER_SECONDS = 2.0
#: A limiter on the request path waits for Redis this long at most (seconds).
CONNECT_TIMEOUT = 0.5
COMMAND_TIMEOUT = 0.25
#: In-process buckets kept before full ones are forgotten.
MAX_LOCAL_KEYS = 100_000

#: KEYS[1] the bucket; ARGV capacity, tokens per second, TTL in ms. Returns 0 when a
#: token was taken, else the whole seconds until one is there (at least 1).
_TAKE = """
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 't', 's')
local tokens = tonumber(state[1])
local stamp = tonumber(state[2])
if tokens == nil or stamp == nil then
  tokens = capacity
  stamp = now
end
tokens = math.min(capacity, tokens + math.max(0, now - stamp) * rate)
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
else
  wait = math.max(1, math.ceil((1 - tokens) / rate))
end
redis.call('HSET', KEYS[1], 't', string.format('%.17g', tokens), 's', string.format('%.6f', now))
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return wait
"""


class Limiter(Protocol):
    """What the ingest views need: ``retry_after(key)`` is 0 (allowed) or seconds to wait."""

    def retry_after(self, key: str) -> int: ...


def rate_key(envelope: Mapping[str, Any], context: Mapping[str, Any]) -> str:
    """The client a request counts against, from ``RequestInfo()``'s envelope and context.

    The authenticated user (``user_id``, else ``username``) when the identity loader gives
    one, so users behind one NAT get a budget each; else the client IP as read through
    ``TRACKING_TRUSTED_PROXIES``. An IPv6 client counts by its /64, the block one host
    is usually given (it could pick any address inside it).
    """
    user_id = context.get("user_id")
    if user_id not in (None, ""):
        return f"user:{user_id}"
    username = envelope.get("username")
    if username:
        return f"username:{username}"
    return f"ip:{_ip_block(envelope.get('ip') or '')}"


def _ip_block(ip: str) -> str:
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


class LocalLimiter:
    """A token bucket per key kept in this process (each worker process has its own)."""

    def __init__(
        self, requests: int, per_seconds: float, clock: Callable[[], float] = time.monotonic
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
            tokens = min(self.capacity, tokens + max(0.0, now - stamp) * self.rate)
            if tokens >= 1:
                self._buckets[key] = (tokens - 1, now)
                if len(self._buckets) > MAX_LOCAL_KEYS:
                    self._forget_full(now)
                return 0
            self._buckets[key] = (tokens, now)
            return max(1, math.ceil((1 - tokens) / self.rate))

    def _forget_full(self, now: float) -> None:
        for key, (tokens, stamp) in list(self._buckets.items()):
            if tokens + (now - stamp) * self.rate >= self.capacity:
                del self._buckets[key]


class RedisLimiter:
    """A token bucket per key in Redis, shared by every process and host using it.

    Falls back to ``fallback`` (an in-process bucket) while Redis cannot be reached; see
    the module docstring for the breaker. ``hash_key`` keys the hash that names a client
    in Redis: hosts that share a budget need the same one (``TRACKING_HASH_KEY`` or
    ``SECRET_KEY``).
    """

    def __init__(
        self,
        url: str,
        requests: int,
        per_seconds: float,
        *,
        hash_key: bytes,
        prefix: str = KEY_PREFIX,
        breaker_seconds: float = BREAKER_SECONDS,
        fallback: Limiter | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self.capacity = requests
        self.rate = requests / per_seconds
        self.ttl_ms = max(1000, math.ceil(per_seconds * 1000) + 1000)
        self.hash_key = hash_key
        self.prefix = prefix
        self.breaker_seconds = breaker_seconds
        self.fallback = fallback if fallback is not None else LocalLimiter(requests, per_seconds)
        self.clock = clock
        self.redis = make_redis(url)
        self._take = self.redis.register_script(_TAKE)
        self._lock = threading.Lock()
        self._retry_at = 0.0
        self._down = False

    def redis_key(self, key: str) -> str:
        """The Redis key of ``key``'s bucket (a keyed hash: no identity in Redis)."""
        return self.prefix + keyed_hash(self.hash_key, key, purpose="rate")

    def retry_after(self, key: str) -> int:
        """Take a token for ``key``: 0 if allowed, else the seconds to wait."""
        if not self._may_try():
            return self.fallback.retry_after(key)
        try:
            wait = self._take(
                keys=[self.redis_key(key)], args=[self.capacity, repr(self.rate), self.ttl_ms]
            )
        except RedisError as exc:
            self._failed(exc)
            return self.fallback.retry_after(key)
        if self._down:
            self._recovered()
        return int(wait)

    def _may_try(self) -> bool:
        """Closed breaker, or the one caller that probes Redis once the breaker period ends."""
        if not self._down:
            return True
        now = self.clock()
        with self._lock:
            if now < self._retry_at:
                return False
            self._retry_at = now + self.breaker_seconds  # the others stay local meanwhile
            return True

    def _failed(self, exc: RedisError) -> None:
        with self._lock:
            self._retry_at = self.clock() + self.breaker_seconds
            first = not self._down
            self._down = True
        if first:
            logger.warning(
                "Redis at %s cannot be used for the rate limit, so each process limits on"
                " its own until it answers again (tried every %g s): %s",
                redact_url(self.url),
                self.breaker_seconds,
                self._redacted(str(exc)),
            )

    def _recovered(self) -> None:
        with self._lock:
            was_down, self._down = self._down, False
        if was_down:
            logger.info(
                "Redis at %s answers again: the rate limit is shared.", redact_url(self.url)
            )

    def _redacted(self, message: str) -> str:
        """An error message without the URL's secrets, should a driver ever quote them."""
        return redact(message, url_secrets(self.url))

    def close(self) -> None:
        self.redis.close()


def make_redis(url: str) -> Redis:
    """A client for the request path: short timeouts, no transparent retries."""
    client: Redis = Redis.from_url(
        url,
        socket_connect_timeout=CONNECT_TIMEOUT,
        socket_timeout=COMMAND_TIMEOUT,
        retry=Retry(NoBackoff(), 0),
    )
    return client


def make_limiter(config: TrackingConfig) -> Limiter | None:
    """The limiter ``TRACKING_RATE_LIMIT`` and ``TRACKING_REDIS_URL`` ask for, if any.

    Nothing connects here: the first request does (so a Redis down at startup, or a fork
    after ``init_app`` as with ``gunicorn --preload``, is handled like any outage).
    """
    if config.rate_limit is None:
        return None
    requests, per_seconds = config.rate_limit
    if config.redis_url:
        return RedisLimiter(config.redis_url, requests, per_seconds, hash_key=config.hash_key)
    return LocalLimiter(requests, per_seconds)
