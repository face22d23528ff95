"""The payload schemas: every type, the quirks of real logs, the catalog and its docs."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flask_tracking import event_types as et
from flask_tracking.schemas import (
    CATALOG,
    EventSpec,
    Verdict,
    catalog_as_data,
    check_payload,
    server_only_reason,
    spec_for,
)
from flask_tracking.schemas.common import envelope_errors
from flask_tracking.schemas.docs import render_markdown, replace_generated

from support import corpus_path

ROOT = Path(__file__).resolve().parents[1]
REAL_FILES = (
    "edx-analytics-pipeline.jsonl",
    "json-to-relation.jsonl",
    "event-routing-backends.jsonl",
)

ENTRY = dict(correctness="correct", npoints=None, msg="", hint="", hintmode=None, queuestate=None)
STATE = {"student_answers": {}, "seed": 1, "done": True, "correct_map": {}, "input_state": {}}
PID = "i4x://MITx/6.00x/problem/L15:L15_Problem_2"
VIDEO = {"id": "i4x-HarvardX-PH207x-video-Simple_Random_Sample", "code": "FU3fCJNs94Y"}
SEQ = {"old": 1, "new": 2, "id": "i4x://edX/DemoX/sequential/basic_questions"}
LOC = {"location": "i4x://Education/EDUC115N/combinedopenended/4abb8b47b03d"}
QUERY = {"input_i4x-MITx-6_00x-problem-L15_2_1": "answer", "input_x_2_2[]": ["a", "b"]}
CAPA = dict(state=STATE, old_state=STATE, new_state=STATE, problem_id=PID, answers={"a_2_1": "x"},
            success="correct", attempts=1, correct_map={"a_2_1": ENTRY}, failure="closed",
            orig_score=0, orig_total=1, new_score=1.0, new_total=1)  # fmt: skip


def capa(*names: str, **changes: Any) -> dict[str, Any]:
    """A server capa payload with the ``names`` fields of :data:`CAPA`, and ``changes``."""
    return {**{name: CAPA[name] for name in names}, **changes}


#: A valid payload of every spec, keyed by (source, canonical type).
EXAMPLES: dict[tuple[str, str], Any] = {
    ("browser", et.BOOK): {"type": "gotopage", "old": 2, "new": 25},
    ("browser", et.PAGE_CLOSE): "",
    ("browser", et.LOAD_VIDEO): VIDEO,
    ("browser", et.PLAY_VIDEO): {**VIDEO, "currentTime": 1.264, "speed": "1.0"},
    ("browser", et.PAUSE_VIDEO): {**VIDEO, "currentTime": 12, "speed": 1.5},
    ("browser", et.STOP_VIDEO): {**VIDEO, "currentTime": 4, "duration": 444},
    ("browser", et.SEEK_VIDEO): {**VIDEO, "old_time": 2.5, "new_time": 141, "type": "onSlideSeek"},
    ("browser", et.SPEED_CHANGE_VIDEO): {**VIDEO, "old_speed": "1.50", "new_speed": "2.0"},
    ("browser", et.SHOW_TRANSCRIPT): {**VIDEO, "currentTime": 0},
    ("browser", et.HIDE_TRANSCRIPT): {**VIDEO, "currentTime": 0},
    ("browser", et.SEQ_GOTO): SEQ,
    ("browser", et.SEQ_NEXT): {**SEQ, "id": 7},
    ("browser", et.SEQ_PREV): {"old": 3, "new": 2, "id": "block-v1:edX+DemoX+T+type@sequential"},
    ("browser", et.PROBLEM_CHECK): QUERY,
    ("browser", et.PROBLEM_RESET): "input_i4x-Engineering-QMSE01-problem-dce5_2_1=2",
    ("browser", et.PROBLEM_SAVE): {"input_a_2_1": "13.4 breaths per minute", "input_a_3_1": 13.5},
    ("browser", et.PROBLEM_SHOW): {"problem": PID},
    ("browser", et.PROBLEM_GRADED): ["input_a_2_1=choice_0", "<h2>Quiz</h2>"],
    ("browser", et.RUBRIC_SELECT): {**LOC, "selection": 2, "category": 0},
    ("browser", et.OE_SHOW_QUESTION): LOC,
    ("browser", et.OE_HIDE_QUESTION): LOC,
    ("browser", et.PEER_GRADING_SHOW_QUESTION): LOC,
    ("browser", et.PEER_GRADING_HIDE_QUESTION): LOC,
    ("browser", et.STAFF_GRADING_SHOW_QUESTION): LOC,
    ("browser", et.STAFF_GRADING_HIDE_QUESTION): LOC,
    ("browser", et.OE_SHOW_FULL_FEEDBACK): "",
    ("browser", et.OE_SHOW_RESPOND_TO_FEEDBACK): {},
    ("browser", et.OE_FEEDBACK_RESPONSE_SELECTED): {"value": 3},
    ("server", et.SHOW_ANSWER): capa("problem_id"),
    ("server", et.PROBLEM_CHECK): capa(
        "state", "problem_id", "answers", "success", "attempts", "correct_map"
    ),
    ("server", et.PROBLEM_CHECK_FAIL): capa("state", "problem_id", "answers", "failure"),
    ("server", et.PROBLEM_RESCORE): capa(
        "problem_id",
        "orig_score",
        "orig_total",
        "new_score",
        "new_total",
        "correct_map",
        "success",
        "attempts",
        state="{}",
    ),
    ("server", et.PROBLEM_RESCORE_FAIL): capa("state", "problem_id", failure="unexpected"),
    ("server", et.SAVE_PROBLEM_FAIL): capa("state", "problem_id", "answers", failure="done"),
    ("server", et.SAVE_PROBLEM_SUCCESS): capa("state", "problem_id", "answers"),
    ("server", et.RESET_PROBLEM_FAIL): capa("old_state", "problem_id", "failure"),
    ("server", et.RESET_PROBLEM): capa("old_state", "problem_id", "new_state"),
}

#: A value of the wrong type for each type label of an object field.
WRONG: dict[str, Any] = {
    "string": 12,
    "integer": "12",
    "number": "abc",
    "number or numeric string": "fast",
    "string or integer": [1],
    "object": "x",
    "object or string": 1,
    "correct_map": 5,
}

ALL_KEYS = [(spec.source, name) for spec in CATALOG for name in spec.names]
OBJECT_SPECS = [spec for spec in CATALOG if spec.payload == "object"]


def _id(value: Any) -> str:
    if isinstance(value, EventSpec):
        return f"{value.source}:{value.event_type}"
    return ":".join(value) if isinstance(value, tuple) else str(value)


def leaf_messages(errors: Any) -> list[Any]:
    if isinstance(errors, dict):
        return [m for value in errors.values() for m in leaf_messages(value)]
    if isinstance(errors, list):
        return [m for value in errors for m in leaf_messages(value)]
    return [errors]


def leaf_messages_ok(errors: Any) -> bool:
    messages = leaf_messages(errors)
    return bool(messages) and all(isinstance(m, str) and m.endswith(".") for m in messages)


def assert_invalid(verdict: Verdict, field: str) -> None:
    assert verdict.status == "invalid", verdict
    assert field in verdict.errors, verdict.errors
    assert leaf_messages_ok(verdict.errors), verdict.errors


def decode(event: Any) -> Any:
    """The test's own decoder of an ``event`` field (the real one is in payloads.py)."""
    if not isinstance(event, str):
        return event
    try:
        return json.loads(event)
    except ValueError:
        if "=" in event and "{" not in event:
            parsed = parse_qs(event, keep_blank_values=True)
            return {k: v[0] if len(v) == 1 else v for k, v in parsed.items()}
        return event


