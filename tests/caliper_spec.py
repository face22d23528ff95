"""A test-only validator of IMS Caliper 1.2 envelopes, written from the specification.

The official Caliper 1.2 JSON Schemas are not published in a package registry this
project can install from, so this checker was written independently of the code under
test, from the Caliper Analytics 1.2 specification's tables: the envelope's properties,
each event type's required properties and its permitted actions, actor, object, target,
generated and profile, and the required properties and value types of the entities the
mapping uses. It refuses properties the specification does not define (outside
``extensions``). :func:`problems` returns every problem found; ``[]`` means valid.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

CONTEXT = "http://purl.imsglobal.org/ctx/caliper/v1p2"
UUID_URN = re.compile(
    r"^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[1-5][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"
)
IRI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:[^\s<>\"{}|\\^`]+$")
DATETIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
DURATION = re.compile(
    r"^P(?!$)(\d+Y)?(\d+M)?(\d+W)?(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+(\.\d+)?S)?)?$"
)

MEDIA_ACTIONS = {
    "Started",
    "Ended",
    "Paused",
    "Resumed",
    "Restarted",
    "ForwardedTo",
    "JumpedTo",
    "ChangedResolution",
    "ChangedSize",
    "ChangedSpeed",
    "ChangedVolume",
    "EnabledClosedCaptioning",
    "DisabledClosedCaptioning",
    "EnteredFullScreen",
    "ExitedFullScreen",
    "Muted",
    "Unmuted",
    "OpenedPopout",
    "ClosedPopout",
}
#: The action vocabulary (a generic Event may use any of them).
ACTIONS = MEDIA_ACTIONS | {
    "Abandoned",
    "Accepted",
    "Activated",
    "Added",
    "Archived",
    "Attached",
    "Bookmarked",
    "Changed",
    "Classified",
    "Commented",
    "Completed",
    "Copied",
    "Created",
    "Deactivated",
    "Declined",
    "Deleted",
    "Described",
    "Disabled",
    "Downloaded",
    "Enabled",
    "Graded",
    "Highlighted",
    "Hid",
    "Identified",
    "Linked",
    "LoggedIn",
    "LoggedOut",
    "MarkedAsRead",
    "MarkedAsUnread",
    "Modified",
    "NavigatedTo",
    "OptedIn",
    "OptedOut",
    "Posted",
    "Printed",
    "Published",
    "Questioned",
    "Ranked",
    "Recommended",
    "Removed",
    "Reset",
    "Retrieved",
    "Returned",
    "Reviewed",
    "Saved",
    "Searched",
    "Sent",
    "Shared",
    "Showed",
    "Skipped",
    "Submitted",
    "Subscribed",
    "Tagged",
    "TimedOut",
    "Unpublished",
    "Unsubscribed",
    "Uploaded",
    "Used",
    "Viewed",
}
PROFILES = {
    "AnnotationProfile",
    "AssessmentProfile",
    "AssignableProfile",
    "FeedbackProfile",
    "ForumProfile",
    "GeneralProfile",
    "GradingProfile",
    "MediaProfile",
    "ReadingProfile",
    "ResourceManagementProfile",
    "SearchProfile",
    "SessionProfile",
    "SurveyProfile",
    "ToolLaunchProfile",
    "ToolUseProfile",
}
AGENTS = {
    "Agent",
    "Person",
    "SoftwareApplication",
    "Organization",
    "CourseOffering",
    "CourseSection",
    "Group",
}
ORGANIZATIONS = {"Organization", "CourseOffering", "CourseSection", "Group"}
MEDIA_OBJECTS = {"MediaObject", "AudioObject", "ImageObject", "VideoObject"}
RESOURCES = MEDIA_OBJECTS | {
    "DigitalResource",
    "DigitalResourceCollection",
    "AssessmentItem",
    "Assessment",
    "Assignable",
    "Chapter",
    "Document",
    "Frame",
    "Page",
    "WebPage",
    "Thread",
    "Forum",
    "Message",
    "MediaLocation",
    "LtiLink",
}
ENTITIES = (
    AGENTS
    | RESOURCES
    | {
        "Entity",
        "Attempt",
        "Score",
        "Result",
        "Response",
        "Session",
        "Membership",
        "LearningObjective",
    }
)

#: Event type -> (actions, actor types, object types, target types, generated types, profiles)
EVENTS: dict[str, tuple[set[str], set[str], set[str], set[str], set[str], set[str]]] = {
    "Event": (ACTIONS, AGENTS, ENTITIES, ENTITIES, ENTITIES, {"GeneralProfile"}),
    "MediaEvent": (
        MEDIA_ACTIONS,
        {"Person"},
        MEDIA_OBJECTS,
        {"MediaLocation"},
        set(),
        {"MediaProfile"},
    ),
    "AssessmentItemEvent": (
        {"Started", "Skipped", "Completed"},
        {"Person"},
        {"AssessmentItem"},
        set(),
        {"Attempt", "Response"},
        {"AssessmentProfile"},
    ),
    "GradeEvent": (
        {"Graded"},
        {"Person", "SoftwareApplication"},
        {"Attempt"},
        set(),
        {"Score"},
        {"GradingProfile"},
    ),
    "NavigationEvent": (
        {"NavigatedTo"},
        {"Person"},
        RESOURCES | {"SoftwareApplication"},
        RESOURCES,
        set(),
        {
            "ReadingProfile",
            "MediaProfile",
            "AnnotationProfile",
            "ForumProfile",
            "AssessmentProfile",
            "GeneralProfile",
        },
    ),
    "ViewEvent": (
        {"Viewed"},
        {"Person"},
        RESOURCES,
        RESOURCES,
        set(),
        {"ReadingProfile", "GeneralProfile"},
    ),
}
EVENT_KEYS = {
    "@context",
    "id",
    "type",
    "profile",
    "actor",
    "action",
    "object",
    "eventTime",
    "target",
    "generated",
    "edApp",
    "group",
    "membership",
    "session",
    "federatedSession",
    "referrer",
    "extensions",
}
#: Entity properties the checker knows (common ones, then per type).
ENTITY_KEYS = {
    "@context",
    "id",
    "type",
    "name",
    "description",
    "dateCreated",
    "dateModified",
    "extensions",
    "otherIdentifiers",
}
TYPE_KEYS: dict[str, set[str]] = {
    "DigitalResource": {
        "isPartOf",
        "mediaType",
        "creators",
        "keywords",
        "learningObjectives",
        "datePublished",
        "version",
        "storageName",
    },
    "Attempt": {
        "assignee",
        "assignable",
        "count",
        "startedAtTime",
        "endedAtTime",
        "duration",
        "isPartOf",
    },
    "Score": {"attempt", "maxScore", "scoreGiven", "scoredBy", "comment"},
    "MediaLocation": {"currentTime"},
    "VideoObject": {"duration"},
    "CourseOffering": {"courseNumber", "academicSession", "subOrganizationOf", "members"},
    "SoftwareApplication": {"version", "host", "ipAddress", "userAgent"},
    "Person": set(),
}


def _is_time(value: Any) -> bool:
    if not isinstance(value, str) or not DATETIME.match(value):
        return False
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def _entity(value: Any, allowed: set[str], where: str, out: list[str], *, iri_ok: bool) -> None:
    if isinstance(value, str):
        if not iri_ok or not IRI.match(value):
            out.append(f"{where}: {value!r} is not an entity{' or IRI' if iri_ok else ''}")
        return
    if not isinstance(value, dict):
        out.append(f"{where}: not an object")
        return
    kind = value.get("type")
    if not isinstance(value.get("id"), str) or not IRI.match(value["id"]):
        out.append(f"{where}.id: {value.get('id')!r} is not an IRI")
    if kind not in allowed:
        out.append(f"{where}.type: {kind!r} is not one of {sorted(allowed)}")
        return
    keys = set(ENTITY_KEYS) | TYPE_KEYS.get(kind, set())
    if kind in RESOURCES:
        keys |= TYPE_KEYS["DigitalResource"]
    for key in set(value) - keys:
        out.append(f"{where}: {kind} has no property {key!r}")
    if "name" in value and not isinstance(value["name"], str):
        out.append(f"{where}.name: not a string")
    if "extensions" in value and not isinstance(value["extensions"], dict):
        out.append(f"{where}.extensions: not an object")
    if "isPartOf" in value:
        _entity(value["isPartOf"], ENTITIES, f"{where}.isPartOf", out, iri_ok=True)
    for key in ("currentTime", "duration"):
        if key in value and not (isinstance(value[key], str) and DURATION.match(value[key])):
            out.append(f"{where}.{key}: {value[key]!r} is not an ISO 8601 duration")
    if kind == "Attempt":
        if "assignee" in value:
            _entity(value["assignee"], AGENTS, f"{where}.assignee", out, iri_ok=True)
        if "assignable" in value:
            _entity(value["assignable"], RESOURCES, f"{where}.assignable", out, iri_ok=True)
        count = value.get("count", 0)
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            out.append(f"{where}.count: not a non-negative integer")
    if kind == "Score":
        for key in ("maxScore", "scoreGiven"):
            number = value.get(key)
            if key in value and (isinstance(number, bool) or not isinstance(number, int | float)):
                out.append(f"{where}.{key}: not a number")
        if "attempt" in value:
            _entity(value["attempt"], {"Attempt"}, f"{where}.attempt", out, iri_ok=True)
        if "scoredBy" in value:
            _entity(value["scoredBy"], AGENTS, f"{where}.scoredBy", out, iri_ok=True)
    if (
        kind == "CourseOffering"
        and "courseNumber" in value
        and not isinstance(value["courseNumber"], str)
    ):
        out.append(f"{where}.courseNumber: not a string")


def event_problems(event: Any, where: str = "event") -> list[str]:
    out: list[str] = []
    if not isinstance(event, dict):
        return [f"{where}: not an object"]
    for key in ("id", "type", "actor", "action", "object", "eventTime"):
        if key not in event:
            out.append(f"{where}: required property {key!r} missing")
    if event.get("@context") != CONTEXT:
        out.append(f"{where}.@context: {event.get('@context')!r} is not the 1.2 context")
    for key in set(event) - EVENT_KEYS:
        out.append(f"{where}: events have no property {key!r}")
    if not isinstance(event.get("id"), str) or not UUID_URN.match(event["id"]):
        out.append(f"{where}.id: {event.get('id')!r} is not a urn:uuid: UUID")
    spec = EVENTS.get(event.get("type"))  # type: ignore[arg-type]
    if spec is None:
        out.append(f"{where}.type: {event.get('type')!r} is not a known event type")
        return out
    actions, actors, objects, targets, generated, profiles = spec
    if event.get("action") not in actions:
        out.append(f"{where}.action: {event.get('action')!r} not allowed for {event['type']}")
    if "profile" in event and (
        event["profile"] not in PROFILES or event["profile"] not in profiles
    ):
        out.append(f"{where}.profile: {event['profile']!r} not allowed for {event['type']}")
    if not _is_time(event.get("eventTime")):
        out.append(f"{where}.eventTime: {event.get('eventTime')!r} is not ISO 8601 UTC with ms")
    _entity(event.get("actor"), actors, f"{where}.actor", out, iri_ok=False)
    _entity(event.get("object"), objects, f"{where}.object", out, iri_ok=False)
    if "target" in event:
        _entity(event["target"], targets, f"{where}.target", out, iri_ok=False)
    if "generated" in event:
        _entity(event["generated"], generated, f"{where}.generated", out, iri_ok=False)
    if "referrer" in event:
        _entity(
            event["referrer"],
            RESOURCES | {"SoftwareApplication"},
            f"{where}.referrer",
            out,
            iri_ok=True,
        )
    if "edApp" in event:
        _entity(event["edApp"], {"SoftwareApplication"}, f"{where}.edApp", out, iri_ok=True)
    if "group" in event:
        _entity(event["group"], ORGANIZATIONS, f"{where}.group", out, iri_ok=True)
    if "extensions" in event and not isinstance(event["extensions"], dict):
        out.append(f"{where}.extensions: not an object")
    return out


def problems(envelope: Any) -> list[str]:
    """Every way ``envelope`` departs from a Caliper 1.2 envelope of events."""
    if not isinstance(envelope, dict):
        return ["envelope: not an object"]
    out: list[str] = []
    for key in ("sensor", "sendTime", "dataVersion", "data"):
        if key not in envelope:
            out.append(f"envelope: required property {key!r} missing")
    for key in set(envelope) - {"sensor", "sendTime", "dataVersion", "data"}:
        out.append(f"envelope: no property {key!r}")
    if not isinstance(envelope.get("sensor"), str) or not IRI.match(envelope["sensor"]):
        out.append(f"envelope.sensor: {envelope.get('sensor')!r} is not an IRI")
    if not _is_time(envelope.get("sendTime")):
        out.append(f"envelope.sendTime: {envelope.get('sendTime')!r} is not ISO 8601 UTC with ms")
    if envelope.get("dataVersion") != CONTEXT:
        out.append(f"envelope.dataVersion: {envelope.get('dataVersion')!r}")
    data = envelope.get("data")
    if not isinstance(data, list) or not data:
        out.append("envelope.data: not a non-empty array")
        return out
    for n, event in enumerate(data):
        out.extend(event_problems(event, f"data[{n}]"))
    ids = [e.get("id") for e in data if isinstance(e, dict)]
    if len(ids) != len(set(ids)):
        out.append("envelope.data: two events share an id")
    return out
