"""Server events of the capa module (problems graded on the server) and the ``correct_map``.

These may only come from the server (``event_source`` ``server`` or ``task``); see
:func:`~flask_tracking.schemas.server_only_reason`. Real logs hold ``state`` and
``answers`` as objects (the inventory documents them as "string / JSON", so strings are
accepted too), and ``problem_check`` adds ``grade``, ``max_grade`` and ``submission``.
"""

from __future__ import annotations

from typing import Final

from .. import event_types as et
from .common import answers, failure, problem_id, state
from .spec import Decl, EventSpec, FieldSpec, decl, nested_object, object_event, object_map

TITLE: Final = "Problems (server)"
INTRO: Final = (
    "Emitted by the server while it handles a problem request. A browser may not send "
    "them (a browser `problem_check` carrying a `correct_map` is refused too)."
)

#: Values of ``correctness``: the inventory lists the first two; real logs also hold
#: ``unknown`` (custom responses) and the platform writes ``partially-correct``.
CORRECTNESS: Final = ("correct", "incorrect", "partially-correct", "unknown")
HINTMODES: Final = ("on_request", "always")

_QUEUESTATE: Final[tuple[Decl, ...]] = (
    decl("key", "string", "Secret key of the queued submission.", required=True),
    decl("time", "string", "When it was queued, `%Y%m%d%H%M%S`.", required=True),
)

_CORRECT_MAP_ENTRY: Final[tuple[Decl, ...]] = (
    decl(
        "correctness",
        "string",
        "`correct` or `incorrect` (real logs also hold `unknown`; `partially-correct` "
        "is accepted).",
        required=True,
        choices=CORRECTNESS,
    ),
    decl(
        "npoints",
        "number or boolean",
        "Points awarded for this answer; usually null, one real log has `true`.",
        required=True,
        nullable=True,
    ),
    decl("msg", "string", 'Extra message shown with the answer (often `""`).', required=True),
    decl("hint", "string", 'Optional hint (often `""`).', required=True, nullable=True),
    decl(
        "hintmode",
        "string",
        "null, `on_request` or `always`.",
        required=True,
        nullable=True,
        choices=HINTMODES,
    ),
    decl(
        "queuestate",
        "object",
        "null when not queued, else `{key, time}` (both strings).",
        required=True,
        nullable=True,
        field=nested_object("QueueState", _QUEUESTATE),
    ),
    decl("answervariable", "string", "Newer logs: usually null.", nullable=True),
)

#: The documented fields of one ``correct_map`` entry (keyed by answer id).
CORRECT_MAP_FIELDS: Final[tuple[FieldSpec, ...]] = tuple(d.spec for d in _CORRECT_MAP_ENTRY)
#: The documented fields of a ``queuestate``.
QUEUESTATE_FIELDS: Final[tuple[FieldSpec, ...]] = tuple(d.spec for d in _QUEUESTATE)


def _correct_map() -> Decl:
    return decl(
        "correct_map",
        "correct_map",
        "Answer id -> `{correctness, npoints, msg, hint, hintmode, queuestate}` "
        "(see the correct_map table). A JSON string of it is accepted.",
        required=True,
        field=object_map("CorrectMapEntry", _CORRECT_MAP_ENTRY, allow_json_string=True),
    )


def _success() -> Decl:
    return decl(
        "success",
        "string",
        "`correct` when every answer is correct, else `incorrect`.",
        required=True,
        choices=("correct", "incorrect"),
    )


def _attempts() -> Decl:
    return decl("attempts", "integer", "Number of attempts so far.", required=True)


def _score(name: str, description: str) -> Decl:
    return decl(
        name,
        "number",
        f"{description} (documented as integer; weighted problems give floats).",
        required=True,
    )


SPECS: Final[tuple[EventSpec, ...]] = (
    object_event(
        et.SHOW_ANSWER,
        "server",
        "The server showed the answer of a problem to the learner.",
        [problem_id("shown")],
        aliases=(et.SHOW_ANSWER_ALIAS,),
    ),
    object_event(
        et.PROBLEM_CHECK,
        "server",
        "The server graded a problem the learner submitted.",
        [
            state(),
            problem_id("checked"),
            answers(),
            _success(),
            _attempts(),
            _correct_map(),
            decl("grade", "number", "Newer logs: score earned."),
            decl("max_grade", "number", "Newer logs: maximum score."),
            decl(
                "submission",
                "object",
                "Newer logs: per answer id, `{question, answer, response_type, input_type, "
                'correct, variant, ...}` (`correct` is a boolean or `""`).',
            ),
        ],
        aliases=(et.SAVE_PROBLEM_CHECK,),
    ),
    object_event(
        et.PROBLEM_CHECK_FAIL,
        "server",
        "The server refused to grade a submission.",
        [state(), problem_id("checked"), answers(), failure("`closed`, `unreset`")],
    ),
    object_event(
        et.PROBLEM_RESCORE,
        "server",
        "A problem was rescored (by staff, usually as a background task).",
        [
            state(),
            problem_id("rescored"),
            _score("orig_score", "Score before rescoring"),
            _score("orig_total", "Maximum score before rescoring"),
            _score("new_score", "Score after rescoring"),
            _score("new_total", "Maximum score after rescoring"),
            _correct_map(),
            _success(),
            _attempts(),
        ],
    ),
    object_event(
        et.PROBLEM_RESCORE_FAIL,
        "server",
        "Rescoring a problem failed.",
        [
            state(),
            problem_id("rescored"),
            failure("`unsupported`, `unanswered`, `input_error`, `unexpected`"),
        ],
    ),
    object_event(
        et.SAVE_PROBLEM_FAIL,
        "server",
        "The server refused to save the learner's answers.",
        [state(), problem_id("saved"), failure("`closed`, `done`"), answers()],
    ),
    object_event(
        et.SAVE_PROBLEM_SUCCESS,
        "server",
        "The server saved the learner's answers.",
        [state(), problem_id("saved"), answers()],
    ),
    object_event(
        et.RESET_PROBLEM_FAIL,
        "server",
        "The server refused to reset a problem.",
        [
            state("old_state", "Problem state (not reset)."),
            problem_id("reset"),
            failure("`closed`, `not_done`"),
        ],
    ),
    object_event(
        et.RESET_PROBLEM,
        "server",
        "The server reset a problem.",
        [
            state("old_state", "Problem state before the reset."),
            problem_id("reset"),
            state("new_state", "Problem state after the reset."),
        ],
    ),
)