# --- every type and alias -------------------------------------------------------------


def test_every_spec_has_an_example() -> None:
    assert set(EXAMPLES) == {(spec.source, spec.event_type) for spec in CATALOG}


@pytest.mark.parametrize("key", ALL_KEYS, ids=_id)
def test_valid_example(key: tuple[str, str]) -> None:
    spec = spec_for(*key)
    assert spec is not None
    assert check_payload(*key, copy.deepcopy(EXAMPLES[spec.source, spec.event_type])) == Verdict(
        "valid", {}
    )


@pytest.mark.parametrize("spec", OBJECT_SPECS, ids=_id)
def test_object_fields_wrong_type_and_missing(spec: EventSpec) -> None:
    example = EXAMPLES[spec.source, spec.event_type]
    assert spec.schema is not None
    for name in spec.names:
        assert_invalid(check_payload(spec.source, name, "not an object"), "_schema")
        for field in spec.fields:
            assert_invalid(
                check_payload(spec.source, name, {**example, field.name: WRONG[field.type]}),
                field.name,
            )
            if not field.nullable:
                assert_invalid(
                    check_payload(spec.source, name, {**example, field.name: None}), field.name
                )
            if field.required:
                missing = {k: v for k, v in example.items() if k != field.name}
                verdict = check_payload(spec.source, name, missing)
                assert_invalid(verdict, field.name)
                assert verdict.errors[field.name] == ["Missing data for required field."]


