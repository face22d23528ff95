"""edX tracking-log events into IMS Caliper 1.2 events: the mapping table.

:func:`to_caliper` takes the stored event's id and its edX line and returns the Caliper
events it maps to (a list, so a mapping may one day give more than one), or ``[]`` for a
type with no mapping (or an event missing what its mapping needs: no user, no problem id,
no absolute page URL). Ids are ``urn:uuid:`` derived from the event id, so the same
stored event always gives the same Caliper ids. The builders are in :mod:`.families`.
"""

from __future__ import annotations

from typing import Any

from .families import (
    link_rule,
    page_close_rule,
    play_rule,
    problem_check_rule,
    sequence_rule,
    show_answer_rule,
    textbook_rule,
    video_rule,
)
from .rules import Build, Rule, Settings


def _media(action: str, build: Any = video_rule) -> Rule:
    return Rule("MediaEvent", action, "VideoObject", build, "")


_NAV = Rule("NavigationEvent", "NavigatedTo", "DigitalResource", sequence_rule)
_LINK = Rule("NavigationEvent", "NavigatedTo", "WebPage", link_rule)
_BOOK = Rule("NavigationEvent", "NavigatedTo", "Page", textbook_rule)

#: edX event type -> its rule. The table of docs/caliper.md is made from it.
RULES: dict[str, Rule] = {
    **{t: _media("Started", play_rule) for t in ("play_video", "edx.video.played")},
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
        t: Rule("Event", "Retrieved", "VideoObject", video_rule)
        for t in ("load_video", "edx.video.loaded")
    },
    "problem_check": Rule("GradeEvent", "Graded", "Attempt", problem_check_rule, "Score"),
    **{
        t: Rule("ViewEvent", "Viewed", "AssessmentItem", show_answer_rule)
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
    "page_close": Rule("Event", "Ended", "WebPage", page_close_rule),
}


def to_caliper(
    event_id: str, line: dict[str, Any], settings: Settings | None = None
) -> list[dict[str, Any]]:
    """The Caliper 1.2 events of one edX line; ``[]`` when it has no mapping."""
    rule = RULES.get(str(line.get("event_type") or ""))
    if rule is None:
        return []
    b = Build(event_id, line, settings or Settings())
    if b.actor is None:
        return []
    event = rule.build(b, rule)
    return [] if event is None else [event]
