"""Names of the Open edX tracking-log event types that flask-tracking knows.

Use these constants instead of string literals when you emit or query events::

    from flask_tracking import event_types

    tracking.track(event_types.PLAY_VIDEO, data={...})

Some events have two spellings in real logs (``showanswer`` / ``show_answer``,
``problem_check`` / ``save_problem_check``, ``oe_show_question`` / ``oe_show_problem``).
The first spelling is the canonical one; the ``*_ALIAS`` / ``*_PROBLEM`` names hold the
other. :data:`ALIASES` maps every alternative spelling to its canonical name.

Note that ``problem_check`` is both a browser event (the learner's answers) and a
server event (the graded result with a ``correct_map``).
"""

from __future__ import annotations

from typing import Final

# --- Browser: PDF textbook and page --------------------------------------------------
BOOK: Final = "book"
PAGE_CLOSE: Final = "page_close"

# --- Browser: video player -----------------------------------------------------------
LOAD_VIDEO: Final = "load_video"
PLAY_VIDEO: Final = "play_video"
PAUSE_VIDEO: Final = "pause_video"
SEEK_VIDEO: Final = "seek_video"
SPEED_CHANGE_VIDEO: Final = "speed_change_video"
STOP_VIDEO: Final = "stop_video"
SHOW_TRANSCRIPT: Final = "show_transcript"
HIDE_TRANSCRIPT: Final = "hide_transcript"

# --- Browser: capa problems ----------------------------------------------------------
PROBLEM_CHECK: Final = "problem_check"  # also a server event, see below
PROBLEM_SHOW: Final = "problem_show"
PROBLEM_RESET: Final = "problem_reset"
PROBLEM_SAVE: Final = "problem_save"
PROBLEM_GRADED: Final = "problem_graded"

# --- Browser: sequence navigation ----------------------------------------------------
SEQ_GOTO: Final = "seq_goto"
SEQ_NEXT: Final = "seq_next"
SEQ_PREV: Final = "seq_prev"

# --- Browser: combined open-ended, peer and staff grading ----------------------------
RUBRIC_SELECT: Final = "rubric_select"
OE_SHOW_QUESTION: Final = "oe_show_question"
OE_SHOW_PROBLEM: Final = "oe_show_problem"
OE_HIDE_QUESTION: Final = "oe_hide_question"
OE_HIDE_PROBLEM: Final = "oe_hide_problem"
PEER_GRADING_SHOW_QUESTION: Final = "peer_grading_show_question"
PEER_GRADING_SHOW_PROBLEM: Final = "peer_grading_show_problem"
PEER_GRADING_HIDE_QUESTION: Final = "peer_grading_hide_question"
PEER_GRADING_HIDE_PROBLEM: Final = "peer_grading_hide_problem"
STAFF_GRADING_SHOW_QUESTION: Final = "staff_grading_show_question"
STAFF_GRADING_SHOW_PROBLEM: Final = "staff_grading_show_problem"
STAFF_GRADING_HIDE_QUESTION: Final = "staff_grading_hide_question"
STAFF_GRADING_HIDE_PROBLEM: Final = "staff_grading_hide_problem"
OE_SHOW_FULL_FEEDBACK: Final = "oe_show_full_feedback"
OE_SHOW_RESPOND_TO_FEEDBACK: Final = "oe_show_respond_to_feedback"
OE_FEEDBACK_RESPONSE_SELECTED: Final = "oe_feedback_response_selected"

# --- Server: capa module -------------------------------------------------------------
SHOW_ANSWER: Final = "showanswer"
SHOW_ANSWER_ALIAS: Final = "show_answer"
SAVE_PROBLEM_CHECK: Final = "save_problem_check"  # alias of the server problem_check
PROBLEM_CHECK_FAIL: Final = "problem_check_fail"
PROBLEM_RESCORE: Final = "problem_rescore"
PROBLEM_RESCORE_FAIL: Final = "problem_rescore_fail"
SAVE_PROBLEM_FAIL: Final = "save_problem_fail"
SAVE_PROBLEM_SUCCESS: Final = "save_problem_success"
RESET_PROBLEM: Final = "reset_problem"
RESET_PROBLEM_FAIL: Final = "reset_problem_fail"

#: Alternative spelling -> canonical event type.
ALIASES: Final[dict[str, str]] = {
    SHOW_ANSWER_ALIAS: SHOW_ANSWER,
    SAVE_PROBLEM_CHECK: PROBLEM_CHECK,
    OE_SHOW_PROBLEM: OE_SHOW_QUESTION,
    OE_HIDE_PROBLEM: OE_HIDE_QUESTION,
    PEER_GRADING_SHOW_PROBLEM: PEER_GRADING_SHOW_QUESTION,
    PEER_GRADING_HIDE_PROBLEM: PEER_GRADING_HIDE_QUESTION,
    STAFF_GRADING_SHOW_PROBLEM: STAFF_GRADING_SHOW_QUESTION,
    STAFF_GRADING_HIDE_PROBLEM: STAFF_GRADING_HIDE_QUESTION,
}

#: Every type a browser (or the mobile app) may send, aliases included.
BROWSER: Final = frozenset(
    {
        BOOK,
        PAGE_CLOSE,
        LOAD_VIDEO,
        PLAY_VIDEO,
        PAUSE_VIDEO,
        SEEK_VIDEO,
        SPEED_CHANGE_VIDEO,
        STOP_VIDEO,
        SHOW_TRANSCRIPT,
        HIDE_TRANSCRIPT,
        PROBLEM_CHECK,
        PROBLEM_SHOW,
        PROBLEM_RESET,
        PROBLEM_SAVE,
        PROBLEM_GRADED,
        SEQ_GOTO,
        SEQ_NEXT,
        SEQ_PREV,
        RUBRIC_SELECT,
        OE_SHOW_QUESTION,
        OE_SHOW_PROBLEM,
        OE_HIDE_QUESTION,
        OE_HIDE_PROBLEM,
        PEER_GRADING_SHOW_QUESTION,
        PEER_GRADING_SHOW_PROBLEM,
        PEER_GRADING_HIDE_QUESTION,
        PEER_GRADING_HIDE_PROBLEM,
        STAFF_GRADING_SHOW_QUESTION,
        STAFF_GRADING_SHOW_PROBLEM,
        STAFF_GRADING_HIDE_QUESTION,
        STAFF_GRADING_HIDE_PROBLEM,
        OE_SHOW_FULL_FEEDBACK,
        OE_SHOW_RESPOND_TO_FEEDBACK,
        OE_FEEDBACK_RESPONSE_SELECTED,
    }
)

#: Every type the server emits, aliases included (``problem_check`` is in both sets).
SERVER: Final = frozenset(
    {
        SHOW_ANSWER,
        SHOW_ANSWER_ALIAS,
        PROBLEM_CHECK,
        SAVE_PROBLEM_CHECK,
        PROBLEM_CHECK_FAIL,
        PROBLEM_RESCORE,
        PROBLEM_RESCORE_FAIL,
        SAVE_PROBLEM_FAIL,
        SAVE_PROBLEM_SUCCESS,
        RESET_PROBLEM,
        RESET_PROBLEM_FAIL,
    }
)

#: Server types a browser may never send, whatever the payload. (``problem_check`` is
#: refused from a browser only when its payload carries a ``correct_map``.)
SERVER_ONLY: Final = SERVER - BROWSER

#: Every known event type, aliases included.
ALL: Final = BROWSER | SERVER


def canonical(event_type: str) -> str:
    """Return the canonical spelling of ``event_type`` (itself when it is not an alias)."""
    return ALIASES.get(event_type, event_type)