@pytest.mark.parametrize("name", [et.PROBLEM_CHECK, et.PROBLEM_RESET, et.PROBLEM_SAVE])
def test_query_payloads(name: str) -> None:
    for good in ("", "a=1&b=2", "He hadn't seen", {}, QUERY, {"x": ["1", 2]}):
        assert check_payload("browser", name, good).status == "valid"
    assert_invalid(check_payload("browser", name, {"input_a": {"x": 1}}), "input_a")
    assert_invalid(check_payload("browser", name, {"input_a": [None]}), "input_a")
    assert_invalid(check_payload("browser", name, {"input_a": True}), "input_a")
    for bad in (None, 5, ["a=1"]):
        assert_invalid(check_payload("browser", name, bad), "_schema")


def test_problem_graded() -> None:
    for good in (["a=1", None], [{"input_a": "1"}, "<p/>"], "[mangled,n<h2>"):
        assert check_payload("browser", et.PROBLEM_GRADED, good).status == "valid"
    assert_invalid(check_payload("browser", et.PROBLEM_GRADED, [5, "html"]), "answers")
    assert_invalid(check_payload("browser", et.PROBLEM_GRADED, [{"a": {}}, "html"]), "answers")
    assert_invalid(check_payload("browser", et.PROBLEM_GRADED, ["a=1", 5]), "html")
    for bad in (["a=1"], ["a", "b", "c"], None, {"answers": "a=1"}):
        assert_invalid(check_payload("browser", et.PROBLEM_GRADED, bad), "_schema")


@pytest.mark.parametrize(
    "name", [et.PAGE_CLOSE, et.OE_SHOW_FULL_FEEDBACK, et.OE_SHOW_RESPOND_TO_FEEDBACK]
)
def test_empty_payload_events_accept_anything(name: str) -> None:
    for value in ("", {}, None, "{}", {"x": 1}):
        assert check_payload("browser", name, value).status == "valid"


# --- real-data quirks and exact types -------------------------------------------------


def play(**changes: Any) -> Verdict:
    return check_payload("browser", et.PLAY_VIDEO, {**VIDEO, "currentTime": 1, **changes})


def test_play_video_types() -> None:
    assert play(currentTime="abc").errors == {"currentTime": ["Not a valid number."]}
    assert play(currentTime=[1]).errors == {"currentTime": ["Not a valid number."]}
    for bad in (True, "1.5", math.nan, math.inf):
        assert_invalid(play(currentTime=bad), "currentTime")
    for speed in ("1.50", "0.75", "2", 1.25, 1):
        assert play(speed=speed).status == "valid"
    for speed in ("fast", "1.5x", " 1.5", "1_0", True, None):
        assert_invalid(play(speed=speed), "speed")
    assert play(id=17, extra={"anything": [1]}).status == "valid"


def test_integers_are_exact() -> None:
    for bad in (True, 1.0, "1"):
        assert_invalid(check_payload("browser", et.SEQ_GOTO, {**SEQ, "old": bad}), "old")


def server_check(**changes: Any) -> Verdict:
    example = copy.deepcopy(EXAMPLES["server", et.PROBLEM_CHECK])
    return check_payload("server", et.SAVE_PROBLEM_CHECK, {**example, **changes})


