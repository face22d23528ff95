"""The course page and the problem's four server actions.

Everything lives under ``/courses/<course_id>/``, so the default
``TRACKING_COURSE_URL_PATTERN`` puts the course id (and its org) into the context of both
the browser events (from their page URL) and the server events (from the request path).

Each problem action emits its server event through the tracker, as capa does:
``problem_check`` (with the ``correct_map``), ``showanswer``, ``reset_problem`` and
``save_problem_success``. The browser logs its own twin (``problem_check``,
``problem_show``, ``problem_reset``, ``problem_save``) before it calls the action.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, jsonify, redirect, render_template, request, session, url_for
from werkzeug.wrappers import Response

from ..course import (
    COURSE_ID,
    PROBLEM_BLOCK,
    PROBLEM_ID,
    QUESTIONS,
    SEQUENCE_ID,
    UNITS,
    VIDEO_ID,
    answers_from_form,
    grade,
    new_state,
    public_state,
)
from ..ext import USERNAME, tracking

blueprint = Blueprint("course", __name__, url_prefix="/courses/<course_id>")

#: Session key of the learner's problem state.
STATE = "problem_state"


@blueprint.url_value_preprocessor
def check_course(endpoint: str | None, values: dict[str, Any] | None) -> None:
    if values is not None and values.pop("course_id", None) != COURSE_ID:
        abort(404)


@blueprint.url_defaults
def add_course(endpoint: str, values: dict[str, Any]) -> None:
    values.setdefault("course_id", COURSE_ID)


@blueprint.get("/courseware")
def courseware() -> Response | str:
    if not session.get(USERNAME):
        return redirect(url_for("auth.index"))
    try:
        unit = min(max(int(request.args.get("unit", "1")), 1), len(UNITS))
    except ValueError:
        unit = 1
    return render_template(
        "course.html",
        units=UNITS,
        unit=unit,
        sequence_id=SEQUENCE_ID,
        video_id=VIDEO_ID,
        problem_id=PROBLEM_ID,
        problem_url=url_for("course.check", block=PROBLEM_BLOCK).rsplit("/", 1)[0],
        questions=QUESTIONS,
        state=_state(),
    )


def _state() -> dict[str, Any]:
    state = session.get(STATE)
    return dict(state) if isinstance(state, dict) else new_state()


def _answers() -> dict[str, str]:
    data = request.get_json(silent=True)
    return answers_from_form(data if isinstance(data, dict) else request.form.to_dict())


def _action(block: str) -> dict[str, Any]:
    """The learner's state, after checking who asks and about which problem."""
    if not session.get(USERNAME):
        abort(401)
    if block != PROBLEM_BLOCK:
        abort(404)
    return _state()


@blueprint.post("/problem/<block>/check")
def check(block: str) -> Response:
    state = _action(block)
    answers = _answers()
    correct_map = grade(answers)
    points = sum(entry["correctness"] == "correct" for entry in correct_map.values())
    success = "correct" if points == len(QUESTIONS) else "incorrect"
    old = public_state(state)
    state.update(
        student_answers=answers,
        correct_map=correct_map,
        done=True,
        attempts=state["attempts"] + 1,
    )
    session[STATE] = state
    tracked = tracking.emit(
        "problem_check",
        {
            "state": old,
            "problem_id": PROBLEM_ID,
            "answers": answers,
            "success": success,
            "attempts": state["attempts"],
            "correct_map": correct_map,
            "grade": points,
            "max_grade": len(QUESTIONS),
        },
    )
    return jsonify(
        success=success,
        correct_map=correct_map,
        attempts=state["attempts"],
        grade=points,
        max_grade=len(QUESTIONS),
        tracked=tracked is not None,
    )


@blueprint.post("/problem/<block>/show")
def show(block: str) -> Response:
    _action(block)
    tracked = tracking.emit("showanswer", {"problem_id": PROBLEM_ID})
    answers = {q.answer_id: q.shown_answer for q in QUESTIONS}
    return jsonify(answers=answers, tracked=tracked is not None)


@blueprint.post("/problem/<block>/reset")
def reset(block: str) -> Response | tuple[Response, int]:
    state = _action(block)
    old = public_state(state)
    if not state["done"]:
        tracked = tracking.emit(
            "reset_problem_fail",
            {"old_state": old, "problem_id": PROBLEM_ID, "failure": "not_done"},
        )
        message = "Nothing to reset: check the problem first."
        return jsonify(error=message, tracked=tracked is not None), 409
    fresh = new_state()
    fresh["attempts"] = state["attempts"]  # capa keeps the attempts across a reset
    session[STATE] = fresh
    tracked = tracking.emit(
        "reset_problem",
        {"old_state": old, "new_state": public_state(fresh), "problem_id": PROBLEM_ID},
    )
    return jsonify(attempts=fresh["attempts"], tracked=tracked is not None)


@blueprint.post("/problem/<block>/save")
def save(block: str) -> Response:
    state = _action(block)
    answers = _answers()
    old = public_state(state)
    state["student_answers"] = answers
    session[STATE] = state
    tracked = tracking.emit(
        "save_problem_success", {"state": old, "problem_id": PROBLEM_ID, "answers": answers}
    )
    return jsonify(saved=True, tracked=tracked is not None)
