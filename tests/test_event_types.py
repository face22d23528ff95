"""The event-type constants and their agreement with the schema catalog."""

from __future__ import annotations

import re

from flask_tracking import event_types as et
from flask_tracking.schemas import CATALOG, spec_for

BRIEF_BROWSER = (
    "book",
    "page_close",
    "load_video",
    "play_video",
    "pause_video",
    "seek_video",
    "speed_change_video",
    "stop_video",
    "show_transcript",
    "hide_transcript",
    "problem_check",
    "problem_show",
    "problem_reset",
    "problem_save",
    "problem_graded",
    "seq_goto",
    "seq_next",
    "seq_prev",
    "rubric_select",
    "oe_show_question",
    "oe_show_problem",
    "oe_hide_question",
    "oe_hide_problem",
    "peer_grading_show_question",
    "peer_grading_show_problem",
    "peer_grading_hide_question",
    "peer_grading_hide_problem",
    "staff_grading_show_question",
    "staff_grading_show_problem",
    "staff_grading_hide_question",
    "staff_grading_hide_problem",
    "oe_show_full_feedback",
    "oe_show_respond_to_feedback",
    "oe_feedback_response_selected",
)

BRIEF_SERVER = (
    "showanswer",
    "show_answer",
    "problem_check",
    "save_problem_check",
    "problem_check_fail",
    "problem_rescore",
    "problem_rescore_fail",
    "save_problem_fail",
    "save_problem_success",
    "reset_problem",
    "reset_problem_fail",
)


def _constants() -> dict[str, str]:
    return {
        name: value
        for name, value in vars(et).items()
        if re.fullmatch(r"[A-Z][A-Z_]*", name) and isinstance(value, str)
    }


def test_every_listed_type_has_a_constant() -> None:
    values = set(_constants().values())
    assert set(BRIEF_BROWSER) <= values
    assert set(BRIEF_SERVER) <= values


def test_constant_names_follow_their_values() -> None:
    for name, value in _constants().items():
        if name.endswith("_ALIAS"):
            continue
        assert name == value.upper() or (name, value) == ("SHOW_ANSWER", "showanswer")
    assert et.SHOW_ANSWER == "showanswer"
    assert et.SHOW_ANSWER_ALIAS == "show_answer"


def test_sets() -> None:
    assert set(BRIEF_BROWSER) == et.BROWSER
    assert set(BRIEF_SERVER) == et.SERVER
    assert et.ALL == et.BROWSER | et.SERVER
    assert isinstance(et.ALL, frozenset)
    assert set(_constants().values()) == et.ALL
    assert et.PROBLEM_CHECK in et.BROWSER & et.SERVER
    assert len(et.BROWSER & et.SERVER) == 1
    assert et.PROBLEM_CHECK not in et.SERVER_ONLY
    assert et.SERVER_ONLY | {et.PROBLEM_CHECK} == et.SERVER


def test_aliases_and_canonical() -> None:
    assert et.canonical(et.SHOW_ANSWER_ALIAS) == et.SHOW_ANSWER
    assert et.canonical(et.SAVE_PROBLEM_CHECK) == et.PROBLEM_CHECK
    assert et.canonical(et.STAFF_GRADING_HIDE_PROBLEM) == et.STAFF_GRADING_HIDE_QUESTION
    assert et.canonical(et.PLAY_VIDEO) == et.PLAY_VIDEO
    for alias, name in et.ALIASES.items():
        assert alias in et.ALL and name in et.ALL
        assert name not in et.ALIASES


def test_every_type_has_a_spec_for_its_sources() -> None:
    for name in et.BROWSER:
        spec = spec_for("browser", name)
        assert spec is not None and spec.source == "browser", name
        assert spec.event_type == et.canonical(name)
    for name in et.SERVER:
        spec = spec_for("server", name)
        assert spec is not None and spec.source == "server", name
        assert spec.event_type == et.canonical(name)


def test_catalog_aliases_match_the_constants() -> None:
    from_catalog = {alias: spec.event_type for spec in CATALOG for alias in spec.aliases}
    assert from_catalog == et.ALIASES
    assert {name for spec in CATALOG for name in spec.names} == et.ALL
