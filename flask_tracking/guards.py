"""The origin check made before an ingest request is read (the rate limit is in ratelimit).

Beacons carry no CSRF header, so the origin is checked from ``Origin`` and
``Sec-Fetch-Site`` instead; see ``docs/ingest.md`` for how this fits with Flask-WTF.

An origin is a scheme, a host and a port, compared as a whole: the ``http`` site does not
accept ``https://host`` (nor the reverse), nor another port. Both sides are normalised
to ``scheme://host[:port]`` first: lower case, the default port (80 for http, 443 for
https) the same as no port, IPv6 hosts in brackets. The site's own origin is the
request's scheme and ``Host``; behind ``TRACKING_TRUSTED_PROXIES`` proxies the scheme is
read from ``X-Forwarded-Proto`` the same way the client IP is read from
``X-Forwarded-For`` (so a proxy that terminates TLS still gives ``https``).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from urllib.parse import urlsplit

from flask import Request

from .config import TrackingConfig
from .errors import ConfigError

_DEFAULT_PORTS = {"http": 80, "https": 443}


def normalise_origin(value: str) -> str:
    """``scheme://host[:port]`` of an origin or URL; ``ValueError`` if it has none.

    >>> normalise_origin("HTTPS://App.Example:443/")
    'https://app.example'
    """
    return _normalised(value) if type(value) is str else _normalise(value)


def _normalise(value: str) -> str:
    parts = urlsplit(value.strip())
    host = parts.hostname  # lower case, IPv6 without brackets
    scheme = parts.scheme.lower()
    if not scheme or not host:
        raise ValueError(f"{value!r} is not an origin like https://app.example")
    port = parts.port  # ValueError when it is not a number in range
    if ":" in host:
        host = f"[{host}]"
    if port is None or port == _DEFAULT_PORTS.get(scheme):
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


#: Every ingest request normalises its Origin and the site's own origin, the same few
#: values over and over: remembered (a pure function of the string; a refusal is not).
_normalised = functools.lru_cache(maxsize=1024)(_normalise)


def allowed_origins(entries: Iterable[str]) -> frozenset[str]:
    """``TRACKING_ALLOWED_ORIGINS`` normalised; ``ConfigError`` naming a bad entry.

    ``init_app`` calls it once so that a bad entry fails at startup.
    """
    return _allowed(tuple(entries))


@functools.lru_cache(maxsize=16)
def _allowed(entries: tuple[str, ...]) -> frozenset[str]:
    normalised = set()
    for entry in entries:
        try:
            normalised.add(normalise_origin(entry))
        except ValueError:
            raise ConfigError(
                f"TRACKING_ALLOWED_ORIGINS: {entry!r} is not an origin; give a scheme, a host"
                " and, if not the default, a port, for example 'https://app.example:8443'."
            ) from None
    return frozenset(normalised)


def site_origin(req: Request, trusted_proxies: int) -> str | None:
    """The origin this site is served from, as the browser sees it."""
    scheme = req.scheme
    if trusted_proxies:
        forwarded = req.headers.get("X-Forwarded-Proto", "")
        hops = [h.strip().lower() for h in forwarded.split(",") if h.strip()]
        if len(hops) >= trusted_proxies and hops[-trusted_proxies] in _DEFAULT_PORTS:
            scheme = hops[-trusted_proxies]
    try:
        return normalise_origin(f"{scheme}://{req.host}")
    except ValueError:
        return None


def origin_refusal(req: Request, config: TrackingConfig) -> str | None:
    """Why this request must be refused as cross-origin, or ``None`` if it may pass."""
    origin = req.headers.get("Origin")
    if origin and origin != "null":
        try:
            normalised = normalise_origin(origin)
        except ValueError:
            normalised = None
        if normalised is not None and (
            normalised in allowed_origins(config.allowed_origins)
            or normalised == site_origin(req, config.trusted_proxies)
        ):
            return None
        return (
            f"Requests from origin {origin!r} are refused: this site is"
            f" {site_origin(req, config.trusted_proxies)!r} (scheme, host and port must all"
            " match); add the origin to TRACKING_ALLOWED_ORIGINS to accept it, or, behind a"
            " proxy that terminates TLS, set TRACKING_TRUSTED_PROXIES and have it send"
            " X-Forwarded-Proto."
        )
    site = req.headers.get("Sec-Fetch-Site")
    if site == "cross-site" or (origin == "null" and site != "same-origin"):
        return (
            "Cross-site requests are refused; send events from the site's own pages or"
            " list the origin in TRACKING_ALLOWED_ORIGINS."
        )
    return None
