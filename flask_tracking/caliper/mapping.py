"""edX tracking-log events into IMS Caliper 1.2 events: the mapping table, pure functions.

:func:`to_caliper` takes the stored event's id and its edX line and returns the Caliper
events it maps to (a list: a server ``problem_check`` is graded, one event), or ``[]``
for a type with no mapping (or an event missing what its mapping needs: no user, no
problem id, no absolute page URL). Ids are ``urn:uuid:`` derived from the event id, so
the same stored event always gives the same Caliper ids.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from .entities import (
    CONTEXT,
    block_key,
    context_of,
    course_of,
    course_offering,
    duration,
    ed_app,
    event_time,
    event_urn,
    iri,
    number,
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


class _Build:
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


# -- video ----------------------------------------------------------------------------------


def _video(b: _Build, rule: Rule) -> dict[str, Any] | None:
    video = b.block(b.data.get("id"), "video")
    if video is None:
        return None
    video["type"] = "VideoObject"
    if rule.caliper_type != "MediaEvent":
        return b.event(rule, video)
    seconds = b.data.get("new_time") if rule.action == "JumpedTo" else b.data.get("currentTime")
    if "current_time" in b.data and seconds is None:
        seconds = b.data["current_time"]
    event = b.event(rule, video)
    at = duration(seconds)
    if at is not None:
        event["target"] = {
            "id": f"{video['id']}#t={at[2:-1]}",
            "type": "MediaLocation",
            "currentTime": at,
        }
    kept = {k: b.data[k] for k in ("old_time", "new_time", "old_speed", "new_speed") if k in b.data}
    event["extensions"].update(kept)
    return event


def _play(b: _Build, rule: Rule) -> dict[str, Any] | None:
    at = number(b.data.get("currentTime"))
    if at:  # a play from a later position resumes the video
        rule = Rule("MediaEvent", "Resumed", rule.object_type, rule.build)
    return _video(b, rule)


# -- problems -------------------------------------------------------------------------------


def _browser_problem_key(data: Any) -> str | None:
    """``input_<key>_2_1=...`` (a query string) into the problem's key."""
    if not isinstance(data, str):
        return None
    for pair in data.split("&"):
        name = pair.split("=", 1)[0]
        if name.startswith("input_"):
            parts = name[len("input_") :].rsplit("_", 2)
            if len(parts) == 3 and parts[0]:
                return parts[0]
    return None


def _problem_item(b: _Build, raw: Any) -> dict[str, Any] | None:
    item = b.block(raw, "problem")
    if item is None:
        return None
    item["type"] = "AssessmentItem"
    module = context_of(b.line).get("module")
    name = module.get("display_name") if isinstance(module, dict) else None
    if isinstance(name, str) and name:
        item["name"] = name
    return item


def _problem_check(b: _Build, rule: Rule) -> dict[str, Any] | None:
    if b.line.get("event_source") != "server":
        raw = b.line.get("event")
        item = _problem_item(b, _browser_problem_key(raw if isinstance(raw, str) else ""))
        if item is None:
            return None
        return b.event(Rule("AssessmentItemEvent", "Completed", "AssessmentItem", rule.build), item)
    item = _problem_item(b, b.data.get("problem_id"))
    if item is None or b.actor is None:
        return None
    given, maximum = score(b.data)
    grader = {"id": f"{b.platform}/autograder", "type": "SoftwareApplication"}
    attempt: dict[str, Any] = {
        "id": f"{item['id']}/attempts/{event_urn(b.event_id, '#attempt')[9:]}",
        "type": "Attempt",
        "assignee": b.actor,
        "assignable": item,
    }
    attempts = number(b.data.get("attempts"))
    if isinstance(attempts, int) and attempts >= 0:
        attempt["count"] = attempts
    event = b.event(rule, attempt)
    event["actor"] = grader
    event["generated"] = {
        "id": f"{attempt['id']}/score",
        "type": "Score",
        "attempt": attempt["id"],
        "maxScore": maximum,
        "scoreGiven": given,
        "scoredBy": grader["id"],
    }
    if isinstance(b.data.get("success"), str):
        event["extensions"]["success"] = b.data["success"]
    return event


def score(data: dict[str, Any]) -> tuple[float | int, float | int]:
    """``(scoreGiven, maxScore)`` of a server ``problem_check``: its ``grade`` and
    ``max_grade``; when absent, from ``correct_map`` (``npoints`` or 1 per correct input,
    out of one per input)."""
    given, maximum = number(data.get("grade")), number(data.get("max_grade"))
    if given is not None and maximum is not None:
        return given, maximum
    correct_map = data.get("correct_map")
    entries = (
        [v for v in correct_map.values() if isinstance(v, dict)]
        if isinstance(correct_map, dict)
        else []
    )
    total: float = 0
    for entry in entries:
        if entry.get("correctness") == "correct":
            points = number(entry.get("npoints"))
            total += 1 if points is None else points
    return total, len(entries)


def _show_answer(b: _Build, rule: Rule) -> dict[str, Any] | None:
    raw = b.data.get("problem_id") or b.data.get("problem") or b.data.get("module_id")
    item = _problem_item(b, raw)
    return None if item is None else b.event(rule, item)


# -- navigation -----------------------------------------------------------------------------


