"""The catalog's JSON Schemas say what the marshmallow schemas check.

Over the whole real corpus (and, for one event of each type, every field set to values
of other types or removed), a payload is accepted by its JSON Schema (validated with the
``jsonschema`` library) exactly when the marshmallow schema accepts it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from marshmallow import Schema, fields, validate

from flask_tracking.catalog import TypeRegistry
from flask_tracking.catalog.document import builtin_entries, catalog_data, find, markdown
from flask_tracking.payloads import decode_payload
from flask_tracking.schemas import CATALOG, check_payload, spec_for
from flask_tracking.schemas.docs import END, START
from flask_tracking.schemas.registry import SOURCE_ALIASES

from support import corpus_path

REAL_FILES = (
    "edx-analytics-pipeline.jsonl",
    "json-to-relation.jsonl",
    "event-routing-backends.jsonl",
)
#: Values of every JSON type, put in place of each field in turn.
OTHER_VALUES: tuple[Any, ...] = (None, True, 0, 2.5, "x", "1.50", [], ["a", 1], {}, {"k": "v"})

VALIDATORS = {
    (entry.source, name): Draft202012Validator(entry.json_schema)
    for entry in builtin_entries()
    for name in (entry.event_type, *entry.aliases)
}


def corpus() -> Iterator[tuple[str, str, Any]]:
    """(source, type, decoded payload) of every real event of a type in the catalog."""
    for name in REAL_FILES:
        for line in corpus_path(name).read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            event = json.loads(line[line.find("{") :])
            source, event_type = event.get("event_source"), event.get("event_type")
            if isinstance(source, str) and spec_for(source, event_type) is not None:
                data = decode_payload(event.get("event")).data
                yield SOURCE_ALIASES.get(source, source), event_type, data


def variants(data: Any) -> Iterator[Any]:
    """``data`` itself, then (for an object) each key removed and set to other values."""
    yield data
    if not isinstance(data, dict):
        yield from OTHER_VALUES
        return
    for key in data:
        yield {k: v for k, v in data.items() if k != key}
        for value in OTHER_VALUES:
            yield {**data, key: value}


def disagreements(cases: Iterator[tuple[str, str, Any]]) -> tuple[list[str], dict[bool, int]]:
    found: list[str] = []
    counts = {True: 0, False: 0}
    for source, event_type, data in cases:
        by_marshmallow = check_payload(source, event_type, data).status == "valid"
        by_json_schema = VALIDATORS[source, event_type].is_valid(data)
        counts[by_marshmallow] += 1
        if by_marshmallow != by_json_schema:
            found.append(
                f"{source} {event_type}: marshmallow {by_marshmallow},"
                f" JSON Schema {by_json_schema}: {json.dumps(data)[:200]}"
            )
    return found, counts


def test_every_schema_is_a_valid_draft_2020_12_schema() -> None:
    for entry in builtin_entries():
        Draft202012Validator.check_schema(entry.json_schema)
        assert entry.json_schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert len(builtin_entries()) == len(CATALOG)


def test_json_schemas_agree_with_marshmallow_on_the_whole_corpus() -> None:
    events = list(corpus())
    assert len(events) > 700
    found, counts = disagreements(iter(events))
    assert found == [], "\n".join(found)
    assert counts[True] == len(events)


def test_json_schemas_agree_with_marshmallow_on_changed_corpus_events() -> None:
    first: dict[tuple[str, str], Any] = {}
    for source, event_type, data in corpus():
        first.setdefault((source, event_type), data)
    assert len(first) > 15
    cases = (
        (source, event_type, variant)
        for (source, event_type), data in first.items()
        for variant in variants(data)
    )
    found, counts = disagreements(cases)
    assert found == [], f"{len(found)} disagreements:\n" + "\n".join(found)
    assert counts[False] > 100 and counts[True] > 100


def test_every_example_passes_both_schemas() -> None:
    for entry in builtin_entries():
        (example,) = entry.json_schema["examples"]
        assert check_payload(entry.source, entry.event_type, example).status == "valid", entry
        assert VALIDATORS[entry.source, entry.event_type].is_valid(example), entry


def test_descriptions_come_from_the_specs() -> None:
    entry = find(TypeRegistry(), "browser", "play_video")
    assert entry is not None
    schema = entry.json_schema
    assert schema["description"] == "The learner started or resumed playback."
    assert schema["required"] == ["id", "code", "currentTime"]
    assert "seconds" in schema["properties"]["currentTime"]["description"]
    server = find(TypeRegistry(), "server", "save_problem_check")
    assert server is not None and server.event_type == "problem_check"
    correct_map = server.json_schema["properties"]["correct_map"]
    assert correct_map["anyOf"][1]["contentMediaType"] == "application/json"


@pytest.mark.parametrize("source", ["browser", "server"])
def test_catalog_data_of_one_source(source: str) -> None:
    data = catalog_data(TypeRegistry(), source)
    assert {t["source"] for t in data["types"]} == {source}
    assert all(t["version"] == 1 and t["builtin"] for t in data["types"])


def test_docs_events_md_is_the_catalog_of_an_app_without_types_of_its_own() -> None:
    text = (Path(__file__).resolve().parents[1] / "docs" / "events.md").read_text("utf-8")
    assert f"{START}\n\n{markdown(TypeRegistry())}\n{END}" in text, (
        "run: python -m flask_tracking.schemas docs/events.md"
    )


class Place(Schema):
    name = fields.String(required=True)
    floor = fields.Integer(strict=True, validate=validate.Range(min=0, max=99))


class EverythingSchema(Schema):
    """A registered schema using marshmallow's own fields."""

    title = fields.String(required=True, validate=validate.Length(min=1, max=20))
    count = fields.Integer(strict=True, allow_none=True)
    ratio = fields.Float(validate=validate.Range(min=0, max=1, max_inclusive=False))
    done = fields.Boolean()
    kind = fields.String(validate=validate.OneOf(["a", "b"]))
    tags = fields.List(fields.String(), validate=validate.Length(max=3))
    place = fields.Nested(Place)
    places = fields.Nested(Place, many=True)
    scores = fields.Dict(keys=fields.String(), values=fields.Float())
    pair = fields.Tuple((fields.String(), fields.Integer(strict=True)))
    when = fields.AwareDateTime(metadata={"description": "ISO 8601."})
    anything = fields.Raw(allow_none=True)


