"""What a mapping rule needs while it runs: settings, the rule, the built event's frame."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .entities import (
    CONTEXT,
    block_key,
    course_of,
    course_offering,
    ed_app,
    event_time,
    event_urn,
    iri,
    payload,
    person,
    platform_of,
)

ACTORS = ("anonymous", "user_id", "username")


@dataclass(frozen=True, slots=True)
class Settings:
    """How ids and the actor are built (a destination's options)."""

    #: Base IRI of the platform (``https://lms.example.org``); default: from the event's host.
    platform: str | None = None
    #: ``anonymous`` (default), ``user_id`` or ``username``: see :func:`.entities.person`.
    actor: str = "anonymous"
    #: Key of the anonymous ids (HMAC-SHA256); without it they are uuid5 of the user id.
    actor_secret: bytes | None = None


@dataclass(frozen=True, slots=True)
class Rule:
    """One row of the mapping table."""

    caliper_type: str
    action: str
    object_type: str
    build: Callable[[Any, Any], dict[str, Any] | None]
    generated: str = ""


class Build:
    """What one mapping needs while it runs: the line, its payload, ids."""

    def __init__(self, event_id: str, line: dict[str, Any], settings: Settings) -> None:
        self.event_id = event_id
        self.line = line
        self.data = payload(line)
        self.platform = platform_of(line, settings.platform)
        self.course = course_of(line)
        self.actor = person(line, self.platform, mode=settings.actor, secret=settings.actor_secret)

    def block(self, raw: Any, block_type: str) -> dict[str, Any] | None:
        key = block_key(raw, self.course, block_type)
        if key is None:
            return None
        return {"id": iri(self.platform, "xblock", key), "extensions": {"usage_key": key}}

    def event(self, rule: Rule, obj: dict[str, Any], part: str = "") -> dict[str, Any]:
        out: dict[str, Any] = {
            "@context": CONTEXT,
            "id": event_urn(self.event_id, part),
            "type": rule.caliper_type,
            "profile": PROFILES[rule.caliper_type],
            "actor": self.actor,
            "action": rule.action,
            "object": obj,
            "eventTime": event_time(self.line),
            "edApp": ed_app(self.platform),
            "extensions": {"edx_event_type": self.line.get("event_type")},
        }
        group = course_offering(self.line, self.platform)
        if group is not None:
            out["group"] = group
        return out


PROFILES = {
    "MediaEvent": "MediaProfile",
    "AssessmentItemEvent": "AssessmentProfile",
    "GradeEvent": "GradingProfile",
    "NavigationEvent": "ReadingProfile",
    "ViewEvent": "ReadingProfile",
    "Event": "GeneralProfile",
}