def _sequence(b: _Build, rule: Rule) -> dict[str, Any] | None:
    sequence = b.block(b.data.get("id"), "sequential")
    if sequence is None:
        return None
    sequence["type"] = "DigitalResourceCollection"
    to = b.data.get("new", b.data.get("target_tab"))
    if to is None and "current_tab" in b.data:
        step = {"next_selected": 1, "previous_selected": -1}.get(
            str(b.line.get("event_type")).rsplit(".", 1)[-1], 0
        )
        current = number(b.data.get("current_tab"))
        to = None if current is None else current + step
    if number(to) is None:
        return None
    unit = {
        "id": f"{sequence['id']}#unit={to}",
        "type": "DigitalResource",
        "name": f"unit {to}",
        "isPartOf": sequence,
    }
    event = b.event(rule, unit)
    event["extensions"].update(
        {
            k: b.data[k]
            for k in ("old", "new", "current_tab", "target_tab", "tab_count")
            if k in b.data
        }
    )
    return event


def _absolute(url: Any) -> str | None:
    if not isinstance(url, str):
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    return url if parts.scheme in ("http", "https") and parts.netloc and " " not in url else None


def _link(b: _Build, rule: Rule) -> dict[str, Any] | None:
    target = _absolute(b.data.get("target_url"))
    if target is None:
        return None
    page: dict[str, Any] = {"id": target, "type": "WebPage"}
    if isinstance(b.data.get("target_name"), str):
        page["name"] = b.data["target_name"].strip() or target
    event = b.event(rule, page)
    referrer = _absolute(b.data.get("current_url") or b.line.get("page"))
    if referrer is not None:
        event["referrer"] = {"id": referrer, "type": "WebPage"}
    return event


def _textbook(b: _Build, rule: Rule) -> dict[str, Any] | None:
    chapter = b.data.get("chapter")
    if not isinstance(chapter, str) or not chapter:
        return None
    document = {"id": iri(b.platform, "textbooks", chapter.lstrip("/")), "type": "Document"}
    page_number = number(b.data.get("new", b.data.get("page")))
    if page_number is None:
        return b.event(Rule("ViewEvent", "Viewed", "Document", rule.build), document)
    page = {
        "id": f"{document['id']}#page={page_number}",
        "type": "Page",
        "name": f"page {page_number}",
        "isPartOf": document,
    }
    event = b.event(rule, page)
    event["extensions"].update(
        {k: b.data[k] for k in ("type", "name", "old", "new") if k in b.data}
    )
    return event


def _page_close(b: _Build, rule: Rule) -> dict[str, Any] | None:
    page = _absolute(b.line.get("page"))
    return None if page is None else b.event(rule, {"id": page, "type": "WebPage"})


def _media(action: str, build: Any = _video) -> Rule:
    return Rule("MediaEvent", action, "VideoObject", build, "")


_NAV = Rule("NavigationEvent", "NavigatedTo", "DigitalResource", _sequence)
_LINK = Rule("NavigationEvent", "NavigatedTo", "WebPage", _link)
_BOOK = Rule("NavigationEvent", "NavigatedTo", "Page", _textbook)

#: edX event type -> its rule. The table of docs/caliper.md is made from it.
RULES: dict[str, Rule] = {
    **{t: _media("Started", _play) for t in ("play_video", "edx.video.played")},
    **{t: _media("Paused") for t in ("pause_video", "edx.video.paused")},
    **{t: _media("JumpedTo") for t in ("seek_video", "edx.video.position.changed")},
    "speed_change_video": _media("ChangedSpeed"),
    **{
        t: _media("Ended")
        for t in ("stop_video", "edx.video.stopped", "complete_video", "edx.video.completed")
    },
    **{
        t: _media("EnabledClosedCaptioning")
        for t in (
            "show_transcript",
            "edx.video.transcript.shown",
            "edx.video.closed_captions.shown",
        )
    },
    **{
        t: _media("DisabledClosedCaptioning")
        for t in (
            "hide_transcript",
            "edx.video.transcript.hidden",
            "edx.video.closed_captions.hidden",
        )
    },
    "fullscreen": _media("EnteredFullScreen"),
    "not_fullscreen": _media("ExitedFullScreen"),
    **{
        t: Rule("Event", "Retrieved", "VideoObject", _video)
        for t in ("load_video", "edx.video.loaded")
    },
    "problem_check": Rule("GradeEvent", "Graded", "Attempt", _problem_check, "Score"),
    **{
        t: Rule("ViewEvent", "Viewed", "AssessmentItem", _show_answer)
        for t in ("showanswer", "problem_show", "edx.problem.hint.demandhint_displayed")
    },
    **{t: _NAV for t in ("seq_goto", "seq_next", "seq_prev")},
    **{
        f"edx.ui.lms.sequence.{t}": _NAV
        for t in ("next_selected", "previous_selected", "tab_selected")
    },
    "edx.ui.lms.outline.selected": _LINK,
    "edx.ui.lms.link_clicked": _LINK,
    "book": _BOOK,
    "textbook.pdf.page.navigated": _BOOK,
    "textbook.pdf.page.loaded": _BOOK,
    "page_close": Rule("Event", "Ended", "WebPage", _page_close),
}


def to_caliper(
    event_id: str, line: dict[str, Any], settings: Settings | None = None
) -> list[dict[str, Any]]:
    """The Caliper 1.2 events of one edX line; ``[]`` when it has no mapping."""
    rule = RULES.get(str(line.get("event_type") or ""))
    if rule is None:
        return []
    b = _Build(event_id, line, settings or Settings())
    if b.actor is None:
        return []
    event = rule.build(b, rule)
    return [] if event is None else [event]
