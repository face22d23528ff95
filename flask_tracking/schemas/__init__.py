"""Schemas of the Open edX event payloads, and the catalog that documents them.

::

    from flask_tracking.schemas import check_payload

    verdict = check_payload("browser", "play_video", {"id": "v1", "code": "x", "currentTime": 3})
    verdict.status  # "valid", "invalid" or "unknown"
    verdict.errors  # {"currentTime": ["Not a valid number."]} when invalid

``data`` is the payload already decoded (JSON parsed, raw query strings parsed into
``{key: value or [values]}``). Unknown extra keys are always accepted.
"""

from __future__ import annotations

from .registry import (
    CATALOG,
    FAMILIES,
    catalog_as_data,
    check_payload,
    server_only_reason,
    spec_for,
)
from .spec import EventSpec, FieldSpec, Verdict

__all__ = [
    "CATALOG",
    "FAMILIES",
    "EventSpec",
    "FieldSpec",
    "Verdict",
    "catalog_as_data",
    "check_payload",
    "server_only_reason",
    "spec_for",
]
