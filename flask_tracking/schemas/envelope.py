"""Schemas of what the browser sends around an event: the envelope, not the payload.

Three shapes arrive at the ingest endpoints; each is a marshmallow schema declared like
the payload schemas (``spec.decl``), with the same fast check in front of marshmallow:

- :data:`BATCH`: the body of ``/events``, ``{"sent_at": <ms>, "events": [...]}``;
- :data:`BATCH_EVENT`: one item of ``events`` (our Logger);
- :data:`EDX_EVENT`: one event as edX's ``Logger.log`` posts it to ``/event``
  (``event_type``, ``event``, ``page``, ``courserun_key``), and
  :data:`NODE_EVENT`: the ``{tracking_event_type, node_id, event_data}`` form.

Identity fields in a body (``username``, ``user_id``, ``ip``, ``session``...) are not
declared, so never read: identity comes from the server.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from . import fields as tf
from .spec import build_schema, decl, fast_check

#: ``check(data) -> errors`` (``{}`` when the data fits its schema).
EnvelopeCheck = Callable[[Any], dict[str, Any]]


def _envelope(name: str, what: str, decls: list[Any]) -> EnvelopeCheck:
    schema = build_schema(name, decls)
    fast = fast_check(decls)
    assert fast is not None, f"{name}: every envelope field needs a fast check"
    validate = schema.validate
    not_an_object: Final = {"_schema": [f"{what} must be a JSON object."]}

    def check(data: Any) -> dict[str, Any]:
        if not isinstance(data, dict):
            return not_an_object
        return {} if fast(data) else validate(data)

    check.__doc__ = f"Check {what.lower()} against the {name} schema."
    return check


BATCH: Final = _envelope(
    "BatchBody",
    "The body",
    [
        decl("events", "list", "The events, oldest first.", required=True, field=tf.List()),
        decl(
            "sent_at",
            "any",
            "When the Logger sent the batch, by its clock (ms since the epoch); a value"
            " that is not a valid time turns clock-skew correction off for the batch.",
        ),
    ],
)

BATCH_EVENT: Final = _envelope(
    "BatchEvent",
    "Each event",
    [
        decl("id", "uuid", "The event's id, made by the Logger.", required=True, field=tf.Uuid()),
        decl("event_type", "string", "The event type.", required=True),
        decl("event", "any", "The payload (an object, a JSON string, a query string...)."),
        decl("page", "string", "The page the event happened on.", nullable=True),
        decl("time", "time", "When it happened, by the browser's clock.", field=tf.ClientTime()),
        decl("seq", "integer", "The event's number in its tab (for loss estimates)."),
        decl("name", "string", "The event's name, when it differs from its type."),
    ],
)

EDX_EVENT: Final = _envelope(
    "EdxEvent",
    "The body",
    [
        decl("event_type", "string", "The event type.", required=True),
        decl("event", "any", "The payload, usually a JSON string."),
        decl("page", "string", "The page the event happened on.", nullable=True),
        decl("courserun_key", "string", "The course run of the page.", nullable=True),
    ],
)

NODE_EVENT: Final = _envelope(
    "NodeEvent",
    "The body",
    [
        decl("tracking_event_type", "string", "The event type.", required=True),
        decl("node_id", "any", "The course content node the event is about."),
        decl("event_data", "any", "The payload."),
    ],
)
