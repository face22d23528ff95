"""What the databases can hold: the documented limits every event is checked against.

The check runs on every path (browser, server, import, spool) after the processors and
before the insert, so a value that SQLite or PostgreSQL would refuse is answered as that
event's 4xx reason (and the event kept in the failed table) instead of failing the
insert of its whole batch or being mistaken for "the database is unavailable". The two
databases then also agree: what one stores, the other stores the same.

The limits (``docs/ingest.md``):

- text: no NUL character, no lone surrogate (text is UTF-8 in both databases);
- indexed text (``event_type``, ``username``, ``context.course_id``): at most
  :data:`INDEXED_TEXT_BYTES` bytes of UTF-8 and no control characters (PostgreSQL's
  btree entries hold at most 2,704 bytes);
- integers (columns and anywhere in a payload or context): within signed 64 bits;
- numbers: finite (no NaN or Infinity: they are not JSON, and SQLite's ``json_extract``
  fails on the whole table when one is stored);
- JSON values nested at most :data:`MAX_DEPTH` levels, of JSON types only;
- the stored size of an event (payload, context and text fields as UTF-8) at most
  ``TRACKING_MAX_EVENT_BYTES``.
"""

from __future__ import annotations

import json
import operator
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

from .event import CONTEXT_COLUMNS, FIELDS
from .rows import Encoded, text_value

#: Bytes an indexed text value may have (well under PostgreSQL's 2,704-byte btree entry).
INDEXED_TEXT_BYTES: Final = 1024
#: Levels a JSON value (payload, context) may nest.
MAX_DEPTH: Final = 32
INT64_MIN: Final = -(2**63)
INT64_MAX: Final = 2**63 - 1
#: Problems named per event at most (the rest are summed up).
MAX_PROBLEMS: Final = 5

_TEXT_KEYS: Final = tuple(f.name for f in FIELDS if f.kind in ("id", "text", "code"))
_INDEXED: Final = frozenset(
    [f.name for f in FIELDS if f.indexed] + [k for k, flag in CONTEXT_COLUMNS.items() if flag]
)
_INT_KEYS: Final = tuple(f.name for f in FIELDS if f.kind == "int")
_TIME_KEYS: Final = tuple(f.name for f in FIELDS if f.kind == "time")
_JSON_KEYS: Final = tuple(f.name for f in FIELDS if f.kind == "json")
_NULLABLE: Final = frozenset(f.name for f in FIELDS if f.nullable)
_REQUIRED_TEXT: Final = tuple(k for k in _TEXT_KEYS if k not in _NULLABLE)
_INDEXED_KEYS: Final = tuple(f.name for f in FIELDS if f.indexed)
_text_values = operator.itemgetter(*_TEXT_KEYS)
_json_values = operator.itemgetter(*_JSON_KEYS)
_CONTEXT_AT: Final = _JSON_KEYS.index("context")
_MISS: Final[Any] = object()
#: C0 and C1 control characters, and the line and paragraph separators.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
#: Runs of digits long enough to be an integer outside 64 bits.
_LONG_DIGITS = re.compile(r"\d{19,}")
_strict_dumps = json.JSONEncoder(allow_nan=False, ensure_ascii=False, check_circular=False).encode


def text_problem(value: str, *, indexed: bool = False) -> str | None:
    """Why a text column cannot hold ``value``, or ``None``."""
    if "\x00" in value:
        return "Must not contain a NUL character."
    if value.isascii():
        size = len(value)
    else:
        try:
            size = len(value.encode("utf-8"))
        except UnicodeEncodeError:
            return "Must not contain a lone surrogate (not valid Unicode)."
    if indexed:
        if size > INDEXED_TEXT_BYTES:
            return f"Longer than {INDEXED_TEXT_BYTES} bytes ({size})."
        if _CONTROL.search(value):
            return "Must not contain control characters."
    return None


def problems(event: Mapping[str, Any], max_bytes: int) -> dict[str, list[str]]:
    """Why the databases cannot hold ``event``, keyed by field (``{}``: they can)."""
    return check(event, max_bytes)[0]


