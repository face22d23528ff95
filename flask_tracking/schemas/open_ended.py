"""Browser events of combined open-ended problems, peer grading and staff grading.

Each ``*_show_question`` / ``*_hide_question`` type has a ``*_problem`` alias (the first
inventory used that spelling). ``rubric_select`` names its value ``selection`` in the
later inventory and ``value`` in the first one; both are accepted.
"""

from __future__ import annotations

from typing import Final

from .. import event_types as et
from .spec import EventSpec, custom_event, decl, object_event

TITLE: Final = "Open-ended, peer and staff grading"
INTRO: Final = (
    "Sent by the (retired) combined open-ended module and the peer / staff grading "
    "panels. Real logs are rare; `peer_grading_show_question` is seen."
)


def _prompt_event(event_type: str, alias: str, description: str) -> EventSpec:
    return object_event(
        event_type,
        "browser",
        description,
        [
            decl(
                "location",
                "string",
                "Location of the question (`i4x://.../combinedopenended/...`).",
                required=True,
            )
        ],
        aliases=(alias,),
    )


_PROMPTS: Final = (
    (et.OE_SHOW_QUESTION, et.OE_SHOW_PROBLEM, "open-ended", "showed"),
    (et.OE_HIDE_QUESTION, et.OE_HIDE_PROBLEM, "open-ended", "hid"),
    (et.PEER_GRADING_SHOW_QUESTION, et.PEER_GRADING_SHOW_PROBLEM, "peer grading", "showed"),
    (et.PEER_GRADING_HIDE_QUESTION, et.PEER_GRADING_HIDE_PROBLEM, "peer grading", "hid"),
    (et.STAFF_GRADING_SHOW_QUESTION, et.STAFF_GRADING_SHOW_PROBLEM, "staff grading", "showed"),
    (et.STAFF_GRADING_HIDE_QUESTION, et.STAFF_GRADING_HIDE_PROBLEM, "staff grading", "hid"),
)

SPECS: Final[tuple[EventSpec, ...]] = (
    object_event(
        et.RUBRIC_SELECT,
        "browser",
        "The learner selected a value on a rubric.",
        [
            decl(
                "location",
                "string",
                "Location of the question whose rubric is used.",
                required=True,
            ),
            decl("category", "integer", "Rubric category selected.", required=True),
            decl("selection", "integer", "Value selected (later inventory)."),
            decl("value", "integer", "Value selected (first inventory's name)."),
        ],
    ),
    *(
        _prompt_event(name, alias, f"The learner {verb} the prompt of a {panel} question.")
        for name, alias, panel, verb in _PROMPTS
    ),
    custom_event(
        et.OE_SHOW_FULL_FEEDBACK,
        "browser",
        "The learner opened the full feedback; no payload (the page is in the envelope).",
        "any",
    ),
    custom_event(
        et.OE_SHOW_RESPOND_TO_FEEDBACK,
        "browser",
        "The learner opened the form to respond to feedback; no payload.",
        "any",
    ),
    object_event(
        et.OE_FEEDBACK_RESPONSE_SELECTED,
        "browser",
        "The learner picked a value in the feedback response form.",
        [decl("value", "integer", "Value selected.", required=True)],
    ),
)
