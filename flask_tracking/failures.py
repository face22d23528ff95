"""Failed-events rows: built here and nowhere else.

Whatever went wrong (a malformed request, an invalid payload, a value the database
cannot hold, a failing privacy processor, a torn spool line), what is kept in
``tracking_failed_events`` is made by :meth:`FailureRecorder.row`, so every row

- can be stored by both databases (lone surrogates and NULs written as escapes),
- is bounded: ``raw`` keeps at most ``keep_bytes`` (a sample of the head of anything
  larger, with its size and SHA-256), and the table keeps the newest
  ``TRACKING_MAX_FAILED_EVENTS`` rows (``SqlStore.prune_failed``),
- holds no raw identity when ``TRACKING_ANONYMIZE`` is on: usernames, user ids, IPs and
  sessions found in the raw text are anonymised like stored events,
- is kept once when its input is read again (:func:`not_kept_yet`: a log imported
  twice refuses the same lines twice, and the second time adds no row).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import Engine, select

from .models import failed_table
from .privacy import Anonymizer

#: Bytes of ``raw`` a failed row keeps (an event is at most TRACKING_MAX_EVENT_BYTES).
KEEP_RAW_BYTES: Final = 64 * 1024
#: Bytes kept of a request body refused as too large: a sample, so junk cannot fill a disk.
SAMPLE_BYTES: Final = 2 * 1024
#: Longest ``event_type`` / ``event_id`` / ``origin`` / ``detail`` text kept.
KEEP_TEXT: Final = 1024


#: Levels of a refused structure kept; deeper parts are replaced by a note.
KEEP_DEPTH: Final = 64


def _printable(value: Any) -> str:
    """``str(value)``, or a note when the object cannot be printed (its ``__str__`` raised)."""
    try:
        return str(value)
    except Exception:
        return f"[a {type(value).__name__} that cannot be printed]"


def _capped(value: Any, depth: int) -> Any:
    """``value`` as plain JSON data, whatever it holds: keys JSON cannot have (a tuple)
    and values it cannot hold (a set, an object) as their text, and everything nested
    deeper than ``depth`` (a cycle too) replaced by a note; at most ``KEEP_DEPTH`` levels
    of recursion here."""
    if isinstance(value, Mapping | list | tuple) and depth <= 0:
        return f"[nested deeper than {KEEP_DEPTH} levels: not kept]"
    if isinstance(value, Mapping):
        return {
            (k if isinstance(k, str) else _printable(k)): _capped(v, depth - 1)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_capped(v, depth - 1) for v in value]
    if value is None or isinstance(value, str | bool | int | float):
        return value
    return _printable(value)


def storable(text: str) -> str:
    """Text any database can hold: lone surrogates and NULs written as escapes."""
    if text.isascii() and "\x00" not in text:
        return text
    escaped = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return escaped.replace("\x00", "\\x00")


def _clip_text(value: Any) -> str | None:
    if value is None:
        return None
    text = storable(value if isinstance(value, str) else str(value))
    return text if len(text) <= KEEP_TEXT else text[: KEEP_TEXT - 1] + "…"


def _storable_json(value: Any) -> Any:
    """A JSON value (the reasons) with every string storable."""
    if isinstance(value, str):
        return storable(value)
    if isinstance(value, Mapping):
        return {storable(str(k)): _storable_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_storable_json(v) for v in value]
    if value is None or isinstance(value, bool | int):
        return value
    return storable(str(value))


class FailureRecorder:
    """Builds failed-events rows for one app.

    :param anonymizer: the app's anonymiser when ``TRACKING_ANONYMIZE`` is on.
    :param keep_bytes: bytes of ``raw`` kept per row.
    """

    def __init__(self, anonymizer: Anonymizer | None, keep_bytes: int = KEEP_RAW_BYTES) -> None:
        self.anonymizer = anonymizer
        self.keep_bytes = keep_bytes

    def row(
        self,
        origin: str,
        raw: Any,
        reasons: Mapping[str, Any],
        *,
        event_id: Any = None,
        event_type: Any = None,
        detail: str | None = None,
        keep_bytes: int | None = None,
    ) -> dict[str, Any]:
        """The failed row of ``raw`` (a request body part, a line, an event, bytes)."""
        reasons = dict(reasons)
        limit = self.keep_bytes if keep_bytes is None else keep_bytes
        text = self._text(raw)
        data = text.encode("utf-8", "backslashreplace")
        if len(data) > limit:
            digest = hashlib.sha256(data).hexdigest()
            reasons["_truncated"] = [
                f"Only the first {limit} of {len(data)} bytes were kept (sha256 {digest})."
            ]
            text = data[:limit].decode("utf-8", "ignore")
        if self.anonymizer is not None:
            text = self.anonymizer.scrub_text(text)
        return {
            "failed_at": datetime.now(UTC).replace(tzinfo=None),
            "origin": _clip_text(origin) or "unknown",
            "event_id": _clip_text(event_id if isinstance(event_id, str) else None),
            "event_type": _clip_text(event_type if isinstance(event_type, str) else None),
            "raw": storable(text),
            "reasons": _storable_json(reasons),
            "detail": _clip_text(detail),
        }

    def _text(self, raw: Any) -> str:
        """``raw`` as text; a structure's identity fields anonymised when the app
        anonymises (text is scrubbed after the cut, see :meth:`row`)."""
        if isinstance(raw, bytes | bytearray):
            return bytes(raw).decode("utf-8", "replace")
        if isinstance(raw, str):
            return raw
        if self.anonymizer is not None and isinstance(raw, Mapping):
            raw = self.anonymizer.scrub(raw)
        try:
            return json.dumps(raw, default=str, ensure_ascii=False)
        except Exception:  # too deep, a cycle, a tuple key, an object that cannot print
            return json.dumps(_capped(raw, KEEP_DEPTH), ensure_ascii=False)


#: Origins whose inputs are read again on purpose (importing the same files twice).
REREAD_ORIGINS: Final = frozenset({"import"})
_LOOKUP = 500


def not_kept_yet(engine: Engine, rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """``rows`` without those of :data:`REREAD_ORIGINS` already kept: the same origin,
    ``detail`` (file and line) and ``raw``. Others pass as they are, with no query."""
    details = sorted({r["detail"] for r in rows if r["origin"] in REREAD_ORIGINS and r["detail"]})
    if not details:
        return rows if isinstance(rows, list) else list(rows)
    table = failed_table
    kept: set[tuple[str, str, str]] = set()
    with engine.connect() as conn:
        for start in range(0, len(details), _LOOKUP):
            part = details[start : start + _LOOKUP]
            query = select(table.c.origin, table.c.detail, table.c.raw).where(
                table.c.detail.in_(part), table.c.origin.in_(sorted(REREAD_ORIGINS))
            )
            kept.update((o, d, r) for o, d, r in conn.execute(query))
    return [r for r in rows if (r["origin"], r["detail"], r["raw"]) not in kept]
