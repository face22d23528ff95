"""The Caliper 1.2 mapping over the real corpus, checked by the spec-based validator."""

from __future__ import annotations

import copy
import json
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from flask_tracking.caliper import RULES, Settings, envelope, event_urn, score, to_caliper
from flask_tracking.errors import ConfigError
from flask_tracking.forwarding.destinations import OutgoingEvent, load_targets

from caliper_spec import CONTEXT, event_problems, problems
from support import corpus_path

CORPORA = ("edx-analytics-pipeline", "json-to-relation", "event-routing-backends")


def corpus() -> Iterator[tuple[str, dict[str, Any]]]:
    for name in CORPORA:
        with corpus_path(f"{name}.jsonl").open() as lines:
            for n, text in enumerate(lines):
                line = json.loads(text)
                yield f"{name}:{n}", line


def first(event_type: str, source: str | None = None) -> tuple[str, dict[str, Any]]:
    for key, line in corpus():
        if line.get("event_type") == event_type and source in (None, line.get("event_source")):
            return key, line
    raise AssertionError(f"no {event_type} in the corpus")


def test_every_mapped_event_of_the_corpus_is_a_valid_caliper_envelope() -> None:
    mapped: Counter[str] = Counter()
    unmapped: Counter[str] = Counter()
    for key, line in corpus():
        events = to_caliper(key, line)
        if not events:
            if line.get("event_type") in RULES:
                unmapped[line["event_type"]] += 1
                context = line.get("context")
                user_id = context.get("user_id") if isinstance(context, dict) else None
                # Only events without a user (no actor), or browser events whose payload
                # names no object, are left out.
                assert user_id in (None, "") or line["event_source"] == "browser", key
            continue
        mapped[line["event_type"]] += 1
        sent = envelope("https://lms.example.org/sensors/1", events)
        assert problems(sent) == [], (key, problems(sent))
    # The families of the brief all appear in the corpus and map.
    for family in (
        "play_video",
        "pause_video",
        "seek_video",
        "stop_video",
        "load_video",
        "show_transcript",
        "hide_transcript",
        "problem_check",
        "showanswer",
        "problem_show",
        "seq_goto",
        "seq_next",
        "seq_prev",
        "book",
        "page_close",
        "edx.ui.lms.sequence.next_selected",
        "edx.ui.lms.link_clicked",
        "edx.ui.lms.outline.selected",
    ):
        assert mapped[family] > 0, family
    in_corpus = {line.get("event_type") for _, line in corpus()}
    assert {t for t in RULES if t in in_corpus} - set(mapped) <= {
        "fullscreen",
        "not_fullscreen",
        "speed_change_video",  # only events without a user
    }
    assert sum(mapped.values()) > 550


def test_the_validator_is_not_a_rubber_stamp() -> None:
    key, line = first("play_video")
    good = to_caliper(key, line)[0]
    assert event_problems(good) == []
    bad_cases = {
        "action": "Viewed",  # not a MediaEvent action
        "id": "8c1e0000-0000-0000-0000-000000000000",  # not a urn:uuid:
        "eventTime": "2014-05-02T16:03:14+00:00",  # no milliseconds, no Z
        "profile": "GradingProfile",
        "colour": "blue",  # not a Caliper property
    }
    for field, value in bad_cases.items():
        broken = {**copy.deepcopy(good), field: value}
        assert event_problems(broken), field
    no_actor = copy.deepcopy(good)
    del no_actor["actor"]
    assert event_problems(no_actor)
    wrong_object = copy.deepcopy(good)
    wrong_object["object"]["type"] = "Attempt"
    assert event_problems(wrong_object)
    assert problems({"sensor": "x y", "sendTime": "now", "dataVersion": "1.1", "data": []})


def test_ids_are_derived_from_the_event_id_so_a_resend_is_idempotent() -> None:
    _key, line = first("seq_goto")
    once, again = to_caliper("ev-1", line), to_caliper("ev-1", copy.deepcopy(line))
    assert once == again and once[0]["id"] == event_urn("ev-1")
    assert to_caliper("ev-2", line)[0]["id"] != once[0]["id"]


def test_video_actions_and_media_location() -> None:
    key, line = first("play_video")
    started = to_caliper(key, line)[0]
    assert (started["type"], started["action"]) == ("MediaEvent", "Started")
    assert started["target"]["currentTime"] == "PT0S"
    later = copy.deepcopy(line)
    later["event"] = json.dumps({**json.loads(line["event"]), "currentTime": 12.5})
    resumed = to_caliper(key, later)[0]
    assert resumed["action"] == "Resumed" and resumed["target"]["currentTime"] == "PT12.5S"
    key, seek = first("seek_video")
    jumped = to_caliper(key, seek)[0]
    assert jumped["action"] == "JumpedTo" and jumped["target"]["currentTime"] == "PT147S"
    assert jumped["extensions"]["old_time"] == pytest.approx(38.910057)
    key, speed = first("speed_change_video")
    speed = {**speed, "context": {"user_id": 5, "course_id": "Medicine/HRP258/Statistics"}}
    changed = to_caliper(key, speed)[0]
    assert changed["action"] == "ChangedSpeed" and changed["extensions"]["new_speed"] == "2.0"
    assert problems(envelope("urn:test:sensor", [changed])) == []