def cmap(**changes: Any) -> dict[str, Any]:
    return {"a_2_1": {**ENTRY, **changes}}


def test_correct_map_entries() -> None:
    for ok in ("correct", "incorrect", "unknown", "partially-correct"):
        assert server_check(correct_map=cmap(correctness=ok)).status == "valid"
    for npoints in (None, 1, 0.5, True):
        assert server_check(correct_map=cmap(npoints=npoints)).status == "valid"
    for hintmode in (None, "on_request", "always"):
        assert server_check(correct_map=cmap(hintmode=hintmode)).status == "valid"
    queued = cmap(queuestate={"key": "s3cr3t", "time": "20130228100026"})
    assert server_check(correct_map=queued).status == "valid"
    assert server_check(correct_map=json.dumps(queued)).status == "valid"
    assert server_check(correct_map=cmap(answervariable=None, extra=1)).status == "valid"

    verdict = server_check(correct_map=cmap(correctness="maybe", npoints="1", msg=None))
    assert verdict.errors == {
        "correct_map": {
            "a_2_1": {
                "correctness": ["Must be one of: correct, incorrect, partially-correct, unknown."],
                "npoints": ["Not a valid number or boolean."],
                "msg": ["Field may not be null."],
            }
        }
    }
    assert server_check(correct_map=cmap(queuestate={"key": "k"})).errors == {
        "correct_map": {"a_2_1": {"queuestate": {"time": ["Missing data for required field."]}}}
    }
    entry = {k: v for k, v in ENTRY.items() if k != "hint"}
    assert_invalid(server_check(correct_map={"a": entry}), "correct_map")
    assert_invalid(server_check(correct_map=cmap(hintmode="never")), "correct_map")
    assert_invalid(server_check(correct_map={"a": "correct"}), "correct_map")
    assert_invalid(server_check(correct_map="{not json"), "correct_map")
    assert_invalid(server_check(success="partially"), "success")
    assert_invalid(server_check(attempts=True), "attempts")


# --- lookups --------------------------------------------------------------------------


def test_lookup_rules() -> None:
    assert spec_for("mobile", et.PLAY_VIDEO) is spec_for("browser", et.PLAY_VIDEO)
    assert spec_for("task", et.PROBLEM_RESCORE) is spec_for("server", et.PROBLEM_RESCORE)
    assert spec_for("server", et.SHOW_ANSWER_ALIAS) is spec_for("server", et.SHOW_ANSWER)
    assert spec_for("browser", et.OE_HIDE_PROBLEM) is spec_for("browser", et.OE_HIDE_QUESTION)
    assert spec_for("browser", et.PROBLEM_CHECK) is not spec_for("server", et.PROBLEM_CHECK)
    assert spec_for("browser", et.SHOW_ANSWER) is None
    assert spec_for("server", et.PLAY_VIDEO) is None
    assert spec_for("elsewhere", et.PLAY_VIDEO) is None
    assert check_payload("mobile", et.PLAY_VIDEO, {**VIDEO, "currentTime": 1}).status == "valid"
    assert_invalid(check_payload("task", et.RESET_PROBLEM, {}), "problem_id")
    assert check_payload("browser", "edx.ui.lms.link_clicked", {}) == Verdict("unknown", {})
    assert check_payload("server", "/courses", "GET {...").status == "unknown"


def test_server_only_reason() -> None:
    for name in et.SERVER_ONLY:
        reason = server_only_reason(name, {"problem_id": PID})
        assert reason == f"{name} is a server event and cannot be sent from the browser."
    assert server_only_reason(et.SHOW_ANSWER, None) == (
        "showanswer is a server event and cannot be sent from the browser."
    )
    assert server_only_reason(et.PROBLEM_CHECK, QUERY) is None
    assert server_only_reason(et.PROBLEM_CHECK, "input_a=1&correct_map=2") is not None
    assert server_only_reason(et.PROBLEM_CHECK, {"input_a": "1", "correct_map[x]": "2"})
    for spelling in (" showanswer", "ShowAnswer", "reset_problem\n", "SAVE_PROBLEM_CHECK"):
        assert server_only_reason(spelling, {}) is not None
    assert server_only_reason(et.PROBLEM_CHECK, [{"correct_map": {}}]) is None
    reason = server_only_reason(et.PROBLEM_CHECK, EXAMPLES["server", et.PROBLEM_CHECK])
    assert reason is not None and "correct_map" in reason and reason.endswith(".")
    for name in et.BROWSER - {et.PROBLEM_CHECK}:
        assert server_only_reason(name, {}) is None
    assert server_only_reason("edx.ui.lms.link_clicked", {"correct_map": {}}) is None