def check(event: Mapping[str, Any], max_bytes: int) -> tuple[dict[str, list[str]], Encoded | None]:
    """``(problems, encoded JSON columns)``; the encoding is ``None`` when there are problems.

    Most events pass :func:`_clean`, a few C-speed checks over all the values at once;
    only an event that fails one of them is looked at field by field, to name what is
    wrong.
    """
    clean = _clean(event)
    if clean is None:
        found = _field_problems(event, max_bytes)
        return (found, None) if found else ({}, _encode(event))
    size, encoded = clean
    if size > max_bytes:
        return {"_schema": [_too_big(size, max_bytes)]}, None
    return {}, encoded


def _too_big(size: int, max_bytes: int) -> str:
    return f"The event is {size} bytes stored; the limit is {max_bytes} (TRACKING_MAX_EVENT_BYTES)."


def _utf8_size(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-8"))


def _encode(event: Mapping[str, Any]) -> Encoded:
    return tuple(None if v is None else _strict_dumps(v) for v in _json_values(event))


#: Digits to "0", every other byte to " ": a run of 19 "0" is a number of 19 digits.
_DIGITS = bytes(48 if 48 <= b <= 57 else 32 for b in range(256))
_NINETEEN_DIGITS = b"0" * 19


def _containers_within(value: Any, limit: int) -> bool:
    """Whether lists and dicts nest at most ``limit`` levels (scalars are not visited)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return False
        children = item.values() if type(item) is dict else item
        for child in children:
            if type(child) is dict or type(child) is list:
                stack.append((child, depth + 1))
    return True


def _clean(event: Mapping[str, Any]) -> tuple[int, Encoded] | None:
    """The stored size and JSON encoding of an event that surely passes every limit,
    else ``None``."""
    try:
        texts = _text_values(event)
        joined = "".join([t for t in texts if t is not None])
        if "\x00" in joined:
            return None
        size = _utf8_size(joined)
        for key in _REQUIRED_TEXT:
            if event[key] is None:
                return None
        for key in _INDEXED_KEYS:
            value = event[key]
            if value is not None and (
                _utf8_size(value) > INDEXED_TEXT_BYTES or _CONTROL.search(value)
            ):
                return None
        for key in _INT_KEYS:
            value = event[key]
            if value is not None and not _int64(value):
                return None
        for key in _TIME_KEYS:
            value = event[key]
            if value is None:
                if key not in _NULLABLE:
                    return None
            elif type(value) is not datetime or value.tzinfo is None:
                return None
        context = event["context"]
        if type(context) is not dict:
            return None
        course = context.get("course_id")
        if course is not None and not (
            type(course) is str
            and _utf8_size(course) <= INDEXED_TEXT_BYTES
            and not _CONTROL.search(course)
        ):
            return None
        encoded: list[str | None] = []
        for index, value in enumerate(_json_values(event)):
            if value is None:
                encoded.append(None)
                continue
            checked = _context_checked(value) if index == _CONTEXT_AT else _json_checked(value)
            if checked is None:
                return None
            encoded.append(checked[0])
            size += checked[1]
        return size, tuple(encoded)
    except (TypeError, ValueError, KeyError, UnicodeEncodeError, RecursionError):
        return None


def _json_checked(value: Any) -> tuple[str, int] | None:
    """``(JSON text, its UTF-8 size)`` of a value that surely passes the JSON limits, else
    ``None`` (it may still pass: :func:`_field_problems` says)."""
    text = _strict_dumps(value)
    data = text.encode("utf-8")
    if b"\\u0000" in data or _NINETEEN_DIGITS in data.translate(_DIGITS):
        return None
    if text.count("[") + text.count("{") > MAX_DEPTH and not _containers_within(value, MAX_DEPTH):
        return None
    return text, len(data)


#: Contexts already checked: the events of a batch share theirs (one learner, one page).
#: Keyed by the items with their types (``1``, ``1.0`` and ``True`` are equal keys).
_context_memo: dict[tuple[Any, ...], tuple[str, int] | None] = {}
CONTEXT_MEMO_SIZE: Final = 512


def _context_checked(context: dict[str, Any]) -> tuple[str, int] | None:
    """:func:`_json_checked` of a context, remembered when its values are all scalars."""
    key = tuple([(type(k), k, type(v), v) for k, v in context.items()])
    try:
        hit = _context_memo.get(key, _MISS)
    except TypeError:  # a value that is a list or an object: not remembered
        return _json_checked(context)
    if hit is _MISS:
        hit = _json_checked(context)
        if len(_context_memo) >= CONTEXT_MEMO_SIZE:
            _context_memo.clear()
        _context_memo[key] = hit
    return hit


def _field_problems(event: Mapping[str, Any], max_bytes: int) -> dict[str, list[str]]:
    """Every limit ``event`` breaks, named by field."""
    found: dict[str, list[str]] = {}
    size = 0
    for key in _TEXT_KEYS:
        value = event.get(key)
        if value is None:
            if key not in _NULLABLE:
                found[key] = ["Missing data for required field."]
            continue
        if not isinstance(value, str):
            found[key] = ["Not a valid string."]
            continue
        size += len(value.encode("utf-8", "surrogatepass"))
        why = text_problem(value, indexed=key in _INDEXED)
        if why:
            found[key] = [why]
    for key in _INT_KEYS:
        value = event.get(key)
        if value is not None and not _int64(value):
            found[key] = ["Not an integer within 64 bits."]
    for key in _TIME_KEYS:
        value = event.get(key)
        if value is None and key in _NULLABLE:
            continue
        if not isinstance(value, datetime) or value.tzinfo is None:
            found[key] = ["Not an aware datetime."]
    for key in _JSON_KEYS:
        value = event.get(key)
        if value is None:
            continue
        encoded, json_why = _json_size(value)
        if json_why:
            found[key] = json_why
        size += encoded
    context = event.get("context")
    if isinstance(context, Mapping):
        for name, indexed in CONTEXT_COLUMNS.items():
            column = text_value(context.get(name))
            column_why = text_problem(column, indexed=indexed) if column is not None else None
            if column_why:
                found[f"context.{name}"] = [column_why]
    elif context is not None:
        found["context"] = ["Not an object."]
    if size > max_bytes and not found:
        found["_schema"] = [_too_big(size, max_bytes)]
    return found


def _int64(value: Any) -> bool:
    return type(value) is int and INT64_MIN <= value <= INT64_MAX


def _json_size(value: Any) -> tuple[int, list[str]]:
    """The encoded size of a JSON value and its problems (C-speed when there are none)."""
    try:
        text = _strict_dumps(value)
        size = len(text.encode("utf-8")) if not text.isascii() else len(text)
    except (ValueError, TypeError, UnicodeEncodeError, RecursionError):
        return 0, json_problems(value) or ["Not storable as JSON."]
    suspicious = (
        "\\u0000" in text
        or (text.count("[") + text.count("{")) > MAX_DEPTH
        or _LONG_DIGITS.search(text) is not None
    )
    if suspicious:
        return size, json_problems(value)
    return size, []


def json_problems(value: Any) -> list[str]:
    """Every reason (at most :data:`MAX_PROBLEMS`) why ``value`` is not storable JSON,
    each naming the path of the value (``answers.q1: ...``)."""
    out: list[str] = []
    stack: list[tuple[Any, str, int]] = [(value, "", 1)]
    while stack and len(out) < MAX_PROBLEMS:
        item, path, depth = stack.pop()
        where = f"{path}: " if path else ""
        if depth > MAX_DEPTH:
            out.append(f"{where}Nested more than {MAX_DEPTH} levels deep.")
            continue
        if isinstance(item, str):
            why = text_problem(item)
            if why:
                out.append(where + why)
        elif isinstance(item, bool) or item is None:
            continue
        elif isinstance(item, int):
            if not _int64(item):
                out.append(f"{where}An integer outside 64 bits.")
        elif isinstance(item, float):
            if item != item or item in (float("inf"), float("-inf")):
                out.append(f"{where}{item!r} is not a JSON number.")
        elif isinstance(item, Mapping):
            for key, child in item.items():
                if not isinstance(key, str):
                    out.append(f"{where}A key that is not a string ({type(key).__name__}).")
                    continue
                why = text_problem(key)
                if why:
                    out.append(f"{where}A key: {why}")
                    continue
                stack.append((child, f"{path}.{key}" if path else key, depth + 1))
        elif isinstance(item, list | tuple):
            for index, child in enumerate(item):
                stack.append((child, f"{path}[{index}]", depth + 1))
        else:
            out.append(f"{where}Not a JSON value ({type(item).__name__}).")
    return out
