"""Tracking events as xAPI 1.0.3 statements: pure functions, no I/O.

:func:`to_statement` turns one edX tracking-log object (``OutgoingEvent.line``) into a
statement, or ``None`` when its type has no mapping (and no generic verb is configured)
or it names no learner. The verbs, activity types and extensions follow the mapping
Open edX's event-routing-backends uses for the same events (see ``docs/lrs.md`` for the
table); :data:`MAPPED_TYPES` lists the event types with a mapping.

The statement id is a UUID 5 of the event id under :data:`STATEMENT_NAMESPACE`: the same
event always makes the same statement, so a re-send is recognised by the LRS.
"""

from __future__ import annotations

from collections.abc import Mapping as MappingABC
from typing import Any

from .families import BUILDERS, MAPPED_TYPES, Parts
from .reading import (
    STATEMENT_NAMESPACE,
    Mapping,
    Statement,
    activity,
    context_of,
    page_iri,
    payload,
    statement_id,
    text,
)
from .vocabulary import VERBS

__all__ = [
    "MAPPED_TYPES",
    "STATEMENT_NAMESPACE",
    "Mapping",
    "actor",
    "statement_id",
    "to_statement",
]


def actor(line: MappingABC[str, Any], mapping: Mapping) -> dict[str, Any] | None:
    """The Agent: an account on the platform named by the user id (or user name)."""
    if callable(mapping.actor):
        return mapping.actor(line)
    if mapping.actor == "username":
        name = text(line.get("username")) or text(context_of(line).get("username"))
    else:  # never a user id from the payload: anonymisation only replaces the context's
        name = text(context_of(line).get("user_id"))
    if name is None:
        return None
    return {"objectType": "Agent", "account": {"homePage": mapping.platform_url, "name": name}}


def _generic(line: MappingABC[str, Any], mapping: Mapping) -> Parts:
    kind = str(line.get("event_type"))
    object_id = page_iri(line, mapping) or mapping.iri("event", kind)
    ext_key = mapping.iri("xapi", "extensions", "event")
    obj = {"objectType": "Activity", "id": object_id, "definition": {"name": {"en-US": kind[:200]}}}
    return "", obj, None, {ext_key: payload(line)}


def to_statement(line: MappingABC[str, Any], event_id: str, mapping: Mapping) -> Statement | None:
    """The xAPI statement of one event, or ``None`` (no mapping, or no learner)."""
    agent = actor(line, mapping)
    if agent is None:
        return None
    kind = line.get("event_type")
    builder = BUILDERS.get(kind) if isinstance(kind, str) else None
    built = builder(line, mapping, payload(line)) if builder else None
    if built is None:
        if mapping.generic_verb is None:
            return None
        built = _generic(line, mapping)
    verb, obj, result, extensions = built
    context: dict[str, Any] = {"platform": mapping.platform_name}
    course = text(context_of(line).get("course_id"))
    if course:
        parent = activity(mapping.iri("course", course), "course")
        context["contextActivities"] = {"parent": [parent]}
    if extensions:
        context["extensions"] = extensions
    verb_id = VERBS[verb] if verb else mapping.generic_verb
    statement: Statement = {
        "id": statement_id(event_id),
        "actor": agent,
        "verb": {"id": verb_id, "display": {"en-US": verb or str(verb_id).rsplit("/", 1)[-1]}},
        "object": obj,
        "context": context,
        "timestamp": line.get("time"),
    }
    if result:
        statement["result"] = result
    return statement