def test_catalog_as_data() -> None:
    data = catalog_as_data()
    assert json.loads(json.dumps(data)) == data
    assert len(data) == len(CATALOG) == len({(d["source"], d["event_type"]) for d in data})
    for entry in data:
        assert set(entry) == {"event_type", "aliases", "source", "description", "payload", "fields"}
        assert entry["source"] in ("browser", "server")
        assert entry["payload"] in ("object", "query", "list", "any")
        assert entry["description"].endswith(".")
        for field in entry["fields"]:
            assert set(field) == {"name", "type", "required", "nullable", "description"}
    for spec in CATALOG:
        assert (spec.schema is None) == (spec.payload != "object")


# --- the fast path agrees with marshmallow ---------------------------------------------

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=5)
    | st.sampled_from(["1.5", "correct", "unknown", "always", "on_request", "", "x"])
)
JSON = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(OBJECT_SPECS), st.data())
def test_fast_path_agrees_with_marshmallow(spec: EventSpec, data: st.DataObject) -> None:
    base = copy.deepcopy(EXAMPLES[spec.source, spec.event_type])
    if spec.event_type in (et.PROBLEM_CHECK, et.PROBLEM_RESCORE):
        entry = data.draw(st.fixed_dictionaries({k: st.just(v) | JSON for k, v in ENTRY.items()}))
        base["correct_map"] = {"a": entry}
    names = [f.name for f in spec.fields]
    changes = data.draw(st.dictionaries(st.sampled_from(names), JSON, max_size=3))
    payload = {**base, **changes}
    assert spec.schema is not None
    expected = spec.schema.validate(payload)
    verdict = check_payload(spec.source, spec.event_type, payload)
    assert verdict.errors == expected
    assert verdict.status == ("invalid" if expected else "valid")


# --- real events ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def corpus() -> list[dict[str, Any]]:
    lines: list[dict[str, Any]] = []
    for name in REAL_FILES:
        with corpus_path(name).open(encoding="utf-8") as handle:
            lines += [json.loads(line) for line in handle if line.strip()]
    return lines


def test_every_real_event_of_a_known_type_is_valid(corpus: list[dict[str, Any]]) -> None:
    checked = 0
    for event in corpus:
        source, event_type = event["event_source"], event["event_type"]
        if spec_for(source, event_type) is None:
            continue
        verdict = check_payload(source, event_type, decode(event.get("event")))
        assert verdict.status == "valid", (event_type, verdict.errors, event.get("event"))
        checked += 1
    assert checked > 700


def test_real_envelopes(corpus: list[dict[str, Any]]) -> None:
    for event in corpus:
        assert envelope_errors(event) == {}, event
    assert envelope_errors({}) == {"event_type": ["Missing data for required field."]}
    assert envelope_errors("x") == {"_schema": ["Invalid event: expected an object."]}


def test_real_browser_events_are_not_refused(corpus: list[dict[str, Any]]) -> None:
    for event in corpus:
        if event["event_source"] == "browser":
            assert server_only_reason(event["event_type"], decode(event.get("event"))) is None
        elif event["event_type"] in et.SERVER:
            assert server_only_reason(event["event_type"], decode(event.get("event")))


# --- docs -----------------------------------------------------------------------------


def test_docs_are_generated_from_the_catalog() -> None:
    text = (ROOT / "docs" / "events.md").read_text(encoding="utf-8")
    assert replace_generated(text) == text, "run: python -m flask_tracking.schemas docs/events.md"
    assert render_markdown() in text
    for name in et.ALL:
        assert f"`{name}`" in text, name
