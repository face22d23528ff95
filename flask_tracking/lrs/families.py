"""The mapping of each family of events: ``(line, mapping, payload)`` -> statement parts.

A builder returns ``(verb name, object, result or None, context extensions)``, or
``None`` when the event lacks what its statement needs (no video id, no problem id).
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping as MappingABC
from typing import Any
from urllib.parse import quote

from .reading import (
    IRI_SAFE,
    Mapping,
    activity,
    block_iri,
    context_of,
    extensions,
    number,
    page_iri,
    seconds,
    text,
    video_object,
)
from .vocabulary import (
    ATTEMPT,
    CC_ENABLED,
    ENDING_POSITION,
    FULL_SCREEN,
    INTERACTION_TYPES,
    LENGTH,
    POSITION,
    SESSION_ID,
    SPEED,
    STARTING_POSITION,
    TIME,
    TIME_FROM,
    TIME_TO,
    TOTAL_ITEMS,
)

#: (verb name, object, result or None, context extensions).
Parts = tuple[str, dict[str, Any], dict[str, Any] | None, dict[str, Any]]
Built = Parts | None


def _video_event(verb: str) -> Callable[..., Built]:
    def build(line: MappingABC[str, Any], mapping: Mapping, data: dict[str, Any]) -> Built:
        obj = video_object(line, mapping, data)
        if obj is None:
            return None
        result: dict[str, Any] | None = None
        ext: dict[str, Any] = extensions(**{SESSION_ID: text(line.get("session"))})
        now = number(data.get("currentTime", data.get("current_time")))
        if verb == "initialized":
            ext.update(extensions(**{LENGTH: number(data.get("duration"))}))
        elif verb == "seeked":
            result = {
                "extensions": extensions(
                    **{
                        TIME_FROM: number(data.get("old_time")),
                        TIME_TO: number(data.get("new_time")),
                    }
                )
            }
        elif verb == "completed":
            result = {
                "completion": True,
                "extensions": extensions(**{TIME: number(data.get("duration"))}),
            }
            duration = seconds(data.get("duration"))
            if duration:
                result["duration"] = duration
        else:
            result = {"extensions": extensions(**{TIME: now})}
        if result is not None and not result.get("extensions"):
            result.pop("extensions")
        return verb, obj, result or None, ext

    return build


def _video_interaction(line: MappingABC[str, Any], mapping: Mapping, data: dict[str, Any]) -> Built:
    obj = video_object(line, mapping, data)
    if obj is None:
        return None
    kind = line.get("event_type")
    ext = extensions(**{SESSION_ID: text(line.get("session"))})
    if kind == "speed_change_video":
        speed = text(data.get("new_speed"))
        ext.update(extensions(**{SPEED: f"{speed}x" if speed else None}))
    elif kind in ("show_transcript", "hide_transcript"):
        ext[CC_ENABLED] = kind == "show_transcript"
    elif kind in ("fullscreen", "not_fullscreen"):
        ext[FULL_SCREEN] = kind == "fullscreen"
    now = number(data.get("currentTime", data.get("current_time")))
    result = {"extensions": {TIME: now}} if now is not None else None
    return "interacted", obj, result, ext


def _problem_id(line: MappingABC[str, Any], data: dict[str, Any]) -> str | None:
    module = context_of(line).get("module")
    usage = module.get("usage_key") if isinstance(module, MappingABC) else None
    return text(data.get("problem_id")) or text(data.get("problem")) or text(usage)


def _score(earned: Any, possible: Any) -> dict[str, Any] | None:
    raw, top = number(earned), number(possible)
    if raw is None or top is None or top <= 0 or not 0 <= raw <= top:
        return None
    return {"min": 0, "max": top, "raw": raw, "scaled": round(raw / top, 4)}


def _correct(data: dict[str, Any]) -> bool | None:
    if data.get("success") in ("correct", "incorrect"):
        return bool(data["success"] == "correct")
    cmap = data.get("correct_map")
    if isinstance(cmap, MappingABC) and cmap:
        return all(
            isinstance(v, MappingABC) and v.get("correctness") == "correct" for v in cmap.values()
        )
    return None


def _response(data: dict[str, Any]) -> str | None:
    answers = data.get("answers")
    if not isinstance(answers, MappingABC) or not answers:
        return None
    parts: list[str] = []
    for value in answers.values():
        parts.extend(str(v) for v in (value if isinstance(value, list) else [value]))
    return "[,]".join(parts)


def _problem_check(line: MappingABC[str, Any], mapping: Mapping, data: dict[str, Any]) -> Built:
    if line.get("event_source") != "server":  # the browser's: the answers, no grade yet
        page = page_iri(line, mapping)
        problem = _problem_id(line, data)
        object_id = block_iri(mapping, problem) if problem else page
        if object_id is None:
            return None
        return "attempted", activity(object_id, "question"), None, {}
    problem = _problem_id(line, data)
    if problem is None:
        return None
    types = {
        v.get("response_type")
        for v in (data.get("submission") or {}).values()
        if isinstance(v, MappingABC)
    }
    interaction = INTERACTION_TYPES.get(str(types.pop()), "other") if len(types) == 1 else "other"
    obj = activity(block_iri(mapping, problem), "interaction", interactionType=interaction)
    result: dict[str, Any] = {}
    success = _correct(data)
    if success is not None:
        result["success"] = success
    score = _score(data.get("grade"), data.get("max_grade"))
    if score:
        result["score"] = score
    response = _response(data)
    if response is not None:
        result["response"] = response
    attempts = number(data.get("attempts"))
    ext = {ATTEMPT: int(attempts)} if attempts is not None else {}
    return "evaluated", obj, result or None, ext


def _problem_event(verb: str, scored: tuple[str, str] | None = None) -> Callable[..., Built]:
    def build(line: MappingABC[str, Any], mapping: Mapping, data: dict[str, Any]) -> Built:
        problem = _problem_id(line, data)
        if problem is None:
            return None
        result: dict[str, Any] = {}
        if scored:
            score = _score(data.get(scored[0]), data.get(scored[1]))
            if score:
                result = {"score": score, "success": score["raw"] >= score["max"]}
        obj = activity(block_iri(mapping, problem), "interaction")
        return verb, obj, result or None, {}

    return build


def _sequence(line: MappingABC[str, Any], mapping: Mapping, data: dict[str, Any]) -> Built:
    kind = str(line.get("event_type"))
    sequence = text(data.get("id"))
    if sequence is None:
        return None
    ext: dict[str, Any] = extensions(**{TOTAL_ITEMS: number(data.get("tab_count"))})
    if ext.get(TOTAL_ITEMS) is not None:
        ext[TOTAL_ITEMS] = int(ext[TOTAL_ITEMS])
    if kind.endswith(("next_selected", "seq_next")):
        ext[ENDING_POSITION] = "next unit"
    elif kind.endswith(("previous_selected", "seq_prev")):
        ext[ENDING_POSITION] = "previous unit"
    else:  # tab_selected, seq_goto: from a tab to another
        ext.update(extensions(**{ENDING_POSITION: text(data.get("target_tab", data.get("new")))}))
    start = text(data.get("current_tab", data.get("old")))
    position = {POSITION: start} if start else None
    ext.update(extensions(**{STARTING_POSITION: start}))
    obj = activity(block_iri(mapping, sequence), "module", extensions=position)
    return "navigated", obj, None, ext


def _textbook(line: MappingABC[str, Any], mapping: Mapping, data: dict[str, Any]) -> Built:
    chapter = text(data.get("chapter"))
    course = text(context_of(line).get("course_id"))
    if chapter is None:
        return None
    if chapter.startswith(("http://", "https://")):
        object_id = quote(chapter, IRI_SAFE + "?#%")
    else:  # a path on the platform ("/asset-v1:...+type@asset+block/book.pdf")
        object_id = mapping.iri(chapter.lstrip("/"))
    old = text(data.get("old"))
    new = text(data.get("new", data.get("page")))
    ext = extensions(**{STARTING_POSITION: old, ENDING_POSITION: new})
    name = f"textbook of {course}" if course else None
    obj = activity(object_id, "book", name=name)
    return "navigated", obj, None, ext


def _page_close(line: MappingABC[str, Any], mapping: Mapping, data: dict[str, Any]) -> Built:
    page = page_iri(line, mapping)
    return None if page is None else ("terminated", activity(page, "page"), None, {})


def _link(line: MappingABC[str, Any], mapping: Mapping, data: dict[str, Any]) -> Built:
    target = text(data.get("target_url"))
    if target is None or not target.startswith(("http://", "https://")):
        return None
    return "experienced", activity(quote(target, IRI_SAFE + "?#%"), "link"), None, {}


def _enrollment(verb: str) -> Callable[..., Built]:
    def build(line: MappingABC[str, Any], mapping: Mapping, data: dict[str, Any]) -> Built:
        course = text(data.get("course_id")) or text(context_of(line).get("course_id"))
        if course is None:
            return None
        return verb, activity(mapping.iri("course", course), "course"), None, {}

    return build


BUILDERS: dict[str, Callable[..., Built]] = {
    **dict.fromkeys(("load_video", "edx.video.loaded"), _video_event("initialized")),
    **dict.fromkeys(("play_video", "edx.video.played"), _video_event("played")),
    **dict.fromkeys(("pause_video", "edx.video.paused"), _video_event("paused")),
    **dict.fromkeys(("seek_video", "edx.video.position.changed"), _video_event("seeked")),
    **dict.fromkeys(("stop_video", "edx.video.stopped"), _video_event("terminated")),
    **dict.fromkeys(("complete_video", "edx.video.completed"), _video_event("completed")),
    **dict.fromkeys(
        (
            "speed_change_video",
            "show_transcript",
            "hide_transcript",
            "fullscreen",
            "not_fullscreen",
        ),
        _video_interaction,
    ),
    "problem_check": _problem_check,
    "showanswer": _problem_event("asked"),
    "problem_show": _problem_event("asked"),
    "edx.problem.hint.demandhint_displayed": _problem_event("interacted"),
    "edx.problem.completed": _problem_event("completed"),
    "edx.grades.problem.submitted": _problem_event(
        "attempted", ("weighted_earned", "weighted_possible")
    ),
    "problem_rescore": _problem_event("evaluated", ("new_grade", "max_grade")),
    **dict.fromkeys(
        (
            "edx.ui.lms.sequence.next_selected",
            "edx.ui.lms.sequence.previous_selected",
            "edx.ui.lms.sequence.tab_selected",
            "seq_next",
            "seq_prev",
            "seq_goto",
        ),
        _sequence,
    ),
    **dict.fromkeys(
        (
            "book",
            "textbook.pdf.page.navigated",
            "textbook.pdf.page.scrolled",
            "textbook.pdf.thumbnail.navigated",
            "textbook.pdf.outline.navigated",
            "textbook.pdf.chapter.navigated",
        ),
        _textbook,
    ),
    "page_close": _page_close,
    "edx.ui.lms.link_clicked": _link,
    "edx.course.enrollment.activated": _enrollment("registered"),
    "edx.course.enrollment.deactivated": _enrollment("unregistered"),
}
#: The event types with a mapping.
MAPPED_TYPES = frozenset(BUILDERS)
