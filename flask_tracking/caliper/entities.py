"""The pieces of a Caliper 1.2 event: ids, times, durations, the actor, the entities.

Pure functions over the edX tracking-log object (a ``dict``, as ``flask tracking
export`` writes it). Nothing here does I/O.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

#: ``@context`` of every event and ``dataVersion`` of every envelope.
CONTEXT = "http://purl.imsglobal.org/ctx/caliper/v1p2"
#: Namespace of the ``urn:uuid:`` ids derived from event ids (uuid5): stable across re-sends.
EVENT_NAMESPACE = uuid.UUID("6d1c3b0e-7c57-5a53-9d2e-5a4f0c8e1b21")
#: Namespace of the anonymous Person ids derived from the stored ``user_id``.
ACTOR_NAMESPACE = uuid.UUID("0f3f2c55-2b9a-5f0e-8a44-3c1d9e7b6a10")


def event_urn(event_id: str, part: str = "") -> str:
    """``urn:uuid:`` of the Caliper event made from stored event ``event_id``."""
    return "urn:uuid:" + str(uuid.uuid5(EVENT_NAMESPACE, event_id + part))


def context_of(line: dict[str, Any]) -> dict[str, Any]:
    """The line's ``context`` when it is a dict (some old lines hold a string), else ``{}``."""
    value = line.get("context")
    return value if isinstance(value, dict) else {}


def payload(line: dict[str, Any]) -> dict[str, Any]:
    """The line's ``event`` as a dict: browser events hold it as a JSON string."""
    value = line.get("event")
    if isinstance(value, str):
        try:
            value = json.loads(value) if value.strip() else {}
        except ValueError:
            return {}
    return value if isinstance(value, dict) else {}


def event_time(line: dict[str, Any]) -> str:
    """The line's ``time`` as Caliper wants it: UTC, milliseconds, ``Z``."""
    raw = str(line.get("time") or "")
    when = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def duration(seconds: Any) -> str | None:
    """Seconds as an ISO 8601 duration (``PT12.5S``); ``None`` for a non-number."""
    try:
        value = float(seconds)
    except (TypeError, ValueError):
        return None
    if not 0 <= value < 10**9:
        return None
    text = f"{value:.3f}".rstrip("0").rstrip(".")
    return f"PT{text}S"


def number(value: Any) -> float | int | None:
    """An int or float (not a bool), or ``None``."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float) and value == value and abs(value) != float("inf"):
        return value
    return None


def iri(platform: str, kind: str, key: str) -> str:
    """``<platform>/<kind>/<key>`` with ``key`` percent-encoded (edX usage keys kept readable)."""
    return f"{platform}/{kind}/{quote(key, safe=':@+~-._')}"


def platform_of(line: dict[str, Any], configured: str | None) -> str:
    """The platform's base IRI: the configured one, else ``https://<host of the event>``."""
    if configured:
        return configured.rstrip("/")
    host = str(line.get("host") or context_of(line).get("host") or "").strip()
    return f"https://{quote(host, safe=':.-')}" if host else "https://localhost"


def user_id_of(line: dict[str, Any]) -> str | None:
    value = context_of(line).get("user_id")
    if value is None or value == "" or isinstance(value, bool):
        return None
    return str(value)


def person(
    line: dict[str, Any], platform: str, *, mode: str, secret: bytes | None
) -> dict[str, Any] | None:
    """The actor: a Person whose id never holds an email (``None`` without a user).

    ``mode`` ``"anonymous"`` (default): ``urn:uuid:`` of the stored ``user_id`` (keyed
    with ``secret`` by HMAC-SHA256 when one is configured, else uuid5 of platform and
    user id); ``"user_id"``: ``<platform>/users/<user_id>``; ``"username"``:
    ``<platform>/users/<username>`` (only if configured).
    """
    user_id = user_id_of(line)
    if mode == "username":
        username = line.get("username") or context_of(line).get("username")
        if not username or "@" in str(username):
            return None
        return {"id": iri(platform, "users", str(username)), "type": "Person"}
    if user_id is None:
        return None
    if mode == "user_id":
        return {"id": iri(platform, "users", user_id), "type": "Person"}
    if secret is not None:
        digest = hmac.new(secret, f"{platform}|{user_id}".encode(), hashlib.sha256).digest()
        anonymous = uuid.UUID(bytes=digest[:16], version=4)
    else:
        anonymous = uuid.uuid5(ACTOR_NAMESPACE, f"{platform}|{user_id}")
    return {"id": f"urn:uuid:{anonymous}", "type": "Person"}


def ed_app(platform: str) -> dict[str, Any]:
    return {"id": platform, "type": "SoftwareApplication"}


def course_offering(line: dict[str, Any], platform: str) -> dict[str, Any] | None:
    course = context_of(line).get("course_id")
    if not course:
        return None
    return {
        "id": iri(platform, "courses", str(course)),
        "type": "CourseOffering",
        "courseNumber": str(course),
    }


def course_of(line: dict[str, Any]) -> str:
    return str(context_of(line).get("course_id") or "")


def block_key(raw: Any, course: str, block_type: str) -> str | None:
    """An edX usage key for ``raw``: kept when it is one, built from a browser id if not.

    Browser video events name a video ``i4x-Org-Num-video-<hash>`` or ``<hash>``; in a
    ``course-v1:`` course that becomes ``block-v1:<course>+type@video+block@<hash>``.
    """
    if not isinstance(raw, str) or not raw:
        return None
    if raw.startswith(("block-v1:", "i4x://", "asset-v1:")):
        return raw
    parts = raw.split("-")
    if len(parts) == 5 and parts[0] == "i4x" and all(parts):  # i4x-Org-Num-type-name
        return "i4x://" + "/".join(parts[1:])
    name = parts[-1] if f"-{block_type}-" in raw or "-videoalpha-" in raw else raw
    if course.startswith("course-v1:"):
        return f"block-v1:{course[len('course-v1:') :]}+type@{block_type}+block@{name}"
    return raw