def test_server_problem_check_is_graded_with_its_score() -> None:
    key, line = first("problem_check", "server")
    graded = to_caliper(key, line)[0]
    assert (graded["type"], graded["action"]) == ("GradeEvent", "Graded")
    assert graded["object"]["type"] == "Attempt"
    assert graded["object"]["assignee"]["type"] == "Person"
    data = line["event"]
    assert (graded["generated"]["scoreGiven"], graded["generated"]["maxScore"]) == (
        data["grade"],
        data["max_grade"],
    )
    # Without grade / max_grade, the score comes from the correct_map.
    assert score(
        {
            "correct_map": {
                "a": {"correctness": "correct", "npoints": None},
                "b": {"correctness": "incorrect"},
                "c": {"correctness": "correct", "npoints": 2},
            }
        }
    ) == (3, 3)
    key, browser = first("problem_check", "browser")
    completed = to_caliper(key, browser)
    assert completed and completed[0]["type"] == "AssessmentItemEvent"
    assert completed[0]["action"] == "Completed"


def test_the_actor_is_anonymous_by_default_and_never_an_email() -> None:
    key, line = first("page_close")
    line = {
        **line,
        "username": "ada@example.org",
        "context": {**line["context"], "user_id": 42, "username": "ada@example.org"},
    }
    actor = to_caliper(key, line)[0]["actor"]
    assert actor["id"].startswith("urn:uuid:") and "42" not in actor["id"]
    assert "ada" not in json.dumps(to_caliper(key, line))
    keyed = to_caliper(key, line, Settings(actor_secret=b"s3cret"))[0]["actor"]
    assert keyed["id"] != actor["id"] and keyed["id"].startswith("urn:uuid:")
    assert to_caliper(key, line, Settings(actor="username")) == []  # an email: no actor
    named = {**line, "username": "ada", "context": {**line["context"], "username": "ada"}}
    by_name = to_caliper(key, named, Settings(platform="https://lms.example.org", actor="username"))
    assert by_name[0]["actor"]["id"] == "https://lms.example.org/users/ada"
    no_user = {**line, "context": {k: v for k, v in line["context"].items() if k != "user_id"}}
    assert to_caliper(key, no_user) == []


def test_unmapped_types_are_skipped_and_counted() -> None:
    targets = load_targets(
        {
            "lrs": {
                "kind": "caliper",
                "options": {
                    "endpoint": "http://127.0.0.1:9/caliper",
                    "token": "t0k3n",
                    "platform": "https://lms.example.org",
                },
            }
        },
        job_timeout=60,
    )
    destination: Any = targets["lrs"].destination
    _key, enrol = first("edx.course.enrollment.activated")
    _key2, play = first("play_video")
    events = [OutgoingEvent("e1", "k1", enrol), OutgoingEvent("e2", "k2", play)]
    body = destination.body(events)
    sent = json.loads(body)
    assert problems(sent) == [] and [e["id"] for e in sent["data"]] == [event_urn("e2")]
    assert sent["sensor"] == "https://lms.example.org/sensors/flask-tracking"
    assert sent["dataVersion"] == CONTEXT
    assert destination.skipped == {"edx.course.enrollment.activated": 1}
    assert destination.body(events[:1]) is None  # nothing to send: no request at all
    destination.send(events[:1])  # port 9 is never contacted
    assert destination.skipped == {"edx.course.enrollment.activated": 3}


def test_event_time_is_utc_with_milliseconds() -> None:
    key, line = first("seq_next")
    line = {**line, "time": "2024-03-01T13:00:07.123999+01:00"}
    assert to_caliper(key, line)[0]["eventTime"] == "2024-03-01T12:00:07.123Z"
    sent = envelope("urn:x:y", to_caliper(key, line), datetime(2024, 3, 1, tzinfo=UTC))
    assert sent["sendTime"] == "2024-03-01T00:00:00.000Z"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"token": "t"}, "['endpoint'] is required"),
        ({"endpoint": "ftp://x/y", "token": "t"}, "http:// or https://"),
        ({"endpoint": "https://lrs.example.org/caliper"}, "['token'] is required"),
        (
            {"endpoint": "https://lrs.example.org/caliper", "token": "t", "actor": "email"},
            "['actor'] must be one of",
        ),
        (
            {"endpoint": "https://lrs.example.org/caliper", "token": "t", "sensor": "no iri"},
            "['sensor'] must be an IRI",
        ),
        (
            {"endpoint": "https://lrs.example.org/caliper", "token": "t", "tokn": "x"},
            "unknown option(s) 'tokn'",
        ),
        (
            {"endpoint": "https://lrs.example.org/caliper", "token": "t", "timeout": 90},
            "must be below TRACKING_FORWARD_JOB_TIMEOUT",
        ),
    ],
)
def test_options_are_checked_at_startup(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_targets({"lrs": {"kind": "caliper", "options": options}}, job_timeout=60)
    assert message in str(caught.value)


def test_secrets_are_named_for_redaction() -> None:
    targets = load_targets(
        {
            "lrs": {
                "kind": "caliper",
                "options": {
                    "endpoint": "https://u:pw@lrs.example.org/caliper",
                    "token": "t0k3n",
                    "actor_secret": "salt-value",
                },
            }
        },
        job_timeout=60,
    )
    secrets = targets["lrs"].destination.secrets()
    assert {"t0k3n", "salt-value"} <= set(secrets)


def test_the_docs_table_is_the_mapping() -> None:
    text = (Path(__file__).resolve().parents[1] / "docs" / "caliper.md").read_text()
    documented = {}
    for row in text.splitlines():
        cells = [c.strip() for c in row.strip().strip("|").split("|")]
        if len(cells) == 6 and cells[0].startswith("`"):
            for name in cells[0].split(","):
                documented[name.strip().strip("`")] = tuple(cells[1:5])
    assert documented == {
        t: (r.caliper_type, r.action, r.object_type, r.generated or "-") for t, r in RULES.items()
    }
