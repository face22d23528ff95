"""Browser events of sequence (subsection) navigation: ``seq_goto``, ``seq_next``, ``seq_prev``.

The inventory types ``id`` as an integer; real logs always hold the sequence's usage id
as a string (``i4x://edX/DemoX/sequential/basic_questions`` or ``block-v1:...``), so both
are accepted. Newer logs add ``current_tab``, ``tab_count``, ``target_tab`` and
``widget_placement``.
"""

from __future__ import annotations

from typing import Final

from .. import event_types as et
from .spec import EventSpec, decl, object_event

TITLE: Final = "Sequence navigation"
INTRO: Final = (
    "Sent when the learner moves between the units of a sequence. Unit indexes start at 1."
)


def _navigation(event_type: str, description: str) -> EventSpec:
    return object_event(
        event_type,
        "browser",
        description,
        [
            decl("old", "integer", "Index of the unit being left.", required=True),
            decl("new", "integer", "Index of the unit being opened.", required=True),
            decl(
                "id",
                "string or integer",
                "Usage id of the sequence; a string in every real log.",
                required=True,
            ),
            decl("current_tab", "integer", "Newer logs: index of the current unit."),
            decl("target_tab", "integer", "Newer logs (`seq_goto`): index of the target unit."),
            decl("tab_count", "integer", "Newer logs: number of units in the sequence."),
            decl(
                "widget_placement",
                "string",
                "Newer logs: which navigation bar was used (`top` or `bottom`).",
            ),
        ],
    )


SPECS: Final[tuple[EventSpec, ...]] = (
    _navigation(et.SEQ_GOTO, "The learner jumped to a unit of the sequence."),
    _navigation(et.SEQ_NEXT, "The learner moved to the next unit of the sequence."),
    _navigation(et.SEQ_PREV, "The learner moved to the previous unit of the sequence."),
)
