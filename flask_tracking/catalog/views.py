"""The catalog under the blueprint: ``catalog.json``, one JSON Schema per type, the page.

``catalog.json`` and the schema files are public: they document what may be sent, not
what was (``?source=browser`` is what a front end may send). The HTML page is a staff
page: it shows when each type was last seen, so it follows the app's
``@tracking.dashboard_access`` rule (refused, or no rule: 403).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, jsonify, render_template_string, request, url_for

from ..state import get_state
from ..views import error
from .document import SOURCES, catalog_data, entries, find
from .page import TEMPLATE
from .table import catalog_rows
from .types import TypeRegistry

logger = logging.getLogger(__name__)


def add_catalog_views(bp: Blueprint, types: TypeRegistry, allowed: Callable[[], bool]) -> None:
    """Add the catalog endpoints of ``types`` to ``bp``; ``allowed()`` guards the page."""

    def catalog_json() -> Response:
        source = request.args.get("source")
        if source is not None and source not in SOURCES:
            return _bad_source(source)
        response = jsonify(catalog_data(types, source))
        response.headers["Cache-Control"] = "public, max-age=60"
        return response

    def schema_json(source: str, event_type: str) -> Response:
        if source not in SOURCES:
            return _bad_source(source)
        version = request.args.get("version")
        if version is not None and not version.isdigit():
            return error(400, "invalid_version", "version must be a whole number.")
        entry = find(types, source, event_type, int(version) if version else None)
        if entry is None:
            message = f"No event type {event_type!r} for source {source!r} in the catalog."
            return error(404, "unknown_event_type", message)
        response = jsonify(entry.json_schema)
        response.mimetype = "application/schema+json"
        return response

    def catalog_page() -> Response | str:
        if not allowed():
            return error(403, "forbidden", "The event catalog is a staff page.")
        seen = _seen()
        rows = []
        for entry in entries(types):
            first, last = seen.get((entry.event_type, entry.source, entry.version), (None, None))
            link = url_for(".catalog_schema", source=entry.source, event_type=entry.event_type)
            rows.append({"entry": entry, "first": first, "last": last, "link": link})
        return render_template_string(TEMPLATE, rows=rows, json_url=url_for(".catalog_json"))

    bp.add_url_rule("/catalog.json", "catalog_json", catalog_json, methods=["GET"])
    bp.add_url_rule(
        "/catalog/<source>/<event_type>.schema.json", "catalog_schema", schema_json, methods=["GET"]
    )
    bp.add_url_rule("/catalog", "catalog_page", catalog_page, methods=["GET"])


def _bad_source(source: str) -> Response:
    return error(400, "invalid_source", f"source must be browser or server, not {source!r}.")


def _seen() -> dict[tuple[str, str, int], tuple[Any, Any]]:
    """First and last seen by (type, source, version), from the table (empty if it
    cannot be read: the page still shows the catalog)."""
    try:
        rows = catalog_rows(get_state().engine)
    except Exception as exc:
        logger.warning("The tracking_event_types table could not be read (%s).", type(exc).__name__)
        return {}
    return {
        (r["event_type"], r["source"], r["version"]): (r["first_seen"], r["last_seen"])
        for r in rows
    }
