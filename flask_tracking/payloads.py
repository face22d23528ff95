"""Decode the ``event`` field of a tracking-log event into one stored form, and back.

Real tracking logs carry the payload as an object, a JSON string, a query string, a
list, a plain string or nothing. We store the decoded value (``data``), the form it came
in (``format``) and, only when re-encoding would not give back the very same string, the
original string (``raw``). :func:`encode_payload` writes it back the way it came.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode

from .errors import EventRejected

#: The forms a payload arrives in.
OBJECT = "object"  # a JSON object / dict in the log line itself
LIST = "list"  # a JSON array in the log line itself
JSON = "json"  # a string holding JSON (most browser events)
QUERY = "query"  # a string in query-string form (browser problem_check/reset/save)
TEXT = "text"  # any other string, including "" and truncated JSON
VALUE = "value"  # a number, boolean or null in the log line itself

FORMATS = (OBJECT, LIST, JSON, QUERY, TEXT, VALUE)

_COMPACT = (",", ":")
#: ``json.dumps(data, separators=_COMPACT, ensure_ascii=False)`` without building a new
#: encoder on every call (``json.dumps`` does, given any option).
_compact_dumps = json.JSONEncoder(separators=_COMPACT, ensure_ascii=False).encode


@dataclass(frozen=True, slots=True)
class Payload:
    """A decoded payload: the value, the form it came in, and the original if needed."""

    data: Any
    format: str
    raw: str | None = None


def decode_payload(value: Any) -> Payload:
    """Decode an ``event`` value as found in a tracking-log line or a request.

    Raises :class:`~flask_tracking.errors.EventRejected` for a JSON string nested too
    deeply for Python's parser."""
    if isinstance(value, dict):
        return Payload(value, OBJECT)
    if isinstance(value, list):
        return Payload(value, LIST)
    if not isinstance(value, str):
        return Payload(value, VALUE)
    return _decode_string(value)


_TOO_DEEP = "The payload is JSON nested too deeply to decode."


def _decode_string(text: str) -> Payload:
    try:
        return _decode_text(text)
    except RecursionError:  # parsed, but too deep to compare or encode again
        raise EventRejected({"event": [_TOO_DEEP]}) from None


def _decode_text(text: str) -> Payload:
    stripped = text.strip()
    if stripped[:1] in ("{", "[", '"') or stripped in ("null", "true", "false"):
        try:
            data = json.loads(text)
        except ValueError:
            return Payload(text, TEXT)
        if isinstance(data, str) and _looks_like_query(data):
            # A query string inside a JSON string (browser problem_check and friends):
            # store the answers as an object, keep the original for export.
            return Payload(_pairs_to_dict(parse_qsl(data, keep_blank_values=True)), JSON, text)
        return Payload(data, JSON, None if _json_round_trips(data, text) else text)
    if _looks_like_query(text):
        pairs = parse_qsl(text, keep_blank_values=True)
        data = _pairs_to_dict(pairs)
        try:
            same = urlencode(_dict_to_pairs(data)) == text
        except UnicodeEncodeError:  # a lone surrogate: limits.py refuses the event
            same = False
        return Payload(data, QUERY, None if same else text)
    return Payload(text, TEXT)


def _looks_like_query(text: str) -> bool:
    """``a=1&b=2``: an ``=``, no spaces, not a path or markup, and it parses."""
    return (
        "=" in text
        and " " not in text
        and not text.startswith(("/", "<", "{", "["))
        and bool(parse_qsl(text, keep_blank_values=True))
    )


def _json_round_trips(data: Any, text: str) -> bool:
    return _compact_dumps(data) == text


def _pairs_to_dict(pairs: list[tuple[str, str]]) -> dict[str, str | list[str]]:
    out: dict[str, str | list[str]] = {}
    for key, val in pairs:
        seen = out.get(key)
        if seen is None:
            out[key] = val
        elif isinstance(seen, list):
            seen.append(val)
        else:
            out[key] = [seen, val]
    return out


def _dict_to_pairs(data: dict[str, Any]) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for key, val in data.items():
        if isinstance(val, list):
            pairs.extend((key, str(item)) for item in val)
        else:
            pairs.append((key, str(val)))
    return pairs


def encode_payload(data: Any, format: str, raw: str | None = None) -> Any:
    """Give back the payload in the form it came in (the inverse of :func:`decode_payload`)."""
    if raw is not None:
        return raw
    if format == JSON:
        return _compact_dumps(data)
    if format == QUERY and isinstance(data, dict):
        return urlencode(_dict_to_pairs(data))
    return data
