"""Readable text of events for people (Slack lines, email subjects and summaries).

Every value put in a template is escaped first: C0 and C1 control characters (newlines,
carriage returns, tabs, escape, NEL, ...), the Unicode line and paragraph separators and
the bidirectional overrides become visible escapes (``\\n``, ``\\x1b``, ``\\u2028``), so
an event type or a user name can never start a new line of a Slack message or forge a
header or line of an email.
"""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, datetime
from typing import Any

from .base import OutgoingEvent
from .options import TEMPLATE_FIELDS

#: Longest payload text shown.
EVENT_TEXT_LIMIT = 200
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
_CONTROLS = [
    *range(0x00, 0x20),
    *range(0x7F, 0xA0),
    0x2028,
    0x2029,
    *range(0x202A, 0x202F),
    *range(0x2066, 0x206A),
]
_ESCAPES = {
    code: _NAMED.get(chr(code)) or (f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}")
    for code in _CONTROLS
}


def escape_controls(text: str) -> str:
    """``text`` with every control character as a visible escape (one line, always)."""
    return text.translate(_ESCAPES)


def slack_escape(text: str) -> str:
    """Escaped for a Slack message: control characters, then ``&``, ``<``, ``>``."""
    return escape_controls(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def blank_fields(destination: str, count: int) -> dict[str, str]:
    """The fields of a title or a digest subject: ``count`` and ``destination``."""
    fields = dict.fromkeys(TEMPLATE_FIELDS, "-")
    fields.update(count=str(count), destination=escape_controls(destination))
    return fields


def event_fields(event: OutgoingEvent, destination: str) -> dict[str, str]:
    """The template fields of one event (``-`` for what it lacks), control-escaped."""
    line = event.line
    raw_context = line.get("context")
    context: dict[str, Any] = raw_context if isinstance(raw_context, dict) else {}
    payload = line.get("event")
    if not isinstance(payload, str):
        payload = json.dumps(payload, ensure_ascii=False, default=str)
    when = line.get("time")
    if isinstance(when, str):
        with contextlib.suppress(ValueError):
            when = datetime.fromisoformat(when).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    values: dict[str, Any] = {
        "event_type": line.get("event_type"),
        "event_source": line.get("event_source"),
        "username": line.get("username"),
        "user_id": context.get("user_id"),
        "course_id": context.get("course_id"),
        "org_id": context.get("org_id"),
        "time": when,
        "page": line.get("page"),
        "name": line.get("name"),
        "session": line.get("session"),
        "ip": line.get("ip"),
        "host": line.get("host"),
        "event": payload
        if len(payload) <= EVENT_TEXT_LIMIT
        else payload[: EVENT_TEXT_LIMIT - 1] + "…",
        "event_id": event.event_id,
        "destination": destination,
        "count": "1",
    }
    return {k: "-" if v is None or v == "" else escape_controls(str(v)) for k, v in values.items()}
