"""Envelope and context fields of the current request, taken from the server only.

Nothing here reads a payload: the user comes from the app's identity loader, the session
from a keyed hash of a per-browser-session id, the IP from the connection (through at
most ``TRACKING_TRUSTED_PROXIES`` proxies), the course from the URL.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import time
from collections.abc import Callable
from typing import Any

from flask import Request, g, has_request_context, request, session

from .config import TrackingConfig

IdentityLoader = Callable[[], dict[str, Any] | None]
SessionIdLoader = Callable[[], str | None]

#: Key of the per-browser-session id kept in the Flask session when the app has none.
SESSION_KEY = "_tracking_sid"
#: Seconds during which cookie-less first requests of one browser share a session id.
FIRST_SESSION_WINDOW = 60


def keyed_hash(key: bytes, value: str, *, purpose: str) -> str:
    """32 hex characters of an HMAC-SHA256: stable, not reversible without the key."""
    if type(value) is str and type(key) is bytes:
        return _keyed_hash_cached(key, value, purpose)
    return _keyed_hash(key, value, purpose)


def _keyed_hash(key: bytes, value: str, purpose: str) -> str:
    # surrogatepass: any str hashes (a lone surrogate from a broken source too); valid
    # text gives the same bytes as plain UTF-8.
    data = f"{purpose}:{value}".encode("utf-8", "surrogatepass")
    return hmac.new(key, data, hashlib.sha256).hexdigest()[:32]


#: The same learner and session come in every event of a batch: hash each once.
_keyed_hash_cached = functools.lru_cache(maxsize=4096)(_keyed_hash)


def client_ip(trusted_proxies: int, req: Request | None = None) -> str | None:
    """The client's address, trusting ``X-Forwarded-For`` from that many proxies
    (of ``req``, the current request by default)."""
    if req is None:
        req = request._get_current_object()  # type: ignore[attr-defined]
    if trusted_proxies:
        forwarded = req.headers.get("X-Forwarded-For", "")
        hops = [h.strip() for h in forwarded.split(",") if h.strip()]
        if len(hops) >= trusted_proxies:
            return hops[-trusted_proxies]
    return req.remote_addr


def course_from_path(config: TrackingConfig, path: str) -> tuple[str | None, str | None]:
    """``(course_id, org_id)`` from the URL, by ``TRACKING_COURSE_URL_PATTERN``."""
    if config.course_url_pattern is None:
        return None, None
    match = config.course_url_pattern.search(path)
    if not match:
        return None, None
    course_id = match.group("course_id")
    return course_id, org_from_course(course_id)


def org_from_course(course_id: str) -> str | None:
    """The org of ``course-v1:Org+Num+Run``, ``Org/Num/Run`` or ``org.slug``."""
    body = course_id.split(":", 1)[1] if course_id.startswith("course-v1:") else course_id
    for separator in ("+", "/"):
        if separator in body:
            return body.split(separator, 1)[0] or None
    return None


class RequestInfo:
    """Computes the request's fields once per request (cached on ``flask.g``)."""

    def __init__(self, config: TrackingConfig) -> None:
        self.config = config
        self.identity_loader: IdentityLoader | None = None
        self.session_id_loader: SessionIdLoader | None = None

    def __call__(self) -> tuple[dict[str, Any], dict[str, Any]]:
        if not has_request_context():
            return {}, {}
        cached = g.get("_tracking_request_info")
        if cached is None:
            cached = self._compute()
            g._tracking_request_info = cached
        return cached

    def _compute(self) -> tuple[dict[str, Any], dict[str, Any]]:
        identity = (self.identity_loader() if self.identity_loader else None) or {}
        sid = self._session_id(identity)
        req = request._get_current_object()  # type: ignore[attr-defined]  # once, not per field
        headers = req.headers
        path = req.path
        envelope = {
            "username": identity.get("username") or "",
            "session": keyed_hash(self.config.hash_key, sid, purpose="session") if sid else "",
            "ip": client_ip(self.config.trusted_proxies, req),
            "agent": headers.get("User-Agent", ""),
            "host": req.host,
            "referer": headers.get("Referer", ""),
            "accept_language": headers.get("Accept-Language", ""),
            "page": None,
        }
        course_id, org_id = course_from_path(self.config, path)
        context: dict[str, Any] = {
            "user_id": identity.get("user_id"),
            "path": path,
            "course_id": course_id or "",
            "org_id": org_id or "",
        }
        return envelope, context

    def _session_id(self, identity: dict[str, Any]) -> str | None:
        if self.session_id_loader is not None:
            own = self.session_id_loader()
            if own:
                return own
        return self.start_session(identity)

    def start_session(self, identity: dict[str, Any] | None = None) -> str | None:
        """The browser session's id, kept in the Flask session; made now if it has none.

        ``tracking_script()`` calls this while the page renders, so the page's answer
        already carries the cookie and every event the page sends carries one session.
        A request that comes without the cookie (the first events of a page the app did
        not render, sent together as edX's Logger does) gets an id derived from what
        those requests share (the signed-in user, client IP, user agent, language, the
        current minute), so they agree on one session; the cookie then keeps it.
        """
        try:
            sid = session.get(SESSION_KEY)
            if not sid:
                if identity is None:
                    identity = (self.identity_loader() if self.identity_loader else None) or {}
                sid = self._first_session_id(identity)
                session[SESSION_KEY] = sid
        except RuntimeError:  # no SECRET_KEY: the app has no sessions at all
            return None
        return str(sid)

    def _first_session_id(self, identity: dict[str, Any]) -> str:
        headers = request.headers
        minute = int(time.time() // FIRST_SESSION_WINDOW)
        seed = "|".join(
            (
                str(identity.get("user_id") or identity.get("username") or ""),
                client_ip(self.config.trusted_proxies) or "",
                headers.get("User-Agent", ""),
                headers.get("Accept-Language", ""),
                str(minute),
            )
        )
        return keyed_hash(self.config.hash_key, seed, purpose="first-session")
