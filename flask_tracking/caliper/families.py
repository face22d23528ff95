"""The builders of the mapping, one per family: video, problems, navigation, page close.

Each takes a :class:`~.rules.Build` and the :class:`~.rules.Rule` and returns the Caliper
event, or ``None`` when the event lacks what the mapping needs.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from .entities import context_of, duration, event_urn, iri, number
from .rules import Build, Rule

# -- video ----------------------------------------------------------------------------------


def video_rule(b: Build, rule: Rule) -> dict[str, Any] | None:
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


def play_rule(b: Build, rule: Rule) -> dict[str, Any] | None:
    at = number(b.data.get("currentTime"))
    if at:  # a play from a later position resumes the video
        rule = Rule("MediaEvent", "Resumed", rule.object_type, rule.build)
    return video_rule(b, rule)


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


def _problem_item(b: Build, raw: Any) -> dict[str, Any] | None:
    item = b.block(raw, "problem")
    if item is None:
        return None
    item["type"] = "AssessmentItem"
    module = context_of(b.line).get("module")
    name = module.get("display_name") if isinstance(module, dict) else None
    if isinstance(name, str) and name:
        item["name"] = name
    return item


def problem_check_rule(b: Build, rule: Rule) -> dict[str, Any] | None:
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


def show_answer_rule(b: Build, rule: Rule) -> dict[str, Any] | None:
    raw = b.data.get("problem_id") or b.data.get("problem") or b.data.get("module_id")
    item = _problem_item(b, raw)
    return None if item is None else b.event(rule, item)


# -- navigation -----------------------------------------------------------------------------


def sequence_rule(b: Build, rule: Rule) -> dict[str, Any] | None:
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


def link_rule(b: Build, rule: Rule) -> dict[str, Any] | None:
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


def textbook_rule(b: Build, rule: Rule) -> dict[str, Any] | None:
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


def page_close_rule(b: Build, rule: Rule) -> dict[str, Any] | None:
    page = _absolute(b.line.get("page"))
    return None if page is None else b.event(rule, {"id": page, "type": "WebPage"})
