"""The ``tracking`` blueprint: it parses and answers; the ingestor and tracker do the rest.

Every error answer is JSON in one shape (``docs/ingest.md``)::

    {"status": 413, "code": "request_too_large", "message": "...", "errors": {...}}
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

from flask import Blueprint, Response, current_app, jsonify, request
from flask.json.provider import DefaultJSONProvider
from sqlalchemy import text

from .engine import is_unavailable
from .errors import StoreUnavailable
from .failures import SAMPLE_BYTES
from .guards import origin_refusal
from .ingest import BodyRefused, IngestResult
from .ratelimit import rate_key
from .state import TrackingState, get_state

logger = logging.getLogger(__name__)


def error(
    status: int,
    code: str,
    message: str,
    errors: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """The one JSON error shape of every ingest answer."""
    body: dict[str, Any] = {"status": status, "code": code, "message": message}
    if errors:
        body["errors"] = errors
    response = jsonify(body)
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def accepted(result: IngestResult) -> Response:
    """The answer of a stored request: ``jsonify(result.as_json())``, its body encoded
    once per ``(accepted, duplicates)`` when nothing failed (the common answers) and the
    app has Flask's own JSON provider."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    provider = app.json
    if result.failed or type(provider) is not DefaultJSONProvider:
        return jsonify(result.as_json())
    key = (provider, app.debug, provider.compact, provider.sort_keys, provider.ensure_ascii)
    body = _answer_body(key, result.accepted, result.duplicates)
    return app.response_class(body, mimetype=provider.mimetype)


@functools.lru_cache(maxsize=256)
def _answer_body(key: tuple[Any, ...], accepted: int, duplicates: int) -> bytes:
    """The body ``jsonify`` writes for ``accepted`` with nothing failed (``key[0]`` is
    the provider; the rest, what its output depends on)."""
    answer = {"accepted": accepted, "duplicates": duplicates, "failed": []}
    return key[0].response(answer).get_data()


def unavailable() -> Response:
    return error(
        503,
        "store_unavailable",
        "The event store cannot be reached; nothing was stored. Retry after the delay given.",
        headers={"Retry-After": "1"},
    )


def _keep(
    state: TrackingState,
    raw: bytes,
    code: str,
    message: str,
    errors: dict[str, Any] | None = None,
    *,
    sample: bool = False,
) -> None:
    """Keep a refused request body in the failed-events table (a sample if ``sample``)."""
    reasons: dict[str, Any] = {"_request": [message], **(errors or {})}
    state.tracker.pipeline.keep(
        "browser",
        raw,
        reasons,
        detail=f"{request.path} {code}",
        keep_bytes=SAMPLE_BYTES if sample else None,
    )


def _guard(state: TrackingState) -> Response | bytes:
    """Origin, rate and size checks; the body when they pass, else the error answer."""
    config = state.config
    req = request._get_current_object()  # type: ignore[attr-defined]  # once, not per use
    refusal = origin_refusal(req, config)
    if refusal:
        return error(403, "cross_origin", refusal)
    if state.limiter is not None:
        wait = state.limiter.retry_after(rate_key(*state.request_info()))
        if wait:
            return error(
                429,
                "rate_limited",
                f"Too many requests from this client; retry in {wait} s.",
                headers={"Retry-After": str(wait)},
            )
    limit = config.max_request_bytes
    raw = req.stream.read(limit + 1)
    if len(raw) > limit or (req.content_length or 0) > limit:
        message = (
            f"The request body is over {limit} bytes (TRACKING_MAX_REQUEST_BYTES);"
            " send fewer events per request."
        )
        _keep(state, raw, "request_too_large", message, sample=True)
        return error(413, "request_too_large", message)
    return raw


def _json_body(state: TrackingState, raw: bytes) -> Response | Any:
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        message = f"The body is not valid UTF-8 JSON: {exc}."
    except RecursionError:
        message = "The body is not valid JSON: it is nested too deeply."
    _keep(state, raw, "invalid_json", message)
    return error(400, "invalid_json", message)


def ingest_view(
    handler: Callable[[TrackingState, bytes], Response],
) -> Callable[[], Response]:
    """An ingest endpoint: GET refused, the guards, and 503 when the store is down."""

    @functools.wraps(handler)
    def view() -> Response:
        if request.method != "POST":
            return _get_refused()
        state = get_state()
        try:
            body = _guard(state)
            if isinstance(body, Response):
                return body
            return handler(state, body)
        except Exception as exc:
            if not is_unavailable(exc):
                raise
            why = exc if isinstance(exc, StoreUnavailable) else type(exc).__name__
            logger.warning("Event store unavailable during ingest: %s", why)
            return unavailable()

    return view


@ingest_view
def events(state: TrackingState, body: bytes) -> Response:
    """A batch from the Logger: ``{"sent_at", "events": [...]}`` as JSON or text/plain."""
    parsed = _json_body(state, body)
    if isinstance(parsed, Response):
        return parsed
    try:
        result = state.ingestor.batch(parsed, origin=request.path)
    except BodyRefused as refused:
        _keep(state, body, refused.code, str(refused), refused.errors)
        return error(refused.status, refused.code, str(refused), refused.errors)
    return accepted(result)


@ingest_view
def event(state: TrackingState, body: bytes) -> Response:
    """One event as edX's ``Logger.log`` sends it (form-encoded or JSON)."""
    fields: Any
    req = request._get_current_object()  # type: ignore[attr-defined]
    if req.mimetype in ("application/json", "text/plain"):
        fields = _json_body(state, body)
        if isinstance(fields, Response):
            return fields
    else:
        fields = dict(parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True))
    result = state.ingestor.single(fields, origin=req.path)
    if result.failed:
        errors = result.failed[0]["errors"]
        return error(400, "invalid_event", "The event was refused; see errors.", errors)
    return accepted(result)


def _get_refused() -> Response:
    response = error(
        405,
        "method_not_allowed",
        "Send events with POST: payloads do not belong in URLs.",
    )
    response.headers["Allow"] = "POST"
    return response


def health() -> Response:
    """Alive: the process answers."""
    return jsonify(status="ok")


def ready() -> Response:
    """Ready: the event database answers."""
    try:
        with get_state().engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception:
        return error(503, "store_unavailable", "The event database cannot be reached.")
    return jsonify(status="ok")


#: Where the Logger's files are served under ``TRACKING_URL_PREFIX = "/"``: ``/static``
#: is the app's own static route there (it would shadow the blueprint's), so they stay
#: where the default prefix puts them (no word that ad-block lists match).
ROOT_PREFIX_STATIC = "/activity/static"


def make_blueprint(url_prefix: str) -> Blueprint:
    """The ``tracking`` blueprint: the ingest endpoints, health, and the Logger's files
    (``<url_prefix>/static/js/logger.js``; ``/activity/static/js/...`` at the root)."""
    static_url_path = ROOT_PREFIX_STATIC if url_prefix.strip("/") == "" else "/static"
    bp = Blueprint(
        "tracking",
        __name__,
        static_folder="static",
        static_url_path=static_url_path,
        template_folder="dashboard/templates",
    )
    bp.add_url_rule("/events", view_func=events, methods=["GET", "POST"])
    bp.add_url_rule("/event", view_func=event, methods=["GET", "POST"])
    bp.add_url_rule("/health", view_func=health, methods=["GET"])
    bp.add_url_rule("/ready", view_func=ready, methods=["GET"])
    return bp
