"""The course: one sequence of four units, and the problem's grading and state.

Ids follow Open edX: a ``course-v1:`` course key and ``block-v1:`` usage ids, answer ids
``<problem block>_<n>_1`` and form inputs ``input_<answer id>``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

COURSE_ID = "course-v1:DemoX+TRK101+2025"
COURSE_TITLE = "Learning Analytics 101"
ORG_ID = "DemoX"


def usage_id(block_type: str, block: str) -> str:
    return f"block-v1:DemoX+TRK101+2025+type@{block_type}+block@{block}"


SEQUENCE_ID = usage_id("sequential", "week_1")
VIDEO_ID = usage_id("video", "lecture_1")
PROBLEM_BLOCK = "checkpoint"
PROBLEM_ID = usage_id("problem", PROBLEM_BLOCK)


@dataclass(frozen=True, slots=True)
class Unit:
    kind: str  # the template in templates/units/
    title: str


UNITS: tuple[Unit, ...] = (
    Unit("video", "Lecture: why we track learning"),
    Unit("reading", "Reading: what gets recorded"),
    Unit("textbook", "Textbook: chapter 1"),
    Unit("problem", "Checkpoint"),
)


@dataclass(frozen=True, slots=True)
class Question:
    answer_id: str
    prompt: str
    kind: str  # "numeric" or "choice"
    correct: str
    choices: tuple[tuple[str, str], ...] = ()

    @property
    def input_name(self) -> str:
        return f"input_{self.answer_id}"

    def is_correct(self, given: str) -> bool:
        if self.kind == "numeric":
            try:
                return float(given.strip()) == float(self.correct)
            except ValueError:
                return False
        return given == self.correct

    @property
    def shown_answer(self) -> str:
        """The correct answer as a learner reads it."""
        labels = dict(self.choices)
        return labels.get(self.correct, self.correct)


QUESTIONS: tuple[Question, ...] = (
    Question(f"{PROBLEM_BLOCK}_2_1", "How much is 6 × 7?", "numeric", "42"),  # noqa: RUF001
    Question(
        f"{PROBLEM_BLOCK}_3_1",
        "Which event does the server emit when it grades your answers?",
        "choice",
        "choice_0",
        (
            ("choice_0", "problem_check"),
            ("choice_1", "seq_next"),
            ("choice_2", "play_video"),
        ),
    ),
)


def new_state() -> dict[str, Any]:
    """A problem state as capa keeps it, before any answer."""
    return {
        "student_answers": {},
        "correct_map": {},
        "seed": 1,
        "done": False,
        "input_state": {q.answer_id: {} for q in QUESTIONS},
        "attempts": 0,
    }


def answers_from_form(form: dict[str, Any]) -> dict[str, str]:
    """``{answer id: answer}`` from ``{input_<answer id>: value}`` (missing ones empty)."""
    return {q.answer_id: str(form.get(q.input_name) or "") for q in QUESTIONS}


def grade(answers: dict[str, str]) -> dict[str, dict[str, Any]]:
    """The ``correct_map`` of some answers."""
    by_id = {q.answer_id: q for q in QUESTIONS}
    return {
        answer_id: {
            "correctness": "correct" if by_id[answer_id].is_correct(given) else "incorrect",
            "npoints": None,
            "msg": "",
            "hint": "",
            "hintmode": None,
            "queuestate": None,
        }
        for answer_id, given in answers.items()
    }


def public_state(state: dict[str, Any]) -> dict[str, Any]:
    """The state as capa writes it into events (without our attempts counter)."""
    out = copy.deepcopy(state)
    out.pop("attempts", None)
    return out
