"""edX tracking-log lines in and out.

An *event* inside flask-tracking is a plain dict with the keys of
:class:`flask_tracking.event.Event`; the keys of a line and their order come from there
too (:data:`~flask_tracking.event.LINE_KEYS`).

:func:`parse_line` turns a tracking-log line into such an event, remembering what the
columns cannot reproduce; :func:`render_line` turns an event or a stored row back into
the tracking-log object.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from .event import FIELDS, LINE_KEYS, Event, new_event
from .payloads import JSON, decode_payload, encode_payload

#: Envelope keys that have a column of their own, in edX's usual order.
ENVELOPE_KEYS = LINE_KEYS
#: The stored columns ``render_line`` reads.
LINE_COLUMNS = ("event_id", *ENVELOPE_KEYS, "event_format", "event_raw", "original")
#: Line keys copied as they are when they hold a string (``name`` and ``event_source``
#: have defaults of their own).
_STRING_KEYS = tuple(
    f.name
    for f in FIELDS
    if f.line is not None
    and f.kind == "text"
    and f.name not in ("name", "event_type", "event_source")
)
#: Namespace of the event ids derived from the content of imported lines.
IMPORT_NAMESPACE = uuid.UUID("5b7f3c1e-7a55-4c4e-9d7e-1f3b0c6a8e21")


class LineError(ValueError):
    """A tracking-log line that cannot be read as an event."""


def parse_time(value: Any) -> datetime:
    """Read an edX time (with or without fraction and timezone) as aware UTC."""
    if not isinstance(value, str) or not value:
        raise LineError("time: Not a valid datetime.")
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise LineError(f"time: Not a valid datetime: {value[:40]!r}.") from None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def format_time(value: datetime) -> str:
    """edX's time format: ``2014-03-03T16:19:05.584523+00:00`` (no fraction when zero)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat()


_CANONICAL_JSON = json.JSONEncoder(sort_keys=True, separators=(",", ":"))
_NAMESPACE_BYTES = IMPORT_NAMESPACE.bytes


def content_event_id(line: Mapping[str, Any]) -> str:
    """A stable id for a line without one: identical lines get the same id.

    ``str(uuid.uuid5(IMPORT_NAMESPACE, sha256(sorted compact JSON).hexdigest()))``,
    computed inline: the same value, without building a ``UUID`` object (import hot path).
    """
    digest = hashlib.sha256(_CANONICAL_JSON.encode(line).encode()).hexdigest()
    raw = bytearray(hashlib.sha1(_NAMESPACE_BYTES + digest.encode()).digest()[:16])
    raw[6] = (raw[6] & 0x0F) | 0x50  # version 5
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def parse_line(line: Mapping[str, Any], *, received_at: datetime) -> Event:
    """Turn a parsed tracking-log object into an event; raise :class:`LineError`."""
    event_type = line.get("event_type")
    if not isinstance(event_type, str) or not event_type:
        raise LineError("event_type: Missing data for required field.")
    time_value = line["time"] if "time" in line else line.get("timestamp")
    when = parse_time(time_value)
    context = line.get("context")
    context_dict = _context_dict(context)
    payload = decode_payload(line.get("event"))
    source = line.get("event_source")
    event = new_event(
        event_id=content_event_id(line),
        name=line.get("name") if isinstance(line.get("name"), str) else event_type,
        event_type=event_type,
        event_source=source if isinstance(source, str) else "",
        time=when,
        context=context_dict,
        event=payload.data,
        event_format=payload.format,
        event_raw=payload.raw,
        received_at=received_at,
    )
    for key in _STRING_KEYS:
        value = line.get(key)
        event[key] = value if isinstance(value, str) else None  # type: ignore[literal-required]
    if payload.format == JSON and payload.raw is None:
        # decode_payload keeps no raw for a JSON string only when re-encoding gives back
        # that very string: skip the re-encoding (what encode_payload would return).
        rendered = line.get("event")
    else:
        rendered = encode_payload(payload.data, payload.format, payload.raw)
    event["original"] = _differences(line, _canonical(event, rendered))
    return event


def _context_dict(context: Any) -> dict[str, Any]:
    if isinstance(context, dict):
        return context
    if isinstance(context, str):
        try:
            decoded = json.loads(context)
        except ValueError:
            return {}
        return decoded if isinstance(decoded, dict) else {}
    return {}


def _differences(line: Mapping[str, Any], canonical: dict[str, Any]) -> dict[str, Any] | None:
    """What export needs beyond the columns to give back ``line`` as it came."""
    keys = list(line.keys())
    values = {k: v for k, v in line.items() if k not in canonical or canonical[k] != v}
    if not values and keys == list(canonical.keys()):
        return None
    return {"keys": keys, "values": values}


def render_line(event: Mapping[str, Any]) -> dict[str, Any]:
    """The tracking-log object of an event dict or a stored row mapping."""
    payload = encode_payload(event["event"], event["event_format"], event["event_raw"])
    canonical = _canonical(event, payload)
    original = event.get("original")
    if not original:
        return canonical
    values = original.get("values", {})
    return {k: values[k] if k in values else canonical.get(k) for k in original["keys"]}


def _canonical(event: Mapping[str, Any], payload: Any) -> dict[str, Any]:
    """The line our columns give, in edX's key order, with ``payload`` as ``event``."""
    line = {key: event[key] for key in ENVELOPE_KEYS}
    if line["context"] is None:
        line["context"] = {}
    line["event"] = payload
    line["time"] = format_time(event["time"])
    return line
