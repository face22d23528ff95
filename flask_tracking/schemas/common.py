"""The envelope (the fields common to every event) and field declarations shared by families.

The envelope is what surrounds a payload in a tracking-log line: ``username``, ``time``,
``event_type``, ``event`` (the payload) and so on. :data:`ENVELOPE_SCHEMA` checks the types
of those fields leniently, the way real logs hold them (``page`` and ``session`` may be
``null``, ``context`` may be a JSON string, old lines lack ``referer`` / ``name``).
"""

from __future__ import annotations

from typing import Any, Final

from .spec import Decl, FieldSpec, build_schema, decl

#: Where an event may come from. ``mobile`` is checked like ``browser``, ``task`` like
#: ``server``.
SOURCES: Final = ("browser", "server", "mobile", "task")

_ENVELOPE: Final[tuple[Decl, ...]] = (
    decl(
        "username",
        "string",
        "Username of the user who caused the event; empty for anonymous users.",
    ),
    decl(
        "session",
        "string",
        "Key of the user's session (32 hex digits). Often missing or null on server events.",
        nullable=True,
    ),
    decl(
        "time",
        "string",
        "UTC time of the event, `YYYY-MM-DDThh:mm:ss.xxxxxx`. Real logs add `+00:00`, "
        "or drop the fraction when the microseconds are zero.",
    ),
    decl("ip", "string", "IP address of the user.", nullable=True),
    decl("agent", "string", "Browser user-agent string.", nullable=True),
    decl(
        "page",
        "string",
        "URL of the page the user was on; null for most server events.",
        nullable=True,
    ),
    decl("host", "string", "Host name of the server that logged the event."),
    decl("referer", "string", "HTTP referer; missing in old logs.", nullable=True),
    decl("accept_language", "string", "HTTP Accept-Language; missing in old logs.", nullable=True),
    decl(
        "event_source",
        "string",
        "Where the event came from: `browser`, `server`, `task` or `mobile`.",
    ),
    decl(
        "event_type",
        "string",
        "Type of the event (see the tables below); for server request events a URL path.",
        required=True,
    ),
    decl(
        "name",
        "string",
        "Newer logs: the event's name, which may differ from `event_type` "
        "(`edx.ui.lms.sequence.next_selected` logged with type `seq_next`).",
    ),
    decl(
        "context",
        "object or string",
        "Course and user context (`course_id`, `org_id`, `user_id`, `path`, `module`, ...); "
        "one real line has it as a JSON string.",
    ),
    decl(
        "event",
        "any",
        'The payload: an object, a JSON string, a query string, a list or `""`, '
        "depending on the type.",
    ),
)

#: The documented envelope fields.
COMMON_FIELDS: Final[tuple[FieldSpec, ...]] = tuple(d.spec for d in _ENVELOPE)

#: Lenient schema of a whole tracking-log line (unknown keys are kept).
ENVELOPE_SCHEMA: Final = build_schema("EventEnvelope", _ENVELOPE)


def envelope_errors(event: Any) -> dict[str, Any]:
    """marshmallow-style errors of a whole event's envelope, ``{}`` when it is fine."""
    if not isinstance(event, dict):
        return {"_schema": ["Invalid event: expected an object."]}
    return ENVELOPE_SCHEMA.validate(event)


# --- Declarations shared by the capa families -----------------------------------------


def problem_id(action: str) -> Decl:
    """The ``problem_id`` of a server capa event."""
    return decl(
        "problem_id",
        "string",
        f"Usage id of the problem being {action} (`i4x://...` or `block-v1:...`).",
        required=True,
    )


_STATE: Final = "Problem state (`student_answers`, `correct_map`, `seed`, `done`, `input_state`)."


def state(name: str = "state", description: str = _STATE) -> Decl:
    """A problem state: an object in real logs, documented as "string / JSON"."""
    return decl(name, "object or string", description, required=True)


def answers(*, required: bool = True) -> Decl:
    """The learner's answers of a server capa event, keyed by input id."""
    return decl(
        "answers",
        "object or string",
        "The learner's answers by input id; a value is a string or a list of strings.",
        required=required,
    )


def failure(values: str, *, required: bool = True) -> Decl:
    """The reason of a ``*_fail`` server event (known values listed, others accepted)."""
    return decl(
        "failure",
        "string",
        f"Why the action failed. Documented values: {values}.",
        required=required,
    )
