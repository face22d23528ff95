"""The xAPI mapping on the real corpus, checked by an independent validator.

Every line of ``tests/data`` whose type has a mapping becomes a statement that Learning
Locker's ``@learninglocker/xapi-validation`` (npm, run by node) finds no problem with.
The destination's options are checked at startup like the other kinds.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from flask_tracking.errors import ConfigError
from flask_tracking.forwarding import OutgoingEvent
from flask_tracking.forwarding.destinations.registry import KINDS, load_targets
from flask_tracking.forwarding.destinations.xapi import XapiDestination
from flask_tracking.lrs import MAPPED_TYPES, Mapping, statement_id, to_statement
from flask_tracking.lrs.vocabulary import ACTIVITIES, TIME_FROM, TIME_TO, VERBS

from support import IN_CI, corpus_path

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
VALIDATOR = TESTS / "xapi_validate.cjs"
CORPUS = ("edx-analytics-pipeline.jsonl", "event-routing-backends.jsonl", "json-to-relation.jsonl")
MAPPING = Mapping("https://lms.example.org")


def corpus_lines() -> list[dict[str, Any]]:
    lines = []
    for name in CORPUS:
        for text in corpus_path(name).read_text().splitlines():
            try:
                line = json.loads(text)
            except ValueError:
                continue
            if isinstance(line, dict):
                lines.append(line)
    return lines


def validate(statements: list[dict[str, Any]]) -> list[list[dict[str, str]]]:
    """The problems ``@learninglocker/xapi-validation`` finds in each statement."""
    node = shutil.which("node")
    package = ROOT / "node_modules" / "@learninglocker" / "xapi-validation"
    if node is None or not package.is_dir():
        message = "node and the npm devDependencies are needed (bash scripts/setup.sh)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    done = subprocess.run(
        [node, str(VALIDATOR)],
        input=json.dumps(statements),
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=True,
    )
    result: list[list[dict[str, str]]] = json.loads(done.stdout)
    return result


def test_every_mapped_type_of_the_corpus_makes_valid_statements() -> None:
    statements, kinds = [], Counter()
    for line in corpus_lines():
        if line.get("event_type") in MAPPED_TYPES:
            statement = to_statement(line, str(uuid.uuid4()), MAPPING)
            if statement is not None:
                statements.append(statement)
                kinds[line["event_type"]] += 1
    # The families of the issue are all in the corpus and all mapped.
    for kind in (
        "load_video", "play_video", "pause_video", "seek_video", "stop_video",
        "problem_check", "showanswer", "seq_next", "seq_prev", "seq_goto",
        "edx.ui.lms.sequence.next_selected", "book", "page_close",
        "edx.grades.problem.submitted",
    ):  # fmt: skip
        assert kinds[kind] > 0, kind
    problems = validate(statements)
    bad = [(s["verb"]["id"], p) for s, p in zip(statements, problems, strict=True) if p]
    assert bad == [], bad[:5]
    assert len(statements) > 600


def test_the_statement_id_comes_from_the_event_id() -> None:
    line = {"event_type": "play_video", "time": "2024-03-01T12:00:00+00:00",
            "context": {"user_id": 7, "course_id": "course-v1:Org+Num+Run"},
            "event": json.dumps({"id": "block-v1:Org+Num+Run+type@video+block@v1",
                                 "currentTime": 12.5})}  # fmt: skip
    first = to_statement(line, "event-1", MAPPING)
    assert first == to_statement(line, "event-1", MAPPING)  # a re-send is the same statement
    assert first is not None and first["id"] == statement_id("event-1")
    assert uuid.UUID(first["id"]).version == 5
    assert to_statement(line, "event-2", MAPPING)["id"] != first["id"]  # type: ignore[index]
    assert first["verb"]["id"] == VERBS["played"] == "https://w3id.org/xapi/video/verbs/played"
    assert first["object"]["definition"]["type"] == ACTIVITIES["video"]
    assert first["result"]["extensions"] == {"https://w3id.org/xapi/video/extensions/time": 12.5}
    parent = first["context"]["contextActivities"]["parent"][0]
    assert parent["id"] == "https://lms.example.org/course/course-v1:Org+Num+Run"


def test_server_problem_check_carries_success_score_and_response() -> None:
    line = next(
        entry
        for entry in corpus_lines()
        if entry.get("event_type") == "problem_check" and entry.get("event_source") == "server"
        and isinstance(entry.get("event"), dict) and entry["event"].get("max_grade")
    )  # fmt: skip
    statement = to_statement(line, "e", MAPPING)
    assert statement is not None
    assert statement["verb"]["id"] == "https://w3id.org/xapi/acrossx/verbs/evaluated"
    assert statement["object"]["definition"]["type"] == ACTIVITIES["interaction"]
    data, result = line["event"], statement["result"]
    assert result["success"] is (data["success"] == "correct")
    assert result["score"]["raw"] == data["grade"] and result["score"]["max"] == data["max_grade"]
    assert isinstance(result["response"], str)


def test_seek_and_navigation_extensions() -> None:
    seek = {"event_type": "seek_video", "time": "2024-03-01T12:00:00Z",
            "context": {"user_id": 1},
            "event": {"id": "v", "old_time": 3, "new_time": 40.25}}  # fmt: skip
    statement = to_statement(seek, "s", MAPPING)
    assert statement is not None
    assert statement["result"]["extensions"] == {TIME_FROM: 3.0, TIME_TO: 40.25}
    nxt = {"event_type": "edx.ui.lms.sequence.next_selected", "time": "2024-03-01T12:00:00Z",
           "context": {"user_id": 1},
           "event": {"id": "block-v1:O+N+R+type@sequential+block@s", "current_tab": 2,
                     "tab_count": 5, "widget_placement": "top"}}  # fmt: skip
    statement = to_statement(nxt, "n", MAPPING)
    assert statement is not None
    assert statement["verb"]["id"] == "https://w3id.org/xapi/dod-isd/verbs/navigated"
    ext = statement["context"]["extensions"]
    assert ext["http://id.tincanapi.com/extension/ending-point"] == "next unit"
    assert ext["https://w3id.org/xapi/acrossx/extensions/total-items"] == 5


def test_the_actor_is_an_account_never_an_email() -> None:
    line = {"event_type": "page_close", "time": "2024-03-01T12:00:00Z", "username": "ada",
            "page": "https://lms.example.org/courses/x/", "event": "",
            "context": {"user_id": 42, "email": "ada@example.org"}}  # fmt: skip
    statement = to_statement(line, "p", MAPPING)
    assert statement is not None
    assert statement["actor"] == {
        "objectType": "Agent",
        "account": {"homePage": "https://lms.example.org", "name": "42"},
    }
    assert "ada@example.org" not in json.dumps(statement)
    by_name = Mapping("https://lms.example.org", actor="username")
    assert to_statement(line, "p", by_name)["actor"]["account"]["name"] == "ada"  # type: ignore[index]
    anonymous = {**line, "username": "", "context": {}}
    assert to_statement(anonymous, "p", MAPPING) is None  # no learner: not sent


def test_unmapped_types_are_skipped_or_sent_with_the_generic_verb() -> None:
    line = {"event_type": "edx.forum.thread.created", "time": "2024-03-01T12:00:00Z",
            "context": {"user_id": 3}, "event": {"title": "t"}}  # fmt: skip
    assert to_statement(line, "f", MAPPING) is None
    generic = Mapping(
        "https://lms.example.org", generic_verb="http://adlnet.gov/expapi/verbs/experienced"
    )
    statement = to_statement(line, "f", generic)
    assert statement is not None
    assert statement["verb"]["id"] == "http://adlnet.gov/expapi/verbs/experienced"
    assert validate([statement]) == [[]]


def test_the_destination_counts_what_it_skips() -> None:
    destination = XapiDestination(
        "lrs", {"endpoint": "http://127.0.0.1:9", "platform_url": "https://lms.example.org"}
    )
    skipped = OutgoingEvent(
        "e1", "k1", {"event_type": "edx.forum.searched", "context": {"user_id": 1}}
    )
    destination.send([skipped])  # nothing to post: no connection is even tried
    assert destination.skipped == Counter({"edx.forum.searched": 1})


def options(**extra: Any) -> dict[str, Any]:
    return {
        "endpoint": "https://lrs.example.org",
        "platform_url": "https://lms.example.org",
        **extra,
    }


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"endpoint": "lrs.example.org"}, "['endpoint'] must be an http:// or https:// URL"),
        ({"platform_url": None}, "['platform_url'] is required"),
        ({"token": "t", "username": "u", "password": "p"}, "not both"),
        ({"username": "u"}, "['password'] is required"),
        ({"actor": "email"}, "['actor'] must be 'user_id'"),
        ({"generic_verb": "experienced"}, "['generic_verb'] must be a verb IRI"),
        ({"batchsize": 10}, "unknown option(s) 'batchsize'"),
    ],
)
def test_bad_options_are_refused_at_startup(extra: dict[str, Any], message: str) -> None:
    config = {"lrs": {"kind": "xapi", "options": options(**extra)}}
    with pytest.raises(ConfigError) as info:
        load_targets(config, job_timeout=60)
    assert message in str(info.value)


def test_secrets_are_known_and_the_kind_is_registered() -> None:
    assert KINDS["xapi"] is XapiDestination
    basic = XapiDestination("lrs", options(username="u", password="s3cret-pass"))
    bearer = XapiDestination("lrs", options(token="t0ken-value"))
    assert "s3cret-pass" in basic.secrets()
    assert "t0ken-value" in bearer.secrets()
    assert bearer.headers()["Authorization"] == "Bearer t0ken-value"
    assert basic.headers()["X-Experience-API-Version"] == "1.0.3"
    assert basic.url == "https://lrs.example.org/xAPI/statements"
