"""One example payload of every built-in spec, as the catalog shows it (decoded form).

Made-up values in the shapes of real logs; ``tests/test_catalog_jsonschema.py`` checks
that each one passes its marshmallow schema and its JSON Schema.
"""

from __future__ import annotations

from typing import Any, Final

from .. import event_types as et

_VIDEO: Final = {"id": "i4x-Org-Course-video-intro", "code": "html5"}
_SEQ: Final = {"old": 1, "new": 2, "id": "block-v1:Org+Course+Run+type@sequential+block@s1"}
_LOC: Final = {"location": "i4x://Org/Course/combinedopenended/q1"}
_PID: Final = "block-v1:Org+Course+Run+type@problem+block@p1"
_ENTRY: Final = {
    "correctness": "correct",
    "npoints": None,
    "msg": "",
    "hint": "",
    "hintmode": None,
    "queuestate": None,
}
_STATE: Final = {"student_answers": {}, "seed": 1, "done": True, "correct_map": {}}
_ANSWERS: Final = {"p1_2_1": "choice_1"}

#: (source, canonical type) -> an example payload.
EXAMPLES: Final[dict[tuple[str, str], Any]] = {
    ("browser", et.BOOK): {"type": "gotopage", "old": 2, "new": 25},
    ("browser", et.PAGE_CLOSE): "",
    ("browser", et.LOAD_VIDEO): _VIDEO,
    ("browser", et.PLAY_VIDEO): {**_VIDEO, "currentTime": 1.264, "speed": "1.0"},
    ("browser", et.PAUSE_VIDEO): {**_VIDEO, "currentTime": 12},
    ("browser", et.STOP_VIDEO): {**_VIDEO, "currentTime": 444},
    ("browser", et.SEEK_VIDEO): {**_VIDEO, "old_time": 2.5, "new_time": 141, "type": "onSlideSeek"},
    ("browser", et.SPEED_CHANGE_VIDEO): {**_VIDEO, "old_speed": "1.50", "new_speed": "2.0"},
    ("browser", et.SHOW_TRANSCRIPT): {**_VIDEO, "currentTime": 0},
    ("browser", et.HIDE_TRANSCRIPT): {**_VIDEO, "currentTime": 0},
    ("browser", et.SEQ_GOTO): _SEQ,
    ("browser", et.SEQ_NEXT): _SEQ,
    ("browser", et.SEQ_PREV): {**_SEQ, "old": 2, "new": 1},
    ("browser", et.PROBLEM_CHECK): {"input_p1_2_1": "choice_1", "input_p1_3_1[]": ["a", "b"]},
    ("browser", et.PROBLEM_RESET): "input_p1_2_1=2",
    ("browser", et.PROBLEM_SAVE): {"input_p1_2_1": "13.4 breaths per minute"},
    ("browser", et.PROBLEM_SHOW): {"problem": _PID},
    ("browser", et.PROBLEM_GRADED): ["input_p1_2_1=choice_0", "<div>...</div>"],
    ("browser", et.RUBRIC_SELECT): {**_LOC, "selection": 2, "category": 0},
    ("browser", et.OE_SHOW_QUESTION): _LOC,
    ("browser", et.OE_HIDE_QUESTION): _LOC,
    ("browser", et.PEER_GRADING_SHOW_QUESTION): _LOC,
    ("browser", et.PEER_GRADING_HIDE_QUESTION): _LOC,
    ("browser", et.STAFF_GRADING_SHOW_QUESTION): _LOC,
    ("browser", et.STAFF_GRADING_HIDE_QUESTION): _LOC,
    ("browser", et.OE_SHOW_FULL_FEEDBACK): "",
    ("browser", et.OE_SHOW_RESPOND_TO_FEEDBACK): "",
    ("browser", et.OE_FEEDBACK_RESPONSE_SELECTED): {"value": 3},
    ("server", et.SHOW_ANSWER): {"problem_id": _PID},
    ("server", et.PROBLEM_CHECK): {
        "state": _STATE,
        "problem_id": _PID,
        "answers": _ANSWERS,
        "success": "correct",
        "attempts": 1,
        "correct_map": {"p1_2_1": _ENTRY},
        "grade": 1,
        "max_grade": 1,
    },
    ("server", et.PROBLEM_CHECK_FAIL): {
        "state": _STATE,
        "problem_id": _PID,
        "answers": _ANSWERS,
        "failure": "closed",
    },
    ("server", et.PROBLEM_RESCORE): {
        "state": _STATE,
        "problem_id": _PID,
        "orig_score": 0,
        "orig_total": 1,
        "new_score": 1,
        "new_total": 1,
        "correct_map": {"p1_2_1": _ENTRY},
        "success": "correct",
        "attempts": 1,
    },
    ("server", et.PROBLEM_RESCORE_FAIL): {
        "state": _STATE,
        "problem_id": _PID,
        "failure": "unexpected",
    },
    ("server", et.SAVE_PROBLEM_FAIL): {
        "state": _STATE,
        "problem_id": _PID,
        "answers": _ANSWERS,
        "failure": "done",
    },
    ("server", et.SAVE_PROBLEM_SUCCESS): {"state": _STATE, "problem_id": _PID, "answers": _ANSWERS},
    ("server", et.RESET_PROBLEM_FAIL): {
        "old_state": _STATE,
        "problem_id": _PID,
        "failure": "closed",
    },
    ("server", et.RESET_PROBLEM): {"old_state": _STATE, "problem_id": _PID, "new_state": _STATE},
}