def test_a_registered_schema_with_marshmallows_own_fields() -> None:
    types = TypeRegistry()
    types.register("myapp.everything", EverythingSchema, source="both")
    entry = find(types, "browser", "myapp.everything")
    assert entry is not None
    Draft202012Validator.check_schema(entry.json_schema)
    validator = Draft202012Validator(entry.json_schema)
    good = {
        "title": "t",
        "count": None,
        "ratio": 0.5,
        "done": True,
        "kind": "a",
        "tags": ["x"],
        "place": {"name": "hall", "floor": 2},
        "places": [{"name": "hall"}],
        "scores": {"x": 1.5},
        "pair": ["a", 1],
        "anything": None,
        "schema_version": 1,
    }
    bad = [
        {},
        {"title": ""},
        {"title": "t" * 21},
        {"title": "t", "count": "1"},
        {"title": "t", "ratio": 1},
        {"title": "t", "kind": "c"},
        {"title": "t", "tags": ["a", "b", "c", "d"]},
        {"title": "t", "tags": [1]},
        {"title": "t", "place": {"floor": 1}},
        {"title": "t", "place": {"name": "x", "floor": 100}},
        {"title": "t", "places": {"name": "x"}},
        {"title": "t", "scores": {"x": "high"}},
        {"title": "t", "pair": ["a", "b"]},
        {"title": "t", "unknown_key": 1},
        {"title": "t", "schema_version": 2},
    ]
    assert types.check("browser", "myapp.everything", good)[0].status == "valid"
    assert validator.is_valid(good)
    for payload in bad:
        assert types.check("browser", "myapp.everything", payload)[0].status == "invalid", payload
        assert not validator.is_valid(payload), payload
    assert entry.json_schema["properties"]["when"]["format"] == "date-time"
    assert entry.json_schema["description"] == "A registered schema using marshmallow's own fields."
