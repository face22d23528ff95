"""The one definition of an event: its keys, how each is stored, where it goes in an edX line.

Inside the package an event is a plain dict with exactly the keys of :class:`Event`
(processors return a new dict, never change one). Everything that knows the keys takes
them from here: the table's columns (``models.py``), the store's row encoders
(``store.py``), the tracking-log mapping (``logformat.py``), the spool's encoding
(``spool.py``) and the database limits (``limits.py``). Add a key here and they follow.

Each key is annotated with :class:`Stored`: the kind of value (which decides the column
type and the limits that apply), whether it is indexed, and its position in an edX
tracking-log line (``None``: not part of the line, only ours).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Final, Literal, TypedDict, get_args, get_type_hints

#: ``id``: the event's UUID; ``text``: any string; ``code``: a short value we set
#: ourselves; ``time``: an aware UTC datetime; ``json``: a JSON value; ``int``: an integer.
Kind = Literal["id", "text", "code", "time", "json", "int"]


@dataclass(frozen=True, slots=True)
class Stored:
    """How one key of an event is stored."""

    kind: Kind
    #: The column is the first part of an index ``(column, time)``: its values are capped
    #: in bytes (see ``limits.INDEXED_TEXT_BYTES``).
    indexed: bool = False
    #: Position of the key in an edX tracking-log line, or ``None``.
    line: int | None = None


class Event(TypedDict):
    """An event, as processors and backends see it."""

    event_id: Annotated[str, Stored("id")]
    name: Annotated[str | None, Stored("text", line=0)]
    event_type: Annotated[str, Stored("text", indexed=True, line=11)]
    event_source: Annotated[str, Stored("text", line=12)]
    time: Annotated[datetime, Stored("time", line=10)]
    username: Annotated[str | None, Stored("text", indexed=True, line=2)]
    session: Annotated[str | None, Stored("text", line=3)]
    ip: Annotated[str | None, Stored("text", line=4)]
    agent: Annotated[str | None, Stored("text", line=5)]
    host: Annotated[str | None, Stored("text", line=6)]
    referer: Annotated[str | None, Stored("text", line=7)]
    accept_language: Annotated[str | None, Stored("text", line=8)]
    page: Annotated[str | None, Stored("text", line=13)]
    #: The decoded payload; ``event_format`` says the form it came in and ``event_raw``
    #: keeps the original string when re-encoding would not reproduce it.
    event: Annotated[Any, Stored("json", line=9)]
    event_format: Annotated[str, Stored("code")]
    event_raw: Annotated[str | None, Stored("text")]
    context: Annotated[dict[str, Any], Stored("json", line=1)]
    #: "valid" (checked by a schema) or "unvalidated" (a type without a schema).
    schema_status: Annotated[str, Stored("code")]
    #: The version of the event type's schema the payload was validated against (``1``
    #: for the built-in types; ``None`` for types without a schema). See docs/catalog.md.
    schema_version: Annotated[int | None, Stored("int")]
    received_at: Annotated[datetime, Stored("time")]
    client_time: Annotated[datetime | None, Stored("time")]
    clock_skew_ms: Annotated[int | None, Stored("int")]
    seq: Annotated[int | None, Stored("int")]
    #: For imported lines: the original key order and the values our columns cannot
    #: reproduce exactly, so export gives back the line as it came.
    original: Annotated[dict[str, Any] | None, Stored("json")]


@dataclass(frozen=True, slots=True)
class Field:
    """One key of :class:`Event` with its storage (derived from the annotations)."""

    name: str
    kind: Kind
    nullable: bool
    indexed: bool
    line: int | None


def _fields() -> tuple[Field, ...]:
    out = []
    for name, hint in get_type_hints(Event, include_extras=True).items():
        base, stored = get_args(hint)
        nullable = type(None) in get_args(base) or base is Any
        out.append(Field(name, stored.kind, nullable, stored.indexed, stored.line))
    return tuple(out)


#: Every key of an event, in storing order.
FIELDS: Final[tuple[Field, ...]] = _fields()
KEYS: Final[tuple[str, ...]] = tuple(f.name for f in FIELDS)
#: Keys holding datetimes.
TIME_KEYS: Final[tuple[str, ...]] = tuple(f.name for f in FIELDS if f.kind == "time")
#: Keys of an edX tracking-log line, in edX's usual order.
LINE_KEYS: Final[tuple[str, ...]] = tuple(
    f.name for f in sorted((f for f in FIELDS if f.line is not None), key=lambda f: f.line or 0)
)

#: Context keys that also get a column of their own (for queries and routing), as text;
#: ``True``: indexed with the time.
CONTEXT_COLUMNS: Final[dict[str, bool]] = {"course_id": True, "org_id": False, "user_id": False}
#: Every column of ``tracking_events`` after its primary key, in order.
COLUMNS: Final[tuple[str, ...]] = (*KEYS, *CONTEXT_COLUMNS)
#: The identity keys: anonymised when ``TRACKING_ANONYMIZE`` is on, at the top level and
#: as copies inside the context.
IDENTITY_KEYS: Final[tuple[str, ...]] = ("username", "user_id", "ip", "session")


def new_event(**values: Any) -> Event:
    """An event with every key: ``values`` given, ``None`` for the rest (context: ``{}``)."""
    event: dict[str, Any] = dict.fromkeys(KEYS)
    event["context"] = {}
    event.update(values)
    if len(event) != len(KEYS):
        unknown = sorted(set(event) - set(KEYS))
        raise TypeError(f"Not event keys: {', '.join(unknown)}.")
    return event  # type: ignore[return-value]
